//! API keys: the deployment's admin key from the configuration, and personal keys that users
//! make and revoke in the workspace.
//!
//! A personal key reads `viva_<id>_<secret>`. The id finds the key's row; the store keeps only
//! the SHA-256 of the secret (190 random bits: a slow password hash would add nothing but cost
//! on every request). Every presented key counts against the address's wrong-credential limit,
//! and a key acts with its owner's role as it is when the key is used.

use std::net::IpAddr;

use rand::Rng;
use rand::distr::Alphanumeric;
use viva_store::{ApiKey, Role, StoreError, Timestamp, User};

use crate::secrets::token_hash;
use crate::state::{AppState, CredentialRefusal};

/// What every personal key starts with, so that secret scanners and people recognise one.
const PREFIX: &str = "viva_";
/// Characters of a key's public id.
const ID_CHARS: usize = 12;
/// Characters of a key's secret: 32 of `[A-Za-z0-9]` are ~190 bits.
const SECRET_CHARS: usize = 32;
/// The longest key name kept.
pub const MAX_NAME_CHARS: usize = 100;

/// A key just made: its full text is shown once, then only its id is ever seen again.
pub struct NewKey {
    pub key: ApiKey,
    /// `viva_<id>_<secret>`, for the owner to copy now.
    pub text: String,
}

/// Who a presented key lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyHolder {
    /// The deployment's key (`server.api_key`): an admin.
    Deployment,
    /// A user's personal key.
    User(User),
}

impl KeyHolder {
    pub fn role(&self) -> Role {
        match self {
            KeyHolder::Deployment => Role::Admin,
            KeyHolder::User(user) => user.role,
        }
    }
}

/// Makes a key for `owner` called `name`.
pub async fn create(state: &AppState, owner: &User, name: &str) -> Result<NewKey, StoreError> {
    let id = random(ID_CHARS).to_lowercase();
    let secret = random(SECRET_CHARS);
    let name: String = name.trim().chars().take(MAX_NAME_CHARS).collect();
    let key = state
        .store
        .create_api_key(owner, &id, &name, &token_hash(&secret))
        .await?;
    Ok(NewKey {
        key,
        text: format!("{PREFIX}{id}_{secret}"),
    })
}

/// Checks a key presented by `client`: the deployment's, or a live personal key.
pub async fn authenticate(
    state: &AppState,
    client: IpAddr,
    presented: &str,
) -> Result<Result<KeyHolder, CredentialRefusal>, StoreError> {
    let Some((id, secret)) = personal(presented) else {
        return Ok(state
            .verify_credential(client, presented, &state.api_key)
            .map(|()| KeyHolder::Deployment));
    };
    let owner = state.store.api_key_owner(id).await?;
    // An unknown id is checked against a hash nothing matches, so it costs and counts the same
    // as a wrong secret.
    let expected = owner.as_ref().map_or("-", |(_, hash)| hash.as_str());
    match state.verify_credential(client, &token_hash(secret), expected) {
        Ok(()) => {
            let (user, _) = owner.expect("a key matched only if it exists");
            state.store.touch_api_key(id, Timestamp::now()).await?;
            Ok(Ok(KeyHolder::User(user)))
        }
        Err(refusal) => Ok(Err(refusal)),
    }
}

/// The id and secret of a personal key's text, if it is shaped like one.
fn personal(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.strip_prefix(PREFIX)?.split_once('_')?;
    let shaped = id.len() == ID_CHARS
        && secret.len() == SECRET_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    shaped.then_some((id, secret))
}

fn random(chars: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(chars)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_personal_keys_are_looked_up() {
        let id = "abcdefghij12";
        let secret = "A".repeat(SECRET_CHARS);
        let key = format!("viva_{id}_{secret}");
        assert_eq!(personal(&key), Some((id, secret.as_str())));
        // The deployment key is anything else and is compared as a whole.
        assert_eq!(personal("test-recruiter-key"), None);
        assert_eq!(personal(&format!("viva_{id}_{secret}x")), None);
        assert_eq!(personal(&format!("viva_{id}x_{secret}")), None);
        assert_eq!(personal(&format!("viva_{id}_{}", "é".repeat(16))), None);
        assert_eq!(personal("viva__"), None);
    }
}
