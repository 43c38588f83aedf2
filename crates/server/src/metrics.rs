//! Operational metrics in the Prometheus text format at `/metrics`: calls in progress, the
//! most the machine takes, calls finished and turned away, how long candidates wait for the
//! interviewer to answer, and guessing of secrets (wrong PINs and keys, lock-outs). Counts
//! only: no candidate, interview or PIN appears here.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use viva_call::TurnLatency;
use viva_store::Outcome;

use crate::attempts::Scope;

/// Upper bounds (ms) of the response-latency histogram buckets: a live interview should stay
/// under a second; a few seconds is a bad experience.
const RESPONSE_BUCKETS_MS: [u64; 10] = [250, 500, 750, 1000, 1500, 2000, 3000, 5000, 8000, 15000];

/// A secret strangers can try to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// An interview PIN on the phone (SIP keypad or CPaaS media stream).
    Pin,
    /// The recruiter API key, or the CPaaS stream token.
    Credential,
}

const SECRETS: [(Secret, &str); 2] = [(Secret::Pin, "pin"), (Secret::Credential, "credential")];

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

/// Each [`CallTransport`]'s label, in its order (`transport as usize` indexes them).
const TRANSPORTS: [&str; 4] = ["sip", "media_stream", "browser", "dial"];

/// Why a call was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnedAway {
    /// Every seat was taken (`server.max_calls`).
    Capacity,
    /// The server is draining before it stops.
    Draining,
}

/// Each [`TurnedAway`]'s label, in its order.
const TURNED_AWAY: [&str; 2] = ["capacity", "draining"];
const SCOPES: [(Scope, &str); 2] = [(Scope::Caller, "caller"), (Scope::Global, "global")];

/// Wrong attempts, lock-outs, and attempts refused while locked out, of one secret.
#[derive(Default)]
struct Guessing {
    failures: AtomicU64,
    lockouts: [AtomicU64; 2],
    refused: [AtomicU64; 2],
}

fn scope_index(scope: Scope) -> usize {
    match scope {
        Scope::Caller => 0,
        Scope::Global => 1,
    }
}

/// Counters shared by every call; cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    calls_active: AtomicU64,
    call_capacity: AtomicU64,
    /// Calls turned away, per [`TURNED_AWAY`] and [`TRANSPORTS`] entry.
    refused_calls: [[AtomicU64; TRANSPORTS.len()]; TURNED_AWAY.len()],
    draining: AtomicBool,
    completed: AtomicU64,
    abandoned: AtomicU64,
    failed: AtomicU64,
    response_buckets: [AtomicU64; RESPONSE_BUCKETS_MS.len()],
    response_count: AtomicU64,
    response_sum_ms: AtomicU64,
    pin: Guessing,
    credential: Guessing,
}

impl Metrics {
    fn guessing(&self, secret: Secret) -> &Guessing {
        match secret {
            Secret::Pin => &self.pin,
            Secret::Credential => &self.credential,
        }
    }

    /// Someone presented a wrong `secret`.
    pub fn auth_failure(&self, secret: Secret) {
        self.guessing(secret)
            .failures
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A wrong `secret` locked a caller (or everyone) out.
    pub fn lockout(&self, secret: Secret, scope: Scope) {
        self.guessing(secret).lockouts[scope_index(scope)].fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt at `secret` was refused unchecked, because of a lock-out.
    pub fn refused(&self, secret: Secret, scope: Scope) {
        self.guessing(secret).refused[scope_index(scope)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many interviews the machine takes at once.
    pub fn set_call_capacity(&self, max: usize) {
        self.call_capacity.store(max as u64, Ordering::Relaxed);
    }

    /// A call by `transport` was turned away, `why`.
    pub fn call_refused(&self, transport: CallTransport, why: TurnedAway) {
        self.refused_calls[why as usize][transport as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The server began draining.
    pub fn draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn call_started(&self) {
        self.calls_active.fetch_add(1, Ordering::Relaxed);
    }

    /// A call ended with `outcome` after these responses.
    pub fn call_ended(&self, outcome: Outcome, latencies: &[TurnLatency]) {
        self.calls_active.fetch_sub(1, Ordering::Relaxed);
        let counter = match outcome {
            Outcome::Completed => &self.completed,
            Outcome::Abandoned => &self.abandoned,
            Outcome::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        for ms in latencies.iter().filter_map(TurnLatency::response_ms) {
            self.response_count.fetch_add(1, Ordering::Relaxed);
            self.response_sum_ms.fetch_add(ms, Ordering::Relaxed);
            for (bound, bucket) in RESPONSE_BUCKETS_MS.iter().zip(&self.response_buckets) {
                if ms <= *bound {
                    bucket.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP viva_calls_active Interviews in progress.\n# TYPE viva_calls_active gauge\nviva_calls_active {}",
            load(&self.calls_active)
        );
        let _ = writeln!(
            out,
            "# HELP viva_calls_max Interviews the machine takes at once (server.max_calls); past it new calls are turned away.\n# TYPE viva_calls_max gauge\nviva_calls_max {}",
            load(&self.call_capacity)
        );
        let _ = writeln!(
            out,
            "# HELP viva_draining 1 while the server drains before it stops: new calls are turned away.\n# TYPE viva_draining gauge\nviva_draining {}",
            u8::from(self.draining.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP viva_calls_refused_total Calls turned away (every seat taken, or the server draining), by how they came.\n# TYPE viva_calls_refused_total counter"
        );
        for (reason, counters) in TURNED_AWAY.iter().zip(&self.refused_calls) {
            for (name, counter) in TRANSPORTS.iter().zip(counters) {
                let _ = writeln!(
                    out,
                    "viva_calls_refused_total{{transport=\"{name}\",reason=\"{reason}\"}} {}",
                    load(counter)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP viva_calls_total Interviews that ended, by outcome.\n# TYPE viva_calls_total counter"
        );
        for (outcome, counter) in [
            ("completed", &self.completed),
            ("abandoned", &self.abandoned),
            ("failed", &self.failed),
        ] {
            let _ = writeln!(
                out,
                "viva_calls_total{{outcome=\"{outcome}\"}} {}",
                load(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP viva_response_latency_ms From the end of the candidate's speech to the interviewer's first audio.\n# TYPE viva_response_latency_ms histogram"
        );
        for (bound, bucket) in RESPONSE_BUCKETS_MS.iter().zip(&self.response_buckets) {
            let _ = writeln!(
                out,
                "viva_response_latency_ms_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.response_count);
        let _ = writeln!(
            out,
            "viva_response_latency_ms_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "viva_response_latency_ms_sum {}",
            load(&self.response_sum_ms)
        );
        let _ = writeln!(out, "viva_response_latency_ms_count {count}");
        let _ = writeln!(
            out,
            "# HELP viva_auth_failures_total Wrong secrets presented: PINs on the phone, API keys and CPaaS tokens.\n# TYPE viva_auth_failures_total counter"
        );
        for (secret, name) in SECRETS {
            let _ = writeln!(
                out,
                "viva_auth_failures_total{{secret=\"{name}\"}} {}",
                load(&self.guessing(secret).failures)
            );
        }
        for (metric, help, pick) in [
            (
                "viva_lockouts_total",
                "Lock-outs started by wrong secrets, per caller or for everyone.",
                (|g: &Guessing| &g.lockouts) as fn(&Guessing) -> &[AtomicU64; 2],
            ),
            (
                "viva_auth_refused_total",
                "Attempts refused unchecked during a lock-out.",
                |g: &Guessing| &g.refused,
            ),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
            for (secret, secret_name) in SECRETS {
                for (scope, scope_name) in SCOPES {
                    let _ = writeln!(
                        out,
                        "{metric}{{secret=\"{secret_name}\",scope=\"{scope_name}\"}} {}",
                        load(&pick(self.guessing(secret))[scope_index(scope)])
                    );
                }
            }
        }
        out
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
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.call_started();
        metrics.call_started();
        metrics.call_ended(
            Outcome::Completed,
            &[answered(1, 1_000, 1_600), answered(2, 5_000, 7_500)],
        );
        let text = metrics.render();
        assert!(text.contains("viva_calls_active 1\n"), "{text}");
        assert!(text.contains("viva_calls_total{outcome=\"completed\"} 1\n"));
        assert!(text.contains("viva_response_latency_ms_bucket{le=\"500\"} 0\n"));
        assert!(text.contains("viva_response_latency_ms_bucket{le=\"750\"} 1\n"));
        assert!(text.contains("viva_response_latency_ms_bucket{le=\"3000\"} 2\n"));
        assert!(text.contains("viva_response_latency_ms_sum 3100\n"));
        assert!(text.contains("viva_response_latency_ms_count 2\n"));
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
