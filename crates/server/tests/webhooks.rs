//! Webhooks against a real `viva serve` and a real receiver: a Python HTTP server that checks
//! every request with the official Standard Webhooks library (`standardwebhooks` from PyPI,
//! installed by scripts/setup), endpoints added by an admin in Settings > Webhooks, events from
//! the API and the workspace, retries, a crash and restart between attempts, and who may
//! reach the settings pages.

#[path = "support/forms.rs"]
mod forms;
#[path = "support/server.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use forms::{escaped as escape, form};
use serde_json::Value;
use server::{Reply, TestServer};
use viva_test_support::models::{cached, repo_root};
use viva_test_support::scratch_dir;

const PASSWORD: &str = "correct horse battery staple";

fn local() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The Python receiver (tests/webhook_receiver.py), killed by PID when dropped.
struct Receiver {
    child: Child,
    base: String,
    log: PathBuf,
    secrets: PathBuf,
}

impl Receiver {
    fn start(dir: &Path) -> Receiver {
        let python = cached("webhooks-venv/bin/python");
        let (log, secrets) = (dir.join("received.jsonl"), dir.join("secrets.json"));
        let mut child = Command::new(python)
            .arg(repo_root().join("crates/server/tests/webhook_receiver.py"))
            .args([&log, &secrets])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the webhook receiver starts");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let port: u16 = port
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the receiver printed {port:?}, not its port"));
        Receiver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            secrets,
        }
    }

    /// Tells the receiver the secret of each path.
    fn set_secrets(&self, secrets: &[(&str, &str)]) {
        let map: serde_json::Map<String, Value> = secrets
            .iter()
            .map(|(path, secret)| (path.to_string(), Value::from(*secret)))
            .collect();
        std::fs::write(&self.secrets, Value::Object(map).to_string()).unwrap();
    }

    /// Every request received on `path`, oldest first.
    fn received(&self, path: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|record| record["path"] == path)
            .collect()
    }

    /// Waits until `done` holds for the requests on `path`; panics after `timeout`.
    fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received(path);
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get what was expected on {path}: {received:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text between `before` and the next `"` in `page`, unescaped.
fn attribute(page: &str, before: &str) -> String {
    let start = page
        .find(before)
        .unwrap_or_else(|| panic!("no {before} in {page}"))
        + before.len();
    unescape(&page[start..start + page[start..].find('"').unwrap()])
}

fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A signed-in browser: its session cookie and the session's CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

fn sign_in(server: &TestServer, email: &str, role: &str) -> Browser {
    let made = server.add_user(email, role, PASSWORD);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cookie = forms::session_of(server, local(), email, PASSWORD);
    let home = get(server, &cookie, "/");
    assert_eq!(home.status, 200);
    Browser {
        csrf: attribute(&home.text(), "name=\"csrf\" value=\""),
        cookie,
    }
}

fn get(server: &TestServer, cookie: &str, path: &str) -> Reply {
    server.request_from(local(), "GET", path, None, &[("Cookie", cookie)], None)
}

fn post(server: &TestServer, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
    server.request_from(
        local(),
        "POST",
        path,
        None,
        &[
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(form(fields)),
    )
}

/// Adds an endpoint as `admin`; returns its id and its secret (shown this once).
fn add_endpoint(
    server: &TestServer,
    admin: &Browser,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let mut fields = vec![("csrf", admin.csrf.as_str()), ("url", url)];
    fields.extend(events.iter().map(|e| ("events", *e)));
    let added = post(server, &admin.cookie, "/settings/webhooks", &fields);
    assert_eq!(added.status, 201, "{}", added.text());
    let page = added.text();
    let secret = attribute(&page, "id=\"webhook-secret\" value=\"");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = attribute(&page, "<a href=\"/settings/webhooks/");
    (id, secret)
}

/// The delivery log row of `message_id` on an endpoint's page: (status, attempts).
fn logged(server: &TestServer, admin: &Browser, endpoint: &str, message_id: &str) -> (String, u32) {
    let page = get(
        server,
        &admin.cookie,
        &format!("/settings/webhooks/{endpoint}"),
    );
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.text();
    let row = format!("data-message-id=\"{message_id}\"");
    let start = page
        .find(&row)
        .unwrap_or_else(|| panic!("{message_id} is not in the delivery log: {page}"));
    let row = &page[start..];
    (
        attribute(row, "data-status=\""),
        attribute(row, "data-attempts=\"").parse().unwrap(),
    )
}

fn body(record: &Value) -> Value {
    serde_json::from_str(record["body"].as_str().unwrap()).unwrap()
}

/// Every request was signed so that the reference library accepts it with the endpoint's
/// secret, and refuses it with a secret one bit off.
fn assert_signed(records: &[Value]) {
    for record in records {
        assert_eq!(record["verified"], "valid", "{record:#}");
        assert!(
            record["tampered"]
                .as_str()
                .unwrap()
                .starts_with("refused: No matching signature"),
            "{record:#}"
        );
        assert_eq!(record["content_type"], "application/json");
        assert!(
            record["webhook_signature"]
                .as_str()
                .unwrap()
                .starts_with("v1,")
        );
    }
}

#[test]
fn events_reach_the_ats_signed_retried_and_across_a_restart() {
    let scratch = scratch_dir("webhooks-receiver");
    let receiver = Receiver::start(scratch.path());
    // Retries 6 s and then 1 s after a failure: three attempts in all.
    let server = TestServer::start(
        "webhooks",
        &[("VIVA_WEBHOOK_DELIVERY_RETRY_SECS", "[6, 1]")],
    );
    let admin = sign_in(&server, "admin@example.com", "admin");
    let recruiter = sign_in(&server, "rita@example.com", "recruiter");
    let viewer = sign_in(&server, "vic@example.com", "viewer");

    // Only admins see or change webhooks (Settings leads there); every form needs the
    // session's CSRF token.
    assert!(
        get(&server, &admin.cookie, "/settings/users")
            .text()
            .contains("href=\"/settings/webhooks\"")
    );
    assert!(
        !get(&server, &recruiter.cookie, "/settings/keys")
            .text()
            .contains("/settings/webhooks")
    );
    let anonymous = server.request_from(local(), "GET", "/settings/webhooks", None, &[], None);
    assert_eq!(anonymous.status, 303);
    for someone in [&recruiter, &viewer] {
        assert_eq!(
            get(&server, &someone.cookie, "/settings/webhooks").status,
            403
        );
        let refused = post(
            &server,
            &someone.cookie,
            "/settings/webhooks",
            &[
                ("csrf", &someone.csrf),
                ("url", &format!("{}/ok", receiver.base)),
            ],
        );
        assert_eq!(refused.status, 403, "{}", refused.text());
    }
    let url = format!("{}/ok", receiver.base);
    for csrf in [None, Some("forged")] {
        let mut fields = vec![("url", url.as_str())];
        fields.extend(csrf.map(|c| ("csrf", c)));
        let refused = post(&server, &admin.cookie, "/settings/webhooks", &fields);
        assert_eq!(refused.status, 403, "{}", refused.text());
    }
    let page = get(&server, &admin.cookie, "/settings/webhooks");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("No endpoints yet"),
        "refused forms added nothing"
    );
    for (bad, reason) in [
        ("ftp://127.0.0.1/ok", "must start with http:"),
        ("https://exa mple.com/ok", "is not a URL"),
    ] {
        let refused = post(
            &server,
            &admin.cookie,
            "/settings/webhooks",
            &[("csrf", &admin.csrf), ("url", bad)],
        );
        assert_eq!(refused.status, 400);
        assert!(refused.text().contains(reason), "{}", refused.text());
    }

    // An endpoint for every event: a scheduled interview and a decision arrive, signed.
    let (ok_id, ok_secret) = add_endpoint(&server, &admin, &url, &[]);
    assert!(ok_id.starts_with("ep_"), "{ok_id}");
    receiver.set_secrets(&[("/ok", &ok_secret)]);
    let listed = get(&server, &admin.cookie, "/settings/webhooks").text();
    assert!(listed.contains(&escape(&url)), "{listed}");
    assert!(
        !listed.contains(&escape(&ok_secret)),
        "the secret is shown once"
    );
    let endpoint_page = get(
        &server,
        &admin.cookie,
        &format!("/settings/webhooks/{ok_id}"),
    )
    .text();
    assert!(
        !endpoint_page.contains(&escape(&ok_secret)),
        "{endpoint_page}"
    );
    let interview = server.schedule("Ada <b>Lovelace</b>");
    let id = interview["id"].as_str().unwrap();
    let decided = post(
        &server,
        &recruiter.cookie,
        &format!("/interviews/{id}/decision"),
        &[
            ("csrf", &recruiter.csrf),
            ("decision", "advance"),
            ("note", "strong"),
        ],
    );
    assert_eq!(decided.status, 303, "{}", decided.text());
    let received = receiver.wait_for("/ok", Duration::from_secs(30), |r| r.len() >= 2);
    assert_signed(&received);
    let types: Vec<Value> = received.iter().map(|r| body(r)["type"].clone()).collect();
    assert_eq!(types, ["interview.scheduled", "decision.recorded"]);
    let scheduled = body(&received[0]);
    assert_eq!(scheduled["data"]["interview"]["id"], id);
    assert_eq!(scheduled["data"]["interview"]["status"], "scheduled");
    assert_eq!(
        scheduled["data"]["interview"]["candidate"]["name"],
        "Ada <b>Lovelace</b>"
    );
    assert_eq!(
        scheduled["data"]["links"]["review"],
        format!("{}/interviews/{id}", server.base)
    );
    let decision = body(&received[1]);
    assert_eq!(decision["data"]["decision"]["decision"], "advance");
    assert_eq!(decision["data"]["decision"]["note"], "strong");
    assert_eq!(decision["data"]["decision"]["by"], "rita@example.com");
    assert_eq!(decision["data"]["interview"]["id"], id);
    for record in &received {
        let sent: i64 = record["webhook_timestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            (now - sent).abs() < 60,
            "webhook-timestamp {sent} is not now ({now})"
        );
        let message_id = record["webhook_id"].as_str().unwrap();
        assert!(message_id.starts_with("msg_"), "{message_id}");
        assert_eq!(
            logged(&server, &admin, &ok_id, message_id),
            ("delivered".to_owned(), 1)
        );
    }

    // A receiver that fails twice: the test event is retried, and Viva crashes and restarts
    // between the first attempt and the second.
    let flaky_url = format!("{}/flaky", receiver.base);
    let (flaky_id, flaky_secret) =
        add_endpoint(&server, &admin, &flaky_url, &["interview.completed"]);
    receiver.set_secrets(&[("/ok", &ok_secret), ("/flaky", &flaky_secret)]);
    for someone in [&recruiter, &viewer] {
        let refused = post(
            &server,
            &someone.cookie,
            &format!("/settings/webhooks/{flaky_id}/test"),
            &[("csrf", &someone.csrf)],
        );
        assert_eq!(refused.status, 403);
    }
    let no_token = post(
        &server,
        &admin.cookie,
        &format!("/settings/webhooks/{flaky_id}/test"),
        &[],
    );
    assert_eq!(no_token.status, 403);
    let sent = post(
        &server,
        &admin.cookie,
        &format!("/settings/webhooks/{flaky_id}/test"),
        &[("csrf", &admin.csrf)],
    );
    assert_eq!(sent.status, 303, "{}", sent.text());
    let first = receiver.wait_for("/flaky", Duration::from_secs(30), |r| !r.is_empty());
    assert_eq!(first[0]["answered"], 500);
    let message_id = first[0]["webhook_id"].as_str().unwrap().to_owned();
    // Crashed only once the failed attempt is on record (pending, one attempt, next due).
    let deadline = Instant::now() + Duration::from_secs(10);
    while logged(&server, &admin, &flaky_id, &message_id) != ("pending".to_owned(), 1) {
        assert!(
            Instant::now() < deadline,
            "the first attempt was not recorded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let server = server.crash_and_restart(Duration::from_millis(500));

    let received = receiver.wait_for("/flaky", Duration::from_secs(90), |r| {
        r.iter().any(|record| record["answered"] == 200)
    });
    // Nothing more arrives once it was delivered.
    std::thread::sleep(Duration::from_secs(3));
    let received_later = receiver.received("/flaky");
    assert_eq!(received_later.len(), received.len());
    let answered: Vec<&Value> = received.iter().map(|r| &r["answered"]).collect();
    assert_eq!(answered, [500, 500, 200], "{received:#?}");
    assert_signed(&received);
    for record in &received {
        assert_eq!(
            record["webhook_id"],
            message_id.as_str(),
            "one message id across attempts"
        );
        assert_eq!(
            record["body"], received[0]["body"],
            "the same body every attempt"
        );
    }
    let stamps: Vec<i64> = received
        .iter()
        .map(|r| r["webhook_timestamp"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        stamps[0] < stamps[2],
        "each attempt is stamped when sent: {stamps:?}"
    );
    let test_event = body(&received[0]);
    assert_eq!(test_event["type"], "webhook.test");
    assert!(test_event["timestamp"].as_str().unwrap().ends_with('Z'));
    // The session lives in the database, so it outlived the crash.
    assert_eq!(
        logged(&server, &admin, &flaky_id, &message_id),
        ("delivered".to_owned(), 3)
    );
    // The first endpoint's messages were delivered once, not again after the restart.
    assert_eq!(receiver.received("/ok").len(), 2);

    // Disabled endpoints are sent nothing; deleting needs the token too.
    let disabled = post(
        &server,
        &admin.cookie,
        &format!("/settings/webhooks/{ok_id}/enabled"),
        &[("csrf", &admin.csrf), ("enabled", "false")],
    );
    assert_eq!(disabled.status, 303);
    server.schedule("Grace Hopper");
    let forged_delete = post(
        &server,
        &admin.cookie,
        &format!("/settings/webhooks/{flaky_id}/delete"),
        &[("csrf", "forged")],
    );
    assert_eq!(forged_delete.status, 403);
    let deleted = post(
        &server,
        &admin.cookie,
        &format!("/settings/webhooks/{flaky_id}/delete"),
        &[("csrf", &admin.csrf)],
    );
    assert_eq!(deleted.status, 303);
    assert_eq!(
        get(
            &server,
            &admin.cookie,
            &format!("/settings/webhooks/{flaky_id}")
        )
        .status,
        404
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        receiver.received("/ok").len(),
        2,
        "a disabled endpoint gets nothing"
    );
}

/// A CPaaS media stream opens the interview by its PIN (`start`) and, once it has started,
/// closes: the call ends before the interview did.
fn call_in_and_drop(server: &TestServer, pin: &str, started: impl Fn() -> bool) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(server.stream_url())
            .await
            .unwrap();
        let connected =
            serde_json::json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" });
        let start = serde_json::json!({
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "streamSid": "MZhooks",
                "accountSid": "ACtest",
                "callSid": "CAhooks",
                "tracks": ["inbound"],
                "customParameters": { "pin": pin },
                "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
            },
            "streamSid": "MZhooks",
        });
        socket
            .send(Message::text(connected.to_string()))
            .await
            .unwrap();
        socket.send(Message::text(start.to_string())).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !started() {
            assert!(Instant::now() < deadline, "the interview did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        socket.close(None).await.unwrap();
    });
}

#[test]
fn a_call_that_starts_and_ends_early_sends_started_then_abandoned() {
    let scratch = scratch_dir("webhooks-call-receiver");
    let receiver = Receiver::start(scratch.path());
    let server = TestServer::start("webhooks-call", &[]);
    let admin = sign_in(&server, "admin@example.com", "admin");
    let url = format!("{}/calls", receiver.base);
    let (_, secret) = add_endpoint(
        &server,
        &admin,
        &url,
        &[
            "interview.started",
            "interview.abandoned",
            "interview.completed",
        ],
    );
    receiver.set_secrets(&[("/calls", &secret)]);
    let interview = server.schedule("Katherine Johnson");
    let id = interview["id"].as_str().unwrap();
    let pin = interview["pin"].as_str().unwrap();

    call_in_and_drop(&server, pin, || !receiver.received("/calls").is_empty());
    let received = receiver.wait_for("/calls", Duration::from_secs(60), |r| r.len() >= 2);
    assert_signed(&received);
    let started = body(&received[0]);
    assert_eq!(
        started["type"], "interview.started",
        "the filter left out interview.scheduled"
    );
    assert_eq!(started["data"]["interview"]["id"], id);
    assert_eq!(started["data"]["interview"]["status"], "in_progress");
    assert!(
        started["data"]["interview"]["started_at"].is_string(),
        "{started:#}"
    );

    let ended = body(&received[1]);
    assert_eq!(ended["type"], "interview.abandoned", "{ended:#}");
    let data = &ended["data"];
    // The event says of the interview what the API does.
    let stored = server.get(&format!("/api/v1/interviews/{id}")).json();
    assert_eq!(stored["status"], "abandoned");
    for field in [
        "status",
        "end_reason",
        "ended_at",
        "started_at",
        "duration_ms",
    ] {
        assert_eq!(
            data["interview"][field], stored[field],
            "{field}: {ended:#}"
        );
    }
    assert!(data["interview"]["end_reason"].is_string(), "{ended:#}");
    let api = format!("{}/api/v1/interviews/{id}", server.base);
    assert_eq!(
        data["links"]["review"],
        format!("{}/interviews/{id}", server.base)
    );
    // A report is written for what was said (nothing), and the links lead to it.
    assert_eq!(data["links"]["report"], format!("{api}/report"));
    assert!(data["composite_score"].is_number(), "{ended:#}");
    assert!(data["recommendation"].is_string(), "{ended:#}");
    let report = server.get(data["links"]["report"].as_str().unwrap());
    assert_eq!(report.status, 200, "{}", report.text());
    if let Some(recording) = data["links"]["recording"].as_str() {
        assert_eq!(server.get(recording).status, 200);
    }
}
