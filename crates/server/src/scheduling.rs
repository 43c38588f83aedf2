//! Scheduling an interview: the checks of a request (job, candidate fields, link lifetime)
//! and the new interview, and dialling a phone interview's candidate: the same for the API and
//! the workspace's invite pages.

use axum::http::StatusCode;
use viva_store::{Candidate, Interview, NewInterview, Status, Timestamp};

use crate::admission::{Carrier, Refusal};
use crate::capacity::RETRY_AFTER;
use crate::error::ApiError;
use crate::metrics::CallTransport;
use crate::state::AppState;

/// Longest candidate fields accepted, in characters.
const MAX_NAME_CHARS: usize = 200;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_PHONE_CHARS: usize = 64;
/// Longest a candidate link may be valid: a month.
const MAX_LINK_HOURS: u32 = 720;

/// An interview to schedule.
pub struct Invitation {
    /// The job's name (its file in the jobs directory, without `.toml`).
    pub job: String,
    pub candidate: Candidate,
    /// How long the link stays valid; the configured default when `None`.
    pub expires_in_hours: Option<u32>,
}

/// Checks `invitation` and schedules it; the error names the offending field.
pub async fn schedule(state: &AppState, invitation: Invitation) -> Result<Interview, ApiError> {
    let Some(path) = state.jobs.path(&invitation.job) else {
        return Err(ApiError::invalid(
            "job",
            format!(
                "`{}` is not a job name: use the name of a file in the jobs directory, without .toml",
                invitation.job
            ),
        ));
    };
    if !path.exists() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_job",
            format!(
                "unknown job `{}`: there is no {}",
                invitation.job,
                path.display()
            ),
        )
        .on_field("job"));
    }
    let job_file = match state.jobs.read(&invitation.job) {
        Ok(job_file) => job_file,
        Err(err) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_job",
                format!("the job `{}` cannot be used: {err:#}", invitation.job),
            )
            .on_field("job"));
        }
    };
    let candidate = invitation.candidate;
    if candidate.name.trim().is_empty() {
        return Err(ApiError::invalid("candidate.name", "must not be empty"));
    }
    for (field, value, most) in [
        ("candidate.name", Some(&candidate.name), MAX_NAME_CHARS),
        ("candidate.email", candidate.email.as_ref(), MAX_EMAIL_CHARS),
        ("candidate.phone", candidate.phone.as_ref(), MAX_PHONE_CHARS),
    ] {
        if value.is_some_and(|v| v.chars().count() > most) {
            return Err(ApiError::invalid(
                field,
                format!("must be at most {most} characters"),
            ));
        }
    }
    if candidate.email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(ApiError::invalid(
            "candidate.email",
            "is not an e-mail address",
        ));
    }
    let hours = invitation
        .expires_in_hours
        .unwrap_or(state.config.server.link_ttl_hours);
    if !(1..=MAX_LINK_HOURS).contains(&hours) {
        return Err(ApiError::invalid(
            "expires_in_hours",
            format!("must be between 1 and {MAX_LINK_HOURS}"),
        ));
    }
    let now = Timestamp::now();
    let interview = state
        .store
        .create_interview(NewInterview {
            job: invitation.job,
            candidate,
            expires_at: Timestamp::from_unix_ms(now.unix_ms() + i64::from(hours) * 3_600_000),
        })
        .await?;
    // The version the interview is scheduled with; its call records the one it runs with.
    let version = state
        .jobs
        .record(&state.store, &interview.job, &job_file)
        .await?;
    state
        .store
        .set_interview_job_version(&interview.id, version)
        .await?;
    tracing::info!(interview_id = %interview.id, job = %interview.job, job_version = version, "interview scheduled");
    state.webhooks.scheduled(&interview).await;
    Ok(interview)
}

/// Starts calling the candidate of a scheduled interview on their phone number or SIP address;
/// the call's progress is kept as the interview's dial status. The error says why not.
pub async fn dial(state: &AppState, interview: &Interview) -> Result<(), ApiError> {
    if state.sip.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "phone_disabled",
            "phone calls are off on this server (sip.enabled)",
        ));
    }
    let Some(target) = interview
        .candidate
        .phone
        .clone()
        .filter(|p| !p.trim().is_empty())
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_phone",
            "the candidate has no phone number or SIP address (candidate.phone)",
        ));
    };
    // Only an interview that has not begun is dialled (a dropped phone interview is rejoined
    // by the candidate calling back).
    if interview.status != Status::Scheduled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_dialable",
            format!(
                "the interview is {}; only scheduled interviews are dialled",
                interview.status.as_str()
            ),
        ));
    }
    // The call's seat is taken now, so a candidate who answers is never told the server is
    // full.
    let claimed = state
        .live
        .may_join(interview, Carrier::Phone, None)
        .and_then(|()| state.live.claim(&interview.id, state.next_connection()));
    let claim = match claimed {
        Ok(claim) => claim,
        Err(Refusal::Expired) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_dialable",
                "the interview's time to start is over (expires_at)",
            ));
        }
        Err(Refusal::AtCapacity) => {
            state.live.turned_away(CallTransport::Dial);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "at_capacity",
                "every interviewer is busy: the server already carries as many interviews as it \
                 can (server.max_calls); try again in a few minutes",
            )
            .retry_after(RETRY_AFTER));
        }
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_use",
                "the candidate is joining this interview right now",
            ));
        }
    };
    state
        .store
        .set_dial_status(&interview.id, "dialing", Timestamp::now())
        .await?;
    tracing::info!(interview_id = %interview.id, "dialling the candidate");
    tokio::spawn(crate::phone::dial(
        state.clone(),
        interview.clone(),
        target,
        claim,
    ));
    Ok(())
}
