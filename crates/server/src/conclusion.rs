//! How an interview ends on the record: its report written from what the transcript holds, and
//! its end (outcome, reason, the call's length) stored. For a call that ended, and for calls no
//! process runs any more: a crash or a kill left them in progress, or their node died (their
//! transcripts and recordings are kept up to then; camera videos are repaired). The report's
//! score and advice are also kept beside the interview for the list to filter and sort on.

use std::sync::Arc;

use viva_interview::{
    EndOfCall, Report, ReportContext, Scorecard, TranscriptLog, write_atomically,
};
use viva_store::{EndReason, Ending, Interview, InterviewFiles, Outcome, Store, Timestamp};

use crate::config::Config;
use crate::engines;
use crate::jobs::Jobs;
use crate::storage::Storage;
use crate::webhooks::Webhooks;

/// Writes reports, records ends and tells the ATS.
pub struct Conclusions {
    store: Store,
    storage: Storage,
    jobs: Arc<Jobs>,
    config: Arc<Config>,
    webhooks: Arc<Webhooks>,
}

impl Conclusions {
    pub fn new(
        store: Store,
        storage: Storage,
        jobs: Arc<Jobs>,
        config: Arc<Config>,
        webhooks: Arc<Webhooks>,
    ) -> Self {
        Self {
            store,
            storage,
            jobs,
            config,
            webhooks,
        }
    }

    /// Concludes an interview whose call ended: `length` is the call's own (`None` when it
    /// failed without one: the recording then says how far it got).
    pub async fn conclude(
        self: &Arc<Self>,
        interview: Interview,
        outcome: Outcome,
        reason: EndReason,
        length: Option<u64>,
        failure: Option<String>,
    ) {
        let ended_at = Timestamp::now();
        let this = Arc::clone(self);
        let id = interview.id.clone();
        let report = tokio::task::spawn_blocking(move || {
            let files = this.store.files(&interview.id)?;
            let length = length.or_else(|| recorded_length(&files));
            this.write_report(&interview, &files, reason, length)
                .map(|report| (report, length))
        })
        .await;
        self.archive(&id).await;
        let (length, failure, report) = match report {
            Ok(Ok((report, length))) => (length, failure, Some(report)),
            Ok(Err(err)) => (
                length,
                Some(failure.unwrap_or_else(|| format!("no report: {err:#}"))),
                None,
            ),
            Err(err) => (length, Some(format!("no report: {err}")), None),
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
            return;
        }
        if let Some(report) = &report {
            self.record_assessment(&id, report).await;
        }
        self.tell_ended(&id, report.as_ref().map(|r| &r.scorecard))
            .await;
    }

    /// Sends the ATS the end of an interview, as the store now has it.
    async fn tell_ended(&self, id: &str, scorecard: Option<&Scorecard>) {
        match self.store.interview(id).await {
            Ok(Some(ended)) => self.webhooks.ended(&ended, scorecard).await,
            Ok(None) => {}
            Err(err) => {
                tracing::error!(interview_id = %id, %err, "cannot read the ended interview for its webhook");
            }
        }
    }

    /// Finishes an interview no process runs any more (a crash, a kill, a node that died):
    /// it ends as abandoned (the server stopped), with a report of what was said and the
    /// length of call that was recorded.
    pub async fn finish_orphan(self: &Arc<Self>, interview: Interview) -> anyhow::Result<()> {
        let files = self.store.files(&interview.id)?;
        // Its node may have died: what it copied to the object store is all there is.
        if let Err(err) = self.storage.restore(&files).await {
            tracing::error!(interview_id = %interview.id, error = %format!("{err:#}"), "cannot bring the interview's files back from the object store");
        }
        let length = recorded_length(&files);
        repair_videos(&files);
        let this = Arc::clone(self);
        let id = interview.id.clone();
        let report = tokio::task::spawn_blocking(move || {
            this.write_report(&interview, &files, EndReason::ServerStopped, length)
        })
        .await?;
        let (outcome, failure, report) = match report {
            Ok(report) => (Outcome::Abandoned, None, Some(report)),
            Err(err) => (Outcome::Failed, Some(format!("no report: {err:#}")), None),
        };
        let ending = Ending {
            outcome,
            reason: EndReason::ServerStopped,
            at: Timestamp::now(),
            duration_ms: length,
            failure,
        };
        self.archive(&id).await;
        self.store.finish(&id, &ending).await?;
        if let Some(report) = &report {
            self.record_assessment(&id, report).await;
        }
        self.tell_ended(&id, report.as_ref().map(|r| &r.scorecard))
            .await;
        Ok(())
    }

    /// Reads back the scores of reports written before the interview list kept them; once,
    /// at start-up.
    pub async fn read_back_assessments(&self) -> anyhow::Result<()> {
        for id in self.store.unassessed().await? {
            let files = self.store.files(&id)?;
            let path = files.report();
            let Ok(Some(json)) = self.storage.read(&files, &path).await else {
                continue;
            };
            match serde_json::from_slice::<Report>(&json) {
                Ok(report) => self.record_assessment(&id, &report).await,
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "an unreadable report is left out of the list's scores");
                }
            }
        }
        Ok(())
    }

    /// Where the interviews' files are kept.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Moves a concluded interview's files to the object store, before its end is recorded:
    /// an ended interview's files are where readers look. A failure keeps them in this node's
    /// spool, from where the next start moves them.
    async fn archive(&self, id: &str) {
        let archived = match self.store.files(id) {
            Ok(files) => self.storage.archive(&files).await,
            Err(err) => Err(err.into()),
        };
        if let Err(err) = archived {
            tracing::error!(interview_id = %id, error = %format!("{err:#}"), "cannot move the interview's files to the object store; the next start tries again");
        }
    }

    /// At start-up: moves the files of interviews that ended while the object store could
    /// not take them.
    pub async fn archive_leftovers(&self) -> anyhow::Result<()> {
        if !self.storage.is_remote() {
            return Ok(());
        }
        for id in self.store.interviews_with_files() {
            if let Some(interview) = self.store.interview(&id).await?
                && interview.status.is_finished()
            {
                tracing::info!(interview_id = %id, "moving an ended interview's files to the object store");
                self.archive(&id).await;
            }
        }
        Ok(())
    }

    /// Keeps the report's score and advice beside the interview, for the list.
    async fn record_assessment(&self, id: &str, report: &Report) {
        let card = &report.scorecard;
        if let Err(err) = self
            .store
            .record_assessment(id, card.overall_score, card.recommendation.as_str())
            .await
        {
            tracing::error!(interview_id = %id, %err, "cannot record the report's score");
        }
    }

    /// Scores what the transcript holds and writes the report beside it.
    fn write_report(
        &self,
        interview: &Interview,
        files: &InterviewFiles,
        reason: EndReason,
        length: Option<u64>,
    ) -> anyhow::Result<Report> {
        let judge = self.jobs.judge(&interview.job)?;
        let transcript = TranscriptLog::recover(&files.transcript_log())?;
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
        write_atomically(&files.report(), report.to_json().as_bytes())?;
        Ok(report)
    }
}

/// The length of call the recording holds (it is flushed as the call goes, so after a crash
/// it says how far the call got); `None` when there is no readable recording.
fn recorded_length(files: &InterviewFiles) -> Option<u64> {
    let path = files.recording();
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
fn repair_videos(files: &InterviewFiles) {
    for path in files.videos() {
        match viva_transport_webrtc::repair_call_recording(&path) {
            Ok(outcome) => {
                tracing::info!(video = %path.display(), ?outcome, "checked the camera recording");
            }
            Err(err) => {
                tracing::warn!(video = %path.display(), %err, "cannot repair the camera recording");
            }
        }
    }
}
