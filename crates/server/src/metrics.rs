//! Operational metrics at `/metrics` (OpenMetrics text, Prometheus' own client library):
//! calls in progress, the most the machine takes, calls finished and turned away, how long
//! each stage of the interviewer's reply takes, holes in its audio, how long speech jobs wait
//! for the cores, the webhook backlog, and guessing of secrets (wrong PINs and keys,
//! lock-outs). Counts and times only: no candidate, interview or PIN appears here.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use viva_call::{CallObserver, TurnLatency};
use viva_speech::SpeechJob;
use viva_store::Outcome;

use crate::attempts::Scope;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds (s) of the reply stages: a live interview should answer within a second; a
/// few seconds is a bad experience.
const REPLY_BUCKETS: [f64; 11] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 8.0, 15.0];
/// Holes in the interviewer's audio (s): under 0.1 s a phone's jitter buffer hides them.
const GAP_BUCKETS: [f64; 8] = [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];
/// Waits for the cores (s): a few ms is normal; tenths of a second delay every reply.
const WAIT_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A secret strangers can try to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// An interview PIN on the phone (SIP keypad or CPaaS media stream).
    Pin,
    /// The recruiter API key, or the CPaaS stream token.
    Credential,
}

impl Secret {
    const ALL: [Secret; 2] = [Secret::Pin, Secret::Credential];

    fn label(self) -> &'static str {
        match self {
            Secret::Pin => "pin",
            Secret::Credential => "credential",
        }
    }
}

/// How a call that was turned away came (or was to go out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTransport {
    /// A phone call over SIP, dialled in.
    Sip,
    /// A phone call bridged by a CPaaS as a media stream.
    MediaStream,
    /// The candidate's browser (the join page, or its call).
    Browser,
    /// A call the recruiter asked the server to place (API or workspace).
    Dial,
}

impl CallTransport {
    const ALL: [CallTransport; 4] = [
        CallTransport::Sip,
        CallTransport::MediaStream,
        CallTransport::Browser,
        CallTransport::Dial,
    ];

    fn label(self) -> &'static str {
        match self {
            CallTransport::Sip => "sip",
            CallTransport::MediaStream => "media_stream",
            CallTransport::Browser => "browser",
            CallTransport::Dial => "dial",
        }
    }
}

/// Why a call was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnedAway {
    /// Every seat was taken (`server.max_calls`).
    Capacity,
    /// The server is draining before it stops.
    Draining,
}

impl TurnedAway {
    const ALL: [TurnedAway; 2] = [TurnedAway::Capacity, TurnedAway::Draining];

    fn label(self) -> &'static str {
        match self {
            TurnedAway::Capacity => "capacity",
            TurnedAway::Draining => "draining",
        }
    }
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Completed => "completed",
        Outcome::Abandoned => "abandoned",
        Outcome::Failed => "failed",
    }
}

fn job_label(job: SpeechJob) -> &'static str {
    match job {
        SpeechJob::Transcription => "transcription",
        SpeechJob::Synthesis => "synthesis",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    transport: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretLabels {
    secret: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LockoutLabels {
    secret: &'static str,
    scope: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metrics of one server process; cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    calls_active: Gauge,
    calls_max: Gauge,
    draining: Gauge,
    calls_refused: Family<RefusedLabels, Counter>,
    calls_ended: Family<OutcomeLabels, Counter>,
    reply_stages: Histograms<StageLabels>,
    audio_gaps: Histogram,
    speech_waits: Histograms<JobLabels>,
    webhook_backlog: Gauge,
    auth_failures: Family<SecretLabels, Counter>,
    lockouts: Family<LockoutLabels, Counter>,
    auth_refused: Family<LockoutLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let calls_active = Gauge::default();
        registry.register(
            "viva_calls_active",
            "Interviews in progress",
            calls_active.clone(),
        );
        let calls_max = Gauge::default();
        registry.register(
            "viva_calls_max",
            "Interviews the machine takes at once (server.max_calls); past it new calls are turned away",
            calls_max.clone(),
        );
        let draining = Gauge::default();
        registry.register(
            "viva_draining",
            "1 while the server drains before it stops: new calls are turned away",
            draining.clone(),
        );
        let calls_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "viva_calls_refused",
            "Calls turned away (every seat taken, or the server draining), by how they came",
            calls_refused.clone(),
        );
        let calls_ended = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "viva_calls",
            "Interviews that ended, by outcome",
            calls_ended.clone(),
        );
        let reply_stages: Histograms<StageLabels> =
            Family::new_with_constructor(|| Histogram::new(REPLY_BUCKETS));
        registry.register_with_unit(
            "viva_reply_stage",
            "From the end of the candidate's speech to each stage of the interviewer's reply: \
             end_of_turn (the pause judged to end the turn), transcribed (the whole turn's \
             transcript ready), decided (the interviewer chose what to say), first_audio (its \
             first audio sent: the silence the candidate hears)",
            Unit::Seconds,
            reply_stages.clone(),
        );
        let audio_gaps = Histogram::new(GAP_BUCKETS);
        registry.register_with_unit(
            "viva_interviewer_audio_gap",
            "Holes in the interviewer's audio mid-line: synthesis was slower than playback",
            Unit::Seconds,
            audio_gaps.clone(),
        );
        let speech_waits: Histograms<JobLabels> =
            Family::new_with_constructor(|| Histogram::new(WAIT_BUCKETS));
        registry.register_with_unit(
            "viva_speech_wait",
            "How long a transcription, or the synthesis of a sentence someone waits to hear, \
             waited for a worker and the cores past the moment it was needed",
            Unit::Seconds,
            speech_waits.clone(),
        );
        let webhook_backlog = Gauge::default();
        registry.register(
            "viva_webhook_backlog",
            "Webhook deliveries waiting to be sent or retried",
            webhook_backlog.clone(),
        );
        let auth_failures = Family::<SecretLabels, Counter>::default();
        registry.register(
            "viva_auth_failures",
            "Wrong secrets presented: PINs on the phone, API keys and CPaaS tokens",
            auth_failures.clone(),
        );
        let lockouts = Family::<LockoutLabels, Counter>::default();
        registry.register(
            "viva_lockouts",
            "Lock-outs started by wrong secrets, per caller or for everyone",
            lockouts.clone(),
        );
        let auth_refused = Family::<LockoutLabels, Counter>::default();
        registry.register(
            "viva_auth_refused",
            "Attempts refused unchecked during a lock-out",
            auth_refused.clone(),
        );
        let metrics = Self {
            registry,
            calls_active,
            calls_max,
            draining,
            calls_refused,
            calls_ended,
            reply_stages,
            audio_gaps,
            speech_waits,
            webhook_backlog,
            auth_failures,
            lockouts,
            auth_refused,
        };
        metrics.show_every_series();
        metrics
    }

    /// Every labelled series exists from the start at zero, so an alert on its rate sees the
    /// first event (a series that appears with its first count has no rate yet).
    fn show_every_series(&self) {
        for why in TurnedAway::ALL {
            for transport in CallTransport::ALL {
                drop(self.calls_refused.get_or_create(&RefusedLabels {
                    transport: transport.label(),
                    reason: why.label(),
                }));
            }
        }
        for outcome in [Outcome::Completed, Outcome::Abandoned, Outcome::Failed] {
            drop(self.calls_ended.get_or_create(&OutcomeLabels {
                outcome: outcome_label(outcome),
            }));
        }
        for stage in ["end_of_turn", "transcribed", "decided", "first_audio"] {
            drop(self.reply_stages.get_or_create(&StageLabels { stage }));
        }
        for job in [SpeechJob::Transcription, SpeechJob::Synthesis] {
            drop(self.speech_waits.get_or_create(&JobLabels {
                job: job_label(job),
            }));
        }
        for secret in Secret::ALL {
            drop(self.auth_failures.get_or_create(&SecretLabels {
                secret: secret.label(),
            }));
            for scope in [Scope::Caller, Scope::Global] {
                let labels = LockoutLabels {
                    secret: secret.label(),
                    scope: scope.as_str(),
                };
                drop(self.lockouts.get_or_create(&labels));
                drop(self.auth_refused.get_or_create(&labels));
            }
        }
    }

    /// Someone presented a wrong `secret`.
    pub fn auth_failure(&self, secret: Secret) {
        self.auth_failures
            .get_or_create(&SecretLabels {
                secret: secret.label(),
            })
            .inc();
    }

    /// A wrong `secret` locked a caller (or everyone) out.
    pub fn lockout(&self, secret: Secret, scope: Scope) {
        self.lockouts
            .get_or_create(&LockoutLabels {
                secret: secret.label(),
                scope: scope.as_str(),
            })
            .inc();
    }

    /// An attempt at `secret` was refused unchecked, because of a lock-out.
    pub fn refused(&self, secret: Secret, scope: Scope) {
        self.auth_refused
            .get_or_create(&LockoutLabels {
                secret: secret.label(),
                scope: scope.as_str(),
            })
            .inc();
    }

    /// How many interviews the machine takes at once.
    pub fn set_call_capacity(&self, max: usize) {
        self.calls_max.set(i64::try_from(max).unwrap_or(i64::MAX));
    }

    /// A call by `transport` was turned away, `why`.
    pub fn call_refused(&self, transport: CallTransport, why: TurnedAway) {
        self.calls_refused
            .get_or_create(&RefusedLabels {
                transport: transport.label(),
                reason: why.label(),
            })
            .inc();
    }

    /// The server began draining.
    pub fn draining(&self) {
        self.draining.set(1);
    }

    pub fn call_started(&self) {
        self.calls_active.inc();
    }

    /// A call ended with `outcome`.
    pub fn call_ended(&self, outcome: Outcome) {
        self.calls_active.dec();
        self.calls_ended
            .get_or_create(&OutcomeLabels {
                outcome: outcome_label(outcome),
            })
            .inc();
    }

    /// A speech job of kind `job` waited this long past the moment it was needed.
    pub fn speech_waited(&self, job: SpeechJob, wait: Duration) {
        self.speech_waits
            .get_or_create(&JobLabels {
                job: job_label(job),
            })
            .observe(wait.as_secs_f64());
    }

    /// This many webhook deliveries wait to be sent or retried.
    pub fn set_webhook_backlog(&self, pending: u64) {
        self.webhook_backlog
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Every call reports its replies and audio holes as they happen, not when it ends: a
/// 45-minute interview going badly shows at once.
impl CallObserver for Metrics {
    fn turn_answered(&self, latency: &TurnLatency) {
        let since_speech = |at_ms: u64| at_ms.saturating_sub(latency.speech_end_ms) as f64 / 1e3;
        let stages = [
            ("end_of_turn", Some(latency.end_of_turn_ms)),
            ("transcribed", Some(latency.transcribed_ms)),
            ("decided", latency.decided_ms),
            ("first_audio", latency.first_audio_ms),
        ];
        for (stage, at_ms) in stages {
            if let Some(at_ms) = at_ms {
                self.reply_stages
                    .get_or_create(&StageLabels { stage })
                    .observe(since_speech(at_ms));
            }
        }
    }

    fn audio_gap(&self, gap: Duration) {
        self.audio_gaps.observe(gap.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(turn: u32, speech_end_ms: u64, first_audio_ms: u64) -> TurnLatency {
        TurnLatency {
            turn,
            speech_end_ms,
            end_of_turn_ms: speech_end_ms + 100,
            transcribed_ms: speech_end_ms + 200,
            decided_ms: Some(speech_end_ms + 300),
            first_audio_ms: Some(first_audio_ms),
        }
    }

    #[test]
    fn reply_stages_are_histograms_of_seconds_after_the_end_of_speech() {
        let metrics = Metrics::default();
        metrics.call_started();
        metrics.call_started();
        metrics.turn_answered(&answered(1, 1_000, 1_600));
        metrics.turn_answered(&answered(2, 5_000, 7_500));
        metrics.call_ended(Outcome::Completed);
        let text = metrics.render();
        assert!(text.contains("viva_calls_active 1\n"), "{text}");
        assert!(text.contains("viva_calls_total{outcome=\"completed\"} 1\n"));
        assert!(text.contains("viva_calls_total{outcome=\"failed\"} 0\n"));
        assert!(text.contains("# TYPE viva_reply_stage_seconds histogram\n"));
        assert!(text.contains("# UNIT viva_reply_stage_seconds seconds\n"));
        for line in [
            "viva_reply_stage_seconds_bucket{le=\"0.5\",stage=\"first_audio\"} 0\n",
            "viva_reply_stage_seconds_bucket{le=\"0.75\",stage=\"first_audio\"} 1\n",
            "viva_reply_stage_seconds_bucket{le=\"3.0\",stage=\"first_audio\"} 2\n",
            "viva_reply_stage_seconds_sum{stage=\"first_audio\"} 3.1\n",
            "viva_reply_stage_seconds_count{stage=\"first_audio\"} 2\n",
            "viva_reply_stage_seconds_sum{stage=\"end_of_turn\"} 0.2\n",
            "viva_reply_stage_seconds_count{stage=\"decided\"} 2\n",
        ] {
            assert!(text.contains(line), "no {line} in {text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_reply_never_played_counts_only_the_stages_it_reached() {
        let metrics = Metrics::default();
        let mut overtaken = answered(1, 1_000, 0);
        overtaken.decided_ms = None;
        overtaken.first_audio_ms = None;
        metrics.turn_answered(&overtaken);
        let text = metrics.render();
        assert!(text.contains("viva_reply_stage_seconds_count{stage=\"transcribed\"} 1\n"));
        assert!(text.contains("viva_reply_stage_seconds_count{stage=\"first_audio\"} 0\n"));
    }

    #[test]
    fn audio_gaps_speech_waits_and_the_webhook_backlog_are_shown() {
        let metrics = Metrics::default();
        metrics.audio_gap(Duration::from_millis(150));
        metrics.speech_waited(SpeechJob::Transcription, Duration::from_millis(30));
        metrics.speech_waited(SpeechJob::Transcription, Duration::ZERO);
        metrics.set_webhook_backlog(7);
        let text = metrics.render();
        for line in [
            "viva_interviewer_audio_gap_seconds_bucket{le=\"0.1\"} 0\n",
            "viva_interviewer_audio_gap_seconds_bucket{le=\"0.2\"} 1\n",
            "viva_speech_wait_seconds_bucket{le=\"0.025\",job=\"transcription\"} 1\n",
            "viva_speech_wait_seconds_count{job=\"transcription\"} 2\n",
            "viva_speech_wait_seconds_count{job=\"synthesis\"} 0\n",
            "viva_webhook_backlog 7\n",
        ] {
            assert!(text.contains(line), "no {line} in {text}");
        }
    }

    #[test]
    fn refused_calls_are_counted_per_transport_beside_the_capacity() {
        let metrics = Metrics::default();
        metrics.set_call_capacity(16);
        metrics.call_refused(CallTransport::Sip, TurnedAway::Capacity);
        metrics.call_refused(CallTransport::Sip, TurnedAway::Capacity);
        metrics.call_refused(CallTransport::Dial, TurnedAway::Capacity);
        metrics.call_refused(CallTransport::Sip, TurnedAway::Draining);
        let text = metrics.render();
        assert!(text.contains("viva_calls_max 16\n"), "{text}");
        assert!(text.contains("viva_draining 0\n"), "{text}");
        for (transport, reason, count) in [
            ("sip", "capacity", 2),
            ("media_stream", "capacity", 0),
            ("browser", "capacity", 0),
            ("dial", "capacity", 1),
            ("sip", "draining", 1),
            ("dial", "draining", 0),
        ] {
            let line = format!(
                "viva_calls_refused_total{{transport=\"{transport}\",reason=\"{reason}\"}} {count}\n"
            );
            assert!(text.contains(&line), "no {line} in {text}");
        }
        metrics.draining();
        assert!(metrics.render().contains("viva_draining 1\n"));
    }

    #[test]
    fn guessing_is_counted_per_secret_and_scope() {
        let metrics = Metrics::default();
        metrics.auth_failure(Secret::Pin);
        metrics.auth_failure(Secret::Pin);
        metrics.lockout(Secret::Pin, Scope::Caller);
        metrics.refused(Secret::Pin, Scope::Caller);
        metrics.refused(Secret::Credential, Scope::Global);
        let text = metrics.render();
        assert!(
            text.contains("viva_auth_failures_total{secret=\"pin\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("viva_auth_failures_total{secret=\"credential\"} 0\n"));
        assert!(text.contains("viva_lockouts_total{secret=\"pin\",scope=\"caller\"} 1\n"));
        assert!(text.contains("viva_lockouts_total{secret=\"pin\",scope=\"global\"} 0\n"));
        assert!(
            text.contains("viva_auth_refused_total{secret=\"credential\",scope=\"global\"} 1\n")
        );
    }
}
