//! Command-line interface of the `viva` binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Viva: a self-hosted AI interview server.
///
/// Configuration comes from config/viva.toml (or --config FILE), VIVA_* environment
/// variables, and flags. Models are installed by scripts/setup.
#[derive(Debug, Parser)]
#[command(name = "viva", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: config/viva.toml when it exists].
    #[arg(long, global = true, value_name = "FILE", env = "VIVA_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log filter, overriding log.level (error, warn, info, debug, trace).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API, pages and health checks.
    Serve(ServeArgs),
    /// Transcribe an audio file (WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus) with the local model.
    Transcribe(TranscribeArgs),
    /// Speak a text with the local voice into a WAV file.
    Say(SayArgs),
    /// Run a whole interview with a scripted candidate and write its transcript and report.
    Simulate(SimulateArgs),
    /// Measure this machine's speed and accuracy.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage model files (scripts/setup uses this).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Print the effective configuration (defaults, file, environment) as TOML.
    Config,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// HTTP listen address, overriding server.http.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Data directory, overriding server.data_dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TranscribeArgs {
    /// The audio file.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TranscriptFormat::Text)]
    pub format: TranscriptFormat,
    /// Whisper model name or ggml file, overriding stt.model.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Spoken language (ISO 639-1) or `auto`, overriding stt.language.
    #[arg(long, value_name = "LANG")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TranscriptFormat {
    /// Plain text.
    Text,
    /// JSON with segments and word timestamps.
    Json,
    /// WebVTT subtitles.
    Vtt,
}

#[derive(Debug, clap::Args)]
pub struct SayArgs {
    /// What to say.
    pub text: String,
    /// The WAV file to write.
    #[arg(long, value_name = "FILE.wav")]
    pub out: PathBuf,
    /// Piper voice name or .onnx file, overriding tts.voice.
    #[arg(long, value_name = "NAME")]
    pub voice: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The job configuration (e.g. config/jobs/backend-developer.toml).
    #[arg(long, value_name = "FILE")]
    pub job: PathBuf,
    /// The candidate script: TOML with [answers] per question id (see docs/interviews.md).
    #[arg(long, value_name = "SCRIPT")]
    pub candidate: PathBuf,
    /// Where to write transcript.json, transcript.vtt, report.json and report.html.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Speak the answers through the live conversation loop (VAD, STT, TTS) instead of text.
    #[arg(long)]
    pub audio: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Speech-to-text and text-to-speech latency, speed, accuracy and memory.
    Speech(BenchSpeechArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchSpeechArgs {
    /// Directory of speech clips (`NAME.wav` + `NAME.txt` with what is said)
    /// [default: MODELS_DIR/speech-set].
    #[arg(long, value_name = "DIR")]
    pub set: Option<PathBuf>,
    /// Times each measurement is repeated.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Convert a CTranslate2 Whisper model (model.bin + vocabulary.txt) to a whisper.cpp ggml file.
    Convert {
        /// Directory holding the CTranslate2 model.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The ggml file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check that the configured models load, and say what to do if they don't.
    Check,
}
