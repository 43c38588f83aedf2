//! An interview on a live call: the interviewer answers the conversation loop, and the loop's
//! turns land in the interview's transcript log as they happen (a crash loses at most the turn
//! in progress). Every transport (simulation, browser, phone) wires interviews this way.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use viva_call::{Dialogue, Line, Reply, Speaker, TurnSink};
use viva_interview::interviewer::{Interviewer, Next, Prompt};
use viva_interview::judge::Judge;
use viva_interview::policy::Policy;
use viva_interview::transcript::{TranscriptError, TranscriptLog, Turn, TurnKind};

/// The interviewer behind the call crate's [`Dialogue`] port.
pub struct InterviewDialogue {
    interviewer: Interviewer,
    greeting: Prompt,
}

impl InterviewDialogue {
    /// Starts the interview; the greeting is spoken when the call opens (call time 0).
    pub fn start(judge: Arc<Judge>, candidate: Option<String>, policy: Box<dyn Policy>) -> Self {
        let (interviewer, greeting) = Interviewer::start(judge, candidate, policy, 0);
        Self {
            interviewer,
            greeting,
        }
    }
}

impl Dialogue for InterviewDialogue {
    fn opening(&mut self, _now_ms: u64) -> Line {
        line(&self.greeting)
    }

    fn on_answer(&mut self, text: &str, start_ms: u64, end_ms: u64) -> Reply {
        reply(self.interviewer.on_answer(text, start_ms, end_ms))
    }

    fn on_silence(&mut self, now_ms: u64, silent_ms: u64) -> Option<Reply> {
        self.interviewer.on_silence(now_ms, silent_ms).map(reply)
    }

    fn on_interrupted(&mut self, at_ms: u64, _heard: &str) {
        self.interviewer.on_interrupted(at_ms);
    }

    fn upcoming(&self) -> Vec<String> {
        self.interviewer.upcoming_questions()
    }
}

fn line(prompt: &Prompt) -> Line {
    Line {
        kind: kind_name(prompt.kind),
        question_id: prompt.question_id.clone(),
        text: prompt.text.clone(),
    }
}

fn reply(next: Next) -> Reply {
    match next {
        Next::Say(prompt) => Reply::Say(line(&prompt)),
        Next::Finish(prompt) => Reply::Finish(line(&prompt)),
    }
}

/// A turn kind's transcript name (`follow_up`), the form lines carry through the call.
pub fn kind_name(kind: TurnKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Writes the call's turns to the interview's transcript log as they happen.
pub struct TranscriptSink {
    log: TranscriptLog,
    /// What the candidate is answering: the item of the interviewer's latest line (answers to
    /// a follow-up are filed under the question it follows up).
    answering: Option<String>,
    observer: Option<mpsc::UnboundedSender<Turn>>,
}

impl TranscriptSink {
    /// Opens (or continues) the transcript log in `dir`.
    pub fn open(dir: &Path) -> Result<Self, TranscriptError> {
        Ok(Self {
            log: TranscriptLog::open(dir)?,
            answering: None,
            observer: None,
        })
    }

    /// Also sends every written turn to `observer` (a live view, a simulated caller).
    pub fn with_observer(mut self, observer: mpsc::UnboundedSender<Turn>) -> Self {
        self.observer = Some(observer);
        self
    }
}

impl TurnSink for TranscriptSink {
    fn on_turn(&mut self, turn: &viva_call::Turn) {
        let entry = match turn.speaker {
            Speaker::Interviewer => {
                let kind = turn
                    .kind
                    .as_deref()
                    .and_then(|k| serde_json::from_value(serde_json::Value::from(k)).ok())
                    .unwrap_or(TurnKind::Question);
                self.answering = turn.question_id.clone();
                let entry = Turn::interviewer(
                    kind,
                    turn.question_id.as_deref(),
                    &turn.text,
                    turn.start_ms,
                    turn.end_ms,
                );
                if turn.interrupted {
                    entry.interrupted()
                } else {
                    entry
                }
            }
            Speaker::Candidate => Turn::candidate(
                self.answering.as_deref(),
                &turn.text,
                turn.start_ms,
                turn.end_ms,
            ),
        };
        if let Err(err) = self.log.append(entry.clone()) {
            // The call goes on; what was written before stays on disk.
            tracing::error!(%err, "cannot write the transcript");
        }
        if let Some(observer) = &self.observer {
            let _ = observer.send(entry);
        }
    }
}
