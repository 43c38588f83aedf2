//! The interviewer's voice: the conversation's 20 ms frames as mu-law payloads, one per frame,
//! and a mark after each talkspurt (the conversation says where one ends).

use viva_call::{PHONE_RATE, frame_samples};
use viva_media::{G711Law, PcmFrame};

/// Samples in one payload.
const FRAME_SAMPLES: usize = frame_samples(PHONE_RATE);

/// Why a frame from the conversation cannot be played.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VoiceError {
    #[error(
        "interviewer audio arrived at {actual} Hz but media streams carry {PHONE_RATE} Hz; \
         create the call with Call::pair(id, 8_000)"
    )]
    WrongRate { actual: u32 },
}

/// Encodes the interviewer's audio and names the mark of each talkspurt.
#[derive(Debug, Default)]
pub(crate) struct InterviewerVoice {
    /// Audio has been sent since the last talkspurt ended.
    speaking: bool,
    /// Talkspurts ended so far: numbers the marks.
    ended: u64,
}

impl InterviewerVoice {
    /// Encodes one frame as mu-law payloads: a frame of another length than 20 ms is cut into
    /// 20 ms payloads, the last padded with silence.
    pub fn speak(&mut self, frame: &PcmFrame) -> Result<Vec<Vec<u8>>, VoiceError> {
        if frame.sample_rate() != PHONE_RATE {
            return Err(VoiceError::WrongRate {
                actual: frame.sample_rate(),
            });
        }
        self.speaking = true;
        let silence = G711Law::MuLaw.encode_sample(0);
        Ok(frame
            .to_i16()
            .chunks(FRAME_SAMPLES)
            .map(|chunk| {
                let mut payload = G711Law::MuLaw.encode(chunk);
                payload.resize(FRAME_SAMPLES, silence);
                payload
            })
            .collect())
    }

    /// The interviewer stopped (the end of a line or a pause, a barge-in): the name of the
    /// mark to send after the talkspurt's last frame, if audio was sent since the last one.
    pub fn end_talkspurt(&mut self) -> Option<String> {
        if !std::mem::take(&mut self.speaking) {
            return None;
        }
        self.ended += 1;
        Some(format!("talkspurt-{}", self.ended))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frame_at(ms: u64, samples: usize) -> PcmFrame {
        let data = (0..samples).map(|n| 0.4 * (n as f32 * 0.3).sin()).collect();
        PcmFrame::new(data, PHONE_RATE, Duration::from_millis(ms)).unwrap()
    }

    #[test]
    fn one_payload_per_frame_and_one_mark_per_talkspurt() {
        let mut voice = InterviewerVoice::default();
        assert_eq!(voice.end_talkspurt(), None, "nothing was said yet");
        for ms in [1_000, 1_020, 1_040] {
            let payloads = voice.speak(&frame_at(ms, 160)).unwrap();
            assert_eq!(payloads.len(), 1);
            assert_eq!(payloads[0].len(), 160);
        }
        assert_eq!(voice.end_talkspurt().as_deref(), Some("talkspurt-1"));
        assert_eq!(voice.end_talkspurt(), None, "no talkspurt is open any more");
        // Timestamps say nothing about talkspurts: a frame far later continues until the
        // conversation says the speech ended.
        voice.speak(&frame_at(9_000, 160)).unwrap();
        voice.speak(&frame_at(20_000, 160)).unwrap();
        assert_eq!(voice.end_talkspurt().as_deref(), Some("talkspurt-2"));
    }

    #[test]
    fn odd_sized_frames_are_cut_and_padded_and_other_rates_refused() {
        let mut voice = InterviewerVoice::default();
        let payloads = voice.speak(&frame_at(0, 400)).unwrap();
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() == 160));
        let wide = PcmFrame::new(vec![0.0; 320], 16_000, Duration::ZERO).unwrap();
        assert!(matches!(
            voice.speak(&wide),
            Err(VoiceError::WrongRate { actual: 16_000 })
        ));
    }
}
