//! The entry points a stranger can reach, tried as an attacker would against a real `viva
//! serve`: thousands of PIN guesses over CPaaS media streams (without and with the stream
//! token, from one caller and from many) and over SIP (sipp typing INFO digits), wrong API
//! keys, oversized and mistyped bodies, and `/metrics`.
//!
//! Attackers and legitimate callers are told apart by their source address: every address of
//! 127.0.0.0/8 is this machine, so a test binds its sockets (and sipp) to 127.0.0.2, .3, ...

#[path = "support/server.rs"]
mod server;
#[path = "support/sipp.rs"]
mod sipp;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use server::{API_KEY, TestServer};
use sipp::{Transport, pin_keys};
use tokio_tungstenite::tungstenite::Message;
use viva_test_support::scratch_dir;
use viva_test_support::sipp::final_counts;

/// Wrong PINs one caller may enter before being locked out (`pin.failures_per_caller`).
const FAILURES_PER_CALLER: u64 = 5;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Schedules `count` interviews; returns their (id, PIN).
fn schedule_many(server: &TestServer, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|n| {
            let interview = server.schedule(&format!("Candidate {n}"));
            (
                interview["id"].as_str().unwrap().to_owned(),
                interview["pin"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// How many interviews are in each status.
fn statuses(server: &TestServer) -> std::collections::BTreeMap<String, usize> {
    let list = server.get("/api/v1/interviews?limit=500").json();
    let mut counts = std::collections::BTreeMap::new();
    for interview in list["interviews"].as_array().unwrap() {
        *counts
            .entry(interview["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

/// The value of one metric line (`name{labels}`), 0 if absent.
fn metric(server: &TestServer, series: &str) -> u64 {
    let text = server.request("GET", "/metrics", None, &[], None).text();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse().unwrap())
}

/// A PIN of the same length no scheduled interview has.
fn unused_pin(n: u64, taken: &[(String, String)]) -> String {
    let pin = (1_000_000_000 + n * 7_919).to_string();
    assert!(taken.iter().all(|(_, p)| *p != pin));
    pin
}

/// How one media stream went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    /// The WebSocket handshake was refused (an HTTP error status).
    Refused(u16),
    /// The server closed the stream without a word of interviewer audio.
    Closed,
    /// The interviewer spoke: an interview was joined.
    Joined,
}

/// Opens a media stream to `url` from the local address `from`, sends `connected` and a
/// `start` with `parameters`, and waits until the server closes it or speaks.
async fn stream_attempt(url: &str, from: IpAddr, parameters: Value) -> StreamEnd {
    let target: SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let tcp = socket.connect(target).await.unwrap();
    let mut ws = match tokio_tungstenite::client_async(url, tcp).await {
        Ok((ws, _)) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            return StreamEnd::Refused(response.status().as_u16());
        }
        Err(err) => panic!("handshake with {url} failed: {err}"),
    };
    let start = json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "streamSid": "MZguess",
            "callSid": "CAguess",
            "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
        },
        "streamSid": "MZguess",
    });
    let connected = json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" });
    // The server may close before the second message arrives: a send error is a close.
    let _ = ws.send(Message::text(connected.to_string())).await;
    let _ = ws.send(Message::text(start.to_string())).await;
    let end = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Text(text)) if text.contains("\"media\"") => return StreamEnd::Joined,
                Ok(Message::Close(_)) | Err(_) => return StreamEnd::Closed,
                Ok(_) => {}
            }
        }
        StreamEnd::Closed
    })
    .await
    .expect("the server neither closed the stream nor spoke within 15 s");
    let _ = ws.close(None).await;
    end
}

/// Runs `attempts` media streams, eight at a time; returns how each ended.
async fn stream_attempts(
    url: &str,
    from: IpAddr,
    attempts: impl Iterator<Item = Value>,
) -> Vec<StreamEnd> {
    stream::iter(attempts)
        .map(|parameters| stream_attempt(url, from, parameters))
        .buffer_unordered(8)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_pins_over_media_streams_opens_no_interview() {
    let blocking = |f: &dyn Fn() -> Value| tokio::task::block_in_place(f);
    let server = tokio::task::block_in_place(|| TestServer::start("security-stream", &[]));
    let interviews = tokio::task::block_in_place(|| schedule_many(&server, 200));
    let base = server.base.replace("http://", "ws://");
    let with_token = server.stream_url();

    // Without the stream token: even the right PINs of real interviews open nothing, because
    // no interview is looked up at all.
    let started = Instant::now();
    let no_token = stream_attempts(
        &format!("{base}/media-stream"),
        ip("127.0.0.3"),
        interviews
            .iter()
            .cycle()
            .take(500)
            .map(|(_, pin)| json!({ "pin": pin })),
    )
    .await;
    assert!(
        no_token.iter().all(|end| *end == StreamEnd::Closed),
        "{no_token:?}"
    );
    // A wrong token in the URL is refused before the WebSocket opens; after ten, the address
    // is locked out and not even checked.
    let wrong_token = stream_attempts(
        &format!("{base}/media-stream/not-the-token"),
        ip("127.0.0.4"),
        (0..20).map(|_| json!({ "pin": interviews[0].1 })),
    )
    .await;
    let forbidden = wrong_token
        .iter()
        .filter(|e| **e == StreamEnd::Refused(403))
        .count();
    let limited = wrong_token
        .iter()
        .filter(|e| **e == StreamEnd::Refused(429))
        .count();
    assert_eq!((forbidden, limited), (10, 10), "{wrong_token:?}");
    // The token as a wrong custom parameter is no better.
    let wrong_parameter = stream_attempt(
        &format!("{base}/media-stream"),
        ip("127.0.0.5"),
        json!({ "token": "guess", "pin": interviews[0].1 }),
    )
    .await;
    assert_eq!(wrong_parameter, StreamEnd::Closed);
    eprintln!(
        "521 streams without the token refused in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // With the token (a compromised CPaaS, or a caller on its number): 2,000 wrong PINs from
    // one caller. Only the first few are ever checked.
    let started = Instant::now();
    let guesses = stream_attempts(
        &with_token,
        ip("127.0.0.2"),
        (0..2_000).map(|n| json!({ "pin": unused_pin(n, &interviews) })),
    )
    .await;
    assert!(
        guesses.iter().all(|end| *end == StreamEnd::Closed),
        "a guess joined an interview"
    );
    eprintln!(
        "2,000 PIN guesses over media streams in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Locked out, the right PIN is refused too: it is not even checked.
    let right_but_locked = stream_attempt(
        &with_token,
        ip("127.0.0.2"),
        json!({ "pin": interviews[0].1 }),
    )
    .await;
    assert_eq!(right_but_locked, StreamEnd::Closed);
    // So is an interview id in place of the PIN.
    let id_but_locked = stream_attempt(
        &with_token,
        ip("127.0.0.2"),
        json!({ "interview": interviews[0].0 }),
    )
    .await;
    assert_eq!(id_but_locked, StreamEnd::Closed);

    let checked = metric(&server, "viva_auth_failures_total{secret=\"pin\"}");
    let refused = metric(
        &server,
        "viva_auth_refused_total{secret=\"pin\",scope=\"caller\"}",
    );
    let lockouts = metric(
        &server,
        "viva_lockouts_total{secret=\"pin\",scope=\"caller\"}",
    );
    eprintln!("PINs checked {checked}, refused unchecked {refused}, lock-outs {lockouts}");
    assert_eq!(
        checked, FAILURES_PER_CALLER,
        "only the free guesses were checked"
    );
    assert_eq!(refused, 2_000 + 2 - FAILURES_PER_CALLER);
    assert_eq!(lockouts, 1);
    assert_eq!(
        metric(&server, "viva_auth_failures_total{secret=\"credential\"}"),
        11,
        "ten wrong tokens in the URL and one as a parameter"
    );
    assert_eq!(
        tokio::task::block_in_place(|| statuses(&server)),
        [("scheduled".to_owned(), 200)].into(),
        "every interview is still scheduled"
    );
    // The log of the lock-out, and no candidate data, in the metrics.
    let metrics =
        blocking(&|| Value::from(server.request("GET", "/metrics", None, &[], None).text()));
    for (id, pin) in &interviews {
        let text = metrics.as_str().unwrap();
        assert!(!text.contains(id.as_str()) && !text.contains(pin.as_str()));
    }
    assert!(!metrics.as_str().unwrap().contains("Candidate 1"));

    // The real candidate, calling from elsewhere, still gets in.
    let (id, pin) = &interviews[7];
    let joined = stream_attempt(
        &with_token,
        ip("127.0.0.1"),
        json!({ "pin": pin, "caller": "+15550100" }),
    )
    .await;
    assert_eq!(joined, StreamEnd::Joined);
    let interview = blocking(&|| server.get(&format!("/api/v1/interviews/{id}")).json());
    assert_ne!(interview["status"], "scheduled", "{interview}");
    let counts = tokio::task::block_in_place(|| statuses(&server));
    assert_eq!(counts.get("scheduled"), Some(&199), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_together_get_no_more_than_the_hourly_guesses() {
    let server = tokio::task::block_in_place(|| {
        TestServer::start("security-global", &[("VIVA_PIN_FAILURES_PER_HOUR", "20")])
    });
    let interviews = tokio::task::block_in_place(|| schedule_many(&server, 10));
    // 300 wrong PINs, each from a different caller number (a CPaaS passes the caller's
    // number; an attacker can spoof it), and 300 from different addresses.
    let url = server.stream_url();
    let mut ends = stream_attempts(
        &url,
        ip("127.0.0.2"),
        (0..300).map(
            |n| json!({ "pin": unused_pin(n, &interviews), "caller": format!("+1555{n:07}") }),
        ),
    )
    .await;
    for n in 0..30 {
        let from = ip(&format!("127.0.1.{}", n + 1));
        ends.push(
            stream_attempt(
                &url,
                from,
                json!({ "pin": unused_pin(1_000 + n, &interviews) }),
            )
            .await,
        );
    }
    assert!(ends.iter().all(|e| *e == StreamEnd::Closed));
    let checked = metric(&server, "viva_auth_failures_total{secret=\"pin\"}");
    let global = metric(
        &server,
        "viva_lockouts_total{secret=\"pin\",scope=\"global\"}",
    );
    eprintln!("330 callers guessing: {checked} PINs checked, global lock-outs {global}");
    assert_eq!(checked, 20, "no more than the hour's budget was checked");
    assert_eq!(global, 1);
    // While the budget is spent, even the right PIN waits (a denial of service, never a way in).
    let right = stream_attempt(
        &url,
        ip("127.0.0.9"),
        json!({ "pin": interviews[0].1, "caller": "+15559999999" }),
    )
    .await;
    assert_eq!(right, StreamEnd::Closed);
    assert_eq!(
        tokio::task::block_in_place(|| statuses(&server)),
        [("scheduled".to_owned(), 10)].into()
    );
}

#[test]
fn guessing_pins_over_sip_opens_no_interview() {
    // INVITEs are let through at any rate here, so every call reaches the PIN prompt: the
    // per-address INVITE rate is tested on its own (transport-sip's robustness tests).
    let server = TestServer::start(
        "security-sip",
        &[
            ("VIVA_SERVER_REJOIN_GRACE_SECS", "2"),
            ("VIVA_SIP_REQUESTS_PER_SECOND_PER_SOURCE", "1000"),
            ("VIVA_SIP_REQUEST_BURST_PER_SOURCE", "1000"),
        ],
    );
    let interviews = schedule_many(&server, 50);
    let target = server.sip_udp.expect("SIP over UDP is on");
    let scratch = scratch_dir("security-sip");

    // 700 calls from one address, 35 a second, each typing three wrong PINs as SIP INFO
    // digits: 2,100 guesses. After five wrong PINs the address is locked out: later calls are
    // told so and hung up on, their keys never checked.
    let started = Instant::now();
    let mut args = pin_keys(&unused_pin(1, &interviews));
    args.extend(
        ["-m", "700", "-r", "35", "-l", "200", "-timeout", "150s"]
            .iter()
            .map(|s| s.to_string()),
    );
    let flood = sipp::call(
        "uac_wrong_pin.xml",
        scratch.path(),
        Transport::Udp,
        target,
        &args,
    );
    let output = flood.finishes(Duration::from_secs(180));
    let (succeeded, failed) = final_counts(&output);
    eprintln!(
        "700 guessing calls in {:.1} s: {succeeded} went through the scenario, {failed} were \
         hung up on while locked out",
        started.elapsed().as_secs_f64()
    );
    let checked = metric(&server, "viva_auth_failures_total{secret=\"pin\"}");
    let refused = metric(
        &server,
        "viva_auth_refused_total{secret=\"pin\",scope=\"caller\"}",
    );
    eprintln!("over SIP: PINs checked {checked}, refused unchecked {refused}");
    assert_eq!(checked, FAILURES_PER_CALLER);
    assert!(
        refused + checked >= 650,
        "most calls reached the PIN prompt: {refused} refused"
    );
    assert_eq!(
        metric(
            &server,
            "viva_lockouts_total{secret=\"pin\",scope=\"caller\"}"
        ),
        1
    );

    // The right PIN from the locked-out address opens nothing either.
    // Each caller stays 8 s after typing the PIN: past the "your interview starts now" prompt
    // (a caller who hangs up during it never started the interview).
    let (id, pin) = &interviews[3];
    let mut args = pin_keys(pin);
    args.extend(["-d".to_owned(), "8000".to_owned()]);
    std::fs::write(scratch.path().join("speech.ul"), vec![0xFF_u8; 64_000]).unwrap();
    let locked = sipp::call(
        "uac_info_dtmf.xml",
        scratch.path(),
        Transport::Udp,
        target,
        &args,
    );
    let _ = locked.finishes(Duration::from_secs(60));
    assert_eq!(
        statuses(&server),
        [("scheduled".to_owned(), 50)].into(),
        "every interview is still scheduled"
    );

    // A caller from another address with the right PIN is interviewed.
    let legit = sipp::call_from(
        "uac_info_dtmf.xml",
        scratch.path(),
        Transport::Udp,
        target,
        ip("127.0.0.2"),
        &args,
    );
    let joined =
        server.wait_for_interview(id, Duration::from_secs(40), |i| i["status"] != "scheduled");
    assert_ne!(joined["status"], "failed", "{joined}");
    let _ = legit.finishes(Duration::from_secs(60));
    let counts = statuses(&server);
    assert_eq!(counts.get("scheduled"), Some(&49), "{counts:?}");
}

#[test]
fn the_api_bounds_keys_bodies_and_fields() {
    let server = TestServer::start(
        "security-api",
        &[("VIVA_SERVER_METRICS_TOKEN", "metrics-secret")],
    );
    // Wrong keys from one address: ten are answered 401, then the address waits (429) and
    // even the right key is not checked; other addresses are not affected.
    let from = ip("127.0.0.2");
    let mut codes = Vec::new();
    for n in 0..14 {
        codes.push(server.request_from(
            from,
            "GET",
            "/api/v1/interviews",
            Some(&format!("guess-{n}")),
            &[],
            None,
        ));
    }
    let statuses: Vec<u16> = codes.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 4], "{statuses:?}");
    let locked = &codes[12];
    assert_eq!(locked.error_code(), "too_many_attempts");
    let wait: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let right_key =
        server.request_from(from, "GET", "/api/v1/interviews", Some(API_KEY), &[], None);
    assert_eq!(right_key.status, 429);
    assert_eq!(server.get("/api/v1/interviews").status, 200);

    // Bodies: at most 64 KiB, JSON, with bounded fields; every refusal in the JSON format.
    // A 2 MB candidate name: refused from its Content-Length, before the body is read (the
    // client asks first, as curl does for large bodies).
    let target = server.base.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /api/v1/interviews HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\
         Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    let too_large = server.exchange(ip("127.0.0.1"), head.as_bytes());
    assert_eq!(too_large.status, 413, "{}", too_large.text());
    assert_eq!(too_large.error_code(), "body_too_large");
    // Sent with no length up front (chunked), it is cut off while read: 413 as well. (One
    // chunk just over the limit, and no end: everything sent is read before the answer.)
    let huge_name = "A".repeat(2 * 1024 * 1024);
    let body = json!({ "job": "backend-developer", "candidate": { "name": huge_name } });
    let chunk = 64 * 1024 + 1;
    let chunked = format!(
        "POST /api/v1/interviews HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\
         Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{chunk:x}\r\n{}\r\n",
        &body.to_string()[..chunk]
    );
    let cut_off = server.exchange(ip("127.0.0.1"), chunked.as_bytes());
    assert_eq!(cut_off.status, 413, "{}", cut_off.text());
    let long_name = json!({ "job": "backend-developer", "candidate": { "name": "B".repeat(201) } });
    let refused = server.post("/api/v1/interviews", &long_name);
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["field"], "candidate.name");
    let fine = json!({ "job": "backend-developer", "candidate": { "name": "C".repeat(200) } });
    assert_eq!(server.post("/api/v1/interviews", &fine).status, 201);
    let not_json = server.request(
        "POST",
        "/api/v1/interviews",
        Some(API_KEY),
        &[("Content-Type", "text/plain")],
        Some(fine.to_string()),
    );
    assert_eq!(not_json.status, 415, "{}", not_json.text());
    assert_eq!(not_json.error_code(), "unsupported_media_type");
    let long_job = json!({ "job": "j".repeat(500), "candidate": { "name": "D" } });
    assert_eq!(server.post("/api/v1/interviews", &long_job).status, 400);

    // /metrics wants its token.
    let anonymous = server.request("GET", "/metrics", None, &[], None);
    assert_eq!(anonymous.status, 401);
    let scraped = server.request("GET", "/metrics", Some("metrics-secret"), &[], None);
    assert_eq!(scraped.status, 200);
    assert!(scraped.text().contains("viva_auth_failures_total"));
    assert!(
        !scraped.text().contains("CCCC"),
        "no candidate data in the metrics"
    );
}
