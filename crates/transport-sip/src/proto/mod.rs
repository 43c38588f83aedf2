//! The protocol pieces of a phone call that need no network: SDP offer/answer, RTP and RTCP
//! packets, DTMF in SIP INFO bodies. Pure functions over bytes and text, so they are unit
//! tested here and can be fuzzed on their own.

pub mod dtmf_info;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
