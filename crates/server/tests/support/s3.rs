//! A real S3-compatible server for the object-storage tests: s3s-fs (scripts/setup builds it;
//! scripts/test names it in `VIVA_TEST_S3_SERVER`), which keeps each object as a file under
//! its root and checks every request's SigV4 signature.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use viva_test_support::net::free_tcp_port;
use viva_test_support::services::service_url;

pub const BUCKET: &str = "viva-test";
const ACCESS_KEY: &str = "viva-test-access";
const SECRET_KEY: &str = "viva-test-secret-0123456789";

/// A running s3s-fs on loopback; stopped (by PID) on drop.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Where the bucket's objects are, as files named by their keys.
    pub bucket_dir: PathBuf,
    child: Child,
}

impl S3Server {
    /// Starts s3s-fs keeping its objects under `root`, with the bucket [`BUCKET`] made; `None`
    /// (the test is skipped) when no server binary is named and services are not required.
    pub fn start(root: &Path) -> Option<S3Server> {
        let binary = service_url(
            "VIVA_TEST_S3_SERVER",
            "echo ~/.cache/viva/s3s-fs/bin/s3s-fs (scripts/setup builds it)",
        )?;
        let bucket_dir = root.join(BUCKET);
        std::fs::create_dir_all(&bucket_dir).unwrap();
        let port = free_tcp_port();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} runs: {e}"));
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket_dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs never listened on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// The server's `[storage]` settings for Viva, copying a call's growth up every second.
    pub fn storage_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VIVA_STORAGE_KIND", "s3".to_owned()),
            ("VIVA_STORAGE_ENDPOINT", self.endpoint.clone()),
            ("VIVA_STORAGE_BUCKET", BUCKET.to_owned()),
            ("VIVA_STORAGE_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("VIVA_STORAGE_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("VIVA_STORAGE_UPLOAD_SECS", "1".to_owned()),
        ]
    }

    /// The keys under `prefix` in the bucket, sorted, with each object's size.
    pub fn objects(&self, prefix: &str) -> Vec<(String, u64)> {
        let mut found = Vec::new();
        let mut dirs = vec![self.bucket_dir.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let key = path
                    .strip_prefix(&self.bucket_dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if key.starts_with(prefix) {
                    found.push((key, entry.metadata().unwrap().len()));
                }
            }
        }
        found.sort();
        found
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
