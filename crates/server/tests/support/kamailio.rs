//! A real Kamailio (Debian's 5.6) in front of test nodes, run with the shipped
//! `deploy/kamailio/kamailio.cfg` and a node list the test writes into its scratch directory:
//! what an operator puts before several nodes to spread SIP calls over them.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use viva_test_support::models::repo_root;
use viva_test_support::net::udp_port_bound;
use viva_test_support::services::REQUIRE_SERVICES;

/// Kamailio binds its sockets and loads the node list within a second or two.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Kamailio; stopped (SIGTERM to its main process, by PID, which stops its workers)
/// on drop.
pub struct Kamailio {
    /// Where callers send their calls (UDP and TCP).
    pub address: SocketAddr,
    /// Every line Kamailio logged, with when it was read.
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    log_file: PathBuf,
    child: Child,
}

impl Kamailio {
    /// The `kamailio` binary, if installed. When it is not: with `VIVA_TEST_REQUIRE_SERVICES=1`
    /// (CI) the test fails; otherwise `None`, after a note that the test passes without
    /// running.
    pub fn binary() -> Option<PathBuf> {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("kamailio"))
            .find(|candidate| candidate.is_file());
        if found.is_none() {
            let how = "scripts/setup installs it (Debian: apt-get install kamailio)";
            if std::env::var(REQUIRE_SERVICES).is_ok_and(|value| value == "1") {
                panic!("kamailio is not installed and {REQUIRE_SERVICES}=1 requires it: {how}");
            }
            let _ = writeln!(
                std::io::stderr(),
                "note: kamailio is not installed, so the tests that need it pass without running; {how}"
            );
        }
        found
    }

    /// Starts `binary` with the shipped configuration on `address` (UDP and TCP; see
    /// [`free_address`]), spreading calls over `nodes` (their SIP addresses, UDP), with its
    /// node list and log in `dir`; waits until it listens.
    pub fn start(binary: &Path, dir: &Path, address: SocketAddr, nodes: &[SocketAddr]) -> Kamailio {
        let list = dir.join("viva-nodes.list");
        let lines: String = nodes.iter().map(|node| format!("1 sip:{node}\n")).collect();
        std::fs::write(&list, lines).unwrap();
        let log_file = dir.join("kamailio.log");
        let mut child = Command::new(binary)
            // In the foreground (its workers are its children), logging to stderr.
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-f"])
            .arg(repo_root().join("deploy/kamailio/kamailio.cfg"))
            .arg("-A")
            .arg(format!("SIP_ADDRESS={address}"))
            .arg("-A")
            .arg(format!("NODES_FILE=\"{}\"", list.display()))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let (log, stderr) = (Arc::clone(&log), child.stderr.take().unwrap());
            let mut file = std::fs::File::create(&log_file).unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = writeln!(file, "{line}");
                    log.lock().unwrap().push((Instant::now(), line));
                }
            });
        }
        let mut kamailio = Kamailio {
            address,
            log,
            log_file,
            child,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !udp_port_bound(address.port()) {
            if let Ok(Some(status)) = kamailio.child.try_wait() {
                panic!("kamailio exited ({status}):\n{}", kamailio.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not listen on {address} within {START_TIMEOUT:?}:\n{}",
                kamailio.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        kamailio
    }

    /// When Kamailio first logged a line containing `text`, if it has.
    pub fn logged_at(&self, text: &str) -> Option<Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|(_, line)| line.contains(text))
            .map(|(at, _)| *at)
    }

    /// Everything Kamailio logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM: the main process stops its workers and exits; SIGKILL would leave them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An address on 127.0.0.1 whose port was free for both UDP and TCP a moment ago.
pub fn free_address() -> SocketAddr {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = udp.local_addr().unwrap();
        if TcpListener::bind(address).is_ok() {
            return address;
        }
    }
}
