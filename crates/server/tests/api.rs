//! The recruiter API and the candidate links of a real `viva serve` (real models, real SQLite
//! database), without a browser: keys, validation, statuses, link expiry, signaling abuse.

#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use server::{API_KEY, TestServer};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn the_api_needs_the_key_and_explains_bad_requests() {
    let server = TestServer::start("api", &[]);

    let missing = server.request("GET", "/api/v1/interviews", None, &[], None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error_code(), "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let wrong = server.request("GET", "/api/v1/interviews", Some("guess"), &[], None);
    assert_eq!(wrong.status, 401);

    // The OpenAPI document is public and lists every route.
    let openapi = server.request("GET", "/api/v1/openapi.json", None, &[], None);
    assert_eq!(openapi.status, 200);
    let paths = openapi.json()["paths"].clone();
    for path in [
        "/api/v1/interviews",
        "/api/v1/interviews/{id}",
        "/api/v1/interviews/{id}/transcript",
        "/api/v1/interviews/{id}/report",
        "/api/v1/interviews/{id}/recording",
        "/api/v1/interviews/{id}/video",
        "/api/v1/interviews/{id}/dial",
    ] {
        assert!(
            paths.get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }

    let unknown = server.post(
        "/api/v1/interviews",
        &json!({ "job": "astronaut", "candidate": { "name": "Ada" } }),
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.error_code(), "unknown_job");
    assert!(unknown.text().contains("astronaut"), "{}", unknown.text());

    for (body, field) in [
        (json!({ "job": "backend-developer" }), ""),
        (
            json!({ "job": "backend-developer", "candidate": { "name": "" } }),
            "candidate.name",
        ),
        (
            json!({ "job": "backend-developer", "candidate": { "name": 7 } }),
            "candidate.name",
        ),
        (
            json!({ "job": "backend-developer", "candidate": { "name": "A", "email": "nope" } }),
            "candidate.email",
        ),
        (
            json!({ "job": "backend-developer", "candidate": { "name": "A" }, "colour": 1 }),
            "",
        ),
        (
            json!({ "job": "../etc/passwd", "candidate": { "name": "A" } }),
            "job",
        ),
        (
            json!({ "job": "backend-developer", "candidate": { "name": "A" }, "expires_in_hours": 0 }),
            "expires_in_hours",
        ),
    ] {
        let reply = server.post("/api/v1/interviews", &body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert_eq!(reply.error_code(), "invalid_request", "{body}");
        if !field.is_empty() {
            assert_eq!(
                reply.json()["error"]["field"],
                field,
                "{body}: {}",
                reply.text()
            );
        }
    }
    let not_json = server.request(
        "POST",
        "/api/v1/interviews",
        Some(API_KEY),
        &[],
        Some("{".into()),
    );
    assert_eq!(not_json.status, 400);

    // A scheduled interview: its view, the list, and what is not there yet.
    let created = server.schedule("Ada Lovelace");
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["status"], "scheduled");
    assert_eq!(created["pin"].as_str().unwrap().len(), 10);
    assert!(
        created["join_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/join/", server.base))
    );
    assert!(created["expires_at"].as_str().unwrap().contains('T'));
    let shown = server.get(&format!("/api/v1/interviews/{id}")).json();
    assert_eq!(shown["candidate"]["name"], "Ada Lovelace");
    assert_eq!(shown["job"], "backend-developer");
    let second = server.schedule("Grace Hopper");
    let list = server.get("/api/v1/interviews").json();
    let ids: Vec<&str> = list["interviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second["id"].as_str().unwrap(), id], "newest first");
    assert_eq!(
        server.get("/api/v1/interviews?limit=1").json()["interviews"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(server.get("/api/v1/interviews?limit=0").status, 400);

    assert_eq!(
        server
            .get(&format!("/api/v1/interviews/{id}/transcript"))
            .json(),
        json!({ "turns": [] })
    );
    let report = server.get(&format!("/api/v1/interviews/{id}/report"));
    assert_eq!(
        (report.status, report.error_code().as_str()),
        (409, "report_not_ready")
    );
    assert_eq!(
        server
            .get(&format!("/api/v1/interviews/{id}/recording"))
            .status,
        404
    );
    assert_eq!(
        server.get(&format!("/api/v1/interviews/{id}/video")).status,
        404
    );
    assert_eq!(
        server
            .get(&format!("/api/v1/interviews/{id}/transcript?format=pdf"))
            .status,
        400
    );
    assert_eq!(server.get("/api/v1/interviews/no-such-id").status, 404);
    assert_eq!(server.get("/api/v1/interviews/..%2F..%2Fetc").status, 404);
}

/// Signs a join token the way the server does, with the key it keeps in its database.
fn sign(server: &TestServer, id: &str, expires_unix: i64) -> String {
    let key = server.stored_setting("link_signing_key");
    let payload = format!("{id}.{expires_unix}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.trim().as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    format!(
        "{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn candidate_links_are_signed_and_expire() {
    let server = TestServer::start("links", &[]);
    let created = server.schedule("Ada Lovelace");
    let id = created["id"].as_str().unwrap();
    let join_url = created["join_url"].as_str().unwrap();

    let page = server.request("GET", join_url, None, &[], None);
    assert_eq!(page.status, 200);
    // The candidate's page runs only its own script and is never framed by another site.
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert!(
        page.text().contains("id=\"start\""),
        "the page has a start button"
    );
    let details = server
        .request("GET", &format!("{join_url}/details"), None, &[], None)
        .json();
    assert!(
        details["title"]
            .as_str()
            .unwrap()
            .starts_with("Senior Backend Developer"),
        "{details}"
    );
    assert_eq!(details["candidate_name"], "Ada Lovelace");
    assert!(details["duration_minutes"].as_u64().unwrap() > 0);
    assert!(details["notice"].as_str().unwrap().contains("record"));

    // The server's own signature, but past its expiry: 410. A forged one: 404.
    let expired = sign(&server, id, 1_000);
    let reply = server.request("GET", &format!("/join/{expired}/details"), None, &[], None);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (410, "link_expired")
    );
    assert_eq!(
        server
            .request("GET", &format!("/join/{expired}"), None, &[], None)
            .status,
        410
    );
    let in_a_year = chrono_free_now() + 365 * 86_400;
    let genuine = sign(&server, id, in_a_year);
    assert_eq!(
        server
            .request("GET", &format!("/join/{genuine}/details"), None, &[], None)
            .status,
        200
    );
    let forged = genuine.replace(id, "someone-else");
    assert_eq!(
        server
            .request("GET", &format!("/join/{forged}/details"), None, &[], None)
            .status,
        404
    );
    assert_eq!(
        server
            .request("GET", "/join/garbage/details", None, &[], None)
            .status,
        404
    );
}

fn chrono_free_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn malformed_signaling_is_refused_and_the_server_carries_on() {
    let server = TestServer::start("signal", &[]);
    let created = server.schedule("Ada Lovelace");
    let ws_url =
        format!("{}/signal", created["join_url"].as_str().unwrap()).replace("http://", "ws://");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        for garbage in [
            "not json",
            r#"{"type":"teleport"}"#,
            r#"{"type":"offer"}"#,
            r#"{"type":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}"#,
            "[]",
        ] {
            socket.send(Message::text(garbage)).await.unwrap();
            let reply = next_json(&mut socket).await;
            assert_eq!(reply["type"], "error", "{garbage}: {reply}");
            assert_eq!(reply["code"], "bad_message", "{garbage}: {reply}");
        }
        socket.send(Message::binary(vec![0u8; 16])).await.unwrap();
        assert_eq!(next_json(&mut socket).await["code"], "bad_message");

        // An offer that is not SDP: the call cannot be set up, the socket says so.
        socket
            .send(Message::text(
                json!({ "type": "offer", "sdp": "v=banana" }).to_string(),
            ))
            .await
            .unwrap();
        let reply = next_json(&mut socket).await;
        assert_eq!(reply["code"], "media_failed", "{reply}");

        // Far larger than any SDP: the connection is dropped.
        let (mut big, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        let _ = big.send(Message::text("x".repeat(1 << 20))).await;
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match big.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert_eq!(closed, Ok(true), "an oversized message closes the socket");
    });
    // The server is fine.
    assert_eq!(
        server.request("GET", "/healthz", None, &[], None).status,
        200
    );
    assert_eq!(server.get("/api/v1/interviews").status, 200);
}

async fn next_json<S>(socket: &mut S) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a reply within 10 s")
            .expect("the socket is open")
            .expect("a message");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}
