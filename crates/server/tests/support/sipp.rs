//! Real SIP peers for tests: sipp runs of the scenarios in tests/sipp/, as child processes
//! with a deadline (killed by PID when it passes), each in a scratch directory holding its
//! audio, key presses and message traces.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory for one test's files; removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("viva-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A peer process; killed (by PID) if it is still running when dropped.
pub struct Peer {
    name: String,
    pub child: Child,
    /// Its stdout and stderr.
    pub output: PathBuf,
}

impl Peer {
    pub fn spawn(name: &str, mut command: Command, output: PathBuf) -> Peer {
        let file = std::fs::File::create(&output).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Peer {
            name: name.to_owned(),
            child,
            output,
        }
    }

    /// Waits for the peer to exit; past `deadline` it is killed and the test fails.
    pub fn wait(&mut self, deadline: Duration, logs: &dyn Fn() -> String) -> ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not finish within {deadline:?}; killed it\n{}",
                    self.name,
                    logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Udp,
    Tcp,
}

pub fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp")
}

/// One sipp run of a scenario in tests/sipp/, working in the scratch directory (where the
/// scenario finds its audio and key presses and leaves its message trace).
pub struct Sipp {
    peer: Peer,
    scenario: String,
    messages: PathBuf,
    errors: PathBuf,
}

impl Sipp {
    /// Calls `target` (a UAC scenario) from 127.0.0.1.
    pub fn call(
        scenario: &str,
        scratch: &Scratch,
        transport: Transport,
        target: SocketAddr,
        args: &[String],
    ) -> Sipp {
        Sipp::call_from(
            scenario,
            scratch,
            transport,
            target,
            [127, 0, 0, 1].into(),
            args,
        )
    }

    /// Calls `target` (a UAC scenario) from the local address `from` (any of 127.0.0.0/8 on
    /// loopback: several callers on one machine).
    pub fn call_from(
        scenario: &str,
        scratch: &Scratch,
        transport: Transport,
        target: SocketAddr,
        from: IpAddr,
        args: &[String],
    ) -> Sipp {
        let mut all = vec![
            "-t".to_owned(),
            match transport {
                Transport::Udp => "u1",
                Transport::Tcp => "t1",
            }
            .to_owned(),
            "-s".to_owned(),
            "interview".to_owned(),
        ];
        all.extend(args.iter().cloned());
        all.push(target.to_string());
        Sipp::run(scenario, scratch, from, &all)
    }

    /// Waits for a call on UDP `port` (a UAS scenario); returns once sipp listens there.
    pub fn answer(scenario: &str, scratch: &Scratch, port: u16, args: &[String]) -> Sipp {
        let mut all = vec![
            "-t".to_owned(),
            "u1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ];
        all.extend(args.iter().cloned());
        let mut sipp = Sipp::run(scenario, scratch, [127, 0, 0, 1].into(), &all);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !udp_port_bound(port) {
            if let Some(status) = sipp.peer.child.try_wait().unwrap() {
                panic!("sipp {scenario} exited ({status}):\n{}", sipp.logs());
            }
            assert!(
                Instant::now() < deadline,
                "sipp never listened on UDP {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sipp
    }

    fn run(scenario: &str, scratch: &Scratch, from: IpAddr, args: &[String]) -> Sipp {
        let stem = scenario.trim_end_matches(".xml");
        // Several runs of one scenario in a test get their own files.
        let mut n = 0;
        while scratch.join(&format!("{stem}.{n}.out")).exists() {
            n += 1;
        }
        let messages = scratch.join(&format!("{stem}.{n}.messages.log"));
        let errors = scratch.join(&format!("{stem}.{n}.errors.log"));
        let mut command = Command::new("sipp");
        command
            .current_dir(&scratch.0)
            .arg("-sf")
            .arg(sipp_dir().join(scenario))
            .arg("-i")
            .arg(from.to_string())
            .arg("-mi")
            .arg(from.to_string())
            .args(["-m", "1", "-nostdin"])
            .args(["-timeout", "120s", "-timeout_error"])
            .args(["-trace_msg", "-message_file"])
            .arg(&messages)
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .args(args);
        let peer = Peer::spawn(
            &format!("sipp {scenario}"),
            command,
            scratch.join(&format!("{stem}.{n}.out")),
        );
        Sipp {
            peer,
            scenario: scenario.to_owned(),
            messages,
            errors,
        }
    }

    /// Waits for the scenario to end and asserts it succeeded (every expected message came);
    /// returns sipp's trace of the messages sent and received.
    pub fn succeeds(mut self, deadline: Duration) -> String {
        let (messages, errors, output) = (
            self.messages.clone(),
            self.errors.clone(),
            self.peer.output.clone(),
        );
        let status = self
            .peer
            .wait(deadline, &|| sipp_logs(&messages, &errors, &output));
        assert!(
            status.success(),
            "sipp {} failed ({status}):\n{}",
            self.scenario,
            self.logs()
        );
        std::fs::read_to_string(&self.messages).unwrap_or_default()
    }

    /// Waits for the run to end, however it went (a caller the server turns away fails its
    /// scenario); returns sipp's screen output, with its final call counts.
    pub fn finishes(mut self, deadline: Duration) -> String {
        let (messages, errors, output) = (
            self.messages.clone(),
            self.errors.clone(),
            self.peer.output.clone(),
        );
        self.peer
            .wait(deadline, &|| sipp_logs(&messages, &errors, &output));
        self.peer.output()
    }

    pub fn logs(&self) -> String {
        sipp_logs(&self.messages, &self.errors, &self.peer.output)
    }
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

/// sipp's trace of the messages, its errors and the end of its screen output.
pub fn sipp_logs(messages: &Path, errors: &Path, output: &Path) -> String {
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    format!(
        "--- messages\n{}\n--- errors\n{}\n--- output\n{}",
        read(messages),
        read(errors),
        tail(&read(output), 40),
    )
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
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
pub fn sipp_trace(log: &str) -> Vec<Traced> {
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

/// sipp's `-key pin1 D ... -key pin10 D`: the digits the INFO scenarios type.
pub fn pin_keys(pin: &str) -> Vec<String> {
    pin.chars()
        .enumerate()
        .flat_map(|(i, d)| ["-key".to_owned(), format!("pin{}", i + 1), d.to_string()])
        .collect()
}

/// A UDP port nobody listens on right now, for a sipp phone to answer on.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a socket is bound to UDP `port` on this machine (from /proc/net/udp, where the
/// local address column reads `0100007F:PORT` in hex).
pub fn udp_port_bound(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let wanted = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|local| local.ends_with(&wanted))
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
