//! Placing a call: route the target, INVITE with an offer, follow the progress, and either
//! hand back the answered call or say why not.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{Host, HostWithPort, Param, Scheme, StatusCode, Transport, Uri};
use rsipstack::transport::SipAddr;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, warn};
use viva_call::Call;

use crate::DialProgress;
use crate::dialog::{self, AnsweredDialog};
use crate::endpoint::{LOCAL_USER, Shared, trunk_uri};
use crate::error::DialError;
use crate::proto::sdp::{LocalAudio, accept_answer, parse_sdp, write_offer};
use crate::settings::{SipTransport, Trunk};

/// How long a cancelled INVITE may take to end (its final response, 64*T1 at worst).
const CANCEL_WAIT: Duration = Duration::from_secs(34);
/// How long a TCP next hop gets to accept a connection.
const TCP_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Where and how a dial target is called.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    /// Request-URI and To.
    pub(crate) callee: Uri,
    /// Where the INVITE is sent when not derived from the callee (a trunk).
    pub(crate) destination: Option<SipAddr>,
    /// From.
    pub(crate) caller: Uri,
    /// Host and port the INVITE goes to, for finding the local address to announce.
    pub(crate) next_hop: HostWithPort,
    pub(crate) transport: Transport,
    pub(crate) credential: Option<(String, String)>,
}

/// Works out the route for `target`: a `sip:` URI directly, or a number through the first
/// trunk.
pub(crate) fn route(trunks: &[Trunk], target: &str) -> Result<Route, DialError> {
    let target = target.trim();
    let bad = |reason: &str| DialError::BadTarget {
        target: target.chars().take(100).collect(),
        reason: reason.to_string(),
    };
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("sips:") {
        return Err(bad("SIP over TLS (sips:) is not supported; use a sip: URI"));
    }
    if lower.starts_with("sip:") {
        let callee = Uri::try_from(target).map_err(|_| bad("not a valid SIP URI"))?;
        let transport = callee
            .params
            .iter()
            .find_map(|p| match p {
                Param::Transport(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(Transport::Udp);
        if !matches!(transport, Transport::Udp | Transport::Tcp) {
            return Err(bad("only UDP and TCP transports are supported"));
        }
        // The host is replaced by this endpoint's address once the route is resolved.
        let caller = local_uri(LOCAL_USER, callee.host_with_port.clone());
        return Ok(Route {
            next_hop: callee.host_with_port.clone(),
            callee,
            destination: None,
            caller,
            transport,
            credential: None,
        });
    }
    let number = lower.strip_prefix("tel:").map_or(target, |_| &target[4..]);
    let formatting = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')');
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#') || formatting(c))
    {
        return Err(bad(
            "expected a sip: URI or a phone number (digits, optionally with a leading +)",
        ));
    }
    let number: String = number.chars().filter(|c| !formatting(*c)).collect();
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(bad("the number has no digits"));
    }
    let Some(trunk) = trunks.first() else {
        return Err(bad(
            "no SIP trunk is configured to carry phone numbers; configure one or dial a sip: URI",
        ));
    };
    let callee = trunk_uri(trunk, Some(&number)).map_err(|_| {
        bad(&format!(
            "trunk `{}` has an address that is not a SIP host",
            trunk.name
        ))
    })?;
    let next_hop = callee.host_with_port.clone();
    let transport = match trunk.transport {
        SipTransport::Udp => Transport::Udp,
        SipTransport::Tcp => Transport::Tcp,
    };
    let user = trunk.credentials().map_or(LOCAL_USER, |(user, _)| user);
    let caller = local_uri(
        user,
        HostWithPort {
            host: next_hop.host.clone(),
            port: None,
        },
    );
    Ok(Route {
        destination: Some(SipAddr {
            r#type: Some(transport),
            addr: next_hop.clone(),
        }),
        callee,
        caller,
        next_hop,
        transport,
        credential: trunk
            .credentials()
            .map(|(user, password)| (user.to_string(), password.to_string())),
    })
}

/// `sip:user@host`.
fn local_uri(user: &str, host_with_port: HostWithPort) -> Uri {
    Uri {
        scheme: Some(Scheme::Sip),
        auth: Some(rsipstack::sip::Auth {
            user: user.to_string(),
            password: None,
        }),
        host_with_port,
        params: Vec::new(),
        headers: Vec::new(),
    }
}

/// Places a call; see [`crate::SipEndpoint::dial`].
pub(crate) async fn dial(
    shared: Arc<Shared>,
    call_id: &str,
    target: &str,
    progress: mpsc::UnboundedSender<DialProgress>,
) -> Result<Call, DialError> {
    let span = tracing::info_span!("sip_call", call_id = %call_id);
    dial_in_span(shared, call_id, target, progress, span.clone())
        .instrument(span)
        .await
}

async fn dial_in_span(
    shared: Arc<Shared>,
    call_id: &str,
    target: &str,
    progress: mpsc::UnboundedSender<DialProgress>,
    span: tracing::Span,
) -> Result<Call, DialError> {
    if shared.is_shutting_down() {
        return Err(DialError::ShuttingDown);
    }
    let mut route = route(&shared.trunks, target)?;
    let peer = resolve(&route.next_hop).await?;
    if route.transport == Transport::Tcp {
        probe_tcp(peer, &route.next_hop).await?;
    }
    if route.destination.is_none() {
        // Direct calls come from this endpoint's own address.
        route.caller.host_with_port = shared.announced_ip(peer).into();
    }
    let sockets = shared
        .rtp_ports
        .bind(shared.bind_ip())
        .ok_or_else(|| DialError::NoMedia("no free RTP port in the configured range".into()))?;
    let local = LocalAudio {
        session_id: u64::from(rand::random::<u32>()),
        session_version: 1,
        address: shared.announced_ip(peer),
        port: sockets.rtp_port(),
    };
    let option = InviteOption {
        caller: route.caller.clone(),
        callee: route.callee.clone(),
        destination: route.destination.clone(),
        content_type: Some("application/sdp".into()),
        offer: Some(write_offer(&local).into_bytes()),
        contact: shared.contact(route.transport, peer),
        credential: route
            .credential
            .clone()
            .map(|(username, password)| Credential {
                username,
                password,
                realm: None,
                auth_username: None,
            }),
        ..Default::default()
    };
    info!(callee = %route.callee, "dialling");
    let (state_tx, mut states) = shared.dialogs.new_dialog_state_channel();
    let (dialog, mut invite) = shared
        .dialogs
        .do_invite_async(option, state_tx)
        .map_err(|e| DialError::Unreachable(e.to_string()))?;
    let _ = progress.send(DialProgress::Trying);

    let ring_deadline = Instant::now() + shared.ring_timeout;
    let mut heard_back = false;
    let mut ringing = false;
    let finished = loop {
        tokio::select! {
            result = &mut invite => break Some(result),
            state = states.recv() => match state {
                Some(DialogState::Trying(_)) => heard_back = true,
                Some(DialogState::Early(_, response)) => {
                    heard_back = true;
                    if !ringing && matches!(response.status_code, StatusCode::Ringing | StatusCode::SessionProgress) {
                        ringing = true;
                        let _ = progress.send(DialProgress::Ringing);
                    }
                }
                _ => {}
            },
            _ = tokio::time::sleep_until(ring_deadline) => break None,
            _ = shared.calls.shutdown.cancelled() => break None,
        }
    };
    let Some(finished) = finished else {
        info!(ringing, "no answer in time; cancelling");
        // CANCEL (deferred by the stack until a provisional response if none came yet) and
        // the INVITE's final response, 487 or a 200 that crossed the CANCEL and gets a BYE,
        // finish in the background: the outcome is already known.
        tokio::spawn(
            async move {
                if let Err(e) = dialog.cancel().await {
                    debug!(error = %e, "CANCEL failed");
                }
                let _ = tokio::time::timeout(CANCEL_WAIT, invite).await;
            }
            .in_current_span(),
        );
        if shared.is_shutting_down() {
            return Err(DialError::ShuttingDown);
        }
        return Err(if heard_back {
            DialError::NoAnswer
        } else {
            DialError::Timeout
        });
    };
    let response = match finished {
        Ok(Ok((_, Some(response)))) => response,
        Ok(Ok((_, None))) => return Err(DialError::Timeout),
        Ok(Err(e)) => return Err(DialError::Unreachable(e.to_string())),
        Err(e) => {
            return Err(DialError::Unreachable(format!(
                "call setup task failed: {e}"
            )));
        }
    };
    let code = u16::from(response.status_code.clone());
    if !(200..300).contains(&code) {
        info!(code, "call not answered");
        return Err(failure(code, heard_back));
    }
    let negotiated = match parse_sdp(&response.body).and_then(|answer| accept_answer(&answer)) {
        Ok(negotiated) => negotiated,
        Err(e) => {
            warn!(error = %e, "answer has no usable SDP; hanging up");
            if let Err(e) = dialog.bye().await {
                debug!(error = %e, "BYE failed");
            }
            shared.dialogs.remove_dialog(&dialog.id());
            return Err(DialError::NoMedia(e.to_string()));
        }
    };
    info!(codec = negotiated.codec.encoding_name(), "call answered");
    let _ = progress.send(DialProgress::Answered);
    Ok(dialog::launch(
        shared.calls.clone(),
        AnsweredDialog {
            call_id: call_id.to_string(),
            dialog,
            states,
            local,
            negotiated,
            sockets,
        },
        span,
    ))
}

/// What a final non-2xx status means for the caller of `dial`.
fn failure(code: u16, heard_back: bool) -> DialError {
    match code {
        486 | 600 => DialError::Busy,
        // The stack reports its own transaction timeout as 408.
        408 if !heard_back => DialError::Timeout,
        408 | 480 | 487 => DialError::NoAnswer,
        code => DialError::Rejected(code),
    }
}

/// Checks that a TCP next hop accepts connections: the SIP stack retries a refused connection
/// silently until its transaction times out, which would report an unreachable trunk as a
/// call nobody answered.
async fn probe_tcp(peer: IpAddr, next_hop: &HostWithPort) -> Result<(), DialError> {
    let port = next_hop.port.as_ref().map_or(5060, |p| p.0);
    match tokio::time::timeout(
        TCP_CONNECT_WAIT,
        tokio::net::TcpStream::connect((peer, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(DialError::Unreachable(format!(
            "TCP connection to {peer}:{port} failed: {e}"
        ))),
        Err(_) => Err(DialError::Unreachable(format!(
            "TCP connection to {peer}:{port} timed out after {} s",
            TCP_CONNECT_WAIT.as_secs()
        ))),
    }
}

/// The IP the next hop resolves to.
async fn resolve(next_hop: &HostWithPort) -> Result<IpAddr, DialError> {
    match &next_hop.host {
        Host::IpAddr(ip) => Ok(*ip),
        Host::Domain(domain) => {
            let port = next_hop.port.as_ref().map_or(5060, |p| p.0);
            let name = domain.to_string();
            tokio::net::lookup_host((name.as_str(), port))
                .await
                .ok()
                .and_then(|mut addresses| addresses.next())
                .map(|address| address.ip())
                .ok_or_else(|| DialError::Unreachable(format!("cannot resolve host `{name}`")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(transport: SipTransport) -> Trunk {
        Trunk {
            name: "carrier".into(),
            address: "sip.carrier.example:5080".into(),
            transport,
            allow: Vec::new(),
            username: Some("acct42".into()),
            password: Some("pw".into()),
            register: false,
            register_expires_secs: 3600,
        }
    }

    #[test]
    fn sip_uris_are_dialled_directly() {
        let route = route(&[], "sip:alice@127.0.0.1:5070").unwrap();
        assert_eq!(route.callee.to_string(), "sip:alice@127.0.0.1:5070");
        assert_eq!(route.destination, None);
        assert_eq!(route.transport, Transport::Udp);
        assert_eq!(route.credential, None);
        let tcp = super::route(&[], "sip:bob@192.0.2.1;transport=tcp").unwrap();
        assert_eq!(tcp.transport, Transport::Tcp);
    }

    #[test]
    fn numbers_go_through_the_first_trunk() {
        let route = route(&[trunk(SipTransport::Tcp)], "tel:+1 (555) 010-9999").unwrap();
        assert_eq!(
            route.callee.to_string(),
            "sip:+15550109999@sip.carrier.example:5080;transport=TCP"
        );
        assert_eq!(route.caller.to_string(), "sip:acct42@sip.carrier.example");
        assert_eq!(route.transport, Transport::Tcp);
        let destination = route.destination.unwrap();
        assert_eq!(destination.r#type, Some(Transport::Tcp));
        assert_eq!(destination.addr.to_string(), "sip.carrier.example:5080");
        assert_eq!(route.credential, Some(("acct42".into(), "pw".into())));
    }

    #[test]
    fn undiallable_targets_say_why() {
        for (target, needle) in [
            ("+15550100", "no SIP trunk"),
            ("sips:alice@example.com", "TLS"),
            ("mailto:alice@example.com", "phone number"),
            ("", "phone number"),
            ("+--", "no digits"),
        ] {
            let err = route(&[], target).unwrap_err().to_string();
            assert!(err.contains(needle), "{target}: {err}");
        }
    }

    #[test]
    fn final_statuses_map_to_outcomes() {
        assert_eq!(failure(486, true), DialError::Busy);
        assert_eq!(failure(600, false), DialError::Busy);
        assert_eq!(failure(480, true), DialError::NoAnswer);
        assert_eq!(failure(487, true), DialError::NoAnswer);
        assert_eq!(failure(408, true), DialError::NoAnswer);
        assert_eq!(failure(408, false), DialError::Timeout);
        assert_eq!(failure(404, true), DialError::Rejected(404));
        assert_eq!(failure(503, false), DialError::Rejected(503));
    }
}
