//! The interview list: filtered, searched, sorted and paged in the database; rows of calls
//! that are not over refresh while the page is open.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use viva_interview::Recommendation;
use viva_store::{DecisionFilter, Filter, Listed, Page, Role, Sort, Status, Timestamp, Verdict};

use minijinja::value::Serde;

use crate::state::AppState;

use super::session::SignedIn;
use super::{minute, render};

/// Rows per page.
const PAGE_ROWS: u32 = 50;
/// Pages past this are refused: the list is for browsing, not for walking the whole table.
const MAX_PAGE: u32 = 10_000;

/// The list's filters, as the filter form sends them (empty fields are no filter).
#[derive(Deserialize, Serialize, Default)]
pub struct ListQuery {
    #[serde(default, skip_serializing)]
    page: u32,
    #[serde(default)]
    job: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    recommendation: String,
    /// `advance`, `hold`, `reject` or `none` (undecided).
    #[serde(default)]
    decision: String,
    /// Scheduled on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    from: String,
    /// Scheduled on or before this day.
    #[serde(default)]
    to: String,
    /// Part of the candidate's name.
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
}

impl ListQuery {
    /// The store's filter; values the form never offers are ignored rather than refused.
    fn filter(&self) -> Filter {
        let day = |date: &str| {
            format!("{}T00:00:00Z", date.trim())
                .parse::<Timestamp>()
                .ok()
        };
        let given = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
        Filter {
            job: given(&self.job),
            status: Status::from_name(&self.status),
            recommendation: Recommendation::ALL
                .into_iter()
                .map(Recommendation::as_str)
                .find(|name| *name == self.recommendation)
                .map(str::to_owned),
            decision: match self.decision.as_str() {
                "none" => Some(DecisionFilter::Undecided),
                name => Verdict::from_name(name).map(DecisionFilter::Is),
            },
            created_from: day(&self.from),
            // The whole of the last day counts.
            created_before: day(&self.to)
                .map(|at| Timestamp::from_unix_ms(at.unix_ms() + 24 * 3600 * 1000)),
            name: given(&self.q),
            sort: Sort::from_name(&self.sort).unwrap_or_default(),
        }
    }

    /// This query's URL for another page.
    fn page_url(&self, page: u32) -> String {
        let mut query = serde_urlencoded::to_string(self).unwrap_or_default();
        if page > 0 {
            query.push_str(&format!("&page={page}"));
        }
        format!("/?{query}")
    }
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
    recommendation: Option<String>,
    recommendation_label: Option<&'static str>,
    /// The hiring team's current decision.
    decision: Option<&'static str>,
    /// Scheduled or in progress: the row may change while the page is open.
    live: bool,
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
    let listed = state
        .store
        .list_interviews(
            &query.filter(),
            Page {
                limit: PAGE_ROWS + 1,
                offset: page * PAGE_ROWS,
            },
        )
        .await;
    let (listed, jobs) = match (listed, state.store.interview_jobs().await) {
        (Ok(listed), Ok(jobs)) => (listed, jobs),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %err, "cannot list interviews");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let older = (listed.len() > PAGE_ROWS as usize).then(|| query.page_url(page + 1));
    let newer = (page > 0).then(|| query.page_url(page - 1));
    let rows: Vec<Row> = listed
        .into_iter()
        .take(PAGE_ROWS as usize)
        .map(row)
        .collect();
    let live = rows.iter().any(|r| r.live);
    let filtered = query.filter()
        != Filter {
            sort: query.filter().sort,
            ..Filter::default()
        };
    render(
        "interviews.html",
        Some(&signed_in),
        "interviews",
        minijinja::context! {
            rows => Serde(rows),
            older,
            newer,
            live,
            filtered,
            query => Serde(&query),
            jobs,
            statuses => Status::ALL.map(|s| (s.as_str(), status_label(s))),
            recommendations => Recommendation::ALL.map(|r| (r.as_str(), recommendation_label(r))),
            verdicts => Verdict::ALL.map(Verdict::as_str),
            sorts => Sort::ALL.map(|s| (s.as_str(), sort_label(s))),
        },
    )
}

/// How an interview is shown in the list and atop its review.
pub fn row(listed: Listed) -> Row {
    let Listed {
        interview,
        score,
        recommendation,
        decision,
    } = listed;
    let recommendation_name = recommendation
        .and_then(|name| Recommendation::ALL.into_iter().find(|r| r.as_str() == name));
    Row {
        decision: decision.map(Verdict::as_str),
        candidate: interview.candidate.name.clone(),
        job: interview.job.clone(),
        status: interview.status.as_str(),
        status_label: status_label(interview.status),
        live: !interview.status.is_finished(),
        started: interview.started_at.map(minute),
        duration: interview.duration_ms.map(|ms| {
            let secs = ms / 1000;
            format!("{}:{:02}", secs / 60, secs % 60)
        }),
        score: score.map(|s| format!("{s:.1}")),
        recommendation: recommendation_name.map(|r| r.as_str().to_owned()),
        recommendation_label: recommendation_name.map(recommendation_label),
        id: interview.id,
    }
}

fn sort_label(sort: Sort) -> &'static str {
    match sort {
        Sort::Newest => "Newest first",
        Sort::Oldest => "Oldest first",
        Sort::ScoreHigh => "Highest score",
        Sort::ScoreLow => "Lowest score",
        Sort::Candidate => "Candidate A–Z",
    }
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
