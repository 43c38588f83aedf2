//! G.711 companding (ITU-T G.711): mu-law (PCMU, North America/Japan) and A-law (PCMA, the rest
//! of the world), the codecs every SIP trunk speaks.
//!
//! The bit manipulations follow the ITU reference algorithm (as in the classic Sun/CCITT
//! `g711.c`): 16-bit linear in, 8-bit code out, and back. Decoding uses 256-entry tables built at
//! compile time, because decoding runs on every received packet.

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// mu-law, RTP payload type 0 (PCMU).
    MuLaw,
    /// A-law, RTP payload type 8 (PCMA).
    ALaw,
}

impl G711Law {
    /// Encodes one 16-bit linear sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            G711Law::MuLaw => linear_to_mulaw(sample),
            G711Law::ALaw => linear_to_alaw(sample),
        }
    }

    /// Decodes one 8-bit code.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            G711Law::MuLaw => mulaw_to_linear(code),
            G711Law::ALaw => alaw_to_linear(code),
        }
    }

    /// Encodes 16-bit linear samples, one code per sample.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            G711Law::MuLaw => samples.iter().map(|&s| linear_to_mulaw(s)).collect(),
            G711Law::ALaw => samples.iter().map(|&s| linear_to_alaw(s)).collect(),
        }
    }

    /// Decodes 8-bit codes, one sample per code.
    pub fn decode(self, codes: &[u8]) -> Vec<i16> {
        let table = match self {
            G711Law::MuLaw => &MULAW_TABLE,
            G711Law::ALaw => &ALAW_TABLE,
        };
        codes.iter().map(|&c| table[usize::from(c)]).collect()
    }
}

/// mu-law bias added before segment search (0x84 = 132 on the 16-bit scale).
const MULAW_BIAS: i32 = 0x84;
/// Largest magnitude mu-law can represent, on the 14-bit scale.
const MULAW_CLIP: i32 = 8159;
/// Upper ends of the eight mu-law segments, on the biased 14-bit scale.
const MULAW_SEGMENT_ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// Upper ends of the eight A-law segments, on the 13-bit scale.
const ALAW_SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

static MULAW_TABLE: [i16; 256] = build_table(G711Law::MuLaw);
static ALAW_TABLE: [i16; 256] = build_table(G711Law::ALaw);

const fn build_table(law: G711Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = match law {
            G711Law::MuLaw => expand_mulaw(code as u8),
            G711Law::ALaw => expand_alaw(code as u8),
        };
        code += 1;
    }
    table
}

/// Index of the first segment whose end is at least `value` (8 if none).
fn segment(value: i32, ends: &[i32; 8]) -> i32 {
    ends.iter().position(|&end| value <= end).unwrap_or(8) as i32
}

/// Encodes a 16-bit linear sample as mu-law.
fn linear_to_mulaw(sample: i16) -> u8 {
    // mu-law works on 14 bits; the arithmetic shift keeps negative values rounding towards
    // minus infinity, as the reference does.
    let mut value = i32::from(sample) >> 2;
    let mask = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    value = value.min(MULAW_CLIP) + (MULAW_BIAS >> 2);
    let seg = segment(value, &MULAW_SEGMENT_ENDS);
    let code = if seg >= 8 {
        // Only the clipped maximum lands here: the largest code of the top segment.
        0x7F
    } else {
        (seg << 4) | ((value >> (seg + 1)) & 0x0F)
    };
    (code ^ mask) as u8
}

/// Decodes a mu-law code to 16-bit linear.
///
/// Both zero codes (0xFF and 0x7F, "negative zero") decode to 0.
fn mulaw_to_linear(code: u8) -> i16 {
    MULAW_TABLE[usize::from(code)]
}

const fn expand_mulaw(code: u8) -> i16 {
    // Codes are transmitted inverted so that silence has many 1 bits.
    let inverted = !code as i32;
    let magnitude = (((inverted & 0x0F) << 3) + MULAW_BIAS) << ((inverted & 0x70) >> 4);
    let value = if inverted & 0x80 != 0 {
        MULAW_BIAS - magnitude
    } else {
        magnitude - MULAW_BIAS
    };
    value as i16
}

/// Encodes a 16-bit linear sample as A-law.
fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13 bits.
    let mut value = i32::from(sample) >> 3;
    // 0x55 toggles the even bits, as G.711 requires for transmission.
    let mask = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &ALAW_SEGMENT_ENDS);
    let code = if seg >= 8 {
        0x7F
    } else {
        let shift = if seg < 2 { 1 } else { seg };
        (seg << 4) | ((value >> shift) & 0x0F)
    };
    (code ^ mask) as u8
}

/// Decodes an A-law code to 16-bit linear.
fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[usize::from(code)]
}

const fn expand_alaw(code: u8) -> i16 {
    let toggled = (code ^ 0x55) as i32;
    let mantissa = (toggled & 0x0F) << 4;
    let seg = (toggled & 0x70) >> 4;
    let magnitude = match seg {
        0 => mantissa + 8,
        _ => (mantissa + 0x108) << (seg - 1),
    };
    let value = if toggled & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    };
    value as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mu-law reconstruction values written from the G.711 tables rather than the bit tricks:
    /// in segment `e` with step `m`, the 14-bit magnitude is `(2m + 33) * 2^e - 33`, scaled by 4.
    fn itu_mulaw(code: u8) -> i16 {
        let inverted = !code;
        let exponent = u32::from((inverted >> 4) & 0x07);
        let step = i32::from(inverted & 0x0F);
        let magnitude = ((2 * step + 33) * (1 << exponent) - 33) * 4;
        let positive = inverted & 0x80 == 0;
        (if positive { magnitude } else { -magnitude }) as i16
    }

    /// A-law reconstruction values: the midpoint of quantisation interval `m` in segment `s`.
    /// Segments 0 and 1 have step 16 (16-bit scale) from 0 and 256; segment `s >= 2` starts at
    /// `128 << s` with step `8 << s`.
    fn itu_alaw(code: u8) -> i16 {
        let toggled = code ^ 0x55;
        let seg = u32::from((toggled >> 4) & 0x07);
        let step_index = i32::from(toggled & 0x0F);
        let (start, step) = match seg {
            0 => (0, 16),
            1 => (256, 16),
            s => (128 << s, 8 << s),
        };
        let magnitude = start + step * step_index + step / 2;
        let positive = toggled & 0x80 != 0;
        (if positive { magnitude } else { -magnitude }) as i16
    }

    #[test]
    fn known_codes() {
        assert_eq!(mulaw_to_linear(0xFF), 0);
        assert_eq!(mulaw_to_linear(0x7F), 0);
        assert_eq!(mulaw_to_linear(0x00), -32124);
        assert_eq!(mulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_mulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
    }

    #[test]
    fn all_codes_decode_to_itu_values() {
        for code in 0..=255u8 {
            assert_eq!(mulaw_to_linear(code), itu_mulaw(code), "mu-law {code:#04x}");
            assert_eq!(alaw_to_linear(code), itu_alaw(code), "A-law {code:#04x}");
        }
    }

    #[test]
    fn encode_inverts_decode_for_every_code() {
        for code in 0..=255u8 {
            let expected_mulaw = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_mulaw(mulaw_to_linear(code)),
                expected_mulaw,
                "mu-law {code:#04x}"
            );
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn encoding_is_monotonic_and_saturates() {
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            let mut previous = i16::MIN;
            for sample in (i16::MIN..=i16::MAX).step_by(3) {
                let decoded = law.decode_sample(law.encode_sample(sample));
                assert!(decoded >= previous, "{law:?} not monotonic at {sample}");
                previous = decoded;
            }
        }
        assert_eq!(linear_to_mulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_mulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn sine_round_trip_error_is_bounded() {
        let sine: Vec<i16> = (0..8000)
            .map(|n| {
                let t = n as f64 / 8000.0;
                (20_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()).round() as i16
            })
            .collect();
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            let decoded = law.decode(&law.encode(&sine));
            assert_eq!(decoded.len(), sine.len());
            let mut signal = 0.0f64;
            let mut noise = 0.0f64;
            for (&original, &restored) in sine.iter().zip(&decoded) {
                let error = i32::from(original) - i32::from(restored);
                // Quantisation error is at most half a step; the largest step is 1024 (mu-law)
                // or 1024 (A-law segment 7) on the 16-bit scale.
                assert!(error.abs() <= 512, "{law:?}: {original} -> {restored}");
                // Companding keeps the error proportional to the signal: about 1/32 of it.
                assert!(
                    error.abs() <= i32::from(original).abs() / 16 + 16,
                    "{law:?}: {original} -> {restored}"
                );
                signal += f64::from(original).powi(2);
                noise += f64::from(error).powi(2);
            }
            let snr_db = 10.0 * (signal / noise).log10();
            // G.711 gives about 38 dB SNR for loud signals.
            assert!(snr_db > 35.0, "{law:?} SNR {snr_db:.1} dB");
        }
    }
}
