//! CPaaS media streams over WebSocket: a phone call that reaches a CPaaS number, bridged in
//! as the conversation loop's [`viva_call::Call`] without SIP.
//!
//! The CPaaS opens a WebSocket to the server and speaks the widespread media-stream JSON
//! protocol: `connected`, `start` (stream and call ids, `customParameters`, `mediaFormat`),
//! then `media` (base64 8 kHz mu-law), `dtmf`, `mark` and `stop`. [`accept`] reads the setup
//! and returns a [`MediaStream`] whose [`Call`] (made with `Call::pair(call_id, 8_000)`) then
//! carries the call:
//! - the caller's audio as continuous 20 ms 8 kHz [`CallInput::Audio`] frames, whatever size
//!   the payloads had (holes of up to 200 ms in the payload timestamps filled with silence);
//! - each `dtmf` event as a [`CallInput::Dtmf`];
//! - `stop`, a close or a failed WebSocket as one [`CallInput::HangUp`].
//!
//! Outbound, each 20 ms [`CallOutput::Audio`] frame becomes one `media` message; the end of
//! each talkspurt (a gap in frame timestamps, no frame for 100 ms, or a barge-in) is followed
//! by a `mark`; [`CallOutput::ClearPlayback`] sends `clear`; [`CallOutput::HangUp`] (or
//! dropping the call) closes the WebSocket.
//!
//! Bad input (malformed JSON, unknown events, bad base64, messages over 64 KiB, media before
//! `start`, binary frames) is ignored, and logged at the 1st, 10th, 100th... occurrence of
//! each kind.
//!
//! The crate works on any WebSocket: adapt it to a `Stream<Item = WsFrame> + Sink<WsFrame>`.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt, future};
//! use tokio_tungstenite::tungstenite::Message;
//! use viva_transport_stream::{WsFrame, accept};
//! # async fn demo(tcp: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
//! let ws = tokio_tungstenite::accept_async(tcp).await?;
//! let socket = ws
//!     .filter_map(|message| future::ready(match message {
//!         Ok(Message::Text(text)) => Some(WsFrame::Text(text.to_string())),
//!         Ok(Message::Binary(bytes)) => Some(WsFrame::Binary(bytes.to_vec())),
//!         Ok(Message::Close(_)) | Err(_) => Some(WsFrame::Close),
//!         Ok(_) => None, // pings are answered by tungstenite itself
//!     }))
//!     .with(|frame| future::ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(match frame {
//!         WsFrame::Text(text) => Message::text(text),
//!         WsFrame::Binary(bytes) => Message::binary(bytes),
//!         WsFrame::Close => Message::Close(None),
//!     })));
//! let stream = accept(Box::pin(socket), "call-7").await?;
//! let pin = stream.parameters.get("pin");
//! // ... hand `stream.call` to the interview the PIN selects ...
//! # Ok(()) }
//! ```
//!
//! [`CallInput::Audio`]: viva_call::CallInput::Audio
//! [`CallInput::Dtmf`]: viva_call::CallInput::Dtmf
//! [`CallInput::HangUp`]: viva_call::CallInput::HangUp
//! [`CallOutput::Audio`]: viva_call::CallOutput::Audio
//! [`CallOutput::ClearPlayback`]: viva_call::CallOutput::ClearPlayback
//! [`CallOutput::HangUp`]: viva_call::CallOutput::HangUp

#![warn(missing_docs)]

mod bad_input;
mod caller_audio;
mod error;
mod interviewer_voice;
mod protocol;
mod pump;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::oneshot;
use tracing::Instrument;
use viva_call::Call;

pub use error::StreamError;

use bad_input::BadInput;
use pump::SetupEnd;
use viva_call::PHONE_RATE;

/// How long a new WebSocket may take to send `start`. A CPaaS sends it at once; anything else
/// connecting is turned away after this.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One WebSocket message, as the media-stream protocol needs it.
///
/// Adapters map their socket's messages to these: pings and pongs are the socket's own
/// business (drop them), a read error ends the stream like a close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFrame {
    /// A text message: every message of the protocol.
    Text(String),
    /// A binary message: not part of the protocol, ignored.
    Binary(Vec<u8>),
    /// The peer closed the socket (inbound), or close it (outbound).
    Close,
}

/// A started media stream: who is calling, and the call to hand to an interview.
#[derive(Debug)]
pub struct MediaStream {
    /// The CPaaS's id of this stream (`streamSid`), as sent back on every outbound message.
    pub stream_sid: String,
    /// The CPaaS's id of the phone call (`callSid`), if it sent one.
    pub call_sid: Option<String>,
    /// The `customParameters` of `start` (numbers and booleans as their text): the server
    /// picks the interview from `pin` or `interview`.
    pub parameters: BTreeMap<String, String>,
    /// The phone call, at 8 kHz both ways.
    pub call: Call,
}

/// Reads a new media stream's setup (`connected`, then `start`) and bridges the stream into a
/// [`Call`] named `call_id`; background tasks then carry the call until it ends (see the crate
/// docs).
///
/// # Errors
/// The stream closed or stopped before `start` ([`StreamError::ClosedBeforeStart`]), sent no
/// `start` within [`START_TIMEOUT`] ([`StreamError::NoStart`]), sent a `start` that cannot be
/// read ([`StreamError::BadStart`]) or offers audio other than 8 kHz mono mu-law
/// ([`StreamError::UnsupportedFormat`]). The socket is closed in every case.
pub async fn accept<S>(mut socket: S, call_id: &str) -> Result<MediaStream, StreamError>
where
    S: Stream<Item = WsFrame> + Sink<WsFrame> + Send + Unpin + 'static,
{
    let span = tracing::info_span!("media_stream", call_id, stream_sid = tracing::field::Empty);
    let mut bad_input = BadInput::default();
    let setup = tokio::time::timeout(START_TIMEOUT, pump::read_start(&mut socket, &mut bad_input))
        .instrument(span.clone())
        .await;
    let start = match setup {
        Ok(Ok(start)) if start.format.is_phone_mulaw() => start,
        refused => {
            let refusal = match refused {
                Ok(Ok(start)) => StreamError::UnsupportedFormat {
                    encoding: start.format.encoding,
                    sample_rate: start.format.sample_rate,
                    channels: start.format.channels,
                },
                Ok(Err(SetupEnd::Closed)) => StreamError::ClosedBeforeStart,
                Ok(Err(SetupEnd::BadStart(reason))) => StreamError::BadStart { reason },
                Err(_) => StreamError::NoStart {
                    waited: START_TIMEOUT,
                },
            };
            // Best effort: the CPaaS may already be gone.
            let _ = socket.send(WsFrame::Close).await;
            let _ = socket.close().await;
            return Err(refusal);
        }
    };

    span.record("stream_sid", start.stream_sid.as_str());
    span.in_scope(|| {
        // Parameter values stay out of the log: one of them is the interview's PIN.
        let parameters: Vec<&str> = start.parameters.keys().map(String::as_str).collect();
        tracing::info!(call_sid = ?start.call_sid, ?parameters, "media stream started");
    });
    let (call, peer) = Call::pair(call_id, PHONE_RATE);
    let (writer, reader) = socket.split();
    let (hung_up, hang_up_heard) = oneshot::channel();
    tokio::spawn(
        pump::listen(reader, peer.inbound, hang_up_heard, bad_input).instrument(span.clone()),
    );
    tokio::spawn(
        pump::speak(writer, peer.outbound, start.stream_sid.clone(), hung_up).instrument(span),
    );
    Ok(MediaStream {
        stream_sid: start.stream_sid,
        call_sid: start.call_sid,
        parameters: start.parameters,
        call,
    })
}
