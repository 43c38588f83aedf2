//! `viva bench soak`: a steady load of phone interviews on one `viva serve` for a long time,
//! watching what only time shows: memory that keeps growing, file descriptors (sockets,
//! recordings, the database) that are not given back, calls that fail.
//!
//! `--calls` callers each call, answer `--turns` times and hang up, then call again at once,
//! until `--minutes` have passed; the server's resident memory, open descriptors and threads
//! are sampled every `--sample-secs`. After the last call the server must be back where it
//! started: no interview in progress, as many descriptors open. Figures, never verdicts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::answers::Answer;
use super::server::{ProcSample, ServerChild, Target, histogram_quantile, sample};
use super::session::{self, SessionFigures};
use crate::cli::BenchSoakArgs;

/// Samples from the first part of the run are left out of the memory slope: caches (the
/// voice cache, the allocator's arenas, the database's pages) fill while the load ramps up.
const WARM_UP_SHARE: f64 = 0.2;
/// How long the server may take to end the last calls once their callers hung up.
const SETTLE: Duration = Duration::from_secs(60);

/// One look at the server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_mib: f64,
    descriptors: usize,
    threads: usize,
}

impl Sample {
    fn take(pid: u32, at: Duration) -> Option<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let threads = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))?
            .trim()
            .parse()
            .ok()?;
        Some(Sample {
            at,
            rss_mib: ProcSample::read(pid)?.rss_mib,
            descriptors: std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count(),
            threads,
        })
    }
}

pub async fn run(
    config_file: Option<&std::path::Path>,
    args: &BenchSoakArgs,
    answers: &Arc<Vec<Answer>>,
) -> anyhow::Result<Value> {
    if args.calls == 0 || args.turns == 0 || args.minutes == 0 || args.sample_secs == 0 {
        bail!("--calls, --turns, --minutes and --sample-secs must each be at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "viva bench soak: {cores} cores, {} calls at once for {} min, {} answers a call, job {}",
        args.calls, args.minutes, args.turns, args.job
    );
    let server = ServerChild::start(config_file).await?;
    let took = server.voice_ready(&args.job).await?;
    eprintln!(
        "the job's planned lines are in the voice cache ({:.0} s)",
        took.as_secs_f64()
    );
    let pid = server.pid();
    let started = Instant::now();
    let before = Sample::take(pid, Duration::ZERO).context("cannot read the server's /proc")?;
    let deadline = started + Duration::from_secs(args.minutes * 60);

    let mut callers = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(args.stagger_ms)).await;
        }
        let (target, answers) = (server.target.clone(), Arc::clone(answers));
        let (job, turns) = (args.job.clone(), args.turns);
        callers.push(tokio::spawn(async move {
            keep_calling(target, job, answers, i, turns, deadline).await
        }));
    }
    let mut samples = vec![before];
    let every = Duration::from_secs(args.sample_secs);
    while Instant::now() < deadline {
        tokio::time::sleep(every.min(deadline.saturating_duration_since(Instant::now()))).await;
        if let Some(sample) = Sample::take(pid, started.elapsed()) {
            eprintln!(
                "{:>6.1} min: RSS {:.0} MiB, {} descriptors, {} threads",
                sample.at.as_secs_f64() / 60.0,
                sample.rss_mib,
                sample.descriptors,
                sample.threads
            );
            samples.push(sample);
        }
    }
    let mut calls: Vec<SessionFigures> = Vec::new();
    for caller in callers {
        calls.extend(caller.await??);
    }
    // The callers hung up; the server ends each interview and writes its report.
    let target = server.target.clone();
    let settled = tokio::task::spawn_blocking(move || settle(&target)).await??;
    let after = Sample::take(pid, started.elapsed()).context("the server is gone")?;
    let metrics = {
        let target = server.target.clone();
        tokio::task::spawn_blocking(move || target.metrics()).await??
    };
    Ok(report(
        args, &samples, &before, &after, settled, &calls, &metrics,
    ))
}

/// One caller: call, answer, hang up, and again, until `deadline`. Scheduling failures end
/// the caller with an error; a call that ends early is counted in its figures.
async fn keep_calling(
    target: Target,
    job: String,
    answers: Arc<Vec<Answer>>,
    caller: usize,
    turns: usize,
    deadline: Instant,
) -> anyhow::Result<Vec<SessionFigures>> {
    let mut calls = Vec::new();
    let stream_url = target.stream_url();
    while Instant::now() < deadline {
        let n = calls.len() + 1;
        let (t, j) = (target.clone(), job.clone());
        let pin = tokio::task::spawn_blocking(move || {
            t.schedule(&j, &format!("Soak Caller {} Call {n}", caller + 1))
        })
        .await??;
        let sid = format!("MZsoak{}x{n}", caller + 1);
        let first = caller * 7 + n;
        calls.push(session::run(&stream_url, &pin, sid, Arc::clone(&answers), first, turns).await);
    }
    Ok(calls)
}

/// Waits for the server to have no interview in progress; returns whether it got there.
fn settle(target: &Target) -> anyhow::Result<bool> {
    let until = Instant::now() + SETTLE;
    while Instant::now() < until {
        if target.metric("viva_calls_active")? == 0.0 {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(false)
}

/// Interviews ended, by outcome, as the server counted them.
fn outcomes(metrics: &str) -> [(&'static str, f64); 3] {
    ["completed", "abandoned", "failed"].map(|outcome| {
        let series = format!("viva_calls_total{{outcome=\"{outcome}\"}}");
        (outcome, sample(metrics, &series).unwrap_or(0.0))
    })
}

/// Least-squares slope of the resident memory after the warm-up, in MiB per hour.
fn memory_slope(samples: &[Sample], run: Duration) -> Option<f64> {
    let from = run.mul_f64(WARM_UP_SHARE);
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.at >= from)
        .map(|s| (s.at.as_secs_f64() / 3600.0, s.rss_mib))
        .collect();
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mean_x, mean_y) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

fn report(
    args: &BenchSoakArgs,
    samples: &[Sample],
    before: &Sample,
    after: &Sample,
    settled: bool,
    calls: &[SessionFigures],
    metrics: &str,
) -> Value {
    let outcomes = outcomes(metrics);
    let transcription_wait_p95 = histogram_quantile(
        metrics,
        "viva_speech_wait_seconds",
        "job=\"transcription\"",
        0.95,
    );
    let audio_gaps = sample(metrics, "viva_interviewer_audio_gap_seconds_count");
    let mut latencies: Vec<Duration> = calls
        .iter()
        .flat_map(|c| c.responses.iter().map(|r| r.latency))
        .collect();
    let answers = latencies.len();
    let (p50, p95) = crate::bench::percentiles(&mut latencies);
    let ended_early: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.ended_early.as_deref())
        .collect();
    let replies: usize = calls.iter().map(|c| c.replies).sum();
    let late: usize = calls.iter().map(|c| c.late).sum();
    let cut_short: usize = calls.iter().map(|c| c.cut_short).sum();
    let run = samples.last().map_or(Duration::ZERO, |s| s.at);
    let slope = memory_slope(samples, run);
    let peak = samples.iter().fold(after.rss_mib, |m, s| m.max(s.rss_mib));
    let most_descriptors = samples.iter().map(|s| s.descriptors).max().unwrap_or(0);
    eprintln!(
        "\n{} calls in {:.1} min ({} at once): {} answers, response p50 / p95 {:.2} / {:.2} s, \
         {late} of {replies} replies late, {cut_short} cut short, {} ended early; the server saw \
         {} holes in its audio, transcriptions waited {} for the cores at p95",
        calls.len(),
        run.as_secs_f64() / 60.0,
        args.calls,
        answers,
        p50 / 1e3,
        p95 / 1e3,
        ended_early.len(),
        audio_gaps.map_or("-".to_owned(), |g| format!("{g:.0}")),
        transcription_wait_p95.map_or("-".to_owned(), |w| format!("{:.0} ms", w * 1e3)),
    );
    eprintln!(
        "server: {}; RSS {:.0} MiB at the start, {:.0} at the end, {:.0} at most, slope after \
         the warm-up {}; descriptors {} before, {} after, {} at most; threads {} before, {} after; \
         {}",
        outcomes
            .iter()
            .map(|(o, n)| format!("{n} {o}"))
            .collect::<Vec<_>>()
            .join(", "),
        before.rss_mib,
        after.rss_mib,
        peak,
        slope.map_or("-".to_owned(), |s| format!("{s:+.1} MiB/h")),
        before.descriptors,
        after.descriptors,
        most_descriptors,
        before.threads,
        after.threads,
        if settled {
            "no interview left in progress"
        } else {
            "INTERVIEWS STILL IN PROGRESS a minute after the last caller hung up"
        }
    );
    for reason in &ended_early {
        eprintln!("a call ended early: {reason}");
    }
    json!({
        "calls_at_once": args.calls,
        "minutes": run.as_secs_f64() / 60.0,
        "calls": calls.len(),
        "answers": answers,
        "response_p50_ms": p50,
        "response_p95_ms": p95,
        "replies": replies,
        "late": late,
        "cut_short": cut_short,
        "ended_early": ended_early,
        "outcomes": outcomes.iter().map(|(o, n)| (o.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "settled": settled,
        "audio_gaps": audio_gaps,
        "transcription_wait_p95_ms": transcription_wait_p95.map(|w| w * 1e3),
        "rss_mib": { "start": before.rss_mib, "end": after.rss_mib, "peak": peak, "slope_per_hour": slope },
        "descriptors": { "before": before.descriptors, "after": after.descriptors, "peak": most_descriptors },
        "threads": { "before": before.threads, "after": after.threads },
        "samples": samples.iter().map(|s| json!([s.at.as_secs_f64(), s.rss_mib, s.descriptors, s.threads])).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: f64, rss_mib: f64) -> Sample {
        Sample {
            at: Duration::from_secs_f64(minutes * 60.0),
            rss_mib,
            descriptors: 0,
            threads: 0,
        }
    }

    #[test]
    fn the_memory_slope_leaves_out_the_warm_up() {
        // Memory climbs while caches fill (first 12 minutes), then grows 10 MiB an hour.
        let mut samples: Vec<Sample> = (0..12)
            .map(|m| at(m as f64, 500.0 + 20.0 * m as f64))
            .collect();
        samples.extend((12..=60).map(|m| at(m as f64, 740.0 + 10.0 * (m as f64 - 12.0) / 60.0)));
        let slope = memory_slope(&samples, Duration::from_secs(3600)).unwrap();
        assert!((slope - 10.0).abs() < 0.01, "{slope}");
        assert_eq!(memory_slope(&samples[..2], Duration::from_secs(60)), None);
    }
}
