//! VP8 over RTP (RFC 7741): putting the candidate's camera frames back together for the
//! recording, without decoding them.

use crate::packet_order::Ordered;

/// One whole VP8 frame as the browser's encoder produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vp8Frame {
    /// The encoded frame, ready for a WebM block.
    pub data: Vec<u8>,
    /// A key frame decodes on its own; every other frame needs the ones before it.
    pub keyframe: bool,
    /// The RTP timestamp (90 kHz) shared by the frame's packets.
    pub rtp_timestamp: u32,
}

impl Vp8Frame {
    /// Picture size carried in a key frame's header, `None` for other frames.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        if !self.keyframe {
            return None;
        }
        keyframe_dimensions(&self.data)
    }
}

/// Width and height from a VP8 key frame header (RFC 6386 section 9.1): a 3-byte frame tag, the
/// start code `9d 01 2a`, then 14-bit width and height (the top 2 bits are scaling).
fn keyframe_dimensions(data: &[u8]) -> Option<(u32, u32)> {
    if data.len() < 10 || data[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u32::from(u16::from_le_bytes([data[6], data[7]]) & 0x3fff);
    let height = u32::from(u16::from_le_bytes([data[8], data[9]]) & 0x3fff);
    (width > 0 && height > 0).then_some((width, height))
}

/// What the VP8 payload descriptor at the front of every packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    /// S bit with partition index 0: this packet starts a new frame.
    starts_frame: bool,
    /// Where the VP8 bitstream starts inside the RTP payload.
    header_len: usize,
}

/// Parses the payload descriptor (RFC 7741 section 4.2); `None` if the packet is too short for
/// the fields it announces.
fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start_of_partition = first & 0x10 != 0;
    let partition_index = first & 0x07;
    let mut len = 1;
    if extended {
        let flags = *payload.get(len)?;
        len += 1;
        let has_picture_id = flags & 0x80 != 0;
        let has_tl0_index = flags & 0x40 != 0;
        let has_tid_or_keyidx = flags & 0x30 != 0;
        if has_picture_id {
            let picture_id = *payload.get(len)?;
            // M bit: a 15-bit picture id takes a second byte.
            len += if picture_id & 0x80 != 0 { 2 } else { 1 };
        }
        if has_tl0_index {
            len += 1;
        }
        if has_tid_or_keyidx {
            len += 1;
        }
    }
    // A packet must carry at least one byte of the frame after its descriptor.
    if payload.len() <= len {
        return None;
    }
    Some(Descriptor {
        starts_frame: start_of_partition && partition_index == 0,
        header_len: len,
    })
}

/// The fields of an RTP packet the VP8 frame assembler needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vp8Packet {
    /// RTP marker bit: the last packet of a frame.
    pub marker: bool,
    /// RTP timestamp, the same for every packet of a frame.
    pub timestamp: u32,
    /// RTP payload: descriptor and a piece of the frame.
    pub payload: Vec<u8>,
}

/// Reassembles VP8 frames from packets delivered in sequence order.
///
/// A frame with a missing packet is dropped whole, and after a loss no frame is let through
/// until the next key frame, because the frames after a loss reference what was lost and
/// would decode as garbage. [`needs_keyframe`](Self::needs_keyframe) says when the browser
/// should be asked for one (an RTCP PLI).
#[derive(Debug)]
pub(crate) struct Vp8Assembler {
    /// The frame being collected: its RTP timestamp and the bytes so far.
    partial: Option<(u32, Vec<u8>)>,
    /// True from the start (a recording must begin with a key frame) and after every loss.
    waiting_for_keyframe: bool,
}

impl Vp8Assembler {
    pub fn new() -> Self {
        Vp8Assembler {
            partial: None,
            waiting_for_keyframe: true,
        }
    }

    /// True while frames are being dropped for want of a key frame.
    pub fn needs_keyframe(&self) -> bool {
        self.waiting_for_keyframe
    }

    /// Feeds the next packet (or a hole in the sequence); returns a frame when one completes.
    pub fn push(&mut self, item: Ordered<Vp8Packet>) -> Option<Vp8Frame> {
        let packet = match item {
            Ordered::Packet(packet) => packet,
            Ordered::Gap => {
                self.partial = None;
                self.waiting_for_keyframe = true;
                return None;
            }
        };
        let descriptor = parse_descriptor(&packet.payload)?;
        let body = &packet.payload[descriptor.header_len..];
        if descriptor.starts_frame {
            // A new frame; an unfinished one before it lost its last packet.
            self.partial = Some((packet.timestamp, body.to_vec()));
        } else {
            match &mut self.partial {
                Some((timestamp, data)) if *timestamp == packet.timestamp => {
                    data.extend_from_slice(body)
                }
                // The start of this frame never arrived.
                _ => {
                    self.partial = None;
                    return None;
                }
            }
        }
        if !packet.marker {
            return None;
        }
        let (rtp_timestamp, data) = self.partial.take()?;
        // Frame tag bit 0 (P) is 0 for key frames.
        let keyframe = data.first().is_some_and(|tag| tag & 0x01 == 0);
        if self.waiting_for_keyframe && !keyframe {
            return None;
        }
        self.waiting_for_keyframe = false;
        Some(Vp8Frame {
            data,
            keyframe,
            rtp_timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 640x480 key frame's first bytes: frame tag (P=0), start code, sizes.
    fn keyframe_start() -> Vec<u8> {
        let mut data = vec![0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a];
        data.extend_from_slice(&640u16.to_le_bytes());
        data.extend_from_slice(&480u16.to_le_bytes());
        data
    }

    fn packet(descriptor: &[u8], body: &[u8], timestamp: u32, marker: bool) -> Ordered<Vp8Packet> {
        let mut payload = descriptor.to_vec();
        payload.extend_from_slice(body);
        Ordered::Packet(Vp8Packet {
            marker,
            timestamp,
            payload,
        })
    }

    #[test]
    fn descriptor_lengths_follow_the_announced_fields() {
        // Minimal descriptor, S=1, PID=0.
        assert_eq!(
            parse_descriptor(&[0x10, 0xaa]),
            Some(Descriptor {
                starts_frame: true,
                header_len: 1
            })
        );
        // X=1 with I (15-bit picture id), L and T/K: 1 + 1 + 2 + 1 + 1 bytes.
        assert_eq!(
            parse_descriptor(&[0x90, 0xf0, 0x80 | 0x12, 0x34, 0x05, 0x20, 0xaa]),
            Some(Descriptor {
                starts_frame: true,
                header_len: 6
            })
        );
        // X=1 with a 7-bit picture id only; S=0 (continuation).
        assert_eq!(
            parse_descriptor(&[0x80, 0x80, 0x12, 0xaa]),
            Some(Descriptor {
                starts_frame: false,
                header_len: 3
            })
        );
        // S=1 but a later partition (PID=1) does not start a frame.
        assert!(!parse_descriptor(&[0x11, 0xaa]).unwrap().starts_frame);
        // Truncated: announced fields missing, or no frame byte after the descriptor.
        assert_eq!(parse_descriptor(&[]), None);
        assert_eq!(parse_descriptor(&[0x90]), None);
        assert_eq!(parse_descriptor(&[0x90, 0x80, 0x92]), None);
        assert_eq!(parse_descriptor(&[0x10]), None);
    }

    #[test]
    fn frames_are_joined_across_packets_and_keyframes_recognised() {
        let mut assembler = Vp8Assembler::new();
        let key = keyframe_start();
        assert!(assembler.needs_keyframe());
        assert_eq!(
            assembler.push(packet(&[0x90, 0x80, 0x01], &key[..4], 1000, false)),
            None
        );
        assert_eq!(
            assembler.push(packet(&[0x80, 0x80, 0x01], &key[4..], 1000, false)),
            None
        );
        let frame = assembler
            .push(packet(&[0x80, 0x80, 0x01], &[0xee, 0xff], 1000, true))
            .expect("marker completes the frame");
        let mut expected = key.clone();
        expected.extend_from_slice(&[0xee, 0xff]);
        assert_eq!(frame.data, expected);
        assert!(frame.keyframe);
        assert_eq!(frame.rtp_timestamp, 1000);
        assert_eq!(frame.dimensions(), Some((640, 480)));
        assert!(!assembler.needs_keyframe());

        // A single-packet inter frame (P=1) follows.
        let frame = assembler
            .push(packet(&[0x10], &[0x01, 0x02, 0x03], 4000, true))
            .expect("single-packet frame");
        assert!(!frame.keyframe);
        assert_eq!(frame.dimensions(), None);
        assert_eq!(frame.data, vec![0x01, 0x02, 0x03]);
    }

    #[test]
    fn the_recording_starts_at_a_keyframe() {
        let mut assembler = Vp8Assembler::new();
        // An inter frame before any key frame is useless to a decoder.
        assert_eq!(
            assembler.push(packet(&[0x10], &[0x01, 0x02], 0, true)),
            None
        );
        assert!(assembler.needs_keyframe());
        let frame = assembler
            .push(packet(&[0x10], &keyframe_start(), 3000, true))
            .unwrap();
        assert!(frame.keyframe);
    }

    #[test]
    fn a_loss_drops_frames_until_the_next_keyframe() {
        let mut assembler = Vp8Assembler::new();
        assembler
            .push(packet(&[0x10], &keyframe_start(), 0, true))
            .unwrap();
        // Packet 1 of a two-packet frame arrives, packet 2 is lost.
        assert_eq!(
            assembler.push(packet(&[0x10], &[0x01, 0x02], 3000, false)),
            None
        );
        assert_eq!(assembler.push(Ordered::Gap), None);
        assert!(assembler.needs_keyframe());
        // Complete inter frames after the loss are still dropped.
        assert_eq!(
            assembler.push(packet(&[0x10], &[0x01, 0x03], 6000, true)),
            None
        );
        let frame = assembler
            .push(packet(&[0x10], &keyframe_start(), 9000, true))
            .unwrap();
        assert!(frame.keyframe);
        assert_eq!(frame.rtp_timestamp, 9000);
        assert!(!assembler.needs_keyframe());
    }

    #[test]
    fn a_frame_missing_its_start_or_end_is_dropped() {
        let mut assembler = Vp8Assembler::new();
        assembler
            .push(packet(&[0x10], &keyframe_start(), 0, true))
            .unwrap();
        // Continuation without a start.
        assert_eq!(assembler.push(packet(&[0x00], &[0x05], 3000, true)), None);
        // A frame whose marker packet never came is replaced by the next frame's start.
        assert_eq!(
            assembler.push(packet(&[0x10], &[0x01, 0x07], 6000, false)),
            None
        );
        let frame = assembler
            .push(packet(&[0x10], &[0x01, 0x08], 9000, true))
            .unwrap();
        assert_eq!(frame.data, vec![0x01, 0x08]);
        // A continuation with another frame's timestamp does not join the frame.
        assert_eq!(
            assembler.push(packet(&[0x10], &[0x01, 0x09], 12000, false)),
            None
        );
        assert_eq!(assembler.push(packet(&[0x00], &[0x0a], 15000, true)), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut assembler = Vp8Assembler::new();
        let mut state = 0x1234_5678_u32;
        for len in 0..300 {
            let payload: Vec<u8> = (0..len % 40)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = assembler.push(Ordered::Packet(Vp8Packet {
                marker: state & 1 == 1,
                timestamp: state & 0x3,
                payload,
            }));
        }
        assert_eq!(keyframe_dimensions(&[0x50, 0x2a, 0x00, 0x9d, 0x01]), None);
    }
}
