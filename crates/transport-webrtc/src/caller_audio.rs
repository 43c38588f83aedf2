//! The candidate's microphone: Opus packets from the browser decoded into one continuous
//! 48 kHz stream for the conversation.

use std::time::Duration;

use viva_media::{
    Channels, MediaError, OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE, OpusDecoder, PcmFrame,
};

/// The longest hole filled with concealed audio (200 ms). The conversation realigns a stream
/// that stalls for longer with silence of its own, so filling a longer hole here as well would
/// push the candidate's audio later on the call clock.
const MAX_FILL_SAMPLES: u32 = 9_600;

/// Packet loss concealment works in whole 2.5 ms steps.
const CONCEAL_STEP_SAMPLES: u32 = 120;

/// Where the last decoded packet sat in the RTP stream.
#[derive(Debug, Clone, Copy)]
struct LastPacket {
    sequence: u16,
    /// RTP timestamp (48 kHz) just after the packet's audio.
    end_timestamp: u32,
}

/// Decodes the browser's Opus packets (arrival order) into 48 kHz mono frames, filling short
/// holes so the stream stays continuous: packet loss with Opus's concealment, a DTX pause
/// (timestamps jump but no packet is missing) with silence.
#[derive(Debug)]
pub(crate) struct CallerAudio {
    decoder: OpusDecoder,
    last: Option<LastPacket>,
    /// Samples produced so far: the position of the next frame on the stream's own clock.
    produced: u64,
}

impl CallerAudio {
    pub fn new() -> Result<Self, MediaError> {
        Ok(CallerAudio {
            // libopus downmixes a stereo stream itself when asked for mono.
            decoder: OpusDecoder::new(Channels::Mono)?,
            last: None,
            produced: 0,
        })
    }

    /// Decodes one RTP packet; returns the frames to pass on (none for a late or duplicate
    /// packet, fill frames first after a hole).
    pub fn push(&mut self, sequence: u16, timestamp: u32, payload: &[u8]) -> Vec<PcmFrame> {
        let mut frames = Vec::new();
        if payload.is_empty() {
            // Padding-only packets (bandwidth probes) carry no audio.
            return frames;
        }
        if let Some(last) = self.last {
            let sequence_step = sequence.wrapping_sub(last.sequence) as i16;
            if sequence_step <= 0 {
                return frames;
            }
            let hole = timestamp.wrapping_sub(last.end_timestamp) as i32;
            if hole > 0 && hole as u32 <= MAX_FILL_SAMPLES {
                let hole = hole as u32 - hole as u32 % CONCEAL_STEP_SAMPLES;
                let fill = if sequence_step > 1 {
                    self.decoder.conceal(hole as usize).unwrap_or_else(|err| {
                        tracing::debug!(%err, "concealment failed; filling with silence");
                        vec![0.0; hole as usize]
                    })
                } else {
                    vec![0.0; hole as usize]
                };
                for chunk in fill.chunks(OPUS_FRAME_SAMPLES) {
                    frames.extend(self.frame(chunk.to_vec()));
                }
            }
        }
        let decoded = match self.decoder.decode(payload) {
            Ok(samples) => samples,
            Err(err) => {
                tracing::debug!(%err, sequence, "undecodable Opus packet; concealing it");
                self.decoder
                    .conceal(OPUS_FRAME_SAMPLES)
                    .unwrap_or_else(|_| vec![0.0; OPUS_FRAME_SAMPLES])
            }
        };
        self.last = Some(LastPacket {
            sequence,
            end_timestamp: timestamp.wrapping_add(decoded.len() as u32),
        });
        frames.extend(self.frame(decoded));
        frames
    }

    fn frame(&mut self, samples: Vec<f32>) -> Option<PcmFrame> {
        if samples.is_empty() {
            return None;
        }
        let timestamp =
            Duration::from_nanos(self.produced * 1_000_000_000 / u64::from(OPUS_SAMPLE_RATE));
        self.produced += samples.len() as u64;
        PcmFrame::new(samples, OPUS_SAMPLE_RATE, timestamp).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use viva_media::OpusEncoder;

    fn tone_packets(count: usize) -> Vec<Vec<u8>> {
        let mut encoder = OpusEncoder::new().unwrap();
        (0..count)
            .map(|i| {
                let frame: Vec<f32> = (0..OPUS_FRAME_SAMPLES)
                    .map(|n| {
                        let t = (i * OPUS_FRAME_SAMPLES + n) as f32 / 48_000.0;
                        0.5 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                    })
                    .collect();
                encoder.encode(&frame).unwrap()
            })
            .collect()
    }

    fn total(frames: &[PcmFrame]) -> usize {
        frames.iter().map(|f| f.samples().len()).sum()
    }

    fn rms(frames: &[PcmFrame]) -> f32 {
        let samples: Vec<f32> = frames.iter().flat_map(|f| f.samples().to_vec()).collect();
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
    }

    #[test]
    fn in_order_packets_make_a_continuous_stream() {
        let packets = tone_packets(10);
        let mut audio = CallerAudio::new().unwrap();
        let mut frames = Vec::new();
        for (i, packet) in packets.iter().enumerate() {
            frames.extend(audio.push(100 + i as u16, 960 * i as u32, packet));
        }
        assert_eq!(frames.len(), 10);
        assert_eq!(total(&frames), 9_600);
        for pair in frames.windows(2) {
            assert_eq!(pair[0].end(), pair[1].timestamp());
            assert_eq!(pair[1].sample_rate(), 48_000);
        }
    }

    #[test]
    fn lost_packets_are_concealed_with_the_tone() {
        let packets = tone_packets(10);
        let mut audio = CallerAudio::new().unwrap();
        let mut frames = Vec::new();
        for i in [0usize, 1, 2, 3, 6, 7] {
            frames.extend(audio.push(i as u16, 960 * i as u32, &packets[i]));
        }
        // Packets 4 and 5 were lost: 1920 concealed samples keep the stream continuous.
        assert_eq!(total(&frames), 8 * 960);
        let concealed = &frames[4..6];
        assert_eq!(total(concealed), 1_920);
        assert!(rms(concealed) > 0.05, "concealment continues the tone");
    }

    #[test]
    fn a_dtx_pause_is_filled_with_silence_and_long_stalls_are_left_alone() {
        let packets = tone_packets(4);
        let mut audio = CallerAudio::new().unwrap();
        audio.push(0, 0, &packets[0]);
        // Next packet in sequence, but 100 ms later on the RTP clock: the browser paused (DTX).
        let frames = audio.push(1, 960 + 4_800, &packets[1]);
        assert_eq!(total(&frames), 4_800 + 960);
        assert_eq!(rms(&frames[..5]), 0.0);
        // Two seconds of nothing: the conversation realigns that itself.
        let frames = audio.push(2, 960 * 2 + 4_800 + 96_000, &packets[2]);
        assert_eq!(total(&frames), 960);
    }

    #[test]
    fn late_duplicate_and_empty_packets_are_ignored() {
        let packets = tone_packets(3);
        let mut audio = CallerAudio::new().unwrap();
        assert_eq!(audio.push(65535, 0, &packets[0]).len(), 1);
        assert_eq!(audio.push(0, 960, &packets[1]).len(), 1, "sequence wraps");
        assert!(audio.push(65535, 0, &packets[0]).is_empty());
        assert!(audio.push(0, 960, &packets[1]).is_empty());
        assert!(audio.push(1, 1920, &[]).is_empty());
        // Garbage still yields exactly one packet's worth, so the stream stays continuous.
        let frames = audio.push(1, 1920, &[0x03, 0x00]);
        assert_eq!(total(&frames), 960);
    }
}
