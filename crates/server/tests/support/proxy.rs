//! A real HAProxy (Debian's) in front of test servers, run with the shipped
//! `deploy/haproxy/haproxy.cfg`: what an operator puts before one node or several, routing by
//! their readiness.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use viva_test_support::models::repo_root;
use viva_test_support::net::free_tcp_port;

/// HAProxy routes to a node after two passing health checks, 0.5 s apart.
const ROUTING_TIMEOUT: Duration = Duration::from_secs(15);

/// A running HAProxy; stopped (by PID) on drop.
pub struct Haproxy {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Where its request log goes, when kept.
    log: Option<PathBuf>,
    child: Child,
    agent: ureq::Agent,
}

/// One request in HAProxy's log: what was asked and which server answered it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The request's path (with its query string).
    pub path: String,
    /// `BACKEND/SERVER`, e.g. `viva_join/node2`.
    pub served_by: String,
    pub status: u16,
}

impl Haproxy {
    /// Starts HAProxy in front of the node at `node` (`HOST:PORT`), and waits until it routes
    /// requests there.
    pub fn start(node: &str) -> Haproxy {
        Haproxy::spawn(free_tcp_port(), &[node], None)
    }

    /// Starts HAProxy in front of the nodes at `nodes` (`HOST:PORT`, as `VIVA_NODE_1`,
    /// `VIVA_NODE_2`, ...), logging every request to the file `log` (see [`Haproxy::requests`]),
    /// and waits until it routes requests to one of them.
    pub fn start_nodes(nodes: &[&str], log: &Path) -> Haproxy {
        Haproxy::spawn(free_tcp_port(), nodes, Some(log))
    }

    /// [`Haproxy::start_nodes`] on the port `port` of 127.0.0.1, chosen before the nodes start
    /// when they must know the proxy's address (their `server.public_url`).
    pub fn start_nodes_on(port: u16, nodes: &[&str], log: &Path) -> Haproxy {
        Haproxy::spawn(port, nodes, Some(log))
    }

    fn spawn(port: u16, nodes: &[&str], log: Option<&Path>) -> Haproxy {
        let node = nodes.join(", ");
        let bind = format!("127.0.0.1:{port}");
        let stdout = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let mut command = Command::new("haproxy");
        command
            .arg("-db")
            .arg("-f")
            .arg(repo_root().join("deploy/haproxy/haproxy.cfg"))
            .env("VIVA_PROXY_BIND", &bind);
        for (n, node) in nodes.iter().enumerate() {
            command.env(format!("VIVA_NODE_{}", n + 1), node);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .spawn()
            .expect("haproxy runs (scripts/setup installs it; root has /usr/sbin on PATH)");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let proxy = Haproxy {
            base: format!("http://{bind}"),
            log: log.map(Path::to_owned),
            child,
            agent,
        };
        let deadline = Instant::now() + ROUTING_TIMEOUT;
        while proxy.status("/healthz") != 200 {
            assert!(
                Instant::now() < deadline,
                "HAProxy did not route to {node} within {ROUTING_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        proxy
    }

    /// The status HAProxy answers a GET of `path` with (0 when it does not answer at all).
    pub fn status(&self, path: &str) -> u16 {
        self.agent
            .get(format!("{}{path}", self.base))
            .call()
            .map_or(0, |r| r.status().as_u16())
    }

    /// The requests HAProxy has logged so far (it logs each once answered), oldest first; empty
    /// unless started with a log.
    pub fn requests(&self) -> Vec<Logged> {
        let Some(path) = &self.log else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(parse_log_line)
            .collect()
    }
}

/// One line of HAProxy's HTTP log (`option httplog`): `CLIENT [DATE] FRONTEND BACKEND/SERVER
/// TIMERS STATUS BYTES ... "METHOD PATH VERSION"`.
fn parse_log_line(line: &str) -> Option<Logged> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let served_by = fields.get(3)?.to_string();
    let status = fields.get(5)?.parse().ok()?;
    let request = line.split_once('"')?.1;
    let path = request.split_whitespace().nth(1)?.to_owned();
    Some(Logged {
        path,
        served_by,
        status,
    })
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
