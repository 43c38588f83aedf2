//! The server under load: a `viva serve` child of this process (the same binary, a scratch
//! data directory, a free port, the latency log captured), or one already running at a URL.
//! Also reads a process's CPU time and memory from /proc.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

/// How long a server may take to load its models and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stopped server may take to end its interviews before it is killed.
const STOP_PATIENCE: Duration = Duration::from_secs(15);
/// Lines of the child's log kept to explain a failure.
const LOG_TAIL: usize = 30;

/// The message of the server's per-turn latency line (crates/call, at info level).
const LATENCY_MESSAGE: &str = "response latency after end of speech";
/// The message a server logs once a job's planned lines are in its voice cache
/// (crates/server/src/jobs.rs, at info level), with the job as `job="ID"`.
const VOICE_READY_MESSAGE: &str = "the job's planned lines are in the voice cache";
/// How long a fresh server may take to speak a job's planned lines into its voice cache
/// (21 s for the shipped job on an idle 2-core machine).
const VOICE_READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the load goes, and how to get in.
#[derive(Clone)]
pub(super) struct Target {
    /// `http://HOST:PORT`.
    pub base: String,
    pub api_key: String,
    pub stream_token: String,
}

impl Target {
    /// The media-stream WebSocket URL with the stream token, as a CPaaS is given it.
    pub fn stream_url(&self) -> String {
        let base = self.base.trim_end_matches('/');
        let ws = match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", base.trim_start_matches("http://")),
        };
        format!("{ws}/media-stream/{}", self.stream_token)
    }

    /// The server's /metrics text.
    pub fn metrics(&self) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.base.trim_end_matches('/'));
        ureq::get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?
            .body_mut()
            .read_to_string()
            .with_context(|| format!("GET {url}: reading the answer"))
    }

    /// The value of one series of the server's /metrics (`NAME` or `NAME{LABELS}`).
    pub fn metric(&self, series: &str) -> anyhow::Result<f64> {
        sample(&self.metrics()?, series).with_context(|| format!("no {series} in /metrics"))
    }

    /// Schedules an interview for `job`; returns its PIN.
    pub fn schedule(&self, job: &str, candidate: &str) -> anyhow::Result<String> {
        let url = format!("{}/api/v1/interviews", self.base.trim_end_matches('/'));
        let body = json!({ "job": job, "candidate": { "name": candidate } });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut response = agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", self.api_key))
            .send_json(&body)
            .with_context(|| format!("POST {url}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("POST {url}: reading the answer"))?;
        if status != 201 {
            bail!("POST {url} answered {status}: {text}");
        }
        let interview: Value = serde_json::from_str(&text)
            .with_context(|| format!("POST {url} answered with non-JSON: {text}"))?;
        interview["pin"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("POST {url}: no `pin` in {text}"))
    }
}

/// The value of `series` (`NAME` or `NAME{LABELS}`, labels as the server writes them) in a
/// /metrics text.
pub(super) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// The `q` quantile (0-1) of the histogram `name` whose other labels are `labels` (`job=
/// "transcription"`; empty for none), estimated as Prometheus' `histogram_quantile` does: by
/// linear interpolation inside the bucket it falls in. `None` when nothing was observed.
pub(super) fn histogram_quantile(metrics: &str, name: &str, labels: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let suffix = if labels.is_empty() {
        "\"}".to_owned()
    } else {
        format!("\",{labels}}}")
    };
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|line| {
            let (le, rest) = line.strip_prefix(&prefix)?.split_once(&suffix)?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, rest.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, count) in buckets {
        if count >= rank {
            // Past the last finite bound there is nothing to interpolate to.
            if bound.is_infinite() {
                return Some(lower);
            }
            let share = if count > below {
                (rank - below) / (count - below)
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * share);
        }
        (lower, below) = (bound, count);
    }
    None
}

/// The stages of one turn from the server's latency log, in ms after Viva's own end-of-speech
/// mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct StageLatency {
    pub end_of_turn_wait: Option<u64>,
    pub transcribed: Option<u64>,
    pub decided: Option<u64>,
    pub first_audio: Option<u64>,
}

/// Reads one line of the server's text log, if it is a latency line.
pub(super) fn parse_latency_line(line: &str) -> Option<StageLatency> {
    let (_, fields) = line.split_once(LATENCY_MESSAGE)?;
    let mut stages = StageLatency::default();
    for field in fields.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let value = value.parse().ok();
        match key {
            "end_of_turn_wait_ms" => stages.end_of_turn_wait = value,
            "transcribed_ms" => stages.transcribed = value,
            "decided_ms" => stages.decided = value,
            "first_audio_ms" => stages.first_audio = value,
            _ => {}
        }
    }
    Some(stages)
}

/// The job of a line saying its planned lines are in the voice cache, if it is one.
fn parse_voice_ready_line(line: &str) -> Option<String> {
    let (_, fields) = line.split_once(VOICE_READY_MESSAGE)?;
    fields
        .split_whitespace()
        .find_map(|field| field.strip_prefix("job="))
        .map(|job| job.trim_matches('"').to_owned())
}

#[derive(Default)]
struct ServerLog {
    latencies: Vec<StageLatency>,
    /// Jobs whose planned lines the server has spoken into its voice cache.
    voice_ready: Vec<String>,
    tail: VecDeque<String>,
}

/// A `viva serve` child: stopped (SIGTERM by PID, then SIGKILL after [`STOP_PATIENCE`]) and
/// its data directory removed when dropped, however the bench ends.
pub(super) struct ServerChild {
    child: Child,
    pub target: Target,
    log: Arc<Mutex<ServerLog>>,
    /// Removed after the child has stopped (fields drop in order).
    _data: tempfile::TempDir,
}

impl ServerChild {
    /// Starts this binary as `viva serve` with the configuration this bench runs with
    /// (`config`: the --config file, if one was given), on its own scratch data directory
    /// and SQLite database, a free port, no SIP, random secrets and the latency log on.
    pub async fn start(config: Option<&Path>) -> anyhow::Result<ServerChild> {
        let data = tempfile::Builder::new()
            .prefix("viva-bench-load-")
            .tempdir()
            .context("cannot create a scratch data directory")?;
        let exe = std::env::current_exe().context("cannot find the viva binary")?;
        let api_key = secret();
        let stream_token = secret();
        let mut command = Command::new(exe);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env("VIVA_API_KEY", &api_key)
            .env("VIVA_CPAAS_STREAM_TOKEN", &stream_token)
            // Never the configured database: the bench's interviews stay in the scratch one.
            .env("VIVA_SERVER_DATABASE", "")
            // Calls come over the media stream only; a configured SIP port may be taken.
            .env("VIVA_SIP_ENABLED", "false")
            // The bench finds out how many calls the machine carries: the configured limit
            // must not turn its callers away.
            .env(
                "VIVA_SERVER_MAX_CALLS",
                crate::capacity::MAX_CALLS_LIMIT.to_string(),
            )
            // Stopped, it ends what is left of its interviews at once rather than draining.
            .env("VIVA_SERVER_DRAIN_SECS", "0")
            .env("VIVA_LOG_LEVEL", "info")
            .env("VIVA_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start viva serve")?;
        let log = Arc::new(Mutex::new(ServerLog::default()));
        let stdout = child.stdout.take().context("the child's stdout")?;
        let stderr = child.stderr.take().context("the child's stderr")?;
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(stages) = parse_latency_line(&line) {
                        log.latencies.push(stages);
                    }
                    if let Some(job) = parse_voice_ready_line(&line) {
                        log.voice_ready.push(job);
                    }
                    if log.tail.len() == LOG_TAIL {
                        log.tail.pop_front();
                    }
                    log.tail.push_back(line);
                }
            });
        }
        let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut listening = Some(listening_tx);
            // Read to the end, so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, addr)) = line.split_once("listening on ")
                    && let Some(tx) = listening.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let mut server = ServerChild {
            child,
            target: Target {
                base: String::new(),
                api_key,
                stream_token,
            },
            log,
            _data: data,
        };
        match tokio::time::timeout(START_TIMEOUT, listening_rx).await {
            Ok(Ok(base)) => {
                server.target.base = base;
                Ok(server)
            }
            Ok(Err(_)) => {
                // Its stdout closed before it listened: it exited; its log says why.
                let status = server.child.wait().map(|s| s.to_string());
                bail!(
                    "viva serve exited before listening ({}); its last log lines:\n{}",
                    status.unwrap_or_default(),
                    server.log_tail()
                )
            }
            Err(_) => bail!(
                "viva serve did not listen within {} s; its last log lines:\n{}",
                START_TIMEOUT.as_secs(),
                server.log_tail()
            ),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server has spoken `job`'s planned lines into its voice cache, and
    /// says how long that took. A server that has run before has them on disk; a fresh
    /// one synthesizes them for its first 20 s or so, and that would be measured as the
    /// calls' CPU and as their wait for the cores.
    pub async fn voice_ready(&self, job: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while !self.lock().voice_ready.iter().any(|j| j == job) {
            if started.elapsed() >= VOICE_READY_TIMEOUT {
                bail!(
                    "viva serve did not have job {job:?}'s planned lines in its voice cache \
                     within {} s; its last log lines:\n{}",
                    VOICE_READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(started.elapsed())
    }

    /// The latency lines logged so far.
    pub fn latencies(&self) -> Vec<StageLatency> {
        self.lock().latencies.clone()
    }

    pub fn log_tail(&self) -> String {
        self.lock()
            .tail
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM first: the server ends its interviews and closes its database cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_PATIENCE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A random secret for the child server.
fn secret() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// A process's CPU time and memory, from /proc/PID/stat and /proc/PID/status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ProcSample {
    /// User + system CPU time of all its threads.
    pub cpu: Duration,
    /// Resident now (VmRSS) and at its peak (VmHWM), in MiB.
    pub rss_mib: f64,
    pub hwm_mib: f64,
}

/// /proc/PID/stat counts CPU time in USER_HZ ticks, which Linux fixes at 100 a second in its
/// user-space ABI.
const TICKS_PER_SECOND: u64 = 100;

impl ProcSample {
    pub fn read(pid: u32) -> Option<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(ProcSample {
            cpu: cpu_time(&stat)?,
            rss_mib: status_mib(&status, "VmRSS")?,
            hwm_mib: status_mib(&status, "VmHWM")?,
        })
    }
}

/// utime + stime of a /proc/PID/stat line. The command name (2nd field) is in parentheses
/// and may hold spaces, so fields are counted after its closing parenthesis.
pub(super) fn cpu_time(stat: &str) -> Option<Duration> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// A `NAME:   1234 kB` line of /proc/PID/status, in MiB.
pub(super) fn status_mib(status: &str, name: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_interpolate_inside_the_bucket() {
        let metrics = "\
viva_speech_wait_seconds_bucket{le=\"0.01\",job=\"transcription\"} 50
viva_speech_wait_seconds_bucket{le=\"0.1\",job=\"transcription\"} 90
viva_speech_wait_seconds_bucket{le=\"+Inf\",job=\"transcription\"} 100
viva_speech_wait_seconds_bucket{le=\"0.01\",job=\"synthesis\"} 0
viva_speech_wait_seconds_bucket{le=\"+Inf\",job=\"synthesis\"} 0
";
        let q = |job: &str, q: f64| {
            histogram_quantile(
                metrics,
                "viva_speech_wait_seconds",
                &format!("job=\"{job}\""),
                q,
            )
        };
        assert_eq!(q("transcription", 0.5), Some(0.01));
        let p70 = q("transcription", 0.7).unwrap();
        assert!((p70 - 0.055).abs() < 1e-9, "{p70}");
        assert_eq!(
            q("transcription", 0.95),
            Some(0.1),
            "past the last finite bound"
        );
        assert_eq!(q("synthesis", 0.5), None, "nothing observed");
        assert_eq!(
            sample(
                metrics,
                "viva_speech_wait_seconds_bucket{le=\"0.1\",job=\"transcription\"}"
            ),
            Some(90.0)
        );
    }

    #[test]
    fn the_voice_cache_line_names_its_job() {
        let line = "2026-12-07T19:59:19.848841Z  INFO viva::jobs: the job's planned lines are in \
                    the voice cache job=\"backend-developer\" lines=97 seconds=21.3";
        assert_eq!(
            parse_voice_ready_line(line).as_deref(),
            Some("backend-developer")
        );
        assert_eq!(
            parse_voice_ready_line(
                "INFO viva::jobs: a changed job file is a new version job=\"x\""
            ),
            None
        );
    }

    #[test]
    fn latency_lines_are_read_from_the_text_log() {
        let line = "2026-12-05T01:02:03.456Z  INFO call{call_id=stream-2}:turn{turn=3}: \
                    viva_call::conversation: response latency after end of speech \
                    end_of_turn_wait_ms=600 transcribed_ms=655 decided_ms=671 first_audio_ms=742";
        assert_eq!(
            parse_latency_line(line),
            Some(StageLatency {
                end_of_turn_wait: Some(600),
                transcribed: Some(655),
                decided: Some(671),
                first_audio: Some(742),
            })
        );
        // A field tracing leaves out (None) stays unknown.
        let partial = "INFO x: response latency after end of speech end_of_turn_wait_ms=600 transcribed_ms=700";
        assert_eq!(
            parse_latency_line(partial).map(|s| (s.decided, s.first_audio)),
            Some((None, None))
        );
        assert_eq!(parse_latency_line("INFO viva is listening"), None);
    }

    #[test]
    fn cpu_time_counts_fields_after_the_command_name() {
        let stat = "4242 (viva (serve) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
                    1234 567 0 0 20 0 12 0 1000 900000000 120000 18446744073709551615";
        assert_eq!(cpu_time(stat), Some(Duration::from_millis(18_010)));
        assert_eq!(cpu_time("garbage"), None);
    }

    #[test]
    fn memory_lines_are_read_in_mib() {
        let status = "Name:\tviva\nVmHWM:\t  614400 kB\nVmRSS:\t  512000 kB\n";
        assert_eq!(status_mib(status, "VmRSS"), Some(500.0));
        assert_eq!(status_mib(status, "VmHWM"), Some(600.0));
        assert_eq!(status_mib(status, "VmSwap"), None);
    }

    #[test]
    fn stream_urls_follow_the_scheme() {
        let target = |base: &str| Target {
            base: base.to_owned(),
            api_key: String::new(),
            stream_token: "tok".to_owned(),
        };
        assert_eq!(
            target("http://127.0.0.1:8080").stream_url(),
            "ws://127.0.0.1:8080/media-stream/tok"
        );
        assert_eq!(
            target("https://viva.example/").stream_url(),
            "wss://viva.example/media-stream/tok"
        );
    }
}
