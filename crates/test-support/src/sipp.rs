//! Real SIP peers as child processes: [`Peer`], any program (baresip, ...) killed by its PID
//! when the test is done with it, and [`Sipp`], a sipp run of a scenario with its message and
//! error traces kept in the test's scratch directory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a wait looks at whether the peer has exited.
const POLL: Duration = Duration::from_millis(50);
/// How much of sipp's screen output a failure quotes.
const OUTPUT_LINES: usize = 40;
/// How much of sipp's message trace a failure quotes.
const MESSAGE_LINES: usize = 200;

/// A peer process whose stdout and stderr go to a file; killed (by its PID) if it is still
/// running when dropped.
pub struct Peer {
    name: String,
    child: Child,
    output: PathBuf,
}

impl Peer {
    /// Starts `command` (stdin closed, stdout and stderr to `output`); `name` is how failures
    /// call it.
    pub fn spawn(name: &str, mut command: Command, output: PathBuf) -> Peer {
        let file = std::fs::File::create(&output)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", output.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(
                file.try_clone()
                    .expect("a second handle on the output file"),
            )
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("{name} does not start: {err}"));
        Peer {
            name: name.to_owned(),
            child,
            output,
        }
    }

    /// The exit status, if the peer has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|err| panic!("cannot wait for {}: {err}", self.name))
    }

    /// Waits for the peer to exit; past `deadline` it is killed and the test fails, quoting
    /// `logs`.
    pub fn wait(&mut self, deadline: Duration, logs: &dyn Fn() -> String) -> ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() >= until {
                self.kill();
                panic!(
                    "{} did not finish within {deadline:?}; killed it\n{}",
                    self.name,
                    logs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// [`wait`](Self::wait) for async tests: waits on the runtime's timer instead of blocking
    /// a worker. `None` (the peer still running) after `limit`.
    pub async fn finish(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Everything the peer printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn kill(&mut self) {
        // `Child::kill` signals exactly this child's PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// One sipp run (sip-tester), working in a directory of the test's: the scenario finds its
/// audio and key-press files there and sipp leaves its traces there.
pub struct Sipp {
    peer: Peer,
    label: String,
    messages: PathBuf,
    errors: PathBuf,
}

impl Sipp {
    /// Starts sipp in `dir` on the local address `local` (any of 127.0.0.0/8, so several
    /// callers can share one machine) with `args` after the common ones: one call, stdin
    /// closed, a 120 s global timeout that fails the run, and message and error traces in
    /// `dir`, named after `label` and numbered so several runs in one directory keep theirs.
    /// Later `args` override the common ones (`-m 700`, `-timeout 150s`).
    pub fn start(label: &str, dir: &Path, local: IpAddr, args: &[String]) -> Sipp {
        let stem = label.trim_end_matches(".xml");
        let mut n = 0;
        while dir.join(format!("{stem}.{n}.out")).exists() {
            n += 1;
        }
        let messages = dir.join(format!("{stem}.{n}.messages.log"));
        let errors = dir.join(format!("{stem}.{n}.errors.log"));
        let mut command = Command::new("sipp");
        command
            .current_dir(dir)
            .arg("-i")
            .arg(local.to_string())
            .arg("-mi")
            .arg(local.to_string())
            .args(["-m", "1", "-nostdin"])
            .args(["-timeout", "120s", "-timeout_error"])
            .args(["-trace_msg", "-message_file"])
            .arg(&messages)
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .args(args);
        let peer = Peer::spawn(
            &format!("sipp {label} (apt install sip-tester)"),
            command,
            dir.join(format!("{stem}.{n}.out")),
        );
        Sipp {
            peer,
            label: label.to_owned(),
            messages,
            errors,
        }
    }

    /// The exit status, if sipp has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.peer.exited()
    }

    /// Waits for the scenario to end and asserts it succeeded (every expected message came);
    /// returns sipp's trace of the messages sent and received. Past `deadline` sipp is killed
    /// and the test fails.
    pub fn succeeds(mut self, deadline: Duration) -> String {
        let status = self.wait(deadline);
        assert!(
            status.success(),
            "sipp {} failed ({status}):\n{}",
            self.label,
            self.logs()
        );
        self.messages()
    }

    /// Waits for the run to end, however it went (a caller the server turns away fails its
    /// scenario); returns sipp's screen output, with its final call counts (see
    /// [`final_counts`]).
    pub fn finishes(mut self, deadline: Duration) -> String {
        self.wait(deadline);
        self.peer.output()
    }

    /// For async tests: waits up to `limit` for sipp to exit; true when its scenario passed.
    /// A failed or unfinished run prints sipp's logs.
    pub async fn finish(&mut self, limit: Duration) -> bool {
        match self.peer.finish(limit).await {
            Some(status) if status.success() => true,
            Some(status) => {
                eprintln!("sipp {} failed ({status}):\n{}", self.label, self.logs());
                false
            }
            None => {
                eprintln!(
                    "sipp {} still running after {limit:?}:\n{}",
                    self.label,
                    self.logs()
                );
                false
            }
        }
    }

    /// sipp's trace of the SIP messages it sent and received (see [`trace`]).
    pub fn messages(&self) -> String {
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }

    /// The end of sipp's message trace, its errors and the end of its screen output.
    pub fn logs(&self) -> String {
        logs(&self.messages, &self.errors, &self.peer.output)
    }

    fn wait(&mut self, deadline: Duration) -> ExitStatus {
        // The paths are copied out: the peer is borrowed mutably while it is waited for.
        let (messages, errors, output) = (
            self.messages.clone(),
            self.errors.clone(),
            self.peer.output.clone(),
        );
        self.peer
            .wait(deadline, &|| logs(&messages, &errors, &output))
    }
}

fn logs(messages: &Path, errors: &Path, output: &Path) -> String {
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    format!(
        "--- messages\n{}\n--- errors\n{}\n--- output\n{}",
        tail(&read(messages), MESSAGE_LINES),
        read(errors),
        tail(&read(output), OUTPUT_LINES),
    )
}

/// The counters of sipp's final statistics screen: successful and failed calls.
pub fn final_counts(output: &str) -> (u64, u64) {
    let count = |name: &str| {
        output
            .lines()
            .rev()
            .find(|line| line.trim_start().starts_with(name))
            // The last column is the cumulative count.
            .and_then(|line| line.rsplit('|').next())
            .and_then(|cell| cell.trim().parse().ok())
            .unwrap_or(0)
    };
    (count("Successful call"), count("Failed call"))
}

/// One message in sipp's trace (`-trace_msg`).
pub struct Traced {
    /// Seconds since midnight (the trace's clock).
    pub at: f64,
    /// Sent by sipp (or received).
    pub sent: bool,
    /// The request or status line.
    pub first_line: String,
}

/// Reads sipp's message trace: blocks of `----- DATE HH:MM:SS.micro`, `UDP message sent (N
/// bytes):`, a blank line, then the message.
pub fn trace(log: &str) -> Vec<Traced> {
    let mut messages = Vec::new();
    for block in log
        .split("-----------------------------------------------")
        .skip(1)
    {
        let mut lines = block.lines();
        let stamp = lines.next().unwrap_or("").trim();
        let Some(at) = stamp
            .rsplit(' ')
            .next()
            .and_then(|time| {
                let mut parts = time.split(':').map(|p| p.parse::<f64>().ok());
                Some((parts.next()??, parts.next()??, parts.next()??))
            })
            .map(|(h, m, s)| h * 3600.0 + m * 60.0 + s)
        else {
            continue;
        };
        let sent = lines.next().unwrap_or("").contains("message sent");
        let first_line = lines
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned();
        messages.push(Traced {
            at,
            sent,
            first_line,
        });
    }
    messages
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_gives_each_message_its_time_direction_and_first_line() {
        let log = "\
----------------------------------------------- 2026-12-04 22:40:01.250000
UDP message sent (512 bytes):

INVITE sip:interview@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5061

----------------------------------------------- 2026-12-04 22:40:01.500000
UDP message received [300] bytes :

SIP/2.0 200 OK
";
        let messages = trace(log);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0].first_line,
            "INVITE sip:interview@127.0.0.1:5060 SIP/2.0"
        );
        assert!(messages[0].sent && !messages[1].sent);
        assert_eq!(messages[1].first_line, "SIP/2.0 200 OK");
        assert!((messages[1].at - messages[0].at - 0.25).abs() < 1e-9);
    }

    #[test]
    fn final_counts_read_the_cumulative_column() {
        let screen = "\
  Successful call        |        3                |        697
  Failed call            |        0                |        3
";
        assert_eq!(final_counts(screen), (697, 3));
        assert_eq!(final_counts("nothing"), (0, 0));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
