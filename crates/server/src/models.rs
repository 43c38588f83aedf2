//! `viva models ...`: converting and checking model files.

use std::path::Path;

use viva_convert::convert_ct2_to_ggml;

use crate::config::Config;
use crate::engines;

/// Converts a CTranslate2 Whisper model to a whisper.cpp ggml file.
pub fn convert(from: &Path, out: &Path) -> anyhow::Result<()> {
    let summary = convert_ct2_to_ggml(from, out)?;
    tracing::info!(?summary, "converted");
    Ok(())
}

/// Loads each configured model and reports what is usable.
pub fn check(config: &Config) -> anyhow::Result<()> {
    let stt = engines::speech_to_text(config)?;
    println!(
        "speech-to-text: {} ({} worker(s))",
        stt.model_path().display(),
        stt.workers()
    );
    let tts = engines::text_to_speech(config)?;
    println!(
        "text-to-speech: {} at {} Hz",
        tts.voice_name(),
        tts.sample_rate()
    );
    Ok(())
}
