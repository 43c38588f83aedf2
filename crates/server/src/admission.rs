//! Who may join an interview right now. One decision for every way in (the join page, a phone
//! PIN, a media stream, the dial API, the live call), with a reason that each protocol turns
//! into its own answer: an HTTP status, a spoken prompt, a closed WebSocket.

use viva_call::Departure;
use viva_store::{Interview, Status, Timestamp};

/// What carries a call, and so what a connection that drops for good means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// WebRTC. A dropped connection is a lost connection (the page has its own "End
    /// interview"); a reload rejoins within the grace period.
    Browser,
    /// SIP or a CPaaS media stream. A hang-up is the candidate ending the call, unless they
    /// call back within the grace period.
    Phone,
}

impl Carrier {
    /// How the call ends if this carrier's connection drops and nobody comes back.
    pub fn if_gone(self) -> Departure {
        match self {
            Carrier::Browser => Departure::ConnectionLost,
            Carrier::Phone => Departure::EndedByCandidate,
        }
    }
}

/// Why an interview cannot be joined now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No interview answers to the link, id or PIN.
    Unknown,
    /// It has already taken place.
    Ended,
    /// It was never started and its time to start is over.
    Expired,
    /// Another connection holds it right now (another tab, device or phone call).
    InUse,
    /// It is going on over another kind of connection (a phone call joining a browser call).
    OtherCarrier,
    /// It is for another job than the number the caller dialled.
    OtherJob,
    /// It has not started, and the machine carries as many interviews as it can.
    AtCapacity,
}

/// What the live side knows of one interview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveState {
    /// A connection holds it.
    pub claimed: bool,
    /// Its call is running, on this kind of connection.
    pub running_on: Option<Carrier>,
    /// Every seat is taken: a new call cannot start (a running one goes on in its own).
    pub full: bool,
}

/// Whether a `carrier` connection may join `interview` at `now`. `job`: the caller dialled a
/// number that only opens interviews for this job.
pub fn may_join(
    interview: &Interview,
    now: Timestamp,
    live: LiveState,
    carrier: Carrier,
    job: Option<&str>,
) -> Result<(), Refusal> {
    if interview.status.is_finished() {
        return Err(Refusal::Ended);
    }
    if job.is_some_and(|job| job != interview.job) {
        return Err(Refusal::OtherJob);
    }
    // A call that started before the deadline may be rejoined after it.
    if interview.status == Status::Scheduled && now >= interview.expires_at {
        return Err(Refusal::Expired);
    }
    if live.claimed {
        return Err(Refusal::InUse);
    }
    match live.running_on {
        Some(running) if running != carrier => Err(Refusal::OtherCarrier),
        // A rejoin holds its seat already.
        Some(_) => Ok(()),
        None if live.full => Err(Refusal::AtCapacity),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use viva_store::Candidate;

    use super::*;

    fn interview(status: Status) -> Interview {
        Interview {
            id: "i".into(),
            job: "backend".into(),
            candidate: Candidate {
                name: "Ada".into(),
                email: None,
                phone: None,
            },
            pin: "1234567890".into(),
            status,
            created_at: Timestamp::from_unix_ms(0),
            expires_at: Timestamp::from_unix_ms(1_000),
            started_at: None,
            ended_at: None,
            duration_ms: None,
            end_reason: None,
            failure: None,
            dial: None,
        }
    }

    const BEFORE: Timestamp = Timestamp::from_unix_ms(500);
    const AFTER: Timestamp = Timestamp::from_unix_ms(2_000);

    #[test]
    fn scheduled_interviews_open_until_they_expire() {
        let free = LiveState::default();
        let scheduled = interview(Status::Scheduled);
        assert_eq!(
            may_join(&scheduled, BEFORE, free, Carrier::Phone, None),
            Ok(())
        );
        assert_eq!(
            may_join(&scheduled, AFTER, free, Carrier::Phone, None),
            Err(Refusal::Expired)
        );
        assert_eq!(
            may_join(&scheduled, BEFORE, free, Carrier::Phone, Some("sales")),
            Err(Refusal::OtherJob)
        );
        assert_eq!(
            may_join(&scheduled, BEFORE, free, Carrier::Phone, Some("backend")),
            Ok(())
        );
    }

    #[test]
    fn a_running_call_is_rejoined_by_its_own_kind_of_connection_only() {
        let running = interview(Status::InProgress);
        let on_phone = LiveState {
            claimed: false,
            running_on: Some(Carrier::Phone),
            full: true,
        };
        assert_eq!(
            may_join(&running, AFTER, on_phone, Carrier::Phone, None),
            Ok(()),
            "a rejoin keeps its seat on a full machine"
        );
        assert_eq!(
            may_join(&running, AFTER, on_phone, Carrier::Browser, None),
            Err(Refusal::OtherCarrier)
        );
        let held = LiveState {
            claimed: true,
            ..on_phone
        };
        assert_eq!(
            may_join(&running, BEFORE, held, Carrier::Phone, None),
            Err(Refusal::InUse)
        );
    }

    #[test]
    fn a_full_machine_turns_new_calls_away_and_only_them() {
        let full = LiveState {
            full: true,
            ..LiveState::default()
        };
        let scheduled = interview(Status::Scheduled);
        for carrier in [Carrier::Browser, Carrier::Phone] {
            assert_eq!(
                may_join(&scheduled, BEFORE, full, carrier, None),
                Err(Refusal::AtCapacity)
            );
        }
        // What would refuse the call anyway is said first: it is the true reason.
        assert_eq!(
            may_join(&scheduled, AFTER, full, Carrier::Phone, None),
            Err(Refusal::Expired)
        );
        assert_eq!(
            may_join(
                &interview(Status::Completed),
                BEFORE,
                full,
                Carrier::Phone,
                None
            ),
            Err(Refusal::Ended)
        );
        let held = LiveState {
            claimed: true,
            ..full
        };
        assert_eq!(
            may_join(&scheduled, BEFORE, held, Carrier::Phone, None),
            Err(Refusal::InUse)
        );
    }

    #[test]
    fn finished_interviews_are_over_whatever_else() {
        for status in [Status::Completed, Status::Abandoned, Status::Failed] {
            assert_eq!(
                may_join(
                    &interview(status),
                    BEFORE,
                    LiveState::default(),
                    Carrier::Browser,
                    None
                ),
                Err(Refusal::Ended)
            );
        }
    }
}
