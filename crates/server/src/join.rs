//! The candidate's side: the join page behind a signed link, and the WebSocket that sets up
//! the browser call (offer/answer, ICE candidates, hang-up, end of interview).
//!
//! While every seat is taken, an interview that has not started cannot be joined: the page
//! answers 503 with `Retry-After` and asks the candidate to try again in a few minutes, and
//! its details and signalling answer `at_capacity`. A candidate rejoining a running interview
//! is let in: their interview kept its seat.

use std::future::pending;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use viva_call::{Call, ConnectionId};
use viva_store::{Interview, Outcome, Timestamp};
use viva_transport_webrtc::{BrowserCall, RemoteCandidate};

use crate::admission::Carrier;
use crate::admission::Refusal;
use crate::capacity::RETRY_AFTER;
use crate::error::ApiError;
use crate::links::LinkError;
use crate::live::{Claim, JoinError, LiveCall};
use crate::metrics::CallTransport;
use crate::state::AppState;

/// How long the browser's media may take to connect after the answer.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// Keeps idle signaling sockets alive through proxies that close quiet connections.
const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// Signaling messages are SDP and ICE lines: a few kilobytes. Anything far larger is refused.
const MAX_SIGNAL_BYTES: usize = 64 * 1024;
/// The error code of a join refused because every seat is taken.
const AT_CAPACITY: &str = "at_capacity";

pub fn routes() -> Router<AppState> {
    crate::page_headers::secured(
        Router::new()
            .route("/join/{token}", get(page))
            .route("/join/{token}/details", get(details))
            .route("/join/{token}/signal", get(signal))
            .route("/assets/candidate.js", get(script))
            .route("/assets/candidate.css", get(style)),
    )
}

/// Checks a join token and the interview's state: who may join right now.
async fn admit(state: &AppState, token: &str) -> Result<Interview, ApiError> {
    let link = state
        .links
        .verify(token, Timestamp::now().unix_ms() / 1000)
        .map_err(|err| match err {
            LinkError::Invalid => ApiError::not_found("this interview link is not valid"),
            LinkError::Expired => ApiError::new(
                StatusCode::GONE,
                "link_expired",
                "this interview link has expired; ask the recruiter for a new one",
            ),
        })?;
    let interview = state
        .store
        .interview(&link.interview_id)
        .await?
        .ok_or_else(|| refused(Refusal::Unknown))?;
    state
        .live
        .may_join(&interview, Carrier::Browser, None)
        .map_err(refused)?;
    Ok(interview)
}

/// How the page (and a machine reading the status) hears why it cannot join.
fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Unknown | Refusal::OtherJob => {
            ApiError::not_found("this interview no longer exists")
        }
        Refusal::Ended => ApiError::new(
            StatusCode::GONE,
            "interview_ended",
            "this interview has already taken place",
        ),
        Refusal::Expired => ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "this interview link has expired; ask the recruiter for a new one",
        ),
        Refusal::InUse => ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            "this interview is already open in another tab or device",
        ),
        Refusal::OtherCarrier => ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            "this interview is going on over the phone",
        ),
        Refusal::AtCapacity => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            AT_CAPACITY,
            "all our interviewers are busy right now; please try again in a few minutes",
        )
        .retry_after(RETRY_AFTER),
    }
}

/// The page itself; its script asks `details` what to show, so an unusable link still gets
/// the page (with the reason) and the status code says it to machines. While every seat is
/// taken the page is a plain "try again in a few minutes", which needs no script.
async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let status = match admit(&state, &token).await {
        Ok(_) => StatusCode::OK,
        Err(err) if err.code() == AT_CAPACITY => {
            state.live.turned_away(CallTransport::Browser);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                    (header::RETRY_AFTER, RETRY_AFTER.as_secs().to_string()),
                ],
                Html(include_str!("../assets/busy.html")),
            )
                .into_response();
        }
        Err(err) => err.into_response().status(),
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("../assets/candidate.html")),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/candidate.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/candidate.css"),
    )
        .into_response()
}

async fn details(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let interview = admit(&state, &token).await?;
    let job = state
        .jobs
        .load(&interview.job)
        .map_err(ApiError::internal)?;
    Ok(axum::Json(json!({
        "interview_id": interview.id,
        "candidate_name": interview.candidate.name,
        "title": job.title,
        "company": job.company_context,
        "duration_minutes": job.duration_minutes,
        "notice": "This interview is conducted by an AI interviewer. The audio, video and a \
                   transcript are recorded and shared with the recruiter who invited you, and \
                   processed only on their own servers.",
        "status": interview.status,
        "started_at": interview.started_at,
        "ice_servers": state.config.webrtc.ice_servers,
    })))
}

async fn signal(
    State(state): State<AppState>,
    Path(token): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    match admit(&state, &token).await {
        Ok(interview) => {
            upgrade
                .max_message_size(MAX_SIGNAL_BYTES)
                .on_upgrade(move |socket| async move {
                    let conn = state.next_connection();
                    let span = tracing::info_span!("browser", interview_id = %interview.id, conn);
                    tracing::Instrument::instrument(
                        Session::new(state, interview, conn).run(socket),
                        span,
                    )
                    .await;
                })
        }
        Err(err) => {
            if err.code() == AT_CAPACITY {
                state.live.turned_away(CallTransport::Browser);
            }
            err.into_response()
        }
    }
}

/// What the page sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromPage {
    Offer { sdp: String },
    Candidate(RemoteCandidate),
    Hangup,
}

/// One signaling connection: at most one browser call, attached to the interview's live call.
struct Session {
    state: AppState,
    interview: Interview,
    conn: ConnectionId,
    /// The hold on the interview, from the offer until the session ends.
    claim: Option<Claim>,
    browser: Option<Arc<BrowserCall>>,
    /// The browser call's side of the conversation, until its media connects; and by when it
    /// must, counted from the answer (not from the latest message: a page that keeps talking
    /// must not keep a seat without a call).
    connecting: Option<(Call, tokio::time::Instant)>,
    live: Option<Arc<LiveCall>>,
}

impl Session {
    fn new(state: AppState, interview: Interview, conn: ConnectionId) -> Self {
        Self {
            state,
            interview,
            conn,
            claim: None,
            browser: None,
            connecting: None,
            live: None,
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        tracing::info!("the candidate connected");
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            let live = self.live.clone();
            let ended = async {
                match live {
                    Some(live) => live.ended().await,
                    None => pending().await,
                }
            };
            let deadline = self.connecting.as_ref().map(|(_, deadline)| *deadline);
            let browser = deadline.zip(self.browser.clone());
            let connected = async {
                match browser {
                    Some((deadline, browser)) => {
                        tokio::time::timeout_at(deadline, browser.connected()).await
                    }
                    None => pending().await,
                }
            };
            tokio::select! {
                result = connected => {
                    let connected = matches!(result, Ok(Ok(())));
                    if !self.on_connected(&mut socket, connected).await {
                        break;
                    }
                }
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if !self.on_message(&mut socket, text.as_str()).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        bad_message(&mut socket, "binary messages are not part of the protocol").await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                },
                _ = ping.tick() => {
                    let _ = socket.send(Message::Ping(Default::default())).await;
                }
                outcome = ended => {
                    let reason = match outcome {
                        Outcome::Completed => "completed",
                        Outcome::Abandoned => "hung_up",
                        Outcome::Failed => "failed",
                    };
                    send(&mut socket, json!({ "type": "ended", "reason": reason })).await;
                    break;
                }
            }
        }
        if let Some(browser) = &self.browser {
            browser.close().await;
        }
        if let Some(live) = &self.live {
            live.detach(self.conn);
        }
        // Another tab or a reload may hold the interview from now on.
        self.claim = None;
        let _ = socket.send(Message::Close(None)).await;
        tracing::info!("the candidate disconnected");
    }

    /// Handles one message; false ends the session.
    async fn on_message(&mut self, socket: &mut WebSocket, text: &str) -> bool {
        let message: FromPage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(%err, "malformed signaling message");
                bad_message(socket, &format!("not a signaling message: {err}")).await;
                return true;
            }
        };
        match message {
            FromPage::Offer { sdp } => self.on_offer(socket, &sdp).await,
            // An empty candidate marks the end of the browser's gathering: nothing to add.
            FromPage::Candidate(candidate) if candidate.candidate.is_empty() => true,
            FromPage::Candidate(candidate) => {
                match &self.browser {
                    Some(browser) => {
                        if let Err(err) = browser.add_remote_candidate(candidate).await {
                            tracing::warn!(%err, "unusable ICE candidate");
                            bad_message(socket, &err.to_string()).await;
                        }
                    }
                    None => bad_message(socket, "send the offer before ICE candidates").await,
                }
                true
            }
            FromPage::Hangup => {
                if let Some(live) = &self.live {
                    tracing::info!("the candidate ended the call");
                    live.hang_up();
                }
                true
            }
        }
    }

    async fn on_offer(&mut self, socket: &mut WebSocket, sdp: &str) -> bool {
        if self.browser.is_some() {
            bad_message(socket, "one offer per connection: reconnect to start over").await;
            return true;
        }
        // A new call's seat is taken with the claim, before any media is set up.
        match self.state.live.claim(&self.interview.id, self.conn) {
            Ok(claim) => self.claim = Some(claim),
            Err(refusal) => {
                if refusal == Refusal::AtCapacity {
                    self.state.live.turned_away(CallTransport::Browser);
                }
                let error = refused(refusal);
                send_error(socket, error.code(), error.message()).await;
                return false;
            }
        }
        // The media is set up before the interview starts, so a broken offer starts nothing.
        let video = match self.state.store.files(&self.interview.id) {
            Ok(files) => Some(files.video_for(self.conn)),
            Err(err) => {
                tracing::error!(%err, "cannot place the video recording; the call goes on without it");
                None
            }
        };
        let settings = self.state.config.webrtc.settings();
        let (browser, call, answer) =
            match BrowserCall::answer(&settings, &self.interview.id, sdp, video.as_deref()).await {
                Ok(answered) => answered,
                Err(err) => {
                    tracing::warn!(%err, "cannot answer the browser's offer");
                    send_error(
                        socket,
                        "media_failed",
                        &format!("the call could not be set up: {err}"),
                    )
                    .await;
                    return false;
                }
            };
        self.browser = Some(Arc::new(browser));
        self.connecting = Some((call, tokio::time::Instant::now() + CONNECT_TIMEOUT));
        send(socket, json!({ "type": "answer", "sdp": answer })).await;
        true
    }

    /// The browser's media is up (or never came): the interview starts, or resumes, now, so
    /// the candidate hears the interviewer from the first word.
    async fn on_connected(&mut self, socket: &mut WebSocket, connected: bool) -> bool {
        let Some((call, _)) = self.connecting.take() else {
            return true;
        };
        if !connected {
            tracing::warn!("the browser's media did not connect");
            send_error(
                socket,
                "media_failed",
                "the audio connection could not be established: a firewall may block UDP; \
                 the server's operator can configure a TURN server",
            )
            .await;
            return false;
        }
        let Some(claim) = self.claim.as_mut() else {
            return false;
        };
        let joined = self
            .state
            .live
            .join(&self.interview, claim, call, Carrier::Browser)
            .await;
        match joined {
            // The session sees its own socket close and detaches: it needs no release signal.
            Ok(joined) => {
                self.live = Some(joined.call);
                true
            }
            Err(JoinError::Refused(refusal)) => {
                let error = refused(refusal);
                send_error(socket, error.code(), error.message()).await;
                false
            }
            Err(JoinError::Failed(err)) => {
                let message = format!("the interview could not start: {err:#}");
                send_error(socket, "media_failed", &message).await;
                false
            }
        }
    }
}

async fn send(socket: &mut WebSocket, message: Value) {
    let _ = socket.send(Message::Text(message.to_string().into())).await;
}

async fn send_error(socket: &mut WebSocket, code: &str, message: &str) {
    send(
        socket,
        json!({ "type": "error", "code": code, "message": message }),
    )
    .await;
}

async fn bad_message(socket: &mut WebSocket, message: &str) {
    send_error(socket, "bad_message", message).await;
}
