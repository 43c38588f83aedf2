//! The transcript: every turn of the call, who spoke, what it was for and when.
//!
//! Times are milliseconds on the call clock (0 = call start), the same clock the recording is
//! aligned to, so a turn's `start_ms` is also its position in `recording.wav`.
//!
//! During a call [`TranscriptLog`] appends each turn to its log file and syncs it, so a crash
//! loses at most the turn being written; [`TranscriptLog::recover`] rebuilds the
//! [`Transcript`] from that file (where it lives is the store's business). [`Transcript::save`]
//! writes `transcript.json` and `transcript.vtt`, each atomically, for a simulation's output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the final JSON transcript.
pub const JSON_FILE: &str = "transcript.json";
/// Name of the final WebVTT transcript.
pub const VTT_FILE: &str = "transcript.vtt";

/// The whole conversation, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// Turns in the order they were spoken.
    pub turns: Vec<Turn>,
}

/// Words of a reply a candidate may have heard and still be answering when they talk over
/// it: a reply that began while they paused mid-answer is cut off within its first words
/// ("Thanks. Can you").
const RESUMED_WITHIN_WORDS: usize = 4;

/// Whether a candidate who talked over the reply to their answer after hearing `heard` of it
/// (nothing, when they spoke before it played) was still answering: what they say next is
/// the rest of that answer, not a reply to the line.
///
/// ```
/// use viva_interview::resumes_answer;
/// assert!(resumes_answer("Thanks. Can you"));
/// assert!(!resumes_answer("Thanks. Can you tell me about"));
/// ```
pub fn resumes_answer(heard: &str) -> bool {
    heard.split_whitespace().count() <= RESUMED_WITHIN_WORDS
}

impl Transcript {
    /// The candidate turn that the candidate turn at `index` is the rest of, if any: the
    /// one just before it (the reply to that was never heard), or the one before a reply
    /// the candidate talked over within its first words ([`resumes_answer`]).
    pub fn continued_answer(&self, index: usize) -> Option<usize> {
        let is_candidate = |i: usize| {
            self.turns
                .get(i)
                .is_some_and(|t| t.speaker == Speaker::Candidate)
        };
        if !is_candidate(index) {
            return None;
        }
        let before = index.checked_sub(1)?;
        if is_candidate(before) {
            return Some(before);
        }
        let reply = &self.turns[before];
        let answer = before.checked_sub(1)?;
        (reply.interrupted && resumes_answer(&reply.text) && is_candidate(answer)).then_some(answer)
    }
}

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// Viva.
    Interviewer,
    /// The person being interviewed.
    Candidate,
}

/// What a turn was for. Every kind except `Answer` is spoken by the interviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    /// Hello, with the recording and AI notice.
    Greeting,
    /// A notice mid-call (e.g. the recording notice repeated, a time warning).
    Notice,
    /// A knockout question.
    Knockout,
    /// A custom or blueprint question, or a required-skill question.
    Question,
    /// An adaptive follow-up chosen from the candidate's answer.
    FollowUp,
    /// A pre-written blueprint follow-up asked to everyone.
    BlueprintFollowUp,
    /// A rephrasing after "can you repeat that?" or a misunderstanding.
    Clarification,
    /// A gentle prompt after a long silence.
    Nudge,
    /// Steering away from a banned topic or a long tangent.
    Steer,
    /// Inviting the candidate's own questions.
    CandidateQuestions,
    /// Goodbye and next steps.
    Closing,
    /// Anything the candidate says.
    Answer,
}

impl TurnKind {
    /// The kind's name, as in the transcript's JSON (`follow_up`).
    pub fn as_str(self) -> &'static str {
        match self {
            TurnKind::Greeting => "greeting",
            TurnKind::Notice => "notice",
            TurnKind::Knockout => "knockout",
            TurnKind::Question => "question",
            TurnKind::FollowUp => "follow_up",
            TurnKind::BlueprintFollowUp => "blueprint_follow_up",
            TurnKind::Clarification => "clarification",
            TurnKind::Nudge => "nudge",
            TurnKind::Steer => "steer",
            TurnKind::CandidateQuestions => "candidate_questions",
            TurnKind::Closing => "closing",
            TurnKind::Answer => "answer",
        }
    }

    /// Who speaks turns of this kind.
    pub fn speaker(self) -> Speaker {
        match self {
            TurnKind::Answer => Speaker::Candidate,
            _ => Speaker::Interviewer,
        }
    }
}

/// One stretch of speech by one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Who spoke.
    pub speaker: Speaker,
    /// What the turn was for; `Answer` exactly when the candidate spoke.
    pub kind: TurnKind,
    /// Job item the turn belongs to (question, follow-up, knockout ... id), if any.
    pub question_id: Option<String>,
    /// What was said (for the interviewer: what was played, even if cut short).
    pub text: String,
    /// Start on the call clock, in milliseconds.
    pub start_ms: u64,
    /// End on the call clock, in milliseconds.
    pub end_ms: u64,
    /// The other side talked over this turn and playback stopped early (barge-in).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

impl Turn {
    /// An interviewer turn. `kind` must not be [`TurnKind::Answer`]; [`TranscriptLog::append`]
    /// rejects a turn whose speaker and kind disagree.
    pub fn interviewer(
        kind: TurnKind,
        question_id: Option<&str>,
        text: impl Into<String>,
        start_ms: u64,
        end_ms: u64,
    ) -> Turn {
        Turn {
            speaker: Speaker::Interviewer,
            kind,
            question_id: question_id.map(str::to_string),
            text: text.into(),
            start_ms,
            end_ms,
            interrupted: false,
        }
    }

    /// A candidate answer.
    pub fn candidate(
        question_id: Option<&str>,
        text: impl Into<String>,
        start_ms: u64,
        end_ms: u64,
    ) -> Turn {
        Turn {
            speaker: Speaker::Candidate,
            kind: TurnKind::Answer,
            question_id: question_id.map(str::to_string),
            text: text.into(),
            start_ms,
            end_ms,
            interrupted: false,
        }
    }

    /// Marks the turn as cut short by the other side.
    pub fn interrupted(mut self) -> Turn {
        self.interrupted = true;
        self
    }

    fn check(&self, index: usize) -> Result<(), TranscriptError> {
        if self.kind.speaker() != self.speaker {
            return Err(TranscriptError::InvalidTurn {
                index,
                reason: format!(
                    "speaker {:?} cannot have kind {:?}; candidate turns are answers and \
                     interviewer turns are not",
                    self.speaker, self.kind
                ),
            });
        }
        if self.end_ms < self.start_ms {
            return Err(TranscriptError::InvalidTurn {
                index,
                reason: format!(
                    "ends at {} ms before it starts at {} ms",
                    self.end_ms, self.start_ms
                ),
            });
        }
        Ok(())
    }
}

/// Everything that can go wrong writing or reading a transcript.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscriptError {
    /// A file could not be read or written.
    #[error("{action} {}: {source}; check the directory exists and is writable", path.display())]
    Io {
        /// What was being done, e.g. "cannot append to".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A turn that cannot be part of a transcript.
    #[error("turn {index} is invalid: {reason}")]
    InvalidTurn {
        /// Index of the turn in the transcript.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A line in the middle of a turn log is not a turn; the log was edited or damaged.
    #[error(
        "{}:{line}: not a transcript turn ({message}); only the last line of a log may be \
         incomplete, so this file was damaged or edited",
        path.display()
    )]
    CorruptLog {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        message: String,
    },
}

impl Transcript {
    /// The transcript as pretty-printed JSON (`{"turns": [...]}`).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The transcript as WebVTT, one cue per turn with a `<v Interviewer>`/`<v Candidate>`
    /// voice tag; cue identifiers are `turn-N`, matching the HTML report's anchors.
    pub fn to_vtt(&self) -> String {
        let mut out = String::from("WEBVTT\n");
        for (index, turn) in self.turns.iter().enumerate() {
            let text = vtt_escape(&turn.text);
            if text.is_empty() {
                continue;
            }
            // A cue must end after it starts; zero-length turns get one millisecond.
            let end = turn.end_ms.max(turn.start_ms + 1);
            let voice = match turn.speaker {
                Speaker::Interviewer => "Interviewer",
                Speaker::Candidate => "Candidate",
            };
            out.push_str(&format!(
                "\nturn-{index}\n{} --> {}\n<v {voice}>{text}\n",
                vtt_time(turn.start_ms),
                vtt_time(end)
            ));
        }
        out
    }

    /// Writes `transcript.json` and `transcript.vtt` into `dir`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<(), TranscriptError> {
        write_atomically(&dir.join(JSON_FILE), self.to_json().as_bytes())?;
        write_atomically(&dir.join(VTT_FILE), self.to_vtt().as_bytes())
    }
}

/// `HH:MM:SS.mmm`.
fn vtt_time(ms: u64) -> String {
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    format!(
        "{hours:02}:{minutes:02}:{:02}.{:03}",
        rest / 1000,
        rest % 1000
    )
}

/// Cue text: the characters WebVTT reserves are escaped, and line breaks are folded because a
/// blank line would end the cue.
fn vtt_escape(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    folded
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes a file so readers see the old contents or the new, never a torn mix: the bytes go to
/// a temporary file beside the target, are synced, and the temporary is renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TranscriptError> {
    let io = |action, source| TranscriptError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let mut file = File::create(&temp).map_err(|e| io("cannot create a temporary file for", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("cannot write", e))?;
    std::fs::rename(&temp, path).map_err(|e| io("cannot replace", e))
}

/// Append-only, crash-safe record of a transcript while the call runs.
///
/// Each turn is one JSON line, written and synced before [`append`](Self::append) returns.
#[derive(Debug)]
pub struct TranscriptLog {
    path: PathBuf,
    file: File,
    transcript: Transcript,
}

impl TranscriptLog {
    /// Opens the log at `path` (creating its directory and the file as needed). An existing
    /// log is continued, not truncated, so a restarted call keeps its earlier turns.
    pub fn open(path: &Path) -> Result<TranscriptLog, TranscriptError> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| TranscriptError::Io {
                action: "cannot create the interview directory for",
                path: path.clone(),
                source,
            })?;
        }
        let transcript = TranscriptLog::recover(&path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| TranscriptError::Io {
                action: "cannot open",
                path: path.clone(),
                source,
            })?;
        let mut log = TranscriptLog {
            path,
            file,
            transcript,
        };
        log.drop_torn_tail()?;
        Ok(log)
    }

    /// Validates a turn, appends it to the log and syncs it to disk. Returns its index.
    pub fn append(&mut self, turn: Turn) -> Result<usize, TranscriptError> {
        let index = self.transcript.turns.len();
        turn.check(index)?;
        let mut line = serde_json::to_string(&turn).unwrap_or_default();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| TranscriptError::Io {
                action: "cannot append to",
                path: self.path.clone(),
                source,
            })?;
        tracing::debug!(index, kind = ?turn.kind, "transcript turn written");
        self.transcript.turns.push(turn);
        Ok(index)
    }

    /// The turns written so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Reads the transcript the log at `path` holds, as written so far (after a crash: up to
    /// the crash); no log yet is an empty transcript. A torn last line (the turn being written
    /// when the process died) is skipped with a warning; a bad line anywhere else is an
    /// error, since appends cannot produce one.
    pub fn recover(path: &Path) -> Result<Transcript, TranscriptError> {
        if !path.exists() {
            return Ok(Transcript::default());
        }
        let text = std::fs::read_to_string(path).map_err(|source| TranscriptError::Io {
            action: "cannot read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::recover_text(&text, path)
    }

    /// [`recover`](Self::recover) for a log read from elsewhere (object storage); `origin`
    /// names it in warnings and errors.
    pub fn recover_text(text: &str, origin: &Path) -> Result<Transcript, TranscriptError> {
        let lines: Vec<&str> = text.lines().collect();
        let mut transcript = Transcript::default();
        let last = lines.len().saturating_sub(1);
        for (number, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Turn>(line) {
                Ok(turn) => transcript.turns.push(turn),
                Err(err) if number == last => {
                    tracing::warn!(path = %origin.display(), line = number + 1, error = %err,
                        "skipping the torn last line of a transcript log");
                }
                Err(err) => {
                    return Err(TranscriptError::CorruptLog {
                        path: origin.to_path_buf(),
                        line: number + 1,
                        message: err.to_string(),
                    });
                }
            }
        }
        Ok(transcript)
    }

    /// After a crash mid-write the file may end in a torn line (no newline). `recover` already
    /// skipped it; cut it off so the next append starts a clean line instead of gluing a new
    /// turn onto the fragment.
    fn drop_torn_tail(&mut self) -> Result<(), TranscriptError> {
        let io = |action, source| TranscriptError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let bytes = std::fs::read(&self.path).map_err(|e| io("cannot read", e))?;
        if bytes.last().is_some_and(|&b| b != b'\n') {
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            tracing::warn!(path = %self.path.display(), dropped_bytes = bytes.len() - keep,
                "cutting the torn last line off a transcript log");
            self.file
                .set_len(keep as u64)
                .map_err(|e| io("cannot truncate the torn line of", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use viva_test_support::scratch_dir;

    fn three_turns() -> Vec<Turn> {
        vec![
            Turn::interviewer(
                TurnKind::Greeting,
                None,
                "Hi, this call is recorded.",
                0,
                2_500,
            ),
            Turn::interviewer(
                TurnKind::Question,
                Some("api_design"),
                "Describe an API.",
                2_600,
                4_000,
            ),
            Turn::candidate(Some("api_design"), "I built a billing API.", 4_800, 7_250)
                .interrupted(),
        ]
    }

    #[test]
    fn json_shape_is_the_documented_one() {
        let transcript = Transcript {
            turns: three_turns(),
        };
        let value: serde_json::Value = serde_json::from_str(&transcript.to_json()).unwrap();
        assert_eq!(
            value,
            json!({"turns": [
                {"speaker": "interviewer", "kind": "greeting", "question_id": null,
                 "text": "Hi, this call is recorded.", "start_ms": 0, "end_ms": 2500},
                {"speaker": "interviewer", "kind": "question", "question_id": "api_design",
                 "text": "Describe an API.", "start_ms": 2600, "end_ms": 4000},
                {"speaker": "candidate", "kind": "answer", "question_id": "api_design",
                 "text": "I built a billing API.", "start_ms": 4800, "end_ms": 7250,
                 "interrupted": true},
            ]})
        );
        let back: Transcript = serde_json::from_value(value).unwrap();
        assert_eq!(back, transcript);
    }

    #[test]
    fn every_kind_serializes_snake_case() {
        let kinds = [
            (TurnKind::Greeting, "greeting"),
            (TurnKind::Notice, "notice"),
            (TurnKind::Knockout, "knockout"),
            (TurnKind::Question, "question"),
            (TurnKind::FollowUp, "follow_up"),
            (TurnKind::BlueprintFollowUp, "blueprint_follow_up"),
            (TurnKind::Clarification, "clarification"),
            (TurnKind::Nudge, "nudge"),
            (TurnKind::Steer, "steer"),
            (TurnKind::CandidateQuestions, "candidate_questions"),
            (TurnKind::Closing, "closing"),
            (TurnKind::Answer, "answer"),
        ];
        for (kind, name) in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
        }
    }

    #[test]
    fn vtt_has_voice_tags_times_and_escapes() {
        let mut turns = three_turns();
        turns.push(Turn::candidate(
            None,
            "a <b> & c\n\nsecond line",
            3_723_004,
            3_723_004,
        ));
        let vtt = Transcript { turns }.to_vtt();
        let expected = "WEBVTT\n\
            \nturn-0\n00:00:00.000 --> 00:00:02.500\n<v Interviewer>Hi, this call is recorded.\n\
            \nturn-1\n00:00:02.600 --> 00:00:04.000\n<v Interviewer>Describe an API.\n\
            \nturn-2\n00:00:04.800 --> 00:00:07.250\n<v Candidate>I built a billing API.\n\
            \nturn-3\n01:02:03.004 --> 01:02:03.005\n<v Candidate>a &lt;b&gt; &amp; c second line\n";
        assert_eq!(vtt, expected);
    }

    #[test]
    fn kind_names_are_the_json_names() {
        for kind in [
            TurnKind::Greeting,
            TurnKind::Notice,
            TurnKind::Knockout,
            TurnKind::Question,
            TurnKind::FollowUp,
            TurnKind::BlueprintFollowUp,
            TurnKind::Clarification,
            TurnKind::Nudge,
            TurnKind::Steer,
            TurnKind::CandidateQuestions,
            TurnKind::Closing,
            TurnKind::Answer,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }

    #[test]
    fn log_recovers_after_a_crash_and_continues() {
        let scratch = scratch_dir("transcript-crash");
        let dir = scratch.path();
        let path = dir.join("log.jsonl");
        assert_eq!(
            TranscriptLog::recover(&path).unwrap(),
            Transcript::default()
        );
        {
            let mut log = TranscriptLog::open(&path).unwrap();
            for turn in three_turns() {
                log.append(turn).unwrap();
            }
            // Dropped: the process "crashed"; every turn was synced as it was written.
        }
        let recovered = TranscriptLog::recover(&path).unwrap();
        assert_eq!(recovered.turns, three_turns());

        // A crash in the middle of the fourth write leaves a torn line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"speaker":"interviewer","kind":"follow_"#)
            .unwrap();
        drop(file);
        assert_eq!(TranscriptLog::recover(&path).unwrap().turns, three_turns());

        // Reopening continues the log after cutting the torn line off.
        let mut log = TranscriptLog::open(&path).unwrap();
        assert_eq!(log.transcript().turns.len(), 3);
        let follow_up = Turn::interviewer(
            TurnKind::FollowUp,
            Some("api_design"),
            "Which?",
            8_000,
            9_000,
        );
        assert_eq!(log.append(follow_up.clone()).unwrap(), 3);
        let written = log.transcript().clone();
        assert_eq!(written.turns.len(), 4);
        assert_eq!(TranscriptLog::recover(&path).unwrap(), written);
    }

    #[test]
    fn a_damaged_middle_line_is_an_error_with_its_line() {
        let scratch = scratch_dir("transcript-corrupt");
        let dir = scratch.path();
        let path = dir.join("log.jsonl");
        std::fs::write(&path, "garbage\n{\"not\": \"a turn\"}\n").unwrap();
        match TranscriptLog::recover(&path) {
            Err(TranscriptError::CorruptLog { line, .. }) => assert_eq!(line, 1),
            other => panic!("expected a corrupt log error, got {other:?}"),
        }
    }

    #[test]
    fn inconsistent_turns_are_rejected() {
        let scratch = scratch_dir("transcript-invalid");
        let dir = scratch.path();
        let mut log = TranscriptLog::open(&dir.join("log.jsonl")).unwrap();
        let mut wrong_speaker = Turn::candidate(None, "hello", 0, 10);
        wrong_speaker.kind = TurnKind::Question;
        assert!(matches!(
            log.append(wrong_speaker),
            Err(TranscriptError::InvalidTurn { index: 0, .. })
        ));
        let backwards = Turn::candidate(None, "hello", 100, 10);
        assert!(matches!(
            log.append(backwards),
            Err(TranscriptError::InvalidTurn { .. })
        ));
        assert!(log.transcript().turns.is_empty());
        assert_eq!(std::fs::read_to_string(dir.join("log.jsonl")).unwrap(), "");
    }

    #[test]
    fn an_answer_goes_on_after_a_reply_it_overtook_or_cut_off_at_once() {
        let question =
            |text: &str| Turn::interviewer(TurnKind::Question, Some("b"), text, 0, 0).interrupted();
        let answer = |text: &str| Turn::candidate(Some("a"), text, 0, 0);
        let asked = Turn::interviewer(TurnKind::Question, Some("a"), "Describe an API.", 0, 0);
        let transcript = Transcript {
            turns: vec![
                asked.clone(),
                answer("We versioned it"),
                // The reply came while the candidate paused and was never heard.
                answer("in the URL."),
                question("Thanks. Can you"),
                answer("and kept old versions a year."),
                question("Thanks. Can you tell me about caching?"),
                answer("Sorry, go on."),
                asked.clone(),
                // A nudge after silence is no reply to an answer.
                Turn::interviewer(TurnKind::Nudge, Some("a"), "Take your time.", 0, 0)
                    .interrupted(),
                answer("Well, we versioned it."),
            ],
        };
        let continued: Vec<Option<usize>> = (0..transcript.turns.len())
            .map(|i| transcript.continued_answer(i))
            .collect();
        assert_eq!(
            continued,
            [
                None,
                None,
                Some(1),
                None,
                Some(2),
                None,
                None,
                None,
                None,
                None
            ]
        );
    }
}
