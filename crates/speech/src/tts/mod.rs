//! Text-to-speech: the interviewer's voice.
//!
//! A Piper voice (VITS, run by ONNX Runtime) reads espeak-ng phonemes; when the voice or ONNX
//! Runtime is missing, plain espeak-ng speaks instead so an interview can still go on. Text is
//! spoken sentence by sentence so the first sentence can play while the rest is synthesized.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use viva_speech::tts::{Tts, TtsConfig};
//! # async fn reply() -> Result<(), viva_speech::tts::TtsError> {
//! let tts = Arc::new(Tts::load(&TtsConfig {
//!     voice: "models/en_US-joe-medium.onnx".into(),
//!     onnxruntime: "models/libonnxruntime.so".into(),
//!     threads: 1,
//! })?);
//! let mut sentences = tts.stream("Thanks. How do you approach database optimization?".into());
//! while let Some(sentence) = sentences.recv().await {
//!     let sentence = sentence?; // play sentence.samples at tts.sample_rate()
//! }
//! # Ok(())
//! # }
//! ```

mod espeak;
mod lexicon;
mod phonemes;
mod piper;
mod text;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::warn;

use self::espeak::Espeak;
use self::piper::{PiperVoice, VoiceConfig, VoiceLoadError};

/// The espeak-ng language spoken when no voice config says otherwise.
const FALLBACK_LANGUAGE: &str = "en-us";

/// Quieter than this (about -40 dBFS) counts as silence when trimming a sentence's tail.
const SILENCE: f32 = 0.01;

/// Silence kept after a sentence's last sound: the natural pause before the next sentence.
const KEPT_PAUSE_SECONDS: f32 = 0.2;

/// How many synthesized sentences [`Tts::stream`] may hold ready before the listener takes
/// them: enough to play without gaps, few enough that a barge-in wastes little work.
const STREAM_AHEAD: usize = 2;

/// Where the voice and ONNX Runtime are and how much CPU synthesis may use.
#[derive(Clone, Debug)]
pub struct TtsConfig {
    /// The Piper voice model (`.onnx`); its config (`.onnx.json`) sits next to it.
    pub voice: PathBuf,
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.x`). Loaded once per process: a
    /// second engine reuses the library the first one loaded.
    pub onnxruntime: PathBuf,
    /// Threads per synthesis (at least 1). Sentences are synthesized one at a time, so
    /// every core is a good choice.
    pub threads: usize,
}

/// Why a sentence could not be spoken.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// espeak-ng, needed for phonemes and for the fallback voice, did not start.
    #[error(
        "espeak-ng could not start: its data directory was not found; install the \
         espeak-ng-data package (scripts/setup does)"
    )]
    EspeakUnavailable,
    /// espeak-ng does not know the language the voice asks for.
    #[error(
        "espeak-ng has no voice {voice:?}; install espeak-ng-data, or fix \"espeak.voice\" in \
         the Piper voice's .onnx.json"
    )]
    EspeakVoice {
        /// The espeak-ng voice name, e.g. `en-us`.
        voice: String,
    },
    /// The fallback voice failed on a sentence.
    #[error("espeak-ng failed to synthesize a sentence (espeak-ng error code {code})")]
    EspeakSynthesis {
        /// espeak-ng's `espeak_ERROR` value.
        code: i32,
    },
    /// ONNX Runtime failed while running the Piper voice.
    #[error("Piper voice {voice} failed to synthesize a sentence: {source}")]
    Inference {
        /// The voice's name.
        voice: String,
        /// ONNX Runtime's error.
        source: ort::Error,
    },
}

/// One synthesized piece of a reply: a sentence, or a clause-sized part of a long one.
#[derive(Clone, Debug, PartialEq)]
pub struct SpokenSentence {
    /// The words spoken, as they appear in the reply.
    pub text: String,
    /// Mono audio at [`Tts::sample_rate`], in [-1, 1], ending in a short natural pause.
    pub samples: Vec<f32>,
}

/// The speech engine. One per process, shared in an [`Arc`]: it holds one copy of the voice,
/// and concurrent calls take turns on it sentence by sentence.
pub struct Tts {
    voice: Voice,
    name: String,
}

enum Voice {
    Piper(PiperVoice),
    /// espeak-ng's own synthesizer in `language`, when no Piper voice could be loaded.
    Espeak {
        language: String,
        sample_rate: u32,
    },
}

impl Tts {
    /// Loads the Piper voice named in `config`. If the voice or ONNX Runtime cannot be loaded
    /// the engine logs a warning saying what is missing and speaks with plain espeak-ng
    /// instead (see [`Tts::is_fallback`]); it fails only when espeak-ng itself is unusable.
    pub fn load(config: &TtsConfig) -> Result<Tts, TtsError> {
        let mut espeak = Espeak::lock()?;
        let voice_config = if config.voice.is_file() {
            VoiceConfig::read(&config.voice.with_extension("onnx.json"))
        } else {
            Err(VoiceLoadError::Missing {
                what: "Piper voice model",
                path: config.voice.clone(),
            })
        };
        let language = voice_config
            .as_ref()
            .map_or(FALLBACK_LANGUAGE, |voice| voice.espeak_voice.as_str())
            .to_owned();
        // Checked now, so a wrong language fails at start-up rather than mid-interview.
        espeak.select_voice(&language)?;
        let sample_rate = espeak.sample_rate();
        drop(espeak);

        let piper = voice_config.and_then(|voice_config| {
            PiperVoice::load(
                &config.voice,
                voice_config,
                &config.onnxruntime,
                config.threads,
            )
        });
        Ok(match piper {
            Ok(voice) => Tts {
                name: config.voice.file_stem().map_or_else(
                    || "piper".to_owned(),
                    |stem| stem.to_string_lossy().into_owned(),
                ),
                voice: Voice::Piper(voice),
            },
            Err(err) => {
                warn!(
                    "{err}; speaking with plain espeak-ng ({language}) instead, which sounds \
                     robotic. Run scripts/setup to fetch the Piper voice and ONNX Runtime."
                );
                Tts {
                    name: format!("espeak-ng {language}"),
                    voice: Voice::Espeak {
                        language,
                        sample_rate,
                    },
                }
            }
        })
    }

    /// The voice's name: the Piper model's file name (`en_US-joe-medium`), or
    /// `espeak-ng <language>` for the fallback.
    pub fn voice_name(&self) -> &str {
        &self.name
    }

    /// The sample rate of every synthesized sample, in Hz.
    pub fn sample_rate(&self) -> u32 {
        match &self.voice {
            Voice::Piper(voice) => voice.config.sample_rate,
            Voice::Espeak { sample_rate, .. } => *sample_rate,
        }
    }

    /// Whether the engine speaks with plain espeak-ng because the Piper voice could not load.
    pub fn is_fallback(&self) -> bool {
        matches!(self.voice, Voice::Espeak { .. })
    }

    /// Synthesizes all of `text` as one waveform. Text with nothing to pronounce gives no
    /// samples.
    pub fn synthesize(&self, text: &str) -> Result<Vec<f32>, TtsError> {
        let mut samples = Vec::new();
        for sentence in self.sentences(text) {
            samples.extend(sentence?.samples);
        }
        Ok(samples)
    }

    /// Synthesizes `text` one sentence at a time, in order, each only when asked for; long
    /// sentences come in clause-sized parts. Pieces with nothing to pronounce are skipped.
    pub fn sentences<'a>(
        &'a self,
        text: &'a str,
    ) -> impl Iterator<Item = Result<SpokenSentence, TtsError>> + 'a {
        text::sentences(text)
            .into_iter()
            .filter_map(move |piece| self.speak(piece).transpose())
    }

    /// Synthesizes `text` on a blocking thread, sending each sentence as soon as it is ready,
    /// so the first can play while later ones are synthesized. Synthesis runs at most a couple
    /// of sentences ahead of the receiver; dropping the receiver (a barge-in) stops it after
    /// the sentence in progress.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn stream(
        self: &Arc<Self>,
        text: String,
    ) -> mpsc::Receiver<Result<SpokenSentence, TtsError>> {
        let (sender, receiver) = mpsc::channel(STREAM_AHEAD);
        let tts = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            for sentence in tts.sentences(&text) {
                if sender.blocking_send(sentence).is_err() {
                    break;
                }
            }
        });
        receiver
    }

    /// Synthesizes one piece; `None` when it holds nothing audible.
    fn speak(&self, piece: &str) -> Result<Option<SpokenSentence>, TtsError> {
        let mut samples = match &self.voice {
            Voice::Piper(voice) => {
                let Some(ids) = phoneme_ids(voice, piece)? else {
                    return Ok(None);
                };
                voice.speak(ids).map_err(|source| TtsError::Inference {
                    voice: self.name.clone(),
                    source,
                })?
            }
            Voice::Espeak { language, .. } => {
                Espeak::lock()?.synthesize(language, &lexicon::respell(piece))?
            }
        };
        trim_trailing_silence(&mut samples, self.sample_rate());
        Ok((!samples.is_empty()).then(|| SpokenSentence {
            text: piece.to_owned(),
            samples,
        }))
    }
}

/// The model input for one piece; `None` when it holds nothing to pronounce.
fn phoneme_ids(voice: &PiperVoice, piece: &str) -> Result<Option<Vec<i64>>, TtsError> {
    let spoken = lexicon::respell(piece);
    let phonemes =
        phonemes::piece_phonemes(&mut Espeak::lock()?, &voice.config.espeak_voice, &spoken)?;
    Ok(phonemes.map(|phonemes| voice.config.ids.utterance(&phonemes)))
}

/// Cuts silence after the last sound down to [`KEPT_PAUSE_SECONDS`]; all-silent audio
/// becomes empty.
fn trim_trailing_silence(samples: &mut Vec<f32>, sample_rate: u32) {
    let kept_pause = (KEPT_PAUSE_SECONDS * sample_rate as f32) as usize;
    let end = samples
        .iter()
        .rposition(|sample| sample.abs() > SILENCE)
        .map_or(0, |last_sound| {
            (last_sound + 1 + kept_pause).min(samples.len())
        });
    samples.truncate(end);
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::OnceLock;

    use super::*;

    const QUESTION: &str = "How do you approach database optimization?";

    /// The real Piper voice, loaded once for all tests in this process.
    fn piper() -> Arc<Tts> {
        static PIPER: OnceLock<Arc<Tts>> = OnceLock::new();
        PIPER
            .get_or_init(|| {
                let tts = Tts::load(&real_voice_config()).expect("espeak-ng must be installed");
                assert!(
                    !tts.is_fallback(),
                    "the Piper voice failed to load; see the warning above"
                );
                Arc::new(tts)
            })
            .clone()
    }

    /// The voice and runtime `scripts/setup` installs in the repository's models/ directory.
    fn real_voice_config() -> TtsConfig {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let path = |relative: &str| -> PathBuf {
            let path = models.join(relative);
            assert!(
                path.exists(),
                "{} is missing: run scripts/setup",
                path.display()
            );
            path
        };
        TtsConfig {
            voice: path("piper/en_US-joe-medium.onnx"),
            onnxruntime: path("onnxruntime/libonnxruntime.so"),
            threads: 1,
        }
    }

    fn fallback() -> Tts {
        let tts = Tts::load(&TtsConfig {
            voice: "/nonexistent/voice.onnx".into(),
            onnxruntime: "/nonexistent/libonnxruntime.so".into(),
            threads: 1,
        })
        .expect("espeak-ng must be installed");
        assert!(tts.is_fallback());
        tts
    }

    fn rms(samples: &[f32]) -> f32 {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
    }

    fn seconds(tts: &Tts, samples: &[f32]) -> f32 {
        samples.len() as f32 / tts.sample_rate() as f32
    }

    #[test]
    fn engine_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Tts>();
        shared::<TtsError>();
    }

    #[test]
    fn trailing_silence_is_cut_to_a_short_pause() {
        let rate = 1000;
        let mut samples = vec![0.5; 300];
        samples.extend(vec![0.001; 2000]);
        trim_trailing_silence(&mut samples, rate);
        assert_eq!(samples.len(), 300 + 200);

        let mut short_tail = vec![0.5; 300];
        short_tail.extend(vec![0.0; 50]);
        trim_trailing_silence(&mut short_tail, rate);
        assert_eq!(short_tail.len(), 350);

        let mut silent = vec![0.0; 1000];
        trim_trailing_silence(&mut silent, rate);
        assert!(silent.is_empty());
    }

    #[test]
    fn piper_speaks_a_question_audibly() {
        let tts = piper();
        assert_eq!(tts.voice_name(), "en_US-joe-medium");
        assert_eq!(tts.sample_rate(), 22050);
        let samples = tts.synthesize(QUESTION).unwrap();
        let duration = seconds(&tts, &samples);
        assert!((1.0..5.0).contains(&duration), "{duration} s");
        assert!(rms(&samples) > 0.02, "rms {}", rms(&samples));
        assert!(samples.iter().all(|s| (-1.0..=1.0).contains(s)));
    }

    #[test]
    fn piper_hears_the_question_mark() {
        let tts = piper();
        let Voice::Piper(voice) = &tts.voice else {
            unreachable!("piper() asserts the Piper voice loaded")
        };
        let ids = phoneme_ids(voice, QUESTION).unwrap().unwrap();
        // "? _ $": the question mark is the last symbol the model reads.
        let question_mark = voice.config.ids.utterance("?");
        assert!(ids.ends_with(&question_mark[2..]), "{ids:?}");
        let statement = phoneme_ids(voice, "I approach database optimization.")
            .unwrap()
            .unwrap();
        assert!(!statement.ends_with(&question_mark[2..]), "{statement:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_yields_sentences_in_order() {
        let tts = piper();
        let reply = "Thanks for walking me through that. \
                     How do you approach database optimization? \
                     Take your time.";
        let mut receiver = tts.stream(reply.to_owned());
        let mut spoken = Vec::new();
        while let Some(sentence) = receiver.recv().await {
            let sentence = sentence.unwrap();
            assert!(
                rms(&sentence.samples) > 0.02,
                "{:?} is silent",
                sentence.text
            );
            spoken.push(sentence.text);
        }
        assert_eq!(
            spoken,
            [
                "Thanks for walking me through that.",
                "How do you approach database optimization?",
                "Take your time."
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_stream_stops_synthesis() {
        let tts = piper();
        let reply = "One. Two. Three. Four. Five. Six. Seven. Eight.".to_owned();
        let mut receiver = tts.stream(reply);
        assert!(receiver.recv().await.is_some());
        drop(receiver);
        // The blocking task ends on its own; the engine stays usable.
        assert!(!tts.synthesize("Still here.").unwrap().is_empty());
    }

    #[test]
    fn missing_voice_falls_back_to_espeak_and_still_speaks() {
        let tts = fallback();
        assert_eq!(tts.voice_name(), "espeak-ng en-us");
        assert_eq!(tts.sample_rate(), 22050);
        let samples = tts.synthesize(QUESTION).unwrap();
        let duration = seconds(&tts, &samples);
        assert!((1.0..6.0).contains(&duration), "{duration} s");
        assert!(rms(&samples) > 0.02);
    }

    #[test]
    fn missing_onnxruntime_falls_back_to_espeak() {
        let tts = Tts::load(&TtsConfig {
            onnxruntime: "/nonexistent/libonnxruntime.so.1.32.0".into(),
            ..real_voice_config()
        })
        .unwrap();
        assert!(tts.is_fallback());
        assert!(!tts.synthesize("Hello.").unwrap().is_empty());
    }

    #[test]
    fn odd_text_never_fails() {
        let long = "We scaled the cluster, and then we measured again ".repeat(20);
        for tts in [&*piper(), &fallback()] {
            for silent in ["", "   ", "?!", "... , ;", "\n\n"] {
                let samples = tts.synthesize(silent).unwrap();
                assert!(
                    samples.is_empty(),
                    "{silent:?} gave {} samples",
                    samples.len()
                );
            }
            for odd in [
                "🚀😀",
                "nul\0inside",
                "C++ & C# at 10:30?",
                "naïve café façade",
                &long,
            ] {
                let samples = tts.synthesize(odd).unwrap();
                assert!(
                    !samples.is_empty(),
                    "{odd:?} gave no audio on {}",
                    tts.voice_name()
                );
            }
        }
    }
}
