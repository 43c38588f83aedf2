//! A Piper (VITS) voice run by ONNX Runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use super::phonemes::PhonemeIds;
use crate::cores;

/// Why a Piper voice could not be loaded. The engine then falls back to plain espeak-ng, so
/// this only ever reaches the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VoiceLoadError {
    #[error("{what} {path} not found")]
    Missing { what: &'static str, path: PathBuf },
    #[error("Piper voice config {path} is unusable: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("ONNX Runtime library {path} could not be loaded: {reason}")]
    Runtime { path: PathBuf, reason: String },
    #[error("Piper voice model {path} could not be opened by ONNX Runtime: {source}")]
    Model { path: PathBuf, source: ort::Error },
}

/// The voice's `.onnx.json`, as far as synthesis needs it.
#[derive(Deserialize)]
struct VoiceFile {
    audio: AudioSection,
    espeak: EspeakSection,
    inference: InferenceSection,
    #[serde(default)]
    num_speakers: u32,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Deserialize)]
struct AudioSection {
    sample_rate: u32,
}

#[derive(Deserialize)]
struct EspeakSection {
    voice: String,
}

#[derive(Deserialize)]
struct InferenceSection {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// What a Piper voice's config file says about speaking with it.
#[derive(Debug)]
pub(crate) struct VoiceConfig {
    pub(crate) sample_rate: u32,
    /// The espeak-ng voice whose phonemes the model was trained on, e.g. `en-us`.
    pub(crate) espeak_voice: String,
    /// `[noise_scale, length_scale, noise_w]`, the model's `scales` input.
    scales: [f32; 3],
    speakers: u32,
    pub(crate) ids: PhonemeIds,
}

impl VoiceConfig {
    pub(crate) fn read(path: &Path) -> Result<VoiceConfig, VoiceLoadError> {
        let unusable = |reason: String| VoiceLoadError::Config {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => VoiceLoadError::Missing {
                what: "Piper voice config",
                path: path.to_owned(),
            },
            _ => unusable(err.to_string()),
        })?;
        let file: VoiceFile =
            serde_json::from_str(&text).map_err(|err| unusable(err.to_string()))?;
        if file.audio.sample_rate == 0 {
            return Err(unusable("audio.sample_rate is 0".to_owned()));
        }
        let inference = file.inference;
        Ok(VoiceConfig {
            sample_rate: file.audio.sample_rate,
            espeak_voice: file.espeak.voice,
            scales: [
                inference.noise_scale,
                inference.length_scale,
                inference.noise_w,
            ],
            speakers: file.num_speakers,
            ids: PhonemeIds::new(file.phoneme_id_map).map_err(unusable)?,
        })
    }
}

/// The ONNX Runtime environment. ONNX Runtime allows one per process and `ort` refuses a
/// second, so every voice shares this one.
static ONNX_RUNTIME: Mutex<Option<Environment>> = Mutex::new(None);

/// Loads the ONNX Runtime library from `library` (once per process: later calls reuse the
/// library first loaded, whatever path they name).
fn onnx_runtime(library: &Path) -> Result<Environment, VoiceLoadError> {
    // A configured library that is not there is reported even when another copy is already
    // loaded: the configuration is wrong and would fail on the next start.
    if !library.is_file() {
        return Err(VoiceLoadError::Missing {
            what: "ONNX Runtime library",
            path: library.to_owned(),
        });
    }
    let mut runtime = ONNX_RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(environment) = runtime.as_ref() {
        return Ok(environment.clone());
    }
    let failed = |reason: String| VoiceLoadError::Runtime {
        path: library.to_owned(),
        reason,
    };
    let environment = ort::init_from(library)
        .map_err(|err| failed(err.to_string()))?
        .with_name("viva-tts")
        .build()
        .map_err(|err| failed(err.to_string()))?;
    *runtime = Some(environment.clone());
    Ok(environment)
}

/// A loaded Piper voice. ONNX Runtime sessions run one inference at a time (`run` takes
/// `&mut`), so concurrent sentences queue on the session lock; one copy of the weights serves
/// every call.
pub(crate) struct PiperVoice {
    pub(crate) config: VoiceConfig,
    session: Mutex<Session>,
    /// Multi-speaker voices take a speaker id; speaker 0 is used.
    takes_speaker: bool,
}

impl PiperVoice {
    /// Opens the voice model `onnx` (configured by `config`) with ONNX Runtime loaded from
    /// `runtime`, using `threads` threads for each inference (at least one).
    pub(crate) fn load(
        onnx: &Path,
        config: VoiceConfig,
        runtime: &Path,
        threads: usize,
    ) -> Result<PiperVoice, VoiceLoadError> {
        let environment = onnx_runtime(runtime)?;
        let session =
            open_session(&environment, onnx, threads).map_err(|source| VoiceLoadError::Model {
                path: onnx.to_owned(),
                source,
            })?;
        let takes_speaker =
            config.speakers > 1 && session.inputs().iter().any(|input| input.name() == "sid");
        Ok(PiperVoice {
            config,
            session: Mutex::new(session),
            takes_speaker,
        })
    }

    /// Runs the model on one utterance's phoneme ids; returns the waveform at the voice's
    /// sample rate, clamped to [-1, 1].
    pub(crate) fn speak(&self, ids: Vec<i64>) -> ort::Result<Vec<f32>> {
        let length = ids.len() as i64;
        let text = Tensor::from_array(([1, ids.len()], ids))?;
        let lengths = Tensor::from_array(([1], vec![length]))?;
        let scales = Tensor::from_array(([3], self.config.scales.to_vec()))?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        // One core is enough to keep transcriptions from going wide while this runs; the
        // session's own threads are fixed, and ONNX Runtime's sleep rather than spin, so they
        // share cores with a single-threaded transcription without stalling it.
        let _core = cores::machine().lease(1);
        let outputs = if self.takes_speaker {
            let speaker = Tensor::from_array(([1], vec![0_i64]))?;
            session.run(ort::inputs![
                "input" => text,
                "input_lengths" => lengths,
                "scales" => scales,
                "sid" => speaker,
            ])?
        } else {
            session.run(ort::inputs![
                "input" => text,
                "input_lengths" => lengths,
                "scales" => scales,
            ])?
        };
        let (_, audio) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(audio.iter().map(|sample| sample.clamp(-1.0, 1.0)).collect())
    }
}

fn open_session(environment: &Environment, onnx: &Path, threads: usize) -> ort::Result<Session> {
    Session::builder(environment)?
        .with_intra_threads(threads.max(1))?
        .with_inter_threads(1)?
        // Idle ONNX Runtime threads otherwise spin on the cores speech-to-text needs.
        .with_intra_op_spinning(false)?
        .commit_from_file(onnx)
}
