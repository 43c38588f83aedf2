//! The machine's cores, shared by every speech job, and the order jobs get them in.
//!
//! A lone transcription or synthesis is fastest on every core, but whisper.cpp's threads
//! spin at barriers: a multi-threaded transcription that competes for its cores stalls.
//! Measured on 2 cores with both already busy (two neighbour processes), 2-10 s utterances
//! took 9.5 s at p95 on 2 threads and 0.8 s on 1. With one core busy, 2 threads gained
//! nothing (390 ms vs 368 ms); on an idle machine they save a third (213 ms vs 336 ms).
//!
//! So each job leases cores before it runs: at least one (waiting for it if other jobs hold
//! them all), plus any other free core that the rest of the machine has left idle over the
//! last few tenths of a second and no other job is waiting for. A core is a slot: a lock file
//! in the temp directory, one per core, held with an advisory lock while the job runs. Every
//! viva process on the machine leases from the same slots, so two servers (or a server and
//! `viva bench`) never put more speech threads on the cores than there are, and the operating
//! system frees the slots of a process that dies.
//!
//! Jobs that wait are served **earliest due first** ([`DueQueue`]): each says when its result
//! is needed (a reply's first sentence now, its fifth when playback reaches it, a planned line
//! some day), so no interview's first words wait behind another's tail.
//!
//! A pause is judged and transcribed at once, and the turn waits for both. A transcription
//! that found the judgement (tens of ms) holding one of two cores ran narrow: a 7 s answer
//! then took 750 ms instead of 400. So a job that wants more cores waits for a **brief**
//! lease ([`CoreBudget::lease_brief`]) of this process to end rather than start narrow,
//! unless other jobs wait behind it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How often the load outside this process is sampled, and how many samples are remembered
/// (the busiest of them counts, so a neighbour that just paused is not mistaken for gone).
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const SAMPLES_KEPT: usize = 3;
/// How often the first waiter looks for a free slot again when no release in this process
/// woke it (slots freed by other processes are only seen this way): short next to a job.
const SLOT_POLL: Duration = Duration::from_millis(5);

/// The machine's budget, sized to the cores this process may use.
pub(crate) fn machine() -> &'static CoreBudget {
    static MACHINE: LazyLock<CoreBudget> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let slots = std::env::temp_dir().join("viva-cores");
        CoreBudget::new(cores, slots, OutsideLoad::start())
    });
    &MACHINE
}

/// Jobs waiting for a resource, let through earliest due first (ties in arrival order).
///
/// Only the first waiter tries to take the resource; the others sleep until it has, so a job
/// due later never takes a core (or the voice) that one due sooner is waiting for.
pub(crate) struct DueQueue {
    waiting: Mutex<Waiting>,
    changed: Condvar,
}

#[derive(Default)]
struct Waiting {
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    arrivals: u64,
}

impl DueQueue {
    pub(crate) fn new() -> Self {
        Self {
            waiting: Mutex::new(Waiting::default()),
            changed: Condvar::new(),
        }
    }

    /// Waits until it is the turn of a job due at `due` and `take` succeeds. `take` is told
    /// how many jobs wait behind this one and runs with the queue locked, so it must be quick.
    pub(crate) fn wait_turn<R>(&self, due: Instant, mut take: impl FnMut(usize) -> Option<R>) -> R {
        let mut waiting = self.lock();
        let me = Reverse((due, waiting.arrivals));
        waiting.arrivals += 1;
        waiting.queue.push(me);
        loop {
            if waiting.queue.peek() == Some(&me)
                && let Some(taken) = take(waiting.queue.len() - 1)
            {
                waiting.queue.pop();
                self.changed.notify_all();
                return taken;
            }
            waiting = self
                .changed
                .wait_timeout(waiting, SLOT_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Something was given back: the first waiter tries again now.
    pub(crate) fn released(&self) {
        let _waiting = self.lock();
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Cores that speech jobs lease; see the module docs.
pub(crate) struct CoreBudget {
    total: usize,
    /// Where the slots' lock files are.
    slots: PathBuf,
    outside: OutsideLoad,
    waiting: DueQueue,
    /// Brief leases of this process now held.
    brief: AtomicUsize,
}

impl CoreBudget {
    fn new(total: usize, slots: PathBuf, outside: OutsideLoad) -> Self {
        if let Err(error) = std::fs::create_dir_all(&slots) {
            tracing::warn!(%error, dir = %slots.display(), "cannot make the core slots; speech runs on one core per job");
        }
        Self {
            total: total.max(1),
            slots,
            outside,
            waiting: DueQueue::new(),
            brief: AtomicUsize::new(0),
        }
    }

    /// Leases between 1 and `want` cores for a job due at `due`, waiting (earliest due first)
    /// until at least one is free. A job with others waiting behind it takes one core, so
    /// they can start beside it; one without, that wants more than one, also waits for any
    /// brief lease of this process to end ([`Self::lease_brief`]). Where the slots cannot be used at all (an unwritable temp
    /// directory), the job runs on one core unleased: single-threaded transcription does not
    /// stall when cores are shared.
    pub(crate) fn lease(&self, want: usize, due: Instant) -> CoreLease<'_> {
        let usable = usable_cores(self.total, self.outside.busy_cores());
        self.waiting.wait_turn(due, |behind| {
            let want = if behind > 0 { 1 } else { want.clamp(1, usable) };
            // A brief job gives its core back sooner than running narrow would cost.
            if want > 1 && self.brief.load(Ordering::Acquire) > 0 {
                return None;
            }
            self.try_lease(want)
        })
    }

    /// Leases one core for a job of tens of milliseconds (a turn judgement), due now; a
    /// job that wants more cores waits for it to end instead of starting narrow.
    pub(crate) fn lease_brief(&self) -> CoreLease<'_> {
        // Counted while the queue is locked, so no wide job sees the core gone but not why.
        self.waiting.wait_turn(Instant::now(), |_| {
            let mut lease = self.try_lease(1)?;
            self.brief.fetch_add(1, Ordering::AcqRel);
            lease.brief = true;
            Some(lease)
        })
    }

    /// One pass over the slots: the lease if at least one was free.
    fn try_lease(&self, want: usize) -> Option<CoreLease<'_>> {
        let mut usable_slots = 0;
        let mut held = Vec::new();
        for slot in 0..self.total {
            if held.len() == want {
                break;
            }
            let Ok(file) = self.open_slot(slot) else {
                continue;
            };
            usable_slots += 1;
            if file.try_lock().is_ok() {
                held.push(file);
            }
        }
        (!held.is_empty() || usable_slots == 0).then(|| CoreLease {
            threads: held.len().max(1),
            slots: held,
            brief: false,
            budget: self,
        })
    }

    fn open_slot(&self, slot: usize) -> std::io::Result<File> {
        let path = self.slots.join(format!("core-{slot}.lock"));
        // Reading is enough to lock, so slots another user made are shared too; only making
        // a slot needs write access.
        File::open(&path).or_else(|_| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        })
    }
}

/// Cores leased to one job; their slots are freed when it is dropped.
pub(crate) struct CoreLease<'a> {
    threads: usize,
    slots: Vec<File>,
    /// Counted in [`CoreBudget::brief`].
    brief: bool,
    budget: &'a CoreBudget,
}

impl CoreLease<'_> {
    /// How many threads the job may run.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Gives back every core but one (the job goes on single-threaded).
    pub(crate) fn narrow(&mut self) {
        self.slots.truncate(1);
        self.threads = 1;
        self.budget.waiting.released();
    }
}

impl Drop for CoreLease<'_> {
    fn drop(&mut self) {
        // Unlocked before the waiters are woken, so the first of them finds the slots free.
        self.slots.clear();
        if self.brief {
            self.budget.brief.fetch_sub(1, Ordering::AcqRel);
        }
        self.budget.waiting.released();
    }
}

/// Cores a job may use when `outside` cores' worth of work from other processes is running:
/// what is left, rounded to the nearest core, and never less than one.
fn usable_cores(total: usize, outside: f32) -> usize {
    let spare = total as f32 - outside.max(0.0);
    (spare.round() as usize).clamp(1, total)
}

/// How busy the machine is outside this process, measured by a sampling thread. Where it
/// cannot be measured (no /proc), the machine counts as fully busy: jobs then run on one
/// core each, which is always safe.
struct OutsideLoad {
    /// The busiest recent sample, in cores (f32 bits).
    busy: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl OutsideLoad {
    fn start() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        let busy = std::sync::Arc::new(AtomicU32::new(f32::INFINITY.to_bits()));
        let shared = busy.clone();
        let spawned = std::thread::Builder::new()
            .name("viva-cpu-load".into())
            .spawn(move || {
                let mut recent = [f32::INFINITY; SAMPLES_KEPT];
                let mut previous = CpuTimes::now();
                for i in 0.. {
                    std::thread::sleep(SAMPLE_EVERY);
                    let current = CpuTimes::now();
                    recent[i % SAMPLES_KEPT] = match (&previous, &current) {
                        (Some(before), Some(after)) => after.outside_busy_cores_since(before),
                        _ => f32::INFINITY,
                    };
                    let busiest = recent.iter().copied().fold(0.0, f32::max);
                    shared.store(busiest.to_bits(), Ordering::Relaxed);
                    previous = current;
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot watch the CPU load; speech runs on one core per job");
        }
        Self { busy }
    }

    fn busy_cores(&self) -> f32 {
        f32::from_bits(self.busy.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// CPU time counters, in clock ticks: the whole machine (from /proc/stat) and this process
/// (from /proc/self/stat).
#[derive(Debug, Clone, PartialEq)]
struct CpuTimes {
    cpus: usize,
    machine_busy: u64,
    machine_total: u64,
    process: u64,
}

impl CpuTimes {
    fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        Self::parse(&stat, &own)
    }

    fn parse(stat: &str, own: &str) -> Option<Self> {
        let mut lines = stat.lines();
        let totals: Vec<u64> = lines
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let [user, nice, system, idle, iowait, irq, softirq, steal] = *totals.get(..8)? else {
            return None;
        };
        let cpus = lines
            .filter(|line| {
                line.starts_with("cpu") && line.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
            })
            .count();
        // Fields after the command name, which may itself hold spaces and parentheses:
        // state is the 3rd field overall, utime and stime the 14th and 15th.
        let after_name = &own[own.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let machine_busy = user + nice + system + irq + softirq + steal;
        Some(Self {
            cpus: cpus.max(1),
            machine_busy,
            machine_total: machine_busy + idle + iowait,
            process: utime + stime,
        })
    }

    /// Cores' worth of work other processes did between `before` and now.
    fn outside_busy_cores_since(&self, before: &CpuTimes) -> f32 {
        let elapsed = self.machine_total.saturating_sub(before.machine_total);
        if elapsed == 0 {
            return f32::INFINITY;
        }
        let busy = self.machine_busy.saturating_sub(before.machine_busy);
        let ours = self.process.saturating_sub(before.process);
        busy.saturating_sub(ours) as f32 / elapsed as f32 * self.cpus as f32
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A budget with slots of its own (so tests do not compete with each other).
    fn budget(total: usize, outside: f32) -> CoreBudget {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let slots = std::env::temp_dir().join(format!(
            "viva-cores-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        CoreBudget::new(
            total,
            slots,
            OutsideLoad {
                busy: Arc::new(AtomicU32::new(outside.to_bits())),
            },
        )
    }

    #[test]
    fn a_lone_job_on_an_idle_machine_gets_every_core() {
        let budget = budget(2, 0.1);
        assert_eq!(budget.lease(4, Instant::now()).threads(), 2);
        assert_eq!(budget.lease(1, Instant::now()).threads(), 1);
    }

    #[test]
    fn jobs_share_the_cores_and_wait_for_one_when_all_are_leased() {
        let budget = Arc::new(budget(2, 0.0));
        let first = budget.lease(1, Instant::now());
        let second = budget.lease(2, Instant::now());
        assert_eq!((first.threads(), second.threads()), (1, 1));
        let waiting = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.lease(2, Instant::now()).threads())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiting.is_finished(), "no core is free");
        drop(first);
        assert_eq!(waiting.join().unwrap(), 1);
        drop(second);
        let mut wide = budget.lease(2, Instant::now());
        assert_eq!(wide.threads(), 2, "every core came back");
        wide.narrow();
        assert_eq!(wide.threads(), 1);
        assert_eq!(
            budget.lease(2, Instant::now()).threads(),
            1,
            "narrowing gave one back"
        );
    }

    #[test]
    fn waiting_jobs_get_the_core_earliest_due_first() {
        let budget = Arc::new(budget(1, 0.0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = budget.lease(1, Instant::now());
        let now = Instant::now();
        let waiters: Vec<_> = [("tail", 300), ("first words", 0), ("next sentence", 100)]
            .into_iter()
            .map(|(job, due_ms)| {
                let (budget, order) = (budget.clone(), order.clone());
                let waiter = std::thread::spawn(move || {
                    let _lease = budget.lease(1, now + Duration::from_millis(due_ms));
                    order.lock().unwrap().push(job);
                    std::thread::sleep(Duration::from_millis(10));
                });
                // Each is queued before the next arrives.
                std::thread::sleep(Duration::from_millis(30));
                waiter
            })
            .collect();
        assert!(order.lock().unwrap().is_empty(), "the only core is held");
        drop(held);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["first words", "next sentence", "tail"],
            "served by due time, not by arrival"
        );
    }

    #[test]
    fn a_job_with_others_waiting_behind_it_takes_one_core() {
        let budget = Arc::new(budget(2, 0.0));
        let held = budget.lease(2, Instant::now());
        assert_eq!(held.threads(), 2);
        let now = Instant::now();
        let waiters: Vec<_> = (0..2)
            .map(|i| {
                let budget = budget.clone();
                let waiter = std::thread::spawn(move || {
                    let lease = budget.lease(2, now + Duration::from_millis(i));
                    let threads = lease.threads();
                    std::thread::sleep(Duration::from_millis(50));
                    threads
                });
                std::thread::sleep(Duration::from_millis(30));
                waiter
            })
            .collect();
        drop(held);
        let threads: Vec<usize> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(threads, [1, 1], "both ran side by side on a core each");
    }

    #[test]
    fn a_wide_job_waits_for_a_brief_one_but_not_for_a_long_one() {
        let budget = Arc::new(budget(2, 0.0));
        let judging = budget.lease_brief();
        assert_eq!(judging.threads(), 1);
        let waiting = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.lease(2, Instant::now()).threads())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !waiting.is_finished(),
            "a core is free, but the brief job's comes back soon"
        );
        drop(judging);
        assert_eq!(
            waiting.join().unwrap(),
            2,
            "it ran wide once the brief job was done"
        );

        let long = budget.lease(1, Instant::now());
        assert_eq!(budget.lease(2, Instant::now()).threads(), 1);
        drop(long);
    }

    #[test]
    fn a_wide_job_with_others_behind_it_does_not_wait_for_a_brief_one() {
        let budget = Arc::new(budget(2, 0.0));
        let judging = budget.lease_brief();
        let started = Arc::new(Mutex::new(Vec::new()));
        let now = Instant::now();
        let waiters: Vec<_> = (0..2)
            .map(|i| {
                let (budget, started) = (budget.clone(), started.clone());
                let waiter = std::thread::spawn(move || {
                    let lease = budget.lease(2, now + Duration::from_millis(i));
                    started.lock().unwrap().push(i);
                    let threads = lease.threads();
                    std::thread::sleep(Duration::from_millis(200));
                    threads
                });
                std::thread::sleep(Duration::from_millis(30));
                waiter
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            *started.lock().unwrap(),
            [0],
            "the first took the free core once another waited behind it"
        );
        drop(judging);
        let threads: Vec<usize> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(
            threads,
            [1, 1],
            "and the second the core the brief job gave back"
        );
    }

    #[test]
    fn a_busy_machine_limits_jobs_to_one_core() {
        assert_eq!(usable_cores(2, 0.4), 2);
        assert_eq!(usable_cores(2, 0.6), 1);
        assert_eq!(usable_cores(2, 2.0), 1);
        assert_eq!(usable_cores(8, 3.2), 5);
        assert_eq!(usable_cores(2, f32::INFINITY), 1);
        assert_eq!(budget(2, 1.0).lease(2, Instant::now()).threads(), 1);
    }

    #[test]
    fn processes_sharing_the_slots_share_the_cores() {
        let first = budget(2, 0.0);
        let second = Arc::new(CoreBudget::new(
            2,
            first.slots.clone(),
            OutsideLoad {
                busy: Arc::new(AtomicU32::new(0.0f32.to_bits())),
            },
        ));
        let wide = first.lease(2, Instant::now());
        assert_eq!(wide.threads(), 2);
        let waiting = std::thread::spawn(move || second.lease(2, Instant::now()).threads());
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !waiting.is_finished(),
            "the other budget's job holds every core"
        );
        drop(wide);
        assert_eq!(waiting.join().unwrap(), 2);
    }

    #[test]
    fn without_usable_slots_a_job_runs_on_one_core() {
        let budget = CoreBudget::new(
            2,
            PathBuf::from("/proc/viva-cores"),
            OutsideLoad {
                busy: Arc::new(AtomicU32::new(0.0f32.to_bits())),
            },
        );
        assert_eq!(budget.lease(2, Instant::now()).threads(), 1);
        assert_eq!(
            budget.lease(2, Instant::now()).threads(),
            1,
            "and never waits"
        );
    }

    const STAT: &str = "cpu  100 5 50 800 10 3 2 0 0 0\ncpu0 50 2 25 400 5 1 1 0 0 0\n\
                        cpu1 50 3 25 400 5 2 1 0 0 0\nintr 12345\nctxt 999\n";

    #[test]
    fn cpu_times_come_from_proc_stat_and_the_process_stat() {
        let own = "4242 (viva (test) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 30 20 0 0 20 0 9";
        let times = CpuTimes::parse(STAT, own).unwrap();
        assert_eq!(
            times,
            CpuTimes {
                cpus: 2,
                machine_busy: 160,
                machine_total: 970,
                process: 50,
            }
        );
        assert_eq!(CpuTimes::parse("garbage", own), None);
        assert_eq!(CpuTimes::parse(STAT, "4242 (viva) S 1"), None);
    }

    #[test]
    fn outside_load_excludes_this_process() {
        let before = CpuTimes {
            cpus: 2,
            machine_busy: 0,
            machine_total: 0,
            process: 0,
        };
        // 20 ticks across 2 cores, 15 busy, 10 of them ours: others used 5/20 of 2 cores.
        let after = CpuTimes {
            cpus: 2,
            machine_busy: 15,
            machine_total: 20,
            process: 10,
        };
        assert!((after.outside_busy_cores_since(&before) - 0.5).abs() < 1e-6);
        assert_eq!(before.outside_busy_cores_since(&before), f32::INFINITY);
    }

    #[test]
    fn this_machine_is_measured() {
        assert!(CpuTimes::now().is_some(), "/proc is readable on Linux");
    }
}
