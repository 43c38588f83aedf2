//! Local speech for Viva.
pub mod convert;
pub mod mel;
pub mod hallucination;
pub mod stt;
pub mod vad;
pub mod wer;
pub mod tts;
