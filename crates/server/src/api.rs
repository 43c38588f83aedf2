//! The recruiter API: create interviews, follow them, and fetch their transcripts, reports
//! and recordings. Every route needs `Authorization: Bearer KEY` (the deployment's admin key
//! or a personal key, acting with its owner's role); errors are JSON
//! `{"error": {"code", "message", "field"?}}` with a status that says what went wrong.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use viva_interview::{HtmlOptions, Report, Transcript, TranscriptLog, render_html};
use viva_store::{Candidate, Interview, InterviewFiles, Page, Role};

use crate::api_keys;
use crate::error::ApiError;
use crate::peer::ClientAddr;
use crate::scheduling::{Invitation, schedule};
use crate::state::{AppState, CredentialRefusal};

/// Largest JSON request body: an interview request is a few hundred bytes.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// The API's routes, behind the key check.
pub fn routes(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/interviews", post(create).get(list))
        .route("/interviews/{id}", get(show))
        .route("/interviews/{id}/transcript", get(transcript))
        .route("/interviews/{id}/report", get(report))
        .route("/interviews/{id}/recording", get(recording))
        .route("/interviews/{id}/video", get(video))
        .route("/interviews/{id}/dial", post(dial))
        .route_layer(middleware::from_fn_with_state(state, require_key));
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(protected)
        .fallback(|| async { ApiError::not_found("no such API route") })
        // Larger bodies are cut off while read, and answered 413 by `JsonBody`.
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
}

/// A JSON request body: `Content-Type: application/json`, at most [`MAX_JSON_BODY`] bytes,
/// deserialized with the path of the first bad field. Every refusal is an [`ApiError`].
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {MAX_JSON_BODY} bytes"),
            )
        };
        // A declared length over the limit is refused before a byte of the body is read (a
        // client waiting on `Expect: 100-continue` never sends it).
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_JSON_BODY as u64) {
            return Err(too_large());
        }
        // Without one (chunked), the body is cut off as it is read.
        let body =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => too_large(),
                    status => ApiError::new(status, "invalid_request", rejection.body_text()),
                })?;
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body))
            .map(JsonBody)
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." { String::new() } else { field };
                ApiError::invalid(
                    field,
                    format!("the request body is not valid: {}", e.inner()),
                )
            })
    }
}

async fn require_key(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    // Reading needs any account; scheduling and dialling need a recruiter's.
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let needed = if reads { Role::Viewer } else { Role::Recruiter };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let role = match presented {
        Some(key) => match api_keys::authenticate(&state, client, key.trim()).await {
            Ok(Ok(holder)) => holder.role(),
            Ok(Err(CredentialRefusal::LockedOut(lockout))) => {
                return ApiError::locked_out(lockout);
            }
            Ok(Err(CredentialRefusal::Wrong)) => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the API key is wrong or revoked",
                )
                .into_response();
            }
            Err(err) => return ApiError::internal(err).into_response(),
        },
        // A signed-in browser may read (the review page plays recordings and offers downloads
        // from here); changes need a key, so a cookie alone cannot be used to forge them.
        None => match crate::workspace::session::signed_in(&state, request.headers()).await {
            Ok(Some(signed_in)) if reads => signed_in.user.role,
            Ok(_) => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send an API key as `Authorization: Bearer KEY` (make one in the workspace \
                     under API keys; `viva api-key` prints the deployment's admin key)",
                )
                .into_response();
            }
            Err(err) => return ApiError::internal(err).into_response(),
        },
    };
    if !role.allows(needed) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the {} role; the key's account is a {}",
                needed.as_str(),
                role.as_str()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../assets/openapi.json"),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInterview {
    job: String,
    candidate: Candidate,
    expires_in_hours: Option<u32>,
}

async fn create(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateInterview>,
) -> Result<Response, ApiError> {
    let interview = schedule(
        &state,
        Invitation {
            job: request.job,
            candidate: request.candidate,
            expires_in_hours: request.expires_in_hours,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state, &interview))).into_response())
}

/// An interview as the API shows it.
fn view(state: &AppState, interview: &Interview) -> Value {
    json!({
        "id": interview.id,
        "job": interview.job,
        "candidate": interview.candidate,
        "status": interview.status,
        "pin": interview.pin,
        "join_url": state.join_url(interview),
        "created_at": interview.created_at,
        "expires_at": interview.expires_at,
        "started_at": interview.started_at,
        "ended_at": interview.ended_at,
        "duration_ms": interview.duration_ms,
        "end_reason": interview.end_reason,
        "failure": interview.failure,
        "dial": interview.dial,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<u32>,
    offset: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("limit", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    let interviews = state
        .store
        .interviews(Page {
            limit,
            offset: query.offset.unwrap_or(0),
        })
        .await?;
    let interviews: Vec<Value> = interviews.iter().map(|i| view(&state, i)).collect();
    Ok(Json(json!({ "interviews": interviews })))
}

async fn find(state: &AppState, id: &str) -> Result<Interview, ApiError> {
    let not_found = || ApiError::not_found(format!("no interview `{id}`"));
    if !viva_store::is_valid_id(id) {
        return Err(not_found());
    }
    state.store.interview(id).await?.ok_or_else(not_found)
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let interview = find(&state, &id).await?;
    Ok(Json(view(&state, &interview)))
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

/// The `format` query parameter: one of `allowed`, the first being the default.
fn format<'a>(
    query: Result<Query<FormatQuery>, axum::extract::rejection::QueryRejection>,
    allowed: &[&'a str],
) -> Result<&'a str, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("format", e.body_text()))?;
    match query.format {
        None => Ok(allowed[0]),
        Some(f) => allowed.iter().find(|a| **a == f).copied().ok_or_else(|| {
            ApiError::invalid("format", format!("must be one of: {}", allowed.join(", ")))
        }),
    }
}

/// The transcript as written so far (the whole of it once the call has ended), wherever it is
/// kept.
pub async fn read_transcript(
    state: &AppState,
    files: &InterviewFiles,
) -> Result<Transcript, ApiError> {
    let path = files.transcript_log();
    let log = state
        .storage
        .read(files, &path)
        .await
        .map_err(ApiError::internal)?;
    let text = String::from_utf8_lossy(log.as_deref().unwrap_or_default());
    TranscriptLog::recover_text(&text, &path).map_err(ApiError::internal)
}

async fn transcript(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<FormatQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let format = format(query, &["json", "vtt"])?;
    let interview = find(&state, &id).await?;
    let transcript = read_transcript(&state, &state.store.files(&interview.id)?).await?;
    Ok(match format {
        "vtt" => (
            [(header::CONTENT_TYPE, "text/vtt; charset=utf-8")],
            transcript.to_vtt(),
        )
            .into_response(),
        _ => (
            [(header::CONTENT_TYPE, "application/json")],
            transcript.to_json(),
        )
            .into_response(),
    })
}

async fn report(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<FormatQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let format = format(query, &["json", "html"])?;
    let interview = find(&state, &id).await?;
    let files = state.store.files(&interview.id)?;
    let json = match state.storage.read(&files, &files.report()).await {
        Ok(Some(json)) if interview.status.is_finished() => {
            String::from_utf8(json).map_err(ApiError::internal)?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "report_not_ready",
                format!(
                    "the report is written when the interview ends; it is {}",
                    interview.status.as_str()
                ),
            ));
        }
    };
    if format == "json" {
        return Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response());
    }
    let report: Report = serde_json::from_str(&json).map_err(ApiError::internal)?;
    let transcript = read_transcript(&state, &files).await?;
    let options = HtmlOptions {
        // Relative to .../report: the recording route beside it.
        recording_url: state
            .storage
            .exists(&files, &files.recording())
            .await
            .then(|| "recording".to_owned()),
    };
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        render_html(&report, &transcript, &options),
    )
        .into_response())
}

/// Calls the candidate's phone; the interview runs on the call once answered.
async fn dial(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let interview = find(&state, &id).await?;
    crate::scheduling::dial(&state, &interview).await?;
    let interview = find(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(view(&state, &interview))).into_response())
}

async fn recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    media_file(&state, &id, InterviewFiles::recording, "audio/wav", request).await
}

async fn video(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    media_file(&state, &id, InterviewFiles::video, "video/webm", request).await
}

/// Serves a recording with range requests, so a player can seek.
async fn media_file(
    state: &AppState,
    id: &str,
    file: fn(&InterviewFiles) -> std::path::PathBuf,
    mime: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let interview = find(state, id).await?;
    let files = state.store.files(&interview.id)?;
    let path = file(&files);
    match state.storage.serve(&files, &path, mime, request).await {
        Ok(Some(response)) => Ok(response),
        Ok(None) => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            Err(ApiError::not_found(format!(
                "interview `{id}` has no {} (it has not started, or was not a browser call)",
                name.unwrap_or_default()
            )))
        }
        Err(err) => Err(ApiError::internal(err)),
    }
}
