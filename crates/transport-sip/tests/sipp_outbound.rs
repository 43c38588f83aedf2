//! The endpoint calls out to sipp: an answered call with audio both ways, a number through a
//! trunk that demands digest authentication, busy, no answer, and unreachable targets.

mod support;

use std::f32::consts::PI;
use std::time::Duration;

use support::*;
use tokio::sync::mpsc;
use viva_call::CallOutput;
use viva_media::PcmFrame;
use viva_transport_sip::{DialError, DialProgress, SipSettings, SipTransport, Trunk};

fn progress_channel() -> (
    mpsc::UnboundedSender<DialProgress>,
    mpsc::UnboundedReceiver<DialProgress>,
) {
    mpsc::unbounded_channel()
}

fn collected(mut progress: mpsc::UnboundedReceiver<DialProgress>) -> Vec<DialProgress> {
    let mut seen = Vec::new();
    while let Ok(p) = progress.try_recv() {
        seen.push(p);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_carries_audio_both_ways_and_hangs_up() {
    let (endpoint, _incoming) = start(loopback_settings()).await;
    // sipp's UAS answers, and echoes every RTP packet back to its sender.
    let mut sipp = Sipp::spawn(None, &["-sn", "uas", "-rtp_echo", "-t", "u1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (progress_tx, progress) = progress_channel();
    let target = format!("sip:service@{}", sipp.addr());
    let mut call = endpoint
        .dial("dial-1", &target, progress_tx)
        .await
        .expect("sipp answers");
    assert_eq!(call.id, "dial-1");
    assert_eq!(call.output_rate, 8_000);
    assert_eq!(
        collected(progress),
        vec![
            DialProgress::Trying,
            DialProgress::Ringing,
            DialProgress::Answered
        ]
    );

    // One second of 440 Hz, paced like the conversation paces it, with a pause in the middle.
    let sender = call.outbound.clone();
    let speaker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0..60u32 {
            tick.tick().await;
            if (25..35).contains(&n) {
                continue; // a pause: the call clock moves on, no frames
            }
            let samples: Vec<f32> = (0..160)
                .map(|i| 0.3 * (2.0 * PI * 440.0 * (n * 160 + i) as f32 / 8_000.0).sin())
                .collect();
            let frame =
                PcmFrame::new(samples, 8_000, Duration::from_millis(20 * u64::from(n))).unwrap();
            sender.send(CallOutput::Audio(frame)).await.unwrap();
        }
    });
    let received = drain(&mut call, Duration::from_millis(2_000)).await;
    speaker.await.unwrap();
    // 50 frames of tone went out; the echo brings them back through the jitter buffer.
    assert!(received.loud_frames >= 40, "{received:?}");
    assert!(!received.hung_up);

    call.outbound.send(CallOutput::HangUp).await.unwrap();
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "sipp got our BYE"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_go_through_the_trunk_with_digest_authentication() {
    let scenario = scenario("uas_digest.xml");
    let mut sipp = Sipp::spawn(None, &["-sf", scenario.to_str().unwrap(), "-t", "u1"]);
    let settings = SipSettings {
        trunks: vec![Trunk {
            name: "sipp-trunk".into(),
            address: sipp.addr().to_string(),
            transport: SipTransport::Udp,
            allow: Vec::new(),
            username: Some("alice".into()),
            password: Some("s3cret".into()),
            register: false,
            register_expires_secs: 3600,
        }],
        ..loopback_settings()
    };
    let (endpoint, _incoming) = start(settings).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (progress_tx, _progress) = progress_channel();
    let call = endpoint
        .dial("dial-2", "+1 555 0100", progress_tx)
        .await
        .expect("the trunk accepts our credentials");
    call.outbound.send(CallOutput::HangUp).await.unwrap();
    assert!(sipp.finish(Duration::from_secs(15)).await);
    let messages = sipp.messages();
    assert!(
        messages.contains("INVITE sip:+15550100@127.0.0.1"),
        "{messages}"
    );
    assert!(messages.contains("Authorization: Digest"), "{messages}");
    drop(call);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_callee_is_busy() {
    let (endpoint, _incoming) = start(loopback_settings()).await;
    let scenario = scenario("uas_busy.xml");
    let mut sipp = Sipp::spawn(None, &["-sf", scenario.to_str().unwrap(), "-t", "u1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (progress_tx, _progress) = progress_channel();
    let target = format!("sip:busy@{}", sipp.addr());
    let outcome = endpoint.dial("dial-3", &target, progress_tx).await;
    assert_eq!(outcome.err(), Some(DialError::Busy));
    assert!(sipp.finish(Duration::from_secs(15)).await, "486 was ACKed");
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_call_is_cancelled_after_the_ring_timeout() {
    let settings = SipSettings {
        ring_timeout: Duration::from_secs(2),
        ..loopback_settings()
    };
    let (endpoint, _incoming) = start(settings).await;
    let scenario = scenario("uas_no_answer.xml");
    let mut sipp = Sipp::spawn(None, &["-sf", scenario.to_str().unwrap(), "-t", "u1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (progress_tx, progress) = progress_channel();
    let target = format!("sip:nobody@{}", sipp.addr());
    let started = tokio::time::Instant::now();
    let outcome = endpoint.dial("dial-4", &target, progress_tx).await;
    assert_eq!(outcome.err(), Some(DialError::NoAnswer));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(
        collected(progress),
        vec![DialProgress::Trying, DialProgress::Ringing]
    );
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "CANCEL, 487, ACK"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_unreachable_targets_fail_cleanly() {
    let settings = SipSettings {
        ring_timeout: Duration::from_secs(1),
        ..loopback_settings()
    };
    let (endpoint, _incoming) = start(settings).await;

    // Nothing answers on this UDP port: no response at all.
    let silent = format!("sip:ghost@127.0.0.1:{}", free_udp_port());
    let (progress_tx, _progress) = progress_channel();
    assert_eq!(
        endpoint.dial("dial-5", &silent, progress_tx).await.err(),
        Some(DialError::Timeout)
    );

    // Nothing listens on this TCP port: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("sip:ghost@127.0.0.1:{closed};transport=tcp");
    let (progress_tx, _progress) = progress_channel();
    let outcome = endpoint.dial("dial-6", &refused, progress_tx).await;
    assert!(
        matches!(outcome, Err(DialError::Unreachable(_))),
        "{outcome:?}"
    );

    // A number with no trunk to carry it.
    let (progress_tx, _progress) = progress_channel();
    assert!(matches!(
        endpoint.dial("dial-7", "+15550100", progress_tx).await,
        Err(DialError::BadTarget { .. })
    ));
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hanging_up_ends_the_call() {
    let (endpoint, _incoming) = start(loopback_settings()).await;
    let scenario = scenario("uas_hangs_up.xml");
    let mut sipp = Sipp::spawn(None, &["-sf", scenario.to_str().unwrap(), "-t", "u1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (progress_tx, _progress) = progress_channel();
    let target = format!("sip:service@{}", sipp.addr());
    let mut call = endpoint
        .dial("dial-8", &target, progress_tx)
        .await
        .expect("sipp answers");
    let received = drain(&mut call, Duration::from_secs(5)).await;
    assert!(received.hung_up, "the callee's BYE becomes a hang-up");
    assert!(received.frames >= 40, "{received:?}");
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "our 200 to the BYE"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_over_tcp() {
    let (endpoint, _incoming) = start(loopback_settings()).await;
    let mut sipp = Sipp::spawn(None, &["-sn", "uas", "-t", "t1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (progress_tx, _progress) = progress_channel();
    let target = format!("sip:service@{};transport=tcp", sipp.addr());
    let call = endpoint
        .dial("dial-9", &target, progress_tx)
        .await
        .expect("sipp answers over TCP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    call.outbound.send(CallOutput::HangUp).await.unwrap();
    assert!(
        sipp.finish(Duration::from_secs(15)).await,
        "sipp got our BYE over TCP"
    );
    assert!(sipp.messages().contains("SIP/2.0/TCP"));
    endpoint.shutdown().await;
}
