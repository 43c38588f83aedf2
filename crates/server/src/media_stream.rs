//! The CPaaS media-stream endpoint: a phone call that reaches a CPaaS number is bridged here
//! as a WebSocket of mu-law audio, and its `start` names the interview by `pin` or
//! `interview` (id) in its custom parameters.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt, future};
use viva_call::CallOutput;
use viva_store::Status;
use viva_transport_stream::{MediaStream, WsFrame, accept};

use crate::phone;
use crate::serve::AppState;

/// A media message carries 20-100 ms of audio: a few kilobytes of base64.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/media-stream", get(upgrade))
}

async fn upgrade(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| bridge(state, socket))
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

async fn bridge(state: AppState, socket: WebSocket) {
    let conn = state.next_connection.fetch_add(1, Ordering::Relaxed);
    let call_id = format!("stream-{conn}");
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
        call,
        ..
    } = stream;
    let interview = match (parameters.get("interview"), parameters.get("pin")) {
        (Some(id), _) => state
            .store
            .interview(id)
            .await
            .ok()
            .flatten()
            .filter(|i| matches!(i.status, Status::Scheduled | Status::InProgress)),
        (None, Some(pin)) => phone::find_by_pin(&state, pin, None).await,
        (None, None) => None,
    };
    match interview {
        Some(interview) => {
            tracing::info!(%stream_sid, interview_id = %interview.id, "media stream joined its interview");
            phone::start_interview(&state, call, &interview).await;
        }
        None => {
            tracing::warn!(%stream_sid, "media stream names no open interview (customParameters `interview` or `pin`)");
            let _ = call.outbound.send(CallOutput::HangUp).await;
        }
    }
}
