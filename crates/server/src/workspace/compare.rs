//! Comparing the candidates of one job: ranked by the composite or any dimension, and 2-5 of
//! them side by side with each dimension's score and best evidence.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::Query;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};
use viva_interview::Report;
use viva_store::{Page, Role};

use crate::state::AppState;

use super::render;
use super::session::SignedIn;

/// Interviews looked at per comparison (newest first).
const MAX_INTERVIEWS: u32 = 500;
/// Candidates side by side at most.
const MAX_SIDE_BY_SIDE: usize = 5;

#[derive(Deserialize)]
pub struct CompareQuery {
    #[serde(default)]
    job: String,
    /// A dimension id to rank by; the composite when absent.
    #[serde(default)]
    sort: String,
    /// The candidates to put side by side (`ids=a&ids=b`, as the form sends them: a
    /// repeated key, which only axum-extra's `Query` reads).
    #[serde(default)]
    ids: Vec<String>,
}

#[derive(Serialize, Clone)]
struct Dimension {
    id: String,
    name: String,
    /// Its place in every candidate's `scores`.
    index: usize,
}

#[derive(Serialize, Clone)]
struct Score {
    score: String,
    value: f64,
    /// The first evidence quote, the one the scorer leaned on most.
    quote: Option<String>,
    at_ms: u64,
}

#[derive(Serialize, Clone)]
struct Candidate {
    id: String,
    candidate: String,
    composite: String,
    value: f64,
    recommendation: &'static str,
    decision: Option<&'static str>,
    scores: Vec<Score>,
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<CompareQuery>,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Viewer) {
        return refused;
    }
    let jobs = state.jobs.names();
    let job = if jobs.contains(&query.job) {
        query.job.clone()
    } else {
        jobs.first().cloned().unwrap_or_default()
    };
    let interviews = match state
        .store
        .interviews(Page {
            limit: MAX_INTERVIEWS,
            offset: 0,
        })
        .await
    {
        Ok(interviews) => interviews,
        Err(err) => {
            tracing::error!(error = %err, "cannot list interviews");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let mut dimensions: Vec<Dimension> = Vec::new();
    let mut ranked: Vec<Candidate> = Vec::new();
    for interview in interviews
        .into_iter()
        .filter(|i| i.job == job && i.status.is_finished())
    {
        let Some(report) = report(&state, &interview.id).await else {
            continue;
        };
        // The dimensions of the job's latest report name the columns.
        if dimensions.is_empty() {
            dimensions = report
                .scorecard
                .dimensions
                .iter()
                .enumerate()
                .map(|(index, d)| Dimension {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    index,
                })
                .collect();
        }
        let by_id: HashMap<&str, _> = report
            .scorecard
            .dimensions
            .iter()
            .map(|d| (d.id.as_str(), d))
            .collect();
        let scores = dimensions
            .iter()
            .map(|dim| match by_id.get(dim.id.as_str()) {
                Some(d) if d.assessed => Score {
                    score: format!("{:.1}", d.score),
                    value: d.score,
                    quote: d.evidence.first().map(|e| e.quote.clone()),
                    at_ms: d.evidence.first().map_or(0, |e| e.start_ms),
                },
                _ => Score {
                    score: "—".to_owned(),
                    value: -1.0,
                    quote: None,
                    at_ms: 0,
                },
            })
            .collect();
        let decision = state
            .store
            .decisions(&interview.id)
            .await
            .ok()
            .and_then(|d| d.first().map(|d| d.verdict.as_str()));
        ranked.push(Candidate {
            id: interview.id,
            candidate: interview.candidate.name,
            composite: format!("{:.1}", report.scorecard.overall_score),
            value: report.scorecard.overall_score,
            recommendation: report.scorecard.recommendation.as_str(),
            decision,
            scores,
        });
    }
    let rank_by = dimensions.iter().position(|d| d.id == query.sort);
    let key = |c: &Candidate| rank_by.map_or(c.value, |i| c.scores[i].value);
    ranked.sort_by(|a, b| key(b).total_cmp(&key(a)));

    let mut error = None;
    let chosen: Vec<Candidate> = if query.ids.is_empty() {
        Vec::new()
    } else if !(2..=MAX_SIDE_BY_SIDE).contains(&query.ids.len()) {
        error = Some(format!(
            "Tick between 2 and {MAX_SIDE_BY_SIDE} candidates to put side by side."
        ));
        Vec::new()
    } else {
        ranked
            .iter()
            .filter(|c| query.ids.contains(&c.id))
            .cloned()
            .collect()
    };
    render(
        "compare.html",
        Some(&signed_in),
        "compare",
        minijinja::context! {
            jobs,
            job,
            dimensions => Serde(dimensions),
            ranked => Serde(ranked),
            chosen => Serde(chosen),
            chosen_ids => query.ids,
            error,
        },
    )
}

async fn report(state: &AppState, id: &str) -> Option<Report> {
    let files = state.store.files(id).ok()?;
    let json = state.storage.read(&files, &files.report()).await.ok()??;
    serde_json::from_slice(&json).ok()
}
