//! The deployment's secrets: the recruiter API key, the CPaaS stream token and the key that
//! signs candidate links. Configured, or generated at first start and kept in the database;
//! `viva api-key` and `viva cpaas-url` print them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use viva_store::Store;

use crate::config::Config;

/// Settings names in the database.
const API_KEY_SETTING: &str = "api_key";
const LINK_KEY_SETTING: &str = "link_signing_key";
const STREAM_TOKEN_SETTING: &str = "cpaas_stream_token";

/// The secrets `viva serve` runs with.
pub struct Secrets {
    pub api_key: String,
    pub stream_token: String,
    pub link_key: String,
}

impl Secrets {
    /// The configured secrets, the others generated now (first start) or read back.
    pub async fn load(config: &Config, store: &Store) -> anyhow::Result<Secrets> {
        let api_key = if config.server.api_key.is_empty() {
            let generated = random_key();
            let key = store
                .set_setting_if_absent(API_KEY_SETTING, &generated)
                .await?;
            if key == generated {
                println!(
                    "generated the recruiter API key and stored it in the database; print it with `viva api-key`"
                );
            }
            key
        } else {
            config.server.api_key.clone()
        };
        let stream_token = if config.cpaas.stream_token.is_empty() {
            store
                .set_setting_if_absent(STREAM_TOKEN_SETTING, &random_key())
                .await?
        } else {
            config.cpaas.stream_token.clone()
        };
        let link_key = store
            .set_setting_if_absent(LINK_KEY_SETTING, &random_key())
            .await?;
        Ok(Secrets {
            api_key,
            stream_token,
            link_key,
        })
    }
}

/// `viva api-key`: the key recruiters use, wherever it is configured.
pub async fn print_api_key(config: &Config) -> anyhow::Result<()> {
    let key = if config.server.api_key.is_empty() {
        generated_setting(config, API_KEY_SETTING, "API key").await?
    } else {
        config.server.api_key.clone()
    };
    println!("{key}");
    Ok(())
}

/// `viva cpaas-url`: the media-stream URL, token included, to give the CPaaS.
pub async fn print_cpaas_url(config: &Config) -> anyhow::Result<()> {
    let token = if config.cpaas.stream_token.is_empty() {
        generated_setting(config, STREAM_TOKEN_SETTING, "CPaaS stream token").await?
    } else {
        config.cpaas.stream_token.clone()
    };
    let base = if config.server.public_url.is_empty() {
        format!("http://{}", config.server.http)
    } else {
        config.server.public_url.trim_end_matches('/').to_owned()
    };
    let ws = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or(base);
    println!("{ws}/media-stream/{token}");
    Ok(())
}

/// A generated secret from the data directory's database, or what to do when there is none.
async fn generated_setting(config: &Config, name: &str, what: &str) -> anyhow::Result<String> {
    let database = config.server.database_url();
    if config.server.database.is_empty() && !config.server.data_dir.join("viva.db").exists() {
        anyhow::bail!(
            "no {what} yet: there is no database in {} (server.data_dir); `viva serve` creates \
             one and generates the {what} at first start (pass the same --data-dir or --config \
             as to `viva serve`)",
            config.server.data_dir.display()
        );
    }
    let store = Store::open(&database, &config.server.data_dir).await?;
    store.setting(name).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "no {what} yet in {}: `viva serve` generates one at first start",
            config.server.data_dir.display()
        )
    })
}

/// 32 random bytes, URL-safe.
fn random_key() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a random token, in hex: what the store keeps of session cookies and API key
/// secrets (they are long random strings, so a fast hash is enough).
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
