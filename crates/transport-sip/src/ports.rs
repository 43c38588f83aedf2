//! The RTP port range: each call leases an even port for RTP and the next one for RTCP.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// Hands out RTP/RTCP port pairs from the configured range.
#[derive(Debug, Clone)]
pub(crate) struct RtpPorts {
    inner: Arc<Mutex<PortState>>,
    low: u16,
    high: u16,
}

#[derive(Debug)]
struct PortState {
    /// Where the next search starts, so ports rotate and a just-closed port is not reused
    /// while stray packets of the old call may still arrive.
    next: u16,
    in_use: HashSet<u16>,
}

/// A call's media sockets; the ports return to the pool when this is dropped.
#[derive(Debug)]
pub(crate) struct MediaSockets {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
    lease: PortLease,
}

impl MediaSockets {
    pub(crate) fn rtp_port(&self) -> u16 {
        self.lease.port
    }
}

#[derive(Debug)]
struct PortLease {
    port: u16,
    pool: Arc<Mutex<PortState>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut state) = self.pool.lock() {
            state.in_use.remove(&self.port);
        }
    }
}

impl RtpPorts {
    /// A pool over `low..=high` (validated by the settings).
    pub(crate) fn new(low: u16, high: u16) -> Self {
        let first = low + low % 2;
        RtpPorts {
            inner: Arc::new(Mutex::new(PortState {
                next: first,
                in_use: HashSet::new(),
            })),
            low: first,
            high,
        }
    }

    /// Binds the next free even port and its RTCP neighbour on `ip`. Ports taken by other
    /// programs are skipped. `None` when the whole range is busy.
    pub(crate) fn bind(&self, ip: IpAddr) -> Option<MediaSockets> {
        let pairs = usize::from((self.high.saturating_sub(self.low)) / 2 + 1);
        for _ in 0..pairs {
            let port = self.reserve_next()?;
            match bind_pair(ip, port) {
                Some((rtp, rtcp)) => {
                    return Some(MediaSockets {
                        rtp,
                        rtcp,
                        lease: PortLease {
                            port,
                            pool: self.inner.clone(),
                        },
                    });
                }
                None => {
                    if let Ok(mut state) = self.inner.lock() {
                        state.in_use.remove(&port);
                    }
                }
            }
        }
        None
    }

    /// Marks the next even port not in use as taken.
    fn reserve_next(&self) -> Option<u16> {
        let mut state = self.inner.lock().ok()?;
        let pairs = (self.high.saturating_sub(self.low)) / 2 + 1;
        for _ in 0..pairs {
            let port = state.next;
            state.next = if port.saturating_add(3) > self.high {
                self.low
            } else {
                port + 2
            };
            // The RTCP port must fit in the range too.
            if port.saturating_add(1) > self.high {
                continue;
            }
            if state.in_use.insert(port) {
                return Some(port);
            }
        }
        None
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> Option<(UdpSocket, UdpSocket)> {
    let rtp = std::net::UdpSocket::bind(SocketAddr::new(ip, port)).ok()?;
    let rtcp = std::net::UdpSocket::bind(SocketAddr::new(ip, port + 1)).ok()?;
    rtp.set_nonblocking(true).ok()?;
    rtcp.set_nonblocking(true).ok()?;
    Some((
        UdpSocket::from_std(rtp).ok()?,
        UdpSocket::from_std(rtcp).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn leases_even_pairs_and_returns_them() {
        // An odd start rounds up to the next even port.
        let pool = RtpPorts::new(41_001, 41_005);
        let a = pool.bind(LOOPBACK).unwrap();
        let b = pool.bind(LOOPBACK).unwrap();
        assert_eq!(a.rtp_port() % 2, 0);
        assert_ne!(a.rtp_port(), b.rtp_port());
        assert_eq!(a.rtcp.local_addr().unwrap().port(), a.rtp_port() + 1);
        // 41002/41003 and 41004/41005 are the only pairs.
        assert!(pool.bind(LOOPBACK).is_none());
        let freed = a.rtp_port();
        drop(a);
        let c = pool.bind(LOOPBACK).unwrap();
        assert_eq!(c.rtp_port(), freed);
    }

    #[tokio::test]
    async fn skips_ports_other_programs_hold() {
        let squatter = std::net::UdpSocket::bind((LOOPBACK, 41_102)).unwrap();
        let pool = RtpPorts::new(41_102, 41_105);
        let sockets = pool.bind(LOOPBACK).unwrap();
        assert_eq!(sockets.rtp_port(), 41_104);
        drop(squatter);
    }
}
