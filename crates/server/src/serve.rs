//! `viva serve`: the interview server. It loads the speech models once, opens the database,
//! finishes interviews a crash left behind, and serves the recruiter API, the candidates'
//! join pages and their browser calls, phone calls (SIP and CPaaS media streams), metrics and
//! health checks, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};
use viva_call::SpeechEngines;
use viva_call::prompt::PromptAudio;
use viva_interview::Embedder;
use viva_store::{NewEndpoint, PIN_DIGITS, Store, Timestamp};
use viva_transport_sip::SipEndpoint;

use crate::attempts::{AttemptPolicy, Attempts};
use crate::capacity::RETRY_AFTER;
use crate::conclusion::Conclusions;
use crate::config::{Config, Provenance, parse_ip_block};
use crate::engines;
use crate::jobs::Jobs;
use crate::leases::Leases;
use crate::links::LinkSigner;
use crate::live::LiveInterviews;
use crate::metrics::{self, CallTransport, Metrics};
use crate::peer::{ClientAddr, TrustedProxies};
use crate::pins::PinGate;
use crate::secrets::Secrets;
use crate::state::{AppState, CredentialRefusal};
use crate::storage::Storage;
use crate::webhooks::Webhooks;

/// Wrong API keys and CPaaS tokens per source address: a few for typos, then a wait that
/// doubles. The keys are 256-bit random, so this bounds the load of a guessing flood rather
/// than the odds (which are nil).
const CREDENTIAL_POLICY: AttemptPolicy = AttemptPolicy {
    free_failures: 10,
    lockout: Duration::from_secs(60),
    max_lockout: Duration::from_secs(3600),
    forget_after: Duration::from_secs(3600),
    global: None,
    max_callers: 10_000,
};

/// How long a stopping server waits for live interviews to write their reports.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(15);

/// Serves until Ctrl-C or SIGTERM, then drains (see [`drained`]), finishes in-flight requests
/// and stops the interviews still live.
pub async fn run(config: Config, provenance: Provenance) -> anyhow::Result<()> {
    check_paths(&config, &provenance)?;
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let secrets = Secrets::load(&config, &store).await?;

    let (speech, prompts) = {
        let config = Arc::clone(&config);
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let tts = Arc::new(
                engines::text_to_speech(&config)?.with_cache(engines::voice_cache(&config))?,
            );
            let prompts = PromptAudio::synthesize(&tts, viva_call::PHONE_RATE, PIN_DIGITS)?;
            let stt = engines::speech_to_text(&config)?;
            let turn_model = engines::turn_model(&config);
            Ok((
                SpeechEngines {
                    stt,
                    tts,
                    turn_model,
                },
                Arc::new(prompts),
            ))
        })
        .await??
    };
    let embedder = Arc::new(Embedder::load(&config.models.dir.join("minilm"))?);
    let jobs = Arc::new(Jobs::new(
        config.server.jobs_dir.clone(),
        embedder,
        Arc::clone(&speech.tts),
    ));
    jobs.prepare_voice();
    // Job files edited by hand while the server was down become versions now.
    jobs.record_all(&store)
        .await
        .context("cannot record the versions of the job files")?;
    let metrics = Arc::new(Metrics::default());
    let observed = Arc::clone(&metrics);
    viva_speech::observe_waits(move |job, wait| observed.speech_waited(job, wait));

    // Bound before interviews a crash left behind are finished: the events that say so carry
    // links built from the address.
    let listener = tokio::net::TcpListener::bind(config.server.http)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.http): is another server using it?",
                config.server.http
            )
        })?;
    let addr: SocketAddr = listener.local_addr()?;
    let public_url: Arc<str> = if config.server.public_url.is_empty() {
        format!("http://{addr}").into()
    } else {
        config.server.public_url.trim_end_matches('/').into()
    };
    let storage = Storage::open(&config.storage)?;
    storage.check().await?;
    let webhooks = start_webhooks(&config, &store, &storage, &public_url, &metrics).await?;

    let conclusions = Arc::new(Conclusions::new(
        store.clone(),
        storage.clone(),
        Arc::clone(&jobs),
        Arc::clone(&config),
        Arc::clone(&webhooks),
    ));
    let leases = Leases::new(store.clone(), &config.server);
    leases.recover(&conclusions).await?;
    conclusions.read_back_assessments().await?;
    conclusions.archive_leftovers().await?;
    leases.keep(Arc::clone(&conclusions));
    let live = LiveInterviews::new(
        store.clone(),
        speech,
        Arc::clone(&jobs),
        conclusions,
        Arc::clone(&config),
        Arc::clone(&metrics),
        Arc::clone(&webhooks),
    );

    let (sip, incoming_calls) = match config.sip.enabled {
        true => {
            // A full machine answers 503 before the phone even rings.
            let room = {
                let live = Arc::clone(&live);
                move || match live.has_room_for_a_caller() {
                    true => Ok(()),
                    false => {
                        live.turned_away(CallTransport::Sip);
                        Err(RETRY_AFTER)
                    }
                }
            };
            let (endpoint, incoming) = SipEndpoint::start(config.sip.settings(), room)
                .await
                .context("cannot start SIP (sip.udp / sip.tcp / --sip): is another SIP server using the port? Set sip.enabled = false to run without phone calls")?;
            (Some(endpoint), Some(incoming))
        }
        false => (None, None),
    };

    let state = AppState {
        store,
        storage,
        jobs,
        links: LinkSigner::new(secrets.link_key.into_bytes()),
        live,
        pins: Arc::new(PinGate::new(&config.pin, Arc::clone(&metrics))),
        metrics,
        prompts,
        sip: sip.clone(),
        api_key: secrets.api_key.into(),
        stream_token: secrets.stream_token.into(),
        credentials: Arc::new(Attempts::new(CREDENTIAL_POLICY)),
        proxies: TrustedProxies::new(
            config
                .server
                .trusted_proxies
                .iter()
                .filter_map(|p| parse_ip_block(p))
                .collect(),
        ),
        config: Arc::clone(&config),
        public_url,
        connections: Arc::new(AtomicU64::new(1)),
        webhooks,
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
    let signals = Signals::listen().context("cannot listen for SIGTERM and Ctrl-C")?;
    let patience = Duration::from_secs(config.server.drain_secs);
    let draining = drained(signals, Arc::clone(&live), sip.clone(), patience);
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(draining)
    .await
    .context("the HTTP server stopped");
    // Interviews still running end now, with their reports, as stopped by the server.
    live.stop_all(SHUTDOWN_PATIENCE).await;
    if let Some(sip) = sip {
        sip.shutdown().await;
    }
    served
}

/// Makes the config file's webhook endpoints the database's and starts delivering.
async fn start_webhooks(
    config: &Config,
    store: &Store,
    storage: &Storage,
    public_url: &Arc<str>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Arc<Webhooks>> {
    let endpoints: Vec<NewEndpoint> = config
        .webhooks
        .iter()
        .map(|hook| NewEndpoint {
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            events: hook.events.clone(),
        })
        .collect();
    store
        .sync_config_endpoints(&endpoints, Timestamp::now())
        .await
        .context("cannot store the webhook endpoints of the config file ([[webhooks]])")?;
    let webhooks = Webhooks::new(store.clone(), storage.clone(), Arc::clone(public_url));
    tokio::spawn(
        Arc::clone(&webhooks).deliver(config.webhook_delivery.clone(), Arc::clone(metrics)),
    );
    Ok(webhooks)
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

fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .nest("/api/v1", crate::api::routes(state.clone()))
        .merge(crate::join::routes())
        .merge(crate::media_stream::routes())
        .merge(crate::workspace::routes())
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
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// Alive: the process serves HTTP (a restart would not help a draining server).
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Whether new calls should be sent here: 503 while draining, so a load balancer or
/// Kubernetes stops routing to this node while its live interviews finish. (How many there
/// are is for `/metrics`, which may need a token: strangers learn nothing here.)
async fn readyz(State(state): State<AppState>) -> Response {
    match state.live.is_draining() {
        true => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response(),
        false => Json(json!({ "status": "ready" })).into_response(),
    }
}

async fn version() -> Json<Value> {
    Json(json!({ "name": "viva", "version": env!("CARGO_PKG_VERSION") }))
}

/// SIGTERM and Ctrl-C (SIGINT), each as often as they come.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "Ctrl-C",
        }
    }
}

/// Completes when the server should stop serving. At the first signal it drains: new calls
/// are turned away (SIP 503, OPTIONS 503, the busy prompt and page), `/readyz` answers 503, and
/// the live interviews go on until they end, `patience` passes or a second signal comes.
async fn drained(
    mut signals: Signals,
    live: Arc<LiveInterviews>,
    sip: Option<SipEndpoint>,
    patience: Duration,
) {
    let signal = signals.next().await;
    live.drain();
    if let Some(sip) = &sip {
        sip.drain();
    }
    let live_calls = live.count();
    if live_calls == 0 || patience.is_zero() {
        tracing::info!(signal, live_calls, "stopping");
        return;
    }
    tracing::info!(
        signal,
        live_calls,
        drain_secs = patience.as_secs(),
        "draining: new calls are turned away; stopping once the live interviews end (a second signal stops them now)"
    );
    println!(
        "viva is draining ({signal}): {live_calls} live interview(s) go on for up to {} s, new calls are turned away; {signal} again stops them now",
        patience.as_secs()
    );
    tokio::select! {
        () = live.idle() => tracing::info!("the live interviews ended: stopping"),
        () = tokio::time::sleep(patience) => tracing::warn!(
            live_calls = live.count(),
            "server.drain_secs passed: stopping the interviews still live"
        ),
        signal = signals.next() => tracing::warn!(
            signal,
            live_calls = live.count(),
            "stopping the live interviews now"
        ),
    }
}
