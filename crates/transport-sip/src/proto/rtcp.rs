//! Minimal RTCP (RFC 3550 section 6): the reception statistics of one incoming stream, the
//! compound sender/receiver report a call sends every few seconds, so trunks and monitoring
//! see loss and jitter, and the BYE that says the stream has ended. Incoming RTCP is not
//! interpreted.

/// RTCP packet type of a sender report.
const PT_SR: u8 = 200;
/// RTCP packet type of a receiver report.
const PT_RR: u8 = 201;
/// RTCP packet type of source descriptions.
const PT_SDES: u8 = 202;
/// RTCP packet type of a goodbye.
const PT_BYE: u8 = 203;
/// SDES item type of the canonical name.
const SDES_CNAME: u8 = 1;
/// Sequence jumps larger than this are a restarted stream, not loss (RFC 3550 A.1 MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;

/// What one received RTP stream looked like, for the report block about it.
///
/// Follows RFC 3550 appendix A.1 (extended sequence numbers), A.3 (loss) and A.8 (jitter),
/// without the probation of new sources: the media path only feeds packets from the one
/// source it accepted.
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in timestamp units, times 16 (the A.8 fixed-point form).
    jitter_x16: u32,
    last_transit: Option<u32>,
}

impl ReceptionStats {
    /// Starts statistics at the first packet of a stream.
    pub fn new(ssrc: u32, first_sequence: u16) -> Self {
        ReceptionStats {
            ssrc,
            base_seq: u32::from(first_sequence),
            max_seq: first_sequence,
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_x16: 0,
            last_transit: None,
        }
    }

    /// The stream these statistics describe.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Counts one packet. `arrival` is the arrival time in the stream's clock units (e.g.
    /// 8000 per second for G.711), from any fixed origin.
    pub fn on_packet(&mut self, sequence: u16, rtp_timestamp: u32, arrival: u32) {
        let delta = sequence.wrapping_sub(self.max_seq);
        if delta != 0 && delta < MAX_DROPOUT {
            if sequence < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = sequence;
        }
        self.received = self.received.wrapping_add(1);

        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = transit.wrapping_sub(last) as i32;
            let d = d.unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_x16 = self
                .jitter_x16
                .wrapping_add(d)
                .wrapping_sub(self.jitter_x16.wrapping_add(8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Highest sequence number seen, extended with the wrap count.
    pub fn extended_highest_sequence(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// The report block for the next RTCP report; the fraction lost covers the time since
    /// the previous block.
    pub fn report_block(&mut self) -> ReportBlock {
        let extended_max = self.extended_highest_sequence();
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            // 24-bit signed field.
            cumulative_lost: lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_sequence: extended_max,
            jitter: self.jitter_x16 >> 4,
        }
    }
}

/// One reception report block (RFC 3550 section 6.4.1). Last-SR fields are sent as zero:
/// incoming sender reports are not tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The stream reported on.
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Packets lost since the start (negative with duplicates), 24-bit signed.
    pub cumulative_lost: i32,
    /// Highest sequence number received, extended with wrap count.
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// What the call has sent, for a sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// Wall-clock time of the report as a 64-bit NTP timestamp.
    pub ntp_timestamp: u64,
    /// The same instant on the RTP clock.
    pub rtp_timestamp: u32,
    /// Packets sent since the start.
    pub packets: u32,
    /// Payload octets sent since the start.
    pub octets: u32,
}

/// Builds a compound RTCP packet: a sender report (when `sender` is given) or receiver report
/// carrying `block`, followed by an SDES chunk with the canonical name (RFC 3550 6.1 requires
/// both in every compound packet).
pub fn build_report(
    ssrc: u32,
    sender: Option<&SenderInfo>,
    block: Option<&ReportBlock>,
    cname: &str,
) -> Vec<u8> {
    let mut packet = Vec::with_capacity(96);
    let count = u8::from(block.is_some());
    let packet_type = if sender.is_some() { PT_SR } else { PT_RR };
    packet.push(0x80 | count);
    packet.push(packet_type);
    packet.extend_from_slice(&[0, 0]); // length, filled below
    packet.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(sender) = sender {
        packet.extend_from_slice(&sender.ntp_timestamp.to_be_bytes());
        packet.extend_from_slice(&sender.rtp_timestamp.to_be_bytes());
        packet.extend_from_slice(&sender.packets.to_be_bytes());
        packet.extend_from_slice(&sender.octets.to_be_bytes());
    }
    if let Some(block) = block {
        packet.extend_from_slice(&block.ssrc.to_be_bytes());
        let lost = (block.cumulative_lost as u32) & 0x00FF_FFFF;
        packet.extend_from_slice(&((u32::from(block.fraction_lost) << 24) | lost).to_be_bytes());
        packet.extend_from_slice(&block.extended_highest_sequence.to_be_bytes());
        packet.extend_from_slice(&block.jitter.to_be_bytes());
        packet.extend_from_slice(&[0; 8]); // LSR, DLSR
    }
    set_length(&mut packet, 0);

    let sdes_start = packet.len();
    packet.push(0x81);
    packet.push(PT_SDES);
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(&ssrc.to_be_bytes());
    let name = &cname.as_bytes()[..cname.len().min(255)];
    packet.push(SDES_CNAME);
    packet.push(name.len() as u8);
    packet.extend_from_slice(name);
    // The item list ends with a zero byte, then pads to a 32-bit boundary.
    packet.push(0);
    while (packet.len() - sdes_start) % 4 != 0 {
        packet.push(0);
    }
    set_length(&mut packet, sdes_start);
    packet
}

/// Builds the last compound RTCP packet of a stream: the report and SDES of [`build_report`]
/// followed by a BYE for `ssrc` (RFC 3550 6.6), so the far end drops the stream at once
/// rather than after its timeout.
pub fn build_goodbye(
    ssrc: u32,
    sender: Option<&SenderInfo>,
    block: Option<&ReportBlock>,
    cname: &str,
) -> Vec<u8> {
    let mut packet = build_report(ssrc, sender, block, cname);
    let bye_start = packet.len();
    packet.push(0x81);
    packet.push(PT_BYE);
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(&ssrc.to_be_bytes());
    set_length(&mut packet, bye_start);
    packet
}

/// Writes the RTCP length field (32-bit words minus one) of the packet starting at `start`.
fn set_length(packet: &mut [u8], start: usize) {
    let words = ((packet.len() - start) / 4 - 1) as u16;
    packet[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_and_wraparound() {
        let mut stats = ReceptionStats::new(7, 65_530);
        for (i, seq) in (65_530u16..=65_535).chain(0..=9).enumerate() {
            if seq == 3 || seq == 4 {
                continue; // two packets lost
            }
            stats.on_packet(seq, i as u32 * 160, i as u32 * 160);
        }
        assert_eq!(stats.extended_highest_sequence(), 65_536 + 9);
        let block = stats.report_block();
        assert_eq!(block.ssrc, 7);
        assert_eq!(block.cumulative_lost, 2);
        // 2 of 16 lost = 32/256.
        assert_eq!(block.fraction_lost, 32);
        assert_eq!(block.jitter, 0);
        // Nothing new since the last report: no fraction lost.
        assert_eq!(stats.report_block().fraction_lost, 0);
    }

    #[test]
    fn late_and_duplicate_packets_do_not_move_the_highest_sequence() {
        let mut stats = ReceptionStats::new(1, 100);
        stats.on_packet(100, 0, 0);
        stats.on_packet(102, 320, 320);
        stats.on_packet(101, 160, 400);
        stats.on_packet(102, 320, 410);
        assert_eq!(stats.extended_highest_sequence(), 102);
        // Three expected, four received: the duplicate makes loss negative.
        assert_eq!(stats.report_block().cumulative_lost, -1);
    }

    #[test]
    fn jitter_grows_with_irregular_arrival() {
        let mut stats = ReceptionStats::new(1, 0);
        for i in 0..200u32 {
            let wobble = if i % 2 == 0 { 0 } else { 80 };
            stats.on_packet(i as u16, i * 160, i * 160 + wobble);
        }
        let jitter = stats.report_block().jitter;
        // Transit alternates by 80 units; the estimate converges towards 80.
        assert!((60..=80).contains(&jitter), "jitter {jitter}");
    }

    #[test]
    fn receiver_report_layout() {
        let block = ReportBlock {
            ssrc: 0x0A0B_0C0D,
            fraction_lost: 3,
            cumulative_lost: -2,
            extended_highest_sequence: 0x0001_0005,
            jitter: 12,
        };
        let packet = build_report(0x1122_3344, None, Some(&block), "viva");
        // RR: header 4 + ssrc 4 + block 24 = 32 bytes = 8 words, length 7.
        assert_eq!(&packet[..4], &[0x81, 201, 0, 7]);
        assert_eq!(&packet[8..12], &[0x0A, 0x0B, 0x0C, 0x0D]);
        assert_eq!(&packet[12..16], &[3, 0xFF, 0xFF, 0xFE]);
        // SDES: header 4 + ssrc 4 + item 2+4 + end 1 = 15, padded to 16 = 4 words.
        assert_eq!(&packet[32..36], &[0x81, 202, 0, 3]);
        assert_eq!(&packet[40..46], b"\x01\x04viva");
        assert_eq!(packet.len(), 48);
    }

    #[test]
    fn sender_report_carries_sender_info() {
        let sender = SenderInfo {
            ntp_timestamp: 0x0102_0304_0506_0708,
            rtp_timestamp: 160,
            packets: 2,
            octets: 320,
        };
        let packet = build_report(9, Some(&sender), None, "v");
        assert_eq!(&packet[..4], &[0x80, 200, 0, 6]);
        assert_eq!(&packet[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&packet[20..24], &2u32.to_be_bytes());
        assert_eq!(packet.len() % 4, 0);
    }

    #[test]
    fn goodbye_ends_the_compound_packet_with_a_bye() {
        let report = build_report(9, None, None, "viva");
        let packet = build_goodbye(9, None, None, "viva");
        assert_eq!(&packet[..report.len()], &report[..]);
        // BYE: header 4 + one SSRC 4 = 2 words, length 1.
        assert_eq!(&packet[report.len()..], &[0x81, 203, 0, 1, 0, 0, 0, 9]);
    }
}
