//! RTP packets (RFC 3550 section 5.1): parsing what arrives on a call's media port and building
//! what the call sends.

use thiserror::Error;

/// The only RTP version in use (RFC 3550).
pub const RTP_VERSION: u8 = 2;

/// Length of the fixed RTP header, before CSRCs and extensions.
pub const RTP_HEADER_LEN: usize = 12;

/// Length of the common RTCP header (version, count, packet type, length).
const RTCP_HEADER_LEN: usize = 4;

/// The fields of an RTP header this transport reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marks the first packet of a talkspurt (audio) or the start of an RFC 4733 event.
    pub marker: bool,
    /// What the payload is (0 = PCMU, 8 = PCMA, dynamic 96-127 e.g. telephone-event).
    pub payload_type: u8,
    /// Increments by one per packet; reveals loss and reordering.
    pub sequence: u16,
    /// Sampling instant of the first sample, in the payload's clock (8 kHz for G.711).
    pub timestamp: u32,
    /// Identifies the stream's source.
    pub ssrc: u32,
}

/// A parsed RTP packet, borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The fixed header fields.
    pub header: RtpHeader,
    /// The payload, without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP datagram of {len} bytes is shorter than the 12-byte header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// The version bits are not 2 (e.g. STUN or garbage on the media port).
    #[error("RTP version {version} is not 2; the datagram is not RTP")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The CSRC list, header extension or padding runs past the end of the datagram.
    #[error("RTP header claims more bytes than the {len}-byte datagram holds")]
    Truncated {
        /// Datagram length.
        len: usize,
    },
    /// RTCP sent to the RTP port (rtcp-mux), not an RTP packet.
    #[error("datagram is RTCP (packet type {packet_type}), not RTP")]
    Rtcp {
        /// The RTCP packet type (200-204).
        packet_type: u8,
    },
}

/// Parses one RTP datagram.
///
/// Rejects anything that is not version 2, RTCP multiplexed onto the port (RFC 5761 payload
/// types 72-76 with the marker bit, i.e. packet types 200-204), and headers whose CSRC list,
/// extension or padding exceed the datagram.
pub fn parse_rtp(datagram: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let len = datagram.len();
    // Told apart before the length check: an RTCP receiver report without report blocks is 8
    // bytes, shorter than an RTP header.
    if len >= RTCP_HEADER_LEN
        && datagram[0] >> 6 == RTP_VERSION
        && (200..=204).contains(&datagram[1])
    {
        return Err(RtpError::Rtcp {
            packet_type: datagram[1],
        });
    }
    if len < RTP_HEADER_LEN {
        return Err(RtpError::TooShort { len });
    }
    let version = datagram[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion { version });
    }
    let padding = datagram[0] & 0x20 != 0;
    let extension = datagram[0] & 0x10 != 0;
    let csrc_count = usize::from(datagram[0] & 0x0F);
    let mut start = RTP_HEADER_LEN + 4 * csrc_count;
    if extension {
        // Extension header: 16-bit profile, 16-bit length in 32-bit words.
        let words = datagram
            .get(start + 2..start + 4)
            .ok_or(RtpError::Truncated { len })?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = len;
    if padding {
        let pad = usize::from(datagram[len - 1]);
        if pad == 0 {
            return Err(RtpError::Truncated { len });
        }
        end = end.checked_sub(pad).ok_or(RtpError::Truncated { len })?;
    }
    if start > end {
        return Err(RtpError::Truncated { len });
    }
    Ok(RtpPacket {
        header: RtpHeader {
            marker: datagram[1] & 0x80 != 0,
            payload_type: datagram[1] & 0x7F,
            sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
            timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
            ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
        },
        payload: &datagram[start..end],
    })
}

/// The magic cookie of every STUN message (RFC 5389 section 6), at bytes 4..8.
const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// Length of a STUN message header.
const STUN_HEADER_LEN: usize = 20;

/// Whether a datagram on the media port is a STUN message (RFC 5389 section 6: the first two
/// bits zero, the magic cookie at bytes 4..8), such as the keepalives some phones send on
/// their RTP port to hold a NAT binding open. Such traffic is expected, not malformed RTP.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= STUN_HEADER_LEN
        && datagram[0] >> 6 == 0
        && datagram[4..8] == STUN_MAGIC_COOKIE
}

/// Builds an RTP datagram (no CSRCs, extension or padding).
///
/// The payload type is masked to its 7 bits.
pub fn build_rtp(header: &RtpHeader, payload: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(RTP_HEADER_LEN + payload.len());
    datagram.push(RTP_VERSION << 6);
    datagram.push((u8::from(header.marker) << 7) | (header.payload_type & 0x7F));
    datagram.extend_from_slice(&header.sequence.to_be_bytes());
    datagram.extend_from_slice(&header.timestamp.to_be_bytes());
    datagram.extend_from_slice(&header.ssrc.to_be_bytes());
    datagram.extend_from_slice(payload);
    datagram
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xBEEF,
            timestamp: 0x0102_0304,
            ssrc: 0xDEAD_BEEF,
        }
    }

    #[test]
    fn build_then_parse_round_trips() {
        let payload = [0xD5u8; 160];
        let datagram = build_rtp(&header(), &payload);
        assert_eq!(datagram.len(), 172);
        assert_eq!(&datagram[..2], &[0x80, 0x88]);
        let packet = parse_rtp(&datagram).unwrap();
        assert_eq!(packet.header, header());
        assert_eq!(packet.payload, &payload[..]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut datagram = vec![0x80 | 0x20 | 0x10 | 0x02, 0x00];
        datagram.extend_from_slice(&[0, 7, 0, 0, 0, 160, 0, 0, 0, 1]);
        datagram.extend_from_slice(&[0xAA; 8]); // two CSRCs
        datagram.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // one-word extension
        datagram.extend_from_slice(&[0x11, 0x22, 0x33]); // payload
        datagram.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let packet = parse_rtp(&datagram).unwrap();
        assert_eq!(packet.payload, &[0x11, 0x22, 0x33]);
        assert_eq!(packet.header.sequence, 7);
        assert_eq!(packet.header.timestamp, 160);
        assert!(!packet.header.marker);
    }

    #[test]
    fn rejects_short_wrong_version_and_rtcp() {
        assert_eq!(parse_rtp(&[0x80; 11]), Err(RtpError::TooShort { len: 11 }));
        let mut datagram = build_rtp(&header(), &[1, 2, 3]);
        datagram[0] = 0x40;
        assert_eq!(
            parse_rtp(&datagram),
            Err(RtpError::BadVersion { version: 1 })
        );
        let rtcp_rr = [0x80, 201, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            parse_rtp(&rtcp_rr),
            Err(RtpError::Rtcp { packet_type: 201 })
        );
        // A receiver report with no blocks, shorter than any RTP packet.
        assert_eq!(
            parse_rtp(&rtcp_rr[..8]),
            Err(RtpError::Rtcp { packet_type: 201 })
        );
    }

    #[test]
    fn recognises_stun_and_nothing_else() {
        // A binding request: type 0x0001, no attributes, cookie, 96-bit transaction id.
        let mut binding = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        binding.extend_from_slice(&[7; 12]);
        assert!(is_stun(&binding));
        assert!(!is_stun(&binding[..19]), "shorter than a STUN header");
        let mut rtp_with_cookie = binding.clone();
        rtp_with_cookie[0] = 0x80;
        assert!(
            !is_stun(&rtp_with_cookie),
            "RTP whose timestamp is the cookie"
        );
        let mut no_cookie = binding;
        no_cookie[4] = 0;
        assert!(
            !is_stun(&no_cookie),
            "classic STUN (RFC 3489) has no cookie"
        );
    }

    #[test]
    fn rejects_lengths_past_the_end() {
        // 15 CSRCs claimed, none present.
        let mut datagram = build_rtp(&header(), &[1, 2, 3]);
        datagram[0] |= 0x0F;
        assert_eq!(parse_rtp(&datagram), Err(RtpError::Truncated { len: 15 }));
        // Extension header cut off.
        let mut datagram = build_rtp(&header(), &[0xBE]);
        datagram[0] |= 0x10;
        assert_eq!(parse_rtp(&datagram), Err(RtpError::Truncated { len: 13 }));
        // Padding longer than the packet, and zero padding.
        let mut datagram = build_rtp(&header(), &[1, 200]);
        datagram[0] |= 0x20;
        assert_eq!(parse_rtp(&datagram), Err(RtpError::Truncated { len: 14 }));
        let mut datagram = build_rtp(&header(), &[1, 0]);
        datagram[0] |= 0x20;
        assert_eq!(parse_rtp(&datagram), Err(RtpError::Truncated { len: 14 }));
    }

    #[test]
    fn every_prefix_of_a_complex_packet_parses_or_errors() {
        let mut datagram = vec![0x80 | 0x20 | 0x10 | 0x01, 0x60];
        datagram.extend_from_slice(&[0; 10]);
        datagram.extend_from_slice(&[0; 4]);
        datagram.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1]);
        for cut in 0..=datagram.len() {
            let _ = parse_rtp(&datagram[..cut]);
        }
        assert_eq!(parse_rtp(&datagram).unwrap().payload, &[9]);
    }
}
