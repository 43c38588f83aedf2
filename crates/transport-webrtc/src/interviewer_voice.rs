//! The interviewer's voice: 20 ms frames from the conversation encoded to Opus and wrapped in
//! RTP with timestamps that follow the call clock, pauses included.

use rtc::rtp;
use viva_media::{MediaError, OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE, OpusEncoder, PcmFrame};

/// Why a frame from the conversation could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VoiceError {
    #[error(
        "interviewer audio arrived at {actual} Hz but browser calls carry {OPUS_SAMPLE_RATE} Hz; \
         create the call with Call::pair(id, 48_000)"
    )]
    WrongRate { actual: u32 },
    #[error(transparent)]
    Codec(#[from] MediaError),
}

/// Turns the conversation's timestamped frames into RTP packets for one Opus stream.
///
/// The RTP timestamp of every packet is the frame's position on the call clock (plus a random
/// offset, as RFC 3550 asks), so a pause between two utterances shows up as a timestamp jump,
/// exactly what the browser's jitter buffer expects of a talkspurt boundary. The first packet
/// after the conversation says the interviewer stopped ([`VoicePacketizer::end_talkspurt`])
/// carries the marker bit.
#[derive(Debug)]
pub(crate) struct VoicePacketizer {
    encoder: OpusEncoder,
    ssrc: u32,
    payload_type: u8,
    next_sequence: u16,
    timestamp_offset: u32,
    /// Packets have been sent since the last talkspurt ended.
    speaking: bool,
}

impl VoicePacketizer {
    /// A packetizer for the negotiated payload type; `ssrc`, the first sequence number and
    /// the timestamp offset should be random.
    pub fn new(
        ssrc: u32,
        payload_type: u8,
        first_sequence: u16,
        timestamp_offset: u32,
    ) -> Result<Self, MediaError> {
        Ok(VoicePacketizer {
            encoder: OpusEncoder::new()?,
            ssrc,
            payload_type,
            next_sequence: first_sequence,
            timestamp_offset,
            speaking: false,
        })
    }

    /// The interviewer stopped (the end of a line or a pause, a barge-in): whatever comes
    /// next starts a new talkspurt.
    pub fn end_talkspurt(&mut self) {
        self.speaking = false;
    }

    /// Encodes one frame into RTP packets, one per 20 ms (a frame of another length is cut
    /// into 20 ms pieces, the last padded with silence).
    pub fn packetize(&mut self, frame: &PcmFrame) -> Result<Vec<rtp::Packet>, VoiceError> {
        if frame.sample_rate() != OPUS_SAMPLE_RATE {
            return Err(VoiceError::WrongRate {
                actual: frame.sample_rate(),
            });
        }
        let first_start =
            (frame.timestamp().as_nanos() * u128::from(OPUS_SAMPLE_RATE) / 1_000_000_000) as u64;
        let mut packets = Vec::new();
        for (index, chunk) in frame.samples().chunks(OPUS_FRAME_SAMPLES).enumerate() {
            let start = first_start + (index * OPUS_FRAME_SAMPLES) as u64;
            let payload = if chunk.len() == OPUS_FRAME_SAMPLES {
                self.encoder.encode(chunk)?
            } else {
                let mut padded = chunk.to_vec();
                padded.resize(OPUS_FRAME_SAMPLES, 0.0);
                self.encoder.encode(&padded)?
            };
            let marker = !std::mem::replace(&mut self.speaking, true);
            let sequence_number = self.next_sequence;
            self.next_sequence = self.next_sequence.wrapping_add(1);
            packets.push(rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    marker,
                    payload_type: self.payload_type,
                    sequence_number,
                    // RTP timestamps wrap modulo 2^32 by definition.
                    timestamp: self.timestamp_offset.wrapping_add(start as u32),
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: payload.into(),
            });
        }
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use viva_media::{Channels, OpusDecoder};

    fn frame_at(ms: u64, samples: usize) -> PcmFrame {
        let data = (0..samples)
            .map(|n| 0.3 * (n as f32 * 0.05).sin())
            .collect();
        PcmFrame::new(data, 48_000, Duration::from_millis(ms)).unwrap()
    }

    #[test]
    fn timestamps_follow_the_call_clock_across_pauses() {
        let mut voice = VoicePacketizer::new(0xabcd, 111, 65534, u32::MAX - 1000).unwrap();
        let mut packets = Vec::new();
        for ms in [1000, 1020, 1040, 2500, 2520] {
            if ms == 2500 {
                voice.end_talkspurt();
            }
            packets.extend(voice.packetize(&frame_at(ms, 960)).unwrap());
        }
        let timestamps: Vec<u32> = packets.iter().map(|p| p.header.timestamp).collect();
        let base = u32::MAX - 1000;
        assert_eq!(
            timestamps,
            [48_000u32, 48_960, 49_920, 120_000, 120_960].map(|t| base.wrapping_add(t))
        );
        let markers: Vec<bool> = packets.iter().map(|p| p.header.marker).collect();
        assert_eq!(markers, [true, false, false, true, false]);
        let sequences: Vec<u16> = packets.iter().map(|p| p.header.sequence_number).collect();
        assert_eq!(sequences, [65534, 65535, 0, 1, 2]);
        assert!(packets.iter().all(|p| p.header.ssrc == 0xabcd));
        assert!(packets.iter().all(|p| p.header.payload_type == 111));
    }

    #[test]
    fn an_interruption_starts_a_new_talkspurt() {
        let mut voice = VoicePacketizer::new(1, 111, 0, 0).unwrap();
        voice.packetize(&frame_at(0, 960)).unwrap();
        voice.end_talkspurt();
        let packets = voice.packetize(&frame_at(20, 960)).unwrap();
        assert!(packets[0].header.marker);
    }

    #[test]
    fn odd_frame_lengths_become_whole_packets_that_decode() {
        let mut voice = VoicePacketizer::new(1, 111, 0, 0).unwrap();
        let packets = voice.packetize(&frame_at(0, 960 * 2 + 100)).unwrap();
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[2].header.timestamp, 1_920);
        let mut decoder = OpusDecoder::new(Channels::Mono).unwrap();
        for packet in &packets {
            assert_eq!(decoder.decode(&packet.payload).unwrap().len(), 960);
        }
    }

    #[test]
    fn the_wrong_rate_is_refused() {
        let mut voice = VoicePacketizer::new(1, 111, 0, 0).unwrap();
        let frame = PcmFrame::new(vec![0.0; 320], 16_000, Duration::ZERO).unwrap();
        assert!(matches!(
            voice.packetize(&frame),
            Err(VoiceError::WrongRate { actual: 16_000 })
        ));
    }
}
