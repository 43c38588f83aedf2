//! `viva serve`: the HTTP server. For now it answers health checks and shows what is running;
//! the interview API and candidate pages grow here.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{Json, Router, response::Html, routing::get};
use serde_json::{Value, json};

use crate::config::Config;

/// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (server.data_dir)",
            config.server.data_dir.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(config.server.http)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.http): is another server using it?",
                config.server.http
            )
        })?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %config.server.data_dir.display(), "viva is listening");
    println!(
        "viva {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server stopped")
}

fn router() -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/version", get(version))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn version() -> Json<Value> {
    Json(json!({ "name": "viva", "version": env!("CARGO_PKG_VERSION") }))
}

async fn home() -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Viva</title></head>\
         <body><h1>Viva {}</h1><p>Self-hosted AI interviews. Health: <a href=\"/healthz\">/healthz</a>.</p>\
         </body></html>",
        env!("CARGO_PKG_VERSION")
    ))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_and_version_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router()).await });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
    }
}
