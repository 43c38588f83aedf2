//! Audio basics for Viva: PCM frames, the G.711 and Opus codecs, sample-rate conversion, audio
//! file decoding, crash-safe WAV recording, DTMF keys ([`dtmf`]) and a jitter buffer for RTP
//! audio ([`jitter`]).
//!
//! Everything here is mono `f32` in `[-1, 1]` unless a type says otherwise; 16-bit PCM appears
//! only at codec and file boundaries. Nothing here knows about speech or interviews, and nothing
//! opens a socket or reads a clock.
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//! use viva_media::{decode_file, resample, G711Law, PcmFrame, WavWriter, Channels};
//!
//! // An uploaded greeting, made ready for an 8 kHz phone line.
//! let greeting = decode_file(Path::new("greeting.mp3"))?;
//! let phone = resample(&greeting.samples, greeting.sample_rate, 8_000)?;
//! let frame = PcmFrame::new(phone[..160].to_vec(), 8_000, Duration::ZERO)?;
//! let payload = G711Law::MuLaw.encode(&frame.to_i16()); // one 20 ms RTP payload
//! assert_eq!(payload.len(), 160);
//!
//! // Record the call as it happens; the file stays playable after every flush.
//! let mut recording = WavWriter::create(Path::new("call.wav"), 8_000, Channels::Mono)?;
//! recording.write_mono(frame.samples())?;
//! recording.flush()?;
//! recording.finalize()?;
//! # Ok::<(), viva_media::MediaError>(())
//! ```

mod decode;
pub mod dtmf;
mod error;
mod frame;
mod g711;
pub mod jitter;
mod ogg_opus;
mod opus;
mod resample;
mod wav;

#[cfg(test)]
mod test_support;

pub use decode::{DecodedAudio, decode_bytes, decode_file};
pub use dtmf::{InBandDetector, TelephoneEvent, TelephoneEventReceiver};
pub use error::{MediaError, SUPPORTED_FORMATS};
pub use frame::{Channels, PcmFrame, f32_to_i16, i16_to_f32};
pub use g711::G711Law;
pub use jitter::{JitterBuffer, JitterStats};
pub use opus::{OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE, OpusDecoder, OpusEncoder};
pub use resample::{Resampler, resample};
pub use wav::{WavWriter, repair_wav_sizes, wav_length, write_wav_file};
