//! In-band DTMF detection on real speech (the LibriVox clips `scripts/setup` installs under
//! `models/speech-set`): a caller talking must never type a key, at a phone's 8 kHz or at
//! 16 kHz, and neither must speech louder than life, clipped as a hot line clips it. What the
//! detection costs is measured by `cargo bench -p viva-media`.

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
    for wav in speech_set() {
        let speech = decode_file(&wav).unwrap();
        assert_eq!(speech.sample_rate, 16_000);
        let narrowband = resample(&speech.samples, 16_000, 8_000).unwrap();
        for (rate, audio) in [(8_000, &narrowband), (16_000, &speech.samples)] {
            // Louder than life too: speech at +6 dB, clipped as a hot line would.
            let hot: Vec<f32> = audio.iter().map(|s| (s * 2.0).clamp(-1.0, 1.0)).collect();
            for audio in [audio, &hot] {
                assert_eq!(detect(rate, audio), "", "{} at {rate} Hz", wav.display());
            }
        }
    }
}
