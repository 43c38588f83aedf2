//! sipp calls the endpoint: answered calls over UDP and TCP, CANCEL, DTMF by SIP INFO and by
//! RFC 4733, a WAV streamed as RTP, the maximum call duration, and admission rules.

mod support;

use std::time::Duration;

use support::*;
use viva_test_support::scratch_dir;
use viva_transport_sip::{SipTransport, Trunk};

const CALL_SETUP: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_over_udp_is_answered_and_hangs_up() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sn", "uac", "-s", "4711", "-d", "2000", "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    assert_eq!(call.dialled, "4711");
    assert_eq!(call.caller, "sipp");
    let received = drain(&mut call.call, Duration::from_secs(10)).await;
    assert!(received.hung_up, "BYE becomes a hang-up");
    // Two seconds of call: a frame every 20 ms, silence included (sipp sends no RTP).
    assert!(received.frames >= 80, "{received:?}");
    assert!(
        received.longest_gap < Duration::from_millis(250),
        "{received:?}"
    );
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "sipp scenario passed"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_over_tcp_is_answered_and_hangs_up() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let mut sipp = Sipp::spawn(
        endpoint.tcp_addr(),
        &["-sn", "uac", "-s", "900", "-d", "1000", "-t", "t1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    assert_eq!(call.dialled, "900");
    let received = drain(&mut call.call, Duration::from_secs(10)).await;
    assert!(received.hung_up);
    assert!(received.frames >= 30, "{received:?}");
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "sipp scenario passed"
    );
    let messages = sipp.messages();
    assert!(messages.contains("SIP/2.0/TCP"), "{messages}");
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing_gets_487_and_no_call() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scenario = scenario("uac_cancel.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "200 to CANCEL, then 487"
    );
    // RFC 3261 §8.2.6.2: every response in the transaction carries the same To tag.
    let messages = sipp.messages();
    let ringing = to_tag_of(&messages, "SIP/2.0 180");
    let terminated = to_tag_of(&messages, "SIP/2.0 487");
    assert!(ringing.is_some(), "{messages}");
    assert_eq!(ringing, terminated, "{messages}");
    let late = tokio::time::timeout(Duration::from_secs(1), incoming.recv()).await;
    assert!(late.is_err(), "a cancelled call is never handed over");
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_by_sip_info_arrives_as_keys() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scenario = scenario("uac_info_dtmf.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    let received = drain(&mut call.call, Duration::from_secs(10)).await;
    assert_eq!(received.keys, vec!['5', '#']);
    assert!(received.hung_up);
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "both INFOs answered 200"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_by_rfc4733_arrives_once() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scenario = scenario("uac_rfc4733.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    let received = drain(&mut call.call, Duration::from_secs(10)).await;
    // Ten packets, three of them retransmitted end packets: one key.
    assert_eq!(received.keys, vec!['1']);
    assert!(received.hung_up);
    assert!(sipp.finish(Duration::from_secs(15)).await);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_wav_arrives_as_audio_with_energy() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scratch = scratch_dir("sip-wav");
    let dir = scratch.path();
    // Two seconds of a vowel-like sound: 140 Hz fundamental with harmonics, syllable-rate
    // amplitude changes, and 100 ms pauses between "words".
    let samples: Vec<f32> = (0..16_000)
        .map(|n| {
            let t = n as f32 / 8_000.0;
            let word = (n / 4_000) % 2 == 0 || n % 4_000 < 3_200;
            let envelope = if word && n % 4_000 < 3_200 {
                0.5 + 0.5 * (2.0 * std::f32::consts::PI * 4.0 * t).sin().abs()
            } else {
                0.0
            };
            let voice: f32 = (1..=6)
                .map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32)
                .sum();
            0.2 * envelope * voice
        })
        .collect();
    let wav = dir.join("speech.wav");
    write_mulaw_wav(&wav, &samples);
    let template = std::fs::read_to_string(scenario("uac_rtp_stream.xml")).unwrap();
    let xml = dir.join("rtp_stream.xml");
    std::fs::write(
        &xml,
        template
            .replace("@WAV@", wav.to_str().unwrap())
            .replace("@PAUSE@", "3000"),
    )
    .unwrap();

    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", xml.to_str().unwrap(), "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    let received = drain(&mut call.call, Duration::from_secs(12)).await;
    assert!(received.hung_up);
    // 2 s of sound of which 1.6 s is voiced: about 80 loud frames, allowing for the
    // stream's start and jitter-buffer delay.
    assert!(received.loud_frames >= 60, "{received:?}");
    assert!(received.loud_frames <= 110, "{received:?}");
    // The whole call stays continuous.
    assert!(received.frames >= 130, "{received:?}");
    assert!(
        received.keys.is_empty(),
        "speech is not DTMF: {:?}",
        received.keys
    );
    assert!(sipp.finish(Duration::from_secs(15)).await);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_call_duration_ends_the_call_with_bye() {
    let settings = viva_transport_sip::SipSettings {
        max_call: Duration::from_secs(2),
        ..loopback_settings()
    };
    let (endpoint, mut incoming) = start(settings).await;
    let scenario = scenario("uac_wait_bye.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    let started = tokio::time::Instant::now();
    let received = drain(&mut call.call, Duration::from_secs(10)).await;
    assert!(received.hung_up, "the conversation hears the hang-up");
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(1800) && lasted < Duration::from_secs(4),
        "{lasted:?}"
    );
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "sipp got the BYE"
    );
    endpoint.shutdown().await;
}

fn trunk(allow: &[&str], credentials: bool) -> Trunk {
    Trunk {
        name: "carrier".into(),
        address: "192.0.2.1".into(),
        transport: SipTransport::Udp,
        allow: allow.iter().map(|s| s.to_string()).collect(),
        username: credentials.then(|| "alice".into()),
        password: credentials.then(|| "s3cret".into()),
        register: false,
        register_expires_secs: 3600,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_outside_the_allow_list_are_refused() {
    let settings = viva_transport_sip::SipSettings {
        trunks: vec![trunk(&["192.0.2.0/24"], false)],
        ..loopback_settings()
    };
    let (endpoint, mut incoming) = start(settings).await;
    let scenario = scenario("uac_forbidden.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    assert!(sipp.finish(Duration::from_secs(15)).await, "403 Forbidden");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), incoming.recv())
            .await
            .is_err()
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_listed_trunks_and_digest_logins_get_in() {
    let settings = viva_transport_sip::SipSettings {
        trunks: vec![trunk(&["127.0.0.0/8"], false)],
        ..loopback_settings()
    };
    let (endpoint, mut incoming) = start(settings).await;
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sn", "uac", "-s", "1", "-d", "200", "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    assert!(drain(&mut call.call, Duration::from_secs(10)).await.hung_up);
    assert!(sipp.finish(Duration::from_secs(15)).await);
    endpoint.shutdown().await;

    let settings = viva_transport_sip::SipSettings {
        trunks: vec![trunk(&[], true)],
        ..loopback_settings()
    };
    let (endpoint, mut incoming) = start(settings).await;
    let scenario = scenario("uac_digest.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &[
            "-sf",
            scenario.to_str().unwrap(),
            "-t",
            "u1",
            "-au",
            "alice",
            "-ap",
            "s3cret",
        ],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    assert!(drain(&mut call.call, Duration::from_secs(10)).await.hung_up);
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "401, then 200 with credentials"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvites_hold_resume_and_change_codec_without_dropping_the_call() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scenario = scenario("uac_reinvite.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    let received = drain(&mut call.call, Duration::from_secs(15)).await;
    assert!(received.hung_up, "only the final BYE ends the call");
    assert!(
        sipp.finish(Duration::from_secs(20)).await,
        "answers: recvonly, then PCMA sendrecv"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hangs_up_live_calls() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scenario = scenario("uac_wait_bye.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    let mut call = next_call(&mut incoming, CALL_SETUP).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    endpoint.shutdown().await;
    assert!(drain(&mut call.call, Duration::from_secs(5)).await.hung_up);
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "sipp got the BYE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_hang_up_sends_bye() {
    let (endpoint, mut incoming) = start(loopback_settings()).await;
    let scenario = scenario("uac_wait_bye.xml");
    let mut sipp = Sipp::spawn(
        endpoint.udp_addr(),
        &["-sf", scenario.to_str().unwrap(), "-t", "u1"],
    );
    let call = next_call(&mut incoming, CALL_SETUP).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.call
        .outbound
        .send(viva_call::CallOutput::HangUp)
        .await
        .unwrap();
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "sipp got the BYE"
    );
    endpoint.shutdown().await;
}

/// The To tag of the first received message whose start line begins with `status`.
fn to_tag_of(messages: &str, status: &str) -> Option<String> {
    let message = &messages[messages.find(status)?..];
    let to = message
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("to:"))?;
    let tag = &to[to.find(";tag=")? + 5..];
    Some(tag.split([';', '>', ' ']).next()?.trim().to_string())
}
