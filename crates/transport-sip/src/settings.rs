//! What the SIP endpoint listens on and which trunks it works with.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::error::SipError;
use crate::flood::SourceRate;

/// How the SIP side of phone calls reaches the network.
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// UDP address to listen on (port 0: any free port, see [`SipEndpoint::udp_addr`]).
    ///
    /// [`SipEndpoint::udp_addr`]: crate::SipEndpoint::udp_addr
    pub udp: Option<SocketAddr>,
    /// TCP address to listen on (port 0: any free port, see [`SipEndpoint::tcp_addr`]).
    ///
    /// [`SipEndpoint::tcp_addr`]: crate::SipEndpoint::tcp_addr
    pub tcp: Option<SocketAddr>,
    /// Public IP announced in Via, Contact and SDP instead of the local one (1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// Inclusive UDP port range for RTP; each call takes an even port and the next for RTCP.
    pub rtp_ports: (u16, u16),
    /// Trunks calls come from and go through. With none, only loopback may call in.
    pub trunks: Vec<Trunk>,
    /// Longest a call may last; the endpoint hangs up (BYE) when it is reached.
    pub max_call: Duration,
    /// How long an outbound call may ring before it counts as not answered (CANCEL).
    pub ring_timeout: Duration,
    /// How fast one source address may send INVITEs and REGISTERs.
    pub source_rate: SourceRate,
}

impl Default for SipSettings {
    /// UDP and TCP on port 5060 of every interface, RTP on 10000-20000, no trunks, one hour
    /// per call, 30 seconds of ringing.
    fn default() -> Self {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060);
        SipSettings {
            udp: Some(any),
            tcp: Some(any),
            public_ip: None,
            rtp_ports: (10_000, 20_000),
            trunks: Vec::new(),
            max_call: Duration::from_secs(3600),
            ring_timeout: Duration::from_secs(30),
            source_rate: SourceRate::default(),
        }
    }
}

/// Transport towards a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    /// SIP over UDP (the default of most trunks).
    #[default]
    Udp,
    /// SIP over TCP.
    Tcp,
}

impl fmt::Display for SipTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
        })
    }
}

/// A SIP trunk: a provider or PBX that hands calls to Viva and carries Viva's calls out.
#[derive(Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Name used in logs and errors.
    pub name: String,
    /// Where the trunk takes calls and registrations: `host[:port]`.
    pub address: String,
    /// Transport towards the trunk.
    #[serde(default)]
    pub transport: SipTransport,
    /// Source IPs or CIDR blocks (`203.0.113.0/24`) whose INVITEs are accepted without
    /// authentication: the trunk's signalling addresses.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Digest user name: Viva authenticates with it towards the trunk (REGISTER, outbound
    /// INVITE challenges) and accepts inbound INVITEs that authenticate with it.
    #[serde(default)]
    pub username: Option<String>,
    /// Digest password belonging to `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// Whether to REGISTER with the trunk (needs `username` and `password`).
    #[serde(default)]
    pub register: bool,
    /// Registration lifetime asked for; refreshed at 75 % of what the trunk grants.
    #[serde(default = "default_register_expires")]
    pub register_expires_secs: u32,
}

fn default_register_expires() -> u32 {
    3600
}

impl fmt::Debug for Trunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of logs.
        f.debug_struct("Trunk")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("transport", &self.transport)
            .field("allow", &self.allow)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("register", &self.register)
            .field("register_expires_secs", &self.register_expires_secs)
            .finish()
    }
}

impl Trunk {
    /// The digest credentials, when both user name and password are set.
    pub(crate) fn credentials(&self) -> Option<(&str, &str)> {
        match (self.username.as_deref(), self.password.as_deref()) {
            (Some(user), Some(password)) if !user.is_empty() => Some((user, password)),
            _ => None,
        }
    }
}

/// An IP address or CIDR block from a trunk's `allow` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Parses `192.0.2.1`, `192.0.2.0/24`, `2001:db8::/32`.
    pub(crate) fn parse(text: &str) -> Option<IpBlock> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(IpBlock { network, prefix })
    }

    /// Whether `ip` lies in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A trunk with its allow list parsed.
#[derive(Debug, Clone)]
pub(crate) struct TrunkPlan {
    pub(crate) trunk: Trunk,
    pub(crate) allow: Vec<IpBlock>,
}

/// Checks settings and parses what the endpoint needs pre-parsed.
pub(crate) fn validate(settings: &SipSettings) -> Result<Vec<TrunkPlan>, SipError> {
    if settings.udp.is_none() && settings.tcp.is_none() {
        return Err(SipError::NoListener);
    }
    let (low, high) = settings.rtp_ports;
    if low == 0 || low > high || high == u16::MAX {
        return Err(SipError::BadRtpPorts { low, high });
    }
    settings
        .trunks
        .iter()
        .map(|trunk| {
            if trunk.address.trim().is_empty() {
                return Err(SipError::BadTrunk {
                    trunk: trunk.name.clone(),
                    problem: "`address` is empty; set it to the trunk's host[:port]".into(),
                });
            }
            if trunk.register && trunk.credentials().is_none() {
                return Err(SipError::BadTrunk {
                    trunk: trunk.name.clone(),
                    problem: "`register = true` needs `username` and `password`".into(),
                });
            }
            let allow = trunk
                .allow
                .iter()
                .map(|entry| {
                    IpBlock::parse(entry).ok_or_else(|| SipError::BadTrunk {
                        trunk: trunk.name.clone(),
                        problem: format!(
                            "`allow` entry `{entry}` is not an IP address or CIDR block \
                             (e.g. 203.0.113.7 or 203.0.113.0/24)"
                        ),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TrunkPlan {
                trunk: trunk.clone(),
                allow,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk() -> Trunk {
        Trunk {
            name: "carrier".into(),
            address: "sip.example.net".into(),
            transport: SipTransport::Udp,
            allow: vec!["203.0.113.0/24".into(), "2001:db8::1".into()],
            username: Some("viva".into()),
            password: Some("secret".into()),
            register: true,
            register_expires_secs: 600,
        }
    }

    #[test]
    fn ip_blocks_match_their_ranges() {
        let block = IpBlock::parse("203.0.113.0/24").unwrap();
        assert!(block.contains("203.0.113.200".parse().unwrap()));
        assert!(!block.contains("203.0.114.1".parse().unwrap()));
        assert!(block.contains("::ffff:203.0.113.9".parse().unwrap()));
        let single = IpBlock::parse("192.0.2.5").unwrap();
        assert!(single.contains("192.0.2.5".parse().unwrap()));
        assert!(!single.contains("192.0.2.6".parse().unwrap()));
        let everything = IpBlock::parse("0.0.0.0/0").unwrap();
        assert!(everything.contains("8.8.8.8".parse().unwrap()));
        let v6 = IpBlock::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        for bad in ["", "host.example", "10.0.0.0/33", "10.0.0.0/x", "::/129"] {
            assert_eq!(IpBlock::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn validation_names_the_trunk_and_the_problem() {
        let mut settings = SipSettings {
            trunks: vec![trunk()],
            ..SipSettings::default()
        };
        let plans = validate(&settings).unwrap();
        assert_eq!(plans[0].allow.len(), 2);

        settings.trunks[0].allow.push("10.0.0.0/99".into());
        let err = validate(&settings).unwrap_err().to_string();
        assert!(
            err.contains("carrier") && err.contains("10.0.0.0/99"),
            "{err}"
        );

        settings.trunks[0] = Trunk {
            password: None,
            ..trunk()
        };
        let err = validate(&settings).unwrap_err().to_string();
        assert!(err.contains("register"), "{err}");

        settings.trunks.clear();
        settings.rtp_ports = (20_000, 10_000);
        assert!(matches!(
            validate(&settings),
            Err(SipError::BadRtpPorts { .. })
        ));
        settings.rtp_ports = (10_000, 20_000);
        settings.udp = None;
        settings.tcp = None;
        assert!(matches!(validate(&settings), Err(SipError::NoListener)));
    }

    #[test]
    fn trunk_config_defaults_and_redacted_debug() {
        let parsed: Trunk = serde_json::from_str(
            r#"{"name":"pbx","address":"10.0.0.1:5080","allow":["10.0.0.1"]}"#,
        )
        .unwrap();
        assert_eq!(parsed.transport, SipTransport::Udp);
        assert_eq!(parsed.register_expires_secs, 3600);
        assert!(!parsed.register);
        let debug = format!("{:?}", trunk());
        assert!(
            debug.contains("<redacted>") && !debug.contains("secret"),
            "{debug}"
        );
    }
}
