//! Bounds the guessing of secrets a stranger can try (interview PINs, API keys): failures are
//! counted per caller (a source address, a caller's number) with exponential back-off, and
//! across all callers per time window, so neither one persistent caller nor many callers
//! together can try more than a known number of guesses.
//!
//! Every attempt is counted as a failure *before* it is checked, and forgiven if it turns out
//! right: so concurrent attempts (thirty calls typing PINs at once) cannot all slip through
//! one check, and the bound is exact.
//!
//! [`AttemptLimiter`] is a plain state machine told the time; [`Attempts`] shares one between
//! tasks on the monotonic clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures are tolerated, and what happens after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// Failures one caller may make; the last of them starts a lock-out.
    pub free_failures: u32,
    /// The first lock-out; every failure after it doubles the next one, up to `max_lockout`.
    pub lockout: Duration,
    pub max_lockout: Duration,
    /// A caller's failures are forgotten after this long without one.
    pub forget_after: Duration,
    /// At most this many failures across all callers per `window`; past it every caller waits
    /// until the oldest failure leaves the window. `None`: no limit across callers.
    pub global: Option<GlobalLimit>,
    /// Callers remembered at most (the least recently failing are forgotten first), so a flood
    /// of made-up callers cannot grow memory without bound.
    pub max_callers: usize,
}

/// A limit on failures across all callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalLimit {
    pub failures: u32,
    pub window: Duration,
}

/// Whom a lock-out applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One caller made too many failures.
    Caller,
    /// Every caller together made too many failures in the window.
    Global,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Caller => "caller",
            Scope::Global => "global",
        }
    }
}

/// An attempt refused without being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub scope: Scope,
    /// When trying again can succeed.
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct CallerState {
    failures: u32,
    last_failure: Duration,
    locked_until: Duration,
}

/// Failure counts per caller and across callers, on a clock the caller supplies.
#[derive(Debug)]
pub struct AttemptLimiter {
    policy: AttemptPolicy,
    callers: HashMap<String, CallerState>,
    /// When each failure in the global window happened, oldest first.
    recent: VecDeque<Duration>,
}

impl AttemptLimiter {
    pub fn new(policy: AttemptPolicy) -> Self {
        Self {
            policy,
            callers: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// Starts an attempt by `caller` at `now`: refused while the caller (or everyone) is
    /// locked out; otherwise counted as a failure right away. `Ok` carries the lock-out this
    /// failure starts, if it stands (see [`AttemptLimiter::forgive`]).
    pub fn attempt(&mut self, caller: &str, now: Duration) -> Result<Option<Lockout>, Lockout> {
        self.check(caller, now)?;
        Ok(self.fail(caller, now))
    }

    /// The attempt `caller` started at `at` was right: it no longer counts, and the caller's
    /// earlier failures are forgotten.
    pub fn forgive(&mut self, caller: &str, at: Duration) {
        self.callers.remove(caller);
        if let Some(index) = self.recent.iter().rposition(|failure| *failure == at) {
            self.recent.remove(index);
        }
    }

    fn check(&mut self, caller: &str, now: Duration) -> Result<(), Lockout> {
        if let Some(state) = self.callers.get(caller) {
            if now < state.locked_until {
                return Err(Lockout {
                    scope: Scope::Caller,
                    retry_after: state.locked_until - now,
                });
            }
            if now.saturating_sub(state.last_failure) >= self.policy.forget_after {
                self.callers.remove(caller);
            }
        }
        if let Some(limit) = self.policy.global {
            while self
                .recent
                .front()
                .is_some_and(|at| now.saturating_sub(*at) >= limit.window)
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= limit.failures as usize {
                let oldest = self.recent.front().copied().unwrap_or(now);
                return Err(Lockout {
                    scope: Scope::Global,
                    retry_after: (oldest + limit.window).saturating_sub(now),
                });
            }
        }
        Ok(())
    }

    fn fail(&mut self, caller: &str, now: Duration) -> Option<Lockout> {
        if self.policy.global.is_some() {
            self.recent.push_back(now);
        }
        if !self.callers.contains_key(caller) && self.callers.len() >= self.policy.max_callers {
            self.forget_oldest();
        }
        let policy = self.policy;
        let state = self
            .callers
            .entry(caller.to_owned())
            .or_insert(CallerState {
                failures: 0,
                last_failure: now,
                locked_until: Duration::ZERO,
            });
        if now.saturating_sub(state.last_failure) >= policy.forget_after {
            state.failures = 0;
        }
        state.failures += 1;
        state.last_failure = now;
        let caller_lockout = (state.failures >= policy.free_failures).then(|| {
            let doublings = (state.failures - policy.free_failures).min(31);
            let lockout = policy
                .lockout
                .saturating_mul(1 << doublings)
                .min(policy.max_lockout);
            state.locked_until = now + lockout;
            Lockout {
                scope: Scope::Caller,
                retry_after: lockout,
            }
        });
        // The failure that fills the global window locks everyone out.
        let global_lockout = policy.global.and_then(|limit| {
            (self.recent.len() == limit.failures as usize).then(|| Lockout {
                scope: Scope::Global,
                retry_after: (self.recent.front().copied().unwrap_or(now) + limit.window)
                    .saturating_sub(now),
            })
        });
        global_lockout.or(caller_lockout)
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self
            .callers
            .iter()
            .min_by_key(|(_, state)| state.last_failure)
            .map(|(caller, _)| caller.clone())
        {
            self.callers.remove(&oldest);
        }
    }
}

/// An [`AttemptLimiter`] shared by request handlers and calls, on the monotonic clock.
#[derive(Debug)]
pub struct Attempts {
    origin: Instant,
    limiter: Mutex<AttemptLimiter>,
}

/// An attempt under way: counted as a failure until [`Attempts::succeeded`] forgives it.
#[must_use = "an attempt is settled with `succeeded` or `failed`"]
#[derive(Debug)]
pub struct Attempt {
    caller: String,
    at: Duration,
    lockout: Option<Lockout>,
}

impl Attempts {
    pub fn new(policy: AttemptPolicy) -> Self {
        Self {
            origin: Instant::now(),
            limiter: Mutex::new(AttemptLimiter::new(policy)),
        }
    }

    /// Starts an attempt by `caller`, unless it is locked out.
    pub fn begin(&self, caller: &str) -> Result<Attempt, Lockout> {
        let at = self.origin.elapsed();
        let lockout = self.lock().attempt(caller, at)?;
        Ok(Attempt {
            caller: caller.to_owned(),
            at,
            lockout,
        })
    }

    /// The attempt was right.
    pub fn succeeded(&self, attempt: Attempt) {
        self.lock().forgive(&attempt.caller, attempt.at);
    }

    /// The attempt was wrong; returns the lock-out it started, if any.
    pub fn failed(&self, attempt: Attempt) -> Option<Lockout> {
        attempt.lockout
    }

    /// Whether `caller` is locked out right now, without making an attempt.
    pub fn lockout(&self, caller: &str) -> Option<Lockout> {
        let now = self.origin.elapsed();
        self.lock().check(caller, now).err()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AttemptLimiter> {
        // A panic while holding the lock leaves counts that are still counts.
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn policy(global: Option<GlobalLimit>) -> AttemptPolicy {
        AttemptPolicy {
            free_failures: 3,
            lockout: MIN,
            max_lockout: 8 * MIN,
            forget_after: 60 * MIN,
            global,
            max_callers: 4,
        }
    }

    fn at(minutes: u64) -> Duration {
        Duration::from_secs(minutes * 60)
    }

    #[test]
    fn a_caller_is_locked_out_by_its_last_free_failure_with_doubling_waits() {
        let mut limiter = AttemptLimiter::new(policy(None));
        assert_eq!(limiter.attempt("a", at(0)), Ok(None));
        assert_eq!(limiter.attempt("a", at(0)), Ok(None));
        let lockout = limiter
            .attempt("a", at(0))
            .unwrap()
            .expect("the 3rd failure locks");
        assert_eq!((lockout.scope, lockout.retry_after), (Scope::Caller, MIN));
        let refused = limiter.attempt("a", at(0) + MIN / 2).unwrap_err();
        assert_eq!(refused.retry_after, MIN / 2);
        // Others are not affected.
        assert_eq!(limiter.attempt("b", at(0)), Ok(None));
        // After the wait one more try; failing it doubles the wait, up to the cap.
        assert_eq!(
            limiter.attempt("a", at(1)).unwrap().unwrap().retry_after,
            2 * MIN
        );
        assert!(limiter.attempt("a", at(2)).is_err());
        assert_eq!(
            limiter.attempt("a", at(3)).unwrap().unwrap().retry_after,
            4 * MIN
        );
        assert_eq!(
            limiter.attempt("a", at(7)).unwrap().unwrap().retry_after,
            8 * MIN
        );
        assert_eq!(
            limiter.attempt("a", at(15)).unwrap().unwrap().retry_after,
            8 * MIN
        );
    }

    #[test]
    fn concurrent_attempts_cannot_pass_one_check_together() {
        // Thirty attempts started before any is settled: only the free ones are let through.
        let mut limiter = AttemptLimiter::new(policy(None));
        let started = (0..30)
            .filter(|_| limiter.attempt("a", at(0)).is_ok())
            .count();
        assert_eq!(started, 3);
    }

    #[test]
    fn refused_attempts_do_not_count_and_success_or_time_forgets() {
        let mut limiter = AttemptLimiter::new(policy(None));
        for _ in 0..3 {
            let _ = limiter.attempt("a", at(0));
        }
        for _ in 0..1000 {
            assert!(limiter.attempt("a", at(0)).is_err());
        }
        assert_eq!(
            limiter
                .attempt("a", at(1))
                .map(|l| l.map(|l| l.retry_after)),
            Ok(Some(2 * MIN)),
            "the refusals did not lengthen it"
        );
        // A right attempt is forgiven, with the failures before it.
        limiter.forgive("a", at(1));
        for _ in 0..2 {
            assert_eq!(limiter.attempt("a", at(3)), Ok(None));
        }
        limiter.forgive("a", at(3));
        // An hour without failures forgets them too.
        let _ = limiter.attempt("a", at(4));
        let _ = limiter.attempt("a", at(4));
        assert_eq!(limiter.attempt("a", at(65)), Ok(None));
    }

    #[test]
    fn failures_across_callers_are_bounded_per_window() {
        let global = GlobalLimit {
            failures: 5,
            window: 10 * MIN,
        };
        let mut limiter = AttemptLimiter::new(policy(Some(global)));
        for (i, caller) in ["a", "b", "c", "d"].iter().enumerate() {
            assert_eq!(limiter.attempt(caller, at(i as u64)), Ok(None));
        }
        // A right attempt does not use up the window (while it is checked it counts: had it
        // been wrong, it would have filled the window).
        assert!(limiter.attempt("right", at(4)).is_ok());
        limiter.forgive("right", at(4));
        let lockout = limiter
            .attempt("e", at(4))
            .unwrap()
            .expect("the 5th failure fills the window");
        assert_eq!(lockout.scope, Scope::Global);
        assert_eq!(lockout.retry_after, at(6), "until the first failure leaves");
        let refused = limiter.attempt("new caller", at(5)).unwrap_err();
        assert_eq!((refused.scope, refused.retry_after), (Scope::Global, at(5)));
        assert!(
            limiter.attempt("new caller", at(10)).is_ok(),
            "the first failure left the window"
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_callers() {
        let mut limiter = AttemptLimiter::new(policy(None));
        for i in 0..10_000u64 {
            let _ = limiter.attempt(&format!("caller-{i}"), Duration::from_millis(i));
        }
        assert_eq!(limiter.callers.len(), 4);
        assert!(limiter.callers.contains_key("caller-9999"));
    }
}
