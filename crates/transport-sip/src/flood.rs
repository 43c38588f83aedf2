//! Per-source rate limits on the requests that cost the server something: an INVITE may take
//! an RTP port pair and a call slot, a REGISTER a reply and a log line. A flood from one
//! address is answered 503 (with `Retry-After`) after a burst, so it cannot exhaust ports or
//! crowd out other callers.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// How fast one source address may send INVITEs and REGISTERs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRate {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once before the rate applies.
    pub burst: u32,
}

impl Default for SourceRate {
    /// 5 per second after a burst of 20: far above what a phone or a trunk's normal traffic
    /// sends, far below what exhausts a range of RTP ports.
    fn default() -> Self {
        SourceRate {
            per_second: 5,
            burst: 20,
        }
    }
}

/// Checks after which keys idle long enough to be back at a full burst are dropped, so a
/// flood from many addresses does not grow memory without bound.
const PRUNE_EVERY: u64 = 1024;

/// Keeps one rate per source address.
pub(crate) struct FloodGuard<C: Clock = DefaultClock> {
    limiter: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    checks: AtomicU64,
}

impl FloodGuard {
    pub(crate) fn new(rate: SourceRate) -> Self {
        FloodGuard::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock + Clone> FloodGuard<C> {
    fn with_clock(rate: SourceRate, clock: C) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN));
        FloodGuard {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// Whether `source` may send one more request now; if not, how long until it may.
    pub(crate) fn admit(&self, source: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&canonical(source))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// An IPv4 address seen over IPv6 counts as itself, so one source has one budget.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn a_source_gets_its_burst_then_the_rate_and_others_are_unaffected() {
        let clock = FakeRelativeClock::default();
        let guard = FloodGuard::with_clock(
            SourceRate {
                per_second: 2,
                burst: 3,
            },
            clock.clone(),
        );
        let flooder: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(guard.admit(flooder), Ok(()));
        }
        let wait = guard.admit(flooder).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(guard.admit("192.0.2.1".parse().unwrap()), Ok(()));
        // The same address over IPv6 shares the budget.
        assert!(guard.admit("::ffff:198.51.100.7".parse().unwrap()).is_err());
        clock.advance(Duration::from_millis(500));
        assert_eq!(guard.admit(flooder), Ok(()));
        assert!(guard.admit(flooder).is_err());
    }
}
