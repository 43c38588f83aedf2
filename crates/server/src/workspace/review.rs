//! One interview's review: the recording with its transcript, and the report beside it.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};
use viva_interview::Report;
use viva_store::{Decision, Interview, Listed, Role, Timestamp, Verdict};

use crate::state::AppState;

use super::interviews::row;
use super::session::SignedIn;
use super::{message, minute, render};

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Viewer) {
        return refused;
    }
    let not_found = || {
        message(
            StatusCode::NOT_FOUND,
            Some(&signed_in),
            "No such interview",
            "This interview does not exist (or the link is cut short).",
        )
    };
    if !viva_store::is_valid_id(&id) {
        return not_found();
    }
    let interview = match state.store.interview(&id).await {
        Ok(Some(interview)) => interview,
        Ok(None) => return not_found(),
        Err(err) => {
            tracing::error!(error = %err, "cannot read an interview");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let Ok(files) = state.store.files(&interview.id) else {
        return not_found();
    };
    // What was said so far: a call in progress shows its transcript as it grows.
    let turns = crate::api::read_transcript(&state, &files)
        .await
        .map(|transcript| transcript.turns)
        .unwrap_or_default();
    let report: Option<Report> = if interview.status.is_finished() {
        state
            .storage
            .read(&files, &files.report())
            .await
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_slice(&json).ok())
    } else {
        None
    };
    let decisions = match state.store.decisions(&interview.id).await {
        Ok(decisions) => decisions,
        Err(err) => {
            tracing::error!(error = %err, "cannot read decisions");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    // A scheduled phone interview can be started from here by calling the candidate.
    let dial = (interview.status == viva_store::Status::Scheduled && state.sip.is_some())
        .then(|| interview.candidate.phone.clone())
        .flatten();
    let dial_status = interview.dial.as_ref().map(|d| d.status.clone());
    // Interviews from before jobs were versioned have none.
    let job_version = match state.store.interview_job_version(&interview.id).await {
        Ok(version) => version,
        Err(err) => {
            tracing::error!(error = %err, "cannot read an interview's job version");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let has_recording = state.storage.exists(&files, &files.recording()).await;
    let has_video = state.storage.exists(&files, &files.video()).await;
    let interview = row(Listed {
        interview,
        score: report.as_ref().map(|r| r.scorecard.overall_score),
        recommendation: report
            .as_ref()
            .map(|r| r.scorecard.recommendation.as_str().to_owned()),
        decision: decisions.first().map(|d| d.verdict),
    });
    let decisions: Vec<DecisionView> = decisions.iter().map(DecisionView::from).collect();
    render(
        "review.html",
        Some(&signed_in),
        "interviews",
        minijinja::context! {
            interview => Serde(interview),
            report => Serde(report),
            turns => Serde(turns),
            has_recording,
            has_video,
            decisions => Serde(decisions),
            job_version,
            can_decide => signed_in.user.role.allows(Role::Recruiter),
            dial,
            dial_status,
        },
    )
}

/// A decision as the page shows it.
#[derive(Serialize)]
struct DecisionView {
    verdict: &'static str,
    note: String,
    by: String,
    at: String,
}

impl From<&Decision> for DecisionView {
    fn from(decision: &Decision) -> Self {
        DecisionView {
            verdict: decision.verdict.as_str(),
            note: decision.note.clone(),
            by: decision.by.clone(),
            at: minute(decision.at),
        }
    }
}

/// Notes longer than this are refused (a paragraph or two is what a note is for).
const MAX_NOTE_CHARS: usize = 2000;

#[derive(Deserialize)]
pub struct DecisionForm {
    // Missing fields are checked below (a missing token is a forged form, not a bad request).
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
}

/// Records a recruiter's decision; the AI's recommendation is left as it is.
pub async fn decide(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Some(refused) = signed_in
        .forged(&form.csrf)
        .or_else(|| signed_in.denied(Role::Recruiter))
    {
        return refused;
    }
    let invalid = |text: &str| {
        message(
            StatusCode::BAD_REQUEST,
            Some(&signed_in),
            "Not recorded",
            text,
        )
    };
    let Some(verdict) = Verdict::from_name(&form.decision) else {
        return invalid("Choose advance, hold or reject.");
    };
    if form.note.chars().count() > MAX_NOTE_CHARS {
        return invalid(&format!(
            "The note is longer than {MAX_NOTE_CHARS} characters."
        ));
    }
    let interview: Option<Interview> = if viva_store::is_valid_id(&id) {
        state.store.interview(&id).await.ok().flatten()
    } else {
        None
    };
    let Some(interview) = interview else {
        return message(
            StatusCode::NOT_FOUND,
            Some(&signed_in),
            "No such interview",
            "This interview does not exist.",
        );
    };
    let note = form.note.trim();
    let at = Timestamp::now();
    if let Err(err) = state
        .store
        .record_decision(&interview.id, &signed_in.user.id, verdict, note, at)
        .await
    {
        tracing::error!(error = %err, "cannot record a decision");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    state
        .webhooks
        .decided(&interview, verdict, note, &signed_in.user.email, at)
        .await;
    tracing::info!(interview_id = %interview.id, user = %signed_in.user.email, decision = verdict.as_str(), "decision recorded");
    Redirect::to(&format!("/interviews/{}", interview.id)).into_response()
}
