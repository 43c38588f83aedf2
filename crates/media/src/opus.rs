//! Opus at 48 kHz (libopus through the `opus` crate): the codec of WebRTC calls and of Ogg Opus
//! files.

use std::fmt;

use opus::{Application, Decoder, Encoder};

use crate::{Channels, MediaError};

/// Opus always runs at 48 kHz in Viva: WebRTC negotiates `opus/48000/2` and Ogg Opus decodes
/// at 48 kHz.
pub const OPUS_SAMPLE_RATE: u32 = 48_000;

/// Samples in one 20 ms frame at 48 kHz, the packet duration WebRTC and SIP use.
pub const OPUS_FRAME_SAMPLES: usize = 960;

/// The longest Opus packet lasts 120 ms.
const MAX_PACKET_SAMPLES: usize = 5760;

/// libopus's recommended output buffer for one packet.
const MAX_PACKET_BYTES: usize = 4000;

/// Packet loss concealment works in steps of 2.5 ms (120 samples at 48 kHz).
const CONCEAL_STEP_SAMPLES: usize = 120;

fn opus_error(operation: &'static str) -> impl FnOnce(opus::Error) -> MediaError {
    move |err| MediaError::Opus {
        operation,
        detail: err.to_string(),
    }
}

/// Encodes mono 48 kHz speech into Opus packets, one per 20 ms frame.
///
/// Uses the VoIP application mode, which favours intelligibility of speech.
#[derive(Debug)]
pub struct OpusEncoder {
    encoder: Encoder,
}

impl OpusEncoder {
    /// Creates a mono 48 kHz VoIP encoder.
    pub fn new() -> Result<Self, MediaError> {
        let encoder = Encoder::new(OPUS_SAMPLE_RATE, opus::Channels::Mono, Application::Voip)
            .map_err(opus_error("encoder creation"))?;
        Ok(OpusEncoder { encoder })
    }

    /// Encodes exactly one 20 ms frame ([`OPUS_FRAME_SAMPLES`] samples in `[-1, 1]`) into a
    /// packet.
    pub fn encode(&mut self, frame: &[f32]) -> Result<Vec<u8>, MediaError> {
        if frame.len() != OPUS_FRAME_SAMPLES {
            return Err(MediaError::WrongSampleCount {
                codec: "Opus encoder",
                expected: format!("{OPUS_FRAME_SAMPLES} (20 ms at 48 kHz)"),
                actual: frame.len(),
                hint: "buffer the stream into 20 ms frames before encoding",
            });
        }
        self.encoder
            .encode_vec_float(frame, MAX_PACKET_BYTES)
            .map_err(opus_error("encode"))
    }
}

/// Decodes Opus packets into mono 48 kHz samples, downmixing stereo streams.
pub struct OpusDecoder {
    decoder: Decoder,
    channels: Channels,
    /// Interleaved decode buffer, kept between packets so decoding does not allocate twice.
    scratch: Vec<f32>,
}

impl OpusDecoder {
    /// Creates a 48 kHz decoder for a stream with the given channel layout.
    ///
    /// A stereo stream is decoded as stereo and then averaged, which keeps both sides of a
    /// stereo recording audible.
    pub fn new(channels: Channels) -> Result<Self, MediaError> {
        let layout = match channels {
            Channels::Mono => opus::Channels::Mono,
            Channels::Stereo => opus::Channels::Stereo,
        };
        let decoder =
            Decoder::new(OPUS_SAMPLE_RATE, layout).map_err(opus_error("decoder creation"))?;
        Ok(OpusDecoder {
            decoder,
            channels,
            scratch: vec![0.0; MAX_PACKET_SAMPLES * usize::from(channels.count())],
        })
    }

    /// Decodes one packet (2.5 to 120 ms of audio) into mono samples.
    ///
    /// An empty packet is an error here; call [`conceal`](Self::conceal) for a lost packet.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<f32>, MediaError> {
        if packet.is_empty() {
            return Err(MediaError::Opus {
                operation: "decode",
                detail: "empty packet; use conceal() for lost packets".to_owned(),
            });
        }
        let frames = self
            .decoder
            .decode_float(packet, &mut self.scratch, false)
            .map_err(opus_error("decode"))?;
        Ok(self.downmix(frames))
    }

    /// Synthesises `samples` samples of plausible audio for lost packets (packet loss
    /// concealment), continuing from the last decoded packet.
    ///
    /// `samples` must be a multiple of 120 (2.5 ms); 960 covers one lost 20 ms packet.
    pub fn conceal(&mut self, samples: usize) -> Result<Vec<f32>, MediaError> {
        if !samples.is_multiple_of(CONCEAL_STEP_SAMPLES) {
            return Err(MediaError::WrongSampleCount {
                codec: "Opus packet loss concealment",
                expected: format!("a multiple of {CONCEAL_STEP_SAMPLES} (2.5 ms at 48 kHz)"),
                actual: samples,
                hint: "conceal whole lost packets, e.g. 960 samples per lost 20 ms packet",
            });
        }
        let channels = usize::from(self.channels.count());
        let mut concealed = Vec::with_capacity(samples);
        while concealed.len() < samples {
            // libopus conceals at most one packet's worth per call.
            let step = (samples - concealed.len()).min(MAX_PACKET_SAMPLES);
            let frames = self
                .decoder
                .decode_float(&[], &mut self.scratch[..step * channels], false)
                .map_err(opus_error("packet loss concealment"))?;
            if frames == 0 {
                return Err(MediaError::Opus {
                    operation: "packet loss concealment",
                    detail: "libopus produced no samples".to_owned(),
                });
            }
            concealed.extend(self.downmix(frames));
        }
        Ok(concealed)
    }

    /// Mono view of the first `frames` frames of the scratch buffer.
    fn downmix(&self, frames: usize) -> Vec<f32> {
        match self.channels {
            Channels::Mono => self.scratch[..frames].to_vec(),
            Channels::Stereo => self.scratch[..frames * 2]
                .chunks_exact(2)
                .map(|pair| (pair[0] + pair[1]) * 0.5)
                .collect(),
        }
    }
}

impl fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{best_lag_correlation, rms, sine};

    fn encode_sine(frames: usize) -> (Vec<f32>, Vec<Vec<u8>>) {
        let signal = sine(440.0, 0.5, OPUS_SAMPLE_RATE, frames * OPUS_FRAME_SAMPLES);
        let mut encoder = OpusEncoder::new().unwrap();
        let packets = signal
            .chunks(OPUS_FRAME_SAMPLES)
            .map(|frame| encoder.encode(frame).unwrap())
            .collect();
        (signal, packets)
    }

    #[test]
    fn sine_survives_encode_and_decode() {
        let (signal, packets) = encode_sine(50);
        let mut decoder = OpusDecoder::new(Channels::Mono).unwrap();
        let mut decoded = Vec::new();
        for packet in &packets {
            assert!(packet.len() < 400, "packet of {} bytes", packet.len());
            let pcm = decoder.decode(packet).unwrap();
            assert_eq!(pcm.len(), OPUS_FRAME_SAMPLES);
            decoded.extend(pcm);
        }
        assert_eq!(decoded.len(), signal.len());
        // Skip the first 100 ms while the codec settles; compare energy and shape.
        let settled = 4800;
        let ratio = rms(&decoded[settled..]) / rms(&signal[settled..]);
        assert!((0.8..1.2).contains(&ratio), "energy ratio {ratio}");
        // Opus delays the signal by its lookahead (6.5 ms); search lags up to 10 ms.
        let (lag, correlation) = best_lag_correlation(&signal[settled..], &decoded[settled..], 480);
        assert!(correlation > 0.95, "correlation {correlation} at lag {lag}");
    }

    #[test]
    fn stereo_stream_is_downmixed() {
        let left = sine(440.0, 0.5, OPUS_SAMPLE_RATE, OPUS_FRAME_SAMPLES * 20);
        let interleaved: Vec<f32> = left.iter().flat_map(|&s| [s, s]).collect();
        let mut encoder =
            Encoder::new(OPUS_SAMPLE_RATE, opus::Channels::Stereo, Application::Voip).unwrap();
        let mut decoder = OpusDecoder::new(Channels::Stereo).unwrap();
        let mut decoded = Vec::new();
        for frame in interleaved.chunks(OPUS_FRAME_SAMPLES * 2) {
            let packet = encoder.encode_vec_float(frame, MAX_PACKET_BYTES).unwrap();
            decoded.extend(decoder.decode(&packet).unwrap());
        }
        assert_eq!(decoded.len(), left.len());
        let ratio = rms(&decoded[4800..]) / rms(&left[4800..]);
        assert!((0.8..1.2).contains(&ratio), "energy ratio {ratio}");
    }

    #[test]
    fn concealment_returns_requested_length() {
        let (_, packets) = encode_sine(10);
        let mut decoder = OpusDecoder::new(Channels::Mono).unwrap();
        for packet in &packets {
            decoder.decode(packet).unwrap();
        }
        let concealed = decoder.conceal(OPUS_FRAME_SAMPLES).unwrap();
        assert_eq!(concealed.len(), OPUS_FRAME_SAMPLES);
        // Concealment continues the tone rather than dropping to silence.
        assert!(rms(&concealed) > 0.05, "rms {}", rms(&concealed));
        let long = decoder.conceal(OPUS_FRAME_SAMPLES * 7).unwrap();
        assert_eq!(long.len(), OPUS_FRAME_SAMPLES * 7);
        assert!(decoder.conceal(100).is_err());
        assert_eq!(decoder.conceal(0).unwrap().len(), 0);
    }

    #[test]
    fn garbage_and_wrong_sizes_are_errors() {
        let mut decoder = OpusDecoder::new(Channels::Mono).unwrap();
        assert!(decoder.decode(&[]).is_err());
        // TOC code 3 (arbitrary frame count) with a frame count of 0 is invalid.
        assert!(decoder.decode(&[0x03, 0x00]).is_err());
        // Random bytes either decode to something (Opus is permissive) or fail; never panic.
        let mut state = 0x2545_F491_u32;
        for len in 1..200 {
            let packet: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            if let Ok(pcm) = decoder.decode(&packet) {
                assert!(pcm.len() <= MAX_PACKET_SAMPLES);
            }
        }
        let mut encoder = OpusEncoder::new().unwrap();
        assert!(matches!(
            encoder.encode(&[0.0; 100]),
            Err(MediaError::WrongSampleCount { actual: 100, .. })
        ));
    }
}
