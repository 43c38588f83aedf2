//! What the conversation loop talks to: the interviewer ([`Dialogue`]) and the transcript
//! tap ([`TurnSink`]).

use serde::Serialize;

/// What an interviewer's line is for. The loop only passes it on to the transcript; the
/// dialogue behind the port maps its own kinds onto these, one for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Hello, with the recording notice.
    Greeting,
    /// A notice mid-call (a time warning, the recording notice repeated).
    Notice,
    /// A knockout question.
    Knockout,
    /// A planned question.
    Question,
    /// An adaptive follow-up chosen from the candidate's answer.
    FollowUp,
    /// A pre-written follow-up asked to everyone.
    BlueprintFollowUp,
    /// A rephrasing after "can you repeat that?".
    Clarification,
    /// A gentle prompt after a long silence.
    Nudge,
    /// Steering away from a tangent.
    Steer,
    /// Inviting the candidate's own questions.
    CandidateQuestions,
    /// Goodbye and next steps.
    Closing,
}

/// Something the interviewer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What the line is for.
    pub kind: LineKind,
    /// The planned question this line asks or follows up on, if any.
    pub question_id: Option<String>,
    /// The words to speak.
    pub text: String,
}

/// The interviewer's response to something the candidate did (or did not) say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Speak this line, then listen.
    Say(Line),
    /// Speak this closing line, then hang up. The candidate cannot interrupt it.
    Finish(Line),
}

impl Reply {
    /// The line to speak.
    pub fn line(&self) -> &Line {
        match self {
            Reply::Say(line) | Reply::Finish(line) => line,
        }
    }
}

/// The interviewer, as the conversation loop sees it. All times are milliseconds on the call
/// clock.
///
/// Methods may take a while (an LLM policy can); the loop calls them off its timing path, one
/// at a time and in order, so audio keeps flowing meanwhile.
pub trait Dialogue: Send + 'static {
    /// The first line of the call (greeting and recording notice).
    fn opening(&mut self, now_ms: u64) -> Line;
    /// The candidate finished a turn saying `text`.
    fn on_answer(&mut self, text: &str, start_ms: u64, end_ms: u64) -> Reply;
    /// The candidate has been silent for `silent_ms` since the interviewer's last line; called
    /// at every multiple of the nudge interval. `None` keeps waiting.
    fn on_silence(&mut self, now_ms: u64, silent_ms: u64) -> Option<Reply>;
    /// The candidate talked over the last line this dialogue returned; they heard only
    /// `heard` (estimated from the audio played; empty if not a word of it was, and then the
    /// line is no turn of the transcript).
    fn on_interrupted(&mut self, at_ms: u64, heard: &str);
    /// Lines likely to be spoken soon (planned questions), synthesized ahead of time so they
    /// play without delay.
    fn upcoming(&self) -> Vec<String>;
}

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The voice of the interview (the [`Dialogue`]).
    Interviewer,
    /// The person who called in.
    Candidate,
}

/// One turn of the conversation, as it happened on the call clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn {
    /// Who spoke.
    pub speaker: Speaker,
    /// The interviewer line's kind; `None` for the candidate.
    pub kind: Option<LineKind>,
    /// The planned question an interviewer line belongs to.
    pub question_id: Option<String>,
    /// What was said: for an interrupted interviewer line, only the words played before the
    /// candidate barged in (estimated from the audio played).
    pub text: String,
    /// When the first sound of the turn was played or heard.
    pub start_ms: u64,
    /// When the last sound ended.
    pub end_ms: u64,
    /// The interviewer line was cut short by the candidate.
    pub interrupted: bool,
}

/// Receives each turn as soon as it is complete (the live transcript).
pub trait TurnSink: Send {
    /// A turn ended. Called from the call's task: keep it quick (hand slow work to a channel).
    fn on_turn(&mut self, turn: &Turn);
}
