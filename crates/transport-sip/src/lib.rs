//! Phone calls over SIP: trunks and phones calling in, calls placed out, each turned into the
//! conversation loop's [`viva_call::Call`].
//!
//! [`SipEndpoint::start`] listens on UDP and/or TCP and hands every answered inbound call over
//! as an [`IncomingCall`]; [`SipEndpoint::dial`] places a call and resolves when it is
//! answered. Per call:
//! - the caller's G.711 audio (PCMU or PCMA, 8 kHz) goes through a jitter buffer with loss
//!   concealment and arrives as a continuous stream of 20 ms [`CallInput::Audio`] frames;
//! - DTMF keys arrive as [`CallInput::Dtmf`] whether they came as RFC 4733 telephone-events,
//!   SIP INFO (`application/dtmf-relay`, `application/dtmf`) or in-band tones;
//! - interviewer frames ([`CallOutput::Audio`], 8 kHz) go out as RTP as they come, to where the
//!   caller's RTP actually comes from (symmetric RTP, for callers behind NAT);
//! - a BYE, the end of the media, or the maximum call duration end the call, with one
//!   [`CallInput::HangUp`]; [`CallOutput::HangUp`] sends a BYE.
//!
//! Admission: an INVITE is accepted from a trunk's `allow` addresses, or after a digest
//! challenge answered with a trunk's credentials; with no trunk configured, only from the
//! local machine. Everything else gets 403. INVITEs and REGISTERs are rate-limited per source
//! address ([`SourceRate`]): past the limit they get 503 with `Retry-After`. An admitted INVITE
//! is answered only when the server has room for another call (see [`SipEndpoint::start`]);
//! otherwise it gets 503 with `Retry-After`, before it rings.
//!
//! The protocol parsing (SDP, RTP, RTCP, DTMF INFO bodies) and each call's RTP session live in
//! [`proto`], free of I/O.
//!
//! [`CallInput::Audio`]: viva_call::CallInput::Audio
//! [`CallInput::Dtmf`]: viva_call::CallInput::Dtmf
//! [`CallInput::HangUp`]: viva_call::CallInput::HangUp
//! [`CallOutput::Audio`]: viva_call::CallOutput::Audio
//! [`CallOutput::HangUp`]: viva_call::CallOutput::HangUp

mod admission;
mod dialog;
mod endpoint;
mod error;
mod flood;
mod inbound;
mod media;
mod outbound;
mod ports;
pub mod proto;
mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use viva_call::Call;

pub use error::{DialError, SipError};
pub use flood::SourceRate;
pub use settings::{SipSettings, SipTransport, Trunk};

use endpoint::Shared;

/// An answered inbound call, ready for an interview.
#[derive(Debug)]
pub struct IncomingCall {
    /// Who is calling: the user part of the From URI (usually the caller's number), or the
    /// whole URI when it has none.
    pub caller: String,
    /// What was dialled: the user part of the Request-URI (a number or name that may select
    /// the job); empty when the URI has none.
    pub dialled: String,
    /// The network address the INVITE came from (the socket peer, not a header).
    pub source: std::net::IpAddr,
    /// The trunk that carried the call, if one did; `None` for a call from this machine
    /// (allowed while no trunk is configured). Through a trunk, `source` is the trunk's address
    /// for every caller, so only `caller` tells callers apart.
    pub trunk: Option<String>,
    /// The call, for the conversation. Its id is the SIP Call-ID.
    pub call: Call,
}

/// How an outbound call is getting on, before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialProgress {
    /// The INVITE is on its way.
    Trying,
    /// The far end is ringing (180, or 183 with early media).
    Ringing,
    /// The far end answered; `dial` returns the call right after.
    Answered,
}

/// The SIP side of Viva: listeners, trunk registrations, inbound and outbound calls.
///
/// Cheap to clone; all clones control the same endpoint.
#[derive(Clone)]
pub struct SipEndpoint {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SipEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipEndpoint")
            .field("udp", &self.shared.udp_addr)
            .field("tcp", &self.shared.tcp_addr)
            .finish_non_exhaustive()
    }
}

impl SipEndpoint {
    /// Binds the configured listeners, starts registering with trunks that ask for it, and
    /// returns the endpoint with the stream of answered inbound calls.
    ///
    /// `room` is asked for every admitted INVITE before it rings: `Err(wait)` says the server
    /// has no room for another call, and the caller gets 503 Service Unavailable with
    /// `Retry-After: wait` (a proxy in front may try another server; a trunk tells the caller
    /// to try later).
    ///
    /// Inbound calls are answered only while there is room in that stream (16 calls); beyond
    /// it callers hear busy (486), so read it promptly. The stream ends after [`shutdown`].
    ///
    /// [`shutdown`]: SipEndpoint::shutdown
    pub async fn start(
        settings: SipSettings,
        room: impl Fn() -> Result<(), Duration> + Send + Sync + 'static,
    ) -> Result<(SipEndpoint, mpsc::Receiver<IncomingCall>), SipError> {
        let (shared, incoming) = Shared::start(settings, Box::new(room)).await?;
        Ok((SipEndpoint { shared }, incoming))
    }

    /// The UDP address SIP listens on, with the port actually bound.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.shared.udp_addr
    }

    /// The TCP address SIP listens on, with the port actually bound.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.tcp_addr
    }

    /// Calls `target` (`sip:user@host[:port]` directly, or a phone number through the first
    /// trunk) and resolves when answered (`Ok(Call)`, whose id is `call_id`) or not
    /// ([`DialError`]). `progress` hears [`DialProgress`] as the call goes (it may be dropped).
    /// An unanswered call is cancelled after the configured ring timeout.
    pub async fn dial(
        &self,
        call_id: &str,
        target: &str,
        progress: mpsc::UnboundedSender<DialProgress>,
    ) -> Result<Call, DialError> {
        outbound::dial(self.shared.clone(), call_id, target, progress).await
    }

    /// The server drains before it stops: OPTIONS is answered 503 from now on, so a proxy
    /// that probes with it (Kamailio's dispatcher) takes this server out of its set. Calls
    /// going on are not touched; new INVITEs are refused by `room`.
    pub fn drain(&self) {
        self.shared
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Hangs up every call (BYE, and a hang-up to each conversation), withdraws trunk
    /// registrations and stops listening. New calls are refused from the moment it is called.
    pub async fn shutdown(&self) {
        self.shared.shutdown().await;
    }
}

/// What the transport reads from a SIP request before any call exists, for the fuzz harnesses
/// in `fuzz/` (and their replay in `tests/fuzz_corpus.rs`), which must run the transport's own
/// functions rather than copies of them. Not an API: anything here may change.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::endpoint::is_in_dialog;
    pub use crate::inbound::{call_id, parties};
}
