//! `viva health`: asks the server running on this machine whether it is alive, or ready for
//! new calls. A container's `HEALTHCHECK` and a service manager's probe run it: the image
//! carries no HTTP client of its own, and the server's address comes from the same
//! configuration `viva serve` reads.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::HealthArgs;
use crate::config::Config;

/// A health probe that hangs is a failed probe: an orchestrator waits this long at most.
const TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(config: &Config, args: &HealthArgs) -> anyhow::Result<()> {
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let url = format!("http://{}{path}", local_address(config.server.http));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| format!("GET {url}: is `viva serve` running with this configuration?"))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if status != 200 {
        bail!("GET {url} answered {status}: {}", body.trim());
    }
    println!("{url}: {}", body.trim());
    Ok(())
}

/// The address to reach a server listening on `listen` from this machine: a wildcard listen
/// address (0.0.0.0 in a container) is reached on loopback.
fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        let local = |s: &str| local_address(s.parse().unwrap()).to_string();
        assert_eq!(local("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(local("[::]:8080"), "[::1]:8080");
        assert_eq!(local("127.0.0.2:9000"), "127.0.0.2:9000");
    }
}
