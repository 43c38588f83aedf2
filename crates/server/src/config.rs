//! The server configuration: built-in defaults, then a TOML file, then `VIVA_*` environment
//! variables, then command-line flags (each layer overrides the one before).
//!
//! Every setting `section.key` can be set from the environment as `VIVA_SECTION_KEY`
//! (e.g. `stt.threads` as `VIVA_STT_THREADS`). Errors name where the bad value came from (the
//! file or the variable), the setting, and why it was refused.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/viva.toml";
/// Environment variable naming the config file (like `--config`).
pub const CONFIG_ENV: &str = "VIVA_CONFIG";

/// Everything the `viva` binary can be configured with.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub models: ModelsConfig,
    pub stt: SttSettings,
    pub tts: TtsSettings,
    pub llm: LlmSettings,
    pub webrtc: WebRtcConfig,
    pub sip: SipConfig,
    pub log: LogConfig,
}

/// Where the server listens and keeps its data.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Database, recordings and transcripts live here.
    pub data_dir: PathBuf,
    /// `sqlite://FILE` or `postgres://...`; empty: SQLite in `data_dir/viva.db`.
    pub database: String,
    /// Base of the links candidates receive, as they reach this server (e.g. behind a
    /// reverse proxy); empty: `http://` and the listen address.
    pub public_url: String,
    /// The recruiter API key (`VIVA_API_KEY` also sets it); empty: one is generated at first
    /// start and kept in the database (`viva api-key` prints it).
    pub api_key: String,
    /// Job files (`NAME.toml`) interviews are created from.
    pub jobs_dir: PathBuf,
    /// How long a candidate link stays valid unless the API request says otherwise.
    pub link_ttl_hours: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database: String::new(),
            public_url: String::new(),
            api_key: String::new(),
            jobs_dir: PathBuf::from("config/jobs"),
            link_ttl_hours: 72,
        }
    }
}

impl ServerConfig {
    /// The database URL: `database`, or SQLite inside the data directory.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!("sqlite://{}", self.data_dir.join("viva.db").display())
        } else {
            self.database.clone()
        }
    }
}

/// Browser calls: how media reaches this server through NATs and firewalls.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    /// The public address announced to browsers when the server sits behind a 1:1 NAT
    /// (a cloud VM's elastic IP); unset: the host's own addresses.
    pub public_ip: Option<IpAddr>,
    /// UDP ports media may use (inclusive); 0 and 0: any port the system gives.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// STUN/TURN servers for the server and the page, e.g.
    /// `[{ urls = ["stun:stun.example.org:3478"] }]`. None by default: nothing leaves the
    /// machine unless configured.
    pub ice_servers: Vec<IceServerConfig>,
    /// How long a call waits for a candidate whose connection dropped (a reload, a network
    /// blip) before the interview ends as abandoned.
    pub rejoin_grace_secs: u64,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            public_ip: None,
            udp_port_min: 0,
            udp_port_max: 0,
            ice_servers: Vec::new(),
            rejoin_grace_secs: 20,
        }
    }
}

/// Phone calls over SIP.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Answer and place phone calls at all.
    pub enabled: bool,
    /// SIP over UDP and TCP listen addresses (`--sip ADDR` sets both).
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// The public address put in SIP headers and SDP when behind a 1:1 NAT.
    pub public_ip: Option<IpAddr>,
    /// UDP ports for RTP media, inclusive.
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Longest phone interview; the call is ended politely after it.
    pub max_call_minutes: u64,
    /// How long an outgoing call may ring before it counts as not answered.
    pub ring_timeout_secs: u64,
    /// Numbers (or SIP user parts) callers dial, each selecting a job: a PIN then only opens
    /// interviews for that job. Example: `numbers = { "+15550100" = "backend-developer" }`.
    pub numbers: BTreeMap<String, String>,
    /// SIP trunks calls come from and go to. With none, only calls from this machine are
    /// accepted (for trying it out) and `dial` calls SIP URIs directly.
    pub trunks: Vec<TrunkConfig>,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            public_ip: None,
            rtp_port_min: 20_000,
            rtp_port_max: 20_999,
            max_call_minutes: 60,
            ring_timeout_secs: 45,
            numbers: BTreeMap::new(),
            trunks: Vec::new(),
        }
    }
}

/// A SIP trunk: a carrier or PBX that sends and takes calls.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    /// `host[:port]` of the trunk's SIP server.
    pub address: String,
    /// `udp` or `tcp`.
    #[serde(default = "default_trunk_transport")]
    pub transport: String,
    /// Addresses (IPs or CIDRs) the trunk calls from; calls from them need no password.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Digest credentials, for calls in and out and registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Register with the trunk (and keep the registration fresh).
    #[serde(default)]
    pub register: bool,
    #[serde(default = "default_register_expires")]
    pub register_expires_secs: u32,
}

impl SipConfig {
    /// The transport's view of these settings.
    pub fn settings(&self) -> viva_transport_sip::SipSettings {
        viva_transport_sip::SipSettings {
            udp: self.udp,
            tcp: self.tcp,
            public_ip: self.public_ip,
            rtp_ports: (self.rtp_port_min, self.rtp_port_max),
            trunks: self
                .trunks
                .iter()
                .map(|t| viva_transport_sip::Trunk {
                    name: t.name.clone(),
                    address: t.address.clone(),
                    transport: if t.transport == "tcp" {
                        viva_transport_sip::SipTransport::Tcp
                    } else {
                        viva_transport_sip::SipTransport::Udp
                    },
                    allow: t.allow.clone(),
                    username: t.username.clone(),
                    password: t.password.clone(),
                    register: t.register,
                    register_expires_secs: t.register_expires_secs,
                })
                .collect(),
            max_call: std::time::Duration::from_secs(self.max_call_minutes * 60),
            ring_timeout: std::time::Duration::from_secs(self.ring_timeout_secs),
        }
    }
}

fn default_trunk_transport() -> String {
    "udp".to_owned()
}

fn default_register_expires() -> u32 {
    3600
}

/// One STUN or TURN server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IceServerConfig {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl WebRtcConfig {
    /// The transport's view of these settings.
    pub fn settings(&self) -> viva_transport_webrtc::WebRtcSettings {
        viva_transport_webrtc::WebRtcSettings {
            public_ip: self.public_ip,
            udp_ports: (self.udp_port_min != 0).then_some((self.udp_port_min, self.udp_port_max)),
            ice_servers: self
                .ice_servers
                .iter()
                .map(|s| viva_transport_webrtc::IceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone(),
                    credential: s.credential.clone(),
                })
                .collect(),
        }
    }
}

/// Where `scripts/setup` put the model files.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    pub dir: PathBuf,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("models"),
        }
    }
}

/// Speech-to-text settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SttSettings {
    /// A model name (`tiny.en`, `base`) under `models/whisper/`, or a path to a ggml file.
    pub model: String,
    /// ISO 639-1 language code, or `auto` to detect (multilingual models only).
    pub language: String,
    /// Concurrent transcriptions; 0 sizes it to the machine.
    pub workers: usize,
    /// Most threads per transcription; 0 sizes it to the machine.
    pub threads: usize,
    /// Encode only the audio context an utterance needs (much faster on short utterances).
    pub trim_context: bool,
}

impl Default for SttSettings {
    fn default() -> Self {
        Self {
            model: "tiny.en".to_owned(),
            language: "en".to_owned(),
            workers: 0,
            threads: 0,
            trim_context: true,
        }
    }
}

/// Text-to-speech settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsSettings {
    /// A Piper voice name under `models/piper/`, or a path to its `.onnx` file.
    pub voice: String,
    /// Threads per synthesis; 0 sizes it to the machine.
    pub threads: usize,
}

impl Default for TtsSettings {
    fn default() -> Self {
        Self {
            voice: "en_US-joe-medium".to_owned(),
            threads: 0,
        }
    }
}

/// The optional language model the interviewer may consult for follow-up questions.
/// Off unless `url` is set: nothing leaves the machine by default.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSettings {
    /// OpenAI-compatible API base, including the version (`http://127.0.0.1:8081/v1`).
    pub url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Longest wait for one decision; then the built-in policy decides, unnoticed by the candidate.
    pub timeout_ms: u64,
    /// Sent as a bearer token when set.
    pub api_key: String,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: a level (`info`) or directives (`info,viva_speech=debug`).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration problem: where it is, which setting, and why.
#[derive(Debug, PartialEq)]
pub struct ConfigError {
    /// The file or environment variable the bad value came from.
    pub source: String,
    /// The setting, as `section.key` (empty for file-level problems).
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.source, self.field, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads the configuration: `file` if given (it must exist), else `VIVA_CONFIG`, else
    /// [`DEFAULT_CONFIG_FILE`] when present; then applies `VIVA_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let chosen = file
            .map(Path::to_path_buf)
            .or_else(|| env.get(CONFIG_ENV).map(PathBuf::from));
        let (path, text) = match chosen {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                    source: path.display().to_string(),
                    field: String::new(),
                    reason: format!("cannot read the config file: {e}"),
                })?;
                (path, text)
            }
            None => match std::fs::read_to_string(DEFAULT_CONFIG_FILE) {
                Ok(text) => (PathBuf::from(DEFAULT_CONFIG_FILE), text),
                Err(_) => (PathBuf::from("built-in defaults"), String::new()),
            },
        };
        Self::from_sources(&path.display().to_string(), &text, &env)
    }

    /// Parses `text` (from `file_name`) and applies the `VIVA_*` entries of `env`.
    pub fn from_sources(
        file_name: &str,
        text: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            source: file_name.to_owned(),
            field: String::new(),
            reason: one_line(&e.to_string()),
        })?;
        let mut origins = BTreeMap::new();
        for (name, value) in env {
            if let Some((section, key)) = env_setting(name) {
                let section_table = table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(section_table) = section_table.as_table_mut() else {
                    return Err(ConfigError {
                        source: file_name.to_owned(),
                        field: section,
                        reason: "must be a table".to_owned(),
                    });
                };
                section_table.insert(key.clone(), env_value(value));
                origins.insert(format!("{section}.{key}"), name.clone());
            }
        }

        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let field = e.path().to_string();
                let source = origins.get(&field).map_or_else(
                    || file_name.to_owned(),
                    |var| format!("environment variable {var}"),
                );
                ConfigError {
                    source,
                    field: if field == "." { String::new() } else { field },
                    reason: one_line(&e.into_inner().to_string()),
                }
            })?;
        config.validate().map_err(|(field, reason)| ConfigError {
            source: origins.get(field).map_or_else(
                || file_name.to_owned(),
                |var| format!("environment variable {var}"),
            ),
            field: field.to_owned(),
            reason,
        })?;
        Ok(config)
    }

    /// Checks the rules types cannot express.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let language = &self.stt.language;
        if language != "auto"
            && !(language.len() == 2 && language.chars().all(|c| c.is_ascii_lowercase()))
        {
            return Err((
                "stt.language",
                format!("`{language}` is not a two-letter ISO 639-1 code (like `en`) or `auto`"),
            ));
        }
        if self.stt.model.trim().is_empty() {
            return Err(("stt.model", "must name a model or a model file".to_owned()));
        }
        if self.tts.voice.trim().is_empty() {
            return Err(("tts.voice", "must name a voice or a voice file".to_owned()));
        }
        if !self.llm.url.is_empty() && self.llm.timeout_ms == 0 {
            return Err((
                "llm.timeout_ms",
                "must be set (in milliseconds) when llm.url is set".to_owned(),
            ));
        }
        if self.server.link_ttl_hours == 0 {
            return Err(("server.link_ttl_hours", "must be at least 1".to_owned()));
        }
        let (min, max) = (self.webrtc.udp_port_min, self.webrtc.udp_port_max);
        if (min == 0) != (max == 0) || min > max {
            return Err((
                "webrtc.udp_port_min",
                format!(
                    "udp_port_min ({min}) and udp_port_max ({max}) must both be 0 (any port) or form a range"
                ),
            ));
        }
        let (min, max) = (self.sip.rtp_port_min, self.sip.rtp_port_max);
        if min == 0 || min > max {
            return Err((
                "sip.rtp_port_min",
                format!(
                    "rtp_port_min ({min}) and rtp_port_max ({max}) must form a range of UDP ports"
                ),
            ));
        }
        for trunk in &self.sip.trunks {
            if trunk.transport != "udp" && trunk.transport != "tcp" {
                return Err((
                    "sip.trunks",
                    format!(
                        "trunk `{}`: transport must be `udp` or `tcp`, not `{}`",
                        trunk.name, trunk.transport
                    ),
                ));
            }
            if trunk.register && (trunk.username.is_none() || trunk.password.is_none()) {
                return Err((
                    "sip.trunks",
                    format!(
                        "trunk `{}`: register = true needs username and password",
                        trunk.name
                    ),
                ));
            }
        }
        if self.server.database.starts_with("mysql") {
            return Err((
                "server.database",
                "only sqlite:// and postgres:// databases are supported".to_owned(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err((
                "log.level",
                format!(
                    "`{}` is not a level (error, warn, info, debug, trace) or filter",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }

    /// The whisper model file `stt.model` refers to.
    pub fn stt_model_path(&self) -> PathBuf {
        model_path(&self.stt.model, &self.models.dir.join("whisper"), |name| {
            format!("ggml-{name}.bin")
        })
    }

    /// The Piper voice file `tts.voice` refers to.
    pub fn tts_voice_path(&self) -> PathBuf {
        model_path(&self.tts.voice, &self.models.dir.join("piper"), |name| {
            format!("{name}.onnx")
        })
    }

    /// The ONNX Runtime shared library `scripts/setup` installs.
    pub fn onnxruntime_path(&self) -> PathBuf {
        self.models
            .dir
            .join("onnxruntime")
            .join("libonnxruntime.so")
    }
}

/// A name resolves inside `dir`; anything that looks like a path is used as it is.
fn model_path(value: &str, dir: &Path, file_name: impl Fn(&str) -> String) -> PathBuf {
    if value.contains('/') || value.ends_with(".bin") || value.ends_with(".onnx") {
        PathBuf::from(value)
    } else {
        dir.join(file_name(value))
    }
}

/// `VIVA_STT_THREADS` -> (`stt`, `threads`), for the sections this config has.
fn env_setting(name: &str) -> Option<(String, String)> {
    const SECTIONS: &[&str] = &[
        "server", "models", "stt", "tts", "llm", "webrtc", "sip", "log",
    ];
    let rest = name.strip_prefix("VIVA_")?.to_ascii_lowercase();
    let (section, key) = rest.split_once('_')?;
    SECTIONS
        .contains(&section)
        .then(|| (section.to_owned(), key.to_owned()))
}

/// Environment values are TOML literals when they parse as one (`4`, `true`), else strings.
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_config_file_matches_the_built_in_defaults() {
        let text = include_str!("../../../config/viva.toml");
        let config = Config::from_sources("config/viva.toml", text, &env(&[])).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "[stt]\nthreads = 1\n";
        let config = Config::from_sources(
            "f.toml",
            text,
            &env(&[
                ("VIVA_STT_THREADS", "3"),
                ("VIVA_SERVER_DATA_DIR", "/var/lib/viva"),
                ("VIVA_SERVER_HTTP", "0.0.0.0:9000"),
                ("VIVA_TEST_SOMETHING", "ignored: not a config section"),
            ]),
        )
        .unwrap();
        assert_eq!(config.stt.threads, 3);
        assert_eq!(config.server.data_dir, PathBuf::from("/var/lib/viva"));
        assert_eq!(config.server.http.port(), 9000);
    }

    #[test]
    fn errors_name_file_field_and_reason() {
        let err = Config::from_sources("viva.toml", "[stt]\nthreads = \"many\"\n", &env(&[]))
            .unwrap_err();
        assert_eq!(err.source, "viva.toml");
        assert_eq!(err.field, "stt.threads");
        assert!(err.reason.contains("invalid type"), "{err}");

        let err = Config::from_sources("viva.toml", "[stt]\nthredas = 2\n", &env(&[])).unwrap_err();
        assert_eq!(err.field, "stt.thredas");
        assert!(err.reason.contains("unknown field"), "{err}");

        let err = Config::from_sources("viva.toml", "[stt\n", &env(&[])).unwrap_err();
        assert!(err.reason.contains("line 1"), "{err}");

        let err = Config::from_sources("viva.toml", "", &env(&[("VIVA_SERVER_HTTP", "nowhere")]))
            .unwrap_err();
        assert_eq!(err.source, "environment variable VIVA_SERVER_HTTP");
        assert_eq!(err.field, "server.http");

        let err = Config::from_sources("viva.toml", "", &env(&[("VIVA_STT_LANGUAGE", "english")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable VIVA_STT_LANGUAGE: stt.language: `english` is not a two-letter ISO 639-1 code (like `en`) or `auto`"
        );
    }

    #[test]
    fn model_names_resolve_under_the_models_dir() {
        let config = Config::default();
        assert_eq!(
            config.stt_model_path(),
            PathBuf::from("models/whisper/ggml-tiny.en.bin")
        );
        assert_eq!(
            config.tts_voice_path(),
            PathBuf::from("models/piper/en_US-joe-medium.onnx")
        );
        let mut custom = Config::default();
        custom.stt.model = "/opt/m/ggml-base.bin".to_owned();
        assert_eq!(
            custom.stt_model_path(),
            PathBuf::from("/opt/m/ggml-base.bin")
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/viva.toml")), []).unwrap_err();
        assert_eq!(err.source, "/nonexistent/viva.toml");
        assert!(err.reason.contains("cannot read"));
    }
}
