//! Candidate join links: signed, expiring tokens naming one interview.
//!
//! A token is `ID.EXPIRES.SIGNATURE`: the interview id, the expiry in Unix seconds, and an
//! HMAC-SHA256 over both with a key only the server knows. Nobody can forge a link to another
//! interview or stretch its lifetime, and checking one needs no database lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks join tokens.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// Malformed or not signed by this server.
    Invalid,
    /// Genuine, but past its expiry.
    Expired,
}

/// A checked token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinLink {
    pub interview_id: String,
    pub expires_unix: i64,
}

impl LinkSigner {
    /// A signer with `key` (at least 32 random bytes, kept secret).
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// The token for `interview_id`, valid until `expires_unix` (seconds).
    pub fn sign(&self, interview_id: &str, expires_unix: i64) -> String {
        let payload = format!("{interview_id}.{expires_unix}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// Checks `token` at `now_unix` (seconds).
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<JoinLink, LinkError> {
        let (payload, signature) = token.rsplit_once('.').ok_or(LinkError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Invalid)?;
        // Constant-time comparison: a timing side channel must not reveal a valid signature.
        self.mac(payload)
            .verify_slice(&signature)
            .map_err(|_| LinkError::Invalid)?;
        let (id, expires) = payload.split_once('.').ok_or(LinkError::Invalid)?;
        let expires_unix: i64 = expires.parse().map_err(|_| LinkError::Invalid)?;
        if now_unix >= expires_unix {
            return Err(LinkError::Expired);
        }
        Ok(JoinLink {
            interview_id: id.to_owned(),
            expires_unix,
        })
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(payload.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let token = signer().sign("abc_DEF-12", 1_000);
        assert_eq!(
            signer().verify(&token, 999),
            Ok(JoinLink {
                interview_id: "abc_DEF-12".to_owned(),
                expires_unix: 1_000
            })
        );
        assert_eq!(signer().verify(&token, 1_000), Err(LinkError::Expired));
    }

    #[test]
    fn tampered_or_foreign_links_are_invalid() {
        let token = signer().sign("abc", 1_000);
        let longer = token.replace(".1000.", ".9999.");
        assert_eq!(signer().verify(&longer, 0), Err(LinkError::Invalid));
        let other = token.replace("abc.", "abd.");
        assert_eq!(signer().verify(&other, 0), Err(LinkError::Invalid));
        let foreign = LinkSigner::new(b"another key entirely, 32 bytes!!".to_vec());
        assert_eq!(foreign.verify(&token, 0), Err(LinkError::Invalid));
        for garbage in ["", ".", "abc", "abc.1000", "abc.1000.!!!", "a.b.c.d"] {
            assert_eq!(
                signer().verify(garbage, 0),
                Err(LinkError::Invalid),
                "{garbage}"
            );
        }
    }
}
