//! `viva serve`: the interview server. It loads the speech models once, opens the database,
//! and serves the recruiter API, the candidates' join pages and their browser calls, and
//! health checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, response::Html, routing::get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use viva_call::SpeechEngines;
use viva_interview::embedding::Embedder;
use viva_store::{Interview, Store};

use crate::attempts::{AttemptPolicy, Attempts};
use crate::config::{Config, Provenance, parse_ip_block};
use crate::engines;
use crate::links::LinkSigner;
use crate::live::LiveInterviews;
use crate::metrics::{Metrics, Secret};
use crate::peer::{ClientAddr, TrustedProxies};
use crate::phone::Prompts;
use crate::pins::PinGate;
use viva_transport_sip::SipEndpoint;

/// Settings names in the database.
const API_KEY_SETTING: &str = "api_key";
const LINK_KEY_SETTING: &str = "link_signing_key";
const STREAM_TOKEN_SETTING: &str = "cpaas_stream_token";

/// Wrong API keys and CPaaS tokens per source address: a few for typos, then a wait that
/// doubles. The keys are 256-bit random, so this bounds the load of a guessing flood rather
/// than the odds (which are nil).
const CREDENTIAL_POLICY: AttemptPolicy = AttemptPolicy {
    free_failures: 10,
    lockout: std::time::Duration::from_secs(60),
    max_lockout: std::time::Duration::from_secs(3600),
    forget_after: std::time::Duration::from_secs(3600),
    global: None,
    max_callers: 10_000,
};

/// How long a stopping server waits for live interviews to write their reports.
const SHUTDOWN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(15);

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub links: LinkSigner,
    pub live: Arc<LiveInterviews>,
    pub metrics: Arc<Metrics>,
    /// What callers hear before their interview starts.
    pub prompts: Arc<Prompts>,
    /// Phone calls in and out; None when `sip.enabled` is off.
    pub sip: Option<SipEndpoint>,
    pub config: Arc<Config>,
    pub api_key: Arc<str>,
    /// The secret CPaaS media streams must present.
    pub stream_token: Arc<str>,
    /// Wrong API keys and stream tokens, per source address.
    pub credentials: Arc<Attempts>,
    /// Phone PIN checks, with their guessing limits.
    pub pins: Arc<PinGate>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub proxies: TrustedProxies,
    /// Base of candidate links, without a trailing slash.
    pub public_url: Arc<str>,
    /// Numbers the signaling connections, so a live call knows which one carries it.
    pub next_connection: Arc<AtomicU64>,
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.proxies.clone()
    }
}

/// Why a presented API key or stream token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRefusal {
    /// It was wrong.
    Wrong,
    /// Too many wrong ones came from this address: not even checked.
    LockedOut(crate::attempts::Lockout),
}

impl AppState {
    /// Checks a secret `client` presented (an API key, a stream token) against `expected`,
    /// in constant time, counting wrong ones per address.
    pub fn verify_credential(
        &self,
        client: std::net::IpAddr,
        presented: &str,
        expected: &str,
    ) -> Result<(), CredentialRefusal> {
        let attempt = self
            .credentials
            .begin(&client.to_string())
            .map_err(|lockout| {
                self.metrics.refused(Secret::Credential, lockout.scope);
                CredentialRefusal::LockedOut(lockout)
            })?;
        // Constant time: response timing must not reveal how much of a guess was right.
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            self.credentials.succeeded(attempt);
            return Ok(());
        }
        self.metrics.auth_failure(Secret::Credential);
        if let Some(lockout) = self.credentials.failed(attempt) {
            self.metrics.lockout(Secret::Credential, lockout.scope);
            tracing::warn!(%client, wait_secs = lockout.retry_after.as_secs(), "an address is locked out after too many wrong API keys or stream tokens");
        }
        Err(CredentialRefusal::Wrong)
    }

    /// The candidate's signed link to `interview`.
    pub fn join_url(&self, interview: &Interview) -> String {
        let token = self
            .links
            .sign(&interview.id, interview.expires_at.unix_ms() / 1000);
        format!("{}/join/{token}", self.public_url)
    }
}

/// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn run(config: Config, provenance: Provenance) -> anyhow::Result<()> {
    check_paths(&config, &provenance)?;
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let api_key = api_key(&config, &store).await?;
    let stream_token = stream_token(&config, &store).await?;
    let link_key = store
        .set_setting_if_absent(LINK_KEY_SETTING, &random_key())
        .await?;

    let (speech, prompts) = {
        let config = Arc::clone(&config);
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let tts = Arc::new(engines::text_to_speech(&config)?);
            let prompts = Prompts::synthesize(&tts)?;
            let stt = engines::speech_to_text(&config)?;
            Ok((SpeechEngines { stt, tts }, Arc::new(prompts)))
        })
        .await??
    };
    let embedder = Arc::new(Embedder::load(&config.models.dir.join("minilm"))?);
    let metrics = Arc::new(Metrics::default());
    let pins = Arc::new(PinGate::new(&config.pin, Arc::clone(&metrics)));
    let proxies = TrustedProxies::new(
        config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|p| parse_ip_block(p))
            .collect(),
    );
    let live = LiveInterviews::new(
        store.clone(),
        speech,
        embedder,
        Arc::clone(&config),
        Arc::clone(&metrics),
    );
    live.recover().await?;

    let (sip, incoming_calls) = match config.sip.enabled {
        true => {
            let (endpoint, incoming) = SipEndpoint::start(config.sip.settings())
                .await
                .context("cannot start SIP (sip.udp / sip.tcp / --sip): is another SIP server using the port? Set sip.enabled = false to run without phone calls")?;
            (Some(endpoint), Some(incoming))
        }
        false => (None, None),
    };

    let listener = tokio::net::TcpListener::bind(config.server.http)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.http): is another server using it?",
                config.server.http
            )
        })?;
    let addr: SocketAddr = listener.local_addr()?;
    let public_url = if config.server.public_url.is_empty() {
        format!("http://{addr}")
    } else {
        config.server.public_url.trim_end_matches('/').to_owned()
    };
    let state = AppState {
        store,
        links: LinkSigner::new(link_key.into_bytes()),
        live,
        metrics,
        prompts,
        sip: sip.clone(),
        config: Arc::clone(&config),
        api_key: api_key.into(),
        stream_token: stream_token.into(),
        credentials: Arc::new(Attempts::new(CREDENTIAL_POLICY)),
        pins,
        proxies,
        public_url: public_url.into(),
        next_connection: Arc::new(AtomicU64::new(1)),
    };
    if let (Some(sip), Some(incoming)) = (&sip, incoming_calls) {
        let addrs: Vec<String> = [
            sip.udp_addr().map(|a| format!("udp {a}")),
            sip.tcp_addr().map(|a| format!("tcp {a}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        println!("viva answers phone calls on SIP {}", addrs.join(", "));
        tokio::spawn(crate::phone::answer_calls(state.clone(), incoming));
    }
    tracing::info!(%addr, data_dir = %config.server.data_dir.display(), "viva is listening");
    println!(
        "viva {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    let live = Arc::clone(&state.live);
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("the HTTP server stopped");
    // Interviews still running end now, with their reports, as stopped by the server.
    live.stop_all(SHUTDOWN_PATIENCE).await;
    if let Some(sip) = sip {
        sip.shutdown().await;
    }
    served
}

/// Opens (creating if needed) the data directory and the database.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (server.data_dir)",
            config.server.data_dir.display()
        )
    })?;
    Ok(Store::open(&config.server.database_url(), &config.server.data_dir).await?)
}

/// The configured API key (`server.api_key` or `VIVA_API_KEY`), or the one generated at
/// first start (announced once).
async fn api_key(config: &Config, store: &Store) -> anyhow::Result<String> {
    if !config.server.api_key.is_empty() {
        return Ok(config.server.api_key.clone());
    }
    let generated = random_key();
    let key = store
        .set_setting_if_absent(API_KEY_SETTING, &generated)
        .await?;
    if key == generated {
        println!(
            "generated the recruiter API key and stored it in the database; print it with `viva api-key`"
        );
    }
    Ok(key)
}

/// The configured CPaaS stream token, or the one generated at first start.
async fn stream_token(config: &Config, store: &Store) -> anyhow::Result<String> {
    if !config.cpaas.stream_token.is_empty() {
        return Ok(config.cpaas.stream_token.clone());
    }
    Ok(store
        .set_setting_if_absent(STREAM_TOKEN_SETTING, &random_key())
        .await?)
}

/// A generated secret from the data directory's database, or what to do when there is none.
async fn generated_setting(config: &Config, name: &str, what: &str) -> anyhow::Result<String> {
    let database = config.server.database_url();
    if config.server.database.is_empty() && !config.server.data_dir.join("viva.db").exists() {
        anyhow::bail!(
            "no {what} yet: there is no database in {} (server.data_dir); `viva serve` creates \
             one and generates the {what} at first start (pass the same --data-dir or --config \
             as to `viva serve`)",
            config.server.data_dir.display()
        );
    }
    let store = Store::open(&database, &config.server.data_dir).await?;
    store.setting(name).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "no {what} yet in {}: `viva serve` generates one at first start",
            config.server.data_dir.display()
        )
    })
}

/// `viva api-key`: the key recruiters use, wherever it is configured.
pub async fn print_api_key(config: &Config) -> anyhow::Result<()> {
    let key = if config.server.api_key.is_empty() {
        generated_setting(config, API_KEY_SETTING, "API key").await?
    } else {
        config.server.api_key.clone()
    };
    println!("{key}");
    Ok(())
}

/// `viva cpaas-url`: the media-stream URL, token included, to give the CPaaS.
pub async fn print_cpaas_url(config: &Config) -> anyhow::Result<()> {
    let token = if config.cpaas.stream_token.is_empty() {
        generated_setting(config, STREAM_TOKEN_SETTING, "CPaaS stream token").await?
    } else {
        config.cpaas.stream_token.clone()
    };
    let base = if config.server.public_url.is_empty() {
        format!("http://{}", config.server.http)
    } else {
        config.server.public_url.trim_end_matches('/').to_owned()
    };
    let ws = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or(base);
    println!("{ws}/media-stream/{token}");
    Ok(())
}

/// Stops at start-up, saying where it looked and how to fix it, when a directory viva needs
/// is missing: better than an "unknown job" at the first request.
fn check_paths(config: &Config, provenance: &Provenance) -> anyhow::Result<()> {
    for (field, dir, fix) in [
        (
            "server.jobs_dir",
            &config.server.jobs_dir,
            "point it at the directory of job files (NAME.toml)",
        ),
        (
            "models.dir",
            &config.models.dir,
            "run scripts/setup, or point it at the models scripts/setup installed",
        ),
    ] {
        if !dir.is_dir() {
            anyhow::bail!(
                "{field} = {} (from {}) is not a directory: {fix}; {}",
                dir.display(),
                provenance.of(field),
                provenance.base_note()
            );
        }
    }
    Ok(())
}

/// 32 random bytes, URL-safe.
fn random_key() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .nest("/api/v1", crate::api::routes(state.clone()))
        .merge(crate::join::routes())
        .merge(crate::media_stream::routes())
        .with_state(state)
}

async fn metrics(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Response {
    let token = &state.config.server.metrics_token;
    if !token.is_empty() {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        match state.verify_credential(client, presented.trim(), token) {
            Ok(()) => {}
            Err(CredentialRefusal::Wrong) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "send server.metrics_token as `Authorization: Bearer TOKEN`\n",
                )
                    .into_response();
            }
            Err(CredentialRefusal::LockedOut(_)) => {
                return StatusCode::TOO_MANY_REQUESTS.into_response();
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn version() -> Json<Value> {
    Json(json!({ "name": "viva", "version": env!("CARGO_PKG_VERSION") }))
}

async fn home() -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Viva</title></head>\
         <body><h1>Viva {}</h1><p>Self-hosted AI interviews. Health: <a href=\"/healthz\">/healthz</a>.</p>\
         </body></html>",
        env!("CARGO_PKG_VERSION")
    ))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}
