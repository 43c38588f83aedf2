//! Local speech for Viva: the voice activity detector that gates whisper, speech-to-text
//! (whisper.cpp, one shared model, a bounded worker pool on the machine's core budget),
//! text-to-speech (Piper), the end-of-turn model (Smart Turn) that hears whether a speaker has
//! finished, the vocabulary that biases recognition toward a job's terms, and the word error
//! rate that measures them.
// The modules are private and this root is the surface: a type the surface hands out but
// forgets to re-export would be unnameable for its users.
#![warn(unnameable_types)]

mod confirm;
mod cores;
mod end_of_turn;
mod hallucination;
mod stt;
mod tts;
mod vad;
mod vocabulary;
mod waits;
mod wer;

pub use end_of_turn::{TURN_WINDOW_SAMPLES, TurnJudgement, TurnModel, TurnModelError};
pub use stt::{Segment, SpeechToText, SttConfig, SttError, Transcript, Word};
pub use tts::{SpokenSentence, Tts, TtsConfig, TtsError, VoiceCacheConfig, VoicePart};
pub use vad::{
    SpeechRegionConfig, Talkspurt, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE, VoiceActivity, find_speech,
    level_db,
};
pub use vocabulary::{MAX_VOCABULARY_TERMS, Vocabulary};
pub use waits::{SpeechJob, observe_waits};
pub use wer::{word_error_rate, word_errors};
