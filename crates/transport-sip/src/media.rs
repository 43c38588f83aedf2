//! One call's media task: moves datagrams between the call's two UDP sockets and its
//! [`RtpSession`], frames and keys between the session and the conversation's channels, and
//! wakes the session when it asks to be woken. Everything RTP means lives in the session.

use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, warn};
use viva_call::{CallInput, CallOutput};

use crate::ports::MediaSockets;
use crate::proto::sdp::Negotiated;
use crate::proto::session::{MediaEvent, MediaPort, RtpSession, SessionOutput, Transmit};

/// Largest datagram read; RTP for telephony is far smaller.
const MAX_DATAGRAM: usize = 2048;

/// Controls a running media task.
pub(crate) struct MediaHandle {
    session: watch::Sender<Negotiated>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MediaHandle {
    /// Applies a renegotiated session (re-INVITE: hold, resume, codec or address change).
    pub(crate) fn update(&self, negotiated: Negotiated) {
        self.session.send_replace(negotiated);
    }

    /// Stops the media task and waits for it (closing the sockets and releasing the ports).
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            warn!(error = %e, "media task failed");
        }
    }
}

/// The channels between the media task, the conversation and the call's signalling.
pub(crate) struct MediaChannels {
    /// Caller audio and DTMF to the conversation.
    pub(crate) inbound: mpsc::Sender<CallInput>,
    /// Interviewer audio and commands from the conversation.
    pub(crate) outbound: mpsc::Receiver<CallOutput>,
    /// Hang-up requests to the call's signalling.
    pub(crate) events: mpsc::UnboundedSender<MediaEvent>,
}

/// Starts the media of one call.
pub(crate) fn start(
    sockets: MediaSockets,
    negotiated: Negotiated,
    channels: MediaChannels,
    span: tracing::Span,
) -> MediaHandle {
    let (session_tx, session_rx) = watch::channel(negotiated);
    let (stop_tx, stop_rx) = watch::channel(false);
    let session = RtpSession::new(negotiated, now(), SystemTime::now());
    let media = Media {
        sockets,
        channels,
        session,
        conversation_open: true,
    };
    let task = tokio::spawn(
        async move {
            info!(
                local_port = media.sockets.rtp_port(),
                remote = %negotiated.remote_rtp,
                codec = negotiated.codec.encoding_name(),
                telephone_event = ?negotiated.telephone_event,
                "media started"
            );
            media.run(session_rx, stop_rx).await;
        }
        .instrument(span),
    );
    MediaHandle {
        session: session_tx,
        stop: stop_tx,
        task,
    }
}

/// The session's clock: Tokio's, so paused test time reaches it too.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

struct Media {
    sockets: MediaSockets,
    channels: MediaChannels,
    session: RtpSession,
    /// The conversation is still there: once either of its channels closes, its output is
    /// not read again.
    conversation_open: bool,
}

impl Media {
    async fn run(
        mut self,
        mut renegotiated: watch::Receiver<Negotiated>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut rtp_buf = vec![0u8; MAX_DATAGRAM];
        let mut rtcp_buf = vec![0u8; MAX_DATAGRAM];
        loop {
            self.carry_out().await;
            let wake = Instant::from_std(self.session.poll_timeout());
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                received = self.sockets.rtp.recv_from(&mut rtp_buf) => match received {
                    Ok((len, from)) => self.session.on_datagram(MediaPort::Rtp, from, &rtp_buf[..len], now()),
                    // ICMP port unreachable and the like surface here; the next send retries.
                    Err(e) => debug!(error = %e, "RTP receive error"),
                },
                received = self.sockets.rtcp.recv_from(&mut rtcp_buf) => {
                    if let Ok((len, from)) = received {
                        self.session.on_datagram(MediaPort::Rtcp, from, &rtcp_buf[..len], now());
                    }
                }
                () = tokio::time::sleep_until(wake) => self.session.handle_timeout(now()),
                output = self.channels.outbound.recv(), if self.conversation_open => match output {
                    Some(output) => self.session.on_call_output(output, now()),
                    None => self.conversation_gone(),
                },
                changed = renegotiated.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let negotiated = *renegotiated.borrow_and_update();
                    self.session.renegotiate(negotiated, now());
                }
            }
        }
        self.session.close(now());
        self.carry_out().await;
    }

    /// Does everything the session asked for so far.
    async fn carry_out(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                SessionOutput::Transmit(transmit) => self.send(transmit).await,
                SessionOutput::Conversation(CallInput::Audio(frame)) => {
                    match self.channels.inbound.try_send(CallInput::Audio(frame)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            self.session.on_caller_audio_dropped(now());
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => self.conversation_gone(),
                    }
                }
                // Keys and the like wait for room: they matter more than a frame of audio.
                SessionOutput::Conversation(input) => {
                    if self.channels.inbound.send(input).await.is_err() {
                        self.conversation_gone();
                    }
                }
                SessionOutput::Event(event) => {
                    let _ = self.channels.events.send(event);
                }
            }
        }
    }

    fn conversation_gone(&mut self) {
        self.conversation_open = false;
        self.session.on_conversation_gone();
    }

    async fn send(&self, transmit: Transmit) {
        let socket = match transmit.port {
            MediaPort::Rtp => &self.sockets.rtp,
            MediaPort::Rtcp => &self.sockets.rtcp,
        };
        if let Err(e) = socket
            .send_to(&transmit.datagram, transmit.destination)
            .await
        {
            debug!(port = ?transmit.port, destination = %transmit.destination, error = %e, "media send failed");
        }
    }
}
