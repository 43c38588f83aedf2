//! The headless-Chromium harness (`viva_test_support::browser`) the end-to-end browser tests
//! use, checked against a tiny page served here: the fake microphone really plays our WAV, the
//! fake camera yields frames, and `eval`, `wait_for`, `click`, `console`, `close` and dropping
//! the browser behave as documented.

use std::f32::consts::TAU;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use viva_test_support::browser::{Browser, speech_wav_with_pauses};
use viva_test_support::scratch_dir;

/// Tones the fake microphone plays, far from each other and from Chromium's own fake-device
/// beep, so hearing both proves the page receives our file.
const LOW_TONE_HZ: f32 = 600.0;
const HIGH_TONE_HZ: f32 = 1500.0;

/// The test page: opens camera and microphone, shows the camera, and measures the microphone
/// with an AnalyserNode: `document.title` is the current RMS level, `heardHz` the dominant
/// frequencies of loud moments, `minLevel`/`maxLevel` the extremes.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>waiting</title></head>
<body>
<button id="disabled" disabled>Disabled</button>
<button id="hidden" style="display:none">Hidden</button>
<button id="go" onclick="window.clicks += 1">Go</button>
<video id="camera" autoplay muted playsinline></video>
<script>
window.clicks = 0;
window.heardHz = [];
window.minLevel = 1;
window.maxLevel = 0;
addEventListener('pagehide', () => navigator.sendBeacon('/closed'));
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  window.videoTracks = stream.getVideoTracks().length;
  window.audioTracks = stream.getAudioTracks().length;
  document.getElementById('camera').srcObject = stream;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 4096;
  // Each spectrum on its own: no blending with the previous tone's.
  analyser.smoothingTimeConstant = 0;
  context.createMediaStreamSource(stream).connect(analyser);
  const wave = new Float32Array(analyser.fftSize);
  const spectrum = new Float32Array(analyser.frequencyBinCount);
  setInterval(() => {
    analyser.getFloatTimeDomainData(wave);
    let energy = 0;
    for (const sample of wave) energy += sample * sample;
    const level = Math.sqrt(energy / wave.length);
    document.title = level.toFixed(4);
    minLevel = Math.min(minLevel, level);
    maxLevel = Math.max(maxLevel, level);
    if (level > 0.05) {
      analyser.getFloatFrequencyData(spectrum);
      let peak = 1;
      for (let bin = 1; bin < spectrum.length; bin++) if (spectrum[bin] > spectrum[peak]) peak = bin;
      const hz = Math.round(peak * context.sampleRate / analyser.fftSize);
      if (!heardHz.includes(hz)) heardHz.push(hz);
    }
  }, 50);
  console.log('media ready', context.state, context.sampleRate);
})().catch(error => console.error('media failed: ' + error));
</script>
</body></html>
"#;

fn tone(hz: f32, rate: u32, seconds: f32) -> (Vec<f32>, u32) {
    let samples = (rate as f32 * seconds) as usize;
    let wave = (0..samples)
        .map(|n| 0.5 * (TAU * hz * n as f32 / rate as f32).sin())
        .collect();
    (wave, rate)
}

/// Serves the test page on a free loopback port; counts the `pagehide` beacons it receives.
async fn serve_page() -> (String, Arc<AtomicUsize>) {
    let closed = Arc::new(AtomicUsize::new(0));
    let beacons = Arc::clone(&closed);
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/closed",
            post(move || {
                beacons.fetch_add(1, Ordering::SeqCst);
                async {}
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, closed)
}

/// Processes still alive (not zombies) in process group `group`.
fn live_processes_in_group(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // After the `(comm)` field: state, ppid, pgrp.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or("", |(_, rest)| rest)
                    .split_whitespace()
                    .collect();
                fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string()
            })
        })
        .collect()
}

#[test]
fn speech_wav_puts_each_clip_before_a_pause_at_48k() {
    let scratch = scratch_dir("speech-wav");
    let dir = scratch.path();
    let wav = dir.join("answers.wav");
    // Different rates: 16 kHz (speech recognition) and 22.05 kHz (Piper), both resampled.
    let clips = [
        tone(LOW_TONE_HZ, 16_000, 1.0),
        tone(HIGH_TONE_HZ, 22_050, 0.5),
    ];
    speech_wav_with_pauses(&wav, &clips, Duration::from_millis(700)).expect("wav written");

    let mut reader = hound::WavReader::open(&wav).expect("readable");
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (48_000, 1, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    // 1 s + 0.7 s + 0.5 s + 0.7 s.
    assert_eq!(samples.len(), 48_000 + 33_600 + 24_000 + 33_600);
    let rms = |range: std::ops::Range<usize>| {
        let part = &samples[range];
        (part.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / part.len() as f64).sqrt()
    };
    // A 0.5-amplitude sine has RMS 0.354 of full scale (11,585); pauses are silent.
    assert!((rms(1_000..47_000) - 11_585.0).abs() < 300.0);
    assert_eq!(rms(48_500..81_000), 0.0);
    assert!((rms(82_600..104_600) - 11_585.0).abs() < 300.0);
    assert_eq!(rms(106_000..139_200), 0.0);
    // The resampled tones keep their pitch: count rising zero crossings over whole seconds'
    // worth of each clip.
    let crossings = |range: std::ops::Range<usize>| {
        samples[range]
            .windows(2)
            .filter(|pair| pair[0] < 0 && pair[1] >= 0)
            .count()
    };
    assert!(crossings(0..48_000).abs_diff(600) <= 2);
    assert!(crossings(81_600..105_600).abs_diff(750) <= 2);

    assert!(speech_wav_with_pauses(&wav, &[], Duration::ZERO).is_err());
    assert!(speech_wav_with_pauses(&wav, &[(Vec::new(), 16_000)], Duration::ZERO).is_err());
}

#[tokio::test]
async fn launch_refuses_a_microphone_file_that_is_not_a_wav() {
    let scratch = scratch_dir("not-a-wav");
    let dir = scratch.path();
    let missing = Browser::launch(&dir.join("missing.wav")).await;
    assert!(format!("{:#}", missing.err().expect("missing file refused")).contains("missing.wav"));
    let text = dir.join("notes.wav");
    std::fs::write(&text, "not audio").expect("written");
    let error = Browser::launch(&text)
        .await
        .err()
        .expect("text file refused");
    assert!(
        format!("{error:#}").contains("not a readable WAV"),
        "{error:#}"
    );
}

#[tokio::test]
async fn chromium_hears_the_wav_sees_the_camera_and_goes_away_on_drop() {
    let scratch = scratch_dir("browser-harness");
    let dir = scratch.path();
    let wav = dir.join("mic.wav");
    speech_wav_with_pauses(
        &wav,
        &[
            tone(LOW_TONE_HZ, 16_000, 1.0),
            tone(HIGH_TONE_HZ, 48_000, 1.0),
        ],
        Duration::from_millis(700),
    )
    .expect("wav written");
    let (url, closed_beacons) = serve_page().await;

    let started = Instant::now();
    let browser = Browser::launch(&wav).await.expect("chromium launches");
    let launched = started.elapsed();
    let tab = browser.open(&url).await.expect("page opens");
    let opened = started.elapsed();
    eprintln!("chromium launched in {launched:?}, page loaded at {opened:?}");

    // Microphone: the level rises above zero, both tones are heard, and so are the pauses.
    let level = tab
        .wait_for(
            "Number(document.title) > 0 && document.title",
            Duration::from_secs(10),
        )
        .await
        .expect("mic level above zero");
    eprintln!("first mic level {level} at {:?}", started.elapsed());
    let near = |hz: f32| format!("heardHz.some(hz => Math.abs(hz - {hz}) < 25)");
    tab.wait_for(
        &format!(
            "{} && {} && minLevel < 0.001 && maxLevel > 0.2",
            near(LOW_TONE_HZ),
            near(HIGH_TONE_HZ)
        ),
        Duration::from_secs(15),
    )
    .await
    .expect("both tones and the pauses heard");
    // Logged, not asserted to be exactly the two tones: on a starved CPU the fake capture
    // drops audio now and then, and the click of a gap peaks low (75 Hz was seen).
    let heard = tab.eval("heardHz").await.expect("heard frequencies");
    eprintln!("dominant frequencies heard: {heard}");

    // Camera: one video track that produces frames.
    let size = tab
        .wait_for(
            "videoTracks === 1 && audioTracks === 1 && document.getElementById('camera').videoWidth > 0 \
             && [camera.videoWidth, camera.videoHeight]",
            Duration::from_secs(10),
        )
        .await
        .expect("camera frames");
    eprintln!("fake camera frame size {size}");

    // eval: values, promises, exceptions and rejections.
    assert_eq!(tab.eval("1 + 2").await.expect("sum"), serde_json::json!(3));
    assert_eq!(
        tab.eval("undefined").await.expect("undefined"),
        serde_json::Value::Null
    );
    assert_eq!(
        tab.eval("new Promise(resolve => setTimeout(() => resolve({late: true}), 50))")
            .await
            .expect("promise"),
        serde_json::json!({"late": true})
    );
    let thrown = tab
        .eval("(() => { throw new Error('boom from the harness test') })()")
        .await
        .expect_err("a throw is an error");
    assert!(
        format!("{thrown:#}").contains("boom from the harness test"),
        "{thrown:#}"
    );
    let rejected = tab
        .eval("Promise.reject(new TypeError('rejected in the harness test'))")
        .await
        .expect_err("a rejection is an error");
    assert!(
        format!("{rejected:#}").contains("rejected in the harness test"),
        "{rejected:#}"
    );

    // click: enabled works once per call; disabled, hidden and missing elements are refused.
    tab.click("#go").await.expect("enabled button clicks");
    tab.click("#go").await.expect("enabled button clicks again");
    assert_eq!(
        tab.eval("clicks").await.expect("clicks"),
        serde_json::json!(2)
    );
    let disabled = tab.click("#disabled").await.expect_err("disabled refused");
    assert!(format!("{disabled:#}").contains("disabled"), "{disabled:#}");
    let hidden = tab.click("#hidden").await.expect_err("hidden refused");
    assert!(format!("{hidden:#}").contains("not rendered"), "{hidden:#}");
    let missing = tab.click("#start").await.expect_err("missing refused");
    assert!(format!("{missing:#}").contains("no element"), "{missing:#}");
    assert_eq!(
        tab.eval("clicks").await.expect("clicks"),
        serde_json::json!(2)
    );

    // console: page logs and uncaught exceptions, and both in a wait_for timeout.
    tab.eval("setTimeout(() => { throw new Error('uncaught later') }, 0); true")
        .await
        .expect("scheduled");
    tab.wait_for(
        "new Promise(resolve => setTimeout(() => resolve(true), 100))",
        Duration::from_secs(2),
    )
    .await
    .expect("a tick passed");
    let console = tab.console();
    assert!(
        console
            .iter()
            .any(|line| line.contains("console.log: media ready running")),
        "{console:#?}"
    );
    assert!(
        console
            .iter()
            .any(|line| line.contains("uncaught exception") && line.contains("uncaught later")),
        "{console:#?}"
    );
    let timeout_started = Instant::now();
    let timed_out = tab
        .wait_for("clicks > 5", Duration::from_millis(300))
        .await
        .expect_err("never truthy");
    assert!(timeout_started.elapsed() < Duration::from_secs(2));
    let timed_out = format!("{timed_out:#}");
    assert!(
        timed_out.contains("clicks > 5") && timed_out.contains("last value was false"),
        "{timed_out}"
    );
    assert!(
        timed_out.contains("media ready") && timed_out.contains("uncaught later"),
        "{timed_out}"
    );

    // Reload: a wait whose evaluation the navigation cuts short keeps waiting and then sees
    // the fresh page (its click count back at zero).
    tab.eval("location.reload()").await.expect("reload starts");
    tab.wait_for(
        "new Promise(resolve => setTimeout(() => resolve(clicks === 0), 300))",
        Duration::from_secs(10),
    )
    .await
    .expect("the reloaded page");

    // close: a second tab goes away like a user closing it (pagehide runs), the first stays.
    let second = browser.open(&url).await.expect("second tab opens");
    // The reload above sent one beacon already.
    let beacons_before = closed_beacons.load(Ordering::SeqCst);
    let closing = Instant::now();
    second.close().await.expect("tab closes");
    eprintln!("tab closed in {:?}", closing.elapsed());
    let deadline = Instant::now() + Duration::from_secs(5);
    while closed_beacons.load(Ordering::SeqCst) == beacons_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        closed_beacons.load(Ordering::SeqCst),
        beacons_before + 1,
        "closed tab sent its pagehide beacon"
    );
    assert_eq!(
        tab.eval("clicks").await.expect("first tab alive"),
        serde_json::json!(0)
    );

    // Drop: the browser and every helper process are gone.
    let pid = browser.pid();
    assert!(
        !live_processes_in_group(pid).is_empty(),
        "chromium runs as its own group"
    );
    let dropped = Instant::now();
    drop(browser);
    eprintln!("browser dropped in {:?}", dropped.elapsed());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "browser process {pid} gone"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while !live_processes_in_group(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        live_processes_in_group(pid),
        Vec::<u32>::new(),
        "no chromium helper left"
    );
    let orphan_started = Instant::now();
    let orphan = tab.eval("1").await.expect_err("the browser is gone");
    assert!(format!("{orphan:#}").contains("dropped"), "{orphan:#}");
    assert!(
        orphan_started.elapsed() < Duration::from_secs(1),
        "fails at once, no timeout"
    );
}
