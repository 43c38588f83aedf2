//! Why a media stream could not be bridged into a call.

use std::time::Duration;

/// Why [`accept`](crate::accept) refused a media stream. The WebSocket has been closed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The CPaaS closed the WebSocket, or sent `stop`, before `start`.
    #[error(
        "the media stream ended before its `start` message: the CPaaS closed or stopped it \
         during setup (the caller may have hung up); its stream logs say why"
    )]
    ClosedBeforeStart,
    /// No `start` message arrived in time.
    #[error(
        "no `start` message within {} s of the WebSocket opening; only a CPaaS media stream \
         (the URL of a <Stream> or <Connect><Stream> instruction) should connect to this endpoint",
        waited.as_secs()
    )]
    NoStart {
        /// How long the stream was given.
        waited: Duration,
    },
    /// The `start` message cannot be understood.
    #[error(
        "the media stream's `start` message is unusable: {reason}; the CPaaS must send the \
         media-stream protocol's `start` with a `streamSid` and its `mediaFormat`"
    )]
    BadStart {
        /// What is wrong with it.
        reason: String,
    },
    /// The stream carries audio in another format than 8 kHz mono mu-law.
    #[error(
        "the media stream offers {encoding} at {sample_rate} Hz with {channels} channel(s), but \
         only audio/x-mulaw at 8000 Hz mono can be bridged; configure the CPaaS stream for \
         8 kHz mu-law"
    )]
    UnsupportedFormat {
        /// The `mediaFormat.encoding` offered.
        encoding: String,
        /// The `mediaFormat.sampleRate` offered, in Hz.
        sample_rate: u64,
        /// The `mediaFormat.channels` offered.
        channels: u64,
    },
}
