//! The CPaaS media-stream endpoint: a phone call that reaches a CPaaS number is bridged here
//! as a WebSocket of mu-law audio, and its `start` names the interview by `pin` or
//! `interview` (id) in its custom parameters.
//!
//! Only the CPaaS may open one: it presents the deployment's stream token in the URL
//! (`/media-stream/TOKEN`) or as the custom parameter `token`, and a stream without it is
//! closed before any interview is looked up. PINs are then checked by the [`PinGate`], per
//! caller (the custom parameter `caller`, else the connection's address) and across callers.
//!
//! A stream for an interview that would start while every seat is taken hears "all our
//! interviewers are busy, please call again in a few minutes" (in the server's voice,
//! synthesized once at start-up), and is then closed.
//!
//! [`PinGate`]: crate::pins::PinGate

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt, future};
use viva_call::prompt::turn_away;
use viva_call::{CallOutput, SystemClock};
use viva_transport_stream::{MediaStream, WsFrame, accept};

use crate::metrics::CallTransport;
use crate::peer::ClientAddr;
use crate::phone::{self, Opened};
use crate::pins::{PinCaller, PinRefusal};
use crate::state::{AppState, CredentialRefusal};

/// Streams closed so far for want of the stream token.
static UNAUTHENTICATED: AtomicU64 = AtomicU64::new(0);

/// A media message carries 20-100 ms of audio: a few kilobytes of base64.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/media-stream", get(upgrade))
        .route("/media-stream/{token}", get(upgrade_with_token))
}

/// `/media-stream`: the token must come as the `token` custom parameter of `start`.
async fn upgrade(
    State(state): State<AppState>,
    client: ClientAddr,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| bridge(state, socket, client, false))
}

/// `/media-stream/TOKEN`: checked before the WebSocket is even accepted.
async fn upgrade_with_token(
    State(state): State<AppState>,
    client: ClientAddr,
    Path(token): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    match state.verify_credential(client.0, &token, &state.stream_token) {
        Ok(()) => upgrade
            .max_message_size(MAX_MESSAGE_BYTES)
            .on_upgrade(move |socket| bridge(state, socket, client, true)),
        Err(CredentialRefusal::Wrong) => StatusCode::FORBIDDEN.into_response(),
        Err(CredentialRefusal::LockedOut(_)) => StatusCode::TOO_MANY_REQUESTS.into_response(),
    }
}

/// 1, 10, 100, ...
fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

/// Adapts axum's socket to the transport's frames: pings stay axum's business, errors end
/// the stream like a close.
fn frames(
    socket: WebSocket,
) -> impl futures_util::Stream<Item = WsFrame> + futures_util::Sink<WsFrame> + Send + Unpin + 'static
{
    Box::pin(
        socket
            .filter_map(|message| {
                future::ready(match message {
                    Ok(Message::Text(text)) => Some(WsFrame::Text(text.to_string())),
                    Ok(Message::Binary(bytes)) => Some(WsFrame::Binary(bytes.to_vec())),
                    Ok(Message::Ping(_) | Message::Pong(_)) => None,
                    Ok(Message::Close(_)) | Err(_) => Some(WsFrame::Close),
                })
            })
            .with(|frame: WsFrame| {
                future::ready(Ok::<_, axum::Error>(match frame {
                    WsFrame::Text(text) => Message::Text(text.into()),
                    WsFrame::Binary(bytes) => Message::Binary(bytes.into()),
                    WsFrame::Close => Message::Close(None),
                }))
            }),
    )
}

async fn bridge(state: AppState, socket: WebSocket, client: ClientAddr, authenticated: bool) {
    let call_id = format!("stream-{}", state.next_connection());
    let stream = match accept(frames(socket), &call_id).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::warn!(%err, "media stream refused");
            return;
        }
    };
    let MediaStream {
        stream_sid,
        parameters,
        mut call,
        ..
    } = stream;
    let authenticated = authenticated
        || parameters.get("token").is_some_and(|token| {
            state
                .verify_credential(client.0, token, &state.stream_token)
                .is_ok()
        });
    if !authenticated {
        // Logged at the 1st, 10th, 100th...: a flood must not flood the log too.
        let refused = UNAUTHENTICATED.fetch_add(1, Ordering::Relaxed) + 1;
        if is_power_of_ten(refused) {
            tracing::warn!(%stream_sid, client = %client.0, refused, "media stream without the stream token (the URL /media-stream/TOKEN or the custom parameter `token`): closed");
        }
        let _ = call.outbound.send(CallOutput::HangUp).await;
        return;
    }
    // The CPaaS passes the caller's number so that one caller's wrong PINs lock out that
    // caller, not the CPaaS's own addresses that every call comes from.
    let caller = match parameters.get("caller").filter(|c| !c.trim().is_empty()) {
        Some(number) => PinCaller::Number(number.trim().to_owned()),
        None => PinCaller::Address(client.0),
    };
    let opened = match (parameters.get("interview"), parameters.get("pin")) {
        (Some(id), _) => {
            state
                .pins
                .open(&caller, || async {
                    let interview = state.store.interview(id).await.ok().flatten()?;
                    phone::hold(&state, interview, None)
                })
                .await
        }
        (None, Some(pin)) => {
            state
                .pins
                .open(&caller, || phone::open_by_pin(&state, pin, None))
                .await
        }
        (None, None) => Err(PinRefusal::NoMatch),
    };
    match opened {
        Ok(Opened::Held(interview, mut claim)) => {
            tracing::info!(%stream_sid, interview_id = %interview.id, "media stream joined its interview");
            phone::run(&state, call, &interview, &mut claim).await;
        }
        Ok(Opened::AtCapacity) => {
            state.live.turned_away(CallTransport::MediaStream);
            // A caller who hangs up during the prompt needs no hang-up.
            if turn_away(&mut call, &SystemClock::start(), &state.prompts)
                .await
                .is_ok()
            {
                let _ = call.outbound.send(CallOutput::HangUp).await;
            }
        }
        Err(refusal) => {
            tracing::info!(%stream_sid, ?refusal, "media stream names no open interview (customParameters `interview` or `pin`)");
            let _ = call.outbound.send(CallOutput::HangUp).await;
        }
    }
}
