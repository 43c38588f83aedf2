//! The callers' answers: real read speech from the speech set, trimmed to its voiced part and
//! turned into what a phone line carries (8 kHz G.711 mu-law, 20 ms a frame), with the frame
//! where the speaker really stops: as the set labels it (`NAME.lab`), or where the voice's
//! level falls away.
//!
//! Latency is measured from that real end of speech, not from the end of the clip: the clip
//! keeps the VAD's padding and the voice's fading tail, and counting from there would flatter
//! the server by a few hundred milliseconds.

use std::path::Path;

use viva_media::{G711Law, f32_to_i16, resample};
use viva_speech::VAD_SAMPLE_RATE;

/// The phone line's rate, and the bytes of one 20 ms mu-law frame at it.
pub(super) const PHONE_RATE: u32 = 8_000;
pub(super) const FRAME_BYTES: usize = (PHONE_RATE / 50) as usize;

/// mu-law's code for a zero sample: what a phone sends while its caller is silent.
pub(super) const SILENCE: u8 = 0xFF;

/// A frame quieter than the answer's loudest by this much is no longer speech...
const SPEECH_RANGE_DB: f32 = 30.0;
/// ...nor is one within this much of the recording's own noise floor (its quietest tenth).
const ABOVE_FLOOR_DB: f32 = 10.0;

/// One answer as 20 ms mu-law frames (its fading tail included).
#[derive(Debug)]
pub(super) struct Answer {
    /// The clip's name in the set, e.g. `librivox-0880`.
    pub name: String,
    pub frames: Vec<Vec<u8>>,
    /// The frame that holds the real end of the speech.
    pub speech_end: usize,
}

/// Every clip of the speech set at `dir`, as answers.
pub(super) fn load(dir: &Path) -> anyhow::Result<Vec<Answer>> {
    super::super::load_clips(dir)?
        .into_iter()
        .map(|clip| {
            let narrow = resample(&clip.samples, VAD_SAMPLE_RATE, PHONE_RATE)?;
            let frames = mulaw_frames(&narrow);
            // The set's own label where it has one: a mark made without Viva's or this
            // client's level rules, which disagree by 100-150 ms on a slowly fading word.
            let speech_end = match clip.labelled_end {
                Some(end) => end
                    .div_ceil(VAD_SAMPLE_RATE as usize / 50)
                    .saturating_sub(1),
                None => speech_end_frame(&clip.samples, VAD_SAMPLE_RATE),
            }
            .min(frames.len() - 1);
            Ok(Answer {
                name: clip.name,
                frames,
                speech_end,
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

/// The 20 ms frame of `samples` (at `rate`) where the speech ends: the last one loud enough
/// to be voice rather than its decay or the room.
pub(super) fn speech_end_frame(samples: &[f32], rate: u32) -> usize {
    let frame = (rate / 50) as usize;
    let levels: Vec<f32> = samples
        .chunks(frame)
        .map(|chunk| {
            let power = chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32;
            10.0 * power.max(1e-12).log10()
        })
        .collect();
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let (Some(&loudest), Some(&floor)) = (sorted.last(), sorted.get(sorted.len() / 10)) else {
        return 0;
    };
    let threshold = (loudest - SPEECH_RANGE_DB).max(floor + ABOVE_FLOOR_DB);
    levels
        .iter()
        .rposition(|&level| level >= threshold)
        .unwrap_or(0)
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

    #[test]
    fn speech_ends_where_the_voice_stops_not_where_the_clip_does() {
        // 1 s of quiet room, 1 s of "voice", a 100 ms decay, then 0.5 s of room again.
        let rate = 16_000;
        let mut noise = 12_345u32;
        let mut room = |n: usize, level: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    level * ((noise >> 8) as f32 / (1 << 24) as f32 - 0.5)
                })
                .collect()
        };
        let mut samples = room(16_000, 0.002);
        samples.extend((0..16_000).map(|n| 0.3 * (n as f32 * 0.1).sin()));
        samples.extend(room(1_600, 0.05));
        samples.extend(room(8_000, 0.002));
        // The voice fills frames 50..100; the decay (-20 dB) is still voice-like, the room
        // after it is not.
        assert_eq!(speech_end_frame(&samples, rate), 104);
        assert_eq!(speech_end_frame(&[], rate), 0);
    }
}
