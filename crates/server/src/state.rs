//! What every request handler and call can reach: the application's state, and the checks of
//! secrets presented to it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::FromRef;
use subtle::ConstantTimeEq;
use viva_call::ConnectionId;
use viva_call::prompt::PromptAudio;
use viva_store::{Interview, Store};
use viva_transport_sip::SipEndpoint;

use crate::attempts::{Attempts, Lockout};
use crate::config::Config;
use crate::jobs::Jobs;
use crate::links::LinkSigner;
use crate::live::LiveInterviews;
use crate::metrics::{Metrics, Secret};
use crate::peer::TrustedProxies;
use crate::pins::PinGate;
use crate::storage::Storage;
use crate::webhooks::Webhooks;

/// The application's state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Where the interviews' files are: this node's data directory, or an object store.
    pub storage: Storage,
    pub jobs: Arc<Jobs>,
    pub links: LinkSigner,
    pub live: Arc<LiveInterviews>,
    pub metrics: Arc<Metrics>,
    /// What phone callers hear before their interview starts.
    pub prompts: Arc<PromptAudio>,
    /// Phone calls in and out; None when `sip.enabled` is off.
    pub sip: Option<SipEndpoint>,
    pub config: Arc<Config>,
    pub api_key: Arc<str>,
    /// The secret CPaaS media streams must present.
    pub stream_token: Arc<str>,
    /// Wrong API keys and stream tokens, per source address.
    pub credentials: Arc<Attempts>,
    /// Phone PIN checks, with their guessing limits.
    pub pins: Arc<PinGate>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub proxies: TrustedProxies,
    /// Base of candidate links, without a trailing slash.
    pub public_url: Arc<str>,
    /// Numbers the connections (signalling sockets, phone calls), so a live call knows which
    /// one carries it.
    pub connections: Arc<AtomicU64>,
    /// Events for the ATS: queued where they happen, delivered by the webhook worker.
    pub webhooks: Arc<Webhooks>,
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.proxies.clone()
    }
}

/// Why a presented API key or stream token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRefusal {
    /// It was wrong.
    Wrong,
    /// Too many wrong ones came from this address: not even checked.
    LockedOut(Lockout),
}

impl AppState {
    /// Checks a secret `client` presented (an API key, a stream token) against `expected`,
    /// in constant time, counting wrong ones per address.
    pub fn verify_credential(
        &self,
        client: IpAddr,
        presented: &str,
        expected: &str,
    ) -> Result<(), CredentialRefusal> {
        let attempt = self
            .credentials
            .begin(&client.to_string())
            .map_err(|lockout| {
                self.metrics.refused(Secret::Credential, lockout.scope);
                CredentialRefusal::LockedOut(lockout)
            })?;
        // Constant time: response timing must not reveal how much of a guess was right.
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            self.credentials.succeeded(attempt);
            return Ok(());
        }
        self.metrics.auth_failure(Secret::Credential);
        if let Some(lockout) = self.credentials.failed(attempt) {
            self.metrics.lockout(Secret::Credential, lockout.scope);
            tracing::warn!(%client, wait_secs = lockout.retry_after.as_secs(), "an address is locked out after too many wrong API keys or stream tokens");
        }
        Err(CredentialRefusal::Wrong)
    }

    /// The candidate's signed link to `interview`.
    pub fn join_url(&self, interview: &Interview) -> String {
        let token = self
            .links
            .sign(&interview.id, interview.expires_at.unix_ms() / 1000);
        format!("{}/join/{token}", self.public_url)
    }

    /// A new connection's id.
    pub fn next_connection(&self) -> ConnectionId {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }
}
