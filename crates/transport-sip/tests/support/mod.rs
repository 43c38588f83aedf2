//! Shared helpers for the SIP integration tests: an endpoint on loopback, sipp as a child
//! process (killed by PID), and readers for what a call delivers.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use viva_call::{Call, CallInput};
pub use viva_test_support::net::{free_media_port, free_udp_port};
use viva_test_support::{TempDir, scratch_dir};
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

/// Starts an endpoint with `settings`, with room for every call.
pub async fn start(settings: SipSettings) -> (SipEndpoint, mpsc::Receiver<IncomingCall>) {
    start_with_room(settings, || Ok(())).await
}

/// Starts an endpoint with `settings` and the server's `room` for calls.
pub async fn start_with_room(
    settings: SipSettings,
    room: impl Fn() -> Result<(), Duration> + Send + Sync + 'static,
) -> (SipEndpoint, mpsc::Receiver<IncomingCall>) {
    init_logs();
    SipEndpoint::start(settings, room)
        .await
        .expect("endpoint starts")
}

/// A scenario file under tests/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A running sipp on loopback with ports of its own, killed by its PID if it outlives the test.
pub struct Sipp {
    sipp: viva_test_support::sipp::Sipp,
    /// Its working directory, kept for a failed scenario only (the path is printed).
    dir: Option<TempDir>,
    pub sip_port: u16,
    pub media_port: u16,
}

impl Sipp {
    /// Runs sipp against `target` (an `ip:port`, or `None` for a UAS) with `args` after the
    /// common ones (loopback addresses, free ports, one call, a global timeout).
    pub fn spawn(target: Option<SocketAddr>, args: &[&str]) -> Sipp {
        // Free for TCP too: over TCP (`-t t1`) sipp listens on this port, and a port free
        // for UDP may be another connection's TCP port.
        let sip_port = loop {
            let port = free_udp_port();
            if std::net::TcpListener::bind((LOOPBACK, port)).is_ok() {
                break port;
            }
        };
        let media_port = free_media_port();
        let dir = scratch_dir("sipp");
        let mut all: Vec<String> = target.iter().map(ToString::to_string).collect();
        all.extend(["-p", &sip_port.to_string(), "-mp", &media_port.to_string()].map(String::from));
        all.extend(args.iter().map(|arg| arg.to_string()));
        let sipp = viva_test_support::sipp::Sipp::start(
            "sipp",
            dir.path(),
            LOOPBACK.parse().unwrap(),
            &all,
        );
        Sipp {
            sipp,
            dir: Some(dir),
            sip_port,
            media_port,
        }
    }

    /// The address a sipp UAS listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOOPBACK.parse().unwrap(), self.sip_port)
    }

    /// Waits for sipp to exit; true when its scenario passed. Gives up after `limit`. A failed
    /// run prints sipp's logs and keeps its directory.
    pub async fn finish(&mut self, limit: Duration) -> bool {
        let passed = self.sipp.finish(limit).await;
        if !passed && let Some(dir) = self.dir.take() {
            eprintln!("sipp's files are kept in {}", dir.keep().display());
        }
        passed
    }

    /// The SIP messages sipp exchanged.
    pub fn messages(&self) -> String {
        self.sipp.messages()
    }
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
