//! The interviewer's voice: the conversation's 20 ms frames as mu-law payloads, one per frame,
//! with talkspurts told apart so each can be followed by a mark.

use std::time::Duration;

use viva_media::{G711Law, PcmFrame};

use crate::caller_audio::{FRAME_SAMPLES, PHONE_RATE};

/// A frame starting within half a frame of where the previous one ended continues the
/// talkspurt; producers that stamp frames from a clock rather than a sample count jitter a
/// little.
const CONTIGUITY_TOLERANCE: Duration = Duration::from_millis(10);

/// Why a frame from the conversation cannot be played.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VoiceError {
    #[error(
        "interviewer audio arrived at {actual} Hz but media streams carry {PHONE_RATE} Hz; \
         create the call with Call::pair(id, 8_000)"
    )]
    WrongRate { actual: u32 },
}

/// What to send for one frame of the conversation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Spoken {
    /// The previous talkspurt ended before this frame (a gap in timestamps): send this mark
    /// first.
    pub mark_before: Option<String>,
    /// mu-law payloads, one per 20 ms.
    pub payloads: Vec<Vec<u8>>,
}

/// Follows the talkspurts of the interviewer's audio and encodes it.
#[derive(Debug, Default)]
pub(crate) struct InterviewerVoice {
    /// Where the open talkspurt's next frame would start on the call clock; `None` when no
    /// talkspurt is open.
    expected_start: Option<Duration>,
    /// Talkspurts ended so far: numbers the marks.
    ended: u64,
}

impl InterviewerVoice {
    /// Encodes one frame: a frame of another length than 20 ms is cut into 20 ms payloads,
    /// the last padded with silence.
    pub fn speak(&mut self, frame: &PcmFrame) -> Result<Spoken, VoiceError> {
        if frame.sample_rate() != PHONE_RATE {
            return Err(VoiceError::WrongRate {
                actual: frame.sample_rate(),
            });
        }
        let at = frame.timestamp();
        let continues = self.expected_start.is_some_and(|expected| {
            at >= expected.saturating_sub(CONTIGUITY_TOLERANCE)
                && at <= expected + CONTIGUITY_TOLERANCE
        });
        let mark_before = if continues {
            None
        } else {
            self.end_talkspurt()
        };
        let pcm = frame.to_i16();
        let payloads = pcm
            .chunks(FRAME_SAMPLES)
            .map(|chunk| {
                let mut payload = G711Law::MuLaw.encode(chunk);
                payload.resize(FRAME_SAMPLES, G711Law::MuLaw.encode_sample(0));
                payload
            })
            .collect::<Vec<_>>();
        let samples = (payloads.len() * FRAME_SAMPLES) as u64;
        self.expected_start =
            Some(at + Duration::from_micros(samples * 1_000_000 / u64::from(PHONE_RATE)));
        Ok(Spoken {
            mark_before,
            payloads,
        })
    }

    /// The interviewer stopped (a pause, a barge-in): the name of the mark to send after the
    /// talkspurt's last frame, if one was open.
    pub fn end_talkspurt(&mut self) -> Option<String> {
        self.expected_start.take()?;
        self.ended += 1;
        Some(format!("talkspurt-{}", self.ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_at(ms: u64, samples: usize) -> PcmFrame {
        let data = (0..samples).map(|n| 0.4 * (n as f32 * 0.3).sin()).collect();
        PcmFrame::new(data, PHONE_RATE, Duration::from_millis(ms)).unwrap()
    }

    #[test]
    fn one_payload_per_frame_and_a_mark_after_each_talkspurt() {
        let mut voice = InterviewerVoice::default();
        let mut marks = Vec::new();
        for (index, ms) in [1_000, 1_020, 1_040, 1_500, 1_520, 3_000]
            .into_iter()
            .enumerate()
        {
            let spoken = voice.speak(&frame_at(ms, 160)).unwrap();
            assert_eq!(spoken.payloads.len(), 1);
            assert_eq!(spoken.payloads[0].len(), 160);
            marks.extend(spoken.mark_before.map(|mark| (index, mark)));
        }
        assert_eq!(
            marks,
            [(3, "talkspurt-1".to_owned()), (5, "talkspurt-2".to_owned())],
            "a mark before the first frame of each later talkspurt"
        );
        assert_eq!(voice.end_talkspurt().as_deref(), Some("talkspurt-3"));
        assert_eq!(voice.end_talkspurt(), None, "no talkspurt is open any more");
        let spoken = voice.speak(&frame_at(3_020, 160)).unwrap();
        assert_eq!(spoken.mark_before, None, "nothing was open to mark");
    }

    #[test]
    fn jittery_timestamps_continue_the_talkspurt_going_back_does_not() {
        let mut voice = InterviewerVoice::default();
        for ms in [0, 23, 41, 58, 80] {
            assert_eq!(voice.speak(&frame_at(ms, 160)).unwrap().mark_before, None);
        }
        assert!(
            voice
                .speak(&frame_at(40, 160))
                .unwrap()
                .mark_before
                .is_some()
        );
        assert!(
            voice
                .speak(&frame_at(91, 160))
                .unwrap()
                .mark_before
                .is_some()
        );
    }

    #[test]
    fn payloads_decode_to_the_frame_and_odd_lengths_are_padded() {
        let mut voice = InterviewerVoice::default();
        let frame = frame_at(0, 400);
        let spoken = voice.speak(&frame).unwrap();
        assert_eq!(spoken.payloads.len(), 3);
        let decoded: Vec<i16> = spoken
            .payloads
            .iter()
            .flat_map(|payload| G711Law::MuLaw.decode(payload))
            .collect();
        let expected = G711Law::MuLaw.decode(&G711Law::MuLaw.encode(&frame.to_i16()));
        assert_eq!(&decoded[..400], &expected[..]);
        assert!(decoded[400..].iter().all(|&s| s == 0));
        // The next talkspurt position counts the padding: 60 ms later continues it.
        assert_eq!(voice.speak(&frame_at(60, 160)).unwrap().mark_before, None);
    }

    #[test]
    fn other_rates_are_refused() {
        let mut voice = InterviewerVoice::default();
        let wideband = PcmFrame::new(vec![0.0; 320], 16_000, Duration::ZERO).unwrap();
        let err = voice.speak(&wideband).unwrap_err();
        assert!(err.to_string().contains("Call::pair(id, 8_000)"), "{err}");
        assert_eq!(
            voice.end_talkspurt(),
            None,
            "a refused frame opens no talkspurt"
        );
    }
}
