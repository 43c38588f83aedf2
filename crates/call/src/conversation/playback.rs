//! One interviewer line being spoken: synthesized sentences queued, cut into 20 ms frames and
//! released on the call clock.

use std::collections::VecDeque;
use std::time::Duration;

use viva_media::resample;
use viva_speech::VAD_SAMPLE_RATE;

use super::LineId;
use crate::dialogue::Line;
use crate::port::FRAME_MS;

/// 16 kHz samples in one frame.
const REC_FRAME: usize = (VAD_SAMPLE_RATE / 1000 * FRAME_MS) as usize;
pub(crate) const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);

/// One 20 ms frame ready to send: at the transport's rate, and at 16 kHz for the recording.
pub(crate) struct OutFrame {
    pub at: Duration,
    pub samples: Vec<f32>,
    pub recorded: Vec<f32>,
}

/// What queueing a sentence did to the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    /// It is the line's first audio, due at once.
    Started,
    /// It follows the audio before it without a break.
    InTime,
    /// The audio before it had played out this long ago: the listener heard a hole.
    AfterGap(Duration),
    /// It holds no audio that can be played.
    Skipped,
}

/// A sentence as queued, remembered to estimate what was heard before a barge-in.
struct Piece {
    text: String,
    recorded_len: usize,
}

pub(crate) struct Playback {
    pub line_id: LineId,
    pub line: Line,
    /// The closing line: played to its end, then the call hangs up.
    pub closing: bool,
    out_rate: u32,
    out_frame: usize,
    out: VecDeque<f32>,
    recorded: VecDeque<f32>,
    pieces: Vec<Piece>,
    recorded_played: usize,
    synthesis_done: bool,
    /// When the first frame was (or is to be) sent.
    started: Option<Duration>,
    next_frame: Duration,
    /// Frames have gone out since the last end of speech.
    speaking: bool,
}

impl Playback {
    pub fn new(line_id: LineId, line: Line, closing: bool, out_rate: u32) -> Self {
        Self {
            line_id,
            line,
            closing,
            out_rate,
            out_frame: (u64::from(out_rate) * u64::from(FRAME_MS) / 1000) as usize,
            out: VecDeque::new(),
            recorded: VecDeque::new(),
            pieces: Vec::new(),
            recorded_played: 0,
            synthesis_done: false,
            started: None,
            next_frame: Duration::ZERO,
            speaking: false,
        }
    }

    /// When the first frame went out, once it has.
    pub fn started(&self) -> Option<Duration> {
        self.started
    }

    /// End of the audio sent so far (the start time before anything was sent).
    pub fn sent_until(&self) -> Duration {
        self.next_frame
    }

    /// Queues one synthesized sentence, arriving at `start_at`.
    pub fn queue(
        &mut self,
        text: &str,
        samples: &[f32],
        sample_rate: u32,
        start_at: Duration,
    ) -> Queued {
        let converted = resample(samples, sample_rate, self.out_rate)
            .and_then(|out| Ok((out, resample(samples, sample_rate, VAD_SAMPLE_RATE)?)));
        let (out, recorded) = match converted {
            Ok(both) => both,
            Err(error) => {
                tracing::warn!(%error, text, "interviewer sentence skipped: its audio cannot be converted");
                return Queued::Skipped;
            }
        };
        if out.is_empty() {
            return Queued::Skipped;
        }
        self.pieces.push(Piece {
            text: text.to_owned(),
            recorded_len: recorded.len(),
        });
        // After an underrun (synthesis slower than playing: no whole frame was ready when one
        // was due), resume on a fresh frame grid rather than send frames dated in the past.
        let idle = self.next_frame < start_at && !self.frame_ready();
        self.out.extend(out);
        self.recorded.extend(recorded);
        if self.started.is_none() {
            self.started = Some(start_at);
            self.next_frame = start_at;
            return Queued::Started;
        }
        if idle {
            let gap = start_at - self.next_frame;
            self.next_frame = start_at;
            return Queued::AfterGap(gap);
        }
        Queued::InTime
    }

    /// No more sentences will come.
    pub fn synthesis_done(&mut self) {
        self.synthesis_done = true;
    }

    /// When something happens next without new input: a frame is due, the line ends, or the
    /// speech stops for want of audio.
    pub fn deadline(&self) -> Option<Duration> {
        // A partial frame waiting for the next sentence is not ready: waking for it would
        // find nothing to do, again and again.
        let ready = self.frame_ready() || self.synthesis_done || self.speaking;
        (self.started.is_some() && ready).then_some(self.next_frame)
    }

    /// Whether a whole frame (or the line's last, padded one) can be played.
    fn frame_ready(&self) -> bool {
        self.out.len() >= self.out_frame || (self.synthesis_done && !self.out.is_empty())
    }

    /// Whether everything was played and the last frame has ended by `now`.
    pub fn finished(&self, now: Duration) -> bool {
        self.synthesis_done
            && self.out.is_empty()
            && (self.started.is_none() || now >= self.next_frame)
    }

    /// The next frame if it is due at `now` and its audio is ready.
    pub fn next_frame(&mut self, now: Duration) -> Option<OutFrame> {
        self.started?;
        if self.next_frame > now || self.out.is_empty() {
            return None;
        }
        if self.out.len() < self.out_frame && !self.synthesis_done {
            return None; // wait for the next sentence rather than play a clipped frame
        }
        let at = self.next_frame;
        let samples = take_padded(&mut self.out, self.out_frame);
        let recorded_real = self.recorded.len().min(REC_FRAME);
        let recorded = take_padded(&mut self.recorded, REC_FRAME);
        if self.out.is_empty() && self.synthesis_done {
            // The last frame: both renderings end together (they can differ by a sample of
            // rounding per sentence).
            self.recorded.clear();
        }
        self.recorded_played += recorded_real;
        self.next_frame += FRAME;
        self.speaking = true;
        Some(OutFrame {
            at,
            samples,
            recorded,
        })
    }

    /// Whether the interviewer's speech stops at `now`: the last frame sent has ended and no
    /// more audio is ready (the line is over, or synthesis is behind). True once per stop.
    pub fn stops_speaking(&mut self, now: Duration) -> bool {
        let stops = self.speaking && now >= self.next_frame && !self.frame_ready();
        if stops {
            self.speaking = false;
        }
        stops
    }

    /// The words played so far, estimated from the audio sent: whole sentences, then the
    /// share of the current sentence's words its played share suggests.
    pub fn heard(&self) -> String {
        let mut left = self.recorded_played;
        let mut words: Vec<&str> = Vec::new();
        for piece in &self.pieces {
            let piece_words: Vec<&str> = piece.text.split_whitespace().collect();
            if left >= piece.recorded_len {
                words.extend(piece_words);
                left -= piece.recorded_len;
            } else {
                let share = piece_words.len() * left / piece.recorded_len.max(1);
                words.extend(&piece_words[..share]);
                break;
            }
        }
        words.join(" ")
    }
}

fn take_padded(queue: &mut VecDeque<f32>, len: usize) -> Vec<f32> {
    let take = queue.len().min(len);
    let mut frame: Vec<f32> = queue.drain(..take).collect();
    frame.resize(len, 0.0);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Line {
        Line {
            kind: crate::dialogue::LineKind::Question,
            question_id: Some("q".into()),
            text: "One two three four. Five six.".into(),
        }
    }

    #[test]
    fn frames_follow_the_clock_and_stop_at_the_end() {
        let mut playback = Playback::new(LineId(1), line(), false, 8_000);
        let start = Duration::from_millis(1000);
        // 100 ms of audio at 16 kHz.
        assert_eq!(
            playback.queue("One two three four.", &[0.5; 1600], 16_000, start),
            Queued::Started
        );
        playback.synthesis_done();
        assert!(playback.next_frame(Duration::from_millis(999)).is_none());
        let mut sent = Vec::new();
        let mut now = start;
        while !playback.finished(now) {
            while let Some(frame) = playback.next_frame(now) {
                assert_eq!(frame.samples.len(), 160);
                assert_eq!(frame.recorded.len(), 320);
                sent.push(frame.at);
            }
            now += Duration::from_millis(1);
        }
        assert_eq!(sent.len(), 5);
        assert_eq!(sent[4], Duration::from_millis(1080));
        assert_eq!(now, Duration::from_millis(1100));
        assert_eq!(playback.heard(), "One two three four.");
    }

    #[test]
    fn heard_counts_words_in_proportion() {
        let mut playback = Playback::new(LineId(1), line(), false, 16_000);
        playback.queue("One two three four.", &[0.5; 3200], 16_000, Duration::ZERO);
        assert_eq!(
            playback.queue("Five six.", &[0.5; 3200], 16_000, Duration::ZERO),
            Queued::InTime
        );
        for _ in 0..5 {
            playback.next_frame(Duration::from_secs(1)).unwrap();
        }
        assert_eq!(playback.heard(), "One two");
        for _ in 0..10 {
            playback.next_frame(Duration::from_secs(1)).unwrap();
        }
        assert_eq!(playback.heard(), "One two three four. Five");
    }

    #[test]
    fn speech_stops_when_the_audio_runs_out_once_per_stop() {
        let mut playback = Playback::new(LineId(1), line(), false, 16_000);
        playback.queue("One.", &[0.5; 640], 16_000, Duration::ZERO);
        assert!(!playback.stops_speaking(Duration::ZERO), "nothing sent yet");
        playback.next_frame(Duration::ZERO).unwrap();
        assert!(
            !playback.stops_speaking(Duration::from_millis(10)),
            "the frame is still playing and another is ready"
        );
        playback.next_frame(Duration::from_millis(20)).unwrap();
        assert!(
            playback.stops_speaking(Duration::from_millis(40)),
            "synthesis is behind"
        );
        assert!(
            !playback.stops_speaking(Duration::from_millis(60)),
            "once per stop"
        );
        playback.queue("Two.", &[0.5; 320], 16_000, Duration::from_millis(70));
        playback.synthesis_done();
        playback.next_frame(Duration::from_millis(70)).unwrap();
        assert!(
            playback.stops_speaking(Duration::from_millis(90)),
            "the line is over"
        );
    }

    #[test]
    fn an_underrun_waits_resumes_on_a_new_grid_and_says_how_long_the_hole_was() {
        let mut playback = Playback::new(LineId(1), line(), false, 16_000);
        playback.queue("One.", &[0.5; 320], 16_000, Duration::ZERO);
        assert!(playback.next_frame(Duration::ZERO).is_some());
        assert!(playback.next_frame(Duration::from_millis(50)).is_none());
        assert_eq!(
            playback.deadline(),
            Some(Duration::from_millis(20)),
            "the speech stops when its last frame has played"
        );
        assert!(playback.stops_speaking(Duration::from_millis(50)));
        assert_eq!(
            playback.deadline(),
            None,
            "nothing to wait for but synthesis"
        );
        assert_eq!(
            playback.queue("Two.", &[0.5; 320], 16_000, Duration::from_millis(57)),
            Queued::AfterGap(Duration::from_millis(37)),
            "the first frame ended at 20 ms"
        );
        let frame = playback.next_frame(Duration::from_millis(57)).unwrap();
        assert_eq!(frame.at, Duration::from_millis(57));
    }
}
