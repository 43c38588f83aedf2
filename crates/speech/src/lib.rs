//! Local speech for Viva.
mod cores;
pub mod hallucination;
pub mod stt;
pub mod tts;
pub mod vad;
pub mod wer;
