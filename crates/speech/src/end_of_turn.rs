//! Whether a speaker has finished their turn, judged from the sound of it: Smart Turn v3, a
//! small Whisper-encoder classifier (BSD-2-Clause, shipped in Pipecat's wheel) that hears the
//! last 8 s of a turn and says how likely it is complete. Intonation and rhythm tell a
//! finished answer from a pause for thought, which a silence timer cannot.
//!
//! The features are those of Pipecat's `_whisper_features.py` (itself Hugging Face's
//! `WhisperFeatureExtractor` with an 8 s window), reproduced step by step: the model was trained
//! on exactly these numbers.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use realfft::RealFftPlanner;
use viva_convert::MelFilterbank;

use crate::cores;
use crate::tts::{TtsError, onnx_runtime};
use crate::vad::VAD_SAMPLE_RATE;

/// The model hears the last 8 s of a turn; shorter turns are padded with silence in front.
pub const TURN_WINDOW_SAMPLES: usize = 8 * VAD_SAMPLE_RATE as usize;
/// Whisper's analysis: a 25 ms window every 10 ms, 80 mel bands.
const N_FFT: usize = 400;
const HOP: usize = 160;
const N_MELS: usize = 80;
/// Feature frames per window: one per hop, the last (centred on the padding) dropped.
const FRAMES: usize = TURN_WINDOW_SAMPLES / HOP;
const MEL_FLOOR: f64 = 1e-10;
const NORMALIZE_EPSILON: f32 = 1e-7;

/// What went wrong with the end-of-turn model.
#[derive(Debug, thiserror::Error)]
pub enum TurnModelError {
    /// The model file or ONNX Runtime cannot be used.
    #[error("end-of-turn model {}: {problem}: run scripts/setup to install it", .path.display())]
    Unavailable {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it, e.g. "was not found".
        problem: String,
    },
    /// ONNX Runtime failed on one judgement.
    #[error("the end-of-turn model failed: {0}")]
    Inference(#[from] ort::Error),
}

/// The model's verdict on a turn so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnJudgement {
    /// How likely the speaker has finished, in `[0, 1]`. The model was published with 0.5
    /// as the line between finished and not; a caller weighing a long wait against a cut-in
    /// may draw it higher (`viva_call::TurnTaking::sure_complete`).
    pub complete_probability: f32,
}

/// Smart Turn v3, loaded once per process and shared by every call (judgements queue on the
/// session; each takes tens of milliseconds).
pub struct TurnModel {
    session: Mutex<Session>,
    features: FeatureExtractor,
}

impl TurnModel {
    /// Loads the model `onnx` into the ONNX Runtime loaded from `runtime` (the one the voice
    /// uses: a process has one).
    ///
    /// # Errors
    /// [`TurnModelError::Unavailable`] naming the missing or broken file.
    pub fn load(onnx: &Path, runtime: &Path) -> Result<Self, TurnModelError> {
        let unavailable = |path: &Path, problem: String| TurnModelError::Unavailable {
            path: path.to_owned(),
            problem,
        };
        if !onnx.is_file() {
            return Err(unavailable(onnx, "was not found".to_owned()));
        }
        let environment = onnx_runtime(runtime).map_err(|error| match error {
            TtsError::VoiceUnavailable { path, problem, .. } => unavailable(&path, problem),
            other => unavailable(runtime, other.to_string()),
        })?;
        let session = open_session(&environment, onnx).map_err(|error| {
            unavailable(
                onnx,
                format!("could not be opened by ONNX Runtime ({error})"),
            )
        })?;
        Ok(Self {
            session: Mutex::new(session),
            features: FeatureExtractor::new(),
        })
    }

    /// Judges a turn from its 16 kHz audio up to now (the pause included, as the model was
    /// trained); only the last 8 s are heard.
    ///
    /// # Errors
    /// [`TurnModelError::Inference`] when ONNX Runtime fails.
    pub fn judge(&self, audio: &[f32]) -> Result<TurnJudgement, TurnModelError> {
        // One core, briefly: a transcription of the same pause waits for it rather than
        // run narrow. A pause that has begun is judged now: its answer decides how long the
        // turn waits.
        let _core = cores::machine().lease_brief();
        let features = self.features.log_mel(audio);
        let input = Tensor::from_array(([1, N_MELS, FRAMES], features))?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(ort::inputs!["input_features" => input])?;
        let (_, probability) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(TurnJudgement {
            complete_probability: probability.first().copied().unwrap_or(0.0),
        })
    }
}

fn open_session(environment: &Environment, onnx: &Path) -> ort::Result<Session> {
    Session::builder(environment)?
        .with_intra_threads(1)?
        .with_inter_threads(1)?
        // Idle ONNX Runtime threads would otherwise spin on the cores speech needs.
        .with_intra_op_spinning(false)?
        .commit_from_file(onnx)
}

/// Whisper-style log-mel features of an 8 s window.
struct FeatureExtractor {
    /// Periodic Hann window (torch's `hann_window`).
    window: Vec<f64>,
    mel: MelFilterbank,
    fft: std::sync::Arc<dyn realfft::RealToComplex<f64>>,
}

impl FeatureExtractor {
    fn new() -> Self {
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
            .collect();
        Self {
            window,
            mel: MelFilterbank::whisper(N_MELS),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        }
    }

    /// `[80][800]` row-major features of the last 8 s of `audio` (zero-padded in front).
    fn log_mel(&self, audio: &[f32]) -> Vec<f32> {
        let tail = &audio[audio.len().saturating_sub(TURN_WINDOW_SAMPLES)..];
        let mut x = vec![0.0f32; TURN_WINDOW_SAMPLES - tail.len()];
        x.extend_from_slice(tail);

        // Zero mean, unit variance, in float32 as the reference does.
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let variance = x.iter().map(|s| (s - mean) * (s - mean)).sum::<f32>() / n;
        let scale = (variance + NORMALIZE_EPSILON).sqrt();
        let x: Vec<f64> = x.iter().map(|s| f64::from((s - mean) / scale)).collect();

        // Centred frames over a reflect-padded signal.
        let pad = N_FFT / 2;
        let reflected = |i: isize| -> f64 {
            let len = x.len() as isize;
            let j = if i < 0 {
                -i
            } else if i >= len {
                2 * (len - 1) - i
            } else {
                i
            };
            x[j as usize]
        };
        let bins = N_FFT / 2 + 1;
        let weights = self.mel.weights();
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut power = vec![0.0f64; bins];
        let mut log_mel = vec![0.0f64; N_MELS * FRAMES];
        for t in 0..FRAMES {
            let start = (t * HOP) as isize - pad as isize;
            for (k, value) in frame.iter_mut().enumerate() {
                *value = reflected(start + k as isize) * self.window[k];
            }
            self.fft
                .process(&mut frame, &mut spectrum)
                .expect("the buffers come from the plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for m in 0..N_MELS {
                let row = &weights[m * bins..(m + 1) * bins];
                let energy: f64 = row.iter().zip(&power).map(|(w, p)| f64::from(*w) * p).sum();
                log_mel[m * FRAMES + t] = energy.max(MEL_FLOOR).log10();
            }
        }
        let top = log_mel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        log_mel
            .into_iter()
            .map(|v| ((v.max(top - 8.0) + 4.0) / 4.0) as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_silence_and_of_a_tone_have_whispers_shape_and_range() {
        let extractor = FeatureExtractor::new();
        let silence = extractor.log_mel(&[]);
        assert_eq!(silence.len(), N_MELS * FRAMES);
        // Silence normalises to zeros: every band sits on the mel floor.
        assert!(
            silence
                .iter()
                .all(|&v| (v - (-10.0 + 4.0) / 4.0).abs() < 1e-6)
        );

        // A 1 kHz tone in the last second: its band is the loudest, the start is clamped
        // 8 decades (2.0 after scaling) below it.
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let features = extractor.log_mel(&tone);
        let (max, min) = features
            .iter()
            .fold((f32::MIN, f32::MAX), |(a, b), &v| (a.max(v), b.min(v)));
        assert!((max - min - 2.0).abs() < 1e-5, "{max} {min}");
        let band_of_1khz = (0..N_MELS)
            .max_by(|&a, &b| {
                features[a * FRAMES + FRAMES - 50].total_cmp(&features[b * FRAMES + FRAMES - 50])
            })
            .unwrap();
        assert!((25..=32).contains(&band_of_1khz), "{band_of_1khz}");
    }

    #[test]
    fn a_missing_model_names_the_file_and_the_fix() {
        let error = TurnModel::load(
            Path::new("/nonexistent/smart-turn.onnx"),
            Path::new("/nonexistent/libonnxruntime.so"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("/nonexistent/smart-turn.onnx"), "{error}");
        assert!(error.contains("was not found"), "{error}");
        assert!(error.contains("run scripts/setup"), "{error}");
    }
}
