//! Live interviews: one conversation per interview, carried by whichever connection is
//! attached through a [`viva_call::relay`], so a reload, a network blip or a phone call that
//! fell rejoins the same call instead of starting over. A connection holds an interview by a
//! [`Claim`], released when it is dropped; a call that starts takes one of the machine's
//! seats ([`Capacity`]) and keeps it until its conversation ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use viva_call::{
    Call, CallEnd, CallSetup, ConnectionId, Departure, RelayHandle, SpeechEngines, SystemClock,
    TurnTaking, converse, relay, response_percentile,
};
use viva_interview::Job;
use viva_store::{EndReason, Ending, Interview, Outcome, Status, Store, Timestamp};

use crate::admission::{Carrier, LiveState, Refusal, may_join};
use crate::capacity::{Capacity, Seat};
use crate::conclusion::Conclusions;
use crate::config::Config;
use crate::engines;
use crate::interview_call::{InterviewDialogue, TranscriptSink};
use crate::jobs::{JobFile, Jobs};
use crate::leases;
use crate::metrics::{CallTransport, Metrics, TurnedAway};
use crate::webhooks::Webhooks;

/// Why a connection may not join.
#[derive(Debug)]
pub enum JoinError {
    /// The interview cannot be joined now.
    Refused(Refusal),
    /// Starting the conversation failed.
    Failed(anyhow::Error),
}

/// Every interview being held right now, and what it takes to hold one.
pub struct LiveInterviews {
    store: Store,
    speech: SpeechEngines,
    jobs: Arc<Jobs>,
    conclusions: Arc<Conclusions>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    webhooks: Arc<Webhooks>,
    calls: Mutex<HashMap<String, Arc<LiveCall>>>,
    /// Which connection holds each interview: one tab or phone call at a time.
    claims: Mutex<HashMap<String, ConnectionId>>,
    capacity: Capacity,
}

/// A connection's hold on an interview: while it lives no other connection may join.
/// Dropping it lets go.
pub struct Claim {
    live: Arc<LiveInterviews>,
    interview_id: String,
    conn: ConnectionId,
    /// The seat of the call this connection is to start, taken with the claim so that a full
    /// machine turns the caller away before their call is set up (or their phone rings).
    seat: Option<Seat>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = lock(&self.live.claims);
        if claims.get(&self.interview_id) == Some(&self.conn) {
            claims.remove(&self.interview_id);
        }
    }
}

/// One interview in progress.
pub struct LiveCall {
    carrier: Carrier,
    /// The conversation's output rate: a rejoining connection must take the same.
    rate: u32,
    relay: RelayHandle,
    outcome: watch::Receiver<Option<Outcome>>,
}

/// A connection attached to a live call.
pub struct Joined {
    pub call: Arc<LiveCall>,
    /// Resolves when the call lets go of the connection: it dropped, or the interview ended.
    pub released: oneshot::Receiver<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LiveInterviews {
    pub fn new(
        store: Store,
        speech: SpeechEngines,
        jobs: Arc<Jobs>,
        conclusions: Arc<Conclusions>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        webhooks: Arc<Webhooks>,
    ) -> Arc<Self> {
        let capacity = Capacity::new(config.server.max_calls);
        metrics.set_call_capacity(capacity.max());
        Arc::new(Self {
            store,
            speech,
            jobs,
            conclusions,
            config,
            metrics,
            webhooks,
            calls: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashMap::new()),
            capacity,
        })
    }

    /// Whether a `carrier` connection may join `interview` now; `job`: the number dialled
    /// opens only this job's interviews. See [`may_join`].
    pub fn may_join(
        &self,
        interview: &Interview,
        carrier: Carrier,
        job: Option<&str>,
    ) -> Result<(), Refusal> {
        let live = LiveState {
            claimed: lock(&self.claims).contains_key(&interview.id),
            running_on: lock(&self.calls).get(&interview.id).map(|c| c.carrier),
            full: self.capacity.is_full(),
        };
        may_join(interview, Timestamp::now(), live, carrier, job)
    }

    /// Whether a phone call whose interview is not known yet (the caller types the PIN once
    /// answered) may be answered: a seat is free, or a phone interview waits for its caller
    /// to call back, in the seat it kept.
    pub fn has_room_for_a_caller(&self) -> bool {
        if !self.capacity.is_full() {
            return true;
        }
        let claims = lock(&self.claims);
        lock(&self.calls).iter().any(|(id, call)| {
            call.carrier == Carrier::Phone && call.is_running() && !claims.contains_key(id)
        })
    }

    /// Counts and logs a call turned away because every seat was taken, or the server is
    /// draining.
    pub fn turned_away(&self, transport: CallTransport) {
        if self.is_draining() {
            self.metrics.call_refused(transport, TurnedAway::Draining);
            tracing::info!(?transport, "draining: a new call was turned away");
            return;
        }
        self.metrics.call_refused(transport, TurnedAway::Capacity);
        tracing::warn!(
            ?transport,
            max_calls = self.capacity.max(),
            "every seat is taken (server.max_calls): a new call was turned away"
        );
    }

    /// Takes no new call from now on (the server is to stop): every way in turns callers away
    /// as when every seat is taken, while the live interviews go on. A candidate who dropped
    /// from one may still come back to it.
    pub fn drain(&self) {
        self.capacity.close();
        self.metrics.draining();
    }

    pub fn is_draining(&self) -> bool {
        self.capacity.is_closed()
    }

    /// Interviews in progress (their conversations running, or waiting for a candidate who
    /// dropped to come back).
    pub fn count(&self) -> usize {
        lock(&self.calls).len()
    }

    /// Completes once no interview is in progress.
    pub async fn idle(&self) {
        while self.count() > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Lets connection `conn` hold the interview, unless another one does (`InUse`); a
    /// connection that is to start the interview's call also takes its seat, unless every
    /// seat is taken (`AtCapacity`).
    pub fn claim(
        self: &Arc<Self>,
        interview_id: &str,
        conn: ConnectionId,
    ) -> Result<Claim, Refusal> {
        let starts = !lock(&self.calls).contains_key(interview_id);
        let mut claims = lock(&self.claims);
        if claims.contains_key(interview_id) {
            return Err(Refusal::InUse);
        }
        let seat = match starts {
            true => Some(self.capacity.take().ok_or(Refusal::AtCapacity)?),
            false => None,
        };
        claims.insert(interview_id.to_owned(), conn);
        Ok(Claim {
            live: Arc::clone(self),
            interview_id: interview_id.to_owned(),
            conn,
            seat,
        })
    }

    /// Attaches `call` (a transport's call, of `carrier`) to the interview's live call,
    /// started now if the interview has not begun (in the claim's seat). The claim proves the
    /// connection holds the interview.
    pub async fn join(
        self: &Arc<Self>,
        interview: &Interview,
        claim: &mut Claim,
        call: Call,
        carrier: Carrier,
    ) -> Result<Joined, JoinError> {
        let live = match self.running(&interview.id, carrier, call.output_rate)? {
            Some(live) => live,
            None => {
                // A claim made while the call ran has no seat; if that call has ended since,
                // the interview is over (refused below), unless a free seat says otherwise.
                let seat = claim
                    .seat
                    .take()
                    .or_else(|| self.capacity.take())
                    .ok_or(JoinError::Refused(Refusal::AtCapacity))?;
                self.begin(interview, carrier, call.output_rate, seat)
                    .await?
            }
        };
        let released = live.relay.attach(claim.conn, call, carrier.if_gone());
        Ok(Joined {
            call: live,
            released,
        })
    }

    /// The interview's call, if it runs, when a `carrier` call at `rate` may carry it.
    fn running(
        &self,
        interview_id: &str,
        carrier: Carrier,
        rate: u32,
    ) -> Result<Option<Arc<LiveCall>>, JoinError> {
        let Some(live) = lock(&self.calls).get(interview_id).cloned() else {
            return Ok(None);
        };
        if live.carrier != carrier || live.rate != rate {
            return Err(JoinError::Refused(Refusal::OtherCarrier));
        }
        live.check_running()?;
        Ok(Some(live))
    }

    /// Starts the interview's conversation; marking it started in the database is the one
    /// atomic step, so of two racing connections only one starts it.
    async fn begin(
        self: &Arc<Self>,
        interview: &Interview,
        carrier: Carrier,
        rate: u32,
        seat: Seat,
    ) -> Result<Arc<LiveCall>, JoinError> {
        if interview.status != Status::Scheduled {
            return Err(JoinError::Refused(Refusal::Ended));
        }
        let started = self
            .store
            .start(
                &interview.id,
                Timestamp::now(),
                &leases::starting_now(&self.config.server),
            )
            .await
            .map_err(|e| JoinError::Failed(e.into()))?;
        if !started {
            return self
                .running(&interview.id, carrier, rate)?
                .ok_or(JoinError::Refused(Refusal::Ended));
        }
        if let Ok(Some(started)) = self.store.interview(&interview.id).await {
            self.webhooks.started(&started).await;
        }
        let started = match self.jobs.read(&interview.job) {
            Ok(job_file) => {
                self.record_job_version(interview, &job_file).await;
                self.start(interview, carrier, rate, job_file.job, seat)
            }
            Err(err) => Err(err),
        };
        started.map_err(|err| {
            let reason = format!("{err:#}");
            tracing::error!(interview_id = %interview.id, %reason, "cannot start the interview");
            let store = self.store.clone();
            let webhooks = Arc::clone(&self.webhooks);
            let id = interview.id.clone();
            tokio::spawn(async move {
                let ending = Ending {
                    outcome: Outcome::Failed,
                    reason: EndReason::Error,
                    at: Timestamp::now(),
                    duration_ms: Some(0),
                    failure: Some(reason),
                };
                if store.finish(&id, &ending).await.is_ok()
                    && let Ok(Some(failed)) = store.interview(&id).await
                {
                    webhooks.ended(&failed, None).await;
                }
            });
            JoinError::Failed(err)
        })
    }

    /// Ends every live interview because the server is stopping, and waits (up to `patience`)
    /// until their reports are written and their ends recorded.
    pub async fn stop_all(&self, patience: Duration) {
        let calls: Vec<Arc<LiveCall>> = lock(&self.calls).values().cloned().collect();
        for call in &calls {
            call.relay.stop();
        }
        if tokio::time::timeout(patience, self.idle()).await.is_err() {
            tracing::warn!("live interviews did not finish in time; the next start recovers them");
        }
    }

    /// Records the version of the job the call runs with, which differs from the one it was
    /// scheduled with when the job changed in between. A failure is only logged: the
    /// candidate is waiting, and the report names the job's fingerprint anyway.
    async fn record_job_version(&self, interview: &Interview, job_file: &JobFile) {
        let recorded = match self
            .jobs
            .record(&self.store, &interview.job, job_file)
            .await
        {
            Ok(version) => {
                self.store
                    .set_interview_job_version(&interview.id, version)
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = recorded {
            tracing::warn!(interview_id = %interview.id, error = %err, "cannot record the job version the call runs with");
        }
    }

    fn start(
        self: &Arc<Self>,
        interview: &Interview,
        carrier: Carrier,
        rate: u32,
        job: Job,
        seat: Seat,
    ) -> anyhow::Result<Arc<LiveCall>> {
        let vocabulary = self
            .speech
            .stt
            .vocabulary(&job.vocabulary, job.vocabulary_terms())?;
        let judge = Arc::new(self.jobs.judge_of(job)?);
        let files = self.store.files(&interview.id)?;
        let setup = CallSetup {
            dialogue: Box::new(InterviewDialogue::start(
                judge,
                Some(interview.candidate.name.clone()),
                engines::policy(&self.config)?,
            )),
            transcript: Box::new(TranscriptSink::open(&files.transcript_log())?),
            recording: Some(files.recording()),
            turn_taking: TurnTaking::default(),
            vocabulary,
            observer: self.metrics.clone(),
        };
        // What the call writes is copied off as it goes, so that a node dying mid-call loses
        // seconds of it, not the call.
        let following = self.conclusions.storage().follow(&files);
        let (call, peer) = Call::pair(interview.id.clone(), rate);
        let clock = Arc::new(SystemClock::start());
        let grace = Duration::from_secs(self.config.server.rejoin_grace_secs);
        let (handle, departure, run_relay) = relay(peer, grace, clock.clone());
        tokio::spawn(run_relay);
        let (outcome_tx, outcome) = watch::channel(None);
        let live = Arc::new(LiveCall {
            carrier,
            rate,
            relay: handle,
            outcome,
        });
        lock(&self.calls).insert(interview.id.clone(), Arc::clone(&live));

        let this = Arc::clone(self);
        let interview = interview.clone();
        self.metrics.call_started();
        tokio::spawn(async move {
            let result = converse(call, setup, &this.speech, clock).await;
            // The files are complete: the conclusion puts them up whole.
            drop(following);
            // The machine's share of this call is over; writing the report is not a call.
            drop(seat);
            let (outcome, reason, failure) = match &result {
                Ok(summary) if summary.ended == CallEnd::Completed => {
                    (Outcome::Completed, EndReason::ReachedClosing, None)
                }
                // The relay said why it hung up; a call whose relay is gone lost its connection.
                Ok(_) => (
                    Outcome::Abandoned,
                    match departure.await {
                        Ok(Departure::EndedByCandidate) => EndReason::EndedByCandidate,
                        Ok(Departure::Stopped) => EndReason::ServerStopped,
                        Ok(Departure::ConnectionLost) | Err(_) => EndReason::ConnectionLost,
                    },
                    None,
                ),
                Err(err) => (Outcome::Failed, EndReason::Error, Some(err.to_string())),
            };
            let latencies = result.as_ref().map_or(&[][..], |s| &s.latencies[..]);
            this.metrics.call_ended(outcome);
            tracing::info!(
                interview_id = %interview.id,
                ?outcome,
                end_reason = reason.as_str(),
                answers = latencies.len(),
                response_p50_ms = response_percentile(latencies, 50),
                response_p95_ms = response_percentile(latencies, 95),
                "the call ended"
            );
            // The page learns at once; the report follows.
            let _ = outcome_tx.send(Some(outcome));
            let length = result.as_ref().ok().map(|s| s.length.as_millis() as u64);
            let id = interview.id.clone();
            this.conclusions
                .conclude(interview, outcome, reason, length, failure)
                .await;
            lock(&this.calls).remove(&id);
        });
        Ok(live)
    }
}

impl LiveCall {
    fn is_running(&self) -> bool {
        self.outcome.borrow().is_none()
    }

    fn check_running(&self) -> Result<(), JoinError> {
        match self.is_running() {
            true => Ok(()),
            false => Err(JoinError::Refused(Refusal::Ended)),
        }
    }

    /// Connection `conn` went away (its socket closed); the grace period for rejoining starts.
    pub fn detach(&self, conn: ConnectionId) {
        self.relay.detach(conn);
    }

    /// The candidate ended the call.
    pub fn hang_up(&self) {
        self.relay.hang_up();
    }

    /// Resolves when the conversation is over, with how it ended.
    pub async fn ended(&self) -> Outcome {
        let mut outcome = self.outcome.clone();
        loop {
            if let Some(outcome) = *outcome.borrow_and_update() {
                return outcome;
            }
            if outcome.changed().await.is_err() {
                return Outcome::Failed;
            }
        }
    }
}
