//! Streaming sample-rate conversion between the rates a call meets: 8 kHz telephony,
//! 16 kHz speech recognition, 22.05 kHz synthesis, 24 and 48 kHz WebRTC.
//!
//! Built on rubato's synchronous FFT resampler, which for a fixed ratio is both the fastest and
//! the cleanest choice (no drifting clocks to follow inside one process).

use std::fmt;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

use crate::MediaError;

/// Target block length: one 20 ms packet, so a call's frames flow through with one block of
/// latency plus half a block of filter delay.
const TARGET_BLOCK_MS: u64 = 20;
/// Longest block accepted; rate pairs that need more have no useful common block.
const MAX_BLOCK_MS: u32 = 100;

/// Converts a mono stream from one sample rate to another, in chunks of any length.
///
/// Input is buffered into fixed blocks internally (20 ms for most pairs, 40 ms for pairs with
/// 22050 Hz), so the output does not depend on how the input was chunked. The filter's delay is
/// removed: output sample `k` lines up with input time `k / to_hz`, and after
/// [`flush`](Self::flush) the stream has `input_len * to / from` samples (rounded). While a
/// stream runs, output trails input by less than one block plus half a block of filter
/// look-ahead.
///
/// ```
/// use viva_media::Resampler;
///
/// let mut to_speech = Resampler::new(48_000, 16_000)?;
/// let mut out = Vec::new();
/// for packet in vec![0.0f32; 48_000].chunks(960) {
///     out.extend(to_speech.process(packet));
/// }
/// out.extend(to_speech.flush());
/// assert_eq!(out.len(), 16_000);
/// # Ok::<(), viva_media::MediaError>(())
/// ```
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// `None` when the rates are equal: samples pass straight through.
    engine: Option<Box<FftEngine>>,
    input_total: u64,
    output_total: u64,
}

struct FftEngine {
    fft: Fft<f32>,
    block_in: usize,
    block_out: usize,
    /// Input received but not yet processed (always shorter than one block between calls).
    pending: Vec<f32>,
    /// One block of output.
    block: Vec<f32>,
    /// Leading output samples still to drop: the filter's delay.
    delay_left: usize,
}

impl Resampler {
    /// Creates a resampler from `from_hz` to `to_hz`.
    ///
    /// Any pair of 8000, 11025, 16000, 22050, 24000, 32000, 44100 and 48000 Hz works (and most
    /// other pairs of common rates); equal rates pass samples through untouched.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, MediaError> {
        let unsupported = MediaError::UnsupportedResampleRates {
            from_hz,
            to_hz,
            max_block_ms: MAX_BLOCK_MS,
        };
        if from_hz == 0 || to_hz == 0 {
            return Err(unsupported);
        }
        let engine = if from_hz == to_hz {
            None
        } else {
            let (block_in, block_out) = block_sizes(from_hz, to_hz).ok_or(unsupported)?;
            // FixedSync::Both with a chunk of exactly one block makes rubato run a single FFT of
            // exactly our block per call, so we control the block size and with it the delay.
            let fft = Fft::<f32>::new(
                from_hz as usize,
                to_hz as usize,
                block_in,
                1,
                FixedSync::Both,
            )
            .map_err(|_| MediaError::UnsupportedResampleRates {
                from_hz,
                to_hz,
                max_block_ms: MAX_BLOCK_MS,
            })?;
            debug_assert_eq!(fft.input_frames_next(), block_in);
            debug_assert_eq!(fft.output_frames_next(), block_out);
            let delay_left = fft.output_delay();
            Some(Box::new(FftEngine {
                fft,
                block_in,
                block_out,
                pending: Vec::with_capacity(block_in * 2),
                block: vec![0.0; block_out],
                delay_left,
            }))
        };
        Ok(Resampler {
            from_hz,
            to_hz,
            engine,
            input_total: 0,
            output_total: 0,
        })
    }

    /// Input sample rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output sample rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Feeds `input` (any length, even empty) and returns every output sample that is complete.
    ///
    /// Less than one block of input stays buffered until more arrives or
    /// [`flush`](Self::flush) is called.
    pub fn process(&mut self, input: &[f32]) -> Vec<f32> {
        self.input_total += input.len() as u64;
        let Some(engine) = self.engine.as_mut() else {
            self.output_total += input.len() as u64;
            return input.to_vec();
        };
        engine.pending.extend_from_slice(input);
        let blocks = engine.pending.len() / engine.block_in;
        let mut output = Vec::with_capacity(blocks * engine.block_out);
        for index in 0..blocks {
            let start = index * engine.block_in;
            engine.run_block(start, engine.block_in);
            engine.emit(&mut output, usize::MAX);
        }
        engine.pending.drain(..blocks * engine.block_in);
        self.output_total += output.len() as u64;
        output
    }

    /// Ends the stream: returns the buffered tail so the total output is
    /// `round(input_len * to / from)` samples, then resets for a new stream.
    pub fn flush(&mut self) -> Vec<f32> {
        let expected_total = scaled_len(self.input_total, self.from_hz, self.to_hz);
        let mut output = Vec::new();
        if let Some(engine) = self.engine.as_mut() {
            let mut missing = expected_total.saturating_sub(self.output_total) as usize;
            // The last partial block is padded with silence; further silent blocks push the
            // filter's delayed tail out.
            let mut partial = engine.pending.len();
            while missing > 0 {
                engine.run_block(0, partial);
                partial = 0;
                let before = output.len();
                engine.emit(&mut output, missing);
                missing -= output.len() - before;
            }
            engine.pending.clear();
            engine.fft.reset();
            engine.delay_left = engine.fft.output_delay();
        }
        self.input_total = 0;
        self.output_total = 0;
        output
    }
}

impl FftEngine {
    /// Resamples `len` pending samples from `start` (zero-padded to a whole block) into `block`.
    fn run_block(&mut self, start: usize, len: usize) {
        let frames = self.pending.len() - start;
        let input = InterleavedSlice::new(&self.pending[start..], 1, frames)
            .expect("a mono slice always matches its own length");
        let mut output = InterleavedSlice::new_mut(&mut self.block, 1, self.block_out)
            .expect("the block buffer is sized to one output block");
        let indexing = (len < self.block_in).then(|| Indexing::new().partial_len(len));
        self.fft
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .expect("buffers are sized to the resampler's fixed blocks");
    }

    /// Appends the last block to `output`, dropping what remains of the filter delay and
    /// keeping at most `limit` samples.
    fn emit(&mut self, output: &mut Vec<f32>, limit: usize) {
        let skip = self.delay_left.min(self.block_out);
        self.delay_left -= skip;
        let take = (self.block_out - skip).min(limit);
        output.extend_from_slice(&self.block[skip..skip + take]);
    }
}

impl fmt::Debug for Resampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resampler")
            .field("from_hz", &self.from_hz)
            .field("to_hz", &self.to_hz)
            .field("input_total", &self.input_total)
            .field("output_total", &self.output_total)
            .finish_non_exhaustive()
    }
}

/// Resamples a whole clip in one call (delay removed, length `round(len * to / from)`).
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, MediaError> {
    let mut resampler = Resampler::new(from_hz, to_hz)?;
    let mut output = resampler.process(samples);
    output.extend(resampler.flush());
    Ok(output)
}

/// `len * to / from`, rounded to nearest.
fn scaled_len(len: u64, from_hz: u32, to_hz: u32) -> u64 {
    let (from, to) = (u128::from(from_hz), u128::from(to_hz));
    ((u128::from(len) * to + from / 2) / from) as u64
}

/// Picks the input and output block sizes: the multiple of the smallest exact block (the rates
/// divided by their greatest common divisor) nearest to 20 ms, with both sizes even so the
/// filter delay (half an output block) is a whole number of samples and can be trimmed exactly.
fn block_sizes(from_hz: u32, to_hz: u32) -> Option<(usize, usize)> {
    let divisor = gcd(from_hz, to_hz);
    let unit_in = u64::from(from_hz / divisor);
    let unit_out = u64::from(to_hz / divisor);
    let target_in = u64::from(from_hz) * TARGET_BLOCK_MS / 1000;
    let mut units = ((target_in + unit_in / 2) / unit_in).max(1);
    if (unit_in * units) % 2 == 1 || (unit_out * units) % 2 == 1 {
        units += 1;
    }
    let (block_in, block_out) = (unit_in * units, unit_out * units);
    let max_in = u64::from(from_hz) * u64::from(MAX_BLOCK_MS) / 1000;
    (block_in <= max_in).then_some((block_in as usize, block_out as usize))
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{
        rms, sinad_db, sine, sine_amplitude, sine_phase, zero_crossing_frequency,
    };

    const RATES: [u32; 5] = [8_000, 16_000, 22_050, 24_000, 48_000];

    #[test]
    fn block_sizes_are_even_and_near_20_ms() {
        for from in RATES {
            for to in RATES {
                if from == to {
                    continue;
                }
                let (block_in, block_out) = block_sizes(from, to).unwrap();
                assert_eq!(block_in % 2, 0, "{from}->{to}");
                assert_eq!(block_out % 2, 0, "{from}->{to}");
                assert_eq!(
                    block_in as u64 * u64::from(to),
                    block_out as u64 * u64::from(from)
                );
                let ms = block_in as f64 * 1000.0 / f64::from(from);
                assert!((20.0..=40.0).contains(&ms), "{from}->{to}: {ms} ms");
            }
        }
        // The rates promised by `Resampler::new`.
        let common = [
            8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
        ];
        for from in common {
            for to in common {
                assert!(
                    from == to || block_sizes(from, to).is_some(),
                    "{from}->{to}"
                );
            }
        }
        assert!(block_sizes(44_101, 48_000).is_none());
    }

    #[test]
    fn rejects_unusable_rates() {
        assert!(Resampler::new(0, 16_000).is_err());
        assert!(Resampler::new(16_000, 0).is_err());
        assert!(matches!(
            Resampler::new(44_101, 16_000),
            Err(MediaError::UnsupportedResampleRates { .. })
        ));
    }

    #[test]
    fn every_pair_keeps_a_1khz_sine_clean_aligned_and_sized() {
        for from in RATES {
            for to in RATES {
                let input = sine(1000.0, 0.5, from, from as usize); // one second
                let output = resample(&input, from, to).unwrap();
                let expected_len = to as usize;
                assert_eq!(output.len(), expected_len, "{from}->{to} length");
                // Skip 50 ms at both edges, where the clip starts and ends abruptly.
                let edge = to as usize / 20;
                let middle = &output[edge..output.len() - edge];
                let sinad = sinad_db(middle, 1000.0, to);
                assert!(sinad >= 60.0, "{from}->{to}: SINAD {sinad:.1} dB");
                let amplitude = sine_amplitude(middle, 1000.0, to);
                assert!(
                    (amplitude - 0.5).abs() < 0.005,
                    "{from}->{to}: amplitude {amplitude}"
                );
                let frequency = zero_crossing_frequency(middle, to);
                assert!(
                    (frequency - 1000.0).abs() < 0.1,
                    "{from}->{to}: {frequency} Hz"
                );
                // Time alignment: the phase at `edge` must be that of the input at the same
                // instant, i.e. no leading delay (tolerance: 1/20 of an output sample).
                let expected_phase =
                    2.0 * std::f64::consts::PI * 1000.0 * edge as f64 / f64::from(to);
                let phase = sine_phase(middle, 1000.0, to);
                let mut difference =
                    (phase - expected_phase).rem_euclid(2.0 * std::f64::consts::PI);
                if difference > std::f64::consts::PI {
                    difference -= 2.0 * std::f64::consts::PI;
                }
                let samples_off =
                    difference.abs() / (2.0 * std::f64::consts::PI * 1000.0) * f64::from(to);
                assert!(
                    samples_off < 0.05,
                    "{from}->{to}: {samples_off} samples off"
                );
            }
        }
    }

    /// Level of the middle of `output` relative to a full-scale-0.5 sine, in dB.
    fn level_db(output: &[f32], to: u32) -> f64 {
        let edge = to as usize / 20;
        20.0 * (rms(&output[edge..output.len() - edge]) / (0.5 / 2f64.sqrt())).log10()
    }

    #[test]
    fn telephone_band_passes_flat_and_aliases_are_removed() {
        for from in RATES {
            for to in RATES {
                // 300-3400 Hz, the telephone band, must pass every pair untouched.
                for freq in [300.0, 3400.0] {
                    let output = resample(&sine(freq, 0.5, from, from as usize), from, to).unwrap();
                    let level = level_db(&output, to);
                    assert!(
                        level.abs() < 0.01,
                        "{from}->{to} at {freq} Hz: {level:.3} dB"
                    );
                }
                if to < from {
                    // A tone between the two Nyquist frequencies cannot be represented at the
                    // output rate and must be filtered out, not folded back as an alias.
                    let freq = f64::from(to + from) / 4.0;
                    let output = resample(&sine(freq, 0.5, from, from as usize), from, to).unwrap();
                    let level = level_db(&output, to);
                    assert!(
                        level < -80.0,
                        "{from}->{to} alias of {freq} Hz at {level:.1} dB"
                    );
                }
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_chunking() {
        for from in RATES {
            for to in RATES {
                let input = sine(1000.0, 0.5, from, from as usize / 2 + 37);
                let whole = resample(&input, from, to).unwrap();
                let mut streaming = Resampler::new(from, to).unwrap();
                let mut chunked = Vec::new();
                for chunk in input.chunks(160) {
                    chunked.extend(streaming.process(chunk));
                }
                chunked.extend(streaming.flush());
                assert_eq!(chunked.len(), whole.len(), "{from}->{to}");
                let worst = whole
                    .iter()
                    .zip(&chunked)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(worst <= 1e-4, "{from}->{to}: differs by {worst}");
            }
        }
    }

    #[test]
    fn odd_chunks_and_empty_input_stream_correctly() {
        let input = sine(440.0, 0.3, 8_000, 8_000);
        let mut resampler = Resampler::new(8_000, 48_000).unwrap();
        assert!(resampler.process(&[]).is_empty());
        let mut out = Vec::new();
        let mut rest: &[f32] = &input;
        let mut size = 1;
        while !rest.is_empty() {
            let take = size.min(rest.len());
            out.extend(resampler.process(&rest[..take]));
            rest = &rest[take..];
            size = size * 3 % 1001 + 1;
        }
        out.extend(resampler.flush());
        assert_eq!(out, resample(&input, 8_000, 48_000).unwrap());
    }

    #[test]
    fn flush_resets_for_the_next_stream() {
        let input = sine(1000.0, 0.5, 48_000, 4_800);
        let mut resampler = Resampler::new(48_000, 16_000).unwrap();
        let mut first = resampler.process(&input);
        first.extend(resampler.flush());
        let mut second = resampler.process(&input);
        second.extend(resampler.flush());
        assert_eq!(first.len(), 1_600);
        assert_eq!(first, second);
        // A flush with nothing fed yields nothing.
        assert!(resampler.flush().is_empty());
    }

    #[test]
    fn streaming_latency_is_at_most_one_block_and_a_half() {
        // While a stream runs, output lags input by at most one buffered block plus the
        // filter delay (half a block).
        let mut resampler = Resampler::new(48_000, 16_000).unwrap();
        let mut produced = 0;
        for n in 1..=50 {
            produced += resampler.process(&[0.1; 960]).len();
            let ideal = n * 320;
            assert!(
                ideal - produced <= 480,
                "after {n} frames: {produced} of {ideal}"
            );
        }
    }

    #[test]
    fn identity_passes_through() {
        let input = sine(1000.0, 0.5, 16_000, 1234);
        let mut resampler = Resampler::new(16_000, 16_000).unwrap();
        assert_eq!(resampler.process(&input), input);
        assert!(resampler.flush().is_empty());
    }

    #[test]
    fn short_clips_have_the_right_length() {
        for len in [0, 1, 2, 159, 160, 161, 1000] {
            let input = vec![0.25; len];
            let output = resample(&input, 8_000, 22_050).unwrap();
            assert_eq!(
                output.len(),
                scaled_len(len as u64, 8_000, 22_050) as usize,
                "len {len}"
            );
        }
    }
}
