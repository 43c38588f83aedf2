//! The jobs pages against a real `viva serve` with a jobs directory of its own: admins create
//! and edit jobs in the browser's forms (with the session's CSRF token), problems are listed
//! by field and reason exactly as `Job::load` reports them, every save is a version, names
//! cannot leave the jobs directory, job text is shown as text, and interviews record the
//! version they use.

#[path = "support/forms.rs"]
mod forms;
#[path = "support/server.rs"]
mod server;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use forms::{escaped, form, hidden};
use server::{Reply, TestServer};
use viva_interview::Job;
use viva_test_support::models::repo_root;
use viva_test_support::scratch_dir;

const PASSWORD: &str = "correct horse battery staple";
const ADMIN: &str = "admin@example.com";
const RECRUITER: &str = "rec@example.com";
const VIEWER: &str = "hm@example.com";
/// The largest job text the pages accept.
const MAX_JOB_BYTES: usize = 256 * 1024;

fn local() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// Signs `email` in through the sign-in form; returns the session cookie.
fn session_of(server: &TestServer, email: &str) -> String {
    forms::session_of(server, local(), email, PASSWORD)
}

/// A signed-in user of the test server.
struct Browser<'a> {
    server: &'a TestServer,
    session: String,
    csrf: String,
}

impl<'a> Browser<'a> {
    fn sign_in(server: &'a TestServer, email: &str) -> Browser<'a> {
        let session = session_of(server, email);
        let mut browser = Browser {
            server,
            session,
            csrf: String::new(),
        };
        browser.csrf = hidden(&browser.get("/jobs").text(), "csrf");
        browser
    }

    fn get(&self, path: &str) -> Reply {
        self.server.request_from(
            local(),
            "GET",
            path,
            None,
            &[("Cookie", &self.session)],
            None,
        )
    }

    /// Posts a form with this session's CSRF token.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &self.csrf));
        self.post_raw(path, &form(&fields))
    }

    fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.server.request_from(
            local(),
            "POST",
            path,
            None,
            &[
                ("Cookie", &self.session),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.to_owned()),
        )
    }
}

/// The starter job the tests write variations of.
fn support_job(title: &str, minutes: u32) -> String {
    format!(
        r#"id = "support"
title = "{title}"
role_brief = "Helps customers solve technical problems."
language = "en"
duration_minutes = {minutes}

[[questions]]
id = "hard_ticket"
text = "Tell me about a difficult customer problem you solved."
areas = ["the problem", "the steps", "the outcome"]
dimension = "problem_solving"

[[dimensions]]
id = "problem_solving"
name = "Problem solving"
weight = 100

[thresholds]
strong_yes = 80
yes = 65
maybe = 50
"#
    )
}

/// Schedules an interview for `job` through the API; returns its id.
fn schedule(server: &TestServer, job: &str) -> String {
    let reply = server.post(
        "/api/v1/interviews",
        &serde_json::json!({ "job": job, "candidate": { "name": "Ada" } }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn admins_edit_jobs_in_the_browser_and_interviews_record_the_version() {
    // The server's own jobs directory (a parent to check nothing escapes into), starting with
    // the shipped job.
    let scratch = scratch_dir("jobs-pages");
    let jobs_dir = scratch.path().join("jobs");
    std::fs::create_dir(&jobs_dir).unwrap();
    std::fs::copy(
        repo_root().join("config/jobs/backend-developer.toml"),
        jobs_dir.join("backend-developer.toml"),
    )
    .unwrap();
    let server = TestServer::start(
        "jobs-pages",
        &[("VIVA_SERVER_JOBS_DIR", jobs_dir.to_str().unwrap())],
    );
    for (email, role) in [
        (ADMIN, "admin"),
        (RECRUITER, "recruiter"),
        (VIEWER, "viewer"),
    ] {
        let made = server.add_user(email, role, PASSWORD);
        assert!(made.status.success(), "{made:?}");
    }
    let admin = Browser::sign_in(&server, ADMIN);
    let recruiter = Browser::sign_in(&server, RECRUITER);
    let viewer = Browser::sign_in(&server, VIEWER);

    // The job file found at start-up is version 1, by the file.
    let list = viewer.get("/jobs");
    assert_eq!(list.status, 200);
    let html = list.text();
    assert!(html.contains("href=\"/jobs/backend-developer\""), "{html}");
    assert!(html.contains(">v1<"), "{html}");
    assert!(
        !html.contains("href=\"/jobs/new\""),
        "viewers get no New job"
    );
    let shipped = viewer.get("/jobs/backend-developer").text();
    assert!(shipped.contains("job file on disk"), "{shipped}");
    assert!(shipped.contains("How many years have you spent designing APIs"));

    // Not signed in: sent to sign in, nothing shown or saved.
    let anonymous = server.request_from(local(), "GET", "/jobs/backend-developer", None, &[], None);
    assert_eq!(anonymous.status, 303);

    // The editor for a new job starts from a valid job.
    let new = admin.get("/jobs/new");
    assert_eq!(new.status, 200);
    assert!(new.text().contains("<textarea name=\"toml\""));

    // Without the session's CSRF token nothing is written.
    let text = support_job("Support <script>alert(1)</script>", 20);
    let forged = admin.post_raw(
        "/jobs/new",
        &form(&[("csrf", "forged"), ("name", "support"), ("toml", &text)]),
    );
    assert_eq!(forged.status, 403);
    assert!(!jobs_dir.join("support.toml").exists());

    // An invalid job: every problem listed with its field and reason, as `Job::load` says
    // them; nothing written.
    let invalid = support_job("Support", 1).replace("weight = 100", "weight = 90");
    let expected = Job::from_toml(&invalid, "support.toml").unwrap_err();
    assert!(expected.errors().len() >= 2, "{expected}");
    let refused = admin.post("/jobs/new", &[("name", "support"), ("toml", &invalid)]);
    assert_eq!(refused.status, 400);
    let page = refused.text();
    for error in expected.errors() {
        assert!(!error.field.is_empty(), "{error}");
        let shown = format!(
            "<code>{}</code>: {}",
            escaped(&error.field),
            escaped(&error.problem.to_string())
        );
        assert!(page.contains(&shown), "{shown} not in {page}");
    }
    assert!(page.contains("duration_minutes"), "{page}");
    // What was typed comes back in the editor, escaped.
    assert!(page.contains(&escaped("weight = 90")), "{page}");
    // A TOML syntax error names its line.
    let broken = admin.post(
        "/jobs/new",
        &[
            ("name", "support"),
            ("toml", "id = \"support\"\ntitle = \n"),
        ],
    );
    assert_eq!(broken.status, 400);
    assert!(broken.text().contains("line 2"), "{}", broken.text());
    assert!(broken.text().contains("TOML syntax error"));
    // Too large: refused with the limit.
    let huge = format!("{text}\n# {}\n", "x".repeat(MAX_JOB_BYTES));
    let too_large = admin.post("/jobs/new", &[("name", "support"), ("toml", &huge)]);
    assert_eq!(too_large.status, 413);
    assert!(
        too_large.text().contains("at most 256 KiB"),
        "{}",
        too_large.text()
    );
    assert_eq!(files_in(&jobs_dir), ["backend-developer.toml"]);

    // Names that would leave the jobs directory (or are no names) are refused.
    let long = "x".repeat(101);
    for name in [
        "../support",
        "a/b",
        "%2e%2e",
        "..",
        "",
        long.as_str(),
        "new",
    ] {
        let reply = admin.post("/jobs/new", &[("name", name), ("toml", &text)]);
        assert_eq!(reply.status, 400, "{name:?}: {}", reply.text());
        assert!(reply.text().contains("field-error"), "{name:?}");
    }
    for path in [
        "/jobs/..%2Fsupport/edit",
        "/jobs/%2e%2e/edit",
        "/jobs/a%2Fb/edit",
    ] {
        assert_eq!(admin.get(path).status, 404, "{path}");
        let reply = admin.post(path, &[("toml", &text)]);
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
    }
    assert_eq!(admin.get("/jobs/..%2F..%2Fetc%2Fpasswd").status, 404);
    assert_eq!(files_in(&jobs_dir), ["backend-developer.toml"]);
    assert_eq!(
        files_in(scratch.path()),
        ["jobs"],
        "nothing beside the jobs directory"
    );

    // A valid job is written as it was typed and becomes version 1 by the admin.
    let created = admin.post("/jobs/new", &[("name", "support"), ("toml", &text)]);
    assert_eq!(created.status, 303, "{}", created.text());
    assert_eq!(created.header("location"), Some("/jobs/support"));
    assert_eq!(
        std::fs::read_to_string(jobs_dir.join("support.toml")).unwrap(),
        text
    );
    let again = admin.post("/jobs/new", &[("name", "support"), ("toml", &text)]);
    assert_eq!(again.status, 400);
    assert!(again.text().contains("already a job named"));

    // Viewers and recruiters read it; its markup is shown as text everywhere.
    for browser in [&viewer, &recruiter, &admin] {
        for path in ["/jobs", "/jobs/support", "/jobs/support/versions/1"] {
            let reply = browser.get(path);
            assert_eq!(reply.status, 200, "{path}");
            let html = reply.text();
            assert!(!html.contains("<script>alert(1)"), "{path}: {html}");
            assert!(
                html.contains("Support &lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
                "{path}: {html}"
            );
        }
    }
    let view = viewer.get("/jobs/support").text();
    assert!(view.contains("Tell me about a difficult customer problem"));
    assert!(view.contains(ADMIN), "the author is named: {view}");
    assert!(!view.contains("/jobs/support/edit"), "viewers get no Edit");

    // Only admins edit.
    for browser in [&viewer, &recruiter] {
        assert_eq!(browser.get("/jobs/new").status, 403);
        assert_eq!(browser.get("/jobs/support/edit").status, 403);
        let edited = browser.post(
            "/jobs/support/edit",
            &[("toml", &support_job("Taken over", 30))],
        );
        assert_eq!(edited.status, 403);
        let created = browser.post(
            "/jobs/new",
            &[("name", "other"), ("toml", &support_job("Other", 30))],
        );
        assert_eq!(created.status, 403);
    }
    assert_eq!(
        std::fs::read_to_string(jobs_dir.join("support.toml")).unwrap(),
        text
    );

    // The admin edits it: the editor holds the file's text; a browser sends CRLF line ends,
    // the file keeps LF. The change is version 2; the first stays readable.
    let editor = admin.get("/jobs/support/edit").text();
    assert!(
        editor.contains(&escaped("duration_minutes = 20")),
        "{editor}"
    );
    let edited_text = support_job("Support engineer", 25);
    let saved = admin.post(
        "/jobs/support/edit",
        &[("toml", &edited_text.replace('\n', "\r\n"))],
    );
    assert_eq!(saved.status, 303, "{}", saved.text());
    assert_eq!(
        std::fs::read_to_string(jobs_dir.join("support.toml")).unwrap(),
        edited_text
    );
    // An invalid edit leaves the file and the versions as they are.
    let bad_edit = admin.post("/jobs/support/edit", &[("toml", "id = 3")]);
    assert_eq!(bad_edit.status, 400);
    // Saving without a change adds no version.
    assert_eq!(
        admin
            .post("/jobs/support/edit", &[("toml", &edited_text)])
            .status,
        303
    );
    assert_eq!(
        std::fs::read_to_string(jobs_dir.join("support.toml")).unwrap(),
        edited_text
    );
    let view = viewer.get("/jobs/support").text();
    assert!(view.contains("href=\"/jobs/support/versions/2\""), "{view}");
    assert!(view.contains("href=\"/jobs/support/versions/1\""), "{view}");
    assert!(!view.contains("/jobs/support/versions/3"), "{view}");
    let first = viewer.get("/jobs/support/versions/1").text();
    assert!(first.contains("duration_minutes = 20"), "{first}");
    assert!(first.contains("This is version 1"), "{first}");
    let second = viewer.get("/jobs/support/versions/2").text();
    assert!(second.contains("duration_minutes = 25"), "{second}");
    for path in [
        "/jobs/support/versions/3",
        "/jobs/support/versions/0",
        "/jobs/support/versions/two",
        "/jobs/nosuchjob",
    ] {
        assert_eq!(viewer.get(path).status, 404, "{path}");
    }

    // An interview scheduled now records version 2, and its review links to it.
    let id = schedule(&server, "support");
    let review = recruiter.get(&format!("/interviews/{id}")).text();
    assert!(
        review.contains("<a href=\"/jobs/support/versions/2\">Job support v2</a>"),
        "{review}"
    );
    assert!(
        admin.get("/jobs").text().contains(">1</td>"),
        "the list counts the interview"
    );

    // A file edited by hand is a version too: at the next scheduling...
    std::fs::write(jobs_dir.join("support.toml"), support_job("By hand", 30)).unwrap();
    let by_hand = schedule(&server, "support");
    let review = recruiter.get(&format!("/interviews/{by_hand}")).text();
    assert!(review.contains("Job support v3"), "{review}");
    assert!(
        viewer
            .get("/jobs/support")
            .text()
            .contains("job file on disk")
    );

    // ...and at start-up, for files changed while the server was down.
    std::fs::write(jobs_dir.join("support.toml"), support_job("While down", 35)).unwrap();
    let server = server.crash_and_restart(Duration::ZERO);
    let viewer = Browser::sign_in(&server, VIEWER);
    let view = viewer.get("/jobs/support").text();
    assert!(view.contains("href=\"/jobs/support/versions/4\""), "{view}");
    assert!(view.contains("While down"), "{view}");
    // The earlier interviews keep the versions they were scheduled with.
    let review = viewer.get(&format!("/interviews/{id}")).text();
    assert!(review.contains("Job support v2"), "{review}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_records_the_job_version_it_runs_with() {
    let blocking = |f: &mut dyn FnMut()| tokio::task::block_in_place(f);
    let scratch = scratch_dir("jobs-call");
    let jobs_dir = scratch.path().to_owned();
    std::fs::write(jobs_dir.join("support.toml"), support_job("Support", 20)).unwrap();
    let mut server = None;
    blocking(&mut || {
        server = Some(TestServer::start(
            "jobs-call",
            &[("VIVA_SERVER_JOBS_DIR", jobs_dir.to_str().unwrap())],
        ));
    });
    let server = server.unwrap();
    let (mut admin, mut id, mut pin) = (None, String::new(), String::new());
    blocking(&mut || {
        assert!(server.add_user(ADMIN, "admin", PASSWORD).status.success());
        let browser = Browser::sign_in(&server, ADMIN);
        let reply = server.post(
            "/api/v1/interviews",
            &json!({ "job": "support", "candidate": { "name": "Ada" } }),
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
        id = reply.json()["id"].as_str().unwrap().to_owned();
        pin = reply.json()["pin"].as_str().unwrap().to_owned();
        let review = browser.get(&format!("/interviews/{id}")).text();
        assert!(review.contains("Job support v1"), "{review}");
        // Changed after the interview was scheduled, before its call.
        let saved = browser.post(
            "/jobs/support/edit",
            &[("toml", &support_job("Support engineer", 25))],
        );
        assert_eq!(saved.status, 303, "{}", saved.text());
        admin = Some(browser);
    });
    let admin = admin.unwrap();

    // The candidate calls in through a CPaaS media stream.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.stream_url())
        .await
        .unwrap();
    let connected = json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" });
    let start = json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "streamSid": "MZjobs",
            "accountSid": "ACtest",
            "callSid": "CAjobs",
            "tracks": ["inbound"],
            "customParameters": { "pin": pin },
            "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
        },
        "streamSid": "MZjobs",
    });
    for event in [connected, start] {
        socket.send(Message::text(event.to_string())).await.unwrap();
    }

    // The call runs with version 2, and the interview now says so.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut review = String::new();
    while !review.contains("Job support v2") {
        assert!(
            Instant::now() < deadline,
            "the call did not record version 2: {review}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        blocking(&mut || review = admin.get(&format!("/interviews/{id}")).text());
    }
    let _ = socket.close(None).await;
}
