//! The call clock. Time is an input: the conversation never reads the wall clock, it is told
//! the time, so tests and `viva simulate` can run a call faster than real time.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::Instant;

use crate::CallError;

/// A future that completes when a clock reaches a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Time on one call, counted from when the clock was made (the call's start).
pub trait Clock: Send + Sync + 'static {
    /// Time since the call started.
    fn now(&self) -> Duration;
    /// Completes once [`now`](Self::now) has reached `deadline`.
    fn sleep_until(&self, deadline: Duration) -> Sleep;
    /// When the result of background work (speech recognition, synthesis, the interviewer's
    /// decision) that started at `started` and kept a thread busy for `busy` may be used.
    ///
    /// On a real clock that time has passed by the time the work is done. A virtual clock
    /// stands still while work runs, and charges it here so latencies stay realistic.
    fn work_done_at(&self, started: Duration, busy: Duration) -> Duration;
}

/// The real clock, for live calls.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        Box::pin(tokio::time::sleep_until(self.origin + deadline))
    }

    fn work_done_at(&self, started: Duration, busy: Duration) -> Duration {
        started + busy
    }
}

/// How a [`VirtualClock`] accounts for background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeTime {
    /// Work takes as long as it took on this machine: latencies are real, timestamps vary a
    /// little between runs.
    Measured,
    /// Work is instantaneous: every run gives the same timestamps, latencies show only the
    /// waits the conversation itself chose (end-of-turn, pacing).
    Free,
}

/// A virtual clock for tests and simulations: time jumps ahead whenever every task of the
/// runtime waits for it, so a ten-minute interview runs in the time its computing takes.
///
/// It is Tokio's paused time: while speech recognition or synthesis runs on a blocking
/// thread, time stands still, then [`ComputeTime`] decides how much of it the work is
/// charged.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    origin: Instant,
    compute: ComputeTime,
}

impl VirtualClock {
    /// Pauses the current runtime's time and starts a virtual clock at zero.
    ///
    /// Every task that takes part in the call (the transport or the simulated candidate)
    /// must wait on this clock (or Tokio timers), never on the wall clock.
    ///
    /// # Errors
    /// [`CallError::VirtualClockRuntime`] outside a current-thread Tokio runtime, the only
    /// kind whose time can be paused.
    ///
    /// # Panics
    /// When the runtime's time is already paused (e.g. `start_paused = true`).
    pub fn start(compute: ComputeTime) -> Result<Self, CallError> {
        let flavor = Handle::try_current().map(|handle| handle.runtime_flavor());
        if flavor.ok() != Some(RuntimeFlavor::CurrentThread) {
            return Err(CallError::VirtualClockRuntime);
        }
        tokio::time::pause();
        Ok(Self {
            origin: Instant::now(),
            compute,
        })
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        Box::pin(tokio::time::sleep_until(self.origin + deadline))
    }

    fn work_done_at(&self, started: Duration, busy: Duration) -> Duration {
        match self.compute {
            ComputeTime::Measured => started + busy,
            ComputeTime::Free => started,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn virtual_time_jumps_over_waits() {
        let clock = VirtualClock::start(ComputeTime::Measured).unwrap();
        let wall = std::time::Instant::now();
        clock.sleep_until(Duration::from_secs(600)).await;
        assert!(clock.now() >= Duration::from_secs(600));
        assert!(wall.elapsed() < Duration::from_secs(5));
        assert_eq!(
            clock.work_done_at(Duration::from_secs(1), Duration::from_millis(250)),
            Duration::from_millis(1250)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn free_compute_is_charged_nothing() {
        let clock = VirtualClock::start(ComputeTime::Free).unwrap();
        let started = Duration::from_secs(3);
        assert_eq!(clock.work_done_at(started, Duration::from_secs(2)), started);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn virtual_clock_needs_a_current_thread_runtime() {
        assert!(matches!(
            VirtualClock::start(ComputeTime::Free),
            Err(CallError::VirtualClockRuntime)
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn system_clock_moves_with_real_time() {
        let clock = SystemClock::start();
        let before = clock.now();
        clock.sleep_until(before + Duration::from_millis(20)).await;
        assert!(clock.now() >= before + Duration::from_millis(20));
    }
}
