//! Live interviews: one conversation per interview that outlives the browser connections
//! carrying it, so a reload or a network blip rejoins the same call instead of starting over.
//!
//! A [`Relay`] task sits between the conversation loop and whichever connection is attached:
//! caller audio flows in from it, interviewer audio flows out to it. With no connection the
//! interviewer's audio goes nowhere and a grace timer runs; when it expires the candidate is
//! taken to have left, and the interview ends as abandoned with everything said kept. This
//! holds for every carrier: a phone caller whose call dropped calls back and types the PIN.
//!
//! How the interview ended ([`EndReason`]) is known here: the interviewer's closing, the
//! candidate's "End interview" or hang-up, a connection that never came back, or the server
//! stopping.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use viva_call::{
    Call, CallEnd, CallInput, CallOutput, CallPeer, CallSetup, SpeechEngines, SystemClock,
    TurnTaking, converse, response_percentile,
};
use viva_interview::embedding::Embedder;
use viva_interview::job::Job;
use viva_interview::judge::Judge;
use viva_interview::report::{EndOfCall, Report, ReportContext};
use viva_interview::transcript::{LOG_FILE, Transcript, TranscriptLog, write_atomically};
use viva_store::{EndReason, Ending, Interview, Outcome, Status, Store, Timestamp};

use crate::config::Config;
use crate::engines;
use crate::interview_call::{InterviewDialogue, TranscriptSink};
use crate::metrics::Metrics;

/// What carries a call: it sets the conversation's output rate (the carrier's own, so nothing
/// is resampled on the way out) and what a dropped connection means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// WebRTC: 48 kHz Opus. A dropped connection is a lost connection (the page has its own
    /// "End interview"); a reload rejoins within the grace period.
    Browser,
    /// SIP or a CPaaS media stream: 8 kHz. A hang-up is the candidate ending the call, unless
    /// they call back within the grace period.
    Phone,
}

impl Carrier {
    fn output_rate(self) -> u32 {
        match self {
            Carrier::Browser => 48_000,
            Carrier::Phone => crate::phone::PHONE_RATE,
        }
    }

    /// Why the interview ends if a connection of this carrier drops for good.
    fn departure(self) -> EndReason {
        match self {
            Carrier::Browser => EndReason::ConnectionLost,
            Carrier::Phone => EndReason::EndedByCandidate,
        }
    }
}
/// Files of one interview, under its directory.
pub const RECORDING_FILE: &str = "recording.wav";
pub const VIDEO_FILE: &str = "video.webm";
pub const REPORT_FILE: &str = "report.json";

/// Identifies one browser connection (one signaling socket).
pub type ConnectionId = u64;

/// Every interview being held right now, and what it takes to hold one.
pub struct LiveInterviews {
    store: Store,
    speech: SpeechEngines,
    embedder: Arc<Embedder>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    calls: Mutex<HashMap<String, Arc<LiveCall>>>,
    /// Which connection holds each interview: one tab at a time, from its offer until it
    /// goes away.
    claims: Mutex<HashMap<String, ConnectionId>>,
}

/// Why a connection may not join.
#[derive(Debug)]
pub enum JoinError {
    /// The interview is over (or was never startable).
    Ended,
    /// The interview is live on another kind of carrier (a phone call joining a browser
    /// call's grace period).
    OtherCarrier,
    /// Starting the conversation failed.
    Failed(anyhow::Error),
}

/// One interview in progress.
pub struct LiveCall {
    carrier: Carrier,
    commands: mpsc::UnboundedSender<RelayCommand>,
    outcome: watch::Receiver<Option<Outcome>>,
}

enum RelayCommand {
    /// A connection of `Carrier` carries the call; the sender fires when the relay lets go
    /// of it (it dropped, or the call ended).
    Attach(ConnectionId, Call, Carrier, oneshot::Sender<()>),
    /// The connection went away (its socket closed).
    Detach(ConnectionId),
    /// The candidate ended the interview.
    HangUp,
    /// The server is stopping.
    Stop,
}

impl LiveInterviews {
    pub fn new(
        store: Store,
        speech: SpeechEngines,
        embedder: Arc<Embedder>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            speech,
            embedder,
            config,
            metrics,
            calls: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a connection holds `interview_id` right now.
    pub fn is_claimed(&self, interview_id: &str) -> bool {
        self.claims.lock().unwrap().contains_key(interview_id)
    }

    /// Lets connection `conn` hold the interview, unless another one does.
    pub fn claim(&self, interview_id: &str, conn: ConnectionId) -> bool {
        let mut claims = self.claims.lock().unwrap();
        match claims.get(interview_id) {
            Some(holder) => *holder == conn,
            None => {
                claims.insert(interview_id.to_owned(), conn);
                true
            }
        }
    }

    /// Connection `conn` is gone: another may hold the interview.
    pub fn release(&self, interview_id: &str, conn: ConnectionId) {
        let mut claims = self.claims.lock().unwrap();
        if claims.get(interview_id) == Some(&conn) {
            claims.remove(interview_id);
        }
    }

    /// The interview's live call, started now if the interview has not begun yet. The caller
    /// must hold the interview's [claim](Self::claim).
    pub async fn join(
        self: &Arc<Self>,
        interview: &Interview,
        carrier: Carrier,
    ) -> Result<Arc<LiveCall>, JoinError> {
        if let Some(call) = self.calls.lock().unwrap().get(&interview.id).cloned() {
            if call.carrier != carrier {
                return Err(JoinError::OtherCarrier);
            }
            return call.check_running().map(|()| call);
        }
        if interview.status != Status::Scheduled {
            return Err(JoinError::Ended);
        }
        // Claiming the interview in the database is the one atomic step: of two racing
        // connections only one starts the conversation.
        let started = self
            .store
            .start(&interview.id, Timestamp::now())
            .await
            .map_err(|e| JoinError::Failed(e.into()))?;
        if !started {
            return match self.calls.lock().unwrap().get(&interview.id).cloned() {
                Some(call) => call.check_running().map(|()| call),
                None => Err(JoinError::Ended),
            };
        }
        let call = match self.start(interview, carrier) {
            Ok(call) => call,
            Err(err) => {
                let reason = format!("{err:#}");
                tracing::error!(interview_id = %interview.id, %reason, "cannot start the interview");
                let ending = Ending {
                    outcome: Outcome::Failed,
                    reason: EndReason::Error,
                    at: Timestamp::now(),
                    duration_ms: Some(0),
                    failure: Some(reason),
                };
                let _ = self.store.finish(&interview.id, &ending).await;
                return Err(JoinError::Failed(err));
            }
        };
        Ok(call)
    }

    /// Finishes interviews a crash left in progress: their transcripts and recordings are on
    /// disk up to the crash, so they end as abandoned (the server stopped), with a report of
    /// what was said and the length of call that was recorded.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        for interview in self.store.unfinished().await? {
            tracing::warn!(interview_id = %interview.id, "finishing an interview the server stopped during");
            let dir = self.store.interview_dir(&interview.id)?;
            let length = recorded_length(&dir);
            repair_videos(&dir);
            let this = Arc::clone(self);
            let id = interview.id.clone();
            let report = tokio::task::spawn_blocking(move || {
                this.write_report(&interview, &dir, EndReason::ServerStopped, length)
            })
            .await?;
            let (outcome, failure) = match report {
                Ok(()) => (Outcome::Abandoned, None),
                Err(err) => (Outcome::Failed, Some(format!("no report: {err:#}"))),
            };
            let ending = Ending {
                outcome,
                reason: EndReason::ServerStopped,
                at: Timestamp::now(),
                duration_ms: length,
                failure,
            };
            self.store.finish(&id, &ending).await?;
        }
        Ok(())
    }

    /// Ends every live interview because the server is stopping, and waits (up to `patience`)
    /// until their reports are written and their ends recorded.
    pub async fn stop_all(&self, patience: Duration) {
        let calls: Vec<Arc<LiveCall>> = self.calls.lock().unwrap().values().cloned().collect();
        for call in &calls {
            let _ = call.commands.send(RelayCommand::Stop);
        }
        let concluded = async {
            while !self.calls.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(patience, concluded).await.is_err() {
            tracing::warn!("live interviews did not finish in time; the next start recovers them");
        }
    }

    fn start(
        self: &Arc<Self>,
        interview: &Interview,
        carrier: Carrier,
    ) -> anyhow::Result<Arc<LiveCall>> {
        let judge = Arc::new(self.judge(&interview.job)?);
        let dir = self.store.interview_dir(&interview.id)?;
        let setup = CallSetup {
            dialogue: Box::new(InterviewDialogue::start(
                Arc::clone(&judge),
                Some(interview.candidate.name.clone()),
                engines::policy(&self.config)?,
            )),
            transcript: Box::new(TranscriptSink::open(&dir)?),
            recording: Some(dir.join(RECORDING_FILE)),
            turn_taking: TurnTaking::default(),
        };
        let (call, peer) = Call::pair(interview.id.clone(), carrier.output_rate());
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (outcome_tx, outcome) = watch::channel(None);
        let live = Arc::new(LiveCall {
            carrier,
            commands,
            outcome,
        });
        self.calls
            .lock()
            .unwrap()
            .insert(interview.id.clone(), Arc::clone(&live));

        let grace = Duration::from_secs(self.config.server.rejoin_grace_secs);
        let (departure_tx, departure) = oneshot::channel();
        tokio::spawn(Relay::new(peer, command_rx, grace, departure_tx).run());
        let this = Arc::clone(self);
        let interview = interview.clone();
        self.metrics.call_started();
        tokio::spawn(async move {
            let clock = Arc::new(SystemClock::start());
            let result = converse(call, setup, &this.speech, clock).await;
            let (outcome, reason, failure) = match &result {
                Ok(summary) if summary.ended == CallEnd::Completed => {
                    (Outcome::Completed, EndReason::ReachedClosing, None)
                }
                // The relay said why it hung up; a call whose relay is gone lost its connection.
                Ok(_) => (
                    Outcome::Abandoned,
                    departure.await.unwrap_or(EndReason::ConnectionLost),
                    None,
                ),
                Err(err) => (Outcome::Failed, EndReason::Error, Some(err.to_string())),
            };
            let latencies = result.as_ref().map_or(&[][..], |s| &s.latencies[..]);
            this.metrics.call_ended(outcome, latencies);
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
            this.conclude(interview, outcome, reason, length, failure)
                .await;
        });
        Ok(live)
    }

    async fn conclude(
        self: Arc<Self>,
        interview: Interview,
        outcome: Outcome,
        reason: EndReason,
        length: Option<u64>,
        failure: Option<String>,
    ) {
        let ended_at = Timestamp::now();
        let this = Arc::clone(&self);
        let id = interview.id.clone();
        let report = tokio::task::spawn_blocking(move || {
            let dir = this.store.interview_dir(&interview.id)?;
            // A call that failed has no length of its own: the recording says how far it got.
            let length = length.or_else(|| recorded_length(&dir));
            this.write_report(&interview, &dir, reason, length)
                .map(|()| length)
        })
        .await;
        let (length, failure) = match report {
            Ok(Ok(length)) => (length, failure),
            Ok(Err(err)) => (
                length,
                Some(failure.unwrap_or_else(|| format!("no report: {err:#}"))),
            ),
            Err(err) => (length, Some(format!("no report: {err}"))),
        };
        let ending = Ending {
            outcome,
            reason,
            at: ended_at,
            duration_ms: length,
            failure,
        };
        if let Err(err) = self.store.finish(&id, &ending).await {
            tracing::error!(interview_id = %id, %err, "cannot record the end of the interview");
        }
        self.calls.lock().unwrap().remove(&id);
    }

    /// Scores what the transcript holds and writes the report beside it.
    fn write_report(
        &self,
        interview: &Interview,
        dir: &Path,
        reason: EndReason,
        length: Option<u64>,
    ) -> anyhow::Result<()> {
        let judge = self.judge(&interview.job)?;
        let transcript = if dir.join(LOG_FILE).exists() {
            TranscriptLog::recover(dir)?
        } else {
            Transcript::default()
        };
        let report = Report::build(
            judge.job(),
            &transcript,
            &judge.assess_transcript(&transcript),
            &ReportContext {
                candidate: Some(interview.candidate.name.clone()),
                completed_at: Some(Timestamp::now().to_string()),
                ended: Some(EndOfCall {
                    reason: reason.as_str().to_owned(),
                    description: reason.describe().to_owned(),
                }),
                call_length_ms: length,
                models: engines::model_versions(&self.config, true),
            },
        )?;
        Ok(write_atomically(
            &dir.join(REPORT_FILE),
            report.to_json().as_bytes(),
        )?)
    }

    fn judge(&self, job: &str) -> anyhow::Result<Judge> {
        let job = load_job(&self.config.server.jobs_dir, job)?;
        Ok(Judge::new(Arc::new(job), Arc::clone(&self.embedder))?)
    }
}

/// The length of call the recording holds (it is flushed as the call goes, so after a crash
/// it says how far the call got); `None` when there is no readable recording.
fn recorded_length(dir: &Path) -> Option<u64> {
    let path = dir.join(RECORDING_FILE);
    match viva_media::wav_length(&path) {
        Ok(length) => Some(length.as_millis() as u64),
        Err(err) => {
            if path.exists() {
                tracing::warn!(%err, "cannot read the recording's length");
            }
            None
        }
    }
}

/// Makes the camera recordings a crash left unfinished playable and seekable.
fn repair_videos(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let is_video = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("video") && n.ends_with(".webm"));
        if is_video {
            match viva_transport_webrtc::repair_call_recording(&path) {
                Ok(outcome) => {
                    tracing::info!(video = %path.display(), ?outcome, "checked the camera recording")
                }
                Err(err) => {
                    tracing::warn!(video = %path.display(), %err, "cannot repair the camera recording")
                }
            }
        }
    }
}

/// Loads `jobs_dir/NAME.toml`, listing every problem in it.
pub fn load_job(jobs_dir: &Path, name: &str) -> anyhow::Result<Job> {
    let path = job_path(jobs_dir, name)
        .with_context(|| format!("`{name}` is not a job name (letters, digits, - and _)"))?;
    Job::load(&path).map_err(|errors| anyhow::anyhow!("{errors}"))
}

/// The file a job name refers to, if the name is one (it must not reach outside the directory).
pub fn job_path(jobs_dir: &Path, name: &str) -> Option<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| jobs_dir.join(format!("{name}.toml")))
}

impl LiveCall {
    fn check_running(&self) -> Result<(), JoinError> {
        match *self.outcome.borrow() {
            Some(_) => Err(JoinError::Ended),
            None => Ok(()),
        }
    }

    /// Carries the call over `call` (a transport's call for connection `conn`) from now on.
    /// The returned receiver resolves when the call lets go of this connection: it dropped
    /// (the grace period for coming back runs) or the interview ended.
    pub fn attach(
        &self,
        conn: ConnectionId,
        call: Call,
        carrier: Carrier,
    ) -> oneshot::Receiver<()> {
        let (released, on_release) = oneshot::channel();
        let _ = self
            .commands
            .send(RelayCommand::Attach(conn, call, carrier, released));
        on_release
    }

    /// Connection `conn` went away; the grace period for rejoining starts.
    pub fn detach(&self, conn: ConnectionId) {
        let _ = self.commands.send(RelayCommand::Detach(conn));
    }

    /// The candidate ended the call.
    pub fn hang_up(&self) {
        let _ = self.commands.send(RelayCommand::HangUp);
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

/// Moves audio between the conversation and the attached connection.
struct Relay {
    conversation: CallPeer,
    commands: mpsc::UnboundedReceiver<RelayCommand>,
    grace: Duration,
    attached: Option<Attached>,
    /// When the candidate counts as gone, while no connection is attached, and why.
    gone_at: Option<(Instant, EndReason)>,
    /// Told why the relay hung up on the conversation.
    departure: Option<oneshot::Sender<EndReason>>,
}

/// The connection carrying the call.
struct Attached {
    conn: ConnectionId,
    call: Call,
    carrier: Carrier,
    /// Fired (by being dropped) when the relay lets go of the connection.
    _released: oneshot::Sender<()>,
}

impl Relay {
    fn new(
        conversation: CallPeer,
        commands: mpsc::UnboundedReceiver<RelayCommand>,
        grace: Duration,
        departure: oneshot::Sender<EndReason>,
    ) -> Self {
        Self {
            conversation,
            commands,
            grace,
            attached: None,
            // The first connection is attaching right now; the same grace covers its setup.
            gone_at: Some((Instant::now() + grace, EndReason::ConnectionLost)),
            departure: Some(departure),
        }
    }

    async fn run(mut self) {
        loop {
            let gone = async {
                match self.gone_at {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let from_caller = async {
                match &mut self.attached {
                    Some(attached) => attached.call.inbound.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(RelayCommand::Attach(conn, call, carrier, released)) => {
                        self.attached = Some(Attached { conn, call, carrier, _released: released });
                        self.gone_at = None;
                    }
                    Some(RelayCommand::Detach(conn)) => {
                        if self.attached.as_ref().is_some_and(|a| a.conn == conn) {
                            self.drop_connection();
                        }
                    }
                    Some(RelayCommand::HangUp) => self.end(EndReason::EndedByCandidate).await,
                    Some(RelayCommand::Stop) | None => self.end(EndReason::ServerStopped).await,
                },
                input = from_caller => match input {
                    // The connection dropped; the candidate may come back within the grace.
                    Some(CallInput::HangUp) | None => self.drop_connection(),
                    Some(input) => {
                        if self.conversation.inbound.send(input).await.is_err() {
                            return;
                        }
                    }
                },
                output = self.conversation.outbound.recv() => match output {
                    Some(CallOutput::HangUp) | None => {
                        if let Some(attached) = &self.attached {
                            let _ = attached.call.outbound.send(CallOutput::HangUp).await;
                        }
                        return;
                    }
                    Some(output) => {
                        if let Some(attached) = &self.attached {
                            let _ = attached.call.outbound.send(output).await;
                        }
                    }
                },
                () = gone => {
                    let reason = self.gone_at.take().map_or(EndReason::ConnectionLost, |(_, why)| why);
                    tracing::info!(end_reason = reason.as_str(), "the candidate did not come back: ending the call");
                    self.end(reason).await;
                }
            }
        }
    }

    /// Ends the conversation for `reason` (the first reason given stands).
    async fn end(&mut self, reason: EndReason) {
        self.gone_at = None;
        if let Some(departure) = self.departure.take() {
            let _ = departure.send(reason);
        }
        let _ = self.conversation.inbound.send(CallInput::HangUp).await;
    }

    fn drop_connection(&mut self) {
        if let Some(attached) = self.attached.take() {
            tracing::info!(
                grace_secs = self.grace.as_secs(),
                "the candidate's connection dropped; waiting for a rejoin"
            );
            self.gone_at = Some((Instant::now() + self.grace, attached.carrier.departure()));
        }
    }
}
