//! Inviting candidates: one by a form, many from a CSV file. Both schedule through
//! [`crate::scheduling`], so the checks and their messages are the API's.

use axum::extract::{Form, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};
use viva_store::{Candidate, Interview, Role};

use crate::scheduling::{Invitation, dial as dial_candidate, schedule};
use crate::state::AppState;

use super::session::SignedIn;
use super::{message, minute, render};

/// Largest CSV file accepted.
pub const MAX_CSV_BYTES: usize = 1024 * 1024;
/// Most rows one file may invite.
const MAX_CSV_ROWS: usize = 1000;

/// A job as the form offers it.
#[derive(Serialize)]
struct JobChoice {
    name: String,
    title: String,
}

/// What the single-candidate form held, to show it again beside an error.
#[derive(Deserialize, Serialize, Default)]
pub struct InviteForm {
    #[serde(default, skip_serializing)]
    csrf: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

/// A scheduled interview as the page shows it.
#[derive(Serialize)]
struct Invited {
    id: String,
    candidate: String,
    pin: String,
    join_url: String,
    expires: String,
    /// Where a dial button would call, when phone calls are on.
    phone: Option<String>,
}

/// A CSV row that was not invited.
#[derive(Serialize)]
struct RowError {
    /// 1-based, the header being row 1 (as a spreadsheet numbers them).
    row: usize,
    message: String,
}

#[derive(Serialize, Default)]
struct Bulk {
    invited: Vec<Invited>,
    errors: Vec<RowError>,
}

/// Everything the page may show besides the forms.
#[derive(Default)]
struct Outcome {
    status: Option<StatusCode>,
    form: InviteForm,
    invited: Option<Invited>,
    error: Option<String>,
    field: Option<String>,
    bulk: Option<Bulk>,
}

pub async fn page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    if let Some(refused) = signed_in.denied(Role::Recruiter) {
        return refused;
    }
    show(&state, &signed_in, Outcome::default())
}

fn show(state: &AppState, signed_in: &SignedIn, outcome: Outcome) -> Response {
    let jobs: Vec<JobChoice> = state
        .jobs
        .names()
        .into_iter()
        .filter_map(|name| {
            // A job that does not load cannot be interviewed for: not offered.
            let title = state.jobs.load(&name).ok()?.title;
            Some(JobChoice { name, title })
        })
        .collect();
    let field_error = outcome.field.as_ref().and(outcome.error.clone());
    let mut page = render(
        "invite.html",
        Some(signed_in),
        "invite",
        minijinja::context! {
            jobs => Serde(jobs),
            form => Serde(outcome.form),
            invited => Serde(outcome.invited),
            error => outcome.field.is_none().then_some(outcome.error).flatten(),
            field => outcome.field,
            field_error,
            bulk => Serde(outcome.bulk),
        },
    );
    if let Some(status) = outcome.status {
        *page.status_mut() = status;
    }
    page
}

fn invited(state: &AppState, interview: &Interview) -> Invited {
    Invited {
        id: interview.id.clone(),
        candidate: interview.candidate.name.clone(),
        pin: interview.pin.clone(),
        join_url: state.join_url(interview),
        expires: minute(interview.expires_at),
        phone: interview
            .candidate
            .phone
            .clone()
            .filter(|_| state.sip.is_some()),
    }
}

/// Empty form fields are absent, not empty strings.
fn given(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Invites one candidate.
pub async fn invite(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<InviteForm>,
) -> Response {
    if let Some(refused) = signed_in
        .forged(&form.csrf)
        .or_else(|| signed_in.denied(Role::Recruiter))
    {
        return refused;
    }
    let invitation = Invitation {
        job: form.job.clone(),
        candidate: Candidate {
            name: form.name.trim().to_owned(),
            email: given(&form.email),
            phone: given(&form.phone),
        },
        expires_in_hours: None,
    };
    match schedule(&state, invitation).await {
        Ok(interview) => {
            tracing::info!(interview_id = %interview.id, user = %signed_in.user.email, "invited from the workspace");
            let outcome = Outcome {
                invited: Some(invited(&state, &interview)),
                ..Outcome::default()
            };
            show(&state, &signed_in, outcome)
        }
        Err(err) => {
            let outcome = Outcome {
                status: Some(StatusCode::BAD_REQUEST),
                error: Some(err.message().to_owned()),
                field: err.field().map(str::to_owned),
                form,
                ..Outcome::default()
            };
            show(&state, &signed_in, outcome)
        }
    }
}

/// Invites every candidate of an uploaded CSV file.
pub async fn invite_csv(
    State(state): State<AppState>,
    signed_in: SignedIn,
    mut multipart: Multipart,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Recruiter) {
        return refused;
    }
    let (mut csrf, mut job, mut file) = (String::new(), String::new(), None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return too_large(&signed_in);
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "job" => job = String::from_utf8_lossy(&bytes).into_owned(),
                    "file" => file = Some(bytes),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => return too_large(&signed_in),
        }
    }
    // Checked once the form is read: the token is one of its fields.
    if let Some(refused) = signed_in.forged(&csrf) {
        return refused;
    }
    let Some(file) = file else {
        let outcome = Outcome {
            status: Some(StatusCode::BAD_REQUEST),
            error: Some("Choose a CSV file.".to_owned()),
            ..Outcome::default()
        };
        return show(&state, &signed_in, outcome);
    };
    let mut bulk = Bulk::default();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(&file[..]);
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(err) => {
            bulk.errors.push(RowError {
                row: 1,
                message: format!("the header row is unreadable: {err}"),
            });
            return show_bulk(&state, &signed_in, bulk);
        }
    };
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let Some(name_at) = find("name") else {
        bulk.errors.push(RowError {
            row: 1,
            message: "the header row must name a `name` column (and may name `email` and `phone`)"
                .to_owned(),
        });
        return show_bulk(&state, &signed_in, bulk);
    };
    let (email_at, phone_at) = (find("email"), find("phone"));
    for (index, record) in reader.records().enumerate() {
        let row = index + 2;
        if index >= MAX_CSV_ROWS {
            bulk.errors.push(RowError {
                row,
                message: format!("only {MAX_CSV_ROWS} rows are read from one file; split it"),
            });
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                bulk.errors.push(RowError {
                    row,
                    message: format!("unreadable: {err}"),
                });
                continue;
            }
        };
        let cell = |at: Option<usize>| at.and_then(|at| record.get(at)).and_then(given);
        let invitation = Invitation {
            job: job.clone(),
            candidate: Candidate {
                name: cell(Some(name_at)).unwrap_or_default(),
                email: cell(email_at),
                phone: cell(phone_at),
            },
            expires_in_hours: None,
        };
        match schedule(&state, invitation).await {
            Ok(interview) => bulk.invited.push(invited(&state, &interview)),
            Err(err) => bulk.errors.push(RowError {
                row,
                message: match err.field() {
                    Some(field) => format!("{field} {}", err.message()),
                    None => err.message().to_owned(),
                },
            }),
        }
    }
    tracing::info!(
        user = %signed_in.user.email,
        invited = bulk.invited.len(),
        refused = bulk.errors.len(),
        "bulk invitation"
    );
    show_bulk(&state, &signed_in, bulk)
}

fn show_bulk(state: &AppState, signed_in: &SignedIn, bulk: Bulk) -> Response {
    let status =
        (bulk.invited.is_empty() && !bulk.errors.is_empty()).then_some(StatusCode::BAD_REQUEST);
    show(
        state,
        signed_in,
        Outcome {
            status,
            bulk: Some(bulk),
            ..Outcome::default()
        },
    )
}

fn too_large(signed_in: &SignedIn) -> Response {
    message(
        StatusCode::PAYLOAD_TOO_LARGE,
        Some(signed_in),
        "File not read",
        &format!(
            "The upload could not be read; files of at most {} KiB are accepted.",
            MAX_CSV_BYTES / 1024
        ),
    )
}

/// The dial button's form.
#[derive(Deserialize)]
pub struct DialForm {
    #[serde(default)]
    csrf: String,
}

/// Calls the candidate of a scheduled interview now, then shows its review page, where the
/// call's progress appears.
pub async fn dial(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<DialForm>,
) -> Response {
    if let Some(refused) = signed_in
        .forged(&form.csrf)
        .or_else(|| signed_in.denied(Role::Recruiter))
    {
        return refused;
    }
    let interview = match state.store.interview(&id).await {
        Ok(Some(interview)) if viva_store::is_valid_id(&id) => interview,
        Ok(_) => {
            return message(
                StatusCode::NOT_FOUND,
                Some(&signed_in),
                "No such interview",
                "This interview does not exist.",
            );
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot read an interview");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    match dial_candidate(&state, &interview).await {
        Ok(()) => {
            tracing::info!(interview_id = %id, user = %signed_in.user.email, "dialled from the workspace");
            Redirect::to(&format!("/interviews/{}", interview.id)).into_response()
        }
        Err(err) => message(
            err.status(),
            Some(&signed_in),
            "Cannot call the candidate",
            &capitalized(err.message()),
        ),
    }
}

/// `text` with its first letter in capitals, as a sentence on a page.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
