//! `viva serve`: the interview server. It loads the speech models once, opens the database,
//! and serves the recruiter API, the candidates' join pages and their browser calls, and
//! health checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context;
use axum::{Json, Router, response::Html, routing::get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use viva_call::SpeechEngines;
use viva_interview::embedding::Embedder;
use viva_store::{Interview, Store};

use crate::config::Config;
use crate::engines;
use crate::links::LinkSigner;
use crate::live::LiveInterviews;
use crate::metrics::Metrics;
use crate::phone::Prompts;
use viva_transport_sip::SipEndpoint;

/// Settings names in the database.
const API_KEY_SETTING: &str = "api_key";
const LINK_KEY_SETTING: &str = "link_signing_key";
/// Environment variable that sets the recruiter API key, as `server.api_key` does.
const API_KEY_ENV: &str = "VIVA_API_KEY";

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
    /// Base of candidate links, without a trailing slash.
    pub public_url: Arc<str>,
    /// Numbers the signaling connections, so a live call knows which one carries it.
    pub next_connection: Arc<AtomicU64>,
}

impl AppState {
    /// The candidate's signed link to `interview`.
    pub fn join_url(&self, interview: &Interview) -> String {
        let token = self
            .links
            .sign(&interview.id, interview.expires_at.unix_ms() / 1000);
        format!("{}/join/{token}", self.public_url)
    }
}

/// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let api_key = api_key(&config, &store).await?;
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
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server stopped");
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

/// The configured API key, or the one generated at first start (announced once).
async fn api_key(config: &Config, store: &Store) -> anyhow::Result<String> {
    if let Ok(key) = std::env::var(API_KEY_ENV)
        && !key.is_empty()
    {
        return Ok(key);
    }
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

/// `viva api-key`: the key recruiters use, wherever it is configured.
pub async fn print_api_key(config: &Config) -> anyhow::Result<()> {
    if let Ok(key) = std::env::var(API_KEY_ENV)
        && !key.is_empty()
    {
        println!("{key}");
        return Ok(());
    }
    if !config.server.api_key.is_empty() {
        println!("{}", config.server.api_key);
        return Ok(());
    }
    let store = open_store(config).await?;
    match store.setting(API_KEY_SETTING).await? {
        Some(key) => {
            println!("{key}");
            Ok(())
        }
        None => anyhow::bail!(
            "no API key yet: `viva serve` generates one at first start (or set server.api_key / {API_KEY_ENV})"
        ),
    }
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
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
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
