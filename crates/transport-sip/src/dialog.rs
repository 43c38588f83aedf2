//! The SIP dialog of an answered call: its in-dialog requests (BYE, INFO, re-INVITE, UPDATE,
//! OPTIONS), its maximum duration, and its end on every path.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, info, warn};
use viva_call::{Call, CallInput};

use crate::media::{self, MediaChannels, MediaHandle};
use crate::ports::MediaSockets;
use crate::proto::dtmf_info::{DtmfInfoError, parse_dtmf_info};
use crate::proto::sdp::{
    LocalAudio, Negotiated, accept_answer, answer_offer, parse_sdp, write_answer, write_offer,
};
use crate::proto::session::{MediaEvent, SAMPLE_RATE};

/// How long the conversation gets to take the hang-up notice before the channel is dropped
/// (which it also reads as a hang-up).
const HANGUP_NOTICE_WAIT: Duration = Duration::from_secs(2);

/// What every call needs from the endpoint.
#[derive(Clone)]
pub(crate) struct CallEnvironment {
    pub(crate) dialogs: Arc<DialogLayer>,
    pub(crate) max_call: Duration,
    pub(crate) shutdown: CancellationToken,
    pub(crate) active: ActiveCalls,
}

/// Counts live calls, so shutdown can wait for their BYEs.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActiveCalls(Arc<AtomicUsize>);

impl ActiveCalls {
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn enter(&self) -> ActiveCallGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ActiveCallGuard(self.0.clone())
    }
}

struct ActiveCallGuard(Arc<AtomicUsize>);

impl Drop for ActiveCallGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A dialog that just got confirmed, with the media both sides agreed on.
pub(crate) struct AnsweredDialog {
    pub(crate) call_id: String,
    pub(crate) dialog: InviteDialog,
    pub(crate) states: DialogStateReceiver,
    pub(crate) local: LocalAudio,
    pub(crate) negotiated: Negotiated,
    pub(crate) sockets: MediaSockets,
}

/// Starts media and signalling for an answered call and returns the conversation's end.
pub(crate) fn launch(env: CallEnvironment, answered: AnsweredDialog, span: tracing::Span) -> Call {
    let (call, peer) = Call::pair(answered.call_id.clone(), SAMPLE_RATE);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let media = media::start(
        answered.sockets,
        answered.negotiated,
        MediaChannels {
            inbound: peer.inbound.clone(),
            outbound: peer.outbound,
            events: events_tx,
        },
        span.clone(),
    );
    let guard = env.active.enter();
    let dialog = SipDialog {
        env,
        dialog: answered.dialog,
        states: answered.states,
        local: answered.local,
        media: Some(media),
        media_events: events_rx,
        inbound: peer.inbound,
        awaiting_answer: false,
    };
    tokio::spawn(
        async move {
            dialog.run().await;
            drop(guard);
        }
        .instrument(span),
    );
    call
}

/// Why a call ended.
#[derive(Debug)]
enum Ending {
    /// The far end hung up (BYE) or the dialog ended on its own (e.g. no ACK).
    FarEnd(TerminatedReason),
    /// The conversation hung up or went away.
    Conversation,
    /// The caller's RTP stopped.
    MediaDead,
    /// `max_call` was reached.
    MaxDuration,
    /// The endpoint is shutting down.
    Shutdown,
}

/// A confirmed dialog while its call lasts, with the media session it controls.
struct SipDialog {
    env: CallEnvironment,
    dialog: InviteDialog,
    states: DialogStateReceiver,
    local: LocalAudio,
    media: Option<MediaHandle>,
    media_events: mpsc::UnboundedReceiver<MediaEvent>,
    inbound: mpsc::Sender<CallInput>,
    /// This side put an offer in a 2xx (re-INVITE without SDP); the answer comes in the ACK.
    awaiting_answer: bool,
}

impl SipDialog {
    async fn run(mut self) {
        let deadline = Instant::now() + self.env.max_call;
        let ending = loop {
            tokio::select! {
                state = self.states.recv() => match state {
                    Some(DialogState::Terminated(_, reason)) => break Ending::FarEnd(reason),
                    Some(DialogState::Info(_, request, handle)) => self.on_info(request, handle).await,
                    Some(DialogState::Updated(_, request, handle)) => self.on_offer(request, handle).await,
                    Some(DialogState::Options(_, _, handle)) => reply(&handle, StatusCode::OK).await,
                    Some(
                        DialogState::Notify(_, _, handle)
                        | DialogState::Refer(_, _, handle)
                        | DialogState::Message(_, _, handle)
                        | DialogState::Publish(_, _, handle),
                    ) => reply(&handle, StatusCode::MethodNotAllowed).await,
                    Some(DialogState::Confirmed(..)) => self.on_confirmed(),
                    Some(_) => {}
                    // The dialog is gone without a Terminated notice: treat as a dead line.
                    None => break Ending::FarEnd(TerminatedReason::Timeout),
                },
                event = self.media_events.recv() => match event {
                    Some(MediaEvent::Dead) => break Ending::MediaDead,
                    Some(MediaEvent::HangUpRequested) | None => break Ending::Conversation,
                },
                _ = tokio::time::sleep_until(deadline) => break Ending::MaxDuration,
                _ = self.env.shutdown.cancelled() => break Ending::Shutdown,
            }
        };
        self.end(ending).await;
    }

    async fn end(mut self, ending: Ending) {
        match &ending {
            Ending::FarEnd(reason) => info!(?reason, "the far end ended the call"),
            other => info!(ending = ?other, "ending the call"),
        }
        if let Some(media) = self.media.take() {
            media.stop().await;
        }
        let we_hang_up = !matches!(ending, Ending::FarEnd(_));
        if we_hang_up && let Err(e) = self.dialog.bye().await {
            warn!(error = %e, "BYE failed");
        }
        if !matches!(ending, Ending::Conversation) {
            let _ = tokio::time::timeout(HANGUP_NOTICE_WAIT, self.inbound.send(CallInput::HangUp))
                .await;
        }
        self.env.dialogs.remove_dialog(&self.dialog.id());
        info!("call ended");
    }

    /// SIP INFO: DTMF relay keys go to the conversation; other bodies are refused.
    async fn on_info(&mut self, request: Request, handle: TransactionHandle) {
        if request.body.is_empty() {
            // An empty INFO is a keep-alive probe.
            reply(&handle, StatusCode::OK).await;
            return;
        }
        let content_type = request.header_value("Content-Type").unwrap_or_default();
        match parse_dtmf_info(&content_type, &request.body) {
            Ok(key) => {
                info!(%key, "DTMF (SIP INFO)");
                reply(&handle, StatusCode::OK).await;
                if self.inbound.send(CallInput::Dtmf(key)).await.is_err() {
                    warn!("conversation is gone; DTMF key dropped");
                }
            }
            Err(e @ DtmfInfoError::UnsupportedType(_)) => {
                info!(error = %e, "refusing INFO");
                reply(&handle, StatusCode::UnsupportedMediaType).await;
            }
            Err(e) => {
                warn!(error = %e, "malformed DTMF INFO");
                reply(&handle, StatusCode::BadRequest).await;
            }
        }
    }

    /// re-INVITE or UPDATE: hold, resume, codec or address change, or a session refresh.
    async fn on_offer(&mut self, request: Request, handle: TransactionHandle) {
        if request.body.is_empty() {
            if request.method == Method::Invite {
                // RFC 3264 8: an offer-less re-INVITE asks for an offer; the answer comes back
                // in the ACK.
                self.local.session_version += 1;
                self.awaiting_answer = true;
                respond_sdp(&handle, write_offer(&self.local)).await;
            } else {
                reply(&handle, StatusCode::OK).await;
            }
            return;
        }
        match parse_sdp(&request.body).and_then(|offer| answer_offer(&offer)) {
            Ok(negotiated) => {
                self.local.session_version += 1;
                if let Some(media) = &self.media {
                    media.update(negotiated);
                }
                respond_sdp(&handle, write_answer(&self.local, &negotiated)).await;
            }
            Err(e) => {
                // The call goes on with the session it had (RFC 3261 14.2).
                warn!(error = %e, method = %request.method, "refusing session change");
                reply(&handle, StatusCode::NotAcceptableHere).await;
            }
        }
    }

    /// The ACK of a 2xx in which this side made the offer carries the far end's answer.
    fn on_confirmed(&mut self) {
        if !std::mem::take(&mut self.awaiting_answer) {
            return;
        }
        let Some(ack) = self.dialog.last_remote_ack() else {
            return;
        };
        match parse_sdp(&ack.body).and_then(|answer| accept_answer(&answer)) {
            Ok(negotiated) => {
                if let Some(media) = &self.media {
                    media.update(negotiated);
                }
            }
            Err(e) => warn!(error = %e, "ACK carries no usable answer; keeping the current media"),
        }
    }
}

async fn reply(handle: &TransactionHandle, status: StatusCode) {
    if handle.reply(status).await.is_err() {
        warn!("in-dialog request ended before it was answered");
    }
}

async fn respond_sdp(handle: &TransactionHandle, sdp: String) {
    let headers = vec![Header::ContentType("application/sdp".into())];
    if handle
        .respond(StatusCode::OK, Some(headers), Some(sdp.into_bytes()))
        .await
        .is_err()
    {
        warn!("in-dialog request ended before it was answered");
    }
}
