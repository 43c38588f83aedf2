//! PCM frames: the unit of audio that flows through a call.

use std::fmt;
use std::time::Duration;

use crate::MediaError;

/// How many channels a stream or file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channels {
    /// One channel: what calls, speech recognition and synthesis use.
    Mono,
    /// Two channels, e.g. candidate left and interviewer right in a recording.
    Stereo,
}

impl Channels {
    /// Number of channels (1 or 2).
    pub fn count(self) -> u16 {
        match self {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }
    }
}

impl fmt::Display for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channels::Mono => "mono",
            Channels::Stereo => "stereo",
        })
    }
}

/// A chunk of mono audio with its place on the call clock.
///
/// Samples are `f32` in `[-1.0, 1.0]`; the constructors clamp (and turn NaN into silence), so
/// every frame can be encoded or written without further checks. The sample rate is never 0.
#[derive(Debug, Clone, PartialEq)]
pub struct PcmFrame {
    samples: Vec<f32>,
    sample_rate: u32,
    timestamp: Duration,
}

impl PcmFrame {
    /// Builds a frame from `f32` samples, clamping them into `[-1.0, 1.0]`.
    ///
    /// `timestamp` is the position of the first sample on the call clock.
    pub fn new(
        mut samples: Vec<f32>,
        sample_rate: u32,
        timestamp: Duration,
    ) -> Result<Self, MediaError> {
        check_rate(sample_rate)?;
        for sample in &mut samples {
            *sample = clamp_sample(*sample);
        }
        Ok(PcmFrame {
            samples,
            sample_rate,
            timestamp,
        })
    }

    /// Builds a frame from 16-bit PCM (as carried by G.711 after decoding, or by WAV files).
    pub fn from_i16(
        samples: &[i16],
        sample_rate: u32,
        timestamp: Duration,
    ) -> Result<Self, MediaError> {
        check_rate(sample_rate)?;
        Ok(PcmFrame {
            samples: samples.iter().map(|&s| i16_to_f32(s)).collect(),
            sample_rate,
            timestamp,
        })
    }

    /// The samples, each in `[-1.0, 1.0]`.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Takes the samples out of the frame.
    pub fn into_samples(self) -> Vec<f32> {
        self.samples
    }

    /// Samples per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Position of the first sample on the call clock.
    pub fn timestamp(&self) -> Duration {
        self.timestamp
    }

    /// How long the frame lasts.
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples.len(), self.sample_rate)
    }

    /// Position just after the last sample: where the next frame of the stream starts.
    pub fn end(&self) -> Duration {
        self.timestamp + self.duration()
    }

    /// The samples as 16-bit PCM, rounded and saturated.
    pub fn to_i16(&self) -> Vec<i16> {
        self.samples.iter().map(|&s| f32_to_i16(s)).collect()
    }
}

/// Converts one 16-bit sample to `f32` in `[-1.0, 1.0)`.
///
/// Scales by 1/32768 so the conversion is exact and `f32_to_i16` inverts it.
pub fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

/// Converts one `f32` sample to 16-bit PCM, rounding to nearest and saturating at the rails.
pub fn f32_to_i16(sample: f32) -> i16 {
    // `as` saturates and maps NaN to 0, which is what a damaged sample should become.
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Duration of `samples` samples at `sample_rate` (which must not be 0).
pub(crate) fn samples_to_duration(samples: usize, sample_rate: u32) -> Duration {
    let rate = u64::from(sample_rate);
    let samples = samples as u64;
    Duration::from_secs(samples / rate)
        + Duration::from_nanos((samples % rate) * 1_000_000_000 / rate)
}

fn clamp_sample(sample: f32) -> f32 {
    if sample.is_nan() {
        0.0
    } else {
        sample.clamp(-1.0, 1.0)
    }
}

fn check_rate(sample_rate: u32) -> Result<(), MediaError> {
    if sample_rate == 0 {
        return Err(MediaError::ZeroSampleRate {
            context: "PCM frame",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zero_rate() {
        assert!(matches!(
            PcmFrame::new(vec![0.0; 10], 0, Duration::ZERO),
            Err(MediaError::ZeroSampleRate { .. })
        ));
        assert!(PcmFrame::from_i16(&[0; 10], 0, Duration::ZERO).is_err());
    }

    #[test]
    fn clamps_out_of_range_and_nan() {
        let frame = PcmFrame::new(vec![1.5, -2.0, f32::NAN, 0.25], 8000, Duration::ZERO).unwrap();
        assert_eq!(frame.samples(), &[1.0, -1.0, 0.0, 0.25]);
    }

    #[test]
    fn duration_and_end() {
        let frame = PcmFrame::new(vec![0.0; 960], 48_000, Duration::from_millis(40)).unwrap();
        assert_eq!(frame.duration(), Duration::from_millis(20));
        assert_eq!(frame.end(), Duration::from_millis(60));
        let odd = PcmFrame::new(vec![0.0; 441], 22_050, Duration::ZERO).unwrap();
        assert_eq!(odd.duration(), Duration::from_millis(20));
        let third = PcmFrame::new(vec![0.0; 1], 3, Duration::ZERO).unwrap();
        assert_eq!(third.duration(), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn i16_round_trip_is_exact() {
        let pcm: Vec<i16> = (i16::MIN..=i16::MAX).step_by(7).chain([i16::MAX]).collect();
        let frame = PcmFrame::from_i16(&pcm, 16_000, Duration::ZERO).unwrap();
        assert_eq!(frame.to_i16(), pcm);
        assert!(frame.samples().iter().all(|s| (-1.0..=1.0).contains(s)));
    }

    #[test]
    fn to_i16_saturates_and_rounds() {
        let frame = PcmFrame::new(vec![1.0, -1.0, 0.5, 0.00002], 8000, Duration::ZERO).unwrap();
        assert_eq!(frame.to_i16(), vec![32767, -32768, 16384, 1]);
    }

    #[test]
    fn channel_counts() {
        assert_eq!(Channels::Mono.count(), 1);
        assert_eq!(Channels::Stereo.count(), 2);
        assert_eq!(Channels::Stereo.to_string(), "stereo");
    }
}
