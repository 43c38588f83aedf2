//! What the store knows about one interview.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Who is interviewed, as the recruiter entered them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// How the interviewer addresses the candidate.
    pub name: String,
    /// Where the recruiter reaches them; the store keeps it and does not check it.
    pub email: Option<String>,
    /// A phone number or SIP URI the candidate can be dialled at.
    pub phone: Option<String>,
}

/// An interview to schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInterview {
    /// The job the candidate is interviewed for (a file name in the jobs directory).
    pub job: String,
    /// Who is interviewed.
    pub candidate: Candidate,
    /// After this instant the candidate's link no longer starts the interview.
    pub expires_at: Timestamp,
}

/// One scheduled, running or finished interview.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Interview {
    /// Random and URL-safe: it names the interview in the API and its directory on disk.
    pub id: String,
    /// The job the candidate is interviewed for.
    pub job: String,
    /// Who is interviewed.
    pub candidate: Candidate,
    /// The digits a caller enters on the phone ([`PIN_DIGITS`](crate::PIN_DIGITS) of them for
    /// new interviews); no two unfinished interviews share one.
    pub pin: String,
    /// Where the interview is in its life.
    pub status: Status,
    /// When it was scheduled.
    pub created_at: Timestamp,
    /// When its link stops starting it.
    pub expires_at: Timestamp,
    /// When the candidate joined and the conversation began.
    pub started_at: Option<Timestamp>,
    /// When it finished (completed, abandoned or failed).
    pub ended_at: Option<Timestamp>,
    /// How long the call lasted, for interviews that started and finished: the call's own
    /// length, so time the server was down after a crash does not count.
    pub duration_ms: Option<u64>,
    /// How it ended, for finished interviews.
    pub end_reason: Option<EndReason>,
    /// Why it failed, or a note on how it ended.
    pub failure: Option<String>,
    /// The latest outgoing phone call to the candidate, if any.
    pub dial: Option<Dial>,
}

/// Where the latest outgoing call to the candidate got.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Dial {
    /// `dialing`, `ringing`, `answered`, `busy`, `no_answer`, `rejected` or `failed`.
    pub status: String,
    /// When it got there.
    pub at: Timestamp,
}

/// Where an interview is in its life: scheduled, then in progress, then one of three ends.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created; the candidate has not joined yet.
    Scheduled,
    /// The conversation is running (or was, when the server stopped).
    InProgress,
    /// The interviewer went through the plan and said goodbye.
    Completed,
    /// The candidate left (hung up, closed the tab, did not come back in time).
    Abandoned,
    /// The server could not run or finish it.
    Failed,
}

impl Status {
    /// Every state, in the order of an interview's life.
    pub const ALL: [Status; 5] = [
        Status::Scheduled,
        Status::InProgress,
        Status::Completed,
        Status::Abandoned,
        Status::Failed,
    ];

    /// The name used in the API and the database: `scheduled`, `in_progress`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Abandoned => "abandoned",
            Status::Failed => "failed",
        }
    }

    /// Whether the interview has ended (completed, abandoned or failed): its outcome is final.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::Abandoned | Status::Failed)
    }

    /// The state called `name` (as [`Status::as_str`] writes it), if there is one.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// How an interview ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The interviewer went through the plan and said goodbye.
    Completed,
    /// The candidate left before the end.
    Abandoned,
    /// The server could not run or finish it.
    Failed,
}

impl From<Outcome> for Status {
    fn from(outcome: Outcome) -> Status {
        match outcome {
            Outcome::Completed => Status::Completed,
            Outcome::Abandoned => Status::Abandoned,
            Outcome::Failed => Status::Failed,
        }
    }
}

/// Why an interview ended: the part of its story the status alone does not tell (an
/// `abandoned` interview may have been ended by the candidate, or lost its connection).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The interviewer went through the plan and said its closing line.
    ReachedClosing,
    /// The candidate ended the call: the page's "End interview", or hanging up the phone
    /// without calling back within the grace period.
    EndedByCandidate,
    /// The candidate's connection dropped and did not come back within the grace period.
    ConnectionLost,
    /// The server stopped (shut down, or crashed and recovered) while the call ran.
    ServerStopped,
    /// The server could not run the interview.
    Error,
}

impl EndReason {
    /// The name used in the API and the database: `reached_closing`, `ended_by_candidate`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ReachedClosing => "reached_closing",
            EndReason::EndedByCandidate => "ended_by_candidate",
            EndReason::ConnectionLost => "connection_lost",
            EndReason::ServerStopped => "server_stopped",
            EndReason::Error => "error",
        }
    }

    /// How a person reads it: "ended by the candidate".
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::ReachedClosing => "reached its closing",
            EndReason::EndedByCandidate => "ended by the candidate",
            EndReason::ConnectionLost => "connection lost",
            EndReason::ServerStopped => "server stopped",
            EndReason::Error => "failed",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<EndReason> {
        [
            EndReason::ReachedClosing,
            EndReason::EndedByCandidate,
            EndReason::ConnectionLost,
            EndReason::ServerStopped,
            EndReason::Error,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == name)
    }
}

/// Everything recorded when an interview ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    pub outcome: Outcome,
    pub reason: EndReason,
    /// When it ended.
    pub at: Timestamp,
    /// The call's length as the call measured it; `None` when no call ever started.
    pub duration_ms: Option<u64>,
    /// Why it failed, or a note on how it ended.
    pub failure: Option<String>,
}

/// One page of the newest-first interview list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// At most this many interviews.
    pub limit: u32,
    /// Skipping this many newer ones.
    pub offset: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_match_serde_and_parse_back() {
        for status in [
            Status::Scheduled,
            Status::InProgress,
            Status::Completed,
            Status::Abandoned,
            Status::Failed,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(Status::from_name(status.as_str()), Some(status));
        }
        assert_eq!(Status::from_name("InProgress"), None);
    }

    #[test]
    fn end_reason_names_match_serde_and_parse_back() {
        for reason in [
            EndReason::ReachedClosing,
            EndReason::EndedByCandidate,
            EndReason::ConnectionLost,
            EndReason::ServerStopped,
            EndReason::Error,
        ] {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
            assert_eq!(EndReason::from_name(reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn only_the_three_ends_are_finished() {
        let finished: Vec<Status> = [
            Status::Scheduled,
            Status::InProgress,
            Status::Completed,
            Status::Abandoned,
            Status::Failed,
        ]
        .into_iter()
        .filter(|s| s.is_finished())
        .collect();
        assert_eq!(
            finished,
            [Status::Completed, Status::Abandoned, Status::Failed]
        );
        for outcome in [Outcome::Completed, Outcome::Abandoned, Outcome::Failed] {
            assert!(Status::from(outcome).is_finished(), "{outcome:?}");
        }
    }
}
