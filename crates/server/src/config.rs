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

use crate::capacity::{CALLS_PER_CORE, MAX_CALLS_LIMIT};

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
    pub cpaas: CpaasConfig,
    pub pin: PinConfig,
    pub log: LogConfig,
    pub storage: StorageConfig,
    /// How webhooks are delivered (`[webhook_delivery]`).
    pub webhook_delivery: WebhookDeliveryConfig,
    /// Endpoints of the ATS that receive webhooks (`[[webhooks]]`), beside those admins add
    /// in the pages.
    pub webhooks: Vec<WebhookConfig>,
}

/// The longest `server.drain_secs`: no interview lasts a day.
const MAX_DRAIN_SECS: u64 = 86_400;

/// The bounds of `server.lease_secs`.
const MIN_LEASE_SECS: u64 = 3;
const MAX_LEASE_SECS: u64 = 3600;

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
    /// When set, `/metrics` answers only requests with `Authorization: Bearer TOKEN`.
    pub metrics_token: String,
    /// Reverse proxies (IPs or CIDRs) whose `X-Forwarded-For` names the real client: limits
    /// per source then apply to the client, not to the proxy.
    pub trusted_proxies: Vec<String>,
    /// How long an interview waits for a candidate whose connection dropped (a reload, a
    /// network blip, a phone call that fell) to come back before it ends as abandoned.
    pub rejoin_grace_secs: u64,
    /// Interviews the machine carries at once; past it new calls are turned away (SIP 503,
    /// a spoken "call again", a "try again" page) so that the calls going on stay on time.
    /// 0: [`CALLS_PER_CORE`] per core.
    pub max_calls: usize,
    /// On SIGTERM (or Ctrl-C) the server drains: it turns new calls away and waits up to this
    /// long for the live interviews to end before it stops them. 0: stops them at once.
    pub drain_secs: u64,
    /// This node's name among the nodes sharing the database: each interview in progress is
    /// leased to the node running it. Empty: the machine's host name. No two nodes may share
    /// one (a node that starts takes what ran under its name for dead).
    pub node: String,
    /// How long a node's hold on its live interviews lasts unless renewed (it renews every
    /// third of it): when a node dies, another node finishes its interviews this long after.
    pub lease_secs: u64,
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
            metrics_token: String::new(),
            trusted_proxies: Vec::new(),
            rejoin_grace_secs: 20,
            max_calls: 0,
            drain_secs: 3600,
            node: String::new(),
            lease_secs: 30,
        }
    }
}

impl ServerConfig {
    /// The name this node leases its live interviews under: `node`, or the host name.
    pub fn node_name(&self) -> String {
        match self.node.trim() {
            "" => gethostname::gethostname().to_string_lossy().into_owned(),
            node => node.to_owned(),
        }
    }

    /// The database URL: `database`, or SQLite inside the data directory.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!("sqlite://{}", self.data_dir.join("viva.db").display())
        } else {
            self.database.clone()
        }
    }
}

/// Where interviews' recordings, videos, transcripts and reports are kept: the data directory,
/// or an S3-compatible object store that every node reaches.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `local` (the data directory) or `s3`.
    pub kind: StorageKind,
    /// The S3 endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://10.0.0.7:9000`.
    pub endpoint: String,
    /// The bucket, which must exist.
    pub bucket: String,
    /// The region the endpoint signs requests for.
    pub region: String,
    /// Put before every key, e.g. `viva/` to share a bucket.
    pub prefix: String,
    /// The access key id (`VIVA_STORAGE_ACCESS_KEY_ID` also sets it).
    pub access_key_id: String,
    /// The secret access key (`VIVA_STORAGE_SECRET_ACCESS_KEY` also sets it).
    pub secret_access_key: String,
    /// How often a live call's growing files are copied to the store: what a node that dies
    /// loses at most. 0: 5 s.
    pub upload_secs: u64,
}

/// Where interview files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The data directory of the node that ran the call.
    #[default]
    Local,
    /// An S3-compatible object store.
    S3,
}

/// Browser calls: how media reaches this server through NATs and firewalls.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
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
    /// INVITEs and REGISTERs one source address may send per second after a burst; past
    /// that it is answered 503.
    pub requests_per_second_per_source: u32,
    pub request_burst_per_source: u32,
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
            requests_per_second_per_source: 5,
            request_burst_per_source: 20,
        }
    }
}

/// CPaaS media streams (a phone call bridged in as a WebSocket).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpaasConfig {
    /// The secret a CPaaS presents when it opens a media stream (in the URL,
    /// `/media-stream/TOKEN`, or as the custom parameter `token`). Empty: generated at first
    /// start and kept in the database; `viva cpaas-url` prints the URL to give the CPaaS.
    pub stream_token: String,
}

/// How far PIN guessing on the phone can go (see docs/security.md for the bound).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinConfig {
    /// Wrong PINs one caller may enter before being locked out.
    pub failures_per_caller: u32,
    /// The first lock-out; each further wrong PIN doubles it, up to `max_lockout_secs`.
    pub lockout_secs: u64,
    pub max_lockout_secs: u64,
    /// Wrong PINs checked per hour across all callers; past it PIN entry waits for everyone.
    pub failures_per_hour: u32,
}

impl Default for PinConfig {
    fn default() -> Self {
        Self {
            failures_per_caller: 5,
            lockout_secs: 60,
            max_lockout_secs: 3600,
            failures_per_hour: 60,
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
            source_rate: viva_transport_sip::SourceRate {
                per_second: self.requests_per_second_per_source,
                burst: self.request_burst_per_source,
            },
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
    /// A Piper voice name under `models/piper/`, a path to its `.onnx` file, or `espeak-ng`
    /// for plain espeak-ng.
    pub voice: String,
    /// Disk space (MiB) for synthesized sentences, kept across restarts in
    /// `server.data_dir/voice-cache`; 0 keeps them in memory only.
    pub cache_mb: u64,
}

impl Default for TtsSettings {
    fn default() -> Self {
        Self {
            voice: "en_US-joe-medium".to_owned(),
            // About 90 minutes of the voice: the planned lines of dozens of jobs.
            cache_mb: 512,
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

/// An endpoint that receives webhooks, from the config file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where events are posted: an `http://` or `https://` URL.
    pub url: String,
    /// The signing secret, `whsec_` and the base64 of 24 to 64 random bytes.
    pub secret: String,
    /// The event types it takes; empty or missing: every type.
    #[serde(default)]
    pub events: Vec<String>,
}

/// How webhooks are delivered.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookDeliveryConfig {
    /// Seconds to wait before each retry of a failed attempt; after the last, a delivery is
    /// marked failed. The default is the Standard Webhooks schedule (5 s, 5 min, 30 min, 2 h,
    /// 5 h, 10 h, 10 h: eight attempts over about 27 hours).
    pub retry_secs: Vec<u64>,
    /// Longest wait for an endpoint's answer to one attempt.
    pub timeout_secs: u64,
}

impl Default for WebhookDeliveryConfig {
    fn default() -> Self {
        Self {
            retry_secs: vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000],
            timeout_secs: 10,
        }
    }
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

/// Environment variables that set a setting under a name of their own.
const ENV_ALIASES: &[(&str, &str, &str)] = &[("VIVA_API_KEY", "server", "api_key")];

/// Where the values of a loaded configuration came from: for error messages that say where to
/// fix a value, and for `viva config`.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The config file read, absolute; `None`: built-in defaults only.
    pub file: Option<PathBuf>,
    /// The directory relative paths of defaults and the file resolve against.
    pub base: PathBuf,
    /// `section.key` set by an environment variable, and which one.
    env: BTreeMap<String, String>,
    /// `section.key` set by a command-line flag, and which one.
    flags: BTreeMap<String, &'static str>,
}

impl Provenance {
    /// Where `field` (`section.key`) got its value, for messages: "environment variable
    /// VIVA_API_KEY", "--data-dir", "config/viva.toml", or "the built-in default".
    pub fn of(&self, field: &str) -> String {
        if let Some(flag) = self.flags.get(field) {
            return (*flag).to_owned();
        }
        if let Some(var) = self.env.get(field) {
            return format!("environment variable {var}");
        }
        match &self.file {
            Some(file) => file.display().to_string(),
            None => "the built-in default".to_owned(),
        }
    }

    /// Says what relative paths were resolved against and why: the start of a hint when a
    /// path does not exist.
    pub fn base_note(&self) -> String {
        match &self.file {
            Some(file) => format!(
                "relative paths are resolved against {}, the directory of {}",
                self.base.display(),
                file.display()
            ),
            None => format!(
                "no config file was found ({DEFAULT_CONFIG_FILE} in {}), so relative paths are \
                 resolved against that directory; start viva from the Viva checkout, or pass \
                 --config /path/to/viva/config/viva.toml",
                self.base.display()
            ),
        }
    }

    /// Records that a flag set `field` (its relative paths are then the shell's).
    pub fn set_by_flag(&mut self, field: &str, flag: &'static str) {
        self.flags.insert(field.to_owned(), flag);
    }
}

impl Config {
    /// Loads the configuration: `file` if given (it must exist), else `VIVA_CONFIG`, else
    /// [`DEFAULT_CONFIG_FILE`] under `cwd` when present; then applies `VIVA_*` variables from
    /// `env`. Relative paths from the file (and defaults) resolve against the file's
    /// directory; relative paths from the environment against `cwd`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        cwd: &Path,
    ) -> Result<(Self, Provenance), ConfigError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let chosen = file
            .map(Path::to_path_buf)
            .or_else(|| env.get(CONFIG_ENV).map(PathBuf::from));
        let (path, text) = match chosen {
            Some(path) => {
                let text = std::fs::read_to_string(cwd.join(&path)).map_err(|e| ConfigError {
                    source: path.display().to_string(),
                    field: String::new(),
                    reason: format!("cannot read the config file: {e}"),
                })?;
                (Some(cwd.join(path)), text)
            }
            None => match std::fs::read_to_string(cwd.join(DEFAULT_CONFIG_FILE)) {
                Ok(text) => (Some(cwd.join(DEFAULT_CONFIG_FILE)), text),
                Err(_) => (None, String::new()),
            },
        };
        Self::from_sources(path.as_deref(), &text, &env, cwd)
    }

    /// Parses `text` (read from `file`, if any) and applies the `VIVA_*` entries of `env`;
    /// relative paths resolve as [`Config::load`] says.
    pub fn from_sources(
        file: Option<&Path>,
        text: &str,
        env: &BTreeMap<String, String>,
        cwd: &Path,
    ) -> Result<(Self, Provenance), ConfigError> {
        let file_name = file.map_or_else(
            || "built-in defaults".to_owned(),
            |f| f.display().to_string(),
        );
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            source: file_name.clone(),
            field: String::new(),
            reason: one_line(&e.to_string()),
        })?;
        let mut provenance = Provenance {
            file: file.map(|f| std::path::absolute(f).unwrap_or_else(|_| f.to_path_buf())),
            base: file
                .and_then(Path::parent)
                .map_or_else(|| cwd.to_path_buf(), |dir| cwd.join(dir)),
            ..Provenance::default()
        };
        let settings = env.iter().filter_map(|(name, value)| {
            let setting = ENV_ALIASES
                .iter()
                .find(|(alias, _, _)| alias == name)
                .map(|(_, section, key)| ((*section).to_owned(), (*key).to_owned()))
                .or_else(|| env_setting(name))?;
            Some((name, value, setting))
        });
        for (name, value, (section, key)) in settings {
            let section_table = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(section_table) = section_table.as_table_mut() else {
                return Err(ConfigError {
                    source: file_name.clone(),
                    field: section,
                    reason: "must be a table".to_owned(),
                });
            };
            section_table.insert(key.clone(), env_value(value));
            provenance
                .env
                .insert(format!("{section}.{key}"), name.clone());
        }

        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let field = e.path().to_string();
                ConfigError {
                    source: source_of(&provenance, &field, &file_name),
                    field: if field == "." { String::new() } else { field },
                    reason: one_line(&e.into_inner().to_string()),
                }
            })?;
        config.validate().map_err(|(field, reason)| ConfigError {
            source: source_of(&provenance, field, &file_name),
            field: field.to_owned(),
            reason,
        })?;
        config.resolve_paths(&provenance, cwd);
        Ok((config, provenance))
    }

    /// Makes every relative path absolute: against the shell's directory for values from the
    /// environment or flags, against the config file's directory otherwise.
    fn resolve_paths(&mut self, provenance: &Provenance, cwd: &Path) {
        let base = |field: &str| {
            if provenance.env.contains_key(field) || provenance.flags.contains_key(field) {
                cwd.to_path_buf()
            } else {
                provenance.base.clone()
            }
        };
        let resolve = |path: &mut PathBuf, field: &str| {
            if path.is_relative() {
                *path = normalize(&base(field).join(&*path));
            }
        };
        resolve(&mut self.server.data_dir, "server.data_dir");
        resolve(&mut self.server.jobs_dir, "server.jobs_dir");
        resolve(&mut self.models.dir, "models.dir");
        for (value, field) in [
            (&mut self.stt.model, "stt.model"),
            (&mut self.tts.voice, "tts.voice"),
        ] {
            if looks_like_path(value) && Path::new(value.as_str()).is_relative() {
                *value = normalize(&base(field).join(value.as_str()))
                    .display()
                    .to_string();
            }
        }
        if let Some(file) = self.server.database.strip_prefix("sqlite://")
            && !file.is_empty()
            && !file.starts_with(':')
            && Path::new(file).is_relative()
        {
            self.server.database = format!(
                "sqlite://{}",
                normalize(&base("server.database").join(file)).display()
            );
        }
    }

    /// Applies a flag's value of `server.data_dir`: relative to the shell's directory.
    pub fn set_data_dir(&mut self, dir: &Path, cwd: &Path, provenance: &mut Provenance) {
        self.server.data_dir = normalize(&cwd.join(dir));
        provenance.set_by_flag("server.data_dir", "--data-dir");
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
        if self.server.max_calls > MAX_CALLS_LIMIT {
            return Err((
                "server.max_calls",
                format!(
                    "{} is more calls than one machine carries: at most {MAX_CALLS_LIMIT}, or 0 \
                     for {CALLS_PER_CORE} per core",
                    self.server.max_calls
                ),
            ));
        }
        if self.server.drain_secs > MAX_DRAIN_SECS {
            return Err((
                "server.drain_secs",
                format!(
                    "{} s is longer than any interview: at most {MAX_DRAIN_SECS} (a day)",
                    self.server.drain_secs
                ),
            ));
        }
        if !(MIN_LEASE_SECS..=MAX_LEASE_SECS).contains(&self.server.lease_secs) {
            return Err((
                "server.lease_secs",
                format!(
                    "{} s: must be from {MIN_LEASE_SECS} s (renewed every third of it, so a slow \
                     database does not lose a live call) to {MAX_LEASE_SECS} s (a dead node's \
                     interviews wait this long to be finished)",
                    self.server.lease_secs
                ),
            ));
        }
        if self.storage.kind == StorageKind::S3 {
            for (field, value) in [
                ("storage.endpoint", &self.storage.endpoint),
                ("storage.bucket", &self.storage.bucket),
                ("storage.access_key_id", &self.storage.access_key_id),
                ("storage.secret_access_key", &self.storage.secret_access_key),
            ] {
                if value.trim().is_empty() {
                    return Err((field, "must be set when storage.kind is \"s3\"".to_owned()));
                }
            }
            if !self.storage.endpoint.starts_with("http://")
                && !self.storage.endpoint.starts_with("https://")
            {
                return Err((
                    "storage.endpoint",
                    format!(
                        "`{}` is not an http:// or https:// URL",
                        self.storage.endpoint
                    ),
                ));
            }
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
        for proxy in &self.server.trusted_proxies {
            if parse_ip_block(proxy).is_none() {
                return Err((
                    "server.trusted_proxies",
                    format!("`{proxy}` is not an IP address or CIDR block (like 10.0.0.0/8)"),
                ));
            }
        }
        for (field, value) in [
            (
                "pin.failures_per_caller",
                u64::from(self.pin.failures_per_caller),
            ),
            ("pin.lockout_secs", self.pin.lockout_secs),
            (
                "pin.failures_per_hour",
                u64::from(self.pin.failures_per_hour),
            ),
            (
                "sip.requests_per_second_per_source",
                u64::from(self.sip.requests_per_second_per_source),
            ),
            (
                "sip.request_burst_per_source",
                u64::from(self.sip.request_burst_per_source),
            ),
        ] {
            if value == 0 {
                return Err((field, "must be at least 1".to_owned()));
            }
        }
        if self.pin.max_lockout_secs < self.pin.lockout_secs {
            return Err((
                "pin.max_lockout_secs",
                format!(
                    "must be at least pin.lockout_secs ({})",
                    self.pin.lockout_secs
                ),
            ));
        }
        if self.server.database.starts_with("mysql") {
            return Err((
                "server.database",
                "only sqlite:// and postgres:// databases are supported".to_owned(),
            ));
        }
        if self.webhook_delivery.timeout_secs == 0 {
            return Err((
                "webhook_delivery.timeout_secs",
                "must be at least 1".to_owned(),
            ));
        }
        if let Some(wait) = self
            .webhook_delivery
            .retry_secs
            .iter()
            .find(|&&wait| wait == 0 || wait > MAX_RETRY_SECS)
        {
            return Err((
                "webhook_delivery.retry_secs",
                format!("{wait} is not a wait between 1 and {MAX_RETRY_SECS} seconds"),
            ));
        }
        let mut urls = std::collections::HashSet::new();
        for (n, hook) in self.webhooks.iter().enumerate() {
            let entry = format!("entry {} ({})", n + 1, hook.url);
            let checks = [
                crate::webhooks::check_url(&hook.url).map(|_| ()),
                crate::webhooks::check_secret(&hook.secret).map(|_| ()),
                crate::webhooks::check_events(&hook.events).map(|_| ()),
            ];
            if let Some(Err(reason)) = checks.into_iter().find(Result::is_err) {
                return Err(("webhooks", format!("{entry}: {reason}")));
            }
            if !urls.insert(hook.url.as_str()) {
                return Err((
                    "webhooks",
                    format!("{entry}: the URL is already configured by an earlier entry"),
                ));
            }
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

    /// The end-of-turn model (Smart Turn v3) `scripts/setup` installs.
    pub fn turn_model_path(&self) -> PathBuf {
        self.models
            .dir
            .join("smart-turn")
            .join("smart-turn-v3.2-cpu.onnx")
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
    if looks_like_path(value) {
        PathBuf::from(value)
    } else {
        dir.join(file_name(value))
    }
}

/// An IP address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
pub fn parse_ip_block(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// The longest wait between two webhook attempts: a day.
const MAX_RETRY_SECS: u64 = 86_400;

/// Settings that hold secrets: `viva config` says where they are set, never what they are.
const SECRETS: &[(&str, &str)] = &[
    ("server", "api_key"),
    ("server", "metrics_token"),
    ("cpaas", "stream_token"),
    ("llm", "api_key"),
    ("storage", "secret_access_key"),
];

impl Config {
    /// The effective configuration as TOML for `viva config`: every value, with secrets
    /// replaced by where they are set (`api_key = "set (from VIVA_API_KEY)"`).
    pub fn to_masked_toml(&self, provenance: &Provenance) -> String {
        let Ok(toml::Value::Table(mut table)) = toml::Value::try_from(self) else {
            return String::new();
        };
        for (section, key) in SECRETS {
            let field = format!("{section}.{key}");
            if let Some(value) = table
                .get_mut(*section)
                .and_then(toml::Value::as_table_mut)
                .and_then(|s| s.get_mut(*key))
                && value.as_str().is_some_and(|v| !v.is_empty())
            {
                let origin = match provenance.env.get(&field) {
                    Some(var) => var.clone(),
                    None => provenance.of(&field),
                };
                *value = toml::Value::String(format!("set (from {origin})"));
            }
        }
        let masked = |value: &mut toml::Value, key: &str| {
            if let Some(entry) = value.as_table_mut().and_then(|t| t.get_mut(key)) {
                *entry = toml::Value::String("set".to_owned());
            }
        };
        if let Some(trunks) = table
            .get_mut("sip")
            .and_then(|s| s.get_mut("trunks"))
            .and_then(toml::Value::as_array_mut)
        {
            trunks
                .iter_mut()
                .for_each(|trunk| masked(trunk, "password"));
        }
        if let Some(hooks) = table
            .get_mut("webhooks")
            .and_then(toml::Value::as_array_mut)
        {
            hooks.iter_mut().for_each(|hook| masked(hook, "secret"));
        }
        if let Some(servers) = table
            .get_mut("webrtc")
            .and_then(|s| s.get_mut("ice_servers"))
            .and_then(toml::Value::as_array_mut)
        {
            servers
                .iter_mut()
                .for_each(|server| masked(server, "credential"));
        }
        toml::to_string_pretty(&table).unwrap_or_default()
    }
}

/// `a/b/../c` as `a/c`: paths in messages read as what they point to. Lexical, like a shell's
/// `cd ..`: config paths name directories the operator laid out, not symlink tricks.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether a model setting names a file rather than a model under `models.dir`.
fn looks_like_path(value: &str) -> bool {
    value.contains('/') || value.ends_with(".bin") || value.ends_with(".onnx")
}

/// The file or environment variable a bad value of `field` came from.
fn source_of(provenance: &Provenance, field: &str, file_name: &str) -> String {
    provenance.env.get(field).map_or_else(
        || file_name.to_owned(),
        |var| format!("environment variable {var}"),
    )
}

/// `VIVA_STT_THREADS` -> (`stt`, `threads`), for the sections this config has (a section's
/// name may have an underscore: `VIVA_WEBHOOK_DELIVERY_RETRY_SECS`).
fn env_setting(name: &str) -> Option<(String, String)> {
    const SECTIONS: &[&str] = &[
        "server",
        "models",
        "stt",
        "tts",
        "llm",
        "webrtc",
        "sip",
        "cpaas",
        "pin",
        "log",
        "storage",
        "webhook_delivery",
    ];
    let rest = name.strip_prefix("VIVA_")?.to_ascii_lowercase();
    SECTIONS.iter().find_map(|section| {
        let key = rest.strip_prefix(section)?.strip_prefix('_')?;
        (!key.is_empty()).then(|| ((*section).to_owned(), key.to_owned()))
    })
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

    /// Loads `text` as the file `/srv/viva/config/viva.toml`, started from `/home/ops`.
    fn load(text: &str, vars: &[(&str, &str)]) -> Result<(Config, Provenance), ConfigError> {
        Config::from_sources(
            Some(Path::new("/srv/viva/config/viva.toml")),
            text,
            &env(vars),
            Path::new("/home/ops"),
        )
    }

    #[test]
    fn shipped_config_file_matches_the_built_in_defaults() {
        let text = include_str!("../../../config/viva.toml");
        let repo = Path::new("/srv/viva");
        let (shipped, _) = Config::from_sources(
            Some(&repo.join("config/viva.toml")),
            text,
            &env(&[]),
            Path::new("/elsewhere"),
        )
        .unwrap();
        // The defaults without a file resolve against the directory viva starts in: the
        // checkout, as scripts/run does it.
        let (defaults, provenance) = Config::from_sources(None, "", &env(&[]), repo).unwrap();
        assert_eq!(shipped, defaults);
        assert_eq!(provenance.of("models.dir"), "the built-in default");
        assert_eq!(shipped.models.dir, Path::new("/srv/viva/models"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "[stt]\nthreads = 1\n";
        let (config, provenance) = load(
            text,
            &[
                ("VIVA_STT_THREADS", "3"),
                ("VIVA_SERVER_DATA_DIR", "/var/lib/viva"),
                ("VIVA_SERVER_HTTP", "0.0.0.0:9000"),
                ("VIVA_API_KEY", "k3y"),
                ("VIVA_TEST_SOMETHING", "ignored: not a config section"),
            ],
        )
        .unwrap();
        assert_eq!(config.stt.threads, 3);
        assert_eq!(config.server.data_dir, PathBuf::from("/var/lib/viva"));
        assert_eq!(config.server.http.port(), 9000);
        assert_eq!(
            config.server.api_key, "k3y",
            "VIVA_API_KEY sets server.api_key"
        );
        assert_eq!(
            provenance.of("server.api_key"),
            "environment variable VIVA_API_KEY"
        );
        assert_eq!(
            provenance.of("stt.threads"),
            "environment variable VIVA_STT_THREADS"
        );
        assert_eq!(provenance.of("stt.model"), "/srv/viva/config/viva.toml");
    }

    #[test]
    fn relative_paths_resolve_against_the_file_or_the_shell() {
        let text = "[server]\ndata_dir = \"../data\"\njobs_dir = \"jobs\"\n\
                    database = \"sqlite://db/viva.db\"\n[stt]\nmodel = \"m/ggml-x.bin\"\n";
        let (config, _) = load(text, &[("VIVA_MODELS_DIR", "models")]).unwrap();
        assert_eq!(config.server.data_dir, Path::new("/srv/viva/data"));
        assert_eq!(config.server.jobs_dir, Path::new("/srv/viva/config/jobs"));
        assert_eq!(
            config.server.database,
            "sqlite:///srv/viva/config/db/viva.db"
        );
        assert_eq!(config.stt.model, "/srv/viva/config/m/ggml-x.bin");
        // From the environment: the shell's directory, as a user typing it expects.
        assert_eq!(config.models.dir, Path::new("/home/ops/models"));
        assert_eq!(config.tts.voice, "en_US-joe-medium", "a name stays a name");
        let mut config = config;
        let (_, mut provenance) = load("", &[]).unwrap();
        config.set_data_dir(Path::new("d"), Path::new("/home/ops"), &mut provenance);
        assert_eq!(config.server.data_dir, Path::new("/home/ops/d"));
        assert_eq!(provenance.of("server.data_dir"), "--data-dir");
    }

    #[test]
    fn secrets_are_shown_as_where_they_are_set() {
        let text = "[llm]\napi_key = \"sk-secret\"\n[[sip.trunks]]\nname = \"t\"\n\
                    address = \"192.0.2.1\"\npassword = \"pw-secret\"\n";
        let (config, provenance) = load(text, &[("VIVA_API_KEY", "api-secret")]).unwrap();
        let shown = config.to_masked_toml(&provenance);
        for secret in ["sk-secret", "pw-secret", "api-secret"] {
            assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
        }
        assert!(
            shown.contains("api_key = \"set (from VIVA_API_KEY)\""),
            "{shown}"
        );
        assert!(
            shown.contains("api_key = \"set (from /srv/viva/config/viva.toml)\""),
            "{shown}"
        );
        assert!(shown.contains("password = \"set\""), "{shown}");
        assert!(
            shown.contains("metrics_token = \"\""),
            "unset stays empty: {shown}"
        );
        let reparsed: toml::Table = toml::from_str(&shown).unwrap();
        assert!(reparsed.contains_key("pin"));
    }

    #[test]
    fn errors_name_file_field_and_reason() {
        let err = load("[stt]\nthreads = \"many\"\n", &[]).unwrap_err();
        assert_eq!(err.source, "/srv/viva/config/viva.toml");
        assert_eq!(err.field, "stt.threads");
        assert!(err.reason.contains("invalid type"), "{err}");

        let err = load("[stt]\nthredas = 2\n", &[]).unwrap_err();
        assert_eq!(err.field, "stt.thredas");
        assert!(err.reason.contains("unknown field"), "{err}");

        let err = load("[stt\n", &[]).unwrap_err();
        assert!(err.reason.contains("line 1"), "{err}");

        let err = load("", &[("VIVA_SERVER_HTTP", "nowhere")]).unwrap_err();
        assert_eq!(err.source, "environment variable VIVA_SERVER_HTTP");
        assert_eq!(err.field, "server.http");

        let err = load("[server]\nmax_calls = -1\n", &[]).unwrap_err();
        assert_eq!(err.field, "server.max_calls");
        assert!(err.reason.contains("invalid value"), "{err}");
        let err = load("", &[("VIVA_SERVER_MAX_CALLS", "16000")]).unwrap_err();
        assert_eq!(err.source, "environment variable VIVA_SERVER_MAX_CALLS");
        assert_eq!(err.field, "server.max_calls");
        assert!(err.reason.contains("at most 1000"), "{err}");
        let (config, _) = load("[server]\nmax_calls = 16\n", &[]).unwrap();
        assert_eq!(config.server.max_calls, 16);
        let err = load("[server]\ndrain_secs = 100000\n", &[]).unwrap_err();
        assert_eq!(err.field, "server.drain_secs");
        assert!(err.reason.contains("at most 86400"), "{err}");
        let (config, _) = load("", &[("VIVA_SERVER_DRAIN_SECS", "0")]).unwrap();
        assert_eq!(config.server.drain_secs, 0);
        let err = load(
            "[storage]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:9000\"\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(err.field, "storage.bucket");
        let err = load("[storage]\nkind = \"tape\"\n", &[]).unwrap_err();
        assert_eq!(err.field, "storage.kind");
        let err = load("[server]\nlease_secs = 1\n", &[]).unwrap_err();
        assert_eq!(err.field, "server.lease_secs");
        assert!(err.reason.contains("from 3 s"), "{err}");
        let (config, _) = load("", &[("VIVA_STORAGE_UPLOAD_SECS", "2")]).unwrap();
        assert_eq!(config.storage.upload_secs, 2);
        let (config, _) = load("", &[("VIVA_SERVER_NODE", "node-b")]).unwrap();
        assert_eq!(config.server.node_name(), "node-b");
        let (config, _) = load("", &[]).unwrap();
        assert!(!config.server.node_name().is_empty());

        let err = load("", &[("VIVA_STT_LANGUAGE", "english")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable VIVA_STT_LANGUAGE: stt.language: `english` is not a two-letter ISO 639-1 code (like `en`) or `auto`"
        );

        let err = load("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", &[]).unwrap_err();
        assert_eq!(err.field, "server.trusted_proxies");
        let err = load("[pin]\nfailures_per_hour = 0\n", &[]).unwrap_err();
        assert_eq!(err.field, "pin.failures_per_hour");
    }

    #[test]
    fn webhooks_are_checked_and_their_secrets_masked() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let text = format!(
            "[[webhooks]]\nurl = \"https://ats.example/hooks\"\nsecret = \"{secret}\"\n\
             events = [\"interview.completed\"]\n[[webhooks]]\nurl = \"http://10.0.0.5/v\"\n\
             secret = \"{secret}\"\n"
        );
        let (config, provenance) =
            load(&text, &[("VIVA_WEBHOOK_DELIVERY_RETRY_SECS", "[1, 2]")]).unwrap();
        assert_eq!(config.webhooks.len(), 2);
        assert_eq!(config.webhooks[0].events, ["interview.completed"]);
        assert!(config.webhooks[1].events.is_empty(), "missing: every type");
        assert_eq!(config.webhook_delivery.retry_secs, [1, 2]);
        assert_eq!(config.webhook_delivery.timeout_secs, 10);
        let shown = config.to_masked_toml(&provenance);
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("[[webhooks]]"), "{shown}");

        for (bad, reason) in [
            ("url = \"ftp://ats.example/\"", "http:// or https://"),
            (
                "url = \"https://a.example/\"\nevents = [\"interview.done\"]",
                "interview.done",
            ),
            (
                "url = \"https://a.example/\"\nsecret = \"whsec_c2hvcnQ=\"",
                "24 to 64 bytes",
            ),
        ] {
            let text = format!("[[webhooks]]\nsecret = \"{secret}\"\n{bad}\n");
            let text = if bad.contains("secret") {
                format!("[[webhooks]]\n{bad}\n")
            } else {
                text
            };
            let err = load(&text, &[]).unwrap_err();
            assert_eq!(err.source, "/srv/viva/config/viva.toml", "{err}");
            assert_eq!(err.field, "webhooks", "{err}");
            assert!(err.reason.starts_with("entry 1 ("), "{err}");
            assert!(err.reason.contains(reason), "{bad}: {err}");
        }
        let twice = format!(
            "[[webhooks]]\nurl = \"https://a.example/\"\nsecret = \"{secret}\"\n\
             [[webhooks]]\nurl = \"https://a.example/\"\nsecret = \"{secret}\"\n"
        );
        let err = load(&twice, &[]).unwrap_err();
        assert!(
            err.reason.contains("entry 2") && err.reason.contains("already"),
            "{err}"
        );
        let err = load("[[webhooks]]\nurl = \"https://a.example/\"\n", &[]).unwrap_err();
        assert_eq!(err.field, "webhooks[0]", "{err}");
        assert!(err.reason.contains("secret"), "{err}");
        let err = load("", &[("VIVA_WEBHOOK_DELIVERY_RETRY_SECS", "[5, 0]")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable VIVA_WEBHOOK_DELIVERY_RETRY_SECS: webhook_delivery.retry_secs: \
             0 is not a wait between 1 and 86400 seconds"
        );
    }

    #[test]
    fn model_names_resolve_under_the_models_dir() {
        let (config, _) = load("", &[]).unwrap();
        assert_eq!(
            config.stt_model_path(),
            PathBuf::from("/srv/viva/config/models/whisper/ggml-tiny.en.bin")
        );
        assert_eq!(
            config.tts_voice_path(),
            PathBuf::from("/srv/viva/config/models/piper/en_US-joe-medium.onnx")
        );
        let (custom, _) = load("[stt]\nmodel = \"/opt/m/ggml-base.bin\"\n", &[]).unwrap();
        assert_eq!(
            custom.stt_model_path(),
            PathBuf::from("/opt/m/ggml-base.bin")
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(
            Some(Path::new("/nonexistent/viva.toml")),
            [],
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(err.source, "/nonexistent/viva.toml");
        assert!(err.reason.contains("cannot read"));
    }
}
