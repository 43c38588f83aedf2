//! Answering an inbound INVITE: admission, SDP offer/answer, 100/180/200, waiting for the ACK
//! (or a CANCEL), then handing the call to the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Request, StatusCode, Transport};
use rsipstack::transaction::transaction::Transaction;
use tracing::{Instrument, debug, info, warn};

use crate::IncomingCall;
use crate::admission::{Admission, Admitted};
use crate::dialog::{self, AnsweredDialog};
use crate::endpoint::Shared;
use crate::proto::sdp::{
    LocalAudio, accept_answer, answer_offer, parse_sdp, write_answer, write_offer,
};

/// How long the call rings before it is answered: long enough for the caller's CANCEL to
/// catch it (the caller hears one short ring), short enough not to delay the interview.
const RING_BEFORE_ANSWER: Duration = Duration::from_millis(400);
/// How long to wait for the ACK of the 200: the transaction retransmits the 200 meanwhile
/// and gives up after 64*T1 (32 s).
const ACK_WAIT: Duration = Duration::from_secs(34);

/// Handles one out-of-dialog INVITE to its end: rejected, cancelled, or handed over.
pub(crate) async fn answer(shared: Arc<Shared>, mut tx: Transaction) {
    let call_id = call_id(&tx.original);
    let span = tracing::info_span!("sip_call", call_id = %call_id);
    async move {
        let Some(source) = source_of(&tx) else {
            warn!("INVITE without a known source address");
            respond(&mut tx, StatusCode::BadRequest, Vec::new()).await;
            return;
        };
        let trunk = match shared.gate.admit(&tx.original, source.ip()) {
            Admission::Allowed(via) => {
                debug!(%source, ?via, "INVITE admitted");
                match via {
                    Admitted::Trunk(name) => Some(name),
                    Admitted::Local => None,
                }
            }
            Admission::Challenge => {
                debug!(%source, "INVITE challenged for credentials");
                let challenge = shared.gate.challenge();
                respond(&mut tx, StatusCode::Unauthorized, vec![challenge]).await;
                return;
            }
            Admission::Forbidden(why) => {
                warn!(%source, reason = why, "INVITE refused");
                respond(&mut tx, StatusCode::Forbidden, Vec::new()).await;
                return;
            }
        };
        // 503 rather than 486 Busy Here: the server is out of room, not the callee busy, and a
        // proxy spreading calls over several servers tries another one on a 503.
        if let Err(wait) = (shared.room)() {
            info!(%source, "no room for another call: answering 503");
            let retry = Header::RetryAfter(wait.as_secs().max(1).to_string().into());
            respond(&mut tx, StatusCode::ServiceUnavailable, vec![retry]).await;
            return;
        }
        answer_admitted(shared, tx, source, trunk, call_id).await;
    }
    .instrument(span)
    .await
}

async fn answer_admitted(
    shared: Arc<Shared>,
    mut tx: Transaction,
    source: SocketAddr,
    trunk: Option<String>,
    call_id: String,
) {
    // No body: a late offer, made by this side in the 200 and answered in the ACK.
    let offer = if tx.original.body.is_empty() {
        None
    } else {
        match parse_sdp(&tx.original.body) {
            Ok(offer) => Some(offer),
            Err(e) => {
                warn!(error = %e, "INVITE carries unusable SDP");
                respond(&mut tx, StatusCode::NotAcceptableHere, Vec::new()).await;
                return;
            }
        }
    };
    let negotiated = match offer.as_ref().map(answer_offer).transpose() {
        Ok(negotiated) => negotiated,
        Err(e) => {
            info!(error = %e, "no common codec");
            respond(&mut tx, StatusCode::NotAcceptableHere, Vec::new()).await;
            return;
        }
    };
    let Some(incoming) = shared.incoming() else {
        respond(&mut tx, StatusCode::ServiceUnavailable, Vec::new()).await;
        return;
    };
    let Ok(permit) = incoming.try_reserve_owned() else {
        warn!("the server is not taking calls right now; answering busy");
        respond(&mut tx, StatusCode::BusyHere, Vec::new()).await;
        return;
    };
    let Some(sockets) = shared.rtp_ports.bind(shared.bind_ip()) else {
        warn!("no free RTP port in the configured range");
        respond(&mut tx, StatusCode::ServiceUnavailable, Vec::new()).await;
        return;
    };
    let media_peer = offer
        .as_ref()
        .map(|o| o.address)
        .filter(|ip| !ip.is_unspecified());
    let local = LocalAudio {
        session_id: u64::from(rand::random::<u32>()),
        session_version: 1,
        address: shared.announced_ip(media_peer.unwrap_or(source.ip())),
        port: sockets.rtp_port(),
    };
    let sdp = match &negotiated {
        Some(negotiated) => write_answer(&local, negotiated),
        None => write_offer(&local),
    };

    let (caller, dialled) = parties(&tx.original);
    let transport = tx
        .connection
        .as_ref()
        .map(|c| c.transport())
        .unwrap_or(Transport::Udp);
    let contact = shared.contact(transport, source.ip());
    let (state_tx, states) = shared.dialogs.new_dialog_state_channel();
    let dialog =
        match shared
            .dialogs
            .get_or_create_server_invite(&tx, state_tx, None, Some(contact))
        {
            Ok(dialog) => dialog,
            Err(e) => {
                warn!(error = %e, "cannot create dialog");
                respond(&mut tx, StatusCode::ServerInternalError, Vec::new()).await;
                return;
            }
        };
    stamp_to_tag(&mut tx.original, &dialog.id().local_tag);
    if let Err(e) = tx.send_trying().await {
        debug!(error = %e, "100 Trying not sent");
    }
    // The dialog drives the INVITE transaction from here: 200 retransmissions, ACK, CANCEL.
    let mut driver = dialog.clone();
    tokio::spawn(
        async move {
            if let Err(e) = driver.handle(&mut tx).await {
                debug!(error = %e, "INVITE transaction ended with an error");
            }
        }
        .in_current_span(),
    );

    let mut states = states;
    let answered = ring_and_answer(&dialog, &mut states, sdp).await;
    let id = dialog.id();
    if !answered {
        shared.dialogs.remove_dialog(&id);
        return;
    }
    let negotiated = match negotiated {
        Some(negotiated) => negotiated,
        None => {
            let answer = dialog
                .last_remote_ack()
                .map(|ack| ack.body)
                .unwrap_or_default();
            match parse_sdp(&answer).and_then(|a| accept_answer(&a)) {
                Ok(negotiated) => negotiated,
                Err(e) => {
                    warn!(error = %e, "ACK carries no usable SDP answer; hanging up");
                    let _ = dialog.bye().await;
                    shared.dialogs.remove_dialog(&id);
                    return;
                }
            }
        }
    };
    info!(
        %caller,
        %dialled,
        codec = negotiated.codec.encoding_name(),
        "call answered"
    );
    let call = dialog::launch(
        shared.calls.clone(),
        AnsweredDialog {
            call_id,
            dialog,
            states,
            local,
            negotiated,
            sockets,
        },
        tracing::Span::current(),
    );
    permit.send(IncomingCall {
        caller,
        dialled,
        source: source.ip(),
        trunk,
        call,
    });
}

/// Rings briefly, answers with `sdp`, and waits for the ACK. `false` when the caller
/// cancelled, hung up or never acknowledged.
async fn ring_and_answer(
    dialog: &InviteDialog,
    states: &mut DialogStateReceiver,
    sdp: String,
) -> bool {
    if let Err(e) = dialog.ringing(None, None) {
        debug!(error = %e, "180 Ringing not sent");
        return false;
    }
    let rang = tokio::time::timeout(RING_BEFORE_ANSWER, wait_for_end(states)).await;
    if let Ok(reason) = rang {
        info!(reason, "caller gave up while ringing");
        return false;
    }
    let headers = vec![Header::ContentType("application/sdp".into())];
    if let Err(e) = dialog.accept(Some(headers), Some(sdp.into_bytes())) {
        warn!(error = %e, "200 OK not sent");
        return false;
    }
    let acked = tokio::time::timeout(ACK_WAIT, async {
        loop {
            match states.recv().await {
                Some(DialogState::Confirmed(..)) => return Ok(()),
                Some(DialogState::Terminated(_, reason)) => return Err(format!("{reason:?}")),
                Some(_) => {}
                None => return Err("dialog closed".to_string()),
            }
        }
    })
    .await;
    match acked {
        Ok(Ok(())) => true,
        Ok(Err(reason)) => {
            info!(%reason, "call ended before it was confirmed");
            false
        }
        Err(_) => {
            warn!("no ACK for the 200 OK; giving up on the call");
            false
        }
    }
}

/// Waits until the dialog ends (CANCEL, BYE); returns why. Pending otherwise.
async fn wait_for_end(states: &mut DialogStateReceiver) -> &'static str {
    loop {
        match states.recv().await {
            Some(DialogState::Terminated(..)) => return "cancelled",
            Some(_) => {}
            None => return "dialog closed",
        }
    }
}

/// Puts the dialog's tag on the INVITE's To header. The dialog tags its 180 and 200 itself,
/// but the transaction answers a CANCEL with a 487 built from the INVITE, which would get a
/// fresh tag; RFC 3261 §8.2.6.2 wants one tag for every response of the transaction.
fn stamp_to_tag(invite: &mut Request, tag: &str) {
    if let Ok(to) = invite.to_header() {
        let tagged = to.with_tag(tag.into());
        invite.headers.unique_push(tagged.into());
    }
}

/// Where the request came from (the socket peer, not what its headers claim).
pub(crate) fn source_of(tx: &Transaction) -> Option<SocketAddr> {
    tx.connection
        .as_ref()?
        .get_remote_addr()?
        .get_socketaddr()
        .ok()
}

/// The request's Call-ID, empty when it has none: the call's name in logs and storage.
pub fn call_id(request: &Request) -> String {
    request
        .call_id_header()
        .map(|h| h.value().to_string())
        .unwrap_or_default()
}

/// The caller (From user, or the whole URI without one) and the dialled user (Request-URI).
pub fn parties(request: &Request) -> (String, String) {
    let caller = request
        .from_header()
        .ok()
        .and_then(|from| from.typed().ok())
        .map(|from| match from.uri.user() {
            Some(user) => user.to_string(),
            None => from.uri.to_string(),
        })
        .unwrap_or_default();
    let dialled = request.uri.user().unwrap_or_default().to_string();
    (caller, dialled)
}

async fn respond(tx: &mut Transaction, status: StatusCode, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(status, headers, None).await {
        debug!(error = %e, "reply failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_come_from_from_and_request_uri() {
        let request = Request::try_from(
            "INVITE sip:4711@192.0.2.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\r\n\
             From: \"Ada\" <sip:+15551234@carrier.example>;tag=9\r\n\
             To: <sip:4711@192.0.2.10>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(parties(&request), ("+15551234".into(), "4711".into()));
        let anonymous = Request::try_from(
            "INVITE sip:192.0.2.10 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK1\r\n\
             From: <sip:carrier.example>;tag=9\r\nTo: <sip:192.0.2.10>\r\nCall-ID: x\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            parties(&anonymous),
            ("sip:carrier.example".into(), String::new())
        );
    }
}
