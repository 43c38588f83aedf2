//! What can go wrong setting up or signalling a browser call.

use std::path::PathBuf;

/// Why a browser call could not be answered or signalled.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The offer is not parseable SDP.
    #[error(
        "the browser's SDP offer is malformed ({detail}); send the `sdp` of \
         RTCPeerConnection.createOffer() unchanged"
    )]
    MalformedOffer {
        /// What the SDP parser objected to.
        detail: String,
    },
    /// The offer parses but carries no microphone to listen to.
    #[error(
        "the browser's offer has no audio section; the candidate page must add the microphone \
         track before creating the offer"
    )]
    NoAudioInOffer,
    /// The offer parses but could not be negotiated.
    #[error(
        "the browser's offer could not be negotiated ({detail}); it needs an Opus audio section \
         (and optionally VP8 or H.264 video) with ICE and DTLS attributes, as browsers send"
    )]
    UnusableOffer {
        /// What the WebRTC stack objected to.
        detail: String,
    },
    /// A trickled ICE candidate could not be parsed or applied.
    #[error(
        "the browser's ICE candidate {candidate:?} was rejected ({detail}); send \
         RTCIceCandidate.candidate unchanged, after the offer"
    )]
    MalformedCandidate {
        /// The candidate line as received.
        candidate: String,
        /// What the ICE agent objected to.
        detail: String,
    },
    /// Every port of the configured media range is taken.
    #[error(
        "no free UDP port for media in the configured range {first}-{last}; widen the \
         `udp_ports` range (each live call needs one port) or end idle calls"
    )]
    NoFreePort {
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// The settings cannot work as given.
    #[error("invalid WebRTC settings: {detail}")]
    Settings {
        /// Which setting is wrong and how to fix it.
        detail: String,
    },
    /// The WebRTC stack failed to create or drive the peer connection.
    #[error("could not set up the browser call's peer connection: {detail}")]
    PeerConnection {
        /// The WebRTC stack's error.
        detail: String,
    },
    /// The video recording file could not be created.
    #[error(
        "could not create the video recording {}: {source}; check that the directory exists \
         and is writable",
        path.display()
    )]
    Recording {
        /// The file asked for.
        path: PathBuf,
        /// The file system's error.
        source: std::io::Error,
    },
    /// The call has already ended.
    #[error("the browser call has already ended; a reconnecting browser needs a new call")]
    Ended,
}
