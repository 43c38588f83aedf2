//! Both directions of the call lined up on the call clock: candidate left, interviewer right,
//! 16 kHz, silence wherever nobody spoke.

use std::collections::VecDeque;

use super::timeline::Pos;

/// Blocks shorter than this wait for more audio (20 ms), so the recording is not written
/// sample by sample.
const MIN_BLOCK: Pos = 320;

#[derive(Default)]
pub(crate) struct RecordingTap {
    /// Everything before this position has been handed out.
    written: Pos,
    /// Samples from `written` on.
    left: VecDeque<f32>,
    right: VecDeque<f32>,
}

impl RecordingTap {
    /// Candidate audio starting at `start` (gaps before it become silence).
    pub fn candidate(&mut self, start: Pos, samples: &[f32]) {
        put(&mut self.left, self.written, start, samples);
    }

    /// Interviewer audio starting at `start` (gaps before it become silence).
    pub fn interviewer(&mut self, start: Pos, samples: &[f32]) {
        put(&mut self.right, self.written, start, samples);
    }

    /// Position up to which candidate audio has arrived.
    pub fn candidate_end(&self) -> Pos {
        self.written + self.left.len() as Pos
    }

    /// The stereo block from the last one up to `until`, if it is long enough (or `force`d,
    /// at the end of the call).
    pub fn take(&mut self, until: Pos, force: bool) -> Option<(Vec<f32>, Vec<f32>)> {
        if until <= self.written || (!force && until - self.written < MIN_BLOCK) {
            return None;
        }
        let len = (until - self.written) as usize;
        let left = drain_padded(&mut self.left, len);
        let right = drain_padded(&mut self.right, len);
        self.written = until;
        Some((left, right))
    }

    /// Everything held, up to the later of the two channels' ends.
    pub fn take_all(&mut self) -> Option<(Vec<f32>, Vec<f32>)> {
        let end = self.written + self.left.len().max(self.right.len()) as Pos;
        self.take(end, true)
    }
}

/// Writes `samples` at `start` into a channel buffer that begins at `base`.
fn put(channel: &mut VecDeque<f32>, base: Pos, start: Pos, samples: &[f32]) {
    // Audio for a time already written is late beyond repair; keep what is still ahead.
    let skip = base.saturating_sub(start) as usize;
    let Some(samples) = samples.get(skip..) else {
        return;
    };
    let start = start.max(base);
    let offset = (start - base) as usize;
    if channel.len() < offset {
        channel.resize(offset, 0.0);
    }
    for (i, &sample) in samples.iter().enumerate() {
        match channel.get_mut(offset + i) {
            Some(slot) => *slot = sample,
            None => channel.push_back(sample),
        }
    }
}

fn drain_padded(channel: &mut VecDeque<f32>, len: usize) -> Vec<f32> {
    let take = channel.len().min(len);
    let mut block: Vec<f32> = channel.drain(..take).collect();
    block.resize(len, 0.0);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_aligned_and_silence_filled() {
        let mut tap = RecordingTap::default();
        tap.candidate(0, &[0.1; 400]);
        tap.interviewer(1000, &[0.5; 320]);
        assert!(tap.take(100, false).is_none(), "too short a block");
        let (left, right) = tap.take(400, false).unwrap();
        assert_eq!(left, vec![0.1; 400]);
        assert_eq!(right, vec![0.0; 400]);
        tap.candidate(800, &[0.2; 10]); // a gap of 400 samples
        let (left, right) = tap.take_all().unwrap();
        assert_eq!(left.len(), 920);
        assert_eq!(&left[..400], &[0.0; 400]);
        assert_eq!(&left[400..410], &[0.2; 10]);
        assert_eq!(&right[..600], &[0.0; 600]);
        assert_eq!(&right[600..], &[0.5; 320]);
    }

    #[test]
    fn late_audio_keeps_only_its_unwritten_part() {
        let mut tap = RecordingTap::default();
        tap.candidate(0, &[0.1; 640]);
        tap.take(640, false).unwrap();
        tap.interviewer(600, &[0.5; 100]);
        let (_, right) = tap.take_all().unwrap();
        assert_eq!(right, vec![0.5; 60]);
    }
}
