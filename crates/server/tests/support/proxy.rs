//! A real HAProxy (Debian's) in front of a test server, run with the shipped
//! `deploy/haproxy/haproxy.cfg`: what an operator puts before a node, routing by its readiness.

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
    child: Child,
    agent: ureq::Agent,
}

impl Haproxy {
    /// Starts HAProxy in front of the node at `node` (`HOST:PORT`), and waits until it routes
    /// requests there.
    pub fn start(node: &str) -> Haproxy {
        let bind = format!("127.0.0.1:{}", free_tcp_port());
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(repo_root().join("deploy/haproxy/haproxy.cfg"))
            .env("VIVA_PROXY_BIND", &bind)
            .env("VIVA_NODE_1", node)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("haproxy runs (scripts/setup installs it; root has /usr/sbin on PATH)");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let proxy = Haproxy {
            base: format!("http://{bind}"),
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
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
