//! One candidate utterance in progress: its place on the clock and its transcription, done
//! piece by piece in the pauses so the text is ready when the turn ends.

use std::time::Duration;

use tracing::Span;
use viva_speech::{Talkspurt, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE};

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

/// A detector still calling the audio voiced this long after the voice's level fell hears a
/// voice the level missed (one too soft for its mark), so what was transcribed and judged
/// before is stale. A shorter hold is the detector's score decaying over the voice's tail
/// and the line's noise: on 8 kHz phone audio it holds 300-600 ms.
const SOFT_VOICE: Pos = 800 * VAD_SAMPLE_RATE as Pos / 1000;

/// A transcription covering `..end` of the utterance's audio.
struct Chunk {
    job: JobId,
    end: Pos,
    /// Kept even if the candidate goes on speaking (long answers are transcribed in parts,
    /// so no single transcription grows too long).
    committed: bool,
    /// Long enough to commit once the pause it was asked in proves a real one.
    committable: bool,
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
    /// the detector's score decaying over the voice's tail; see [`Self::spoken_until`])
    /// after the audio a transcript or judgement covered makes it stale, unless the
    /// transcript was committed. Returns the job of a stale transcription still running.
    pub fn voiced(&mut self, end: Pos, level_db: f32) -> Option<JobId> {
        self.talkspurt.voiced(end, level_db);
        self.voiced_frames += 1;
        let spoken = self.spoken_until();
        if self.judged_until.is_some_and(|until| spoken > until) {
            self.judgement = None;
            self.judged_until = None;
        }
        if let Some(last) = self.chunks.last()
            && last.end <= spoken
        {
            self.text_ready_at = None;
            if !last.committed {
                return self
                    .chunks
                    .pop()
                    .filter(|c| c.heard.is_none())
                    .map(|c| c.job);
            }
        }
        None
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

    /// How far the candidate's words may reach, for what a transcript must cover: the end
    /// of speech by level, unless the detector has held on so long past it that it hears a
    /// voice the level missed. Not [`Self::speech_end`], which the detector's hold pushes
    /// on after 400 ms: a transcript finished in the pause would be thrown away 10 ms later
    /// and done again.
    fn spoken_until(&self) -> Pos {
        self.talkspurt
            .level_end()
            .max(self.last_voiced().saturating_sub(SOFT_VOICE))
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
            .is_none_or(|c| c.end <= self.spoken_until())
    }

    /// Records a transcription of `audio_from()..end`; one at least `commit_after` long is
    /// committed now if the pause is `settled` (the detector let go of the voice), else when
    /// it is ([`Self::settle`]). A dip between phrases that the detector holds through is no
    /// place to cut an answer: a word cut there is heard as two wrong ones.
    pub fn add_chunk(&mut self, job: JobId, end: Pos, commit_after: Pos, settled: bool) {
        self.chunks.push(Chunk {
            job,
            end,
            committed: false,
            committable: end.saturating_sub(self.next_chunk_start) >= commit_after,
            heard: None,
        });
        if settled {
            self.settle();
        }
    }

    /// The detector let go of the voice in the current pause: a long enough transcription
    /// asked in it is committed.
    pub fn settle(&mut self) {
        if let Some(last) = self.chunks.last_mut()
            && last.committable
            && !last.committed
        {
            last.committed = true;
            self.next_chunk_start = last.end;
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
        u.add_chunk(JobId(1), 2000, 10_000, true);
        assert!(!u.needs_chunk());
        assert_eq!(u.heard(), None);
        assert!(u.transcribed(JobId(1), &heard(" We used Redis. "), Duration::from_secs(1)));
        assert_eq!(u.heard().map(|h| h.text).as_deref(), Some("We used Redis."));
        assert_eq!(u.text_ready_at, Some(Duration::from_secs(1)));
        // The candidate goes on: the speculative part is dropped, its late result ignored.
        u.judging(JobId(2), 2000);
        u.judgement = Some(PauseJudgement::Judged(0.99));
        assert_eq!(
            u.voiced(2356, -20.0),
            None,
            "its transcription had finished"
        );
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
        u.add_chunk(JobId(1), 11_000, 128_000, true);
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
    fn a_long_part_asked_while_the_detector_holds_is_committed_only_once_it_lets_go() {
        let mut u = Utterance::new(0, 256, -20.0, 0, Span::none());
        u.voiced(200_000, -20.0);
        // A dip between phrases: the detector still calls it voiced.
        u.add_chunk(JobId(1), 200_100, 128_000, false);
        assert_eq!(u.audio_from(), 0, "not committed at a dip");
        assert_eq!(
            u.voiced(200_456, -20.0),
            Some(JobId(1)),
            "the voice came back: the running transcription is stale"
        );
        assert!(!u.has_chunks());
        // A real pause: the detector lets go before the voice comes back.
        u.add_chunk(JobId(2), 210_000, 128_000, false);
        u.settle();
        assert_eq!(u.audio_from(), 210_000);
        assert_eq!(u.voiced(210_456, -20.0), None, "a committed part stays");
        assert!(u.has_chunks());
        // A short part is never committed, settled or not.
        u.add_chunk(JobId(3), 211_000, 128_000, true);
        assert_eq!(u.audio_from(), 210_000);
    }

    #[test]
    fn a_long_hold_keeps_the_transcript_until_it_must_be_a_voice_the_level_missed() {
        let mut u = Utterance::new(256, 512, -20.0, 0, Span::none());
        for end in (768..=8192).step_by(256) {
            u.voiced(end, -20.0);
        }
        // Transcribed 160 ms after the voice's level fell.
        u.add_chunk(JobId(1), 8192 + 2560, 128_000, false);
        // A phone line's detector holds on 600 ms over a tail 40 dB down: the end of speech
        // the pauses count from moves on, the transcript stays.
        for end in (8448..=8192 + 9600).step_by(256) {
            assert_eq!(u.voiced(end, -60.0), None);
        }
        assert!(u.speech_end() > 8192);
        assert!(!u.needs_chunk(), "the transcript covers the words");
        // Held on 800 ms past the transcript's audio, it hears a voice the level missed.
        let mut stale = None;
        for end in (8192 + 9856..=8192 + 2560 + 12_800 + 256).step_by(256) {
            stale = stale.or(u.voiced(end, -60.0));
        }
        assert_eq!(stale, Some(JobId(1)));
        assert!(u.needs_chunk());
    }

    #[test]
    fn long_parts_are_committed_and_joined() {
        let mut u = Utterance::new(0, 256, -20.0, 0, Span::none());
        u.voiced(200_000, -20.0);
        u.add_chunk(JobId(1), 200_100, 128_000, true);
        assert_eq!(u.audio_from(), 200_100);
        u.voiced(200_456, -20.0);
        assert!(u.has_chunks(), "a committed part survives new speech");
        u.add_chunk(JobId(2), 201_000, 128_000, true);
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
