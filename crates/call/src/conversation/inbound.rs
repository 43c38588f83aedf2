//! The candidate's audio on its way in: resampled to 16 kHz, placed on the call clock, scored
//! by the voice activity detector, and kept long enough to transcribe the current utterance.

use std::collections::VecDeque;
use std::time::Duration;

use viva_media::{PcmFrame, Resampler};
use viva_speech::{VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE, VoiceActivity, level_db};

use super::timeline::{Pos, duration_of, pos_at, samples_for};

/// An inbound stream that falls this far behind the call clock has stalled (the transport
/// stopped sending) and is realigned with silence; one this far ahead (a sender whose clock
/// runs fast) loses a frame. Either way the recording stays in step.
const STALL: Duration = crate::port::MAX_GAP_FILL;
/// While the caller is not speaking, a stream further ahead of the call clock than this loses
/// what it is ahead by. Audio that queued while the call was set up (or while the call's task
/// was held up) arrives in a burst and would otherwise put everything the caller says later
/// on the call clock than it was heard: every turn's end, and so every reply, came that much
/// late and the latency log read that much low (200 ms at the start of a media-stream call;
/// 36 ms for the whole call while whole frames were dropped only past two frames of lead).
/// Jitter only delays frames, so a frame's lead is never more than the stream's: trimming it
/// never puts the stream behind.
const IDLE_LEAD: Duration = Duration::from_millis(4);

/// Scores 16 kHz audio for speech, one score in `[0, 1]` per 256-sample frame.
pub(crate) trait VoiceDetector: Send {
    fn push(&mut self, samples: &[f32], scores: &mut Vec<f32>);
}

impl VoiceDetector for VoiceActivity {
    fn push(&mut self, samples: &[f32], scores: &mut Vec<f32>) {
        VoiceActivity::push(self, samples, scores);
    }
}

/// Newly heard 16 kHz audio and the detector's verdicts on it.
pub(crate) struct Heard {
    /// Position of `samples[0]` on the call clock.
    pub start: Pos,
    pub samples: Vec<f32>,
    /// Each detector frame completed by this audio.
    pub frames: Vec<DetectorFrame>,
}

/// One 16 ms detector frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DetectorFrame {
    /// Position just after the frame.
    pub end: Pos,
    /// The detector's speech score.
    pub score: f32,
    /// How loud it is (dBFS), to tell speech from its fading tail.
    pub level_db: f32,
}

pub(crate) struct Inbound {
    detector: Box<dyn VoiceDetector>,
    resampler: Option<Resampler>,
    /// Call-clock time just after the last input sample; `None` before the first frame.
    input_end: Option<Duration>,
    /// Position just after the last 16 kHz sample produced.
    stream_end: Pos,
    /// Position where the next detector frame starts.
    vad_next: Pos,
    history: VecDeque<f32>,
    history_start: Pos,
    scores: Vec<f32>,
    /// A rate the resampler refused, so the warning is logged once, not 50 times a second.
    refused_rate: Option<u32>,
}

impl Inbound {
    pub fn new(detector: Box<dyn VoiceDetector>) -> Self {
        Self {
            detector,
            resampler: None,
            input_end: None,
            stream_end: 0,
            vad_next: 0,
            history: VecDeque::new(),
            history_start: 0,
            scores: Vec::new(),
            refused_rate: None,
        }
    }

    /// Position just after the last sample heard.
    pub fn end(&self) -> Pos {
        self.stream_end
    }

    /// Takes in one transport frame that arrived at `now`; `speaking` says whether the caller
    /// is in the middle of speech (whose frames are kept even when they come early).
    pub fn push(&mut self, frame: &PcmFrame, now: Duration, speaking: bool) -> Option<Heard> {
        let rate = frame.sample_rate();
        let mut samples = Vec::new();
        if self.resampler.as_ref().is_none_or(|r| r.from_hz() != rate) {
            if self.refused_rate == Some(rate) {
                return None;
            }
            match Resampler::new(rate, VAD_SAMPLE_RATE) {
                Ok(resampler) => {
                    if let Some(mut old) = self.resampler.replace(resampler) {
                        samples.extend(old.flush());
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "caller audio dropped: its sample rate cannot be converted");
                    self.refused_rate = Some(rate);
                    return None;
                }
            }
        }
        let resampler = self.resampler.as_mut()?;

        let arrived_from = now.saturating_sub(frame.duration());
        let mut skip = 0;
        match self.input_end {
            None => {
                // The first frame ends as it arrives.
                let anchor = pos_at(arrived_from);
                self.stream_end = anchor;
                self.vad_next = anchor;
                self.history_start = anchor;
                self.input_end = Some(arrived_from);
            }
            Some(end) if arrived_from > end + STALL => {
                let gap = arrived_from - end;
                tracing::debug!(
                    gap_ms = gap.as_millis() as u64,
                    "caller audio stalled; filling with silence"
                );
                samples.extend(resampler.process(&vec![0.0; samples_for(gap, rate)]));
                self.input_end = Some(arrived_from);
            }
            Some(end) if end > arrived_from + if speaking { STALL } else { IDLE_LEAD } => {
                // A burst of queued audio, or a sender whose clock runs fast: drop what the
                // stream is ahead by (between words, all of it) rather than drift ahead of the
                // call clock (and of the interviewer's side of the recording).
                let lead = end - arrived_from;
                if speaking || lead >= frame.duration() {
                    tracing::debug!("caller audio ahead of the call clock; a frame was dropped");
                    return None;
                }
                skip = samples_for(lead, rate).min(frame.samples().len());
            }
            Some(_) => {}
        }
        samples.extend(resampler.process(&frame.samples()[skip..]));
        self.input_end = self
            .input_end
            .map(|end| end + frame.duration() - duration_of(skip, rate));

        let start = self.stream_end;
        self.stream_end += samples.len() as Pos;
        self.history.extend(&samples);
        self.scores.clear();
        self.detector.push(&samples, &mut self.scores);
        let mut frames = Vec::with_capacity(self.scores.len());
        for &score in &self.scores {
            let start = self.vad_next;
            self.vad_next += VAD_FRAME_SAMPLES as Pos;
            let level_db = level_db(&self.audio(start, self.vad_next));
            frames.push(DetectorFrame {
                end: self.vad_next,
                score,
                level_db,
            });
        }
        Some(Heard {
            start,
            samples,
            frames,
        })
    }

    /// Position just after the last frame the detector scored.
    pub fn scored_until(&self) -> Pos {
        self.vad_next
    }

    /// The heard audio in `from..to` (clamped to what is kept).
    pub fn audio(&self, from: Pos, to: Pos) -> Vec<f32> {
        let from = from.clamp(self.history_start, self.stream_end);
        let to = to.clamp(from, self.stream_end);
        let skip = (from - self.history_start) as usize;
        self.history
            .range(skip..skip + (to - from) as usize)
            .copied()
            .collect()
    }

    /// The earliest position still kept.
    pub fn kept_from(&self) -> Pos {
        self.history_start
    }

    /// Forgets audio before `pos`.
    pub fn forget_before(&mut self, pos: Pos) {
        let pos = pos.min(self.stream_end);
        if pos > self.history_start {
            self.history.drain(..(pos - self.history_start) as usize);
            self.history_start = pos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;

    impl VoiceDetector for Silent {
        fn push(&mut self, samples: &[f32], scores: &mut Vec<f32>) {
            scores.extend(std::iter::repeat_n(0.0, samples.len() / VAD_FRAME_SAMPLES));
        }
    }

    fn frame() -> PcmFrame {
        PcmFrame::new(vec![0.1; 160], 8_000, Duration::ZERO).unwrap()
    }

    #[test]
    fn the_stream_is_anchored_at_arrival_and_kept_in_step() {
        let mut inbound = Inbound::new(Box::new(Silent));
        // First frame arrives at 1.02 s: it started at 1.0 s.
        let heard = inbound
            .push(&frame(), Duration::from_millis(1020), true)
            .unwrap();
        assert_eq!(heard.start, 16_000);
        // 20 ms blocks at 16 kHz come out once a block is complete.
        let mut end = 1020;
        for _ in 0..10 {
            end += 20;
            inbound.push(&frame(), Duration::from_millis(end), true);
        }
        let in_step = inbound.end();
        assert!(
            (16_000 + 10 * 320..=16_000 + 11 * 320).contains(&in_step),
            "{in_step}"
        );

        // The sender stalls for half a second: the gap becomes silence.
        end += 500;
        let heard = inbound
            .push(&frame(), Duration::from_millis(end), true)
            .unwrap();
        assert!(heard.samples.len() >= 480 * 16, "{}", heard.samples.len());

        // A sender that runs fast loses frames once it is 200 ms ahead.
        let pushed = (0..30)
            .filter(|_| {
                inbound
                    .push(&frame(), Duration::from_millis(end), true)
                    .is_some()
            })
            .count();
        assert_eq!(pushed, 10, "10 frames (200 ms) ahead are tolerated");
    }

    #[test]
    fn audio_that_queued_while_the_caller_was_silent_is_dropped_to_stay_in_step() {
        let mut inbound = Inbound::new(Box::new(Silent));
        // 300 ms of audio queued while the call was set up, all taken in at 0.3 s: only the
        // first frame, which ends as it arrives, is kept.
        let kept = (0..15)
            .filter(|_| {
                inbound
                    .push(&frame(), Duration::from_millis(300), false)
                    .is_some()
            })
            .count();
        assert_eq!(kept, 1);
        // A frame 12 ms early loses its first 12 ms; from then on frames arriving on time are
        // all kept, in step with the clock (the resampler holds back less than a block and a
        // half).
        assert!(
            inbound
                .push(&frame(), Duration::from_millis(308), false)
                .is_some()
        );
        for i in 1..=50 {
            let now = Duration::from_millis(308 + 20 * i);
            assert!(inbound.push(&frame(), now, false).is_some());
            let end = inbound.end();
            assert!(end <= pos_at(now), "{i}: {end} ahead of {now:?}");
            assert!(
                end + pos_at(Duration::from_millis(30)) >= pos_at(now),
                "{i}: {end}"
            );
        }
        // While the caller speaks, a burst is kept (up to the stall limit): no word is lost.
        let now = Duration::from_millis(1_400);
        let kept = (0..8)
            .filter(|_| inbound.push(&frame(), now, true).is_some())
            .count();
        assert_eq!(kept, 8);
    }

    #[test]
    fn kept_audio_is_clamped_and_forgotten_on_request() {
        let mut inbound = Inbound::new(Box::new(Silent));
        for i in 1..=50 {
            inbound.push(&frame(), Duration::from_millis(20 * i), false);
        }
        let end = inbound.end();
        assert_eq!(inbound.audio(0, end).len() as Pos, end);
        inbound.forget_before(8_000);
        assert_eq!(inbound.kept_from(), 8_000);
        assert_eq!(inbound.audio(0, 8_100).len(), 100);
        assert!(inbound.audio(end, end + 100).is_empty());
    }
}
