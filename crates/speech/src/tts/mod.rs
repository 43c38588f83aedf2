//! Text-to-speech: the interviewer's voice.
//!
//! Two voices, chosen explicitly, never swapped behind the caller's back:
//! - [`Tts::load`]: a Piper voice (VITS, run by ONNX Runtime) reading espeak-ng phonemes. The
//!   voice to interview with. If the voice or ONNX Runtime is missing it fails with
//!   [`TtsError::VoiceUnavailable`], saying which file and how to get it.
//! - [`Tts::espeak`]: espeak-ng's own formant synthesizer. Robotic and harder to understand
//!   (about 20 % word errors when whisper transcribes it, against 5 % for Piper), but needs
//!   no model files; only for those who ask for it.
//!
//! Piper synthesis is reproducible: the same text, voice and settings give the same samples,
//! bit for bit, in every engine and process, on any number of cores (see `noise` and
//! `piper::INFERENCE_THREADS`), so every synthesized sentence is kept in a voice cache shared
//! by all calls ([`VoiceCacheConfig`]; on disk it outlives the process) and synthesized only
//! once. Text is spoken sentence by sentence so the first sentence can play while the rest is
//! synthesized, and each sentence waits for the voice by when it is needed: a reply's first
//! sentence goes before another reply's fifth.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use viva_speech::{Tts, TtsConfig};
//! # async fn reply() -> Result<(), viva_speech::TtsError> {
//! let tts = Arc::new(Tts::load(&TtsConfig {
//!     voice: "models/piper/en_US-joe-medium.onnx".into(),
//!     onnxruntime: "models/onnxruntime/libonnxruntime.so".into(),
//! })?);
//! let needed = std::time::Instant::now();
//! let mut sentences =
//!     tts.stream("Thanks. How do you approach database optimization?".into(), needed);
//! while let Some(sentence) = sentences.recv().await {
//!     let sentence = sentence?; // play sentence.samples at tts.sample_rate()
//! }
//! # Ok(())
//! # }
//! ```

mod cache;
mod espeak;
mod lexicon;
mod noise;
mod phonemes;
mod piper;
mod protobuf;
mod text;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use self::cache::VoiceCacheConfig;
use self::cache::{SentenceKey, VoiceCache};
use self::espeak::Espeak;
pub(crate) use self::piper::onnx_runtime;
use self::piper::{PiperVoice, VoiceConfig};

/// How `words` sound in American English, read as the interviewer's voice reads them (names of
/// the trade respelled): espeak-ng's IPA. What a misheard term is recognised by.
pub(crate) fn sound_of(words: &str) -> Result<String, TtsError> {
    let mut espeak = Espeak::lock()?;
    let ipa = espeak.phonemes("en-us", &lexicon::respell(words))?;
    Ok(phonemes::without_language_flags(&ipa))
}

/// Quieter than this (about -40 dBFS) counts as silence when trimming a sentence's tail.
const SILENCE: f32 = 0.01;

/// Silence kept after a sentence's last sound: the natural pause before the next sentence.
const KEPT_PAUSE_SECONDS: f32 = 0.2;

/// How many synthesized sentences [`Tts::stream`] may hold ready before the listener takes
/// them: enough to play without gaps, few enough that a barge-in wastes little work.
const STREAM_AHEAD: usize = 2;

/// When sentences synthesized ahead of need (planned lines, [`Tts::prepare`]) count as due:
/// far enough out that every sentence someone is waiting to hear goes first.
const AHEAD_OF_NEED: Duration = Duration::from_secs(600);

/// When a sentence's audio is needed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// Someone waits to hear it at this moment.
    At(Instant),
    /// Ahead of need (a planned line): after every sentence someone waits to hear.
    Ahead,
}

impl Need {
    /// When the sentence counts as due, for the order sentences get the voice in.
    fn due(self) -> Instant {
        match self {
            Need::At(due) => due,
            Need::Ahead => Instant::now() + AHEAD_OF_NEED,
        }
    }
}

/// Where the Piper voice and ONNX Runtime are. How many threads synthesis uses is not a
/// setting: the audio would depend on it (see `piper::INFERENCE_THREADS`).
#[derive(Clone, Debug)]
pub struct TtsConfig {
    /// The Piper voice model (`.onnx`); its config (`.onnx.json`) sits next to it.
    pub voice: PathBuf,
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.x`). Loaded once per process: a
    /// second engine reuses the library the first one loaded.
    pub onnxruntime: PathBuf,
}

/// Which file of a Piper voice could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoicePart {
    /// The voice model, `<voice>.onnx`.
    Model,
    /// The voice's config, `<voice>.onnx.json`.
    Config,
    /// The ONNX Runtime shared library that runs the model.
    OnnxRuntime,
}

impl fmt::Display for VoicePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VoicePart::Model => "Piper voice model",
            VoicePart::Config => "Piper voice config",
            VoicePart::OnnxRuntime => "ONNX Runtime library",
        })
    }
}

/// Why a voice could not be loaded or a sentence could not be spoken.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The Piper voice cannot be used. There is no silent fallback: speaking with another
    /// voice is the operator's choice.
    #[error(
        "{part} {} {problem}: run scripts/setup to install the Piper voice and ONNX Runtime, \
         or set tts.voice to another Piper voice (or to \"espeak-ng\" for espeak-ng's robotic \
         voice, which needs neither)",
        .path.display()
    )]
    VoiceUnavailable {
        /// Which file.
        part: VoicePart,
        /// Where it was looked for.
        path: PathBuf,
        /// What is wrong with it, e.g. "was not found".
        problem: String,
    },
    /// espeak-ng, needed for phonemes and for the espeak-ng voice, did not start.
    #[error(
        "espeak-ng could not start: its data directory was not found; install the \
         espeak-ng-data package (scripts/setup does)"
    )]
    EspeakUnavailable,
    /// espeak-ng does not know the language asked for.
    #[error(
        "espeak-ng has no voice {voice:?}; install espeak-ng-data, or fix \"espeak.voice\" in \
         the Piper voice's .onnx.json (for the espeak-ng voice: the language it was given)"
    )]
    EspeakVoice {
        /// The espeak-ng voice name, e.g. `en-us`.
        voice: String,
    },
    /// The espeak-ng voice failed on a sentence.
    #[error("espeak-ng failed to synthesize a sentence (espeak-ng error code {code})")]
    EspeakSynthesis {
        /// espeak-ng's `espeak_ERROR` value.
        code: i32,
    },
    /// The voice cache's directory cannot be made or read.
    #[error("the voice cache directory {} cannot be used: {source}", .dir.display())]
    VoiceCache {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
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

impl TtsError {
    fn voice(part: VoicePart, path: &Path, problem: String) -> TtsError {
        TtsError::VoiceUnavailable {
            part,
            path: path.to_owned(),
            problem,
        }
    }
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
    cache: VoiceCache,
}

enum Voice {
    Piper(Box<PiperVoice>),
    /// espeak-ng's own synthesizer in `language`.
    Espeak {
        language: String,
        sample_rate: u32,
    },
}

impl Tts {
    /// Loads the Piper voice named in `config`. Fails with [`TtsError::VoiceUnavailable`] when
    /// the voice, its config or ONNX Runtime is missing or unusable, and when espeak-ng (which
    /// makes the voice's phonemes) is.
    pub fn load(config: &TtsConfig) -> Result<Tts, TtsError> {
        // The model is named first: without it, a missing config is beside the point.
        if !config.voice.is_file() {
            return Err(TtsError::voice(
                VoicePart::Model,
                &config.voice,
                "was not found".to_owned(),
            ));
        }
        let voice_config = VoiceConfig::read(&config.voice.with_extension("onnx.json"))?;
        // Checked now, so a wrong language fails at start-up rather than mid-interview.
        Espeak::lock()?.select_voice(&voice_config.espeak_voice)?;
        let voice = PiperVoice::load(&config.voice, voice_config, &config.onnxruntime)?;
        Ok(Tts {
            name: config.voice.file_stem().map_or_else(
                || "piper".to_owned(),
                |stem| stem.to_string_lossy().into_owned(),
            ),
            voice: Voice::Piper(Box::new(voice)),
            cache: memory_cache(),
        })
    }

    /// The engine with its synthesized sentences kept as `config` says (by default they are
    /// kept in memory only).
    ///
    /// # Errors
    /// [`TtsError::VoiceCache`] when the cache directory cannot be made or read.
    pub fn with_cache(mut self, config: VoiceCacheConfig) -> Result<Tts, TtsError> {
        let dir = config.dir.clone().unwrap_or_default();
        self.cache =
            VoiceCache::open(config).map_err(|source| TtsError::VoiceCache { dir, source })?;
        Ok(self)
    }

    /// espeak-ng's own voice speaking `language` (an espeak-ng voice name such as `en-us`).
    /// It needs no model files but sounds robotic and is misheard far more often than Piper,
    /// so it is only for deployments that choose it on purpose.
    pub fn espeak(language: &str) -> Result<Tts, TtsError> {
        let mut espeak = Espeak::lock()?;
        espeak.select_voice(language)?;
        Ok(Tts {
            name: format!("espeak-ng {language}"),
            voice: Voice::Espeak {
                language: language.to_owned(),
                sample_rate: espeak.sample_rate(),
            },
            cache: memory_cache(),
        })
    }

    /// The voice's name: the Piper model's file name (`en_US-joe-medium`), or
    /// `espeak-ng <language>` for espeak-ng's voice.
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
    /// Nobody is waiting to hear them: sentences someone is waiting for go first.
    pub fn sentences<'a>(
        &'a self,
        text: &'a str,
    ) -> impl Iterator<Item = Result<SpokenSentence, TtsError>> + 'a {
        text::sentences(text)
            .into_iter()
            .filter_map(move |piece| self.speak(piece, Need::Ahead).transpose())
    }

    /// Synthesizes `text` into the voice cache ahead of need (a planned line), after every
    /// sentence someone is waiting to hear. Sentences already there cost nothing.
    pub fn prepare(&self, text: &str) -> Result<(), TtsError> {
        self.sentences(text)
            .try_for_each(|sentence| sentence.map(drop))
    }

    /// Synthesizes `text` on a blocking thread, sending each sentence as soon as it is ready,
    /// so the first can play while later ones are synthesized. The first sentence is needed
    /// at `needed`; each later one when the sentences before it have played. Synthesis runs
    /// at most a couple of sentences ahead of the receiver; dropping the receiver (a
    /// barge-in) stops it after the sentence in progress.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn stream(
        self: &Arc<Self>,
        text: String,
        needed: Instant,
    ) -> mpsc::Receiver<Result<SpokenSentence, TtsError>> {
        let (sender, receiver) = mpsc::channel(STREAM_AHEAD);
        let tts = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let rate = tts.sample_rate() as f64;
            // Playback starts once the first sentence is there (and not before it is
            // needed); from then on each sentence is needed when the ones before have played.
            let mut playback: Option<Instant> = None;
            let mut played = Duration::ZERO;
            for piece in text::sentences(&text) {
                let due = playback.map_or(needed, |start| start + played);
                let Some(sentence) = tts.speak(piece, Need::At(due)).transpose() else {
                    continue;
                };
                if let Ok(sentence) = &sentence {
                    playback.get_or_insert_with(|| Instant::now().max(needed));
                    played += Duration::from_secs_f64(sentence.samples.len() as f64 / rate);
                }
                if sender.blocking_send(sentence).is_err() {
                    break;
                }
            }
        });
        receiver
    }

    /// Synthesizes one piece, needed as `need` says, or takes it from the voice cache; `None`
    /// when it holds nothing audible.
    fn speak(&self, piece: &str, need: Need) -> Result<Option<SpokenSentence>, TtsError> {
        let samples = match &self.voice {
            Voice::Piper(voice) => {
                let Some(ids) = phoneme_ids(&voice.config, piece)? else {
                    return Ok(None);
                };
                let key = SentenceKey::new(&voice.digest, &ids);
                match self.cache.get(&key) {
                    Some(samples) => samples.to_vec(),
                    None => {
                        let mut samples =
                            voice
                                .speak(ids, need)
                                .map_err(|source| TtsError::Inference {
                                    voice: self.name.clone(),
                                    source,
                                })?;
                        trim_trailing_silence(&mut samples, self.sample_rate());
                        self.cache.put(key, &samples);
                        samples
                    }
                }
            }
            Voice::Espeak { language, .. } => {
                // espeak-ng's formant voice costs a few milliseconds a sentence: not cached.
                let mut samples = Espeak::lock()?.synthesize(language, &lexicon::respell(piece))?;
                trim_trailing_silence(&mut samples, self.sample_rate());
                samples
            }
        };
        Ok((!samples.is_empty()).then(|| SpokenSentence {
            text: piece.to_owned(),
            samples,
        }))
    }
}

/// A voice cache in memory only, of the default size.
fn memory_cache() -> VoiceCache {
    VoiceCache::open(VoiceCacheConfig::default()).expect("a cache without a directory opens")
}

/// The model input for one piece, for a voice configured by `config`; `None` when it holds
/// nothing to pronounce.
fn phoneme_ids(config: &VoiceConfig, piece: &str) -> Result<Option<Vec<i64>>, TtsError> {
    let spoken = lexicon::respell(piece);
    let phonemes = phonemes::piece_phonemes(&mut Espeak::lock()?, &config.espeak_voice, &spoken)?;
    Ok(phonemes.map(|phonemes| config.ids.utterance(&phonemes)))
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

    use viva_test_support::scratch_dir;

    use super::*;

    const QUESTION: &str = "How do you approach database optimization?";

    /// A stand-in for a Piper voice in `dir`: a config file with the few phonemes these tests
    /// read, beside a model file that is not a model. Enough for everything before ONNX Runtime
    /// opens the model; the real voice is tested in `tests/piper.rs`.
    fn fake_voice(dir: &Path) -> PathBuf {
        let voice = dir.join("voice.onnx");
        std::fs::write(&voice, b"not a model").unwrap();
        let config = serde_json::json!({
            "audio": {"sample_rate": 22050},
            "espeak": {"voice": "en-us"},
            "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
            "num_speakers": 1,
            "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], ".": [10], "?": [13]},
        });
        std::fs::write(voice.with_extension("onnx.json"), config.to_string()).unwrap();
        voice
    }

    fn espeak() -> Tts {
        Tts::espeak("en-us").expect("espeak-ng must be installed")
    }

    /// Asserts that loading fails with a message naming `part` at `path` and both fixes.
    fn assert_unavailable(result: Result<Tts, TtsError>, part: VoicePart, path: &Path) {
        let err = result.err().expect("loading must fail");
        let message = err.to_string();
        match &err {
            TtsError::VoiceUnavailable {
                part: actual,
                path: looked_at,
                ..
            } => {
                assert_eq!((*actual, looked_at.as_path()), (part, path), "{message}");
            }
            other => panic!("not VoiceUnavailable: {other}"),
        }
        let path = path.display().to_string();
        for needed in [path.as_str(), "scripts/setup", "tts.voice"] {
            assert!(message.contains(needed), "{needed:?} missing: {message}");
        }
    }

    fn rms(samples: &[f32]) -> f32 {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
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
    fn piper_hears_the_question_mark() {
        let scratch = scratch_dir("tts-question-mark");
        let voice = fake_voice(scratch.path());
        let config = VoiceConfig::read(&voice.with_extension("onnx.json")).unwrap();
        let ids = phoneme_ids(&config, QUESTION).unwrap().unwrap();
        // "? _ $": the question mark is the last symbol the model reads.
        let question_mark = config.ids.utterance("?");
        assert!(ids.ends_with(&question_mark[2..]), "{ids:?}");
        let statement = phoneme_ids(&config, "I approach database optimization.")
            .unwrap()
            .unwrap();
        assert!(!statement.ends_with(&question_mark[2..]), "{statement:?}");
    }

    #[test]
    fn espeak_voice_speaks_when_chosen() {
        let tts = espeak();
        assert_eq!(tts.voice_name(), "espeak-ng en-us");
        assert_eq!(tts.sample_rate(), 22050);
        let samples = tts.synthesize(QUESTION).unwrap();
        let duration = samples.len() as f32 / tts.sample_rate() as f32;
        assert!((1.0..6.0).contains(&duration), "{duration} s");
        assert!(rms(&samples) > 0.02);
        let err = Tts::espeak("xx-nonexistent").err().unwrap();
        assert!(matches!(err, TtsError::EspeakVoice { .. }), "{err}");
    }

    #[test]
    fn missing_voice_is_an_error_not_a_fallback() {
        let voice = Path::new("/nonexistent/voice.onnx");
        let loaded = Tts::load(&TtsConfig {
            voice: voice.to_owned(),
            onnxruntime: PathBuf::from("/nonexistent/libonnxruntime.so"),
        });
        assert_unavailable(loaded, VoicePart::Model, voice);
    }

    #[test]
    fn missing_voice_config_is_an_error() {
        let scratch = scratch_dir("tts-no-config");
        let voice = fake_voice(scratch.path());
        let config = voice.with_extension("onnx.json");
        std::fs::remove_file(&config).unwrap();
        let loaded = Tts::load(&TtsConfig {
            voice,
            onnxruntime: PathBuf::from("/nonexistent/libonnxruntime.so"),
        });
        assert_unavailable(loaded, VoicePart::Config, &config);
    }

    #[test]
    fn missing_onnxruntime_is_an_error() {
        let scratch = scratch_dir("tts-no-onnxruntime");
        let library = Path::new("/nonexistent/libonnxruntime.so.1.32.0");
        let loaded = Tts::load(&TtsConfig {
            voice: fake_voice(scratch.path()),
            onnxruntime: library.to_owned(),
        });
        assert_unavailable(loaded, VoicePart::OnnxRuntime, library);
    }
}
