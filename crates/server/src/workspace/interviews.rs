//! The interview list.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use viva_interview::Recommendation;
use viva_store::{Interview, Page, Role, Status};

use minijinja::value::Serde;

use crate::state::AppState;

use super::session::SignedIn;
use super::{minute, render};

/// Rows per page.
const PAGE_ROWS: u32 = 50;
/// Pages past this are refused: the list is for browsing, not for walking the whole table.
const MAX_PAGE: u32 = 10_000;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    page: u32,
}

/// One row as the page shows it.
#[derive(Serialize)]
pub struct Row {
    id: String,
    candidate: String,
    job: String,
    status: &'static str,
    status_label: &'static str,
    started: Option<String>,
    duration: Option<String>,
    score: Option<String>,
    recommendation: Option<&'static str>,
    recommendation_label: Option<&'static str>,
    /// The hiring team's current decision.
    decision: Option<&'static str>,
}

/// What the list needs of a report.
#[derive(Deserialize)]
struct ReportSummary {
    overall_score: f64,
    recommendation: Recommendation,
}

pub async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Viewer) {
        return refused;
    }
    let page = query.page.min(MAX_PAGE);
    // One more than shown says whether there is an older page.
    let interviews = match state
        .store
        .interviews(Page {
            limit: PAGE_ROWS + 1,
            offset: page * PAGE_ROWS,
        })
        .await
    {
        Ok(interviews) => interviews,
        Err(err) => {
            tracing::error!(error = %err, "cannot list interviews");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let older = (interviews.len() > PAGE_ROWS as usize).then_some(page + 1);
    let mut rows = Vec::with_capacity(interviews.len());
    for interview in interviews.into_iter().take(PAGE_ROWS as usize) {
        rows.push(row(&state, interview).await);
    }
    render(
        "interviews.html",
        Some(&signed_in),
        "interviews",
        minijinja::context! { rows => Serde(rows), older },
    )
}

/// How `interview` is shown in the list and atop its review.
pub async fn row(state: &AppState, interview: Interview) -> Row {
    // Abandoned interviews are scored too, on what was said.
    let summary = if interview.status.is_finished() {
        report_summary(state, &interview.id).await
    } else {
        None
    };
    let decision = match state.store.decisions(&interview.id).await {
        Ok(decisions) => decisions.first().map(|d| d.verdict.as_str()),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read decisions");
            None
        }
    };
    Row {
        decision,
        candidate: interview.candidate.name.clone(),
        job: interview.job.clone(),
        status: interview.status.as_str(),
        status_label: status_label(interview.status),
        started: interview.started_at.map(minute),
        duration: interview.duration_ms.map(|ms| {
            let secs = ms / 1000;
            format!("{}:{:02}", secs / 60, secs % 60)
        }),
        score: summary.as_ref().map(|s| format!("{:.1}", s.overall_score)),
        recommendation: summary.as_ref().map(|s| s.recommendation.as_str()),
        recommendation_label: summary.map(|s| recommendation_label(s.recommendation)),
        id: interview.id,
    }
}

/// The score and advice of a finished interview's report; `None` when it has none (yet).
async fn report_summary(state: &AppState, id: &str) -> Option<ReportSummary> {
    let path = state.store.files(id).ok()?.report();
    let text = tokio::fs::read_to_string(&path).await.ok()?;
    serde_json::from_str(&text)
        .inspect_err(
            |err| tracing::warn!(path = %path.display(), error = %err, "unreadable report"),
        )
        .ok()
}

fn status_label(status: Status) -> &'static str {
    match status {
        Status::Scheduled => "Scheduled",
        Status::InProgress => "In progress",
        Status::Completed => "Completed",
        Status::Abandoned => "Abandoned",
        Status::Failed => "Failed",
    }
}

pub fn recommendation_label(recommendation: Recommendation) -> &'static str {
    match recommendation {
        Recommendation::StrongYes => "Strong yes",
        Recommendation::Yes => "Yes",
        Recommendation::Maybe => "Maybe",
        Recommendation::No => "No",
    }
}
