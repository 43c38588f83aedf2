//! How long speech jobs waited for the machine after they were needed: the sign an operator
//! alerts on when the cores are overbooked (every reply then starts late). The cores are
//! shared by the whole process ([`crate::cores`]), so the waits go to one process-wide
//! observer, which the server points at its metrics.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A kind of speech work that waits for a worker and the cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechJob {
    /// Transcribing a stretch of the candidate's speech.
    Transcription,
    /// Synthesizing a sentence someone is waiting to hear (not one prepared ahead of need).
    Synthesis,
}

type Observer = Box<dyn Fn(SpeechJob, Duration) + Send + Sync>;

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Tells `observer` how long each transcription, and each synthesis someone waits to hear,
/// waited for a worker and the cores past the moment it was needed (zero when it got them in
/// time). One observer per process: returns false, and keeps the first, when one is set.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// static WAITED_US: AtomicU64 = AtomicU64::new(0);
/// viva_speech::observe_waits(|_job, wait| {
///     WAITED_US.fetch_add(wait.as_micros() as u64, Ordering::Relaxed);
/// });
/// ```
pub fn observe_waits(observer: impl Fn(SpeechJob, Duration) + Send + Sync + 'static) -> bool {
    OBSERVER.set(Box::new(observer)).is_ok()
}

/// `job`, needed at `due`, starts now.
pub(crate) fn started(job: SpeechJob, due: Instant) {
    if let Some(observer) = OBSERVER.get() {
        observer(job, Instant::now().saturating_duration_since(due));
    }
}
