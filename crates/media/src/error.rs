//! The one error type of the media crate.

use std::path::PathBuf;

/// The audio formats [`decode_file`](crate::decode_file) understands, quoted in errors so a user
/// knows what to convert to.
pub const SUPPORTED_FORMATS: &str = "WAV (16/24/32-bit PCM, 32-bit float, mu-law, A-law), \
     FLAC, MP3, Ogg Vorbis, Ogg Opus, WebM Opus";

/// Everything that can go wrong while handling audio in Viva.
///
/// Each message says what went wrong, where, and what to do about it, because these errors end
/// up in front of recruiters uploading audio and operators reading logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A sample rate of 0 Hz was given; no audio can be described with it.
    #[error("invalid sample rate 0 Hz for {context}: audio needs a positive sample rate")]
    ZeroSampleRate {
        /// What was being built with the rate, e.g. "PCM frame".
        context: &'static str,
    },

    /// The resampler cannot convert between these two rates.
    #[error(
        "cannot resample {from_hz} Hz to {to_hz} Hz: the rates must be positive and share a \
         block of at most {max_block_ms} ms (common rates such as 8000, 16000, 22050, 24000, \
         44100 and 48000 Hz all do)"
    )]
    UnsupportedResampleRates {
        /// Input rate in Hz.
        from_hz: u32,
        /// Output rate in Hz.
        to_hz: u32,
        /// Longest processing block the resampler accepts, in milliseconds.
        max_block_ms: u32,
    },

    /// A codec was handed a buffer of the wrong length.
    #[error("{codec}: expected {expected} samples, got {actual}; {hint}")]
    WrongSampleCount {
        /// Codec or component that rejected the buffer.
        codec: &'static str,
        /// What it needed.
        expected: String,
        /// What it got.
        actual: usize,
        /// What to do about it.
        hint: &'static str,
    },

    /// libopus rejected an operation (a corrupt packet, usually).
    #[error("Opus {operation} failed: {detail}")]
    Opus {
        /// What was attempted, e.g. "decode".
        operation: &'static str,
        /// The reason given by libopus.
        detail: String,
    },

    /// An audio file does not exist.
    #[error("audio file {} not found: check the path", path.display())]
    FileNotFound {
        /// The path that was asked for.
        path: PathBuf,
    },

    /// An audio file exists but could not be read.
    #[error("cannot read audio file {}: {source}; check its permissions", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The input has no bytes, or no audio samples, at all.
    #[error("{origin} contains no audio: {detail}")]
    Empty {
        /// The file path or a description of the in-memory source.
        origin: String,
        /// What exactly was empty.
        detail: String,
    },

    /// The input is not in a format Viva can decode.
    #[error(
        "{origin}: unsupported audio format: found {found}; supported formats are {}. \
         Convert it, e.g. `ffmpeg -i INPUT -ar 16000 -ac 1 output.wav`",
        SUPPORTED_FORMATS
    )]
    UnsupportedFormat {
        /// The file path or a description of the in-memory source.
        origin: String,
        /// What was found instead (container, codec or a guess from the first bytes).
        found: String,
    },

    /// The input claims a supported format but its data is damaged.
    #[error("{origin}: corrupt audio data at {location}: {detail}; re-export or re-record it")]
    Corrupt {
        /// The file path or a description of the in-memory source.
        origin: String,
        /// Where the damage was found, e.g. "packet 12 (0.24 s)" or "Ogg page 3".
        location: String,
        /// What was wrong.
        detail: String,
    },

    /// Writing a WAV file failed.
    #[error("cannot write WAV file {}: {source}; check free disk space and permissions", path.display())]
    WavWrite {
        /// The file being written.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A WAV file's header could not be read.
    #[error("cannot read WAV file {}: {reason}", path.display())]
    WavRead {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// A WAV recording would outgrow the 4 GiB limit of the RIFF format.
    #[error(
        "WAV file {} would exceed the 4 GiB RIFF limit; start a new recording file",
        path.display()
    )]
    WavTooLong {
        /// The file being written.
        path: PathBuf,
    },

    /// A DTMF key or an RFC 4733 telephone-event payload Viva cannot represent.
    #[error(
        "invalid DTMF {detail}; DTMF keys are 0-9, *, # and A-D (RFC 4733 events 0-15, \
         4-byte payloads, volume 0-63)"
    )]
    InvalidDtmf {
        /// What was wrong, e.g. "key 'x'" or "telephone-event payload of 3 bytes".
        detail: String,
    },

    /// Stereo input whose two channels have different lengths.
    #[error("stereo channels differ in length: left {left} samples, right {right} samples")]
    ChannelLengthMismatch {
        /// Left channel length.
        left: usize,
        /// Right channel length.
        right: usize,
    },

    /// Samples were written with a channel layout the writer was not created for.
    #[error("WAV file {} is {expected}, but {given} samples were written to it", path.display())]
    ChannelLayoutMismatch {
        /// The file being written.
        path: PathBuf,
        /// The writer's layout.
        expected: crate::Channels,
        /// The layout of the samples given.
        given: crate::Channels,
    },
}
