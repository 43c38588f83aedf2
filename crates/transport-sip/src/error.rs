//! Errors of the SIP endpoint and of outbound calls.

use std::net::SocketAddr;

use thiserror::Error;

/// Why the SIP endpoint cannot start.
#[derive(Debug, Error)]
pub enum SipError {
    /// Neither a UDP nor a TCP address is configured.
    #[error(
        "SIP settings name no UDP or TCP address to listen on; set at least one (e.g. --sip 0.0.0.0:5060)"
    )]
    NoListener,
    /// A listening address cannot be bound.
    #[error(
        "cannot listen for SIP over {transport} on {addr}: {reason}; choose a free port or another address"
    )]
    Bind {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The operating system's reason.
        reason: String,
    },
    /// The RTP port range is unusable.
    #[error(
        "RTP port range {low}-{high} is unusable; give an ascending range of ports between 1 and 65534 (e.g. 10000-20000)"
    )]
    BadRtpPorts {
        /// First port.
        low: u16,
        /// Last port.
        high: u16,
    },
    /// A trunk's settings are wrong.
    #[error("SIP trunk `{trunk}`: {problem}")]
    BadTrunk {
        /// The trunk's name.
        trunk: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The SIP stack refused to start.
    #[error("SIP stack failed to start: {0}")]
    Stack(String),
}

/// Why an outbound call was not answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialError {
    /// The callee is busy (486 Busy Here, 600 Busy Everywhere).
    #[error("the line is busy")]
    Busy,
    /// It rang but nobody answered within the ring timeout (or 408/480 after ringing).
    #[error("nobody answered")]
    NoAnswer,
    /// The call was refused with this SIP status (4xx-6xx other than busy/no-answer).
    #[error("the call was rejected with SIP status {0}")]
    Rejected(u16),
    /// The far end never responded to the INVITE.
    #[error("the far end did not respond to the call attempt")]
    Timeout,
    /// The far end or trunk could not be reached (transport error, bad host).
    #[error("the far end is unreachable: {0}")]
    Unreachable(String),
    /// The target is neither a `sip:` URI nor a number a configured trunk could carry.
    #[error("cannot dial `{target}`: {reason}")]
    BadTarget {
        /// What was asked for.
        target: String,
        /// Why it cannot be dialled and what to use instead.
        reason: String,
    },
    /// The call was answered but no audio path could be set up (no free RTP port, or an
    /// answer without a usable codec); the call was hung up again.
    #[error("no audio path for the call: {0}")]
    NoMedia(String),
    /// The endpoint is shutting down.
    #[error("the SIP endpoint is shutting down")]
    ShuttingDown,
}
