//! Moves a started media stream's messages to and from its [`Call`](viva_call::Call): one
//! task reads the CPaaS (caller audio, keys, the end of the call), one writes to it
//! (interviewer audio, marks, `clear`, the close).

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use viva_call::{CallInput, CallOutput};

use crate::WsFrame;
use crate::bad_input::BadInput;
use crate::caller_audio::CallerAudio;
use crate::interviewer_voice::InterviewerVoice;
use crate::protocol::{self, Inbound, ProtocolError, Start};

/// Why setup ended without a `start`.
pub(crate) enum SetupEnd {
    Closed,
    BadStart(String),
}

/// Reads the stream until its `start`, ignoring (and logging) anything else.
pub(crate) async fn read_start<R>(
    socket: &mut R,
    bad_input: &mut BadInput,
) -> Result<Start, SetupEnd>
where
    R: Stream<Item = WsFrame> + Unpin,
{
    loop {
        let text = match socket.next().await {
            None | Some(WsFrame::Close) => return Err(SetupEnd::Closed),
            Some(WsFrame::Binary(bytes)) => {
                ignore_binary(bad_input, bytes.len());
                continue;
            }
            Some(WsFrame::Text(text)) => text,
        };
        match protocol::parse(&text) {
            Ok(Inbound::Start(start)) => return Ok(start),
            Ok(Inbound::Connected { protocol, version }) => {
                tracing::debug!(?protocol, ?version, "media stream connected");
            }
            Ok(Inbound::Stop) => return Err(SetupEnd::Closed),
            Ok(Inbound::Media(_) | Inbound::Dtmf(_) | Inbound::Mark(_)) => {
                bad_input.ignore(
                    "before start",
                    &"a call event came before the stream's `start`",
                );
            }
            Err(ProtocolError::Malformed {
                event: "start",
                reason,
            }) => return Err(SetupEnd::BadStart(reason)),
            Err(err) => {
                bad_input.ignore(err.kind(), &err);
            }
        }
    }
}

/// Passes the caller's audio and keys to the call until the CPaaS stops the stream or the
/// WebSocket ends, then sends one `HangUp`. Returns early, quietly, when the conversation
/// hung up first (`hung_up`) or stopped listening.
pub(crate) async fn listen<R>(
    mut socket: R,
    caller: mpsc::Sender<CallInput>,
    mut hung_up: oneshot::Receiver<()>,
    mut bad_input: BadInput,
) where
    R: Stream<Item = WsFrame> + Unpin,
{
    let mut audio = CallerAudio::default();
    let mut heard_other_track = false;
    let reason = loop {
        let frame = tokio::select! {
            biased;
            Ok(()) = &mut hung_up => return,
            frame = socket.next() => frame,
        };
        let text = match frame {
            None | Some(WsFrame::Close) => break "the WebSocket closed",
            Some(WsFrame::Binary(bytes)) => {
                ignore_binary(&mut bad_input, bytes.len());
                continue;
            }
            Some(WsFrame::Text(text)) => text,
        };
        match protocol::parse(&text) {
            Ok(Inbound::Media(media)) if media.is_caller() => {
                for frame in audio.push(media.timestamp_ms, &media.mulaw) {
                    if caller.send(CallInput::Audio(frame)).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Inbound::Media(media)) => {
                if !heard_other_track {
                    heard_other_track = true;
                    tracing::debug!(track = ?media.track, "ignoring media of a track other than the caller's");
                }
            }
            Ok(Inbound::Dtmf(key)) => {
                tracing::debug!(%key, "caller pressed a key");
                if caller.send(CallInput::Dtmf(key)).await.is_err() {
                    return;
                }
            }
            Ok(Inbound::Mark(name)) => tracing::debug!(mark = %name, "interviewer audio played"),
            Ok(Inbound::Stop) => break "the CPaaS stopped the stream",
            Ok(Inbound::Connected { .. } | Inbound::Start(_)) => {
                bad_input.ignore("repeated setup", &"the stream was already started");
            }
            Err(err) => {
                bad_input.ignore(err.kind(), &err);
            }
        }
    };
    tracing::info!(reason, "the caller's side of the media stream ended");
    if let Some(last) = audio.flush() {
        let _ = caller.send(CallInput::Audio(last)).await;
    }
    let _ = caller.send(CallInput::HangUp).await;
}

/// Plays the conversation's audio on the stream, marks the end of each talkspurt, clears
/// playback on barge-in, and closes the WebSocket when the conversation hangs up or drops the
/// call. Tells `listen` to stop before closing.
pub(crate) async fn speak<W>(
    socket: W,
    mut commands: mpsc::Receiver<CallOutput>,
    stream_sid: String,
    hung_up: oneshot::Sender<()>,
) where
    W: Sink<WsFrame> + Unpin,
{
    let mut out = Outbox {
        socket,
        stream_sid,
        open: true,
    };
    let mut voice = InterviewerVoice::default();
    let mut refused = BadInput::default();
    let reason = loop {
        match commands.recv().await {
            Some(CallOutput::Audio(frame)) => match voice.speak(&frame) {
                Ok(payloads) => {
                    for payload in payloads {
                        out.media(&payload).await;
                    }
                }
                Err(err) => {
                    refused.ignore("interviewer audio", &err);
                }
            },
            // The CPaaS echoes the mark once the audio before it has played: it learns where
            // each talkspurt ends.
            Some(CallOutput::EndOfSpeech) => {
                if let Some(mark) = voice.end_talkspurt() {
                    out.mark(&mark).await;
                }
            }
            Some(CallOutput::ClearPlayback) => {
                if let Some(mark) = voice.end_talkspurt() {
                    out.mark(&mark).await;
                }
                out.clear().await;
            }
            Some(CallOutput::HangUp) => break "the conversation hung up",
            None => break "the conversation dropped the call",
        }
    };
    tracing::info!(reason, "closing the media stream");
    let _ = hung_up.send(());
    out.close().await;
}

fn ignore_binary(bad_input: &mut BadInput, bytes: usize) {
    bad_input.ignore(
        "binary frame",
        &format_args!("a {bytes}-byte binary frame (the protocol is JSON text)"),
    );
}

/// The writing half of the WebSocket. Once a send fails the CPaaS has gone: later messages
/// are dropped, and the reading half reports the hang-up when the socket ends.
struct Outbox<W> {
    socket: W,
    stream_sid: String,
    open: bool,
}

impl<W: Sink<WsFrame> + Unpin> Outbox<W> {
    async fn media(&mut self, mulaw: &[u8]) {
        let text = protocol::media_message(&self.stream_sid, mulaw);
        self.send(WsFrame::Text(text)).await;
    }

    async fn mark(&mut self, name: &str) {
        let text = protocol::mark_message(&self.stream_sid, name);
        self.send(WsFrame::Text(text)).await;
    }

    async fn clear(&mut self) {
        let text = protocol::clear_message(&self.stream_sid);
        self.send(WsFrame::Text(text)).await;
    }

    async fn send(&mut self, frame: WsFrame) {
        if self.open && self.socket.send(frame).await.is_err() {
            self.open = false;
            tracing::info!("the media stream stopped taking messages; the CPaaS has gone");
        }
    }

    async fn close(mut self) {
        self.send(WsFrame::Close).await;
        let _ = self.socket.close().await;
    }
}
