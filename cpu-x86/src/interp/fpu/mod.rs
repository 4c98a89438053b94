//! Floating-point helpers shared by the x87 and SSE instruction groups: rounding-mode
//! decoding, the double-extended type, a correctly rounded square root for any
//! `rustc_apfloat` format, and packed BCD (SDM Vol. 1 §4.2, §4.7, §8.1.5, §8.2).

pub mod transcendental;

use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::{Category, Float, Round, Status, StatusAnd};

/// The x87 double-extended format (1 sign, 15 exponent, 64 significand bits with an
/// explicit integer bit).
pub type F80 = X87DoubleExtended;

/// The rounding mode selected by a 2-bit RC field (FCW bits 10-11, MXCSR bits 13-14):
/// 0 nearest (even), 1 down, 2 up, 3 toward zero (SDM Vol. 1 Table 4-8).
pub fn round_of(rc: u32) -> Round {
    match rc & 3 {
        0 => Round::NearestTiesToEven,
        1 => Round::TowardNegative,
        2 => Round::TowardPositive,
        _ => Round::TowardZero,
    }
}

/// The correctly rounded square root of `x` in its own format with the IEEE status
/// (invalid for negative non-zero inputs, inexact when rounded). NaN inputs come back
/// unchanged; callers apply their architecture's NaN rules first.
pub fn sqrt<F: Float>(x: F, round: Round) -> StatusAnd<F> {
    match x.category() {
        Category::NaN | Category::Zero => return Status::OK.and(x),
        _ if x.is_negative() => return Status::INVALID_OP.and(F::qnan(None)),
        Category::Infinity => return Status::OK.and(x),
        Category::Normal => {}
    }
    // x = m * 2^e with m a 64-bit integer whose top bit is set (exact: every format here
    // has at most 64 significand bits).
    let lg = x.ilogb();
    let m = x.scalbn(63 - lg).to_u128(64).value;
    let mut e = lg - 63;
    let mut m = m;
    if e & 1 != 0 {
        m <<= 1;
        e -= 1;
    }
    // Digit-by-digit root of m * 2^68: about 67 root bits, so the rounding to at most 64
    // bits sees a guard bit; the remainder gives the sticky bit.
    const EXTRA_PAIRS: i32 = 34;
    let (mut root, mut rem) = (0u128, 0u128);
    for i in 0..(33 + EXTRA_PAIRS) {
        let pair = if i < 33 { (m >> (64 - 2 * i)) & 3 } else { 0 };
        rem = (rem << 2) | pair;
        let trial = (root << 2) | 1;
        root <<= 1;
        if rem >= trial {
            rem -= trial;
            root |= 1;
        }
    }
    let sticky = rem != 0;
    let r = F::from_u128_r((root << 1) | sticky as u128, round);
    let status = if sticky { r.status | Status::INEXACT } else { r.status };
    status.and(r.value.scalbn(e / 2 - EXTRA_PAIRS - 1))
}

/// The sign and magnitude of an 80-bit packed BCD operand (18 digits, sign in bit 79).
/// Non-decimal digits are weighted like decimal ones (what hardware loads for them).
pub fn bcd_to_parts(b: &[u8; 10]) -> (bool, u64) {
    let mut v: u64 = 0;
    for &byte in b[..9].iter().rev() {
        v = v * 100 + ((byte >> 4) * 10) as u64 + (byte & 0xf) as u64;
    }
    (b[9] & 0x80 != 0, v)
}

/// The packed BCD image of a sign and a magnitude below 10^18.
pub fn parts_to_bcd(negative: bool, magnitude: u64) -> [u8; 10] {
    let mut b = [0u8; 10];
    let mut a = magnitude;
    for byte in b[..9].iter_mut() {
        let two = (a % 100) as u8;
        *byte = ((two / 10) << 4) | (two % 10);
        a /= 100;
    }
    if negative {
        b[9] = 0x80;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_apfloat::ieee::{Double, Single};

    #[test]
    fn sqrt_matches_the_host_for_doubles() {
        for &v in &[2.0f64, 3.0, 0.5, 1e300, 1e-310, 12345.678, 4.0, 1.0000000000000002] {
            let r = sqrt(Double::from_bits(v.to_bits() as u128), Round::NearestTiesToEven);
            assert_eq!(r.value.to_bits() as u64, v.sqrt().to_bits(), "sqrt({v})");
        }
    }

    #[test]
    fn sqrt_rounding_direction_and_exact_squares() {
        let two = Single::from_bits(2.0f32.to_bits() as u128);
        let up = sqrt(two, Round::TowardPositive).value.to_bits() as u32;
        let down = sqrt(two, Round::TowardNegative).value.to_bits() as u32;
        assert_eq!(up, down + 1);
        assert!(f32::from_bits(down) < std::f32::consts::SQRT_2 || f32::from_bits(up) > std::f32::consts::SQRT_2);
        let nine = F80::from_u128(9).value;
        let r = sqrt(nine, Round::NearestTiesToEven);
        assert_eq!((r.value.to_bits(), r.status), (F80::from_u128(3).value.to_bits(), Status::OK));
        let neg = Double::from_bits((-4.0f64).to_bits() as u128);
        assert_eq!(sqrt(neg, Round::NearestTiesToEven).status, Status::INVALID_OP);
    }

    #[test]
    fn f80_two_to_the_64_squared_root_is_exact() {
        // sqrt(2^128) = 2^64 in extended precision.
        let x = F80::from_u128(1 << 127).value.scalbn(1);
        let r = sqrt(x, Round::NearestTiesToEven);
        assert_eq!(r.value.to_bits(), F80::from_u128(1 << 64).value.to_bits());
    }

    #[test]
    fn bcd_round_trip() {
        let b = parts_to_bcd(true, 123_456_789_012_345_678);
        assert_eq!(b[0], 0x78);
        assert_eq!(b[9], 0x80);
        assert_eq!(bcd_to_parts(&b), (true, 123_456_789_012_345_678));
        assert_eq!(bcd_to_parts(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), (false, 100));
    }
}
