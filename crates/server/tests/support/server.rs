//! A real `viva serve` for integration tests: the binary, started from the repository root
//! (real config, jobs and models) on a free port with its own data directory, and an HTTP
//! client for its API.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use viva_test_support::models::repo_root;
use viva_test_support::{TempDir, scratch_dir};

/// The recruiter API key the test servers use.
pub const API_KEY: &str = "test-recruiter-key";
/// The secret CPaaS media streams present to the test servers.
pub const STREAM_TOKEN: &str = "test-stream-token";

/// A running server; stopped (SIGTERM, by PID) and its data removed on drop.
pub struct TestServer {
    pub base: String,
    pub data_dir: PathBuf,
    /// Holds `data_dir`, which goes with it; taken over by the restarted server after a crash.
    scratch: Option<TempDir>,
    /// The environment it was started with, for a restart.
    env: Vec<(String, String)>,
    /// The PostgreSQL database made for this server (see [`TestServer::start`]), dropped with
    /// it.
    postgres: Option<Postgres>,
    /// Where the server answers phone calls (SIP over UDP and TCP), as bound; None when SIP
    /// is off.
    pub sip_udp: Option<SocketAddr>,
    pub sip_tcp: Option<SocketAddr>,
    child: Child,
    agent: ureq::Agent,
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error.code` of an error response.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an API error: {}", self.text()))
            .to_owned()
    }
}

/// A database of its own on the PostgreSQL server of `VIVA_TEST_SERVER_POSTGRES_URL` (or one
/// several nodes share, see [`TestServer::start_node`]); dropped with it.
pub struct Postgres {
    server: String,
    name: String,
}

impl Postgres {
    pub fn create(server: &str, test: &str) -> Postgres {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "viva_server_{}_{}_{n}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id()
        );
        let database = Postgres {
            server: server.to_owned(),
            name,
        };
        database.admin(&format!("CREATE DATABASE {}", database.name));
        database
    }

    /// The URL of this database: the server's URL with its path replaced.
    pub fn url(&self) -> String {
        let (base, _) = self
            .server
            .rsplit_once('/')
            .expect("a postgres://HOST/DATABASE URL");
        format!("{base}/{}", self.name)
    }

    fn admin(&self, sql: &str) {
        let done = Command::new("psql")
            .args([&self.server, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .status()
            .expect("psql runs");
        assert!(done.success(), "psql: {sql} failed");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

impl TestServer {
    /// Starts `viva serve` with `env` on top of a clean `VIVA_*` environment, on SQLite, or on
    /// a fresh database of the PostgreSQL server at `VIVA_TEST_SERVER_POSTGRES_URL` when that
    /// is set (scripts/test runs the workspace suites both ways).
    pub fn start(name: &str, env: &[(&str, &str)]) -> TestServer {
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let postgres = std::env::var("VIVA_TEST_SERVER_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|server| Postgres::create(&server, name));
        if let Some(database) = &postgres {
            env.push(("VIVA_SERVER_DATABASE".to_owned(), database.url()));
        }
        TestServer::spawn(scratch_dir(&format!("server-{name}")), env, postgres)
    }

    /// Starts `viva serve` as one node of several, with `env` on top of a clean `VIVA_*`
    /// environment and no database of its own: `env` names the one the nodes share
    /// (`VIVA_SERVER_DATABASE`), the node (`VIVA_SERVER_NODE`) and its addresses
    /// (`VIVA_SERVER_HTTP`, `VIVA_SIP_UDP`, `VIVA_SIP_TCP`; each 127.0.0.1 and any port unless
    /// given).
    pub fn start_node(name: &str, env: &[(&str, &str)]) -> TestServer {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TestServer::spawn(scratch_dir(&format!("server-{name}")), env, None)
    }

    /// Kills the server as a crash would (SIGKILL: no shutdown, nothing flushed) and waits
    /// until it is gone; it stays down.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Kills the server as a crash would (SIGKILL: no shutdown, nothing flushed), leaves it
    /// down for `downtime`, and starts it again on the same data directory.
    pub fn crash_and_restart(mut self, downtime: Duration) -> TestServer {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(downtime);
        self.respawn()
    }

    /// Sends SIGTERM, as a service manager or Kubernetes stopping the server does.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// How the server exited, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Starts the server again on the same data directory once it has exited by itself.
    pub fn restart_after_exit(mut self) -> TestServer {
        let _ = self.child.wait();
        self.respawn()
    }

    fn respawn(mut self) -> TestServer {
        let scratch = self
            .scratch
            .take()
            .expect("a running server holds its data directory");
        let env = std::mem::take(&mut self.env);
        let postgres = self.postgres.take();
        // The old handle has nothing left to clean up: its process is gone and the new server
        // owns the data directory and the database.
        std::mem::forget(self);
        TestServer::spawn(scratch, env, postgres)
    }

    fn spawn(
        scratch: TempDir,
        env: Vec<(String, String)>,
        postgres: Option<Postgres>,
    ) -> TestServer {
        let data_dir = scratch.path().to_owned();
        // Any free port on loopback unless the environment names the address.
        let http = env
            .iter()
            .find(|(k, _)| k == "VIVA_SERVER_HTTP")
            .map_or("127.0.0.1:0", |(_, v)| v.as_str())
            .to_owned();
        let mut command = Command::new(env!("CARGO_BIN_EXE_viva"));
        command.current_dir(repo_root());
        for (key, _) in std::env::vars() {
            if key.starts_with("VIVA_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(["serve", "--http", &http, "--data-dir"])
            .arg(&data_dir)
            .env("VIVA_API_KEY", API_KEY)
            .env("VIVA_CPAAS_STREAM_TOKEN", STREAM_TOKEN)
            // Dropped, it stops its interviews at once rather than draining (tests of the drain
            // set their own).
            .env("VIVA_SERVER_DRAIN_SECS", "0")
            // Any free SIP port: tests run side by side.
            .env("VIVA_SIP_UDP", "127.0.0.1:0")
            .env("VIVA_SIP_TCP", "127.0.0.1:0")
            // Quiet unless asked (VIVA_TEST_SERVER_LOG=info); failures show the server's warnings.
            .env(
                "VIVA_LOG_LEVEL",
                std::env::var("VIVA_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("viva starts");
        // The address is on the "listening on" line, printed after the SIP line ("viva answers
        // phone calls on SIP udp ADDR, tcp ADDR") when SIP is on; loading the models comes first.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sip = (None, None);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, addrs)) = line.split_once("phone calls on SIP ") {
                    sip = sip_addrs(addrs);
                }
                if let Some((_, addr)) = line.split_once("listening on ") {
                    let _ = tx.send((addr.trim().to_owned(), sip));
                }
            }
        });
        let (base, (sip_udp, sip_tcp)) = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(started) => started,
            // Its output ended first: it exited (the reason is on stderr above).
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!("viva serve exited before listening ({status}); its errors are above");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("viva serve did not start listening within 2 minutes");
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        TestServer {
            base,
            data_dir,
            scratch: Some(scratch),
            env,
            postgres,
            sip_udp,
            sip_tcp,
            child,
            agent,
        }
    }

    /// The server's resident memory (VmRSS) in MiB.
    pub fn resident_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib / 1024.0
    }

    /// The media-stream WebSocket URL with the stream token, as a CPaaS is given it.
    pub fn stream_url(&self) -> String {
        format!(
            "{}/media-stream/{STREAM_TOKEN}",
            self.base.replace("http://", "ws://")
        )
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request with the API key.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, Some(API_KEY), &[], None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.request("POST", path, Some(API_KEY), &[], Some(body.to_string()))
    }

    /// Any request: `key` None sends no Authorization header.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match body {
            Some(body) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(body)
                    .unwrap(),
            ),
            None => self.agent.run(request.body(()).unwrap()),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response
            .into_body()
            .with_config()
            .limit(512 * 1024 * 1024)
            .read_to_vec()
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A request sent from the local address `from` (any of 127.0.0.0/8: another client on
    /// this machine), over plain HTTP/1.1 with `Connection: close`.
    pub fn request_from(
        &self,
        from: std::net::IpAddr,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let target = self.base.trim_start_matches("http://");
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n");
        if let Some(key) = key {
            request.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or_default();
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.exchange(from, request.as_bytes())
    }

    /// Sends `raw` bytes from the local address `from` and reads the HTTP response: for
    /// requests no client library would send (a body shorter than its Content-Length).
    pub fn exchange(&self, from: std::net::IpAddr, raw: &[u8]) -> Reply {
        use std::io::{Read, Write};
        let target: SocketAddr = self.base.trim_start_matches("http://").parse().unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::new(from, 0).into())
            .unwrap_or_else(|e| panic!("cannot bind {from}: {e}"));
        socket.connect(&target.into()).unwrap();
        let mut stream: std::net::TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(raw).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response head");
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: response[split + 4..].to_vec(),
        }
    }

    /// A value the server keeps in its database's `settings` table (e.g. the link-signing
    /// key), read with the database's own client, whichever database it runs on.
    pub fn stored_setting(&self, name: &str) -> String {
        let sql = format!("SELECT value FROM settings WHERE name = '{name}'");
        let output = match &self.postgres {
            Some(database) => Command::new("psql")
                .args([&database.url(), "-tA", "-c", &sql])
                .output(),
            None => Command::new("sqlite3")
                .arg(self.data_dir.join("viva.db"))
                .arg(&sql)
                .output(),
        }
        .expect("the database client runs");
        assert!(output.status.success(), "{sql}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Runs `viva user add EMAIL --role ROLE --password-stdin` on this server's data directory.
    pub fn add_user(&self, email: &str, role: &str, password: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_viva"))
            .current_dir(repo_root())
            .args([
                "user",
                "add",
                email,
                "--role",
                role,
                "--password-stdin",
                "--data-dir",
            ])
            .arg(&self.data_dir)
            .envs(
                self.env
                    .iter()
                    .filter(|(k, _)| k == "VIVA_SERVER_DATABASE")
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    }

    /// Schedules an interview for the shipped backend job; returns its API view.
    pub fn schedule(&self, name: &str) -> Value {
        let reply = self.post(
            "/api/v1/interviews",
            &serde_json::json!({ "job": "backend-developer", "candidate": { "name": name } }),
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()
    }

    /// Polls the interview until `done` holds for it, or panics after `timeout`.
    pub fn wait_for_interview(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let interview = self.get(&format!("/api/v1/interviews/{id}")).json();
            if done(&interview) {
                return interview;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "interview {id} did not reach the expected state: {interview}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The UDP and TCP addresses in "udp 127.0.0.1:5060, tcp 127.0.0.1:5060" (either may be absent).
fn sip_addrs(text: &str) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let mut addrs = (None, None);
    for part in text.split(',') {
        match part.trim().split_once(' ') {
            Some(("udp", addr)) => addrs.0 = addr.trim().parse().ok(),
            Some(("tcp", addr)) => addrs.1 = addr.trim().parse().ok(),
            _ => {}
        }
    }
    addrs
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A server that has exited (and been waited for) is not signalled: its PID may be
        // another process's by now.
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        // The data directory goes with `scratch`, after the server has stopped writing to it.
        let _ = self.child.wait();
    }
}

/// The words of `text`, lower case, as a transcript is compared with what was said.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Everything the candidate said in a transcript from the API, one string.
pub fn candidate_text(transcript: &Value) -> String {
    transcript["turns"]
        .as_array()
        .unwrap_or_else(|| panic!("no turns in {transcript}"))
        .iter()
        .filter(|t| t["speaker"] == "candidate")
        .map(|t| t["text"].as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}
