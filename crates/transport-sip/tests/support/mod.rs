//! Shared helpers for the SIP integration tests: an endpoint on loopback, sipp as a child
//! process (killed by PID), and readers for what a call delivers.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use viva_call::{Call, CallInput};
use viva_transport_sip::{IncomingCall, SipEndpoint, SipSettings};

/// Loopback, where every peer of these tests lives.
pub const LOOPBACK: &str = "127.0.0.1";

/// Logs go to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Settings for an endpoint on loopback with free ports and short timeouts.
pub fn loopback_settings() -> SipSettings {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    SipSettings {
        udp: Some(any),
        tcp: Some(any),
        public_ip: None,
        rtp_ports: (30_000, 39_999),
        trunks: Vec::new(),
        max_call: Duration::from_secs(120),
        ring_timeout: Duration::from_secs(10),
        ..SipSettings::default()
    }
}

/// Starts an endpoint with `settings`.
pub async fn start(settings: SipSettings) -> (SipEndpoint, mpsc::Receiver<IncomingCall>) {
    init_logs();
    SipEndpoint::start(settings).await.expect("endpoint starts")
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An even UDP port whose next port is free too (sipp uses media port and +2).
pub fn free_media_port() -> u16 {
    loop {
        let port = free_udp_port();
        let even = port - port % 2;
        if (0..4).all(|offset| UdpSocket::bind(("127.0.0.1", even + offset)).is_ok()) {
            return even;
        }
    }
}

/// A scenario file under tests/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A running sipp, killed by its PID if it outlives the test.
pub struct Sipp {
    child: Child,
    log: PathBuf,
    /// Logs are kept for a failed scenario only.
    passed: bool,
    pub sip_port: u16,
    pub media_port: u16,
}

impl Sipp {
    /// Runs sipp against `target` (an `ip:port`, or `None` for a UAS) with `args` after the
    /// common ones (loopback addresses, free ports, one call, a global timeout).
    pub fn spawn(target: Option<SocketAddr>, args: &[&str]) -> Sipp {
        let sip_port = free_udp_port();
        let media_port = free_media_port();
        let dir = std::env::temp_dir().join(format!("viva-sipp-{}-{sip_port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("sipp.log");
        let mut command = Command::new("/usr/bin/sipp");
        if let Some(target) = target {
            command.arg(target.to_string());
        }
        command
            .args(["-i", LOOPBACK, "-mi", LOOPBACK])
            .args(["-p", &sip_port.to_string(), "-mp", &media_port.to_string()])
            .args(["-m", "1", "-timeout", "40", "-timeout_error", "-nostdin"])
            .args(["-trace_err", "-error_file"])
            .arg(dir.join("errors.log"))
            .args(["-trace_msg", "-message_file"])
            .arg(dir.join("messages.log"))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ));
        let child = command.spawn().expect("sipp runs (apt install sip-tester)");
        Sipp {
            child,
            log: dir,
            passed: false,
            sip_port,
            media_port,
        }
    }

    /// The address a sipp UAS listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOOPBACK.parse().unwrap(), self.sip_port)
    }

    /// Waits for sipp to exit; true when its scenario passed. Kills it after `limit`.
    pub async fn finish(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    eprintln!("sipp failed ({status}); logs in {}", self.log.display());
                    for file in ["errors.log", "messages.log"] {
                        if let Ok(text) = std::fs::read_to_string(self.log.join(file)) {
                            eprintln!("--- {file}\n{}", tail(&text, 6000));
                        }
                    }
                }
                self.passed = status.success();
                return self.passed;
            }
            if Instant::now() > deadline {
                eprintln!("sipp still running after {limit:?}; killing it");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The SIP messages sipp exchanged.
    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.log.join("messages.log")).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // `Child::kill` signals exactly this child's PID.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.passed {
            let _ = std::fs::remove_dir_all(&self.log);
        }
    }
}

fn tail(text: &str, bytes: usize) -> &str {
    let start = text.len().saturating_sub(bytes);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

/// The next incoming call, within `limit`.
pub async fn next_call(
    incoming: &mut mpsc::Receiver<IncomingCall>,
    limit: Duration,
) -> IncomingCall {
    timeout(limit, incoming.recv())
        .await
        .expect("a call arrives in time")
        .expect("endpoint still running")
}

/// What a call delivered until it hung up (or `limit` passed).
#[derive(Debug, Default)]
pub struct Received {
    pub frames: usize,
    /// Frames whose RMS is above -40 dBFS.
    pub loud_frames: usize,
    pub keys: Vec<char>,
    pub hung_up: bool,
    /// Longest time between two consecutive audio frames.
    pub longest_gap: Duration,
    pub samples: usize,
}

/// Reads a call's input until it hangs up or `limit` passes.
pub async fn drain(call: &mut Call, limit: Duration) -> Received {
    let mut received = Received::default();
    let deadline = Instant::now() + limit;
    let mut last_frame: Option<Instant> = None;
    loop {
        let input = match tokio::time::timeout_at(deadline, call.inbound.recv()).await {
            Ok(Some(input)) => input,
            Ok(None) => {
                received.hung_up = true;
                break;
            }
            Err(_) => break,
        };
        match input {
            CallInput::Audio(frame) => {
                let now = Instant::now();
                if let Some(last) = last_frame {
                    received.longest_gap = received.longest_gap.max(now - last);
                }
                last_frame = Some(now);
                received.frames += 1;
                received.samples += frame.samples().len();
                assert_eq!(frame.sample_rate(), 8_000);
                let power: f32 = frame.samples().iter().map(|s| s * s).sum::<f32>()
                    / frame.samples().len().max(1) as f32;
                if power > 1e-4 {
                    received.loud_frames += 1;
                }
            }
            CallInput::Dtmf(key) => received.keys.push(key),
            CallInput::HangUp => {
                received.hung_up = true;
                break;
            }
        }
    }
    received
}

/// Writes `samples` (in [-1, 1], 8 kHz) as a mu-law WAV file, the format sipp streams.
pub fn write_mulaw_wav(path: &Path, samples: &[f32]) {
    let codes: Vec<u8> = viva_media::G711Law::MuLaw.encode(
        &samples
            .iter()
            .map(|&s| viva_media::f32_to_i16(s))
            .collect::<Vec<_>>(),
    );
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(4 + 26 + 8 + codes.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&18u32.to_le_bytes());
    wav.extend_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8_000u32.to_le_bytes());
    wav.extend_from_slice(&8_000u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8u16.to_le_bytes());
    wav.extend_from_slice(&0u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(codes.len() as u32).to_le_bytes());
    wav.extend_from_slice(&codes);
    std::fs::write(path, wav).unwrap();
}
