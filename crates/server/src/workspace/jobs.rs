//! The jobs: a list, a readable view of each with its version history and old versions, and
//! a TOML editor (admins only) that saves through [`Jobs::save`](crate::jobs::Jobs::save), so a job saved here passes
//! exactly the checks of a job file loaded from disk and its problems read the same.

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};
use viva_interview::{Job, JobError};
use viva_store::{Author, JobVersion, Role};

use crate::jobs::{JobFile, MAX_JOB_BYTES, Save, SaveError};
use crate::state::AppState;

use super::session::SignedIn;
use super::{message, minute, render};

/// The largest form body read: the job text percent-encoded (up to three bytes per byte), the
/// name and the token. A bigger text is refused by the size check after decoding, with the
/// job's own limit in the message.
const MAX_FORM_BYTES: usize = 3 * MAX_JOB_BYTES + 4 * 1024;

/// What the editor starts a new job from: small, complete and valid, so an admin edits a
/// working job instead of writing one from nothing.
const STARTER: &str = include_str!("../../templates/job_starter.toml");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list))
        // A job named `new` cannot be viewed at /jobs/new; the create form refuses that name.
        .route("/jobs/new", get(new_page).post(create))
        .route("/jobs/{name}", get(view))
        .route("/jobs/{name}/edit", get(edit_page).post(update))
        .route("/jobs/{name}/versions/{version}", get(version))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// One job in the list.
#[derive(Serialize)]
struct JobRow {
    name: String,
    /// None when the file does not load.
    title: Option<String>,
    version: Option<u32>,
    updated: Option<String>,
    interviews: u64,
}

pub async fn list(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    if let Some(refused) = signed_in.denied(Role::Viewer) {
        return refused;
    }
    let (latest, counts) = match tokio::try_join!(
        state.store.latest_job_versions(),
        state.store.interviews_per_job()
    ) {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the jobs' versions");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let rows: Vec<JobRow> = state
        .jobs
        .names()
        .into_iter()
        .map(|name| {
            let version = latest.get(&name);
            JobRow {
                title: state.jobs.load(&name).ok().map(|job| job.title),
                version: version.map(|v| v.version),
                updated: version.map(|v| minute(v.created_at)),
                interviews: counts.get(&name).copied().unwrap_or(0),
                name,
            }
        })
        .collect();
    render(
        "jobs.html",
        Some(&signed_in),
        "jobs",
        minijinja::context! {
            rows => Serde(rows),
            can_edit => signed_in.user.role.allows(Role::Admin),
        },
    )
}

/// A version in the history.
#[derive(Serialize)]
struct VersionRow {
    version: u32,
    by: String,
    at: String,
    fingerprint: String,
}

impl From<&JobVersion> for VersionRow {
    fn from(version: &JobVersion) -> Self {
        VersionRow {
            version: version.version,
            by: match (&version.author, &version.author_email) {
                (Author::File, _) => "job file on disk".to_owned(),
                (Author::User(_), Some(email)) => email.clone(),
                (Author::User(id), None) => format!("account {id}"),
            },
            at: minute(version.created_at),
            fingerprint: version.fingerprint.clone(),
        }
    }
}

/// One problem of a job text, as the editor lists it beside the text.
#[derive(Serialize)]
struct ProblemRow {
    /// The field path, e.g. `questions[2].id`; empty for the whole text (e.g. TOML syntax).
    field: String,
    line: Option<usize>,
    reason: String,
}

impl From<&JobError> for ProblemRow {
    fn from(error: &JobError) -> Self {
        ProblemRow {
            field: error.field.clone(),
            line: error.line,
            reason: error.problem.to_string(),
        }
    }
}

fn no_such_job(signed_in: &SignedIn) -> Response {
    message(
        StatusCode::NOT_FOUND,
        Some(signed_in),
        "No such job",
        "There is no job by this name. Job names are letters, digits, - and _.",
    )
}

fn unavailable(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "cannot read job versions");
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

/// The job as it is now, with its version history.
pub async fn view(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Viewer) {
        return refused;
    }
    let Some(path) = state.jobs.path(&name) else {
        return no_such_job(&signed_in);
    };
    if !path.exists() {
        return no_such_job(&signed_in);
    }
    let versions = match state.store.job_versions(&name).await {
        Ok(versions) => versions,
        Err(err) => return unavailable(err),
    };
    // A file that does not load is shown with its problems, so an admin sees what to fix.
    let (job, problem) = match state.jobs.read(&name) {
        Ok(JobFile { job, .. }) => (Some(job), None),
        Err(err) => (None, Some(format!("{err:#}"))),
    };
    let current = job.as_ref().and_then(|job| {
        versions
            .iter()
            .find(|v| v.fingerprint == job.fingerprint())
            .map(|v| v.version)
    });
    show_job(&signed_in, &name, job, problem, current, None, &versions)
}

/// An earlier (or the current) version of a job, as it was saved.
pub async fn version(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((name, number)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Viewer) {
        return refused;
    }
    let (Some(_), Ok(number)) = (state.jobs.path(&name), number.parse::<u32>()) else {
        return no_such_job(&signed_in);
    };
    let (found, versions) = match tokio::try_join!(
        state.store.job_version(&name, number),
        state.store.job_versions(&name)
    ) {
        Ok(found) => found,
        Err(err) => return unavailable(err),
    };
    let Some((_, text)) = found else {
        return message(
            StatusCode::NOT_FOUND,
            Some(&signed_in),
            "No such version",
            &format!("The job {name} has no version {number}."),
        );
    };
    // Every version was valid when recorded; one this release no longer reads is shown as text.
    let (job, problem) = match Job::from_toml(&text, format!("{name} version {number}")) {
        Ok(job) => (Some(job), None),
        Err(errors) => (None, Some(errors.to_string())),
    };
    show_job(
        &signed_in,
        &name,
        job,
        problem,
        versions.first().map(|v| v.version),
        Some((number, text)),
        &versions,
    )
}

/// The job page: `shown` is the old version (number and text) shown instead of the file.
fn show_job(
    signed_in: &SignedIn,
    name: &str,
    job: Option<Job>,
    problem: Option<String>,
    current: Option<u32>,
    shown: Option<(u32, String)>,
    versions: &[JobVersion],
) -> Response {
    let (shown, text) = shown.unzip();
    render(
        "job.html",
        Some(signed_in),
        "jobs",
        minijinja::context! {
            name,
            job => Serde(job),
            problem,
            current,
            shown,
            text,
            versions => Serde(versions.iter().map(VersionRow::from).collect::<Vec<_>>()),
            can_edit => signed_in.user.role.allows(Role::Admin),
        },
    )
}

/// What the editor posts.
#[derive(Deserialize)]
pub struct JobForm {
    #[serde(default)]
    csrf: String,
    /// The new job's name (creating only; an edit's name is in its URL).
    #[serde(default)]
    name: String,
    #[serde(default)]
    toml: String,
}

/// What the editor shows.
#[derive(Default)]
struct Editor {
    status: Option<StatusCode>,
    /// None when creating a job.
    editing: Option<String>,
    name: String,
    text: String,
    /// A problem with the name.
    name_error: Option<String>,
    /// A problem with the whole save (too large, not written).
    error: Option<String>,
    problems: Vec<ProblemRow>,
}

fn show_editor(signed_in: &SignedIn, editor: Editor) -> Response {
    let mut page = render(
        "job_edit.html",
        Some(signed_in),
        "jobs",
        minijinja::context! {
            editing => editor.editing,
            name => editor.name,
            text => editor.text,
            name_error => editor.name_error,
            error => editor.error,
            problems => Serde(editor.problems),
            max_kib => MAX_JOB_BYTES / 1024,
        },
    );
    if let Some(status) = editor.status {
        *page.status_mut() = status;
    }
    page
}

pub async fn new_page(signed_in: SignedIn) -> Response {
    if let Some(refused) = signed_in.denied(Role::Admin) {
        return refused;
    }
    show_editor(
        &signed_in,
        Editor {
            text: STARTER.to_owned(),
            ..Editor::default()
        },
    )
}

pub async fn edit_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Admin) {
        return refused;
    }
    let Some(path) = state.jobs.path(&name) else {
        return no_such_job(&signed_in);
    };
    // The file's text as it is, even when it does not load: fixing it is what the editor is for.
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return no_such_job(&signed_in);
        }
        Err(err) => {
            tracing::error!(path = %path.display(), error = %err, "cannot read a job file");
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&signed_in),
                "Job not readable",
                &format!("The job file cannot be read: {err}."),
            );
        }
    };
    show_editor(
        &signed_in,
        Editor {
            editing: Some(name.clone()),
            name,
            text,
            ..Editor::default()
        },
    )
}

/// Creates a job from the editor.
pub async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: Result<Form<JobForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return unreadable(&signed_in, &rejection),
    };
    if let Some(refused) = signed_in
        .forged(&form.csrf)
        .or_else(|| signed_in.denied(Role::Admin))
    {
        return refused;
    }
    let name = form.name.trim().to_owned();
    if name == "new" {
        let editor = Editor {
            status: Some(StatusCode::BAD_REQUEST),
            name_error: Some("`new` is taken by this page's address: choose another name".into()),
            name,
            text: form.toml,
            ..Editor::default()
        };
        return show_editor(&signed_in, editor);
    }
    save(&state, &signed_in, name, form.toml, Save::Create).await
}

/// Saves an edited job.
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
    form: Result<Form<JobForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return unreadable(&signed_in, &rejection),
    };
    if let Some(refused) = signed_in
        .forged(&form.csrf)
        .or_else(|| signed_in.denied(Role::Admin))
    {
        return refused;
    }
    if state.jobs.path(&name).is_none() {
        return no_such_job(&signed_in);
    }
    save(&state, &signed_in, name, form.toml, Save::Replace).await
}

async fn save(
    state: &AppState,
    signed_in: &SignedIn,
    name: String,
    text: String,
    how: Save,
) -> Response {
    // Browsers send a textarea's lines ending in CRLF; the file keeps the LF it was shown
    // with, so saving an unchanged job is no new version.
    let text = text.replace("\r\n", "\n");
    let author = Author::User(signed_in.user.id.clone());
    let saved = state
        .jobs
        .save(&state.store, &name, &text, how, &author)
        .await;
    let mut editor = Editor {
        status: Some(StatusCode::BAD_REQUEST),
        editing: (how == Save::Replace).then(|| name.clone()),
        name: name.clone(),
        text,
        ..Editor::default()
    };
    match saved {
        Ok((_, version)) => {
            tracing::info!(job = %name, version, user = %signed_in.user.email, "job saved");
            return Redirect::to(&format!("/jobs/{name}")).into_response();
        }
        Err(SaveError::Invalid(errors)) => {
            editor.problems = errors.errors().iter().map(ProblemRow::from).collect();
        }
        Err(err @ (SaveError::NotAName { .. } | SaveError::Exists { .. })) => {
            editor.name_error = Some(err.to_string());
        }
        Err(err @ SaveError::TooLarge { .. }) => {
            editor.status = Some(StatusCode::PAYLOAD_TOO_LARGE);
            editor.error = Some(err.to_string());
        }
        Err(err @ (SaveError::Write(_) | SaveError::Version(_))) => {
            tracing::error!(job = %name, error = %err, "cannot save a job");
            editor.status = Some(StatusCode::INTERNAL_SERVER_ERROR);
            editor.error = Some(err.to_string());
        }
    }
    show_editor(signed_in, editor)
}

/// The answer to a form that could not be read, most likely one past the size limit.
fn unreadable(signed_in: &SignedIn, rejection: &FormRejection) -> Response {
    let status = rejection.status();
    let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "The job was not saved: it is larger than {} KiB.",
            MAX_JOB_BYTES / 1024
        )
    } else {
        format!("The job was not saved: the form could not be read ({rejection}).")
    };
    message(status, Some(signed_in), "Not saved", &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_pages_show_markup_as_text() {
        let text = STARTER.replace("Support Engineer", "<script>alert(1)</script>");
        let job = Job::from_toml(&text, "new-role.toml").unwrap();
        let view = super::super::templates()
            .get_template("job.html")
            .unwrap()
            .render(minijinja::context! {
                name => "new-role", job => Serde(Some(job)), current => 2, shown => 1,
                text => text.clone(), versions => Vec::<String>::new(),
            })
            .unwrap();
        assert!(!view.contains("<script>alert"), "{view}");
        assert!(
            view.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{view}"
        );
        assert!(view.contains("This is version 1"), "{view}");

        let editor = super::super::templates()
            .get_template("job_edit.html")
            .unwrap()
            .render(minijinja::context! {
                editing => "new-role",
                text => "title = \"</textarea><script>alert(1)</script>\"",
                problems => Serde(vec![ProblemRow {
                    field: "title".into(),
                    line: Some(3),
                    reason: "<b>bad</b>".into(),
                }]),
            })
            .unwrap();
        assert!(!editor.contains("</textarea><script>"), "{editor}");
        assert!(
            editor.contains("&lt;&#x2f;textarea&gt;&lt;script&gt;"),
            "{editor}"
        );
        assert!(
            editor.contains("<code>title</code> <span class=\"muted\">line 3</span>: &lt;b&gt;bad"),
            "{editor}"
        );
    }

    #[test]
    fn the_starter_job_is_valid() {
        if let Err(errors) = Job::from_toml(STARTER, "job_starter.toml") {
            panic!("{errors}");
        }
    }
}
