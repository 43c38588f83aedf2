//! In-band DTMF detection on real speech (the LibriVox clips `scripts/setup` installs under
//! `models/speech-set`): a caller talking must never type a key, at a phone's 8 kHz or at
//! 16 kHz, and neither must speech louder than life, clipped as a hot line clips it.

use std::time::{Duration, Instant};

use viva_media::{InBandDetector, decode_file, resample};
use viva_test_support::models::speech_set;

fn detect(sample_rate: u32, audio: &[f32]) -> String {
    InBandDetector::new(sample_rate)
        .push(audio)
        .into_iter()
        .collect()
}

#[test]
fn speech_triggers_nothing() {
    // CPU time and audio seconds, at 8 kHz and at 16 kHz.
    let mut cost = [(Duration::ZERO, 0.0f64); 2];
    for wav in speech_set() {
        let speech = decode_file(&wav).unwrap();
        assert_eq!(speech.sample_rate, 16_000);
        let narrowband = resample(&speech.samples, 16_000, 8_000).unwrap();
        for (slot, rate, audio) in [(0, 8_000, &narrowband), (1, 16_000, &speech.samples)] {
            // Louder than life too: speech at +6 dB, clipped as a hot line would.
            let hot: Vec<f32> = audio.iter().map(|s| (s * 2.0).clamp(-1.0, 1.0)).collect();
            for audio in [audio, &hot] {
                let started = Instant::now();
                let keys = detect(rate, audio);
                cost[slot].0 += started.elapsed();
                cost[slot].1 += audio.len() as f64 / f64::from(rate);
                assert_eq!(keys, "", "{} at {rate} Hz", wav.display());
            }
        }
    }
    for ((busy, seconds), rate) in cost.into_iter().zip(["8 kHz", "16 kHz"]) {
        let per_second = busy.as_secs_f64() / seconds;
        eprintln!(
            "in-band DTMF at {rate}: {seconds:.0} s of speech in {busy:?}, {:.3} ms CPU per \
             second of audio",
            per_second * 1e3
        );
        // Real time needs under 1000 ms per second; hundreds of calls on 2 cores far less.
        assert!(
            per_second < 0.01,
            "{per_second} s per second of audio at {rate}"
        );
    }
}
