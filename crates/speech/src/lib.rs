//! Local speech for Viva: the voice activity detector that gates whisper, speech-to-text
//! (whisper.cpp, one shared model, a bounded worker pool on the machine's core budget),
//! text-to-speech (Piper), the vocabulary that biases recognition toward a job's terms, and
//! the word error rate that measures them.
// The modules are private and this root is the surface: a type the surface hands out but
// forgets to re-export would be unnameable for its users.
#![warn(unnameable_types)]

mod cores;
mod hallucination;
mod stt;
mod tts;
mod vad;
mod vocabulary;
mod wer;

pub use stt::{Segment, SpeechToText, SttConfig, SttError, Transcript, Word};
pub use tts::{SpokenSentence, Tts, TtsConfig, TtsError, VoiceCacheConfig, VoicePart};
pub use vad::{SpeechRegionConfig, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE, VoiceActivity, find_speech};
pub use vocabulary::{MAX_VOCABULARY_TERMS, Vocabulary};
pub use wer::{word_error_rate, word_errors};
