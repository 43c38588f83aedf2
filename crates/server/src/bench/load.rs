//! `viva bench load`: N concurrent real-time phone interviews against one server, measured
//! where the caller is.
//!
//! For each N of `--sessions` a fresh `viva serve` is started (or the server at `--url` is
//! used), N interviews are scheduled through the API, and N callers join them over the CPaaS
//! media-stream WebSocket, started `--stagger-ms` apart. Each caller sends a phone's audio in
//! real time and answers `--turns` times with real read speech once the interviewer's reply
//! has played out and a second of silence followed. Per N it prints the response latency
//! (last voiced frame sent to first interviewer frame received) p50/p95, the replies with
//! late audio or cut short (see [`playout`]), the server's CPU and memory, and the stages of
//! the server's own latency log. Figures, never verdicts: nothing here asserts a timing.

mod answers;
mod playout;
mod server;
mod session;
mod soak;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use self::answers::Answer;
use self::server::{ProcSample, ServerChild, StageLatency, Target};
use self::session::SessionFigures;
use crate::cli::{BenchLoadArgs, BenchSoakArgs};
use crate::config::Config;

/// How often the server's resident memory is sampled for its peak (its CPU time is read at
/// the start and end of a run).
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

pub fn run(
    config: &Config,
    config_file: Option<&Path>,
    args: &BenchLoadArgs,
) -> anyhow::Result<()> {
    check(args)?;
    let results = until_stopped(config, args.set.as_deref(), |answers| async move {
        run_all(config_file, args, &answers).await
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results_json(args, &results))?
        );
    }
    Ok(())
}

/// `viva bench soak`: see the `soak` module.
pub fn soak(
    config: &Config,
    config_file: Option<&Path>,
    args: &BenchSoakArgs,
) -> anyhow::Result<()> {
    let results = until_stopped(config, args.set.as_deref(), |answers| async move {
        soak::run(config_file, args, &answers).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}

/// Loads the callers' answers from `set` (default: the models' speech set) and runs `work`
/// with them, unless Ctrl-C or SIGTERM comes first (the `viva serve` it started stops with it).
fn until_stopped<T, F>(
    config: &Config,
    set: Option<&Path>,
    work: impl FnOnce(Arc<Vec<Answer>>) -> F,
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    let set = set.map_or_else(|| config.models.dir.join("speech-set"), Path::to_path_buf);
    let answers = Arc::new(answers::load(&set)?);
    tokio::runtime::Runtime::new()?.block_on(async {
        tokio::select! {
            results = work(answers) => results,
            signal = stopped() => bail!("{signal}: stopped (with the viva serve it started, if any)"),
        }
    })
}

fn check(args: &BenchLoadArgs) -> anyhow::Result<()> {
    if args.sessions.is_empty() || args.sessions.contains(&0) {
        bail!(
            "--sessions: give one or more numbers of concurrent interviews of at least 1, like 1,4,8"
        );
    }
    if args.turns == 0 {
        bail!("--turns must be at least 1");
    }
    if let Some(url) = &args.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("--url {url}: give the server's base URL, like http://127.0.0.1:8080");
    }
    if args.job.trim().is_empty() {
        bail!("--job: name a job file of the server, like backend-developer");
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn stopped() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "interrupted";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

/// Progress and tables: on stdout, or on stderr when stdout carries the JSON.
macro_rules! say {
    ($args:expr, $($arg:tt)*) => {
        if $args.json { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

/// What one run (one N) measured.
struct RunFigures {
    sessions: usize,
    latencies: Vec<Duration>,
    /// The same, per answer of the set: its name and its responses.
    by_answer: Vec<(String, Vec<Duration>)>,
    replies: usize,
    late: usize,
    cut_short: usize,
    answers: usize,
    /// Interviewer audio received in long replies, and how long it took to arrive.
    audio: Duration,
    arrival: Duration,
    ended_early: Vec<String>,
    wall: Duration,
    server: Option<ServerFigures>,
}

impl RunFigures {
    /// How fast the server sent its audio: 1.0 is real time, more is ahead of playback.
    fn audio_speed(&self) -> Option<f64> {
        (!self.arrival.is_zero()).then(|| self.audio.as_secs_f64() / self.arrival.as_secs_f64())
    }
}

struct ServerFigures {
    cpu_percent: f64,
    rss_peak_mib: f64,
    hwm_mib: f64,
    /// Resident before the first call (the models loaded).
    rss_idle_mib: f64,
    stages: Vec<StageLatency>,
    /// From the server's /metrics after the run: p50 and p95 (ms) of how long
    /// transcriptions, and syntheses someone waited to hear, waited for the cores.
    transcription_wait_ms: Option<(f64, f64)>,
    synthesis_wait_ms: Option<(f64, f64)>,
    /// Holes the server saw in its own audio (synthesis slower than playback).
    audio_gaps: Option<f64>,
}

impl ServerFigures {
    fn cpu_percent_per_call(&self, calls: usize) -> f64 {
        self.cpu_percent / calls as f64
    }

    /// The peak above the idle server, shared out: the models are loaded once for all calls.
    fn rss_mib_per_call(&self, calls: usize) -> f64 {
        (self.rss_peak_mib - self.rss_idle_mib).max(0.0) / calls as f64
    }
}

/// p50 and p95 (ms) of a `viva_speech_wait_seconds` histogram.
fn waits(metrics: &str, job: &str) -> Option<(f64, f64)> {
    let quantile = |q| {
        server::histogram_quantile(
            metrics,
            "viva_speech_wait_seconds",
            &format!("job=\"{job}\""),
            q,
        )
    };
    Some((quantile(0.5)? * 1e3, quantile(0.95)? * 1e3))
}

async fn run_all(
    config_file: Option<&Path>,
    args: &BenchLoadArgs,
    answers: &Arc<Vec<Answer>>,
) -> anyhow::Result<Vec<RunFigures>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    say!(
        args,
        "viva bench load: {cores} cores, sessions {:?}, {} turns each, {} ms apart, job {}, {} answers",
        args.sessions,
        args.turns,
        args.stagger_ms,
        args.job,
        answers.len()
    );
    let mut results = Vec::new();
    for &n in &args.sessions {
        let figures = match (&args.url, &args.api_key, &args.stream_token) {
            (Some(url), Some(api_key), Some(stream_token)) => {
                let target = Target {
                    base: url.clone(),
                    api_key: api_key.clone(),
                    stream_token: stream_token.clone(),
                };
                run_one(args, n, &target, None, answers).await?
            }
            _ => {
                say!(args, "\nN = {n}: starting viva serve");
                let server = ServerChild::start(config_file).await?;
                let took = server.voice_ready(&args.job).await?;
                say!(
                    args,
                    "N = {n}: the job's planned lines are in the voice cache ({:.0} s)",
                    took.as_secs_f64()
                );
                let figures = run_one(args, n, &server.target, Some(&server), answers).await?;
                drop(server);
                figures
            }
        };
        say!(args, "{}", row(&figures));
        results.push(figures);
    }
    say!(args, "\n{}", table(&results));
    if let Some(stages) = stage_table(&results) {
        say!(args, "\n{stages}");
    }
    if let Some(shares) = share_table(&results) {
        say!(args, "\n{shares}");
    }
    say!(args, "\n{}", answer_table(&results));
    for figures in &results {
        if let Some(speed) = figures.audio_speed() {
            say!(
                args,
                "N = {}: interviewer audio arrived at {speed:.2}x real time ({:.0} s of audio in {:.0} s)",
                figures.sessions,
                figures.audio.as_secs_f64(),
                figures.arrival.as_secs_f64()
            );
        }
        for reason in &figures.ended_early {
            say!(
                args,
                "N = {}: a call ended early: {reason}",
                figures.sessions
            );
        }
    }
    Ok(results)
}

async fn run_one(
    args: &BenchLoadArgs,
    n: usize,
    target: &Target,
    server: Option<&ServerChild>,
    answers: &Arc<Vec<Answer>>,
) -> anyhow::Result<RunFigures> {
    let mut pins = Vec::with_capacity(n);
    for i in 0..n {
        let (target, job) = (target.clone(), args.job.clone());
        let pin = tokio::task::spawn_blocking(move || {
            target.schedule(&job, &format!("Load Caller {}", i + 1))
        })
        .await??;
        pins.push(pin);
    }
    say!(args, "N = {n}: {n} interview(s) scheduled, calling");

    let before = server.and_then(|s| ProcSample::read(s.pid()));
    let stages_before = server.map_or(0, |s| s.latencies().len());
    let (stop_sampling, stopped_sampling) = tokio::sync::oneshot::channel();
    let sampler = server.map(|s| tokio::spawn(peak_resident(s.pid(), stopped_sampling)));
    let started = Instant::now();
    let stream_url = target.stream_url();
    let mut calls = Vec::with_capacity(n);
    for (i, pin) in pins.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(args.stagger_ms)).await;
        }
        let url = stream_url.clone();
        let answers = Arc::clone(answers);
        let turns = args.turns;
        calls.push(tokio::spawn(async move {
            session::run(&url, &pin, format!("MZbench{}", i + 1), answers, i, turns).await
        }));
    }
    let mut sessions: Vec<SessionFigures> = Vec::with_capacity(n);
    for call in calls {
        sessions.push(call.await?);
    }
    let wall = started.elapsed();

    let server = match (server, before, sampler) {
        (Some(server), Some(before), Some(sampler)) => {
            let after = ProcSample::read(server.pid());
            let _ = stop_sampling.send(());
            let rss_peak = sampler.await.unwrap_or_default();
            // A fresh server per run: its metrics are this run's.
            let target = server.target.clone();
            let metrics = tokio::task::spawn_blocking(move || target.metrics())
                .await?
                .unwrap_or_default();
            after.map(|after| ServerFigures {
                cpu_percent: (after.cpu.saturating_sub(before.cpu)).as_secs_f64()
                    / wall.as_secs_f64()
                    * 100.0,
                rss_peak_mib: rss_peak.max(after.rss_mib),
                hwm_mib: after.hwm_mib,
                rss_idle_mib: before.rss_mib,
                stages: server.latencies().split_off(stages_before),
                transcription_wait_ms: waits(&metrics, "transcription"),
                synthesis_wait_ms: waits(&metrics, "synthesis"),
                audio_gaps: server::sample(&metrics, "viva_interviewer_audio_gap_seconds_count"),
            })
        }
        _ => None,
    };
    let mut figures = RunFigures {
        sessions: n,
        latencies: Vec::new(),
        by_answer: answers
            .iter()
            .map(|a| (a.name.clone(), Vec::new()))
            .collect(),
        replies: 0,
        late: 0,
        cut_short: 0,
        answers: 0,
        audio: Duration::ZERO,
        arrival: Duration::ZERO,
        ended_early: Vec::new(),
        wall,
        server,
    };
    for (i, session) in sessions.into_iter().enumerate() {
        figures.answers += session.responses.len();
        for response in session.responses {
            figures.latencies.push(response.latency);
            figures.by_answer[response.answer].1.push(response.latency);
        }
        figures.replies += session.replies;
        figures.late += session.late;
        figures.cut_short += session.cut_short;
        figures.audio += session.audio;
        figures.arrival += session.arrival;
        if let Some(reason) = session.ended_early {
            figures
                .ended_early
                .push(format!("caller {}: {reason}", i + 1));
        }
    }
    Ok(figures)
}

/// The peak of the resident size of process `pid` in MiB, sampled every [`SAMPLE_EVERY`]
/// until `stop`.
async fn peak_resident(pid: u32, mut stop: tokio::sync::oneshot::Receiver<()>) -> f64 {
    let mut peak = 0.0_f64;
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Some(sample) = ProcSample::read(pid) {
                    peak = peak.max(sample.rss_mib);
                }
            }
            _ = &mut stop => return peak,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 of a stage over the turns that logged it, in ms.
fn stage_p50(stages: &[StageLatency], stage: fn(&StageLatency) -> Option<u64>) -> Option<f64> {
    let mut values: Vec<Duration> = stages
        .iter()
        .filter_map(stage)
        .map(Duration::from_millis)
        .collect();
    (!values.is_empty()).then(|| super::percentiles(&mut values).0)
}

fn row(figures: &RunFigures) -> String {
    let mut latencies = figures.latencies.clone();
    let (p50, p95) = super::percentiles(&mut latencies);
    let response = if latencies.is_empty() {
        "-".to_owned()
    } else {
        format!("{:.2} / {:.2} s", p50 / 1000.0, p95 / 1000.0)
    };
    let (cpu, rss) = match &figures.server {
        Some(s) => (
            format!("{:.0} %", s.cpu_percent),
            format!("{:.0} MB", s.rss_peak_mib * 1.048_576),
        ),
        None => ("-".to_owned(), "-".to_owned()),
    };
    format!(
        "| {} | {response} | {} of {} replies | {} | {} | {} |",
        figures.sessions, figures.late, figures.replies, figures.cut_short, cpu, rss
    )
}

fn table(results: &[RunFigures]) -> String {
    let mut lines = vec![
        "| concurrent interviews | response p50 / p95 | late audio | replies cut short | server CPU | RSS |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    lines.extend(results.iter().map(row));
    lines.join("\n")
}

/// The response to each answer of the set: an answer the server hears as unfinished (one
/// that stops mid-sentence) is waited on for longer, by design, and shows here.
fn answer_table(results: &[RunFigures]) -> String {
    let mut lines = vec![
        "response per answer, p50 / max in s (answers given):".to_owned(),
        format!(
            "| answer |{}",
            results
                .iter()
                .map(|f| format!(" N = {} |", f.sessions))
                .collect::<String>()
        ),
        format!("|---|{}", "---|".repeat(results.len())),
    ];
    let names = results.first().map_or(&[][..], |f| &f.by_answer[..]);
    for (i, (name, _)) in names.iter().enumerate() {
        let cells: String = results
            .iter()
            .map(|f| {
                let mut latencies = f.by_answer[i].1.clone();
                match latencies.iter().max().copied() {
                    Some(max) => {
                        let (p50, _) = super::percentiles(&mut latencies);
                        format!(
                            " {:.2} / {:.2} ({}) |",
                            p50 / 1000.0,
                            max.as_secs_f64(),
                            latencies.len()
                        )
                    }
                    None => " - |".to_owned(),
                }
            })
            .collect();
        lines.push(format!("| {name} |{cells}"));
    }
    lines.join("\n")
}

/// The server's own view of each turn, from its latency log, beside the caller's.
fn stage_table(results: &[RunFigures]) -> Option<String> {
    let mut lines = vec![
        "server latency log, p50 in ms after Viva's end-of-speech mark (caller's p50 for comparison):".to_owned(),
        "| concurrent interviews | turns logged | end-of-turn wait | transcribed | decided | first audio | caller's response |".to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    for figures in results {
        let server = figures.server.as_ref()?;
        let mut latencies = figures.latencies.clone();
        let (caller, _) = super::percentiles(&mut latencies);
        lines.push(format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} |",
            figures.sessions,
            server.stages.len(),
            show(stage_p50(&server.stages, |s| s.end_of_turn_wait)),
            show(stage_p50(&server.stages, |s| s.transcribed)),
            show(stage_p50(&server.stages, |s| s.decided)),
            show(stage_p50(&server.stages, |s| s.first_audio)),
            caller
        ));
    }
    Some(lines.join("\n"))
}

/// What each call costs the server, and how long speech work queued for the cores.
fn share_table(results: &[RunFigures]) -> Option<String> {
    let mut lines = vec![
        "per call, and the speech queues (server /metrics; waits past the moment the work was needed, ms):".to_owned(),
        "| concurrent interviews | CPU per call | memory per call | transcription wait p50 / p95 | synthesis wait p50 / p95 | audio gaps (server) |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    let show = |w: Option<(f64, f64)>| {
        w.map_or("-".to_owned(), |(p50, p95)| format!("{p50:.0} / {p95:.0}"))
    };
    for figures in results {
        let server = figures.server.as_ref()?;
        let n = figures.sessions;
        lines.push(format!(
            "| {n} | {:.1} % | {:.0} MB | {} | {} | {} |",
            server.cpu_percent_per_call(n),
            server.rss_mib_per_call(n) * 1.048_576,
            show(server.transcription_wait_ms),
            show(server.synthesis_wait_ms),
            server
                .audio_gaps
                .map_or("-".to_owned(), |g| format!("{g:.0}")),
        ));
    }
    Some(lines.join("\n"))
}

fn results_json(args: &BenchLoadArgs, results: &[RunFigures]) -> Value {
    let runs: Vec<Value> = results
        .iter()
        .map(|f| {
            let mut latencies = f.latencies.clone();
            let (p50, p95) = super::percentiles(&mut latencies);
            let finite = |v: f64| v.is_finite().then_some(v);
            json!({
                "sessions": f.sessions,
                "answers": f.answers,
                "response_ms": { "p50": finite(p50), "p95": finite(p95), "all": f.latencies.iter().map(|d| ms(*d).round()).collect::<Vec<_>>() },
                "response_ms_by_answer": f.by_answer.iter().map(|(name, latencies)| {
                    (name.clone(), latencies.iter().map(|d| ms(*d).round()).collect::<Value>())
                }).collect::<serde_json::Map<_, _>>(),
                "replies": f.replies,
                "late_audio": f.late,
                "replies_cut_short": f.cut_short,
                "interviewer_audio_speed": f.audio_speed(),
                "calls_ended_early": f.ended_early,
                "seconds": f.wall.as_secs_f64(),
                "server": f.server.as_ref().map(|s| json!({
                    "cpu_percent": s.cpu_percent,
                    "rss_peak_mib": s.rss_peak_mib,
                    "vm_hwm_mib": s.hwm_mib,
                    "rss_idle_mib": s.rss_idle_mib,
                    "cpu_percent_per_call": s.cpu_percent_per_call(f.sessions),
                    "rss_mib_per_call": s.rss_mib_per_call(f.sessions),
                    "transcription_wait_ms": s.transcription_wait_ms.map(|(p50, p95)| json!({ "p50": p50, "p95": p95 })),
                    "synthesis_wait_ms": s.synthesis_wait_ms.map(|(p50, p95)| json!({ "p50": p50, "p95": p95 })),
                    "audio_gaps": s.audio_gaps,
                    "latency_log_p50_ms": {
                        "turns": s.stages.len(),
                        "end_of_turn_wait": stage_p50(&s.stages, |s| s.end_of_turn_wait),
                        "transcribed": stage_p50(&s.stages, |s| s.transcribed),
                        "decided": stage_p50(&s.stages, |s| s.decided),
                        "first_audio": stage_p50(&s.stages, |s| s.first_audio),
                    },
                    // Turn by turn, in the order the server logged them: with one session,
                    // beside `response_ms.all`, how far the log reads from the caller.
                    "latency_log_first_audio_ms": s.stages.iter().map(|s| s.first_audio).collect::<Vec<_>>(),
                })),
            })
        })
        .collect();
    json!({
        "turns": args.turns,
        "stagger_ms": args.stagger_ms,
        "job": args.job,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "runs": runs,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{BenchCommand, Cli, Command};

    fn parse(args: &[&str]) -> Result<BenchLoadArgs, String> {
        let cli = Cli::try_parse_from(["viva", "bench", "load"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Bench(BenchCommand::Load(args)) => {
                check(&args).map(|()| args).map_err(|e| e.to_string())
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn arguments_are_checked_with_clear_errors() {
        let args = parse(&["--sessions", "1,4,8", "--turns", "5"]).unwrap();
        assert_eq!(args.sessions, [1, 4, 8]);
        assert_eq!(parse(&[]).unwrap().turns, 10);
        assert!(
            parse(&["--sessions", "1,0"])
                .unwrap_err()
                .contains("--sessions")
        );
        assert!(parse(&["--sessions", "four"]).unwrap_err().contains("four"));
        assert!(parse(&["--turns", "0"]).unwrap_err().contains("--turns"));
        assert!(
            parse(&[
                "--url",
                "127.0.0.1:8080",
                "--api-key",
                "k",
                "--stream-token",
                "t"
            ])
            .unwrap_err()
            .contains("http://")
        );
        // A server of one's own needs its secrets, and the secrets need the server.
        assert!(
            parse(&["--url", "http://127.0.0.1:8080"])
                .unwrap_err()
                .contains("--api-key")
        );
        assert!(parse(&["--api-key", "k"]).unwrap_err().contains("--url"));
    }

    fn figures(latencies_ms: &[u64], server: bool) -> RunFigures {
        let latencies: Vec<Duration> = latencies_ms
            .iter()
            .copied()
            .map(Duration::from_millis)
            .collect();
        let (first, rest) = latencies.split_at(latencies.len().min(2));
        RunFigures {
            sessions: 4,
            by_answer: vec![
                ("goforward".to_owned(), first.to_vec()),
                ("librivox-0880".to_owned(), rest.to_vec()),
                ("unheard".to_owned(), Vec::new()),
            ],
            latencies,
            replies: 24,
            late: 1,
            cut_short: 0,
            answers: latencies_ms.len(),
            audio: Duration::from_secs(60),
            arrival: Duration::from_secs(59),
            ended_early: Vec::new(),
            wall: Duration::from_secs(90),
            server: server.then(|| ServerFigures {
                cpu_percent: 64.6,
                rss_peak_mib: 620.0,
                hwm_mib: 640.0,
                rss_idle_mib: 540.0,
                stages: vec![StageLatency {
                    end_of_turn_wait: Some(600),
                    transcribed: Some(650),
                    decided: Some(660),
                    first_audio: Some(740),
                }],
                transcription_wait_ms: Some((2.5, 31.0)),
                synthesis_wait_ms: None,
                audio_gaps: Some(0.0),
            }),
        }
    }

    #[test]
    fn a_row_reads_like_the_issue_table() {
        let latencies: Vec<u64> = (1..=20).map(|n| 1_000 + n * 10).collect();
        assert_eq!(
            row(&figures(&latencies, true)),
            "| 4 | 1.10 / 1.19 s | 1 of 24 replies | 0 | 65 % | 650 MB |"
        );
        assert_eq!(
            row(&figures(&[], false)),
            "| 4 | - | 1 of 24 replies | 0 | - | - |"
        );
        let stages = stage_table(&[figures(&latencies, true)]).unwrap();
        assert!(
            stages.ends_with("| 4 | 1 | 600 | 650 | 660 | 740 | 1100 |"),
            "{stages}"
        );
        assert!(stage_table(&[figures(&latencies, false)]).is_none());
        let shares = share_table(&[figures(&latencies, true)]).unwrap();
        assert!(
            shares.ends_with("| 4 | 16.1 % | 21 MB | 2 / 31 | - | 0 |"),
            "{shares}"
        );
        let answers = answer_table(&[figures(&latencies, true)]);
        assert!(
            answers.ends_with(
                "| answer | N = 4 |\n|---|---|\n\
                 | goforward | 1.01 / 1.02 (2) |\n\
                 | librivox-0880 | 1.11 / 1.20 (18) |\n\
                 | unheard | - |"
            ),
            "{answers}"
        );
    }
}
