//! The protocol pieces of a phone call that need no network: SDP offer/answer, RTP and RTCP
//! packets, DTMF in SIP INFO bodies, and the RTP session that runs a call's media on them.
//! Bytes, text and time in, bytes and decisions out, so they are unit tested here (the session
//! on made-up instants) and can be fuzzed on their own.

pub mod dtmf_info;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod session;
