//! Who sent a request: the TCP peer, or, when the peer is a trusted reverse proxy, the client
//! the proxy names in `X-Forwarded-For`. Limits per source apply to this address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

/// The reverse proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(blocks: Vec<IpNet>) -> Self {
        Self(blocks)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(&canonical(ip)))
    }

    /// The client behind `peer`: the peer itself unless it is a trusted proxy; then the
    /// right-most address in `X-Forwarded-For` that is not a trusted proxy (entries to its
    /// left were written by the client and prove nothing).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .collect();
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// An IPv4 address seen over IPv6 counts as itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client address of a request, as an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Always present: the server is served with connect info. An in-process test router
        // without it counts as this machine.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
        Ok(ClientAddr(
            TrustedProxies::from_ref(state).client(peer, &parts.headers),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_may_name_the_client() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // A stranger's header is ignored.
        assert_eq!(
            proxies.client(ip("198.51.100.7"), &headers(&["192.0.2.1"])),
            ip("198.51.100.7")
        );
        // Through the proxy: the right-most entry the proxy did not add itself.
        assert_eq!(
            proxies.client(ip("10.1.1.1"), &headers(&["6.6.6.6, 198.51.100.7"])),
            ip("198.51.100.7"),
            "the client-written 6.6.6.6 on the left proves nothing"
        );
        assert_eq!(
            proxies.client(ip("10.1.1.1"), &headers(&["198.51.100.7", "10.2.2.2"])),
            ip("198.51.100.7"),
            "a chain of trusted proxies is skipped"
        );
        assert_eq!(
            proxies.client(ip("::ffff:10.1.1.1"), &headers(&[])),
            ip("10.1.1.1"),
            "no header: the proxy itself"
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.1.1.1"), &headers(&["192.0.2.1"])),
            ip("10.1.1.1"),
            "no proxy is trusted by default"
        );
    }
}
