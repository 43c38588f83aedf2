//! Builds the speech engines from the configuration, so every command loads them one way.

use std::path::Path;
use std::sync::Arc;

use viva_interview::{BuiltInPolicy, Embedder, Job, Judge, LlmConfig, LlmPolicy, Policy};
use viva_speech::{SpeechToText, SttConfig, Tts, TtsConfig, TurnModel, VoiceCacheConfig};

use crate::config::Config;

/// Loads whisper as configured; `stt.workers`/`stt.threads` of 0 keep the machine-sized values.
pub fn speech_to_text(config: &Config) -> anyhow::Result<SpeechToText> {
    let mut stt = SttConfig::new(config.stt_model_path());
    stt.language = config.stt.language.clone();
    stt.trim_context = config.stt.trim_context;
    if config.stt.threads > 0 {
        stt.threads = config.stt.threads;
    }
    if config.stt.workers > 0 {
        stt.workers = config.stt.workers;
    }
    Ok(SpeechToText::load(&stt)?)
}

/// `tts.voice` that chooses plain espeak-ng instead of a Piper voice.
pub const ESPEAK_VOICE: &str = "espeak-ng";

/// Loads the Piper voice as configured; plain espeak-ng only when `tts.voice = "espeak-ng"`
/// asks for it (a missing Piper voice is an error that says what to do, never a quiet
/// switch to a robotic voice).
pub fn text_to_speech(config: &Config) -> anyhow::Result<Tts> {
    if config.tts.voice == ESPEAK_VOICE {
        let language = match config.stt.language.as_str() {
            "en" | "auto" => "en-us",
            other => other,
        };
        return Ok(Tts::espeak(language)?);
    }
    Ok(Tts::load(&TtsConfig {
        voice: config.tts_voice_path(),
        onnxruntime: config.onnxruntime_path(),
    })?)
}

/// Where the server keeps synthesized sentences: `tts.cache_mb` of disk in
/// `server.data_dir/voice-cache` (memory only when 0).
pub fn voice_cache(config: &Config) -> VoiceCacheConfig {
    let disk_bytes = config.tts.cache_mb << 20;
    VoiceCacheConfig {
        dir: (disk_bytes > 0).then(|| config.server.data_dir.join("voice-cache")),
        disk_bytes,
        ..VoiceCacheConfig::default()
    }
}

/// Loads the end-of-turn model. Without it (not installed, or no ONNX Runtime) calls still
/// work: the end-of-turn wait then depends on the candidate's words alone, which is slower
/// after complete answers; the warning says how to install it.
pub fn turn_model(config: &Config) -> Option<Arc<TurnModel>> {
    match TurnModel::load(&config.turn_model_path(), &config.onnxruntime_path()) {
        Ok(model) => Some(Arc::new(model)),
        Err(error) => {
            tracing::warn!(%error, "turns end on the words alone, without the end-of-turn model");
            None
        }
    }
}

/// Loads a job file and the answer judge for it (with the sentence-embedding model).
pub fn judge(config: &Config, job_file: &Path) -> anyhow::Result<Judge> {
    // Every problem in the job file is listed, one per line, each with its field.
    let job = Job::load(job_file).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let embedder = Embedder::load(&config.models.dir.join("minilm"))?;
    Ok(Judge::new(Arc::new(job), Arc::new(embedder))?)
}

/// The interviewer's follow-up policy: the configured language model (falling back to the
/// built-in policy turn by turn), or the built-in policy alone.
pub fn policy(config: &Config) -> anyhow::Result<Box<dyn Policy>> {
    if config.llm.url.is_empty() {
        return Ok(Box::new(BuiltInPolicy));
    }
    let llm = LlmPolicy::new(LlmConfig {
        base_url: config.llm.url.clone(),
        model: config.llm.model.clone(),
        timeout: std::time::Duration::from_millis(config.llm.timeout_ms),
        api_key: (!config.llm.api_key.is_empty()).then(|| config.llm.api_key.clone()),
    })
    .map_err(|e| anyhow::anyhow!("llm.url {}: {e}", config.llm.url))?;
    Ok(Box::new(llm))
}

/// What produced a report, by role (kept in the report for audit).
pub fn model_versions(config: &Config, speech: bool) -> std::collections::BTreeMap<String, String> {
    let file_name = |p: std::path::PathBuf| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let mut models = std::collections::BTreeMap::from([
        ("embeddings".to_owned(), "all-MiniLM-L6-v2".to_owned()),
        (
            "interviewer".to_owned(),
            if config.llm.url.is_empty() {
                "built-in policy".to_owned()
            } else {
                format!(
                    "built-in policy with {} at {}",
                    config.llm.model, config.llm.url
                )
            },
        ),
    ]);
    if speech {
        models.insert("stt".to_owned(), file_name(config.stt_model_path()));
        models.insert("tts".to_owned(), file_name(config.tts_voice_path()));
    }
    models
}
