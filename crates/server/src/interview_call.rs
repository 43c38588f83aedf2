//! An interview on a live call: the interviewer answers the conversation loop, and the loop's
//! turns land in the interview's transcript log as they happen (a crash loses at most the turn
//! in progress). Every transport (simulation, browser, phone) wires interviews this way.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use viva_call::{Dialogue, Line, LineKind, Reply, Speaker, TurnSink};
use viva_interview::{
    Interviewer, Judge, Next, Policy, Prompt, TranscriptError, TranscriptLog, Turn, TurnKind,
    resumes_answer,
};

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

    fn on_interrupted(&mut self, at_ms: u64, heard: &str) {
        self.interviewer.on_interrupted(at_ms, heard);
    }

    fn upcoming(&self) -> Vec<String> {
        self.interviewer.upcoming_questions()
    }
}

fn line(prompt: &Prompt) -> Line {
    Line {
        kind: line_kind(prompt.kind),
        question_id: prompt.question_id.clone(),
        text: prompt.text.clone(),
    }
}

/// The call port's name for what an interviewer line is for.
fn line_kind(kind: TurnKind) -> LineKind {
    match kind {
        TurnKind::Greeting => LineKind::Greeting,
        TurnKind::Notice => LineKind::Notice,
        TurnKind::Knockout => LineKind::Knockout,
        TurnKind::Question => LineKind::Question,
        TurnKind::FollowUp => LineKind::FollowUp,
        TurnKind::BlueprintFollowUp => LineKind::BlueprintFollowUp,
        TurnKind::Clarification => LineKind::Clarification,
        TurnKind::Nudge => LineKind::Nudge,
        TurnKind::Steer => LineKind::Steer,
        TurnKind::CandidateQuestions => LineKind::CandidateQuestions,
        TurnKind::Closing => LineKind::Closing,
        // The interviewer never says an answer; the interview's prompts are its own lines.
        TurnKind::Answer => unreachable!("an interviewer prompt is never an answer"),
    }
}

/// The transcript's kind for an interviewer line.
fn turn_kind(kind: LineKind) -> TurnKind {
    match kind {
        LineKind::Greeting => TurnKind::Greeting,
        LineKind::Notice => TurnKind::Notice,
        LineKind::Knockout => TurnKind::Knockout,
        LineKind::Question => TurnKind::Question,
        LineKind::FollowUp => TurnKind::FollowUp,
        LineKind::BlueprintFollowUp => TurnKind::BlueprintFollowUp,
        LineKind::Clarification => TurnKind::Clarification,
        LineKind::Nudge => TurnKind::Nudge,
        LineKind::Steer => TurnKind::Steer,
        LineKind::CandidateQuestions => TurnKind::CandidateQuestions,
        LineKind::Closing => TurnKind::Closing,
    }
}

fn reply(next: Next) -> Reply {
    match next {
        Next::Say(prompt) => Reply::Say(line(&prompt)),
        Next::Finish(prompt) => Reply::Finish(line(&prompt)),
    }
}

/// Writes the call's turns to the interview's transcript log as they happen.
pub struct TranscriptSink {
    log: TranscriptLog,
    /// What the candidate is answering: the item of the interviewer's latest line (answers to
    /// a follow-up are filed under the question it follows up), unless the candidate talked
    /// over that line's first words to go on with their answer.
    answering: Option<String>,
    /// Who spoke the turn before.
    last_speaker: Option<Speaker>,
    observer: Option<mpsc::UnboundedSender<Turn>>,
}

impl TranscriptSink {
    /// Opens (or continues) the transcript log at `path`.
    pub fn open(path: &Path) -> Result<Self, TranscriptError> {
        Ok(Self {
            log: TranscriptLog::open(path)?,
            answering: None,
            last_speaker: None,
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
                // The conversation names the kind of every interviewer line.
                let kind = turn.kind.map_or(TurnKind::Notice, turn_kind);
                let resumed = turn.interrupted
                    && self.last_speaker == Some(Speaker::Candidate)
                    && resumes_answer(&turn.text);
                if !resumed {
                    self.answering = turn.question_id.clone();
                }
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
        self.last_speaker = Some(turn.speaker);
        if let Err(err) = self.log.append(entry.clone()) {
            // The call goes on; what was written before stays on disk.
            tracing::error!(%err, "cannot write the transcript");
        }
        if let Some(observer) = &self.observer {
            let _ = observer.send(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: Speaker, question_id: Option<&str>, text: &str) -> viva_call::Turn {
        viva_call::Turn {
            speaker,
            kind: (speaker == Speaker::Interviewer).then_some(LineKind::Question),
            question_id: question_id.map(str::to_owned),
            text: text.to_owned(),
            start_ms: 0,
            end_ms: 0,
            interrupted: false,
        }
    }

    #[test]
    fn the_rest_of_an_answer_is_filed_with_its_beginning() {
        let scratch = viva_test_support::scratch_dir("interview-call-sink");
        let path = scratch.path().join("log.jsonl");
        let mut sink = TranscriptSink::open(&path).unwrap();
        let cut_off = |text: &str| viva_call::Turn {
            interrupted: true,
            ..turn(Speaker::Interviewer, Some("caching"), text)
        };
        for t in [
            turn(Speaker::Interviewer, Some("api_design"), "Describe an API."),
            turn(Speaker::Candidate, None, "We versioned it"),
            cut_off("Thanks. Can you"),
            turn(Speaker::Candidate, None, "in the URL."),
            cut_off("Thanks. Can you tell me about caching?"),
            turn(Speaker::Candidate, None, "Sorry, go on."),
        ] {
            sink.on_turn(&t);
        }
        let filed: Vec<Option<String>> = TranscriptLog::recover(&path)
            .unwrap()
            .turns
            .into_iter()
            .filter(|t| t.speaker == viva_interview::Speaker::Candidate)
            .map(|t| t.question_id)
            .collect();
        let id = |s: &str| Some(s.to_owned());
        assert_eq!(filed, [id("api_design"), id("api_design"), id("caching")]);
    }
}
