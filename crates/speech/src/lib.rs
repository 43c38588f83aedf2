//! Local speech for Viva.
pub mod convert;
mod cores;
pub mod hallucination;
pub mod mel;
pub mod stt;
pub mod tts;
pub mod vad;
pub mod wer;
