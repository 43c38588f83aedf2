//! Positions on the call clock, counted in 16 kHz samples: the rate of speech recognition and
//! of the recording, so candidate speech, interviewer audio and transcript times line up to
//! the sample.

use std::time::Duration;

use viva_speech::VAD_SAMPLE_RATE;

/// A sample position at 16 kHz since the call started.
pub(crate) type Pos = u64;

const RATE: u64 = VAD_SAMPLE_RATE as u64;
const NANOS_PER_SAMPLE: u64 = 1_000_000_000 / RATE;

/// The sample at (or just before) `time`.
pub(crate) fn pos_at(time: Duration) -> Pos {
    (time.as_nanos() * u128::from(RATE) / 1_000_000_000) as Pos
}

/// The time of sample `pos`.
pub(crate) fn time_at(pos: Pos) -> Duration {
    Duration::from_nanos(pos * NANOS_PER_SAMPLE)
}

/// Milliseconds of `pos` (rounded down).
pub(crate) fn ms_at(pos: Pos) -> u64 {
    pos * 1000 / RATE
}

/// Whole milliseconds of `time` (rounded down).
pub(crate) fn ms(time: Duration) -> u64 {
    time.as_millis() as u64
}

/// `time` rounded up to a whole millisecond, so audio started there sits on an exact sample.
pub(crate) fn ceil_ms(time: Duration) -> Duration {
    let millis = time.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(millis as u64)
}

/// 16 kHz samples in `duration`.
pub(crate) fn span(duration: Duration) -> Pos {
    pos_at(duration)
}

/// Samples at `rate` in `duration` (rounded down).
pub(crate) fn samples_for(duration: Duration, rate: u32) -> usize {
    (duration.as_nanos() * u128::from(rate) / 1_000_000_000) as usize
}

/// How long `samples` last at `rate`.
pub(crate) fn duration_of(samples: usize, rate: u32) -> Duration {
    Duration::from_nanos(samples as u64 * 1_000_000_000 / u64::from(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_times_agree() {
        assert_eq!(pos_at(Duration::from_millis(1)), 16);
        assert_eq!(time_at(16), Duration::from_millis(1));
        assert_eq!(ms_at(16_000 * 3 + 15), 3000);
        assert_eq!(pos_at(time_at(123_457)), 123_457);
        assert_eq!(
            ceil_ms(Duration::from_nanos(2_000_001)),
            Duration::from_millis(3)
        );
        assert_eq!(ceil_ms(Duration::from_millis(2)), Duration::from_millis(2));
        assert_eq!(samples_for(Duration::from_millis(20), 8_000), 160);
    }
}
