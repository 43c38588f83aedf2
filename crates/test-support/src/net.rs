//! Ports on loopback for the peers of a test.

use std::net::{TcpListener, UdpSocket};

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("a free UDP port on loopback")
        .port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free TCP port on loopback")
        .port()
}

/// An even UDP port whose next three ports are free too: RTP on it, RTCP on the next, and the
/// same again for a peer (sipp) that takes the media port and the one two above.
pub fn free_media_port() -> u16 {
    loop {
        let port = free_udp_port();
        let even = port - port % 2;
        if (0..4).all(|offset| UdpSocket::bind(("127.0.0.1", even + offset)).is_ok()) {
            return even;
        }
    }
}

/// Whether a socket is bound to UDP `port` on this machine (from /proc/net/udp, where the local
/// address column reads `0100007F:PORT` in hex): another process listening there, e.g.
pub fn udp_port_bound(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let wanted = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|local| local.ends_with(&wanted))
}
