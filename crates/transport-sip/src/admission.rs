//! Who may call in: a trunk's allowed source addresses, a digest login with a trunk's
//! credentials, or, with no trunk configured, the local machine only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::typed::Authorization;
use rsipstack::sip::{Header, Request};

use crate::settings::TrunkPlan;

/// Digest realm of the challenges this endpoint sends.
pub(crate) const REALM: &str = "viva";
/// How long a challenge's nonce may be answered.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Outstanding nonces kept at most; a flood of unanswered INVITEs cannot grow memory beyond it.
const MAX_NONCES: usize = 4096;

/// The verdict on an inbound INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Accepted, and what let it in.
    Allowed(Admitted),
    /// Ask for digest credentials (401 with a fresh nonce).
    Challenge,
    /// Refuse (403); says why, for the log.
    Forbidden(&'static str),
}

/// What let an INVITE in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// A trunk, by its source address or its credentials: it carries many callers.
    Trunk(String),
    /// This machine, allowed while no trunk is configured.
    Local,
}

/// Decides on inbound INVITEs and keeps the nonces of outstanding challenges.
#[derive(Debug)]
pub(crate) struct Gatekeeper {
    trunks: Vec<TrunkPlan>,
    nonces: Mutex<HashMap<String, Instant>>,
}

impl Gatekeeper {
    pub(crate) fn new(trunks: Vec<TrunkPlan>) -> Self {
        Gatekeeper {
            trunks,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// Judges an INVITE from `source`.
    pub(crate) fn admit(&self, request: &Request, source: IpAddr) -> Admission {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
            v4 => v4,
        };
        if self.trunks.is_empty() {
            return if source.is_loopback() {
                Admission::Allowed(Admitted::Local)
            } else {
                Admission::Forbidden("no trunk is configured, so only local calls are accepted")
            };
        }
        if let Some(plan) = self
            .trunks
            .iter()
            .find(|plan| plan.allow.iter().any(|block| block.contains(source)))
        {
            return Admission::Allowed(Admitted::Trunk(plan.trunk.name.clone()));
        }
        if !self
            .trunks
            .iter()
            .any(|plan| plan.trunk.credentials().is_some())
        {
            return Admission::Forbidden("source address is in no trunk's allow list");
        }
        let Some(header) = request.authorization_header() else {
            return Admission::Challenge;
        };
        let raw = header.value();
        let Ok(authorization) = Authorization::parse(raw) else {
            return Admission::Forbidden("malformed Authorization header");
        };
        if authorization.realm != REALM || !self.is_fresh(&authorization.nonce) {
            // Stale or foreign nonce: a new challenge lets an honest client retry.
            return Admission::Challenge;
        }
        let trunk = self.trunks.iter().find(|plan| {
            plan.trunk
                .credentials()
                .is_some_and(|(user, _)| user == authorization.username)
        });
        match trunk {
            Some(plan) => {
                let password = plan.trunk.credentials().map(|(_, p)| p).unwrap_or_default();
                if verify_digest(&authorization, password, &request.method, raw) {
                    Admission::Allowed(Admitted::Trunk(plan.trunk.name.clone()))
                } else {
                    Admission::Forbidden("digest credentials do not match")
                }
            }
            None => Admission::Forbidden("digest user name belongs to no trunk"),
        }
    }

    /// A `WWW-Authenticate` header with a fresh nonce.
    pub(crate) fn challenge(&self) -> Header {
        let nonce = format!("{:032x}", rand::random::<u128>());
        if let Ok(mut nonces) = self.nonces.lock() {
            let now = Instant::now();
            nonces.retain(|_, issued| now.duration_since(*issued) < NONCE_LIFETIME);
            if nonces.len() >= MAX_NONCES
                && let Some(oldest) = nonces
                    .iter()
                    .min_by_key(|(_, issued)| **issued)
                    .map(|(nonce, _)| nonce.clone())
            {
                nonces.remove(&oldest);
            }
            nonces.insert(nonce.clone(), now);
        }
        Header::WwwAuthenticate(
            format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"")
                .into(),
        )
    }

    fn is_fresh(&self, nonce: &str) -> bool {
        self.nonces.lock().is_ok_and(|nonces| {
            nonces
                .get(nonce)
                .is_some_and(|issued| issued.elapsed() < NONCE_LIFETIME)
        })
    }
}

#[cfg(test)]
mod tests {
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::Method;
    use rsipstack::sip::headers::auth::{Algorithm, AuthQop};

    use super::*;
    use crate::settings::{SipSettings, SipTransport, Trunk, validate};

    fn gatekeeper(trunks: Vec<Trunk>) -> Gatekeeper {
        let settings = SipSettings {
            trunks,
            ..SipSettings::default()
        };
        Gatekeeper::new(validate(&settings).unwrap())
    }

    fn trunk(allow: &[&str], credentials: bool) -> Trunk {
        Trunk {
            name: "carrier".into(),
            address: "192.0.2.1".into(),
            transport: SipTransport::Udp,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            username: credentials.then(|| "alice".into()),
            password: credentials.then(|| "s3cret".into()),
            register: false,
            register_expires_secs: 3600,
        }
    }

    fn invite(authorization: Option<String>) -> Request {
        let mut text = String::from(
            "INVITE sip:1234@192.0.2.10 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776\r\n\
             From: <sip:alice@198.51.100.7>;tag=1\r\nTo: <sip:1234@192.0.2.10>\r\n\
             Call-ID: abc\r\nCSeq: 2 INVITE\r\nMax-Forwards: 70\r\n",
        );
        if let Some(authorization) = authorization {
            text.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        Request::try_from(text.as_str()).unwrap()
    }

    fn nonce_of(header: &Header) -> String {
        let Header::WwwAuthenticate(value) = header else {
            panic!("not a challenge: {header:?}");
        };
        let value = value.value();
        let start = value.find("nonce=\"").unwrap() + 7;
        value[start..start + 32].to_string()
    }

    fn authorization(nonce: &str, password: &str) -> String {
        let uri = "sip:1234@192.0.2.10";
        let qop = AuthQop::Auth {
            cnonce: "c0ffee".into(),
            nc: 1,
        };
        let response = compute_digest(
            "alice",
            password,
            REALM,
            nonce,
            &Method::Invite,
            uri,
            Algorithm::Md5,
            Some(&qop),
        );
        format!(
            "Digest username=\"alice\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5, qop=auth, cnonce=\"c0ffee\", nc=00000001"
        )
    }

    const OUTSIDER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    #[test]
    fn without_trunks_only_loopback_gets_in() {
        let gate = gatekeeper(Vec::new());
        assert_eq!(
            gate.admit(&invite(None), "127.0.0.1".parse().unwrap()),
            Admission::Allowed(Admitted::Local)
        );
        assert_eq!(
            gate.admit(&invite(None), "::1".parse().unwrap()),
            Admission::Allowed(Admitted::Local)
        );
        assert!(matches!(
            gate.admit(&invite(None), OUTSIDER),
            Admission::Forbidden(_)
        ));
    }

    #[test]
    fn allow_list_admits_and_others_are_refused() {
        let gate = gatekeeper(vec![trunk(&["198.51.100.0/24"], false)]);
        assert_eq!(
            gate.admit(&invite(None), OUTSIDER),
            Admission::Allowed(Admitted::Trunk("carrier".into()))
        );
        // With trunks configured loopback is no longer special.
        assert!(matches!(
            gate.admit(&invite(None), "127.0.0.1".parse().unwrap()),
            Admission::Forbidden(_)
        ));
    }

    #[test]
    fn digest_login_with_trunk_credentials() {
        let gate = gatekeeper(vec![trunk(&[], true)]);
        assert_eq!(gate.admit(&invite(None), OUTSIDER), Admission::Challenge);
        let nonce = nonce_of(&gate.challenge());
        assert_eq!(
            gate.admit(&invite(Some(authorization(&nonce, "s3cret"))), OUTSIDER),
            Admission::Allowed(Admitted::Trunk("carrier".into()))
        );
        assert!(matches!(
            gate.admit(&invite(Some(authorization(&nonce, "guess"))), OUTSIDER),
            Admission::Forbidden(_)
        ));
        // A nonce this endpoint never issued gets a fresh challenge, not a verdict.
        let forged = "0".repeat(32);
        assert_eq!(
            gate.admit(&invite(Some(authorization(&forged, "s3cret"))), OUTSIDER),
            Admission::Challenge
        );
    }
}
