//! The callers' answers: real read speech from the speech set, trimmed to its voiced part and
//! turned into what a phone line carries (8 kHz G.711 mu-law, 20 ms a frame).

use std::path::Path;

use viva_media::{G711Law, f32_to_i16, resample};
use viva_speech::VAD_SAMPLE_RATE;

/// The phone line's rate, and the bytes of one 20 ms mu-law frame at it.
pub(super) const PHONE_RATE: u32 = 8_000;
pub(super) const FRAME_BYTES: usize = (PHONE_RATE / 50) as usize;

/// mu-law's code for a zero sample: what a phone sends while its caller is silent.
pub(super) const SILENCE: u8 = 0xFF;

/// One answer as 20 ms mu-law frames; the last holds the end of the speech.
#[derive(Debug)]
pub(super) struct Answer {
    pub frames: Vec<Vec<u8>>,
}

/// Every clip of the speech set at `dir`, as answers.
pub(super) fn load(dir: &Path) -> anyhow::Result<Vec<Answer>> {
    super::super::load_clips(dir)?
        .into_iter()
        .map(|clip| {
            let narrow = resample(&clip.samples, VAD_SAMPLE_RATE, PHONE_RATE)?;
            Ok(Answer {
                frames: mulaw_frames(&narrow),
            })
        })
        .collect()
}

/// `samples` at 8 kHz as mu-law frames of 20 ms, the last padded with silence.
pub(super) fn mulaw_frames(samples: &[f32]) -> Vec<Vec<u8>> {
    let pcm: Vec<i16> = samples.iter().map(|&s| f32_to_i16(s)).collect();
    G711Law::MuLaw
        .encode(&pcm)
        .chunks(FRAME_BYTES)
        .map(|chunk| {
            let mut frame = chunk.to_vec();
            frame.resize(FRAME_BYTES, SILENCE);
            frame
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_becomes_whole_mulaw_frames_that_decode_back() {
        // 0.51 s of a 440 Hz tone: 25 whole frames and one padded.
        let tone: Vec<f32> = (0..4_080)
            .map(|n| 0.5 * (n as f32 * 440.0 * std::f32::consts::TAU / 8_000.0).sin())
            .collect();
        let frames = mulaw_frames(&tone);
        assert_eq!(frames.len(), 26);
        assert!(frames.iter().all(|f| f.len() == FRAME_BYTES));
        assert!(frames[25][80..].iter().all(|&b| b == SILENCE));
        assert_eq!(G711Law::MuLaw.decode(&[SILENCE]), vec![0]);
        let decoded = G711Law::MuLaw.decode(&frames[3]);
        for (n, sample) in decoded.iter().enumerate() {
            let expected = f32_to_i16(tone[3 * FRAME_BYTES + n]);
            // mu-law keeps about 3 % of the amplitude as error at this level.
            assert!(
                (i32::from(*sample) - i32::from(expected)).abs() <= 600,
                "sample {n}: {sample} for {expected}"
            );
        }
    }
}
