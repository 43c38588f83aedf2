//! One candidate utterance in progress: its place on the clock and its transcription, done
//! piece by piece in the pauses so the text is ready when the turn ends.

use std::time::Duration;

use tracing::Span;
use viva_speech::{Talkspurt, VAD_FRAME_SAMPLES};

use super::timeline::Pos;
use super::{Heard, JobId};

/// Last words after which a speaker is still mid-thought: a pause after them is thinking, not
/// the end of the turn. Only words that rarely end a finished English sentence.
const TRAILING_WORDS: &[&str] = &[
    "and", "so", "um", "umm", "uh", "uhm", "er", "erm", "ah", "hmm", "because", "but", "or", "the",
    "a", "an", "to", "of", "with",
];

/// Whether a (partial) transcript sounds unfinished: it trails off with a filler or a
/// conjunction, whisper marked it as cut off ("...", a comma, a dash), or it put no mark at
/// all: whisper closes every sentence it heard end, and leaves one hanging ("I prefer
/// small") open.
pub(crate) fn sounds_unfinished(text: &str) -> bool {
    let text = text.trim_end();
    if text.ends_with(char::is_alphanumeric) {
        return true;
    }
    if ["...", "…", ",", "-", "—", ":"]
        .iter()
        .any(|mark| text.ends_with(mark))
    {
        return true;
    }
    let Some(last) = text.split_whitespace().last() else {
        return false;
    };
    let word = last
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    TRAILING_WORDS.contains(&word.as_str())
}

/// A transcription covering `..end` of the utterance's audio.
struct Chunk {
    job: JobId,
    end: Pos,
    /// Kept even if the candidate goes on speaking (long answers are transcribed in parts,
    /// so no single transcription grows too long).
    committed: bool,
    heard: Option<Heard>,
}

/// What the end-of-turn model made of the current pause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PauseJudgement {
    /// Asked, no answer yet.
    Awaited(JobId),
    /// How likely the candidate sounds finished, in `[0, 1]`.
    Judged(f32),
}

pub(crate) struct Utterance {
    /// First voiced frame.
    pub start: Pos,
    /// The voiced frames and their loudness, for the real end of speech.
    talkspurt: Talkspurt,
    voiced_frames: u32,
    /// The end-of-turn model's view of the current pause, if it was asked, and the end of
    /// the audio it heard.
    pub judgement: Option<PauseJudgement>,
    judged_until: Option<Pos>,
    chunks: Vec<Chunk>,
    /// Where the audio of the next transcription starts.
    next_chunk_start: Pos,
    /// When the transcript up to the current pause became complete.
    pub text_ready_at: Option<Duration>,
    pub span: Span,
}

impl Utterance {
    pub fn new(start: Pos, end: Pos, level_db: f32, audio_start: Pos, span: Span) -> Self {
        Self {
            start,
            talkspurt: Talkspurt::new(end, level_db),
            voiced_frames: 1,
            judgement: None,
            judged_until: None,
            chunks: Vec::new(),
            next_chunk_start: audio_start,
            text_ready_at: None,
            span,
        }
    }

    /// A voiced detector frame ending at `end`, `level_db` loud. Speech (by its level, not
    /// the detector's score decaying over the voice's tail) after the audio a transcript or
    /// judgement covered makes it stale, unless the transcript was committed.
    pub fn voiced(&mut self, end: Pos, level_db: f32) {
        self.talkspurt.voiced(end, level_db);
        self.voiced_frames += 1;
        let spoken = self.speech_end();
        if self.judged_until.is_some_and(|until| spoken > until) {
            self.judgement = None;
            self.judged_until = None;
        }
        if let Some(last) = self.chunks.last()
            && last.end <= spoken
        {
            self.text_ready_at = None;
            if !last.committed {
                self.chunks.pop();
            }
        }
    }

    /// The end-of-turn model was asked (`job`) about the audio up to `until`.
    pub fn judging(&mut self, job: JobId, until: Pos) {
        self.judgement = Some(PauseJudgement::Awaited(job));
        self.judged_until = Some(until);
    }

    /// A detector frame heard silent during the utterance, `level_db` loud: the line's
    /// background, which the voice's end is told from.
    pub fn unvoiced(&mut self, level_db: f32) {
        self.talkspurt.unvoiced(level_db);
    }

    /// End of the last voiced frame: the detector's end of speech, which lags the voice by
    /// the 100-300 ms its score takes to decay.
    pub fn last_voiced(&self) -> Pos {
        self.talkspurt.last_voiced()
    }

    /// Where the candidate's voice really stopped: the end of speech the pauses are counted
    /// from and the latency is measured from.
    pub fn speech_end(&self) -> Pos {
        self.talkspurt.speech_end(VAD_FRAME_SAMPLES as Pos)
    }

    /// Number of voiced detector frames so far.
    pub fn voiced_frames(&self) -> u32 {
        self.voiced_frames
    }

    /// Whether any transcription was asked for.
    pub fn has_chunks(&self) -> bool {
        !self.chunks.is_empty()
    }

    /// The audio still needed for transcription starts here.
    pub fn audio_from(&self) -> Pos {
        self.next_chunk_start
    }

    /// Whether the speech up to the current pause still needs a transcription.
    pub fn needs_chunk(&self) -> bool {
        self.chunks
            .last()
            .is_none_or(|c| c.end <= self.speech_end())
    }

    /// Records a transcription of `audio_from()..end`; it is committed when at least
    /// `commit_after` long.
    pub fn add_chunk(&mut self, job: JobId, end: Pos, commit_after: Pos) {
        let committed = end.saturating_sub(self.next_chunk_start) >= commit_after;
        self.chunks.push(Chunk {
            job,
            end,
            committed,
            heard: None,
        });
        if committed {
            self.next_chunk_start = end;
        }
    }

    /// A transcription finished; returns false if it is not (or no longer) one of ours.
    pub fn transcribed(&mut self, job: JobId, heard: &Heard, now: Duration) -> bool {
        let Some(chunk) = self.chunks.iter_mut().find(|c| c.job == job) else {
            return false;
        };
        chunk.heard = Some(Heard {
            text: heard.text.trim().to_owned(),
            closing: heard.closing,
        });
        if self.heard().is_some() {
            self.text_ready_at = Some(now);
        }
        true
    }

    /// The whole transcript up to the current pause, once every part of it is known; its
    /// closing mark is that of the last part with words.
    pub fn heard(&self) -> Option<Heard> {
        if self.needs_chunk() {
            return None;
        }
        let mut parts = Vec::with_capacity(self.chunks.len());
        let mut closing = None;
        for chunk in &self.chunks {
            let heard = chunk.heard.as_ref()?;
            if !heard.text.is_empty() {
                parts.push(heard.text.as_str());
                closing = heard.closing;
            }
        }
        Some(Heard {
            text: parts.join(" "),
            closing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(text: &str) -> Heard {
        Heard {
            text: text.to_owned(),
            closing: None,
        }
    }

    #[test]
    fn trailing_fillers_and_conjunctions_sound_unfinished() {
        for text in [
            "I moved the sessions to Redis and",
            "We measured it, um",
            "So the main reason was, uh...",
            "because",
            "It was mostly about the",
            "We split the service in two,",
            "Then we-",
            "And so…",
            "I prefer small",
            "We moved to Kafka in 2021",
        ] {
            assert!(sounds_unfinished(text), "{text:?}");
        }
        for text in [
            "I moved the sessions to Redis.",
            "We cut p99 latency from 800 to 120 milliseconds.",
            "Yes, I can start in two weeks.",
            "",
            "Standard.",
        ] {
            assert!(!sounds_unfinished(text), "{text:?}");
        }
    }

    #[test]
    fn text_is_ready_only_when_every_part_is_known_and_covers_the_pause() {
        let mut u = Utterance::new(1000, 1256, -20.0, 0, Span::none());
        assert!(u.needs_chunk());
        assert_eq!(u.heard(), None);
        u.add_chunk(JobId(1), 2000, 10_000);
        assert!(!u.needs_chunk());
        assert_eq!(u.heard(), None);
        assert!(u.transcribed(JobId(1), &heard(" We used Redis. "), Duration::from_secs(1)));
        assert_eq!(u.heard().map(|h| h.text).as_deref(), Some("We used Redis."));
        assert_eq!(u.text_ready_at, Some(Duration::from_secs(1)));
        // The candidate goes on: the speculative part is dropped, its late result ignored.
        u.judging(JobId(2), 2000);
        u.judgement = Some(PauseJudgement::Judged(0.99));
        u.voiced(2356, -20.0);
        assert!(u.needs_chunk());
        assert_eq!(u.text_ready_at, None);
        assert_eq!(u.judgement, None, "the judgement of the pause went with it");
        assert!(!u.transcribed(JobId(1), &heard("We used Redis."), Duration::from_secs(2)));
    }

    #[test]
    fn the_detectors_hangover_over_the_voices_tail_keeps_the_transcript() {
        let mut u = Utterance::new(256, 512, -20.0, 0, Span::none());
        for end in (768..=8192).step_by(256) {
            u.voiced(end, -20.0);
        }
        u.add_chunk(JobId(1), 11_000, 128_000);
        u.judging(JobId(2), 11_000);
        u.transcribed(JobId(1), &heard("We used Redis."), Duration::from_secs(1));
        // The detector still calls 200 ms of the fading tail voiced, 40 dB down.
        for end in (8448..=11_520).step_by(256) {
            u.voiced(end, -60.0);
        }
        assert_eq!(u.speech_end(), 8192);
        assert_eq!(u.heard().map(|h| h.text).as_deref(), Some("We used Redis."));
        assert_eq!(u.judgement, Some(PauseJudgement::Awaited(JobId(2))));
        // A word at the voice's level after it is speech again, once it holds for a second
        // frame (one alone could be a bump of the room).
        u.voiced(11_776, -20.0);
        assert!(u.heard().is_some());
        u.voiced(12_032, -20.0);
        assert_eq!(u.heard(), None);
        assert_eq!(u.judgement, None);
    }

    #[test]
    fn long_parts_are_committed_and_joined() {
        let mut u = Utterance::new(0, 256, -20.0, 0, Span::none());
        u.voiced(200_000, -20.0);
        u.add_chunk(JobId(1), 200_100, 128_000);
        assert_eq!(u.audio_from(), 200_100);
        u.voiced(200_456, -20.0);
        assert!(u.has_chunks(), "a committed part survives new speech");
        u.add_chunk(JobId(2), 201_000, 128_000);
        assert_eq!(u.audio_from(), 200_100, "a short part is speculative");
        let closed = Heard {
            text: "and it worked.".into(),
            closing: Some(0.95),
        };
        u.transcribed(JobId(2), &closed, Duration::ZERO);
        assert_eq!(u.heard(), None);
        u.transcribed(JobId(1), &heard("First we profiled"), Duration::ZERO);
        assert_eq!(
            u.heard(),
            Some(Heard {
                text: "First we profiled and it worked.".into(),
                closing: Some(0.95),
            }),
            "the last part closes the whole"
        );
    }
}
