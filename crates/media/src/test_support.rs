//! What the unit tests share: test signals and measurements.

use std::f64::consts::PI;

/// `len` samples of a sine at `freq_hz` with peak `amplitude`, starting at phase 0.
pub fn sine(freq_hz: f64, amplitude: f64, sample_rate: u32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|n| {
            (amplitude * (2.0 * PI * freq_hz * n as f64 / f64::from(sample_rate)).sin()) as f32
        })
        .collect()
}

/// Root mean square level.
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Signal to noise-and-distortion ratio of `samples` against the best-fitting sine at
/// `freq_hz` (free amplitude, phase and DC offset), in dB.
pub fn sinad_db(samples: &[f32], freq_hz: f64, sample_rate: u32) -> f64 {
    let fit = fit_sine(samples, freq_hz, sample_rate);
    let mut signal = 0.0;
    let mut residual = 0.0;
    for (n, &s) in samples.iter().enumerate() {
        let model = fit.value(n);
        signal += (model - fit.dc).powi(2);
        residual += (f64::from(s) - model).powi(2);
    }
    10.0 * (signal / residual.max(1e-30)).log10()
}

/// Amplitude of the best-fitting sine at `freq_hz`.
pub fn sine_amplitude(samples: &[f32], freq_hz: f64, sample_rate: u32) -> f64 {
    let fit = fit_sine(samples, freq_hz, sample_rate);
    fit.sin.hypot(fit.cos)
}

/// Phase (radians) at sample 0 of the best-fitting sine `A sin(wt + phase)`.
pub fn sine_phase(samples: &[f32], freq_hz: f64, sample_rate: u32) -> f64 {
    let fit = fit_sine(samples, freq_hz, sample_rate);
    fit.cos.atan2(fit.sin)
}

/// Frequency of a clean tone, from the spacing of its rising zero crossings (interpolated).
pub fn zero_crossing_frequency(samples: &[f32], sample_rate: u32) -> f64 {
    let mut crossings = Vec::new();
    for (n, pair) in samples.windows(2).enumerate() {
        let (a, b) = (f64::from(pair[0]), f64::from(pair[1]));
        if a < 0.0 && b >= 0.0 {
            crossings.push(n as f64 + a / (a - b));
        }
    }
    match (crossings.first(), crossings.last()) {
        (Some(first), Some(last)) if crossings.len() > 1 => {
            (crossings.len() - 1) as f64 * f64::from(sample_rate) / (last - first)
        }
        _ => 0.0,
    }
}

/// Normalised cross-correlation of `test` against `reference` at the lag (0..=max_lag samples,
/// `test` delayed) where it is highest.
pub fn best_lag_correlation(reference: &[f32], test: &[f32], max_lag: usize) -> (usize, f64) {
    let mut best = (0, f64::MIN);
    for lag in 0..=max_lag {
        let len = reference.len().min(test.len().saturating_sub(lag));
        let (mut dot, mut ref_energy, mut test_energy) = (0.0, 0.0, 0.0);
        for n in 0..len {
            let (r, t) = (f64::from(reference[n]), f64::from(test[n + lag]));
            dot += r * t;
            ref_energy += r * r;
            test_energy += t * t;
        }
        let correlation = dot / (ref_energy * test_energy).sqrt().max(1e-30);
        if correlation > best.1 {
            best = (lag, correlation);
        }
    }
    best
}

struct SineFit {
    sin: f64,
    cos: f64,
    dc: f64,
    omega: f64,
}

impl SineFit {
    fn value(&self, n: usize) -> f64 {
        let phase = self.omega * n as f64;
        self.sin * phase.sin() + self.cos * phase.cos() + self.dc
    }
}

/// Least-squares fit of `a sin(wn) + b cos(wn) + c` (3x3 normal equations).
fn fit_sine(samples: &[f32], freq_hz: f64, sample_rate: u32) -> SineFit {
    let omega = 2.0 * PI * freq_hz / f64::from(sample_rate);
    let mut m = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for (n, &s) in samples.iter().enumerate() {
        let basis = [(omega * n as f64).sin(), (omega * n as f64).cos(), 1.0];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += basis[i] * basis[j];
            }
            v[i] += basis[i] * f64::from(s);
        }
    }
    let [sin, cos, dc] = solve3(m, v);
    SineFit {
        sin,
        cos,
        dc,
        omega,
    }
}

/// Solves a 3x3 linear system by Cramer's rule.
fn solve3(m: [[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    let det = |a: [[f64; 3]; 3]| {
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    };
    let d = det(m);
    let mut out = [0.0; 3];
    for (col, value) in out.iter_mut().enumerate() {
        let mut replaced = m;
        for row in 0..3 {
            replaced[row][col] = v[row];
        }
        *value = det(replaced) / d;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_recognise_a_clean_sine() {
        let tone = sine(1000.0, 0.5, 16_000, 16_000);
        assert!(sinad_db(&tone, 1000.0, 16_000) > 100.0);
        assert!((sine_amplitude(&tone, 1000.0, 16_000) - 0.5).abs() < 1e-4);
        assert!(sine_phase(&tone, 1000.0, 16_000).abs() < 1e-4);
        assert!((zero_crossing_frequency(&tone, 16_000) - 1000.0).abs() < 0.01);
        // A different frequency does not fit.
        assert!(sinad_db(&tone, 1010.0, 16_000) < 10.0);
        let (lag, correlation) = best_lag_correlation(&tone, &tone, 20);
        assert_eq!(lag, 0);
        assert!(correlation > 0.999_999);
    }
}
