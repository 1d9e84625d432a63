//! ITU-T G.711 (11/88): µ-law and A-law companding of 16-bit linear PCM, one byte per sample.
//!
//! G.711 specifies µ-law on 14-bit and A-law on 13-bit signed linear samples; the 16-bit
//! samples used here are those scaled by 4 and 8, so every encoded value and every decoded
//! reconstruction level below is the G.711 table value shifted left by 2 (µ-law) or 3 (A-law).

/// µ-law bias: 33 in the 14-bit domain of G.711 Table 2, times 4.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can represent before the bias is added (8158 × 4 − bias).
const ULAW_CLIP: i32 = 32_635;

/// The segment number of a biased µ-law magnitude: the position of its highest set bit above 7.
fn ulaw_segment(biased: i32) -> u8 {
    // `biased` is in 0x84..=0x7FFF, so the highest set bit is bit 7..=14.
    let top = 31 - biased.leading_zeros() as i32;
    u8::try_from((top - 7).clamp(0, 7)).unwrap_or(7)
}

/// Encodes one linear sample as µ-law (G.711 §3, Table 2a).
pub fn ulaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (sign, magnitude) = if s < 0 { (0x80u8, -s) } else { (0, s) };
    let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    let segment = ulaw_segment(biased);
    let mantissa = ((biased >> (i32::from(segment) + 3)) & 0x0F) as u8;
    !(sign | (segment << 4) | mantissa)
}

/// Decodes one µ-law byte to the reconstruction level of G.711 Table 2a (×4).
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let segment = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    // The largest magnitude is (0x78 + 0x84) << 7 − 0x84 = 32124, within i16.
    let m = i16::try_from(magnitude).unwrap_or(i16::MAX);
    if u & 0x80 != 0 { -m } else { m }
}

/// Encodes one linear sample as A-law (G.711 §2, Table 1a): even bits inverted, sign bit set
/// for positive values.
pub fn alaw_encode(sample: i16) -> u8 {
    // 13-bit signed value; negative values use one's complement so that −1 maps to magnitude 0.
    let v = i32::from(sample) >> 3;
    let (sign, magnitude) = if v >= 0 { (0x80u8, v) } else { (0, !v) };
    // magnitude is 0..=4095 (12 bits).
    let code = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let top = 31 - magnitude.leading_zeros() as i32; // 5..=11
        let segment = top - 4; // 1..=7
        ((segment << 4) | ((magnitude >> segment) & 0x0F)) as u8
    };
    (sign | code) ^ 0x55
}

/// Decodes one A-law byte to the reconstruction level of G.711 Table 1a (×8).
pub fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let segment = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0F);
    let magnitude = if segment == 0 {
        (mantissa << 1) + 1
    } else {
        ((mantissa << 1) + 33) << (segment - 1)
    };
    // The largest magnitude is (30 + 33) << 6 = 4032, times 8 = 32256, within i16.
    let m = i16::try_from(magnitude << 3).unwrap_or(i16::MAX);
    if a & 0x80 != 0 { m } else { -m }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reconstruction levels from G.711 Table 2a (14-bit decoder outputs, here ×4) for the
    /// first code of each positive segment: 0, 33, 99, 231, 495, 1023, 2079, 4191.
    #[test]
    fn ulaw_decoder_matches_g711_table_segment_starts() {
        let table14 = [0i32, 33, 99, 231, 495, 1023, 2079, 4191];
        for (segment, level) in table14.iter().enumerate() {
            // A positive code is the complement of (segment << 4 | mantissa), mantissa 0 here.
            let byte = 0xFF ^ ((segment as u8) << 4);
            assert_eq!(i32::from(ulaw_decode(byte)), level * 4, "segment {segment}");
        }
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0); // "negative zero"
        assert_eq!(ulaw_decode(0x80), 32_124); // 8031 × 4, the largest level
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(ulaw_decode(0x8F), 16_764);
        assert_eq!(ulaw_decode(0xFE), 8); // 2 × 4
    }

    #[test]
    fn ulaw_encoder_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_encode(16_764), 0x8F);
        assert_eq!(ulaw_encode(-16_764), 0x0F);
        // The decision value between the levels 0 and 2 (14-bit) is 1, i.e. 4 here.
        assert_eq!(ulaw_encode(3), 0xFF);
        assert_eq!(ulaw_encode(4), 0xFE);
    }

    #[test]
    fn alaw_known_values() {
        // G.711 Table 1a: the smallest positive and negative levels are ±1 (13-bit), ×8.
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32_256); // 4032 × 8, the largest level
        assert_eq!(alaw_decode(0x2A), -32_256);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        // First level of segment 1 (13-bit input 32..33 → output 33), ×8.
        assert_eq!(alaw_encode(32 * 8), 0x10 ^ 0xD5);
        assert_eq!(alaw_decode(0x10 ^ 0xD5), 33 * 8);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            let want = if b == 0x7F { 0xFF } else { b };
            assert_eq!(ulaw_encode(ulaw_decode(b)), want, "µ-law {b:#04x}");
            assert_eq!(alaw_encode(alaw_decode(b)), b, "A-law {b:#04x}");
        }
    }

    #[test]
    fn encoders_are_monotonic_and_error_is_bounded() {
        let mut last = (i32::MIN, i32::MIN);
        for s in i16::MIN..=i16::MAX {
            let u = i32::from(ulaw_decode(ulaw_encode(s)));
            let a = i32::from(alaw_decode(alaw_encode(s)));
            assert!(u >= last.0 && a >= last.1, "not monotonic at {s}");
            last = (u, a);
            // Quantisation error is at most half a step of the segment (plus clipping at the top).
            let err_u = (u - i32::from(s)).abs();
            let err_a = (a - i32::from(s)).abs();
            let bound =
                (i32::from(s).abs() / 16).max(16) + 700 * i32::from(s.unsigned_abs() > 32_000);
            assert!(err_u <= bound, "µ-law error {err_u} at {s}");
            assert!(err_a <= bound, "A-law error {err_a} at {s}");
        }
    }
}
