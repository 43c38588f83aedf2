//! The mel filterbank whisper multiplies each power spectrum by.
//!
//! whisper.cpp reads the filterbank from the model file instead of computing it, so a converted
//! model has to carry the exact matrix OpenAI ships as `mel_filters.npz`. That matrix is
//! `librosa.filters.mel(sr=16000, n_fft=400, n_mels=N)`: triangles on the Slaney mel scale, each
//! scaled to unit area ("slaney" normalisation). This module reproduces librosa's arithmetic step
//! by step (float64 throughout, one rounding to float32 before the area scaling, as numpy does),
//! so the values agree with the shipped file to float32 rounding.

/// Sample rate whisper models are trained on.
const WHISPER_SAMPLE_RATE: u32 = 16_000;
/// FFT length of whisper's 25 ms analysis window at 16 kHz.
const WHISPER_N_FFT: usize = 400;

/// Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
const SLANEY_HZ_PER_MEL: f64 = 200.0 / 3.0;
const SLANEY_LOG_START_HZ: f64 = 1000.0;
const SLANEY_LOG_START_MEL: f64 = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL;

/// Log step of the upper part of the Slaney scale: 27 mels per factor of 6.4 in frequency.
fn slaney_log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= SLANEY_LOG_START_HZ {
        SLANEY_LOG_START_MEL + (hz / SLANEY_LOG_START_HZ).ln() / slaney_log_step()
    } else {
        hz / SLANEY_HZ_PER_MEL
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= SLANEY_LOG_START_MEL {
        SLANEY_LOG_START_HZ * (slaney_log_step() * (mel - SLANEY_LOG_START_MEL)).exp()
    } else {
        SLANEY_HZ_PER_MEL * mel
    }
}

/// A matrix of triangular mel filters over the bins of a real FFT, row-major
/// `[n_mels][n_fft_bins]`: row `m` holds the weight of every FFT bin in mel band `m`.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilterbank {
    n_mels: usize,
    n_fft_bins: usize,
    weights: Vec<f32>,
}

impl MelFilterbank {
    /// The filterbank of a whisper model with `n_mels` bands (80 for every model up to
    /// large-v2, 128 for large-v3), over the 201 bins of whisper's 400-point FFT at 16 kHz.
    pub fn whisper(n_mels: usize) -> Self {
        Self::slaney(WHISPER_SAMPLE_RATE, WHISPER_N_FFT, n_mels)
    }

    /// `librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm="slaney")`.
    fn slaney(sample_rate: u32, n_fft: usize, n_mels: usize) -> Self {
        let n_fft_bins = n_fft / 2 + 1;

        // np.fft.rfftfreq(n_fft, d=1/sr), written the way numpy computes it.
        let bin_spacing = 1.0 / (n_fft as f64 * (1.0 / f64::from(sample_rate)));
        let bin_hz: Vec<f64> = (0..n_fft_bins).map(|k| k as f64 * bin_spacing).collect();

        // n_mels + 2 band edges evenly spaced in mel (np.linspace, whose last point is exact).
        let n_edges = n_mels + 2;
        let min_mel = hz_to_mel(0.0);
        let max_mel = hz_to_mel(f64::from(sample_rate) / 2.0);
        let step = (max_mel - min_mel) / (n_edges - 1) as f64;
        let edge_hz: Vec<f64> = (0..n_edges)
            .map(|i| {
                let mel = if i == n_edges - 1 {
                    max_mel
                } else {
                    i as f64 * step + min_mel
                };
                mel_to_hz(mel)
            })
            .collect();

        let mut weights = Vec::with_capacity(n_mels * n_fft_bins);
        for band in 0..n_mels {
            let (low, centre, high) = (edge_hz[band], edge_hz[band + 1], edge_hz[band + 2]);
            let area_scale = 2.0 / (high - low);
            weights.extend(bin_hz.iter().map(|&f| {
                let rising = -(low - f) / (centre - low);
                let falling = (high - f) / (high - centre);
                // np.maximum(0, x) keeps x when x is -0.0 (band 0, bin 0 holds -0.0 in the
                // shipped file), so compare rather than call f64::max.
                let peak = rising.min(falling);
                let clipped = if peak < 0.0 { 0.0 } else { peak };
                // librosa stores the triangle in a float32 array first, then scales it in
                // float64 and rounds again; doing the same keeps the last bit identical.
                let triangle = clipped as f32;
                (f64::from(triangle) * area_scale) as f32
            }));
        }

        Self {
            n_mels,
            n_fft_bins,
            weights,
        }
    }

    /// Number of mel bands (rows).
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Number of FFT bins each band spans (columns): `n_fft / 2 + 1`.
    pub fn n_fft_bins(&self) -> usize {
        self.n_fft_bins
    }

    /// All weights, row-major `[n_mels][n_fft_bins]`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row sums of `mel_80` from openai-whisper's `whisper/assets/mel_filters.npz`
    /// (release 20250625), summed in float64.
    const REFERENCE_ROW_SUMS: [f64; 80] = [
        0.02486259490251541,
        0.024862593738362193,
        0.024862594436854124,
        0.02486259490251541,
        0.024862593971192837,
        0.024862593039870262,
        0.024862593039870262,
        0.024862593039870262,
        0.024862593971192837,
        0.02486259350553155,
        0.024862592574208975,
        0.024862593971192837,
        0.024862593330908567,
        0.025880683213472366,
        0.025835324078798294,
        0.02486259350553155,
        0.024862593971192837,
        0.024862593039870262,
        0.024862593039870262,
        0.024862593971192837,
        0.024862593971192837,
        0.024862593039870262,
        0.024862593039870262,
        0.024862593039870262,
        0.02486259490251541,
        0.024914436042308807,
        0.025432823225855827,
        0.0253476919606328,
        0.025259895715862513,
        0.025079278275370598,
        0.02481880784034729,
        0.02449009846895933,
        0.024103514850139618,
        0.026483861031010747,
        0.025296074687503278,
        0.02319991495460272,
        0.026987506542354822,
        0.023507524048909545,
        0.026231922209262848,
        0.02339493765612133,
        0.026664861012250185,
        0.024523787666112185,
        0.024640648858621716,
        0.024950320017524064,
        0.02511633245740086,
        0.02515684487298131,
        0.025088174385018647,
        0.02492496045306325,
        0.024680318543687463,
        0.025235229346435517,
        0.025129430112428963,
        0.02478999237064272,
        0.02489705220796168,
        0.02539173001423478,
        0.02483308466617018,
        0.024956808076240122,
        0.024961331160739064,
        0.024862290476448834,
        0.025315728620626032,
        0.02482376627449412,
        0.02510154154151678,
        0.024853391194483265,
        0.025032290490344167,
        0.025084381486522034,
        0.025026101153343916,
        0.02487219765316695,
        0.0251194650772959,
        0.024881786812329665,
        0.025036489278136287,
        0.025067550042876974,
        0.024991078593302518,
        0.024901229866372887,
        0.025078217964619398,
        0.024990130099467933,
        0.02496992688247701,
        0.02508481378754368,
        0.0249231467169011,
        0.02501575164933456,
        0.025022621965035796,
        0.024925339792389423,
    ];

    /// (band, bin, value) samples of the same `mel_80` matrix: the first and last bands,
    /// zeros outside a triangle, and the bands either side of the 1 kHz knee of the Slaney
    /// scale (bands 25 to 27), where the spacing switches from linear to logarithmic.
    const REFERENCE_WEIGHTS: [(usize, usize, f32); 20] = [
        (0, 0, -0.0),
        (0, 1, 0.024862595),
        (0, 2, 0.0),
        (1, 1, 0.001_990_822),
        (1, 2, 0.022871772),
        (10, 10, 0.019908218),
        (10, 11, 0.004954375),
        (25, 0, 0.0),
        (25, 24, 0.02087401),
        (25, 25, 0.0040404256),
        (26, 25, 0.022114217),
        (26, 26, 0.003318606),
        (27, 26, 0.021736724),
        (27, 27, 0.0036109677),
        (40, 42, 0.0054111048),
        (40, 43, 0.014_735_566),
        (40, 44, 0.00651819),
        (79, 186, 0.00036674167),
        (79, 189, 0.0017657268),
        (79, 200, 0.0),
    ];

    #[test]
    fn whisper_bank_has_whisper_shape() {
        let bank = MelFilterbank::whisper(80);
        assert_eq!(bank.n_mels(), 80);
        assert_eq!(bank.n_fft_bins(), 201);
        assert_eq!(bank.weights().len(), 80 * 201);
        assert!(bank.weights().iter().all(|w| w.is_finite() && *w >= 0.0));
    }

    #[test]
    fn matches_whisper_mel_filters_npz_samples() {
        let bank = MelFilterbank::whisper(80);
        for &(band, bin, expected) in &REFERENCE_WEIGHTS {
            let got = bank.weights()[band * bank.n_fft_bins() + bin];
            // A few float32 ulps (~2e-9 each at this magnitude): the arithmetic is librosa's,
            // only the platform's ln/exp may differ in the last bit.
            assert!(
                (got - expected).abs() <= 1e-8,
                "band {band}, bin {bin}: {got:e} vs reference {expected:e}"
            );
        }
    }

    #[test]
    fn matches_whisper_mel_filters_npz_row_sums() {
        let bank = MelFilterbank::whisper(80);
        for (band, row) in bank.weights().chunks(bank.n_fft_bins()).enumerate() {
            let sum: f64 = row.iter().map(|&w| f64::from(w)).sum();
            let expected = REFERENCE_ROW_SUMS[band];
            assert!(
                (sum - expected).abs() <= 1e-8,
                "band {band}: sum {sum} vs reference {expected}"
            );
        }
    }
}
