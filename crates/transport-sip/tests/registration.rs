//! REGISTER towards a trunk: digest authentication, refresh before the granted expiry, and
//! the binding withdrawn at shutdown. The registrar is a hand-written one in the test.

mod support;

use std::time::Duration;

use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::Method;
use rsipstack::sip::typed::Authorization;
use support::*;
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout};
use viva_transport_sip::{SipSettings, SipTransport, Trunk};

const REALM: &str = "registrar.test";
const NONCE: &str = "8c1f0e6a9d";

/// One REGISTER as the registrar saw it.
#[derive(Debug)]
struct Seen {
    authorized: bool,
    expires: Option<u32>,
    at: Instant,
}

fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// Answers REGISTERs like a trunk: 401 without valid credentials, else 200 granting
/// `granted` seconds.
async fn registrar(
    socket: UdpSocket,
    granted: u32,
    seen: tokio::sync::mpsc::UnboundedSender<Seen>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let request = String::from_utf8_lossy(&buf[..len]).to_string();
        if !request.starts_with("REGISTER ") {
            continue;
        }
        let authorized = header(&request, "Authorization").is_some_and(|raw| {
            Authorization::parse(raw).is_ok_and(|auth| {
                auth.nonce == NONCE && verify_digest(&auth, "pw", &Method::Register, raw)
            })
        });
        let expires = header(&request, "Expires")
            .and_then(|v| v.parse().ok())
            .or_else(|| {
                let contact = header(&request, "Contact")?;
                contact
                    .split("expires=")
                    .nth(1)?
                    .split(';')
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            });
        let _ = seen.send(Seen {
            authorized,
            expires,
            at: Instant::now(),
        });
        let copied: String = ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .filter_map(|name| header(&request, name).map(|v| format!("{name}: {v}\r\n")))
            .collect();
        let response = if authorized {
            let contact = header(&request, "Contact").unwrap_or("<sip:x@127.0.0.1>");
            let contact = contact.split(";expires").next().unwrap_or(contact);
            format!(
                "SIP/2.0 200 OK\r\n{copied}Contact: {contact};expires={granted}\r\n\
                 Expires: {granted}\r\nContent-Length: 0\r\n\r\n"
            )
        } else {
            format!(
                "SIP/2.0 401 Unauthorized\r\n{copied}WWW-Authenticate: Digest realm=\"{REALM}\", \
                 nonce=\"{NONCE}\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let _ = socket.send_to(response.as_bytes(), from).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_refreshes_and_unregisters() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let registrar = tokio::spawn(registrar(socket, 2, seen_tx));

    let settings = SipSettings {
        trunks: vec![Trunk {
            name: "registrar".into(),
            address: address.to_string(),
            transport: SipTransport::Udp,
            allow: Vec::new(),
            username: Some("viva-line".into()),
            password: Some("pw".into()),
            register: true,
            register_expires_secs: 600,
        }],
        ..loopback_settings()
    };
    let (endpoint, _incoming) = start(settings).await;

    // Within 3.5 s: a challenged REGISTER, an authorized one, and at least one refresh before
    // the 2 s the registrar granted run out (the stack refreshes at 75 %, in whole seconds).
    let mut registrations = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(3_500);
    while let Ok(Some(request)) = tokio::time::timeout_at(deadline, seen.recv()).await {
        registrations.push(request);
    }
    let authorized: Vec<&Seen> = registrations.iter().filter(|r| r.authorized).collect();
    assert!(!registrations[0].authorized, "{registrations:?}");
    assert!(authorized.len() >= 2, "{registrations:?}");
    assert_eq!(
        authorized[0].expires,
        Some(600),
        "asks for the configured lifetime"
    );
    let refresh = authorized[1].at - authorized[0].at;
    assert!(
        refresh >= Duration::from_millis(900) && refresh < Duration::from_millis(2_000),
        "refreshed after {refresh:?}"
    );

    endpoint.shutdown().await;
    let mut unregistered = false;
    while let Ok(Some(request)) = timeout(Duration::from_secs(2), seen.recv()).await {
        if request.authorized && request.expires == Some(0) {
            unregistered = true;
            break;
        }
    }
    assert!(unregistered, "shutdown withdraws the registration");
    registrar.abort();
}
