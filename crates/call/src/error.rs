//! What can go wrong setting up a call.

use std::path::PathBuf;

use viva_media::MediaError;

/// Why a call could not run as asked.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A turn-taking timing makes no sense.
    #[error("invalid turn-taking setting `{setting}`: it {reason}")]
    InvalidTurnTaking {
        /// The field of [`crate::TurnTaking`].
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The transport asked for interviewer audio at a rate with no whole 20 ms frame.
    #[error(
        "the transport's output rate {rate} Hz is not usable: it must be a positive multiple \
         of 50 Hz (e.g. 8000, 16000, 48000) so 20 ms frames hold whole samples"
    )]
    OutputRate {
        /// The rate asked for, in Hz.
        rate: u32,
    },
    /// The recording file could not be written.
    #[error(
        "the call recording {} failed: {source}; check that its directory exists, is writable \
         and has free space",
        path.display()
    )]
    Recording {
        /// The recording file.
        path: PathBuf,
        /// What the writer said.
        source: MediaError,
    },
    /// The thread writing the recording could not start or died.
    #[error("the call recording thread could not start or crashed; the recording is incomplete")]
    RecorderLost,
    /// The interviewer (the [`crate::Dialogue`]) panicked; the call was ended.
    #[error(
        "the interviewer failed during the call (see the error logged before); the call was ended"
    )]
    InterviewerFailed,
    /// A virtual clock was started outside a runtime whose time can be paused.
    #[error(
        "a virtual clock needs a current-thread Tokio runtime (e.g. \
         #[tokio::test(flavor = \"current_thread\")] or Builder::new_current_thread())"
    )]
    VirtualClockRuntime,
}
