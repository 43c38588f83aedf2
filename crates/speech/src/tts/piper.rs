//! A Piper (VITS) voice run by ONNX Runtime.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Instant;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use super::Need;
use super::noise::{self, OFFSETS_INPUT};
use super::phonemes::PhonemeIds;
use super::{TtsError, VoicePart};
use crate::cores::{self, DueQueue};
use crate::waits::{self, SpeechJob};

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
    pub(crate) fn read(path: &Path) -> Result<VoiceConfig, TtsError> {
        let unusable = |problem: String| TtsError::voice(VoicePart::Config, path, problem);
        let text = std::fs::read_to_string(path).map_err(|err| unusable(read_problem(&err)))?;
        let file: VoiceFile = serde_json::from_str(&text)
            .map_err(|err| unusable(format!("is not a Piper voice config ({err})")))?;
        if file.audio.sample_rate == 0 {
            return Err(unusable("says audio.sample_rate is 0".to_owned()));
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
            ids: PhonemeIds::new(file.phoneme_id_map)
                .map_err(|reason| unusable(format!("is unusable: {reason}")))?,
        })
    }
}

/// Threads per inference, the same on every machine. ONNX Runtime cuts each matrix product
/// into one part per thread, and a narrower part is summed in other blocks: the same sentence
/// on 1 and on 2 threads differed by up to 7e-6 per sample (measured), and such a difference
/// can move a duration by a frame. With a fixed count the audio is a function of the text
/// alone, on any number of cores. Two, because on the 2-core machines Viva targets that is
/// 1.6 times as fast as one (real-time factor 0.048 against 0.079, the interviewer lines,
/// median of 8 runs); confined to one core the two threads take turns, 14 % slower than one.
const INFERENCE_THREADS: usize = 2;

/// The ONNX Runtime environment. ONNX Runtime allows one per process and `ort` refuses a
/// second, so every voice (and the end-of-turn model) shares this one.
static ONNX_RUNTIME: Mutex<Option<Environment>> = Mutex::new(None);

/// Loads the ONNX Runtime library from `library` (once per process: later calls reuse the
/// library first loaded, whatever path they name).
pub(crate) fn onnx_runtime(library: &Path) -> Result<Environment, TtsError> {
    let failed = |problem: String| TtsError::voice(VoicePart::OnnxRuntime, library, problem);
    // A configured library that is not there is reported even when another copy is already
    // loaded: the configuration is wrong and would fail on the next start.
    if !library.is_file() {
        return Err(failed("was not found".to_owned()));
    }
    let mut runtime = ONNX_RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(environment) = runtime.as_ref() {
        return Ok(environment.clone());
    }
    let not_loaded = |err: &dyn std::fmt::Display| failed(format!("could not be loaded ({err})"));
    let environment = ort::init_from(library)
        .map_err(|err| not_loaded(&err))?
        .with_name("viva-tts")
        .build()
        .map_err(|err| not_loaded(&err))?;
    *runtime = Some(environment.clone());
    Ok(environment)
}

/// A loaded Piper voice. ONNX Runtime sessions run one inference at a time (`run` takes
/// `&mut`), so concurrent sentences queue for the session, earliest due first; one copy of the
/// weights serves every call.
pub(crate) struct PiperVoice {
    pub(crate) config: VoiceConfig,
    /// A digest of the weights and the settings the audio depends on: what the voice cache
    /// knows this voice by.
    pub(crate) digest: [u8; 32],
    session: Mutex<Session>,
    waiting: DueQueue,
    /// Multi-speaker voices take a speaker id; speaker 0 is used.
    takes_speaker: bool,
    /// How many noise sources the rewritten graph has (see [`noise`]).
    noise_sources: usize,
}

impl PiperVoice {
    /// Opens the voice model `onnx` (configured by `config`) with ONNX Runtime loaded from
    /// `runtime`. The graph's noise is made reproducible on the way in, so the same utterance
    /// always gives the same audio.
    pub(crate) fn load(
        onnx: &Path,
        config: VoiceConfig,
        runtime: &Path,
    ) -> Result<PiperVoice, TtsError> {
        let unusable = |problem: String| TtsError::voice(VoicePart::Model, onnx, problem);
        // Read before the runtime is loaded, so a missing voice is named as such.
        let model = std::fs::read(onnx).map_err(|err| unusable(read_problem(&err)))?;
        let digest = voice_digest(&model, &config);
        let environment = onnx_runtime(runtime)?;
        let seeded =
            noise::seeded_model(&model).map_err(|problem| unusable(problem.to_string()))?;
        // The original bytes go before ONNX Runtime makes its own copy of the weights.
        drop(model);
        let session = open_session(&environment, &seeded.onnx)
            .map_err(|err| unusable(format!("could not be opened by ONNX Runtime ({err})")))?;
        let takes_speaker =
            config.speakers > 1 && session.inputs().iter().any(|input| input.name() == "sid");
        Ok(PiperVoice {
            config,
            digest,
            session: Mutex::new(session),
            waiting: DueQueue::new(),
            takes_speaker,
            noise_sources: seeded.sources,
        })
    }

    /// Runs the model on one utterance's phoneme ids, whose audio is needed as `need` says
    /// (it waits for the voice behind sentences due sooner); returns the waveform at the
    /// voice's sample rate, clamped to [-1, 1].
    pub(crate) fn speak(&self, ids: Vec<i64>, need: Need) -> ort::Result<Vec<f32>> {
        let due = need.due();
        let speaker = 0_i64;
        let offsets = noise::offsets(self.noise_sources, &ids, &self.config.scales, speaker);
        let offsets = Tensor::from_array(([self.noise_sources], offsets))?;
        let length = ids.len() as i64;
        let text = Tensor::from_array(([1, ids.len()], ids))?;
        let lengths = Tensor::from_array(([1], vec![length]))?;
        let scales = Tensor::from_array(([3], self.config.scales.to_vec()))?;
        let mut session = self.turn(due);
        // One core is enough to keep transcriptions from going wide while this runs; the
        // session's own threads are fixed, and ONNX Runtime's sleep rather than spin, so they
        // share cores with a single-threaded transcription without stalling it.
        let _core = cores::machine().lease(1, due);
        if let Need::At(due) = need {
            waits::started(SpeechJob::Synthesis, due);
        }
        let outputs = if self.takes_speaker {
            let speaker = Tensor::from_array(([1], vec![speaker]))?;
            session.run(ort::inputs![
                "input" => text,
                "input_lengths" => lengths,
                "scales" => scales,
                "sid" => speaker,
                OFFSETS_INPUT => offsets,
            ])?
        } else {
            session.run(ort::inputs![
                "input" => text,
                "input_lengths" => lengths,
                "scales" => scales,
                OFFSETS_INPUT => offsets,
            ])?
        };
        let (_, audio) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(audio.iter().map(|sample| sample.clamp(-1.0, 1.0)).collect())
    }

    /// The session, once every sentence due before `due` has had it.
    fn turn(&self, due: Instant) -> VoiceTurn<'_> {
        let session = self
            .waiting
            .wait_turn(due, |_| match self.session.try_lock() {
                Ok(session) => Some(session),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            });
        VoiceTurn {
            session: Some(session),
            waiting: &self.waiting,
        }
    }
}

/// The voice's session held by one sentence; the next in line is woken when it is dropped.
struct VoiceTurn<'a> {
    session: Option<MutexGuard<'a, Session>>,
    waiting: &'a DueQueue,
}

impl std::ops::Deref for VoiceTurn<'_> {
    type Target = Session;

    fn deref(&self) -> &Session {
        self.session.as_deref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for VoiceTurn<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for VoiceTurn<'_> {
    fn drop(&mut self) {
        // Unlocked first, so the woken waiter finds the session free.
        self.session = None;
        self.waiting.released();
    }
}

/// Identifies a voice's audio: its weights, the scales it speaks with and its sample rate.
fn voice_digest(model: &[u8], config: &VoiceConfig) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(model);
    for scale in config.scales {
        digest.update(scale.to_le_bytes());
    }
    digest.update(config.sample_rate.to_le_bytes());
    digest.finalize().into()
}

fn open_session(environment: &Environment, onnx: &[u8]) -> ort::Result<Session> {
    Session::builder(environment)?
        .with_intra_threads(INFERENCE_THREADS)?
        .with_inter_threads(1)?
        // Idle ONNX Runtime threads otherwise spin on the cores speech-to-text needs.
        .with_intra_op_spinning(false)?
        .commit_from_memory(onnx)
}

/// How reading a voice file failed, as the end of a sentence naming the file.
fn read_problem(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "was not found".to_owned(),
        _ => format!("could not be read ({err})"),
    }
}
