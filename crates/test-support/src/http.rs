//! A canned HTTP endpoint on loopback, for clients that must survive what real servers and
//! proxies send: each request gets the next of its responses (cycling), after a delay, and is
//! counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A running endpoint; it serves until the test process ends.
pub struct CannedHttp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    served: Arc<AtomicUsize>,
}

impl CannedHttp {
    /// Answers every request with the next of `responses` (status, JSON body), waiting `delay`
    /// first, like a model stuck on a long prompt. Each connection has a thread of its own, so
    /// a slow answer does not hold up the next request.
    pub fn start(responses: Vec<(u16, String)>, delay: Duration) -> CannedHttp {
        assert!(!responses.is_empty(), "a canned endpoint needs a response");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on loopback");
        let port = listener.local_addr().expect("a bound listener").port();
        let served = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&served);
        let responses = Arc::new(responses);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (count, responses) = (Arc::clone(&count), Arc::clone(&responses));
                std::thread::spawn(move || respond(stream, &count, &responses, delay));
            }
        });
        CannedHttp {
            base: format!("http://127.0.0.1:{port}"),
            served,
        }
    }

    /// How many requests it has read so far (a request is counted before its delay).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

fn respond(
    mut stream: TcpStream,
    count: &AtomicUsize,
    responses: &[(u16, String)],
    delay: Duration,
) {
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reading);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let n = count.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(delay);
    let (status, text) = &responses[n % responses.len()];
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes());
}
