//! The Piper voice on the real model and ONNX Runtime that `scripts/setup` installs: it speaks
//! audibly, sentence by sentence, gives the same samples for the same text in every engine and
//! process (so the voice cache can keep them, across restarts), and turns a damaged model into
//! an error rather than a crash.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use viva_speech::{Tts, TtsConfig, TtsError, VoiceCacheConfig, VoicePart};
use viva_test_support::models::{SETUP, model};
use viva_test_support::scratch_dir;

const QUESTION: &str = "How do you approach database optimization?";

/// The real Piper voice, loaded once for all tests in this process.
fn piper() -> Arc<Tts> {
    static PIPER: OnceLock<Arc<Tts>> = OnceLock::new();
    PIPER
        .get_or_init(|| Arc::new(Tts::load(&voice_config()).unwrap()))
        .clone()
}

/// The real Piper voice with no voice cache: every sentence is synthesized.
fn uncached() -> Tts {
    Tts::load(&voice_config())
        .unwrap()
        .with_cache(VoiceCacheConfig::disabled())
        .unwrap()
}

/// The voice and runtime `scripts/setup` installs in the repository's models/ directory.
fn voice_config() -> TtsConfig {
    TtsConfig {
        voice: model("piper/en_US-joe-medium.onnx"),
        onnxruntime: model("onnxruntime/libonnxruntime.so"),
    }
}

/// The samples' exact bits, folded (FNV-1a) into one number that is easy to print.
fn digest(samples: &[f32]) -> u64 {
    samples.iter().fold(0xcbf2_9ce4_8422_2325, |hash, sample| {
        (hash ^ u64::from(sample.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

#[test]
fn piper_speaks_a_question_audibly() {
    let tts = piper();
    assert_eq!(tts.voice_name(), "en_US-joe-medium");
    assert_eq!(tts.sample_rate(), 22050);
    let samples = tts.synthesize(QUESTION).unwrap();
    let duration = samples.len() as f32 / tts.sample_rate() as f32;
    assert!((1.0..5.0).contains(&duration), "{duration} s");
    assert!(rms(&samples) > 0.02, "rms {}", rms(&samples));
    assert!(samples.iter().all(|s| (-1.0..=1.0).contains(s)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_yields_sentences_in_order() {
    let tts = piper();
    let reply = "Thanks for walking me through that. \
                 How do you approach database optimization? \
                 Take your time.";
    let mut receiver = tts.stream(reply.to_owned(), Instant::now());
    let mut spoken = Vec::new();
    while let Some(sentence) = receiver.recv().await {
        let sentence = sentence.unwrap();
        assert!(
            rms(&sentence.samples) > 0.02,
            "{:?} is silent",
            sentence.text
        );
        spoken.push(sentence.text);
    }
    assert_eq!(
        spoken,
        [
            "Thanks for walking me through that.",
            "How do you approach database optimization?",
            "Take your time."
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_stops_synthesis() {
    let tts = piper();
    let reply = "One. Two. Three. Four. Five. Six. Seven. Eight.".to_owned();
    let mut receiver = tts.stream(reply, Instant::now());
    assert!(receiver.recv().await.is_some());
    drop(receiver);
    // The blocking task ends on its own; the engine stays usable.
    assert!(!tts.synthesize("Still here.").unwrap().is_empty());
}

#[test]
fn same_text_gives_the_same_samples_every_time_in_every_engine() {
    let reply = "Thanks for walking me through that. How do you approach database optimization?";
    let tts = uncached();
    let first = digest(&tts.synthesize(reply).unwrap());
    assert_eq!(digest(&tts.synthesize(reply).unwrap()), first);
    assert_eq!(digest(&uncached().synthesize(reply).unwrap()), first);
    // Different text is different audio, and so is the same sentence said as a question.
    let other = piper().synthesize("How do you approach caching?").unwrap();
    assert_ne!(digest(&other), first);
    let statement = piper()
        .synthesize("You approach database optimization.")
        .unwrap();
    let question = piper()
        .synthesize("You approach database optimization?")
        .unwrap();
    assert_ne!(digest(&statement), digest(&question));
}

/// Runs itself again as a child process confined to one core (`taskset`), which prints the
/// digest of its audio instead: another process on another number of cores must hear
/// exactly the same.
#[test]
fn same_text_gives_the_same_samples_in_another_process_on_one_core() {
    const CHILD: &str = "VIVA_TTS_DIGEST_CHILD";
    let digest = format!(
        "digest {:016x}",
        digest(&uncached().synthesize(QUESTION).unwrap())
    );
    if std::env::var_os(CHILD).is_some() {
        println!("{digest}");
        return;
    }
    let child = std::process::Command::new("taskset")
        .args(["--cpu-list", "0"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "same_text_gives_the_same_samples_in_another_process_on_one_core",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("taskset (util-linux) runs the test binary");
    let printed = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "{printed}");
    assert!(printed.contains(&digest), "expected {digest}: {printed}");
}

/// A second engine (a restarted server) reads the first one's sentences from disk instead of
/// synthesizing them, and hears exactly what a fresh synthesis gives.
#[test]
fn cached_sentences_outlive_the_engine_on_disk() {
    let scratch = scratch_dir("piper-voice-cache");
    let cached = || {
        Tts::load(&voice_config())
            .unwrap()
            .with_cache(VoiceCacheConfig {
                dir: Some(scratch.path().to_owned()),
                memory_bytes: 16 << 20,
                disk_bytes: 16 << 20,
            })
            .unwrap()
    };
    let reply = "Thanks, that's helpful. How do you handle cache invalidation efficiently?";
    let fresh = uncached().synthesize(reply).unwrap();

    let first = cached();
    assert_eq!(digest(&first.synthesize(reply).unwrap()), digest(&fresh));
    drop(first);
    let files = std::fs::read_dir(scratch.path()).unwrap().count();
    assert_eq!(files, 2, "one file per sentence");

    // Swapping the two files' contents shows the restarted engine reads them rather than
    // synthesizing: it then says the sentences the other way round.
    let paths: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    let contents: Vec<_> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    std::fs::write(&paths[0], &contents[1]).unwrap();
    std::fs::write(&paths[1], &contents[0]).unwrap();
    let sentences: Vec<Vec<f32>> = uncached()
        .sentences(reply)
        .map(|sentence| sentence.unwrap().samples)
        .collect();
    let swapped = [sentences[1].clone(), sentences[0].clone()].concat();
    assert_eq!(
        digest(&cached().synthesize(reply).unwrap()),
        digest(&swapped)
    );
}

#[test]
fn a_truncated_model_is_an_error_not_a_crash() {
    let scratch = scratch_dir("piper-corrupt");
    let voice = scratch.path().join("voice.onnx");
    let real = voice_config().voice;
    let model = std::fs::read(&real).unwrap();
    std::fs::write(&voice, &model[..model.len() / 2]).unwrap();
    std::fs::copy(
        real.with_extension("onnx.json"),
        voice.with_extension("onnx.json"),
    )
    .unwrap();
    let loaded = Tts::load(&TtsConfig {
        voice: voice.clone(),
        ..voice_config()
    });
    let err = loaded.err().expect("a truncated model must not load");
    let message = err.to_string();
    match &err {
        TtsError::VoiceUnavailable { part, path, .. } => {
            assert_eq!((*part, path), (VoicePart::Model, &voice), "{message}");
        }
        other => panic!("not VoiceUnavailable: {other}"),
    }
    for needed in ["is not a complete ONNX model", SETUP, "tts.voice"] {
        assert!(message.contains(needed), "{needed:?} missing: {message}");
    }
}

#[test]
fn odd_text_never_fails() {
    let long = "We scaled the cluster, and then we measured again ".repeat(20);
    let espeak = Tts::espeak("en-us").expect("espeak-ng must be installed");
    for tts in [&*piper(), &espeak] {
        for silent in ["", "   ", "?!", "... , ;", "\n\n"] {
            let samples = tts.synthesize(silent).unwrap();
            assert!(
                samples.is_empty(),
                "{silent:?} gave {} samples",
                samples.len()
            );
        }
        for odd in [
            "🚀😀",
            "nul\0inside",
            "C++ & C# at 10:30?",
            "naïve café façade",
            &long,
        ] {
            let samples = tts.synthesize(odd).unwrap();
            assert!(
                !samples.is_empty(),
                "{odd:?} gave no audio on {}",
                tts.voice_name()
            );
        }
    }
}
