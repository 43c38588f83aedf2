//! Interview PINs on the phone: the one place where a PIN (or an interview id given in its
//! place) is checked, so guessing is bounded the same way for SIP keypads and CPaaS media
//! streams, and a wrong PIN never tells whether some interview exists.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use crate::attempts::{AttemptPolicy, Attempts, GlobalLimit, Lockout};
use crate::config::PinConfig;
use crate::metrics::{Metrics, Secret};

/// Who is typing PINs, as far as the server can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCaller {
    /// A caller's number, as a trusted trunk or the CPaaS passed it on: through a trunk every
    /// caller shares the trunk's address, so the number is what tells them apart.
    Number(String),
    /// The network address the call came from.
    Address(IpAddr),
}

impl PinCaller {
    fn key(&self) -> String {
        match self {
            PinCaller::Number(number) => format!("number:{number}"),
            PinCaller::Address(ip) => format!("address:{ip}"),
        }
    }
}

/// Why a PIN opened nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRefusal {
    /// Too many wrong PINs: this one was not even checked.
    LockedOut(Lockout),
    /// No interview that can be joined now has this PIN (whether or not one ever had it).
    NoMatch,
}

/// Checks PINs and counts the wrong ones.
pub struct PinGate {
    attempts: Attempts,
    metrics: Arc<Metrics>,
}

impl PinGate {
    pub fn new(config: &PinConfig, metrics: Arc<Metrics>) -> Self {
        let policy = AttemptPolicy {
            free_failures: config.failures_per_caller,
            lockout: std::time::Duration::from_secs(config.lockout_secs),
            max_lockout: std::time::Duration::from_secs(config.max_lockout_secs),
            forget_after: std::time::Duration::from_secs(24 * 3600),
            global: Some(GlobalLimit {
                failures: config.failures_per_hour,
                window: std::time::Duration::from_secs(3600),
            }),
            max_callers: 10_000,
        };
        Self {
            attempts: Attempts::new(policy),
            metrics,
        }
    }

    /// Whether `caller` is locked out right now (so the prompt can say so at once, before
    /// any key is typed); a refusal is counted like a refused PIN.
    pub fn refuse_if_locked_out(&self, caller: &PinCaller) -> bool {
        match self.attempts.lockout(&caller.key()) {
            Some(lockout) => {
                self.metrics.refused(Secret::Pin, lockout.scope);
                true
            }
            None => false,
        }
    }

    /// Opens what `lookup` finds for the PIN `caller` entered (an interview held for the
    /// call), unless the caller is locked out (then `lookup` is never run). `lookup` answers
    /// `None` for every PIN that cannot be joined now, whatever the reason, so a refusal
    /// reveals nothing.
    pub async fn open<T, F, Fut>(&self, caller: &PinCaller, lookup: F) -> Result<T, PinRefusal>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let attempt = match self.attempts.begin(&caller.key()) {
            Ok(attempt) => attempt,
            Err(lockout) => {
                self.metrics.refused(Secret::Pin, lockout.scope);
                return Err(PinRefusal::LockedOut(lockout));
            }
        };
        match lookup().await {
            Some(opened) => {
                self.attempts.succeeded(attempt);
                Ok(opened)
            }
            None => {
                self.metrics.auth_failure(Secret::Pin);
                if let Some(lockout) = self.attempts.failed(attempt) {
                    self.metrics.lockout(Secret::Pin, lockout.scope);
                    tracing::warn!(
                        ?caller,
                        scope = lockout.scope.as_str(),
                        wait_secs = lockout.retry_after.as_secs(),
                        "PIN entry locked out after too many wrong PINs"
                    );
                }
                Err(PinRefusal::NoMatch)
            }
        }
    }
}
