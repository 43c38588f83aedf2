//! The caller's audio: mu-law payloads of any size, as the CPaaS sends them, turned into one
//! continuous stream of 20 ms 8 kHz frames for the conversation.

use std::time::Duration;

use viva_call::{MAX_GAP_FILL, PHONE_RATE, frame_samples};
use viva_media::{G711Law, PcmFrame, i16_to_f32};

/// Samples in one 20 ms frame at 8 kHz.
const FRAME_SAMPLES: usize = frame_samples(PHONE_RATE);
/// Samples per millisecond at 8 kHz.
const SAMPLES_PER_MS: u64 = PHONE_RATE as u64 / 1000;
/// The longest hole filled with silence. The conversation realigns a stream that stalls for
/// longer with silence of its own, so filling a longer hole here as well would push the
/// caller's audio later on the call clock.
const MAX_FILL_SAMPLES: u64 = MAX_GAP_FILL.as_millis() as u64 * SAMPLES_PER_MS;

/// Re-chunks the caller's mu-law into 20 ms frames, filling holes in the stream with silence.
///
/// A hole is a payload whose `timestamp` lies at least a frame past where the previous payload
/// ended (the CPaaS lost or skipped audio). Timestamps are whole milliseconds, so smaller
/// differences are rounding: the stream's position is counted in samples, and timestamps
/// only place the payload after a hole. Payloads without a timestamp are taken as
/// contiguous.
#[derive(Debug, Default)]
pub(crate) struct CallerAudio {
    /// Decoded samples not yet making up a whole frame.
    pending: Vec<f32>,
    /// Samples passed on so far: where the next frame starts on the stream's own clock.
    produced: u64,
    /// The first payload's timestamp: the origin of the sender's timeline.
    origin_ms: Option<u64>,
    /// Where the next payload should start on the sender's timeline, in samples.
    expected: u64,
}

impl CallerAudio {
    /// Takes one payload; returns the whole frames it completes (fill first, after a hole).
    pub fn push(&mut self, timestamp_ms: Option<u64>, mulaw: &[u8]) -> Vec<PcmFrame> {
        let length = mulaw.len() as u64;
        match (timestamp_ms, self.origin_ms) {
            (Some(timestamp), None) => {
                self.origin_ms = Some(timestamp);
                self.expected = length;
            }
            (Some(timestamp), Some(origin)) => {
                let position = timestamp.saturating_sub(origin) * SAMPLES_PER_MS;
                let hole = position as i64 - self.expected as i64;
                if (FRAME_SAMPLES as i64..=MAX_FILL_SAMPLES as i64).contains(&hole) {
                    self.pending.resize(self.pending.len() + hole as usize, 0.0);
                    self.expected = position;
                } else if hole.unsigned_abs() >= FRAME_SAMPLES as u64 {
                    // A hole too long to fill, or timestamps that went back: follow the
                    // sender's timeline from here, so one odd timestamp costs one decision.
                    self.expected = position;
                }
                // Otherwise the difference is the timestamps' rounding to whole milliseconds:
                // counting samples stays exact.
                self.expected += length;
            }
            (None, _) => self.expected += length,
        }
        self.pending
            .extend(G711Law::MuLaw.decode(mulaw).into_iter().map(i16_to_f32));
        let whole = self.pending.len() - self.pending.len() % FRAME_SAMPLES;
        let ready: Vec<f32> = self.pending.drain(..whole).collect();
        ready
            .chunks(FRAME_SAMPLES)
            .filter_map(|chunk| self.frame(chunk.to_vec()))
            .collect()
    }

    /// The stream ended: the audio left over, padded with silence to a whole frame.
    pub fn flush(&mut self) -> Option<PcmFrame> {
        if self.pending.is_empty() {
            return None;
        }
        let mut last = std::mem::take(&mut self.pending);
        last.resize(FRAME_SAMPLES, 0.0);
        self.frame(last)
    }

    fn frame(&mut self, samples: Vec<f32>) -> Option<PcmFrame> {
        let at = Duration::from_micros(self.produced * 1_000_000 / u64::from(PHONE_RATE));
        self.produced += samples.len() as u64;
        // 8 kHz is a valid rate, so this never drops a frame.
        PcmFrame::new(samples, PHONE_RATE, at).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use viva_media::f32_to_i16;

    /// mu-law codes of a recognisable ramp, `len` samples starting at `from`.
    fn ramp(from: usize, len: usize) -> Vec<u8> {
        (from..from + len)
            .map(|n| G711Law::MuLaw.encode_sample(((n % 200) as i16 - 100) * 200))
            .collect()
    }

    fn samples(frames: &[PcmFrame]) -> Vec<i16> {
        frames
            .iter()
            .flat_map(|frame| frame.samples().iter().map(|&s| f32_to_i16(s)))
            .collect()
    }

    #[test]
    fn payloads_of_any_size_become_continuous_20_ms_frames() {
        let mut audio = CallerAudio::default();
        let mut frames = Vec::new();
        let mut sent = 0;
        let mut timestamp_ms = 1_000;
        for size in [1, 159, 160, 333, 7, 480, 100, 60] {
            frames.extend(audio.push(Some(timestamp_ms), &ramp(sent, size)));
            sent += size;
            timestamp_ms = 1_000 + (sent as u64) / 8;
        }
        assert_eq!(sent, 1300);
        assert_eq!(frames.len(), 8, "1300 samples hold 8 whole frames");
        for (index, frame) in frames.iter().enumerate() {
            assert_eq!(frame.sample_rate(), PHONE_RATE);
            assert_eq!(frame.samples().len(), FRAME_SAMPLES);
            assert_eq!(frame.timestamp(), Duration::from_millis(20 * index as u64));
        }
        let last = audio.flush().expect("20 samples are left over");
        assert_eq!(last.samples().len(), FRAME_SAMPLES);
        assert_eq!(last.timestamp(), Duration::from_millis(160));
        assert!(audio.flush().is_none(), "flushing twice gives nothing more");
        frames.push(last);

        let expected = G711Law::MuLaw.decode(&ramp(0, 1300));
        let got = samples(&frames);
        assert_eq!(
            &got[..1300],
            &expected[..],
            "every sample arrives, in order"
        );
        assert!(
            got[1300..].iter().all(|&s| s == 0),
            "the last frame is padded with silence"
        );
    }

    #[test]
    fn short_holes_are_filled_with_silence_long_ones_left_to_the_conversation() {
        let mut audio = CallerAudio::default();
        let mut frames = audio.push(Some(0), &ramp(0, 160));
        // 60 ms lost after the first frame.
        frames.extend(audio.push(Some(80), &ramp(160, 160)));
        assert_eq!(frames.len(), 5);
        let got = samples(&frames);
        assert!(got[160..640].iter().all(|&s| s == 0), "the hole is silent");
        assert_eq!(&got[640..], &G711Law::MuLaw.decode(&ramp(160, 160))[..]);

        // Timestamps rounded to the millisecond are not holes (a 100-sample payload lasts 12.5 ms).
        let mut audio = CallerAudio::default();
        let mut produced = 0;
        for index in 0..16u64 {
            produced += audio.push(Some(index * 25 / 2), &ramp(0, 100)).len();
        }
        assert_eq!(produced, 10, "1600 samples, no fill");

        // A second of silence suppression is not filled here: the conversation realigns.
        let mut audio = CallerAudio::default();
        let mut frames = audio.push(Some(0), &ramp(0, 160));
        frames.extend(audio.push(Some(1_020), &ramp(160, 160)));
        // ... and the stream follows the sender's clock afterwards: no fill for the next one.
        frames.extend(audio.push(Some(1_040), &ramp(320, 160)));
        assert_eq!(frames.len(), 3);
        assert!(samples(&frames).iter().any(|&s| s != 0));
        assert_eq!(frames[2].timestamp(), Duration::from_millis(40));

        // Exactly the longest fill, then a timestamp going backwards (no fill, no panic).
        let mut audio = CallerAudio::default();
        let mut frames = audio.push(Some(500), &ramp(0, 160));
        frames.extend(audio.push(Some(720), &ramp(0, 160)));
        assert_eq!(frames.len(), 12, "200 ms of fill");
        frames.extend(audio.push(Some(100), &ramp(0, 160)));
        assert_eq!(frames.len(), 13);
    }

    #[test]
    fn payloads_without_timestamps_are_contiguous() {
        let mut audio = CallerAudio::default();
        let mut frames = Vec::new();
        for _ in 0..3 {
            frames.extend(audio.push(None, &ramp(0, 240)));
        }
        frames.extend(audio.flush());
        assert_eq!(frames.len(), 5);
        assert_eq!(
            samples(&frames)[..720],
            G711Law::MuLaw.decode(&ramp(0, 240).repeat(3))[..]
        );
        assert!(
            audio.push(Some(5), &[]).is_empty(),
            "an empty payload gives nothing"
        );
    }
}
