//! A candidate's browser interview end to end: headless Chromium (fake camera, a fake
//! microphone speaking real recorded sentences) opens the join link of a real `viva serve`,
//! passes the device check, starts, talks with the interviewer over WebRTC for several turns,
//! reloads the page (rejoining the same call), and finally closes the tab mid-interview.
//! Then: the transcript holds the spoken words, the interview is `abandoned` with what was said
//! kept and a report written, and the stereo recording and the camera video are playable
//! files (checked with ffprobe) whose durations match the call.
//!
//! Also: the recruiter workspace from invitation to decision, a crash mid-call, and a call
//! through HAProxy in front of two nodes sharing one PostgreSQL database and one S3 store.

#[path = "support/nodes.rs"]
mod nodes;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/s3.rs"]
mod s3;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use nodes::{NODES, calls_active, owner};
use proxy::Haproxy;
use s3::S3Server;
use serde_json::Value;
use server::{Postgres, TestServer, candidate_text, words};
use viva_test_support::browser::{Browser, Tab, speech_wav_with_pauses};
use viva_test_support::models::speech_clip;
use viva_test_support::net::free_tcp_port;
use viva_test_support::scratch_dir;
use viva_test_support::services::service_url;
use viva_test_support::video::{mkvinfo, probe};

/// Reloads and tab closes leave the call waiting this long for a rejoin.
const GRACE_SECS: u64 = 4;

/// Held for the whole of each test: one browser test at a time. Each drives a Chromium and a
/// server with its speech models; two at once on a two-core machine starved each other into
/// failures that had nothing to do with what they check (a screenshot timing out, a crash
/// losing more of the audio recording than the test allows).
/// (Tokio's mutex: it is held across awaits, and a test that fails while holding it does not
/// poison it for the others.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// How long the page may take to reach its next state (device check, joining the call).
const PAGE_STATE: Duration = Duration::from_secs(30);

/// Read speech with its transcript, from the speech set scripts/setup installs.
const CLIPS: [&str; 3] = ["librivox-0870", "librivox-0890", "librivox-0920"];

fn clip(name: &str) -> (Vec<f32>, u32, String) {
    let wav = speech_clip(name);
    let mut reader =
        hound::WavReader::open(&wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
    let rate = reader.spec().sample_rate;
    let samples = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let text = std::fs::read_to_string(wav.with_extension("txt")).unwrap();
    (samples, rate, text)
}

fn candidate_turns(transcript: &Value) -> usize {
    transcript["turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["speaker"] == "candidate")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_interviews_in_the_browser() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let grace = GRACE_SECS.to_string();
    let server = tokio::task::block_in_place(|| {
        TestServer::start("browser", &[("VIVA_SERVER_REJOIN_GRACE_SECS", &grace)])
    });
    let blocking = |f: &dyn Fn() -> Value| tokio::task::block_in_place(f);
    let interview = blocking(&|| server.schedule("Ada Lovelace"));
    let id = interview["id"].as_str().unwrap().to_owned();
    let join_url = interview["join_url"].as_str().unwrap().to_owned();
    let transcript_path = format!("/api/v1/interviews/{id}/transcript");

    // The fake microphone: three real sentences, each followed by a pause long enough to end
    // the turn, looped by Chromium for as long as the call lasts.
    let clips: Vec<_> = CLIPS.iter().map(|name| clip(name)).collect();
    let mic = server.data_dir.join("mic.wav");
    let audio: Vec<(Vec<f32>, u32)> = clips.iter().map(|(s, r, _)| (s.clone(), *r)).collect();
    speech_wav_with_pauses(&mic, &audio, Duration::from_millis(3_500)).unwrap();

    let idle_mib = server.resident_mib();
    let browser = Browser::launch(&mic).await.unwrap();
    let tab = browser.open(&join_url).await.unwrap();
    tab.wait_for_state("ready", PAGE_STATE).await.unwrap();
    let shown = tab.eval("document.body.innerText").await.unwrap();
    assert!(
        shown.as_str().unwrap().contains("Senior Backend Developer"),
        "{shown}"
    );
    tab.click("#start").await.unwrap();
    tab.wait_for_state("in-call", PAGE_STATE).await.unwrap();

    // A second tab on the live interview is turned away.
    let second = blocking(&|| {
        let reply = server.request("GET", &format!("{join_url}/details"), None, &[], None);
        Value::from(reply.status)
    });
    assert_eq!(second, 409);
    let ws = format!("{join_url}/signal").replace("http://", "ws://");
    match tokio_tungstenite::connect_async(&ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 409)
        }
        other => panic!("a second signaling socket must get 409, got {other:?}"),
    }

    // Two answers, then a reload: the page rejoins the same call.
    wait_for_answers(&server, &transcript_path, 2, Duration::from_secs(120)).await;
    eprintln!(
        "server memory: {idle_mib:.0} MiB idle with the models loaded, {:.0} MiB during the call",
        server.resident_mib()
    );
    tab.eval("location.reload()").await.unwrap();
    start_call(&tab).await;
    let status = blocking(&|| server.get(&format!("/api/v1/interviews/{id}")).json());
    assert_eq!(status["status"], "in_progress", "{status}");

    // Another answer after the rejoin, then the tab closes while the candidate speaks.
    wait_for_answers(&server, &transcript_path, 3, Duration::from_secs(120)).await;
    let _ = tab
        .wait_for(
            "document.body.dataset.speaking === 'candidate'",
            Duration::from_secs(20),
        )
        .await;
    tab.close().await.unwrap();

    let ended = blocking(&|| {
        server.wait_for_interview(&id, Duration::from_secs(60), |i| {
            i["status"] != "in_progress"
        })
    });
    assert_eq!(ended["status"], "abandoned", "{ended}");
    assert_eq!(ended["end_reason"], "connection_lost", "{ended}");
    let metrics =
        blocking(&|| Value::from(server.request("GET", "/metrics", None, &[], None).text()));
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("viva_calls_total{outcome=\"abandoned\"} 1"),
        "{metrics}"
    );
    eprintln!(
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("viva_reply_stage_seconds_sum"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // What was said is kept: the microphone's sentences are in the transcript. The fake
    // microphone loops regardless of turns, so sentences overlap the interviewer's lines
    // (where the browser's echo canceller mutes them) and some are cut: at least one whole
    // sentence must come through, and most words heard must be words that were spoken.
    let transcript = blocking(&|| server.get(&transcript_path).json());
    let heard: Vec<String> = words(&candidate_text(&transcript));
    let vocabulary: Vec<String> = clips.iter().flat_map(|(_, _, text)| words(text)).collect();
    let whole_sentences = clips
        .iter()
        .filter(|(_, _, text)| {
            let spoken = words(text);
            spoken.iter().filter(|w| heard.contains(w)).count() * 10 >= spoken.len() * 8
        })
        .count();
    let spoken_words = heard.iter().filter(|w| vocabulary.contains(w)).count();
    eprintln!(
        "browser call: {whole_sentences} whole sentences, {spoken_words}/{} words heard were spoken: {heard:?}",
        heard.len()
    );
    assert!(
        whole_sentences >= 1,
        "no spoken sentence is in the transcript: {heard:?}"
    );
    assert!(
        spoken_words * 10 >= heard.len() * 6,
        "mostly words nobody said: {heard:?}"
    );

    let report = blocking(&|| {
        server
            .get(&format!("/api/v1/interviews/{id}/report"))
            .json()
    });
    assert!(report["overall_score"].is_number(), "{report}");
    let html = blocking(&|| {
        Value::from(
            server
                .get(&format!("/api/v1/interviews/{id}/report?format=html"))
                .text(),
        )
    });
    assert!(html.as_str().unwrap().contains("Ada Lovelace"));

    // The recordings: playable, and as long as the call.
    let call_secs = ended["duration_ms"].as_f64().unwrap() / 1000.0;
    let dir = server.data_dir.join("interviews").join(&id);
    let recording = dir.join("recording.wav");
    let video = dir.join("video.webm");
    let recording_probe = probe(&recording);
    let recording_secs = recording_probe.duration;
    assert_eq!(
        recording_probe
            .stream("audio")
            .and_then(|audio| audio.channels),
        Some(2),
        "stereo: {recording_probe:?}"
    );
    assert!(
        (recording_secs - call_secs).abs() <= GRACE_SECS as f64 + 2.0,
        "recording {recording_secs:.1} s, call {call_secs:.1} s"
    );
    let video_probe = probe(&video);
    assert!(
        video_probe.codecs().contains(&"vp8") && video_probe.codecs().contains(&"opus"),
        "{video_probe:?}"
    );
    let video_secs = video_probe.duration;
    // The first connection's video runs until the reload.
    assert!(
        video_secs > 5.0 && video_secs <= call_secs + 1.0,
        "video {video_secs:.1} s, call {call_secs:.1} s"
    );
    mkvinfo(&video);

    // Served with ranges, so a player can seek.
    let range = tokio::task::block_in_place(|| {
        server.request(
            "GET",
            &format!("/api/v1/interviews/{id}/recording"),
            Some(server::API_KEY),
            &[("Range", "bytes=0-99")],
            None,
        )
    });
    assert_eq!((range.status, range.body.len()), (206, 100));
    let whole =
        tokio::task::block_in_place(|| server.get(&format!("/api/v1/interviews/{id}/video")));
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), Some("video/webm"));

    // The link was single-use.
    let again = blocking(&|| {
        Value::from(
            server
                .request("GET", &format!("{join_url}/details"), None, &[], None)
                .status,
        )
    });
    assert_eq!(again, 410);
}

async fn wait_for_answers(
    server: &TestServer,
    transcript_path: &str,
    answers: usize,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let transcript = tokio::task::block_in_place(|| server.get(transcript_path).json());
        if candidate_turns(&transcript) >= answers {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {answers} answers after {timeout:?}: {transcript}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Schedules an interview for `name` and joins it in a browser whose microphone says `clip`
/// (then pauses); returns the interview id, the browser and its tab, once in the call.
async fn join_call(server: &TestServer, name: &str, clip_name: &str) -> (String, Browser, Tab) {
    let interview = tokio::task::block_in_place(|| server.schedule(name));
    let id = interview["id"].as_str().unwrap().to_owned();
    let (samples, rate, _) = clip(clip_name);
    let mic = server.data_dir.join(format!("mic-{id}.wav"));
    speech_wav_with_pauses(&mic, &[(samples, rate)], Duration::from_secs(3)).unwrap();
    let browser = Browser::launch(&mic).await.unwrap();
    let tab = browser
        .open(interview["join_url"].as_str().unwrap())
        .await
        .unwrap();
    start_call(&tab).await;
    (id, browser, tab)
}

/// The candidate's way into the call: the page checks the devices and says it is ready, the
/// candidate clicks Start, and the page says it is in the call.
async fn start_call(tab: &Tab) {
    tab.wait_for_state("ready", PAGE_STATE).await.unwrap();
    tab.click("#start").await.unwrap();
    tab.wait_for_state("in-call", PAGE_STATE).await.unwrap();
}

/// What the workspace test's candidates say to every question.
const STRONG_ANSWER: &str = "Yes, I could start within a month. I have spent six years designing \
     APIs. At Acme I designed the public billing API that three hundred customer integrations \
     depended on. We versioned it in the URL and only made additive changes, every write \
     endpoint took an idempotency key because clients retried on timeouts, and we used cursor \
     pagination instead of offsets.";

/// The password of every workspace account the test makes.
const PASSWORD: &str = "a long enough password";
/// How long a workspace page may take to show what the test waits for.
const PAGE: Duration = Duration::from_secs(15);

/// The recruiter workspace end to end, as its users work in it: the first admin (made with
/// `viva user add`) adds a recruiter and a viewer in the browser; the recruiter invites two
/// candidates, who join from their links, talk, and leave with the End button; the list shows
/// both with their scores; the review plays the recording and an evidence quote moves the player
/// to its moment; the recruiter advances one; the viewer sees the decision but cannot change it;
/// the two candidates are compared side by side. Screenshots of each page go to
/// target/screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_invitation_to_decision_in_the_workspace() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = tokio::task::block_in_place(|| TestServer::start("browser-workspace", &[]));
    let made =
        tokio::task::block_in_place(|| server.add_user("admin@example.com", "admin", PASSWORD));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // The candidates give one strong answer, in the local voice, to every question (the fake
    // microphone loops it): it passes both knockouts and leaves evidence to quote.
    let answer = server.data_dir.join("answer.wav");
    let said = std::process::Command::new(env!("CARGO_BIN_EXE_viva"))
        .current_dir(viva_test_support::models::repo_root())
        .args(["say", STRONG_ANSWER, "--out"])
        .arg(&answer)
        .output()
        .unwrap();
    assert!(
        said.status.success(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    let mut reader = hound::WavReader::open(&answer).unwrap();
    let rate = reader.spec().sample_rate;
    let samples = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let mic = server.data_dir.join("mic.wav");
    // A pause long enough to end the turn even after a long answer.
    speech_wav_with_pauses(&mic, &[(samples, rate)], Duration::from_secs(4)).unwrap();
    let browser = Browser::launch(&mic).await.unwrap();
    let desk = browser.open(&server.url("/")).await.unwrap();

    // The admin adds the team.
    sign_in(&desk, "admin@example.com").await;
    visit(&desk, &server, "/settings/users").await;
    for (email, role) in [
        ("recruiter@example.com", "recruiter"),
        ("hm@example.com", "viewer"),
    ] {
        submit(
            &desk,
            "form[action=\"/settings/users\"]",
            &[("email", email), ("password", PASSWORD), ("role", role)],
        )
        .await;
        desk.wait_for(
            &format!("document.querySelector('.notice')?.textContent.includes('{email}')"),
            PAGE,
        )
        .await
        .unwrap();
    }
    desk.screenshot("workspace-users").await.unwrap();
    sign_out(&desk).await;

    // The recruiter invites two candidates.
    sign_in(&desk, "recruiter@example.com").await;
    let mut invited = Vec::new();
    for name in ["Ada Lovelace", "Grace Hopper"] {
        visit(&desk, &server, "/invite").await;
        submit(
            &desk,
            "form[action=\"/invite\"]",
            &[("job", "backend-developer"), ("name", name)],
        )
        .await;
        let link = desk
            .wait_for("document.querySelector('#join-link')?.value", PAGE)
            .await
            .unwrap();
        let review = desk
            .eval(
                "document.querySelector('.invited a[href^=\"/interviews/\"]').getAttribute('href')",
            )
            .await
            .unwrap();
        let id = review
            .as_str()
            .unwrap()
            .trim_start_matches("/interviews/")
            .to_owned();
        invited.push((id, link.as_str().unwrap().to_owned()));
    }
    desk.screenshot("workspace-invite").await.unwrap();

    // Both candidates join at once, say something, and leave with the End button.
    let mut calls = Vec::new();
    for (id, link) in &invited {
        let tab = browser.open(link).await.unwrap();
        start_call(&tab).await;
        calls.push((id.clone(), tab));
    }
    for (id, tab) in &calls {
        let heard = tab
            .wait_for(
                "document.body.dataset.speaking === 'interviewer'",
                Duration::from_secs(30),
            )
            .await;
        assert!(
            heard.is_ok(),
            "the interviewer's voice never played: {heard:?}"
        );
        // Past the greeting and both knockouts, the candidate answers a question.
        tokio::task::block_in_place(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(240);
            while candidate_turns(
                &server
                    .get(&format!("/api/v1/interviews/{id}/transcript"))
                    .json(),
            ) < 4
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{id}: not four candidate turns in 240 s"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        tab.click("#end").await.unwrap();
        tab.wait_for_state("ended", Duration::from_secs(10))
            .await
            .unwrap();
    }
    for (id, _) in &calls {
        // No grace period for a candidate who ended the call on purpose.
        let ended = tokio::task::block_in_place(|| {
            server.wait_for_interview(id, Duration::from_secs(30), |i| {
                i["status"] != "in_progress"
            })
        });
        assert_eq!(ended["status"], "abandoned", "{ended}");
        assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
        let report =
            tokio::task::block_in_place(|| server.get(&format!("/api/v1/interviews/{id}/report")));
        assert_eq!(report.status, 200, "{}", report.text());
        let report = report.json();
        assert_eq!(report["ended"]["reason"], "ended_by_candidate", "{report}");
        assert_eq!(report["duration_ms"], ended["duration_ms"], "{report}");
        let html = tokio::task::block_in_place(|| {
            server.get(&format!("/api/v1/interviews/{id}/report?format=html"))
        });
        assert!(
            html.text().contains("ended by the candidate"),
            "{}",
            html.text()
        );
    }
    for (_, tab) in calls {
        tab.close().await.unwrap();
    }

    // The list shows both, with their scores (it follows the calls without a reload).
    visit(&desk, &server, "/").await;
    let (ada, grace) = (&invited[0].0, &invited[1].0);
    let scored = desk
        .wait_for(
            &format!(
                "[{ada:?}, {grace:?}].every(id => /\\d/.test(document.querySelector(`tr[data-id=\"${{id}}\"] td.num`)?.textContent))"
            ),
            PAGE,
        )
        .await;
    assert!(scored.is_ok(), "{scored:?}");
    desk.screenshot("workspace-interviews").await.unwrap();

    // The review: the recording plays, and an evidence quote seeks the player.
    desk.click(&format!("a[href=\"/interviews/{ada}\"]"))
        .await
        .unwrap();
    desk.wait_for("document.querySelector('#player')?.readyState >= 1", PAGE)
        .await
        .unwrap();
    let target = desk
        .eval(
            "(() => {
                const chosen = document.querySelector('.quote[data-at-ms]');
                chosen.id = 'seek-target';
                // Move the player away from the target first, so reaching it shows the seek.
                const player = document.querySelector('#player');
                const at = Number(chosen.dataset.atMs) / 1000;
                player.currentTime = at > 1 ? 0 : Math.max(0, player.duration - 0.2);
                return Number(chosen.dataset.atMs);
            })()",
        )
        .await
        .unwrap();
    let at_ms = target.as_f64().expect("a turn with a moment");
    desk.screenshot("workspace-review").await.unwrap();
    desk.click("#seek-target").await.unwrap();
    let position = desk
        .wait_for(
            &format!(
                "Math.abs(document.querySelector('#player').currentTime * 1000 - {at_ms}) < 500"
            ),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        position.is_ok(),
        "the player did not move to {at_ms} ms: {:?}\nconsole: {:#?}",
        desk.eval("document.querySelector('#player').currentTime")
            .await,
        desk.console()
    );

    // The recruiter's decision, beside the AI's advice.
    desk.click("input[name=decision][value=advance]")
        .await
        .unwrap();
    desk.eval("document.querySelector('form.decide textarea[name=note]').value = 'Clear answers; <b>next round</b>'")
        .await
        .unwrap();
    desk.eval("document.querySelector('form.decide').submit()")
        .await
        .unwrap();
    desk.wait_for("!!document.querySelector('.verdict-tag.advance')", PAGE)
        .await
        .unwrap();
    desk.screenshot("workspace-decision").await.unwrap();
    sign_out(&desk).await;

    // The viewer sees it and cannot change it, even by posting the form by hand.
    sign_in(&desk, "hm@example.com").await;
    visit(&desk, &server, &format!("/interviews/{ada}")).await;
    let seen = desk
        .eval(
            "[!!document.querySelector('.verdict-tag.advance'),
              document.querySelectorAll('[name=decision]').length,
              document.body.textContent.includes('<b>next round</b>')]",
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        serde_json::json!([true, 0, true]),
        "the decision, no form, the note as text"
    );
    let refused = desk
        .eval(&format!(
            "fetch('/interviews/{ada}/decision', {{method: 'POST',
               headers: {{'Content-Type': 'application/x-www-form-urlencoded'}},
               body: 'decision=reject&csrf=' + document.querySelector('input[name=csrf]').value}})
             .then(reply => reply.status)"
        ))
        .await
        .unwrap();
    assert_eq!(
        refused, 403,
        "a viewer's own form token does not make them a recruiter"
    );

    // Both candidates side by side.
    visit(&desk, &server, "/compare?job=backend-developer").await;
    for id in [ada, grace] {
        desk.click(&format!("input[name=ids][value=\"{id}\"]"))
            .await
            .unwrap();
    }
    desk.eval("document.querySelector('input[name=ids]').form.submit()")
        .await
        .unwrap();
    let side_by_side = desk
        .wait_for(
            "document.querySelectorAll('table.side thead th a').length === 2",
            PAGE,
        )
        .await;
    assert!(side_by_side.is_ok(), "{side_by_side:?}");
    desk.screenshot("workspace-compare").await.unwrap();
    let verdicts =
        tokio::task::block_in_place(|| server.get(&format!("/api/v1/interviews/{ada}")).json());
    assert_eq!(
        verdicts["status"], "abandoned",
        "a decision changes no state: {verdicts}"
    );
}

/// Opens `path` of the server in `tab` and waits for the new page to load.
async fn visit(tab: &Tab, server: &TestServer, path: &str) {
    let url = serde_json::to_string(&server.url(path)).unwrap();
    // The page being left is marked, so that it is not mistaken for the new one (the same
    // path may be open already).
    tab.eval(&format!("window.leaving = true; location.href = {url}"))
        .await
        .unwrap();
    let path = serde_json::to_string(path.split('?').next().unwrap()).unwrap();
    tab.wait_for(
        &format!(
            "!window.leaving && location.pathname === {path} && document.readyState === 'complete'"
        ),
        PAGE,
    )
    .await
    .unwrap();
}

/// Fills the named fields of the form `selector` and submits it as its button would.
async fn submit(tab: &Tab, selector: &str, fields: &[(&str, &str)]) {
    let fields: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(name, value)| (name.to_string(), Value::from(*value)))
        .collect();
    tab.eval(&format!(
        "(() => {{
            const form = document.querySelector({});
            for (const [name, value] of Object.entries({})) form.elements[name].value = value;
            form.requestSubmit();
        }})()",
        serde_json::to_string(selector).unwrap(),
        Value::Object(fields)
    ))
    .await
    .unwrap();
}

async fn sign_in(tab: &Tab, email: &str) {
    tab.wait_for("location.pathname === '/login'", PAGE)
        .await
        .unwrap();
    submit(
        tab,
        "form[action=\"/login\"]",
        &[("email", email), ("password", PASSWORD)],
    )
    .await;
    let signed_in = tab
        .wait_for(
            &format!("document.querySelector('.who span')?.textContent.includes('{email}')"),
            PAGE,
        )
        .await;
    assert!(
        signed_in.is_ok(),
        "{email}: {signed_in:?}\nconsole: {:#?}",
        tab.console()
    );
}

async fn sign_out(tab: &Tab) {
    tab.click("form[action=\"/logout\"] button").await.unwrap();
    tab.wait_for("location.pathname === '/login'", PAGE)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_call_keeps_a_playable_video_and_the_call_length() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = tokio::task::block_in_place(|| TestServer::start("browser-crash", &[]));
    let (id, browser, tab) = join_call(&server, "Barbara Liskov", CLIPS[1]).await;
    let in_call = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(12)).await;
    // kill -9 twelve seconds into the call, and ten seconds of downtime before the restart.
    let call_before_crash = in_call.elapsed().as_secs_f64();
    let server = tokio::task::block_in_place(|| server.crash_and_restart(Duration::from_secs(10)));
    drop(tab);
    drop(browser);

    let ended = tokio::task::block_in_place(|| {
        server.wait_for_interview(&id, Duration::from_secs(60), |i| {
            i["status"] != "in_progress"
        })
    });
    assert_eq!(ended["status"], "abandoned", "{ended}");
    assert_eq!(ended["end_reason"], "server_stopped", "{ended}");
    // The call's length, not the wall-clock time to the restart (which adds the downtime).
    let duration = ended["duration_ms"].as_f64().expect("a duration") / 1000.0;
    eprintln!("crash: {call_before_crash:.1} s in the call, recorded duration {duration:.1} s");
    assert!(
        duration > 4.0 && duration <= call_before_crash + 1.0,
        "duration {duration:.1} s for a call killed {call_before_crash:.1} s in"
    );
    let report =
        tokio::task::block_in_place(|| server.get(&format!("/api/v1/interviews/{id}/report")));
    assert_eq!(report.status, 200, "{}", report.text());
    let report = report.json();
    assert_eq!(report["duration_ms"], ended["duration_ms"], "{report}");
    assert_eq!(report["ended"]["reason"], "server_stopped", "{report}");

    // The camera recording was repaired at the restart: a real duration, and seekable. It
    // holds at least what the audio recording kept and no more than the call lasted. (The
    // audio recording can keep less: what it had not yet written when the process was killed
    // is lost, and more of it on a busy machine.)
    let video = server.data_dir.join(format!("interviews/{id}/video.webm"));
    let seconds = probe(&video).duration;
    eprintln!("crash: video {seconds:.1} s after the repair");
    assert!(
        seconds >= duration - 1.0 && seconds <= call_before_crash + 1.0,
        "video {seconds:.1} s, audio recording {duration:.1} s, call killed {call_before_crash:.1} s in"
    );
    assert!(
        mkvinfo(&video).contains("Cue point"),
        "the repaired video has no cues to seek by"
    );
}

/// A candidate's browser call through HAProxy (deploy/haproxy/haproxy.cfg) in front of two
/// nodes sharing one PostgreSQL database and one S3 store, as docs/deploy.md sets them up. The
/// join link points at the proxy (the nodes' `server.public_url`); the page, its details and the
/// signalling WebSocket all reach the one node the link hashes to, which runs the call (the
/// interview's owner), while the WebRTC media goes straight between the browser and that node.
/// The other node follows the live transcript and reads the finished one from the shared
/// database and store.
///
/// Needs PostgreSQL (`VIVA_TEST_POSTGRES_URL=$(scripts/postgres-test-server)`), s3s-fs
/// (`VIVA_TEST_S3_SERVER`), haproxy and Chromium. Without PostgreSQL or s3s-fs the test passes
/// without running, unless `VIVA_TEST_REQUIRE_SERVICES=1` makes that a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_through_haproxy_stays_on_one_node_of_two() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(postgres) = service_url("VIVA_TEST_POSTGRES_URL", "scripts/postgres-test-server")
    else {
        return;
    };
    let test_started = Instant::now();
    let scratch = scratch_dir("browser-proxy");
    let dir = scratch.path();
    let database = tokio::task::block_in_place(|| Postgres::create(&postgres, "browser_proxy"));
    let Some(s3) = tokio::task::block_in_place(|| S3Server::start(&dir.join("s3"))) else {
        return;
    };
    // The proxy's port is chosen first: the nodes' links must point at it.
    let proxy_port = free_tcp_port();
    let public_url = format!("http://127.0.0.1:{proxy_port}");
    let nodes = tokio::task::block_in_place(|| {
        nodes::start_nodes(
            "browser-proxy",
            &database,
            &s3,
            &[
                ("VIVA_SERVER_PUBLIC_URL", &public_url),
                ("VIVA_SERVER_TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
            ],
        )
    });
    let http_nodes: Vec<&str> = nodes
        .iter()
        .map(|node| node.base.trim_start_matches("http://"))
        .collect();
    let proxy = tokio::task::block_in_place(|| {
        Haproxy::start_nodes_on(proxy_port, &http_nodes, &dir.join("haproxy.log"))
    });
    assert_eq!(proxy.base, public_url);
    let startup = test_started.elapsed();

    let interview = tokio::task::block_in_place(|| nodes[0].schedule("Ada Lovelace"));
    let id = interview["id"].as_str().unwrap().to_owned();
    let join_url = interview["join_url"].as_str().unwrap().to_owned();
    assert!(
        join_url.starts_with(&format!("{public_url}/join/")),
        "the join link does not point at HAProxy ({public_url}): {join_url}"
    );
    let join_path = join_url[public_url.len()..].to_owned();
    let transcript_path = format!("/api/v1/interviews/{id}/transcript");

    // The fake microphone: one real sentence, then a pause long enough for the interviewer's
    // reply to it (the first knockout question, some 6 s) to end before the sentence comes
    // round again; else the candidate barges in, and the start of the sentence goes to
    // cutting the interviewer short.
    let (samples, rate, text) = clip(CLIPS[0]);
    let mic = dir.join("mic.wav");
    speech_wav_with_pauses(&mic, &[(samples, rate)], Duration::from_secs(10)).unwrap();
    let browser = Browser::launch(&mic).await.unwrap();
    let tab = browser.open(&join_url).await.unwrap();
    start_call(&tab).await;
    let in_call = test_started.elapsed();
    let heard = tab
        .wait_for(
            "document.body.dataset.speaking === 'interviewer'",
            Duration::from_secs(30),
        )
        .await;
    assert!(
        heard.is_ok(),
        "the interviewer's voice never played: {heard:?}\nconsole: {:#?}",
        tab.console()
    );

    // The call runs on the node the shared database names as the interview's owner, and only
    // there.
    let owner = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(owner) = owner(&database, &id) {
                break owner;
            }
            assert!(
                Instant::now() < deadline,
                "{id} has no owner node in progress"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let owning = NODES
        .iter()
        .position(|(name, _)| *name == owner)
        .unwrap_or_else(|| panic!("the owner {owner:?} is none of {NODES:?}"));
    let other = 1 - owning;
    let active: Vec<usize> =
        tokio::task::block_in_place(|| nodes.iter().map(calls_active).collect());
    let mut expected = vec![0, 0];
    expected[owning] = 1;
    assert_eq!(
        active, expected,
        "live calls per node, with {owner} owning the interview"
    );

    // Two answers, followed from the other node, then the candidate ends the call.
    wait_for_answers(&nodes[other], &transcript_path, 2, Duration::from_secs(60)).await;
    let answered = test_started.elapsed();
    tab.click("#end").await.unwrap();
    tab.wait_for_state("ended", Duration::from_secs(10))
        .await
        .unwrap();
    let ended = tokio::task::block_in_place(|| {
        nodes[other].wait_for_interview(&id, Duration::from_secs(30), |i| {
            i["status"] != "in_progress"
        })
    });
    assert_eq!(ended["status"], "abandoned", "{ended}");
    assert_eq!(ended["end_reason"], "ended_by_candidate", "{ended}");
    tab.close().await.unwrap();
    drop(browser);

    // The other node reads what was said: the sentence came through (whole in the answer to the
    // knockout question; the first answer barges in on the greeting and loses its start), and
    // most words heard are words that were spoken.
    let transcript = tokio::task::block_in_place(|| nodes[other].get(&transcript_path));
    assert_eq!(transcript.status, 200, "{}", transcript.text());
    let heard = words(&candidate_text(&transcript.json()));
    let spoken = words(&text);
    let said = spoken.iter().filter(|w| heard.contains(w)).count();
    let spoken_words = heard.iter().filter(|w| spoken.contains(w)).count();
    eprintln!(
        "through HAProxy on {owner}, read from {}: {said}/{} words of the sentence, \
         {spoken_words}/{} words heard were spoken: {heard:?}",
        NODES[other].0,
        spoken.len(),
        heard.len()
    );
    assert!(
        said * 10 >= spoken.len() * 8,
        "the spoken sentence is not in the transcript: {heard:?}"
    );
    assert!(
        spoken_words * 10 >= heard.len() * 6,
        "mostly words nobody said: {heard:?}"
    );

    // Every request for the join link (the page, its details, the signalling socket) went to
    // the owner. HAProxy logs a WebSocket once it closes.
    let owner_server = format!("viva_join/node{}", owning + 1);
    let link_requests = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logged: Vec<_> = proxy
                .requests()
                .into_iter()
                .filter(|r| {
                    r.path == join_path
                        || r.path.starts_with(&format!("{join_path}/"))
                        || r.path.starts_with(&format!("{join_path}?"))
                })
                .collect();
            if logged
                .iter()
                .any(|r| r.path == format!("{join_path}/signal"))
            {
                break logged;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy logged no signalling socket for {join_path}: {logged:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    for part in ["", "/details", "/signal"] {
        let path = format!("{join_path}{part}");
        assert!(
            link_requests.iter().any(|r| r.path == path),
            "HAProxy logged no request for {path}: {link_requests:?}"
        );
    }
    assert!(
        link_requests.iter().all(|r| r.served_by == owner_server),
        "requests for the join link went elsewhere than {owner_server} ({owner}): {link_requests:?}"
    );
    eprintln!(
        "browser call through HAProxy: nodes and proxy up after {:.1} s, in the call after {:.1} s, \
         two answers after {:.1} s; {} join link requests all to {owner_server}; whole test {:.1} s",
        startup.as_secs_f64(),
        in_call.as_secs_f64(),
        answered.as_secs_f64(),
        link_requests.len(),
        test_started.elapsed().as_secs_f64()
    );
}
