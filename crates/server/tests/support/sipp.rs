//! Real SIP peers for the server's phone tests: sipp runs of the scenarios in tests/sipp/ (see
//! `viva_test_support::sipp`), each working in the test's scratch directory, where the scenario
//! finds its audio and key presses and leaves its message traces.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use viva_test_support::net::udp_port_bound;
use viva_test_support::sipp::Sipp;

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Udp,
    Tcp,
}

pub fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp")
}

/// Calls `target` (a UAC scenario) from 127.0.0.1.
pub fn call(
    scenario: &str,
    dir: &Path,
    transport: Transport,
    target: SocketAddr,
    args: &[String],
) -> Sipp {
    call_from(
        scenario,
        dir,
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
    dir: &Path,
    transport: Transport,
    target: SocketAddr,
    from: IpAddr,
    args: &[String],
) -> Sipp {
    let transport = match transport {
        Transport::Udp => "u1",
        Transport::Tcp => "t1",
    };
    let mut all = scenario_args(scenario);
    all.extend(["-t", transport, "-s", "interview"].map(String::from));
    all.extend(args.iter().cloned());
    all.push(target.to_string());
    Sipp::start(scenario, dir, from, &all)
}

/// Waits for a call on UDP `port` (a UAS scenario); returns once sipp listens there.
pub fn answer(scenario: &str, dir: &Path, port: u16, args: &[String]) -> Sipp {
    let mut all = scenario_args(scenario);
    all.extend([
        "-t".to_owned(),
        "u1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
    ]);
    all.extend(args.iter().cloned());
    let mut sipp = Sipp::start(scenario, dir, [127, 0, 0, 1].into(), &all);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !udp_port_bound(port) {
        if let Some(status) = sipp.exited() {
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

fn scenario_args(scenario: &str) -> Vec<String> {
    vec![
        "-sf".to_owned(),
        sipp_dir().join(scenario).display().to_string(),
    ]
}

/// sipp's `-key pin1 D ... -key pin10 D`: the digits the INFO scenarios type.
pub fn pin_keys(pin: &str) -> Vec<String> {
    pin.chars()
        .enumerate()
        .flat_map(|(i, d)| ["-key".to_owned(), format!("pin{}", i + 1), d.to_string()])
        .collect()
}
