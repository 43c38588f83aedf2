//! Webhooks for the ATS: events signed per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>) and delivered from the store's durable queue.
//!
//! Where something happens (an interview scheduled, started or ended; a decision recorded) the
//! server queues one message per endpoint that takes it, in the database. The delivery worker
//! of every server node claims due deliveries with a lease (so two nodes sharing PostgreSQL
//! never send the same attempt), posts each with a timeout, and records the outcome: a 2xx
//! answer delivers it, anything else is retried on the configured schedule and then marked
//! failed. All of that state is in the database, so a restart carries on where it stopped.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;
use viva_interview::Scorecard;
use viva_store::{
    Attempt, ClaimedDelivery, Interview, Store, StoreError, Timestamp, Verdict, WebhookMessage,
};

use crate::config::WebhookDeliveryConfig;
use crate::metrics::Metrics;
use crate::storage::Storage;

/// The event types an endpoint can take.
pub const EVENT_TYPES: [&str; 6] = [
    "interview.scheduled",
    "interview.started",
    "interview.completed",
    "interview.abandoned",
    "interview.failed",
    "decision.recorded",
];
/// The event the "Send test event" button sends, to one endpoint whatever it takes.
pub const TEST_EVENT: &str = "webhook.test";
/// What a secret starts with, as Standard Webhooks libraries expect it.
const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;
/// Longest endpoint URL accepted.
const MAX_URL_CHARS: usize = 2000;
/// Deliveries one worker pass takes; they are sent concurrently.
const BATCH: u32 = 16;
/// How often the worker looks for due deliveries when nothing woke it (retries come due, and
/// other nodes queue messages this one is not told about).
const POLL: Duration = Duration::from_secs(1);
/// How much of an endpoint's answer is read (for the delivery log's error); the rest is
/// never read, so a huge or endless answer costs nothing.
const MAX_ANSWER_BYTES: u64 = 4096;
/// Characters of an answer kept in the delivery log.
const MAX_ERROR_CHARS: usize = 300;
/// How long delivered and failed deliveries stay in the log.
const KEEP_FINISHED: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often the worker forgets finished deliveries older than that.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

type HmacSha256 = Hmac<Sha256>;

/// Base64 as the secrets' writers produce it, padded or not (the reference libraries accept both).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks an endpoint URL: `http://` or `https://` with a host.
pub fn check_url(url: &str) -> Result<Uri, String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("the URL is longer than {MAX_URL_CHARS} characters"));
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(format!(
            "`{url}` must start with http:// or https:// (webhooks are HTTP POSTs)"
        ));
    }
    let uri: Uri = url
        .parse()
        .map_err(|err| format!("`{url}` is not a URL: {err}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(uri)
}

/// Checks a signing secret and returns its key bytes.
pub fn check_secret(secret: &str) -> Result<Vec<u8>, String> {
    let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err(format!(
            "the secret must start with {SECRET_PREFIX} (then base64 of 24 to 64 random bytes)"
        ));
    };
    let key = LENIENT
        .decode(encoded)
        .map_err(|err| format!("the secret after {SECRET_PREFIX} is not base64: {err}"))?;
    if !(SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        return Err(format!(
            "the secret holds {} bytes; it must hold 24 to 64 bytes (e.g. `openssl rand -base64 32`)",
            key.len()
        ));
    }
    Ok(key)
}

/// Checks a list of event types.
pub fn check_events(events: &[String]) -> Result<(), String> {
    match events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        Some(unknown) => Err(format!(
            "`{unknown}` is not an event type; use any of {}",
            EVENT_TYPES.join(", ")
        )),
        None => Ok(()),
    }
}

/// A new signing secret: `whsec_` and the base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header of `body`: `v1,` and the base64 HMAC-SHA256, keyed with the
/// secret's bytes, of `{id}.{timestamp}.{body}`.
pub fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// When the next attempt is due after `attempts` failed ones, or `None` when that was the last.
pub fn next_attempt(retry: &[Duration], attempts: u32, now: Timestamp) -> Option<Timestamp> {
    let wait = retry.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    Some(Timestamp::from_unix_ms(
        now.unix_ms().saturating_add(wait_ms),
    ))
}

/// Queues the events that happen and delivers them; one per server, cheap to share.
pub struct Webhooks {
    store: Store,
    /// Where the recordings the events link to are kept.
    storage: Storage,
    /// Base of the links events carry, without a trailing slash.
    public_url: Arc<str>,
    /// Wakes this node's worker when it queued something, so events leave at once.
    queued: Notify,
}

impl Webhooks {
    pub fn new(store: Store, storage: Storage, public_url: Arc<str>) -> Arc<Self> {
        Arc::new(Self {
            store,
            storage,
            public_url,
            queued: Notify::new(),
        })
    }

    /// An interview was scheduled (by the API or the invite pages).
    pub async fn scheduled(&self, interview: &Interview) {
        self.emit("interview.scheduled", self.interview_data(interview))
            .await;
    }

    /// A candidate joined and the interview began.
    pub async fn started(&self, interview: &Interview) {
        self.emit("interview.started", self.interview_data(interview))
            .await;
    }

    /// The interview ended (completed, abandoned or failed, as `interview`'s status says); its
    /// scorecard when a report was written.
    pub async fn ended(&self, interview: &Interview, scorecard: Option<&Scorecard>) {
        let event = match interview.status {
            viva_store::Status::Completed => "interview.completed",
            viva_store::Status::Abandoned => "interview.abandoned",
            viva_store::Status::Failed => "interview.failed",
            // Not ended: nothing to say (callers pass ended interviews only).
            viva_store::Status::Scheduled | viva_store::Status::InProgress => return,
        };
        let mut data = self.interview_data(interview);
        let base = format!("{}/api/v1/interviews/{}", self.public_url, interview.id);
        if let Some(scorecard) = scorecard {
            data["recommendation"] = json!(scorecard.recommendation);
            data["composite_score"] = json!(scorecard.overall_score);
            data["links"]["report"] = json!(format!("{base}/report"));
            data["links"]["report_html"] = json!(format!("{base}/report?format=html"));
        }
        let has_recording = match self.store.files(&interview.id) {
            Ok(files) => self.storage.exists(&files, &files.recording()).await,
            Err(_) => false,
        };
        if has_recording {
            data["links"]["recording"] = json!(format!("{base}/recording"));
        }
        self.emit(event, data).await;
    }

    /// A member of the hiring team recorded a decision.
    pub async fn decided(
        &self,
        interview: &Interview,
        verdict: Verdict,
        note: &str,
        by: &str,
        at: Timestamp,
    ) {
        let mut data = self.interview_data(interview);
        data["decision"] = json!({
            "decision": verdict.as_str(),
            "note": note,
            "by": by,
            "at": at,
        });
        self.emit("decision.recorded", data).await;
    }

    /// Queues the test event for one endpoint; `false` when there is no such endpoint.
    pub async fn send_test(&self, endpoint_id: &str) -> Result<bool, StoreError> {
        let message = message(
            TEST_EVENT,
            json!({ "message": "A test event from Viva: this endpoint receives its webhooks." }),
        );
        let queued = self
            .store
            .enqueue_to(endpoint_id, &message, Timestamp::now())
            .await?;
        self.queued.notify_one();
        Ok(queued)
    }

    /// What every interview event says of the interview.
    fn interview_data(&self, interview: &Interview) -> Value {
        json!({
            "interview": {
                "id": interview.id,
                "job": interview.job,
                "candidate": interview.candidate,
                "status": interview.status,
                "created_at": interview.created_at,
                "expires_at": interview.expires_at,
                "started_at": interview.started_at,
                "ended_at": interview.ended_at,
                "duration_ms": interview.duration_ms,
                "end_reason": interview.end_reason,
                "failure": interview.failure,
            },
            "links": {
                "review": format!("{}/interviews/{}", self.public_url, interview.id),
            },
        })
    }

    /// Queues an event for every endpoint that takes it. A database error is logged, not
    /// returned: the event happened either way, and the request that caused it succeeds.
    async fn emit(&self, event_type: &str, data: Value) {
        let message = message(event_type, data);
        match self.store.enqueue(&message, Timestamp::now()).await {
            Ok(0) => {}
            Ok(endpoints) => {
                tracing::debug!(event_type, message_id = %message.id, endpoints, "webhook queued");
                self.queued.notify_one();
            }
            Err(err) => {
                tracing::error!(event_type, %err, "cannot queue a webhook; it is not sent");
            }
        }
    }

    /// The delivery worker: runs until the process ends.
    pub async fn deliver(self: Arc<Self>, settings: WebhookDeliveryConfig, metrics: Arc<Metrics>) {
        let sender = Sender::new(&settings);
        let retry: Vec<Duration> = settings
            .retry_secs
            .iter()
            .map(|&s| Duration::from_secs(s))
            .collect();
        // A claim outlives the slowest attempt, so it is never taken over while it is sent.
        let lease = sender.timeout + Duration::from_secs(30);
        let mut pruned_at: Option<tokio::time::Instant> = None;
        loop {
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(tokio::time::Instant::now());
                let keep_ms = i64::try_from(KEEP_FINISHED.as_millis()).unwrap_or(i64::MAX);
                let before = Timestamp::from_unix_ms(Timestamp::now().unix_ms() - keep_ms);
                match self.store.prune_deliveries(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "forgot old webhook deliveries"),
                    Err(err) => tracing::warn!(%err, "cannot prune the webhook delivery log"),
                }
            }
            match self.store.webhook_backlog().await {
                Ok(pending) => metrics.set_webhook_backlog(pending),
                Err(err) => tracing::warn!(%err, "cannot count the webhook backlog"),
            }
            let claimed = match self.store.claim_due(Timestamp::now(), lease, BATCH).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(%err, "cannot read the webhook queue; trying again");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                // Woken early when this node queues something.
                let _ = tokio::time::timeout(POLL, self.queued.notified()).await;
                continue;
            }
            let attempts = claimed.into_iter().map(|delivery| {
                let sender = sender.clone();
                let retry = &retry;
                let store = &self.store;
                async move {
                    let outcome = sender.send(&delivery).await;
                    let now = Timestamp::now();
                    let attempt = judge(outcome, delivery.attempts + 1, retry, now);
                    log_attempt(&delivery, &attempt);
                    match store.record_attempt(&delivery, &attempt, now).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(
                            delivery = %delivery.id,
                            "a webhook attempt outlived its lease; another node's attempt counts"
                        ),
                        Err(err) => tracing::error!(%err, "cannot record a webhook attempt"),
                    }
                }
            });
            futures_util::future::join_all(attempts).await;
        }
    }
}

/// A new message: a fresh id and the Standard Webhooks body (`type`, `timestamp`, `data`).
fn message(event_type: &str, data: Value) -> WebhookMessage {
    let id: String = rand::rng()
        .sample_iter(Alphanumeric)
        .map(char::from)
        .take(24)
        .collect();
    let payload = json!({
        "type": event_type,
        "timestamp": Timestamp::now(),
        "data": data,
    });
    WebhookMessage {
        id: format!("msg_{id}"),
        event_type: event_type.to_owned(),
        payload: payload.to_string(),
    }
}

/// What came back from one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// An HTTP answer: its status and the start of its body.
    Answered { status: u16, body: String },
    /// No answer: the connection failed, timed out, or the secret is unusable.
    Failed(String),
}

/// The record of an attempt (`attempts`: including this one).
fn judge(outcome: Outcome, attempts: u32, retry: &[Duration], now: Timestamp) -> Attempt {
    let (status, error) = match outcome {
        Outcome::Answered { status, .. } if (200..300).contains(&status) => {
            return Attempt::Delivered { status };
        }
        Outcome::Answered { status, body } => {
            let mut error = format!("HTTP {status}");
            if (300..400).contains(&status) {
                error.push_str(" (redirects are not followed: set the endpoint's final URL)");
            }
            let body: String = body.trim().chars().take(MAX_ERROR_CHARS).collect();
            if !body.is_empty() {
                error.push_str(": ");
                error.push_str(&body);
            }
            (Some(status), error)
        }
        Outcome::Failed(error) => (None, error),
    };
    match next_attempt(retry, attempts, now) {
        Some(at) => Attempt::Retry { status, error, at },
        None => Attempt::Failed { status, error },
    }
}

fn log_attempt(delivery: &ClaimedDelivery, attempt: &Attempt) {
    let number = delivery.attempts + 1;
    match attempt {
        Attempt::Delivered { status } => tracing::info!(
            event_type = %delivery.event_type, message_id = %delivery.message_id,
            attempt = number, status, "webhook delivered"
        ),
        Attempt::Retry { error, at, .. } => tracing::info!(
            event_type = %delivery.event_type, message_id = %delivery.message_id,
            attempt = number, %error, retry_at = %at, "webhook attempt failed; will retry"
        ),
        Attempt::Failed { error, .. } => tracing::warn!(
            event_type = %delivery.event_type, message_id = %delivery.message_id,
            attempt = number, %error, "webhook failed after its last attempt"
        ),
    }
}

/// Posts signed messages.
#[derive(Clone)]
struct Sender {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Sender {
    fn new(settings: &WebhookDeliveryConfig) -> Self {
        let timeout = Duration::from_secs(settings.timeout_secs);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // A redirect is an answer like any other non-2xx: the receiver is the URL given.
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("Viva-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent, timeout }
    }

    /// Signs `delivery` now and posts it.
    async fn send(&self, delivery: &ClaimedDelivery) -> Outcome {
        let key = match check_secret(&delivery.secret) {
            Ok(key) => key,
            Err(reason) => return Outcome::Failed(format!("not sent: {reason}")),
        };
        let timestamp = Timestamp::now().unix_ms().div_euclid(1000);
        let signature = sign(&key, &delivery.message_id, timestamp, &delivery.payload);
        let agent = self.agent.clone();
        let timeout = self.timeout;
        let (url, id, body) = (
            delivery.url.clone(),
            delivery.message_id.clone(),
            delivery.payload.clone(),
        );
        // ureq blocks: off the async workers.
        let sent = tokio::task::spawn_blocking(move || {
            let response = agent
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", &signature)
                .send(body.as_bytes());
            match response {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let mut head = Vec::new();
                    // Bounded: the receiver's body is only read for the log.
                    let _ = response
                        .into_body()
                        .into_reader()
                        .take(MAX_ANSWER_BYTES)
                        .read_to_end(&mut head);
                    Outcome::Answered {
                        status,
                        body: String::from_utf8_lossy(&head).into_owned(),
                    }
                }
                Err(ureq::Error::Timeout(_)) => {
                    Outcome::Failed(format!("no answer within {} s", timeout.as_secs()))
                }
                Err(err) => Outcome::Failed(err.to_string()),
            }
        })
        .await;
        sent.unwrap_or_else(|err| Outcome::Failed(format!("the attempt stopped: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        // The vector of the Standard Webhooks libraries' tests (and their specification).
        let key = check_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // Any change to the id, the time or the body changes it.
        let other = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_331,
            r#"{"test": 2432232314}"#,
        );
        assert_ne!(other, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_random_and_valid() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(check_secret(&a).unwrap().len(), 24);
        // Padded or not, as the reference libraries accept.
        let padded = format!("whsec_{}", STANDARD.encode([7u8; 25]));
        assert!(padded.ends_with('='));
        assert_eq!(check_secret(&padded).unwrap(), [7u8; 25]);
        assert_eq!(
            check_secret(padded.trim_end_matches('=')).unwrap(),
            [7u8; 25]
        );
        for (bad, reason) in [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with whsec_"),
            ("whsec_not base64!", "not base64"),
            ("whsec_c2hvcnQ=", "holds 5 bytes"),
        ] {
            let err = check_secret(bad).unwrap_err();
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        for good in [
            "https://ats.example.com/hooks/viva",
            "http://10.0.0.5:8080/v?x=1",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("ftp://ats.example.com/", "http:// or https://"),
            ("javascript:alert(1)", "http:// or https://"),
            ("/hooks", "http:// or https://"),
            ("https://exa mple.com/", "not a URL"),
            ("", "http:// or https://"),
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.contains(reason), "{bad:?}: {err}");
        }
        let long = format!("https://a.example/{}", "x".repeat(2000));
        assert!(check_url(&long).unwrap_err().contains("longer than"));
        assert!(check_events(&["interview.completed".to_owned()]).is_ok());
        let err = check_events(&["interview.done".to_owned()]).unwrap_err();
        assert!(err.contains("interview.scheduled"), "{err}");
    }

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let standard = WebhookDeliveryConfig::default();
        let retry: Vec<Duration> = standard
            .retry_secs
            .iter()
            .map(|&s| Duration::from_secs(s))
            .collect();
        let now = Timestamp::from_unix_ms(1_000_000);
        let waits: Vec<i64> = (1..=7)
            .map(|n| next_attempt(&retry, n, now).unwrap().unix_ms() - now.unix_ms())
            .collect();
        assert_eq!(
            waits,
            [5, 300, 1800, 7200, 18_000, 36_000, 36_000].map(|s| s * 1000)
        );
        assert_eq!(next_attempt(&retry, 8, now), None, "eight attempts in all");
        let total: i64 = waits.iter().sum();
        assert!(total >= 24 * 3_600_000, "retries span at least a day");

        let failed = Outcome::Answered {
            status: 500,
            body: "down".to_owned(),
        };
        assert_eq!(
            judge(failed.clone(), 1, &retry, now),
            Attempt::Retry {
                status: Some(500),
                error: "HTTP 500: down".to_owned(),
                at: Timestamp::from_unix_ms(1_005_000),
            }
        );
        assert_eq!(
            judge(failed, 8, &retry, now),
            Attempt::Failed {
                status: Some(500),
                error: "HTTP 500: down".to_owned(),
            }
        );
        let ok = Outcome::Answered {
            status: 204,
            body: String::new(),
        };
        assert_eq!(
            judge(ok, 8, &retry, now),
            Attempt::Delivered { status: 204 }
        );
        let moved = Outcome::Answered {
            status: 302,
            body: String::new(),
        };
        let Attempt::Retry { error, .. } = judge(moved, 1, &retry, now) else {
            panic!("a redirect is a failed attempt");
        };
        assert!(error.contains("redirects are not followed"), "{error}");
        let refused = Outcome::Failed("connection refused".to_owned());
        assert_eq!(
            judge(refused, 1, &[], now),
            Attempt::Failed {
                status: None,
                error: "connection refused".to_owned(),
            }
        );
    }

    /// The next queued message's body, as the worker would send it.
    async fn next_body(store: &Store) -> Value {
        let now = Timestamp::from_unix_ms(Timestamp::now().unix_ms() + 1000);
        let claimed = store
            .claim_due(now, Duration::from_secs(30), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        let delivered = Attempt::Delivered { status: 200 };
        assert!(
            store
                .record_attempt(&claimed[0], &delivered, now)
                .await
                .unwrap()
        );
        serde_json::from_str(&claimed[0].payload).unwrap()
    }

    #[tokio::test]
    async fn a_completed_interview_says_how_it_went_and_where_to_look() {
        let scratch = viva_test_support::scratch_dir("webhooks-completed");
        let database = format!("sqlite://{}/viva.db", scratch.path().display());
        let store = Store::open(&database, scratch.path()).await.unwrap();
        store
            .create_endpoint(
                viva_store::NewEndpoint {
                    url: "https://ats.example/hooks".to_owned(),
                    secret: new_secret(),
                    events: vec!["interview.completed".to_owned()],
                },
                Timestamp::now(),
            )
            .await
            .unwrap();
        let webhooks = Webhooks::new(
            store.clone(),
            crate::storage::Storage::default(),
            Arc::from("https://viva.example"),
        );
        let interview = store
            .create_interview(viva_store::NewInterview {
                job: "backend-developer".to_owned(),
                candidate: viva_store::Candidate {
                    name: "Ada".to_owned(),
                    email: None,
                    phone: None,
                },
                expires_at: Timestamp::from_unix_ms(Timestamp::now().unix_ms() + 3_600_000),
            })
            .await
            .unwrap();
        // Not queued: the endpoint does not take it.
        webhooks.scheduled(&interview).await;
        assert!(
            store
                .start(
                    &interview.id,
                    Timestamp::now(),
                    &viva_store::Lease::new("test", Timestamp::now(), Duration::from_secs(30))
                )
                .await
                .unwrap()
        );
        let ending = viva_store::Ending {
            outcome: viva_store::Outcome::Completed,
            reason: viva_store::EndReason::ReachedClosing,
            at: Timestamp::now(),
            duration_ms: Some(61_000),
            failure: None,
        };
        store.finish(&interview.id, &ending).await.unwrap();
        let completed = store.interview(&interview.id).await.unwrap().unwrap();
        let scorecard = Scorecard {
            overall_score: 72.5,
            recommendation: viva_interview::Recommendation::Yes,
            recommendation_reason: "solid answers".to_owned(),
            dimensions: Vec::new(),
            knockouts: Vec::new(),
            competencies: Vec::new(),
            required_skills: Vec::new(),
            preferred_skills: Vec::new(),
            coverage: Vec::new(),
        };
        webhooks.ended(&completed, Some(&scorecard)).await;
        let body = next_body(&store).await;
        assert_eq!(body["type"], "interview.completed");
        let data = &body["data"];
        assert_eq!(data["interview"]["id"], interview.id.as_str());
        assert_eq!(data["interview"]["status"], "completed");
        assert_eq!(data["interview"]["end_reason"], "reached_closing");
        assert_eq!(data["interview"]["duration_ms"], 61_000);
        assert_eq!(data["recommendation"], "yes");
        assert_eq!(data["composite_score"], 72.5);
        let api = format!("https://viva.example/api/v1/interviews/{}", interview.id);
        assert_eq!(
            data["links"]["review"],
            format!("https://viva.example/interviews/{}", interview.id)
        );
        assert_eq!(data["links"]["report"], format!("{api}/report"));
        assert_eq!(
            data["links"]["report_html"],
            format!("{api}/report?format=html")
        );
        assert!(data["links"]["recording"].is_null(), "no recording yet");

        // With a recording on disk the event links to it too.
        let files = store.files(&interview.id).unwrap();
        std::fs::write(files.recording(), b"RIFF").unwrap();
        webhooks.ended(&completed, Some(&scorecard)).await;
        let body = next_body(&store).await;
        assert_eq!(data_link(&body, "recording"), format!("{api}/recording"));
        // Still in progress: no end to tell.
        webhooks.ended(&interview, None).await;
        let now = Timestamp::from_unix_ms(Timestamp::now().unix_ms() + 1000);
        assert!(
            store
                .claim_due(now, Duration::from_secs(30), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    fn data_link(body: &Value, name: &str) -> String {
        body["data"]["links"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn messages_have_the_standard_shape() {
        let message = message("webhook.test", json!({ "n": 1 }));
        assert!(message.id.starts_with("msg_") && message.id.len() == 28);
        let body: Value = serde_json::from_str(&message.payload).unwrap();
        assert_eq!(body["type"], "webhook.test");
        assert_eq!(body["data"]["n"], 1);
        let at: Timestamp = body["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(at.unix_ms() > 1_767_225_600_000);
    }
}
