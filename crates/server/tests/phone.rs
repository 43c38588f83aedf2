//! Phone interviews end to end against a real `viva serve`, with real SIP peers on loopback:
//! sipp calls in over UDP and TCP, types the interview PIN (SIP INFO, RFC 4733), speaks
//! recorded sentences as RTP and hangs up; a wrong PIN and a CANCEL are turned away politely;
//! the server dials sipp phones that answer and talk, are busy, or ring unanswered; baresip
//! calls in with RFC 4733 keys; a WebSocket client plays a CPaaS media stream, and another
//! goes on with its answer over the interviewer's reply; and a server
//! with room for one interview turns every other way in away while its call goes on. Each test
//! checks what the recruiter sees through the API: the status, the transcript's words, the
//! recording, the report, the dial status.
//!
//! The sipp scenarios are in tests/sipp/; the audio, key presses and logs of each call go to a
//! scratch directory (sipp's and baresip's working directory), removed afterwards. Peers run
//! as child processes with a deadline and are killed by PID when it passes, so a peer that
//! hangs fails its test instead of hanging it. Set VIVA_TEST_SERVER_LOG=info to see the
//! server's log.
//!
//! Needs sipp 3.6 (`sip-tester`, with its dtmf_2833 pcaps), baresip 1.0, sox and ffprobe.
//! sipp plays RFC 4733 key presses from pcaps through a raw socket: that test needs root or
//! CAP_NET_RAW.

#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/s3.rs"]
mod s3;
#[path = "support/server.rs"]
mod server;
#[path = "support/sipp.rs"]
mod sipp;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use proxy::Haproxy;
use s3::S3Server;
use serde_json::{Value, json};
use server::{TestServer, candidate_text, words};
use sipp::{Transport, pin_keys, sipp_dir};
use tokio_tungstenite::tungstenite::Message;
use viva_media::G711Law;
use viva_test_support::models::speech_clip;
use viva_test_support::net::{free_tcp_port, free_udp_port};
use viva_test_support::scratch_dir;
use viva_test_support::sipp::{Peer, Traced, tail, trace as sipp_trace};
use viva_test_support::video::probe;

/// Read speech with its transcript, from the speech set scripts/setup installs.
const CLIPS: [&str; 2] = ["librivox-0870", "librivox-0890"];
/// Silence between the sentences: long enough for the interviewer to take the turn.
const PAUSE: Duration = Duration::from_secs(3);
/// Silence before a caller who typed the PIN speaks: the rest of the PIN prompt, "your
/// interview starts now", and the interviewer's greeting and first question.
const LEAD_IN_AFTER_PIN: Duration = Duration::from_secs(18);
/// Silence before a candidate who was called (or bridged by a CPaaS) speaks: the greeting and
/// the first question.
const LEAD_IN: Duration = Duration::from_secs(14);
/// When the caller starts typing the PIN, after the answer (as the sipp scenarios do).
const KEYS_AFTER: Duration = Duration::from_millis(1_500);
/// 8 kHz mu-law: one byte per sample, 160 per 20 ms.
const PHONE_RATE: usize = 8_000;
const FRAME_BYTES: usize = 160;
/// mu-law's code for a zero sample.
const MULAW_SILENCE: u8 = 0xFF;
/// RFC 4733 telephone-event payload type the RFC 4733 scenario offers (and sipp's pcaps use).
const TELEPHONE_EVENT_PT: u8 = 101;

/// A phone caller who hangs up may call back within the grace period; the tests' callers
/// never do, so a short one ends their interviews soon after.
const PHONE_ENV: &[(&str, &str)] = &[("VIVA_SERVER_REJOIN_GRACE_SECS", "3")];
const REJOIN_GRACE_SECS: f64 = 3.0;

// --- Tests ------------------------------------------------------------------------------

#[test]
fn a_caller_over_udp_types_the_pin_as_sip_info_and_is_interviewed() {
    let server = TestServer::start("phone-udp-info", PHONE_ENV);
    let interview = server.schedule("Grace Hopper");
    let (id, pin) = id_and_pin(&interview);
    let scratch = scratch_dir("udp-info");
    let speech = Speech::from_clips(scratch.path(), LEAD_IN_AFTER_PIN);
    speech.write_mulaw(&scratch.path().join("speech.ul"));

    let started = Instant::now();
    let mut args = pin_keys(&pin);
    args.extend(stay_for(&speech));
    let sipp = sipp::call(
        "uac_info_dtmf.xml",
        scratch.path(),
        Transport::Udp,
        server.sip_udp.expect("SIP over UDP is on"),
        &args,
    );
    sipp.succeeds(call_deadline(&speech));
    let call_secs = started.elapsed().as_secs_f64();

    let ended = ended_interview(&server, &id);
    eprintln!("udp + SIP INFO: call {call_secs:.1} s, interview {ended}");
    assert_eq!(ended["status"], "abandoned", "the caller hung up: {ended}");
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    let heard = Heard::check(&server, &id, &speech, "udp + SIP INFO");
    heard.assert_most_words();
    check_reply_metrics(&server);
    check_recording(&server, &id, &ended, scratch.path());
    check_report(&server, &id);
}

#[test]
fn a_caller_over_tcp_types_the_pin_as_rfc_4733_events_and_is_interviewed() {
    let server = TestServer::start("phone-tcp-4733", PHONE_ENV);
    let interview = server.schedule("Alan Turing");
    let (id, pin) = id_and_pin(&interview);
    let scratch = scratch_dir("tcp-4733");
    let speech = Speech::from_clips(scratch.path(), LEAD_IN_AFTER_PIN);
    speech.write_mulaw(&scratch.path().join("speech.ul"));
    write_key_presses(scratch.path(), &pin);

    let scenario = std::fs::read_to_string(sipp_dir().join("uac_rfc4733_dtmf.xml")).unwrap();
    assert!(
        scenario.contains("m=audio [media_port] RTP/AVP 0 101")
            && scenario.contains("a=rtpmap:101 telephone-event/8000"),
        "the scenario must offer telephone-event/8000 as payload type 101"
    );

    let started = Instant::now();
    let sipp = sipp::call(
        "uac_rfc4733_dtmf.xml",
        scratch.path(),
        Transport::Tcp,
        server.sip_tcp.expect("SIP over TCP is on"),
        &stay_for(&speech),
    );
    let messages = sipp.succeeds(call_deadline(&speech));
    let call_secs = started.elapsed().as_secs_f64();
    // What went over the wire: the offer with telephone-event 101, over TCP.
    assert!(
        messages.contains("Via: SIP/2.0/TCP")
            && messages.contains("a=rtpmap:101 telephone-event/8000"),
        "sipp did not send the RFC 4733 offer over TCP:\n{messages}"
    );

    let ended = ended_interview(&server, &id);
    eprintln!("tcp + RFC 4733: call {call_secs:.1} s, interview {ended}");
    assert_eq!(ended["status"], "abandoned", "the caller hung up: {ended}");
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    let heard = Heard::check(&server, &id, &speech, "tcp + RFC 4733");
    heard.assert_most_words();
    check_reply_metrics(&server);
    check_recording(&server, &id, &ended, scratch.path());
    check_report(&server, &id);
}

#[test]
fn a_wrong_pin_three_times_gets_a_goodbye_and_a_bye() {
    let server = TestServer::start("phone-wrong-pin", PHONE_ENV);
    let interview = server.schedule("Mallory");
    let (id, pin) = id_and_pin(&interview);
    let scratch = scratch_dir("wrong-pin");
    // The only interview has the right PIN, so any other is unknown.
    let wrong = wrong_pin(&pin);

    let started = Instant::now();
    let sipp = sipp::call(
        "uac_wrong_pin.xml",
        scratch.path(),
        Transport::Udp,
        server.sip_udp.expect("SIP over UDP is on"),
        &pin_keys(&wrong),
    );
    // The scenario succeeds only when the server hangs up (its BYE, answered 200).
    let messages = sipp.succeeds(Duration::from_secs(60));
    eprintln!(
        "wrong PIN: the server hung up {:.1} s into the call",
        started.elapsed().as_secs_f64()
    );
    let trace = sipp_trace(&messages);
    let infos: Vec<&Traced> = trace
        .iter()
        .filter(|m| m.sent && m.first_line.starts_with("INFO "))
        .collect();
    assert!(
        infos.len() >= 30,
        "three wrong PINs of ten keys were typed:\n{messages}"
    );
    let bye = trace
        .iter()
        .find(|m| !m.sent && m.first_line.starts_with("BYE "))
        .expect("the server's BYE");
    // Between the last key and the BYE, the goodbye prompt plays in real time.
    let goodbye_secs = (bye.at - infos.last().unwrap().at).rem_euclid(86_400.0);
    eprintln!("wrong PIN: BYE {goodbye_secs:.1} s after the third wrong PIN");
    assert!(
        goodbye_secs >= 3.0,
        "the server hung up {goodbye_secs:.1} s after the last wrong PIN: no goodbye was said"
    );

    let after = server.get(&format!("/api/v1/interviews/{id}")).json();
    assert_eq!(after["status"], "scheduled", "{after}");
    assert!(after["started_at"].is_null(), "{after}");
    assert_eq!(
        server.request("GET", "/healthz", None, &[], None).status,
        200
    );
}

#[test]
fn a_call_cancelled_while_ringing_gets_487_and_the_server_stays_healthy() {
    let server = TestServer::start("phone-cancel", PHONE_ENV);
    let sip = server.sip_udp.expect("SIP over UDP is on");
    let scratch = scratch_dir("cancel");

    let messages = sipp::call("uac_cancel.xml", scratch.path(), Transport::Udp, sip, &[])
        .succeeds(Duration::from_secs(20));
    assert!(
        messages.contains("SIP/2.0 487"),
        "no 487 for the INVITE:\n{messages}"
    );
    // A cancelled call leaves nothing behind: SIP still answers, no call is live.
    sipp::call("uac_options.xml", scratch.path(), Transport::Udp, sip, &[])
        .succeeds(Duration::from_secs(10));
    sipp::call(
        "uac_options.xml",
        scratch.path(),
        Transport::Tcp,
        server.sip_tcp.expect("SIP over TCP is on"),
        &[],
    )
    .succeeds(Duration::from_secs(10));
    assert_eq!(
        server.request("GET", "/healthz", None, &[], None).status,
        200
    );
    let metrics = server.request("GET", "/metrics", None, &[], None).text();
    assert!(metrics.contains("viva_calls_active 0"), "{metrics}");
}

#[test]
fn the_server_dials_a_candidate_who_answers_and_talks() {
    let server = TestServer::start("phone-dial-answer", PHONE_ENV);
    let scratch = scratch_dir("dial-answer");
    let speech = Speech::from_clips(scratch.path(), LEAD_IN);
    speech.write_mulaw(&scratch.path().join("speech.ul"));
    let port = free_udp_port();
    let phone = sipp::answer(
        "uas_answer_speak.xml",
        scratch.path(),
        port,
        &stay_for(&speech),
    );
    let id = schedule_with_phone(&server, "Margaret Hamilton", port);

    let started = Instant::now();
    let seen = dial(&server, &id, Duration::from_secs(20), |s| s == "answered");
    assert_eq!(
        seen,
        ["dialing", "ringing", "answered"],
        "dial status went {seen:?}"
    );
    phone.succeeds(call_deadline(&speech));
    let call_secs = started.elapsed().as_secs_f64();

    let ended = ended_interview(&server, &id);
    eprintln!("outbound: call {call_secs:.1} s, interview {ended}");
    assert_eq!(
        ended["status"], "abandoned",
        "the candidate hung up: {ended}"
    );
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    assert_eq!(ended["dial"]["status"], "answered", "{ended}");
    let heard = Heard::check(&server, &id, &speech, "outbound");
    heard.assert_most_words();
    check_reply_metrics(&server);
    check_recording(&server, &id, &ended, scratch.path());
}

#[test]
fn a_busy_candidate_is_reported_busy() {
    let server = TestServer::start("phone-dial-busy", PHONE_ENV);
    let scratch = scratch_dir("dial-busy");
    let port = free_udp_port();
    let phone = sipp::answer("uas_busy.xml", scratch.path(), port, &[]);
    let id = schedule_with_phone(&server, "Busy Bee", port);

    let seen = dial(&server, &id, Duration::from_secs(20), is_final_dial_status);
    // The phone's 486 can come back before the dial request's reply is written, so the reply
    // may already say busy.
    assert!(
        seen == ["dialing", "busy"] || seen == ["busy"],
        "dial status went {seen:?}"
    );
    phone.succeeds(Duration::from_secs(10));
    let after = server.get(&format!("/api/v1/interviews/{id}")).json();
    assert_eq!(after["status"], "scheduled", "{after}");

    // Without a number there is nothing to dial.
    let unreachable = server.schedule("No Phone")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = server.post(
        &format!("/api/v1/interviews/{unreachable}/dial"),
        &json!({}),
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_eq!(refused.error_code(), "no_phone");
}

#[test]
fn a_candidate_who_does_not_pick_up_is_reported_no_answer() {
    let server = TestServer::start(
        "phone-dial-no-answer",
        &[("VIVA_SIP_RING_TIMEOUT_SECS", "4")],
    );
    let scratch = scratch_dir("dial-no-answer");
    let port = free_udp_port();
    let phone = sipp::answer("uas_ring_no_answer.xml", scratch.path(), port, &[]);
    let id = schedule_with_phone(&server, "Nobody Home", port);

    let started = Instant::now();
    let seen = dial(&server, &id, Duration::from_secs(20), is_final_dial_status);
    let rang_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        seen,
        ["dialing", "ringing", "no_answer"],
        "dial status went {seen:?}"
    );
    assert!(
        (3.5..10.0).contains(&rang_secs),
        "gave up after {rang_secs:.1} s with a 4 s ring timeout"
    );
    // The phone saw the CANCEL, answered 200 and 487, and got the ACK.
    phone.succeeds(Duration::from_secs(10));
    let after = server.get(&format!("/api/v1/interviews/{id}")).json();
    assert_eq!(after["status"], "scheduled", "{after}");
}

#[test]
fn baresip_calls_in_and_types_the_pin_as_rfc_4733_events() {
    let server = TestServer::start("phone-baresip", PHONE_ENV);
    let interview = server.schedule("Ada Lovelace");
    let (id, pin) = id_and_pin(&interview);
    let scratch = scratch_dir("baresip");
    // baresip starts its audio file when the call is answered; the keys come during it.
    let speech = Speech::from_clips(scratch.path(), LEAD_IN_AFTER_PIN + KEYS_AFTER);
    let sip = server.sip_udp.expect("SIP over UDP is on");
    let started = Instant::now();
    let mut phone = Baresip::start(scratch.path(), &speech);
    phone.command("dial", &format!("sip:interview@{sip}"));
    phone.wait_for_event("CALL_ESTABLISHED", Duration::from_secs(15));
    std::thread::sleep(KEYS_AFTER);
    for key in pin.chars() {
        // One press and release per key, as a person types.
        phone.command("sndcode", &key.to_string());
        std::thread::sleep(Duration::from_millis(300));
    }
    server.wait_for_interview(&id, Duration::from_secs(20), |i| {
        i["status"] == "in_progress"
    });
    // baresip hangs up when its audio file ends.
    phone.wait_for_event("CALL_CLOSED", speech.duration() + Duration::from_secs(20));
    let call_secs = started.elapsed().as_secs_f64();
    let log = phone.quit();
    assert!(
        log.contains("send DTMF digit"),
        "baresip sent no RFC 4733 keys:\n{log}"
    );

    let ended = ended_interview(&server, &id);
    eprintln!("baresip: call {call_secs:.1} s, interview {ended}");
    assert_eq!(ended["status"], "abandoned", "the caller hung up: {ended}");
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    let heard = Heard::check(&server, &id, &speech, "baresip");
    heard.assert_most_words();
    check_reply_metrics(&server);
    check_recording(&server, &id, &ended, scratch.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpaas_media_stream_carries_an_interview() {
    let blocking = |f: &dyn Fn() -> Value| tokio::task::block_in_place(f);
    let server = tokio::task::block_in_place(|| TestServer::start("phone-stream", PHONE_ENV));
    let interview = blocking(&|| server.schedule("Katherine Johnson"));
    let (id, pin) = id_and_pin(&interview);
    let url = server.stream_url();
    let scratch = scratch_dir("stream");
    let speech = Speech::from_clips(scratch.path(), LEAD_IN);

    // An unknown PIN: the stream is closed.
    let (mut unknown, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    unknown
        .send(Message::text(connected_event()))
        .await
        .unwrap();
    unknown
        .send(Message::text(start_event("MZunknown", &wrong_pin(&pin))))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = unknown.next().await {
            match message {
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(Message::Text(text)) => {
                    assert!(
                        !text.contains("\"media\""),
                        "an unknown PIN got audio: {text}"
                    )
                }
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stream with an unknown PIN stayed open");

    // The real call: setup, then 20 ms of mu-law every 20 ms, with junk mixed in early on.
    let (log, call_length) =
        call_over_media_stream(&url, "MZcall", &pin, &speech, junk_frames()).await;
    let call_secs = call_length.as_secs_f64();
    eprintln!("media stream: call {call_secs:.1} s, server sent {log:?}");
    assert!(
        log.media >= 100,
        "the interviewer barely spoke: {} media messages",
        log.media
    );
    assert!(
        !log.marks.is_empty(),
        "no mark after the interviewer's speech"
    );
    assert!(
        log.foreign_sids.is_empty(),
        "messages for other streams: {:?}",
        log.foreign_sids
    );
    assert!(
        log.bad_payloads == 0,
        "{} media payloads were not 20 ms of mu-law",
        log.bad_payloads
    );
    let first_audio = log.first_media_at.expect("media arrived");
    assert!(
        first_audio < Duration::from_secs(8),
        "the interviewer started speaking {first_audio:?} into the call"
    );

    let ended = tokio::task::block_in_place(|| ended_interview(&server, &id));
    eprintln!("media stream interview: {ended}");
    assert_eq!(ended["status"], "abandoned", "the stream stopped: {ended}");
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    let heard = tokio::task::block_in_place(|| Heard::check(&server, &id, &speech, "media stream"));
    heard.assert_most_words();
    tokio::task::block_in_place(|| check_reply_metrics(&server));
}

/// A CPaaS caller who answers, stays silent until the interviewer's reply starts, and then
/// goes on over it, as a candidate does when a thinking pause was taken for the end of the
/// answer: twice, once before a word of the reply is heard and once after its first words.
/// The reply stops, the interviewer takes what follows as the rest of the answer (it does
/// not say "No problem." and repeat the line it was cut off in), and the transcript keeps
/// the answer together: the rest is filed under the question its beginning answered, after
/// the few words heard of the reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_goes_on_over_the_reply_keeps_one_answer() {
    let server = tokio::task::block_in_place(|| TestServer::start("phone-resume", PHONE_ENV));
    let interview = tokio::task::block_in_place(|| server.schedule("Grace Hopper"));
    let (id, pin) = id_and_pin(&interview);
    let scratch = scratch_dir("resume");
    let clip = |name| phone_clip(scratch.path(), name).0;
    // Each answer: its beginning, its rest, and how far into the reply the rest starts.
    let answers = [
        (clip("librivox-0870"), clip("librivox-0890"), 300),
        (clip("librivox-0920"), clip("librivox-0930"), 700),
    ];

    let (socket, _) = tokio_tungstenite::connect_async(server.stream_url())
        .await
        .unwrap();
    let (mut sink, mut stream) = socket.split();
    sink.send(Message::text(connected_event())).await.unwrap();
    sink.send(Message::text(start_event("MZresume", &pin)))
        .await
        .unwrap();
    let started = Instant::now();
    let log = Arc::new(Mutex::new(StreamLog {
        stream_sid: "MZresume".to_owned(),
        ..StreamLog::default()
    }));
    let reader = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            while let Some(Ok(Message::Text(text))) = stream.next().await {
                let event: Value = serde_json::from_str(&text).unwrap();
                log.lock().unwrap().note(&event, started.elapsed());
            }
        })
    };
    // In 20 ms frames (the server sends its audio in real time): per answer, silence until
    // the interviewer's line has played, the beginning, silence until the reply starts, the
    // rest a little into it; then silence until the last reply has played.
    let played_out = |log: &StreamLog, now: Duration| {
        log.last_media_at
            .is_some_and(|at| now >= at + Duration::from_millis(1_500))
    };
    let mut outgoing: Vec<u8> = Vec::new();
    let (mut answer, mut step) = (0, 0);
    let mut said_at = Duration::ZERO;
    let mut reply_at = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for chunk in 0.. {
        tick.tick().await;
        let now = started.elapsed();
        assert!(
            now < Duration::from_secs(120),
            "the call got stuck at answer {answer}, step {step}"
        );
        let log = log.lock().unwrap().clone();
        let replied = log.last_media_at.is_some_and(|at| at > said_at);
        match step {
            0 if answer == answers.len() && played_out(&log, now) => break,
            0 if answer < answers.len() && played_out(&log, now) => {
                outgoing = answers[answer].0.clone();
                step = 1;
            }
            1 if outgoing.is_empty() => {
                said_at = now;
                step = 2;
            }
            2 if replied => {
                let at = *reply_at.get_or_insert(now);
                if now >= at + Duration::from_millis(answers[answer].2) {
                    outgoing = answers[answer].1.clone();
                    reply_at = None;
                    step = 3;
                }
            }
            3 if outgoing.is_empty() => {
                said_at = now;
                step = 4;
            }
            // The reply to the whole answer has begun: wait for it to play out.
            4 if replied => {
                answer += 1;
                step = 0;
            }
            _ => {}
        }
        let frame: Vec<u8> = if outgoing.is_empty() {
            silence(Duration::from_millis(20))
        } else {
            outgoing.drain(..FRAME_BYTES.min(outgoing.len())).collect()
        };
        sink.send(Message::text(media_event("MZresume", chunk, &frame)))
            .await
            .unwrap();
    }
    sink.send(Message::text(stop_event("MZresume")))
        .await
        .unwrap();
    let _ = sink.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let clears = log.lock().unwrap().clears;
    assert!(
        clears >= 1,
        "no reply was stopped: the caller never talked over one"
    );

    tokio::task::block_in_place(|| ended_interview(&server, &id));
    let transcript = tokio::task::block_in_place(|| {
        server
            .get(&format!("/api/v1/interviews/{id}/transcript"))
            .json()
    });
    eprintln!("transcript: {transcript}");
    let turns = transcript["turns"].as_array().expect("turns");
    let candidate: Vec<usize> = (0..turns.len())
        .filter(|&i| turns[i]["speaker"] == "candidate")
        .collect();
    assert_eq!(candidate.len(), 4, "two answers in two parts: {transcript}");
    let mut words_heard = Vec::new();
    for parts in candidate.chunks(2) {
        let (beginning, rest) = (&turns[parts[0]], &turns[parts[1]]);
        // Between the parts, what was heard of the reply, if a word was.
        for reply in &turns[parts[0] + 1..parts[1]] {
            assert_eq!(
                reply["interrupted"], true,
                "a reply was heard out: {transcript}"
            );
            let heard = reply["text"].as_str().unwrap_or("");
            words_heard.push(heard.split_whitespace().count());
        }
        assert_eq!(
            rest["question_id"], beginning["question_id"],
            "the rest of an answer is filed under another question: {transcript}"
        );
        let reply = turns[parts[1] + 1..]
            .iter()
            .find(|t| t["speaker"] == "interviewer")
            .expect("the interviewer replied to the whole answer");
        assert!(
            !reply["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("No problem."),
            "the rest was taken as a reaction to the reply it talked over: {transcript}"
        );
    }
    assert!(
        words_heard.iter().all(|n| (1..=4).contains(n)),
        "the caller heard none or more than the first words of a reply: {words_heard:?}"
    );
    assert!(
        !words_heard.is_empty(),
        "the second rest came before a word of its reply was heard: {transcript}"
    );
}

/// With `[storage] kind = "s3"` an interview's files live in a real S3 server (s3s-fs): while
/// the call runs what it wrote is copied up every second; once it ended each file is up whole,
/// no piece and nothing in the node's spool is left, and the API reads the transcript, the
/// report and (by byte range, as players seek) the recording back from the store. A node
/// killed mid-call whose disk is gone with it: the interview is finished from what reached the
/// store, abandoned with its transcript and recording up to seconds before the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interview_files_live_in_object_storage_and_outlive_the_node() {
    let scratch = scratch_dir("phone-s3");
    let Some(s3) = S3Server::start(&scratch.path().join("s3")) else {
        return;
    };
    let storage = s3.storage_env();
    let env: Vec<(&str, &str)> = PHONE_ENV
        .iter()
        .copied()
        .chain(storage.iter().map(|(k, v)| (*k, v.as_str())))
        .collect();
    let server = tokio::task::block_in_place(|| TestServer::start("phone-s3", &env));
    let speech = Speech::from_clips(scratch.path(), LEAD_IN);
    let url = server.stream_url();

    // A whole call, with a look at the bucket while it runs.
    let interview = tokio::task::block_in_place(|| server.schedule("Ada Lovelace"));
    let (id, pin) = id_and_pin(&interview);
    let folder = format!("interviews/{id}/");
    let ((log, _), during) = tokio::join!(
        call_over_media_stream(&url, "MZs3", &pin, &speech, Vec::new()),
        async {
            tokio::time::sleep(LEAD_IN + Duration::from_secs(4)).await;
            s3.objects(&folder)
        }
    );
    assert!(log.media >= 100, "the interviewer barely spoke: {log:?}");
    eprintln!("in the bucket while the call ran: {during:?}");
    for growing in ["transcript.jsonl.parts/", "recording.wav.parts/"] {
        assert!(
            during.iter().any(|(key, _)| key.contains(growing)),
            "no piece of {growing} copied up while the call ran: {during:?}"
        );
    }
    let ended = tokio::task::block_in_place(|| ended_interview(&server, &id));
    assert_eq!(ended["status"], "abandoned", "{ended}");
    let kept = s3.objects(&folder);
    let names: Vec<&str> = kept
        .iter()
        .map(|(key, _)| key.trim_start_matches(&folder))
        .collect();
    assert_eq!(
        names,
        ["recording.wav", "report.json", "transcript.jsonl"],
        "the ended interview's objects: {kept:?}"
    );
    let spool = server.data_dir.join("interviews").join(&id);
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left in the node's spool: {left:?}");

    tokio::task::block_in_place(|| {
        let heard = Heard::check(&server, &id, &speech, "from object storage");
        heard.assert_most_words();
        let report = server.get(&format!("/api/v1/interviews/{id}/report"));
        assert_eq!(report.status, 200, "{}", report.text());
        assert_eq!(
            report.json()["candidate"],
            "Ada Lovelace",
            "{}",
            report.text()
        );
        let size = kept[0].1;
        let head = server.request(
            "GET",
            &format!("/api/v1/interviews/{id}/recording"),
            Some(server::API_KEY),
            &[("Range", "bytes=0-43")],
            None,
        );
        assert_eq!(head.status, 206, "{}", head.text());
        assert_eq!(head.body.len(), 44);
        assert_eq!(&head.body[..4], b"RIFF");
        assert_eq!(
            head.header("content-range"),
            Some(format!("bytes 0-43/{size}").as_str())
        );
        let tail = server.request(
            "GET",
            &format!("/api/v1/interviews/{id}/recording"),
            Some(server::API_KEY),
            &[("Range", "bytes=-100")],
            None,
        );
        assert_eq!(tail.status, 206);
        assert_eq!(tail.body.len(), 100);
        // A range past the end, and no key at all.
        let past = server.request(
            "GET",
            &format!("/api/v1/interviews/{id}/recording"),
            Some(server::API_KEY),
            &[("Range", "bytes=999999999-")],
            None,
        );
        assert_eq!(past.status, 416, "{}", past.text());
        assert_eq!(
            past.header("content-range"),
            Some(format!("bytes */{size}").as_str())
        );
        let stranger = server.request(
            "GET",
            &format!("/api/v1/interviews/{id}/recording"),
            None,
            &[],
            None,
        );
        assert_eq!(stranger.status, 401, "{}", stranger.text());
        check_recording(&server, &id, &ended, scratch.path());
    });

    // A node killed mid-call, its disk gone with it.
    let interview = tokio::task::block_in_place(|| server.schedule("Mary Somerville"));
    let (id, pin) = id_and_pin(&interview);
    let streaming = tokio::spawn(stream_until_cut_off(url.clone(), pin, speech.clone()));
    tokio::time::sleep(LEAD_IN + Duration::from_secs(12)).await;
    let killed_at = Instant::now();
    let mut server = server;
    tokio::task::block_in_place(|| server.kill());
    let _ = streaming.await;
    std::fs::remove_dir_all(server.data_dir.join("interviews").join(&id)).unwrap();
    let server = tokio::task::block_in_place(|| server.restart_after_exit());
    let ended = tokio::task::block_in_place(|| ended_interview(&server, &id));
    eprintln!(
        "the killed node's interview, finished {:.1} s after the kill: {ended}",
        killed_at.elapsed().as_secs_f64()
    );
    assert_eq!(ended["status"], "abandoned", "{ended}");
    assert_eq!(ended["end_reason"], "server_stopped", "{ended}");
    let recorded = ended["duration_ms"].as_f64().expect("a recorded length") / 1000.0;
    let call = (LEAD_IN + Duration::from_secs(12)).as_secs_f64();
    assert!(
        (call - 5.0..=call + 1.0).contains(&recorded),
        "{recorded:.1} s of a {call:.0} s call came back from the store"
    );
    let transcript = tokio::task::block_in_place(|| {
        server
            .get(&format!("/api/v1/interviews/{id}/transcript"))
            .json()
    });
    let turns = transcript["turns"].as_array().cloned().unwrap_or_default();
    assert!(
        turns.iter().any(|t| t["speaker"] == "interviewer")
            && !candidate_text(&transcript).trim().is_empty(),
        "what was said before the kill is lost: {transcript}"
    );
    assert_eq!(
        s3.objects(&format!("interviews/{id}/"))
            .iter()
            .filter(|(key, _)| key.contains(".parts/"))
            .count(),
        0,
        "pieces left after the interview was finished"
    );
}

/// A CPaaS caller streaming `speech` in real time until the server goes away.
async fn stream_until_cut_off(url: String, pin: String, speech: Speech) {
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(&url).await else {
        return;
    };
    let sid = "MZcutoff";
    let setup = [connected_event(), start_event(sid, &pin)];
    for event in setup {
        if socket.send(Message::text(event)).await.is_err() {
            return;
        }
    }
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for payload in speech.mulaw.chunks(FRAME_BYTES).cycle() {
        tick.tick().await;
        let media = json!({
            "event": "media",
            "media": { "track": "inbound", "payload": BASE64.encode(payload) },
            "streamSid": sid,
        });
        if socket.send(Message::text(media.to_string())).await.is_err() {
            return;
        }
        // Drain what the server sends, so its socket never backs up.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::ZERO, socket.next()).await {}
    }
}

/// With room for one interview (`server.max_calls = 1`), a live media-stream call holds the
/// seat; meanwhile every other way in is turned away cleanly: a second media stream hears the
/// "busy" prompt and is closed, a SIP INVITE gets 503 with Retry-After, the join page answers
/// 503 "try again in a few minutes", the dial API 503 `at_capacity`. The live call goes on
/// unaffected, and once it has ended the next call is let in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_capacity_new_calls_are_turned_away_and_the_live_call_goes_on() {
    let mut env = PHONE_ENV.to_vec();
    env.push(("VIVA_SERVER_MAX_CALLS", "1"));
    let server = tokio::task::block_in_place(|| TestServer::start("phone-capacity", &env));
    let blocking = |f: &dyn Fn() -> Value| tokio::task::block_in_place(f);
    let (live_id, live_pin) = id_and_pin(&blocking(&|| server.schedule("Katherine Johnson")));
    // The one turned away, with a phone to dial and a link to join by.
    let waiting = blocking(&|| {
        let id = schedule_with_phone(&server, "Dorothy Vaughan", free_udp_port());
        server.get(&format!("/api/v1/interviews/{id}")).json()
    });
    let (waiting_id, waiting_pin) = id_and_pin(&waiting);
    let join_path = waiting["join_url"]
        .as_str()
        .and_then(|url| url.strip_prefix(&server.base))
        .expect("a join link on this server")
        .to_owned();
    let url = server.stream_url();
    let scratch = scratch_dir("capacity");
    let speech = Speech::from_clips(scratch.path(), LEAD_IN);

    let live_call = {
        let (url, pin) = (url.clone(), live_pin.clone());
        let speech = speech.clone();
        tokio::spawn(async move {
            call_over_media_stream(&url, "MZcall", &pin, &speech, Vec::new()).await
        })
    };
    blocking(&|| {
        server.wait_for_interview(&live_id, Duration::from_secs(20), |i| {
            i["status"] == "in_progress"
        })
    });

    // A second media stream: the busy prompt, then the stream is closed.
    let (busy_audio, busy_closed) = turned_away_stream(&url, &waiting_pin).await;
    eprintln!(
        "turned-away stream: {:.1} s of audio, then closed after {busy_closed:.1?}",
        busy_audio.len() as f64 / PHONE_RATE as f64
    );
    assert!(
        busy_audio.len() >= 2 * PHONE_RATE,
        "a turned-away caller hears a prompt, not {} samples",
        busy_audio.len()
    );
    assert!(
        busy_closed.is_some(),
        "the turned-away stream was never closed"
    );

    // A SIP caller: 503 with Retry-After before the phone rings.
    let messages = tokio::task::block_in_place(|| {
        sipp::call(
            "uac_at_capacity.xml",
            scratch.path(),
            Transport::Udp,
            server.sip_udp.expect("SIP over UDP is on"),
            &[],
        )
        .succeeds(Duration::from_secs(20))
    });
    assert!(
        messages.contains("SIP/2.0 503") && messages.contains("Retry-After: 120"),
        "no 503 with Retry-After for the INVITE:\n{messages}"
    );

    // The browser: the join page asks to try again in a few minutes, as do its details and its
    // signalling.
    let page = blocking(&|| {
        let page = server.request("GET", &join_path, None, &[], None);
        assert_eq!(page.status, 503, "{}", page.text());
        assert_eq!(page.header("retry-after"), Some("120"));
        assert!(
            page.header("content-security-policy")
                .is_some_and(|csp| csp.contains("frame-ancestors 'none'")),
            "the busy page has the pages' security headers: {:?}",
            page.headers
        );
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        Value::from(page.text())
    });
    let page = page.as_str().unwrap();
    assert!(
        page.contains("try again in a few minutes") && !page.contains("candidate.js"),
        "{page}"
    );
    let details = tokio::task::block_in_place(|| {
        server.request("GET", &format!("{join_path}/details"), None, &[], None)
    });
    assert_eq!(details.status, 503, "{}", details.text());
    assert_eq!(details.error_code(), "at_capacity");
    assert_eq!(details.header("retry-after"), Some("120"));
    let signal = format!(
        "{}{join_path}/signal",
        server.base.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(&signal).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(
                response.headers().get("retry-after").map(|v| v.as_bytes()),
                Some(&b"120"[..])
            );
            let body = response.body().clone().unwrap_or_default();
            assert!(
                String::from_utf8_lossy(&body).contains("at_capacity"),
                "{body:?}"
            );
        }
        Err(e) => panic!("the signalling failed otherwise: {e}"),
        Ok(_) => panic!("the signalling took a browser call past capacity"),
    }

    // The recruiter's dial: refused at once, nothing dialled.
    let dialled = tokio::task::block_in_place(|| {
        server.post(&format!("/api/v1/interviews/{waiting_id}/dial"), &json!({}))
    });
    assert_eq!(dialled.status, 503, "{}", dialled.text());
    assert_eq!(dialled.error_code(), "at_capacity");
    assert_eq!(dialled.header("retry-after"), Some("120"));

    let turned_away = blocking(&|| {
        server
            .get(&format!("/api/v1/interviews/{waiting_id}"))
            .json()
    });
    assert_eq!(turned_away["status"], "scheduled", "{turned_away}");
    assert!(turned_away["dial"].is_null(), "{turned_away}");
    assert_metrics(
        &server,
        &[
            "viva_calls_max 1\n",
            "viva_calls_active 1\n",
            "viva_calls_refused_total{transport=\"media_stream\",reason=\"capacity\"} 1\n",
            "viva_calls_refused_total{transport=\"sip\",reason=\"capacity\"} 1\n",
            "viva_calls_refused_total{transport=\"dial\",reason=\"capacity\"} 1\n",
            // The page, and its signalling.
            "viva_calls_refused_total{transport=\"browser\",reason=\"capacity\"} 2\n",
        ],
    );

    // The live call went on as if nothing had happened.
    let (log, call_length) = live_call.await.unwrap();
    eprintln!(
        "live call: {:.1} s, server sent {log:?}",
        call_length.as_secs_f64()
    );
    assert!(log.media >= 100, "the interviewer barely spoke: {log:?}");
    let ended = tokio::task::block_in_place(|| ended_interview(&server, &live_id));
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    let heard =
        tokio::task::block_in_place(|| Heard::check(&server, &live_id, &speech, "live call"));
    heard.assert_most_words();
    let transcript = blocking(&|| {
        server
            .get(&format!("/api/v1/interviews/{live_id}/transcript"))
            .json()
    });
    let turns = transcript["turns"].as_array().unwrap();
    let interviewer_turns = turns
        .iter()
        .filter(|t| t["speaker"] == "interviewer")
        .count();
    assert!(
        interviewer_turns >= 3,
        "the interviewer greeted, asked and answered every answer: {transcript}"
    );

    // What the turned-away caller heard, in the server's own voice.
    let wav = scratch.path().join("busy.wav");
    write_mulaw_wav(&wav, &busy_audio);
    let said = tokio::task::block_in_place(|| transcribe(&wav)).to_lowercase();
    eprintln!("turned-away caller heard: {said}");
    assert!(
        said.contains("busy") && said.contains("few minutes"),
        "not the busy prompt: {said}"
    );

    // The seat is free again: the next call starts its interview.
    let (socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut sink, mut stream) = socket.split();
    sink.send(Message::text(connected_event())).await.unwrap();
    sink.send(Message::text(start_event("MZnext", &waiting_pin)))
        .await
        .unwrap();
    blocking(&|| {
        server.wait_for_interview(&waiting_id, Duration::from_secs(20), |i| {
            i["status"] == "in_progress"
        })
    });
    let greeting = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(text))) if text.contains("\"media\"") => return true,
                Some(Ok(_)) => {}
                _ => return false,
            }
        }
    })
    .await;
    assert_eq!(greeting, Ok(true), "the admitted call heard no interviewer");
    sink.send(Message::text(stop_event("MZnext")))
        .await
        .unwrap();
    let _ = sink.close().await;
}

/// Stopping a server (SIGTERM, as Kubernetes or systemd do) drains it: `/readyz` answers 503
/// while `/healthz` stays ok, SIP OPTIONS (a proxy's probe) and INVITEs get 503, a media-stream
/// caller hears the busy prompt, and the live interview goes on to its end with its transcript;
/// then the server exits by itself, successfully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_drains_new_calls_away_and_finishes_the_live_interview() {
    let mut env = PHONE_ENV.to_vec();
    env.push(("VIVA_SERVER_DRAIN_SECS", "600"));
    env.push(("VIVA_SERVER_TRUSTED_PROXIES", "[\"127.0.0.1\"]"));
    let mut server = tokio::task::block_in_place(|| TestServer::start("phone-drain", &env));
    // The live interview's media stream comes through HAProxy, as in a deployment.
    let proxy =
        tokio::task::block_in_place(|| Haproxy::start(server.base.trim_start_matches("http://")));
    let blocking = |f: &dyn Fn() -> Value| tokio::task::block_in_place(f);
    let (live_id, live_pin) = id_and_pin(&blocking(&|| server.schedule("Mary Jackson")));
    let (_, waiting_pin) = id_and_pin(&blocking(&|| server.schedule("Annie Easley")));
    let url = server.stream_url();
    let scratch = scratch_dir("drain");
    let speech = Speech::from_clips(scratch.path(), LEAD_IN);
    let live_call = {
        let url = url.replace(
            &server.base.replace("http://", "ws://"),
            &proxy.base.replace("http://", "ws://"),
        );
        let (pin, speech) = (live_pin.clone(), speech.clone());
        tokio::spawn(async move {
            call_over_media_stream(&url, "MZlive", &pin, &speech, Vec::new()).await
        })
    };
    blocking(&|| {
        server.wait_for_interview(&live_id, Duration::from_secs(20), |i| {
            i["status"] == "in_progress"
        })
    });
    // The interview is marked in progress a moment before its call is counted.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !metrics(&server).contains("viva_calls_active 1\n") {
        assert!(Instant::now() < deadline, "the live call was never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = blocking(&|| server.get("/readyz").json());
    assert_eq!(ready, json!({ "status": "ready" }));

    server.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    let draining = loop {
        let ready =
            tokio::task::block_in_place(|| server.request("GET", "/readyz", None, &[], None));
        if ready.status == 503 {
            break ready.json();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still answers {}",
            ready.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(draining, json!({ "status": "draining" }));
    let health = tokio::task::block_in_place(|| server.request("GET", "/healthz", None, &[], None));
    assert_eq!(health.status, 200, "a draining server is alive");
    // HAProxy's readiness check takes the node out: through the proxy, even the alive check
    // (200 from the node itself) now gets HAProxy's 503, "no server available".
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::task::block_in_place(|| proxy.status("/healthz")) != 503 {
        assert!(
            Instant::now() < deadline,
            "HAProxy still routes to the draining node"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sip = server.sip_udp.expect("SIP over UDP is on");
    tokio::task::block_in_place(|| {
        sipp::call(
            "uac_options_draining.xml",
            scratch.path(),
            Transport::Udp,
            sip,
            &[],
        )
        .succeeds(Duration::from_secs(20))
    });
    let messages = tokio::task::block_in_place(|| {
        sipp::call(
            "uac_at_capacity.xml",
            scratch.path(),
            Transport::Udp,
            sip,
            &[],
        )
        .succeeds(Duration::from_secs(20))
    });
    assert!(
        messages.contains("SIP/2.0 503") && messages.contains("Retry-After: 120"),
        "no 503 with Retry-After for the INVITE:\n{messages}"
    );
    let (busy_audio, busy_closed) = turned_away_stream(&url, &waiting_pin).await;
    assert!(
        busy_audio.len() >= 2 * PHONE_RATE && busy_closed.is_some(),
        "a caller turned away while draining hears the busy prompt ({} samples), then the stream closes ({busy_closed:?})",
        busy_audio.len()
    );
    assert_metrics(
        &server,
        &[
            "viva_draining 1\n",
            "viva_calls_active 1\n",
            "viva_calls_refused_total{transport=\"sip\",reason=\"draining\"} 1\n",
            "viva_calls_refused_total{transport=\"media_stream\",reason=\"draining\"} 1\n",
            "viva_calls_refused_total{transport=\"sip\",reason=\"capacity\"} 0\n",
        ],
    );
    assert!(
        server.exited().is_none(),
        "the server stopped during a live interview"
    );

    // The live interview goes on to its end through the proxy, and then the server stops by
    // itself.
    let (log, call_length) = live_call.await.unwrap();
    eprintln!(
        "live call: {:.1} s, server sent {log:?}",
        call_length.as_secs_f64()
    );
    assert!(log.media >= 100, "the interviewer barely spoke: {log:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.exited() {
            break status;
        }
        assert!(Instant::now() < deadline, "the drained server did not stop");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(status.success(), "the drained server exited with {status}");
    let server = tokio::task::block_in_place(|| server.restart_after_exit());
    let ended = tokio::task::block_in_place(|| ended_interview(&server, &live_id));
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    let heard =
        tokio::task::block_in_place(|| Heard::check(&server, &live_id, &speech, "drained call"));
    heard.assert_most_words();
}

// --- The candidate's speech -------------------------------------------------------------

/// What the candidate says on the phone: silence, then the clips with pauses, as 8 kHz
/// mu-law; and the words of each clip.
#[derive(Clone)]
struct Speech {
    mulaw: Vec<u8>,
    texts: Vec<String>,
}

impl Speech {
    /// `lead_in` of silence, then each of [`CLIPS`] followed by [`PAUSE`]; sox converts the
    /// clips to telephone audio.
    fn from_clips(scratch: &Path, lead_in: Duration) -> Speech {
        let mut mulaw = silence(lead_in);
        let mut texts = Vec::new();
        for name in CLIPS {
            let (clip, text) = phone_clip(scratch, name);
            mulaw.extend(clip);
            mulaw.extend(silence(PAUSE));
            texts.push(text);
        }
        Speech { mulaw, texts }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.mulaw.len() as f64 / PHONE_RATE as f64)
    }

    /// Raw mu-law, as sipp's `rtp_stream` sends it (sipp 3.6 streams a file's bytes as they
    /// are, so a WAV header would go out as noise).
    fn write_mulaw(&self, path: &Path) {
        std::fs::write(path, &self.mulaw).unwrap();
    }

    /// 16-bit 8 kHz WAV, as baresip's aufile source reads it.
    fn write_wav(&self, path: &Path) {
        write_mulaw_wav(path, &self.mulaw);
    }
}

/// The speech-set clip `name` as telephone mu-law (sox converts it), and its words.
fn phone_clip(scratch: &Path, name: &str) -> (Vec<u8>, String) {
    let wav = speech_clip(name);
    let converted = scratch.join(format!("{name}.ul"));
    let sox = Command::new("sox")
        .arg(&wav)
        .args(["-r", "8000", "-c", "1", "-t", "ul"])
        .arg(&converted)
        .output()
        .expect("sox runs");
    assert!(
        sox.status.success(),
        "sox: {}",
        String::from_utf8_lossy(&sox.stderr)
    );
    let text = std::fs::read_to_string(wav.with_extension("txt")).unwrap();
    (std::fs::read(&converted).unwrap(), text)
}

/// `mulaw` as a 16-bit 8 kHz WAV.
fn write_mulaw_wav(path: &Path, mulaw: &[u8]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: PHONE_RATE as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for sample in G711Law::MuLaw.decode(mulaw) {
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
}

/// What `viva transcribe` hears in an audio file, with the configured models.
fn transcribe(path: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(viva_test_support::models::repo_root())
        .arg("transcribe")
        .arg(path)
        .output()
        .expect("viva transcribe runs");
    assert!(
        output.status.success(),
        "viva transcribe: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn silence(length: Duration) -> Vec<u8> {
    vec![MULAW_SILENCE; (length.as_secs_f64() * PHONE_RATE as f64) as usize]
}

/// How long a call carrying `speech` may take, signalling and the PIN included.
fn call_deadline(speech: &Speech) -> Duration {
    speech.duration() + Duration::from_secs(30)
}

/// sipp's `-d`: how long its `<pause/>` lasts, i.e. how long it stays on the call once the
/// speech starts.
fn stay_for(speech: &Speech) -> Vec<String> {
    let ms = (speech.duration() + Duration::from_secs(1)).as_millis();
    vec!["-d".into(), ms.to_string()]
}

// --- What the server heard --------------------------------------------------------------

/// The candidate's words in the transcript, against the words spoken.
struct Heard {
    label: String,
    heard: Vec<String>,
    /// Per clip: the share of its words found in the transcript.
    per_clip: Vec<f64>,
    /// The share of all spoken words found.
    recall: f64,
    /// The share of words heard that were spoken.
    precision: f64,
    /// Word error rate of the candidate's turns against the clips' text, in order.
    wer: f64,
}

impl Heard {
    fn check(server: &TestServer, id: &str, speech: &Speech, label: &str) -> Heard {
        let transcript = server
            .get(&format!("/api/v1/interviews/{id}/transcript"))
            .json();
        let heard = words(&candidate_text(&transcript));
        let spoken: Vec<Vec<String>> = speech.texts.iter().map(|t| words(t)).collect();
        let found = |clip: &[String]| clip.iter().filter(|w| heard.contains(w)).count();
        let per_clip: Vec<f64> = spoken
            .iter()
            .map(|clip| found(clip) as f64 / clip.len() as f64)
            .collect();
        let all: Vec<String> = spoken.concat();
        let recall = found(&all) as f64 / all.len() as f64;
        let precision = if heard.is_empty() {
            0.0
        } else {
            heard.iter().filter(|w| all.contains(w)).count() as f64 / heard.len() as f64
        };
        let wer = edit_distance(&all, &heard) as f64 / all.len() as f64;
        let result = Heard {
            label: label.to_owned(),
            heard,
            per_clip,
            recall,
            precision,
            wer,
        };
        eprintln!(
            "{label}: WER {:.1}%, {:.0}% of the spoken words heard (per sentence {:?}), {:.0}% of the words heard were spoken: {:?}",
            result.wer * 100.0,
            result.recall * 100.0,
            result
                .per_clip
                .iter()
                .map(|r| format!("{:.0}%", r * 100.0))
                .collect::<Vec<_>>(),
            result.precision * 100.0,
            result.heard.join(" ")
        );
        result
    }

    /// Most of every sentence came through, and little that nobody said.
    fn assert_most_words(&self) {
        assert!(
            self.per_clip.iter().all(|r| *r >= 0.6) && self.recall >= 0.75,
            "{}: spoken sentences are missing from the transcript ({:?} of each heard): {:?}",
            self.label,
            self.per_clip,
            self.heard
        );
        assert!(
            self.precision >= 0.7,
            "{}: mostly words nobody said: {:?}",
            self.label,
            self.heard
        );
    }
}

/// Word-level Levenshtein distance.
fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[hypothesis.len()]
}

fn id_and_pin(interview: &Value) -> (String, String) {
    let id = interview["id"].as_str().unwrap().to_owned();
    let pin = interview["pin"].as_str().unwrap().to_owned();
    assert!(
        pin.len() == 10 && pin.chars().all(|c| c.is_ascii_digit()),
        "a PIN is ten digits: {pin}"
    );
    (id, pin)
}

/// A PIN of the same length that is not `pin`.
fn wrong_pin(pin: &str) -> String {
    pin.chars()
        .map(|d| char::from(b'0' + (d.to_digit(10).unwrap() as u8 + 1) % 10))
        .collect()
}

/// The interview once it is over (the report written with it).
fn ended_interview(server: &TestServer, id: &str) -> Value {
    server.wait_for_interview(id, Duration::from_secs(60), |i| {
        i["status"] != "in_progress"
    })
}

/// The server's `/metrics` text.
fn metrics(server: &TestServer) -> String {
    tokio::task::block_in_place(|| server.request("GET", "/metrics", None, &[], None).text())
}

/// Fails unless the server's `/metrics` has each of `lines`.
fn assert_metrics(server: &TestServer, lines: &[&str]) {
    let metrics = metrics(server);
    for line in lines {
        assert!(metrics.contains(line), "no {line} in\n{metrics}");
    }
}

/// The recording is a playable stereo WAV about as long as the interview, whose length also
/// counts the rejoin grace after the caller hung up (nobody on the line: not recorded).
fn check_recording(server: &TestServer, id: &str, ended: &Value, scratch: &Path) {
    let reply = server.get(&format!("/api/v1/interviews/{id}/recording"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let path = scratch.join("recording.wav");
    std::fs::write(&path, &reply.body).unwrap();
    let probe = probe(&path);
    assert_eq!(
        probe.stream("audio").and_then(|audio| audio.channels),
        Some(2),
        "not stereo: {probe:?}"
    );
    let seconds = probe.duration;
    let call = ended["duration_ms"].as_f64().expect("a duration") / 1000.0;
    eprintln!("recording {seconds:.1} s, interview {call:.1} s");
    assert!(
        (call - REJOIN_GRACE_SECS - 1.0..=call + 1.0).contains(&seconds),
        "recording {seconds:.1} s, interview {call:.1} s with a {REJOIN_GRACE_SECS} s rejoin grace"
    );
}

/// Checks that the server's metrics saw the interviewer answer, turn by turn as the call went
/// (not only once it ended), and prints each stage of its replies as the metrics have it: the
/// times are a measurement for the record, not an assertion.
fn check_reply_metrics(server: &TestServer) {
    let metrics = server.request("GET", "/metrics", None, &[], None).text();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let mut stages = Vec::new();
    for stage in ["end_of_turn", "transcribed", "decided", "first_audio"] {
        let labels = format!("{{stage=\"{stage}\"}} ");
        let count = value(&format!("viva_reply_stage_seconds_count{labels}"));
        let sum = value(&format!("viva_reply_stage_seconds_sum{labels}"));
        stages.push(format!("{stage} {:.0} ms", sum / count.max(1.0) * 1e3));
        if stage == "first_audio" {
            assert!(count >= 1.0, "no reply in the metrics: {metrics}");
        }
    }
    eprintln!(
        "reply stages after the end of speech (mean): {}",
        stages.join(", ")
    );
}

fn check_report(server: &TestServer, id: &str) {
    let report = server.get(&format!("/api/v1/interviews/{id}/report"));
    assert_eq!(report.status, 200, "{}", report.text());
    assert!(
        report.json()["overall_score"].is_number(),
        "{}",
        report.text()
    );
}

fn schedule_with_phone(server: &TestServer, name: &str, port: u16) -> String {
    let reply = server.post(
        "/api/v1/interviews",
        &json!({
            "job": "backend-developer",
            "candidate": { "name": name, "phone": format!("sip:candidate@127.0.0.1:{port}") },
        }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn is_final_dial_status(status: &str) -> bool {
    matches!(
        status,
        "answered" | "busy" | "no_answer" | "rejected" | "failed"
    )
}

/// Asks the server to dial the candidate, then polls the interview's dial status until `done`
/// holds for it; returns each status seen, in order, starting with the one the request
/// answered with (which may already be the last).
fn dial(
    server: &TestServer,
    id: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let dialled = server.post(&format!("/api/v1/interviews/{id}/dial"), &json!({}));
    assert_eq!(dialled.status, 202, "{}", dialled.text());
    let first = dialled.json()["dial"]["status"].as_str().map(str::to_owned);
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = first.into_iter().collect();
    if seen.last().is_some_and(|s| done(s)) {
        return seen;
    }
    loop {
        let interview = server.get(&format!("/api/v1/interviews/{id}")).json();
        if let Some(status) = interview["dial"]["status"].as_str()
            && seen.last().map(String::as_str) != Some(status)
        {
            seen.push(status.to_owned());
            if done(status) {
                return seen;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the dial got no further than {seen:?}: {interview}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes press1.pcap ... press10.pcap: the PIN's keys as RFC 4733 telephone-events, from the
/// key presses sipp ships (/usr/share/sip-tester/dtmf_2833_N.pcap).
///
/// sipp's recordings of one key all carry the same RTP timestamp, and RFC 4733 identifies an
/// event by its timestamp: a key typed twice would look like a retransmission of the first
/// press (and be ignored, correctly). A phone gives each press its own timestamp; so does
/// this copy: each press gets a later timestamp and sequence numbers than the one before.
fn write_key_presses(scratch: &Path, pin: &str) {
    for (n, key) in pin.chars().enumerate() {
        let original = PathBuf::from(format!("/usr/share/sip-tester/dtmf_2833_{key}.pcap"));
        let mut pcap = std::fs::read(&original)
            .unwrap_or_else(|e| panic!("{}: {e} (install sip-tester)", original.display()));
        let packets = rtp_packets(&pcap);
        assert!(!packets.is_empty(), "no RTP in {}", original.display());
        for (i, &offset) in packets.iter().enumerate() {
            let rtp = &mut pcap[offset..];
            assert_eq!(
                rtp[1] & 0x7f,
                TELEPHONE_EVENT_PT,
                "{} carries payload type {}, not telephone-event {TELEPHONE_EVENT_PT}",
                original.display(),
                rtp[1] & 0x7f
            );
            assert_eq!(
                rtp[12],
                key.to_digit(10).unwrap() as u8,
                "{} is not the key {key}",
                original.display()
            );
            let sequence = (1_000 + n * 50 + i) as u16;
            let timestamp = 80_000 + n as u32 * 8_000;
            rtp[2..4].copy_from_slice(&sequence.to_be_bytes());
            rtp[4..8].copy_from_slice(&timestamp.to_be_bytes());
        }
        std::fs::write(scratch.join(format!("press{}.pcap", n + 1)), pcap).unwrap();
    }
}

/// Offsets of the RTP headers in a classic little-endian Ethernet/IPv4/UDP pcap file.
fn rtp_packets(pcap: &[u8]) -> Vec<usize> {
    let u32_at = |at: usize| u32::from_le_bytes(pcap[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "not a little-endian pcap file");
    assert_eq!(u32_at(20), 1, "not an Ethernet capture");
    let mut offsets = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let length = u32_at(at + 8);
        let packet = at + 16;
        let ip = packet + 14;
        assert_eq!(pcap[ip] >> 4, 4, "not IPv4");
        assert_eq!(pcap[ip + 9], 17, "not UDP");
        let udp = ip + usize::from(pcap[ip] & 0x0f) * 4;
        offsets.push(udp + 8);
        at = packet + length;
    }
    offsets
}

/// baresip, headless: audio from a WAV file (aufile), no sound card, driven over its TCP
/// control interface (JSON in netstrings).
struct Baresip {
    peer: Peer,
    control: TcpStream,
    /// Control bytes read but not yet parsed.
    pending: Vec<u8>,
    events: Vec<Value>,
}

impl Baresip {
    fn start(scratch: &Path, speech: &Speech) -> Baresip {
        let dir = scratch.join("baresip");
        std::fs::create_dir_all(&dir).unwrap();
        let audio = dir.join("speech.wav");
        speech.write_wav(&audio);
        let control_port = free_tcp_port();
        std::fs::write(
            dir.join("config"),
            format!(
                "poll_method\tepoll\n\
                 sip_listen\t127.0.0.1:0\n\
                 net_interface\t127.0.0.1\n\
                 audio_player\taubridge,nil\n\
                 audio_alert\taubridge,nil\n\
                 audio_source\taufile,{}\n\
                 module_path\t/usr/lib/baresip/modules\n\
                 module\tg711.so\n\
                 module\taufile.so\n\
                 module\taubridge.so\n\
                 module_app\taccount.so\n\
                 module_app\tmenu.so\n\
                 module_app\tctrl_tcp.so\n\
                 ctrl_tcp_listen\t127.0.0.1:{control_port}\n",
                audio.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("accounts"),
            "<sip:candidate@127.0.0.1>;regint=0;audio_codecs=PCMU/8000/1\n",
        )
        .unwrap();
        let mut command = Command::new("baresip");
        command.current_dir(&dir).arg("-f").arg(&dir);
        let mut peer = Peer::spawn("baresip", command, dir.join("baresip.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let control = loop {
            match TcpStream::connect(("127.0.0.1", control_port)) {
                Ok(control) => break control,
                Err(_) if Instant::now() < deadline => {
                    if let Some(status) = peer.exited() {
                        panic!("baresip exited ({status}):\n{}", peer.output());
                    }
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!("baresip's control port: {e}\n{}", peer.output()),
            }
        };
        Baresip {
            peer,
            control,
            pending: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Runs a baresip command (as typed after `/` in its console).
    fn command(&mut self, command: &str, params: &str) {
        let message = json!({ "command": command, "params": params, "token": command });
        let body = message.to_string();
        self.control
            .write_all(format!("{}:{body},", body.len()).as_bytes())
            .unwrap();
    }

    /// Reads control messages until a call event of `kind` (e.g. CALL_ESTABLISHED).
    fn wait_for_event(&mut self, kind: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.events.iter().find(|e| e["type"] == kind) {
                return event.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "baresip: no {kind} within {timeout:?}; events {:?}\n{}",
                self.events,
                tail(&self.peer.output(), 60)
            );
            self.control.set_read_timeout(Some(left)).unwrap();
            let mut buffer = [0u8; 4096];
            match self.control.read(&mut buffer) {
                Ok(0) => panic!(
                    "baresip closed its control connection\n{}",
                    self.peer.output()
                ),
                Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("baresip's control connection: {e}"),
            }
            while let Some((message, rest)) = netstring(&self.pending) {
                let message: Value = serde_json::from_slice(message).unwrap();
                self.pending = rest.to_vec();
                if message["event"] == true {
                    self.events.push(message);
                } else if message["response"] == true && message["ok"] != true {
                    panic!("baresip refused a command: {message}");
                }
            }
        }
    }

    /// Asks baresip to quit (killing it if it lingers over its last transactions) and
    /// returns its log.
    fn quit(mut self) -> String {
        self.command("quit", "");
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.peer.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Dropping the peer kills it if it is still there.
        self.peer.output()
    }
}

/// Splits one netstring (`LEN:BYTES,`) off the front of `bytes`, once it is complete.
fn netstring(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = bytes.iter().position(|&b| b == b':')?;
    let length: usize = std::str::from_utf8(&bytes[..colon]).ok()?.parse().ok()?;
    let end = colon + 1 + length;
    (bytes.len() > end).then(|| (&bytes[colon + 1..end], &bytes[end + 1..]))
}

// --- The CPaaS side of a media stream -----------------------------------------------------

/// Plays a CPaaS caller on the media stream at `url`: `connected`, `start` (stream `sid`,
/// with `pin`), then `speech` as 20 ms of mu-law every 20 ms, echoing the server's marks as a
/// CPaaS does once their audio has played, then `stop`. `junk` goes in two seconds into the
/// call, while the interviewer greets. Returns what the server sent, and how long the call
/// took until the server closed the stream.
async fn call_over_media_stream(
    url: &str,
    sid: &str,
    pin: &str,
    speech: &Speech,
    mut junk: Vec<Message>,
) -> (StreamLog, Duration) {
    let started = Instant::now();
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut sink, mut stream) = socket.split();
    sink.send(Message::text(connected_event())).await.unwrap();
    sink.send(Message::text(start_event(sid, pin)))
        .await
        .unwrap();

    let heard = Arc::new(Mutex::new(StreamLog {
        stream_sid: sid.to_owned(),
        ..StreamLog::default()
    }));
    let (marks_tx, mut marks_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = {
        let heard = Arc::clone(&heard);
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                let text = match message {
                    Ok(Message::Text(text)) => text.to_string(),
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                let event: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("the server sent non-JSON ({e}): {text}"));
                let mut log = heard.lock().unwrap();
                log.note(&event, started.elapsed());
                if event["event"] == "mark" {
                    // As a CPaaS does once the audio before the mark has played.
                    let _ = marks_tx.send(event["mark"]["name"].as_str().unwrap_or("").to_owned());
                }
            }
            heard.lock().unwrap().closed_at = Some(started.elapsed());
        })
    };

    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (chunk, payload) in speech.mulaw.chunks(FRAME_BYTES).enumerate() {
        tick.tick().await;
        while let Ok(name) = marks_rx.try_recv() {
            let echo = json!({ "event": "mark", "streamSid": sid, "mark": { "name": name } });
            sink.send(Message::text(echo.to_string())).await.unwrap();
        }
        if chunk == 100 {
            // Two seconds in, while the interviewer greets: junk the call must shrug off.
            for junk in std::mem::take(&mut junk) {
                sink.send(junk)
                    .await
                    .unwrap_or_else(|e| panic!("the server closed the stream on bad input: {e}"));
            }
        }
        if let Err(e) = sink
            .send(Message::text(media_event(sid, chunk, payload)))
            .await
        {
            panic!(
                "the server closed the stream {:.1} s into the call: {e}; it sent {:?}",
                started.elapsed().as_secs_f64(),
                heard.lock().unwrap()
            );
        }
    }
    sink.send(Message::text(stop_event(sid))).await.unwrap();
    let _ = sink.close().await;
    match tokio::time::timeout(Duration::from_secs(10), reader).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("reading the server's messages failed: {e}"),
        Err(_) => panic!("the server kept the stream open 10 s after `stop`"),
    }
    let log = heard.lock().unwrap().clone();
    (log, started.elapsed())
}

/// A CPaaS caller for `pin` who only listens: the mu-law the server sent, and when (after
/// `start`) it closed the stream, if it did within 30 s.
async fn turned_away_stream(url: &str, pin: &str) -> (Vec<u8>, Option<Duration>) {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text(connected_event())).await.unwrap();
    socket
        .send(Message::text(start_event("MZbusy", pin)))
        .await
        .unwrap();
    let started = Instant::now();
    let mut audio = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    let event: Value = serde_json::from_str(&text).unwrap();
                    if event["event"] == "media" {
                        let payload = event["media"]["payload"].as_str().unwrap_or("");
                        audio.extend(BASE64.decode(payload).unwrap());
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    (audio, closed.ok().map(|()| started.elapsed()))
}

fn connected_event() -> String {
    json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" }).to_string()
}

/// The caller's `chunk`-th 20 ms of audio, as a CPaaS numbers and stamps it.
fn media_event(stream_sid: &str, chunk: usize, mulaw: &[u8]) -> String {
    json!({
        "event": "media",
        "sequenceNumber": (chunk + 3).to_string(),
        "media": {
            "track": "inbound",
            "chunk": (chunk + 1).to_string(),
            "timestamp": (chunk * 20).to_string(),
            "payload": BASE64.encode(mulaw),
        },
        "streamSid": stream_sid,
    })
    .to_string()
}

/// The caller hung up.
fn stop_event(stream_sid: &str) -> String {
    json!({ "event": "stop", "streamSid": stream_sid, "stop": { "callSid": "CAcall" } }).to_string()
}

fn start_event(stream_sid: &str, pin: &str) -> String {
    json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "streamSid": stream_sid,
            "accountSid": "ACtest",
            "callSid": "CAcall",
            "tracks": ["inbound"],
            "customParameters": { "pin": pin },
            "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
        },
        "streamSid": stream_sid,
    })
    .to_string()
}

/// Frames a broken or hostile CPaaS might send: none of them may end the call.
fn junk_frames() -> Vec<Message> {
    vec![
        Message::text("this is not JSON {"),
        Message::text(r#"{"no_event": true}"#),
        Message::text(r#"{"event": "teleport", "streamSid": "MZcall"}"#),
        Message::text(
            json!({ "event": "media", "streamSid": "MZcall", "media": { "payload": "@@not base64@@" } })
                .to_string(),
        ),
        Message::text(json!({ "event": "media", "streamSid": "MZcall" }).to_string()),
        Message::text(json!({ "event": "dtmf", "streamSid": "MZcall", "dtmf": { "digit": "Z" } }).to_string()),
        Message::binary(vec![0xde, 0xad, 0xbe, 0xef]),
        // Over the protocol's 64 KiB message limit (under the socket's own limit).
        Message::text(
            json!({ "event": "media", "streamSid": "MZcall", "media": { "payload": "A".repeat(100_000) } })
                .to_string(),
        ),
    ]
}

/// What the server sent on the media stream.
#[derive(Clone, Debug, Default)]
struct StreamLog {
    /// The stream's id: every message must name it.
    stream_sid: String,
    media: usize,
    first_media_at: Option<Duration>,
    last_media_at: Option<Duration>,
    /// `media` payloads that were not whole 20 ms frames of mu-law.
    bad_payloads: usize,
    marks: Vec<String>,
    clears: usize,
    foreign_sids: Vec<String>,
    closed_at: Option<Duration>,
}

impl StreamLog {
    fn note(&mut self, event: &Value, at: Duration) {
        if event["streamSid"] != self.stream_sid.as_str() {
            self.foreign_sids.push(event["streamSid"].to_string());
        }
        match event["event"].as_str() {
            Some("media") => {
                self.media += 1;
                self.first_media_at.get_or_insert(at);
                self.last_media_at = Some(at);
                let payload = event["media"]["payload"].as_str().unwrap_or("");
                match BASE64.decode(payload) {
                    Ok(bytes) if !bytes.is_empty() && bytes.len() % FRAME_BYTES == 0 => {}
                    _ => self.bad_payloads += 1,
                }
            }
            Some("mark") => self
                .marks
                .push(event["mark"]["name"].as_str().unwrap_or("").to_owned()),
            Some("clear") => self.clears += 1,
            _ => panic!("the server sent an event a CPaaS does not know: {event}"),
        }
    }
}
