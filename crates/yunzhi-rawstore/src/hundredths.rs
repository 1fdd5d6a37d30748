//! Readings as whole hundredths: the form day files keep them in.
//!
//! The agent rounds every reading to hundredths before it sends it
//! (`round(x * 100) / 100`), so a reading is an integer count of hundredths
//! in disguise. Stored as that integer, a slowly moving percentage
//! delta-packs into a few bits, where the same value as an `f32` spends 24
//! bits of mantissa on the binary expansion of a decimal fraction.
//!
//! The conversion is exact for every reading the agent can send: the `f32`
//! nearest to `n / 100` turns back into `n`, and `n` into that same `f32`
//! (the tests walk every hundredth up to 2^18 and successive `f32` values
//! beyond). Above
//! 2^17 an `f32` is coarser than a hundredth; there the stored integer is
//! `100 × v` rounded, which turns back into the same `f32` as well.
//!
//! What the conversion changes, and nothing else:
//! - digits finer than a hundredth (from a writer other than the agent) are
//!   rounded away, half away from zero;
//! - `-0.0` becomes `0.0`;
//! - NaN, the infinities and values beyond the column's range (more than
//!   21 474 836.47 for a percentage, 10^16 for a byte rate: no reading) have
//!   no hundredths; they are stored as a missing value (Parquet null) and
//!   read back as NaN.

/// Largest magnitude in hundredths a percentage column holds (`INT32`).
pub(crate) const PCT_LIMIT: i64 = i32::MAX as i64;
/// Largest magnitude in hundredths a byte-rate column holds: 18 decimal
/// digits, the most a `DECIMAL(18, 2)` in an `INT64` promises.
pub(crate) const RATE_LIMIT: i64 = 999_999_999_999_999_999;

/// Stand-ins for a missing (NaN) reading where hundredths are handled as
/// plain integers: no stored value can be either, since the ranges above
/// are symmetric.
pub(crate) const NO_PCT: i32 = i32::MIN;
pub(crate) const NO_RATE: i64 = i64::MIN;

/// The hundredths in `v`, if it has any within `limit`.
pub(crate) fn to_hundredths(v: f32, limit: i64) -> Option<i64> {
    // Exact: an f32 has 24 significant bits, 100 needs 7, an f64 holds 53.
    let x = f64::from(v) * 100.0;
    // Also false for NaN.
    if x.abs() < limit as f64 + 0.5 { Some(round_half_away(x)) } else { None }
}

/// `x.round()` for `x` of at most 31 significant bits (an `f32` times 100)
/// and magnitude below 2^62, without the call into libm that `round` is
/// on x86-64's baseline instruction set (a tenth of a seal's time).
///
/// Adding ±0.5 is exact for such an `x` of magnitude 2^-23 or more (the
/// sum needs at most 53 bits), so truncating the sum rounds half away from
/// zero; below that the sum stays under 1 in magnitude and truncates to 0,
/// as it should.
fn round_half_away(x: f64) -> i64 {
    (x + 0.5f64.copysign(x)) as i64
}

/// The reading `n` hundredths stand for: the `f32` nearest to `n / 100`,
/// reached the way the agent's own rounding reaches it (through `f64`).
pub(crate) fn from_hundredths(n: i64) -> f32 {
    (n as f64 / 100.0) as f32
}

/// What a reading becomes once stored: itself for anything the agent sends.
pub(crate) fn canonical(v: f32, limit: i64) -> f32 {
    to_hundredths(v, limit).map_or(f32::NAN, from_hundredths)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the agent sends, as the server turns it into a `Row` field.
    fn agent(x: f64) -> f32 {
        ((x * 100.0).round() / 100.0) as f32
    }

    #[test]
    fn every_hundredth_below_2_to_the_17_survives_the_round_trip_bit_for_bit() {
        // Every reading below 131 072 (f32 holds each hundredth there); a
        // stride would miss the odd one.
        for n in 0..(100i64 << 17) {
            let v = from_hundredths(n);
            assert_eq!(to_hundredths(v, RATE_LIMIT), Some(n), "{n}");
            assert_eq!(from_hundredths(-n), -v);
            assert_eq!(to_hundredths(-v, RATE_LIMIT), Some(-n));
        }
        // Above, several hundredths share an f32: the f32 survives.
        for n in (100i64 << 17)..(100i64 << 18) {
            let v = from_hundredths(n);
            let back = to_hundredths(v, RATE_LIMIT).expect("in range");
            assert_eq!(from_hundredths(back).to_bits(), v.to_bits(), "{n}");
        }
    }

    #[test]
    fn a_rate_coarser_than_a_hundredth_comes_back_as_the_same_f32() {
        // From 2^17 up an f32 cannot hold every hundredth, so every f32 is
        // the nearest to some hundredth, and must survive. Walk successive
        // f32 values across several binades.
        for start in [131_072.0f32, 1.0e6, 3.3e7, 1.25e10, 9.0e15] {
            let mut v = start;
            for _ in 0..100_000 {
                let n = to_hundredths(v, RATE_LIMIT).expect("in range");
                assert_eq!(from_hundredths(n).to_bits(), v.to_bits(), "{v}");
                v = f32::from_bits(v.to_bits() + 1);
            }
        }
    }

    #[test]
    fn readings_the_agent_sends_are_stored_unchanged() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..1_000_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Log-uniform from 10^-3 to 10^12 B/s: idle to a 10 Gbit/s link and far beyond.
            let x = 10f64.powf(-3.0 + 15.0 * (rng >> 11) as f64 / (1u64 << 53) as f64);
            let v = agent(x);
            assert_eq!(canonical(v, RATE_LIMIT).to_bits(), v.to_bits(), "{x}");
        }
        for v in [0.0f32, 0.01, 0.1, 0.5, 1.0, 12.34, 99.99, 100.0] {
            assert_eq!(canonical(v, PCT_LIMIT).to_bits(), v.to_bits());
            assert_eq!(canonical(v, RATE_LIMIT).to_bits(), v.to_bits());
        }
        assert_eq!(to_hundredths(100.0, PCT_LIMIT), Some(10_000));
        assert_eq!(to_hundredths(0.0, PCT_LIMIT), Some(0));
    }

    #[test]
    fn the_quick_rounding_agrees_with_f64_round_for_every_kind_of_f32() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..2_000_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Random bit patterns cover every exponent; halves and their
            // neighbours are where rounding goes wrong.
            let v = match i % 4 {
                0 => f32::from_bits(rng as u32),
                1 => (rng % 2_000_000) as f32 / 100.0 + 0.005,
                2 => f32::from_bits(((rng % 1_000_000) as f32 + 0.5).to_bits() + (rng >> 40) as u32 % 3 - 1),
                _ => -((rng % 100_000) as f32) - 0.5,
            };
            let x = f64::from(v) * 100.0;
            if x.is_finite() && x.abs() < 4e18 {
                assert_eq!(round_half_away(x), x.round() as i64, "{v:e}");
            }
        }
    }

    #[test]
    fn storing_twice_changes_nothing_more_than_storing_once() {
        for v in [1e-7f32, 0.004_999, 0.005, 0.015, 1.2345, 131_072.03, 2.5e7, -3.3333] {
            let once = canonical(v, RATE_LIMIT);
            assert_eq!(canonical(once, RATE_LIMIT).to_bits(), once.to_bits(), "{v}");
        }
        // Finer digits are rounded half away from zero (0.125 and -0.125
        // are exact in binary, so they are true halves); -0 becomes 0.
        assert_eq!(canonical(0.125, PCT_LIMIT), 0.13);
        assert_eq!(canonical(-0.125, PCT_LIMIT), -0.13);
        assert_eq!(canonical(0.004_9, PCT_LIMIT), 0.0);
        assert_eq!(canonical(12.345_6, PCT_LIMIT), 12.35);
        assert_eq!(canonical(-0.0, PCT_LIMIT).to_bits(), 0.0f32.to_bits());
    }

    #[test]
    fn nan_infinities_and_impossible_magnitudes_have_no_hundredths() {
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e7, -3e7, f32::MAX] {
            assert_eq!(to_hundredths(v, PCT_LIMIT), None, "{v}");
            assert!(canonical(v, PCT_LIMIT).is_nan());
        }
        for v in [f32::NAN, f32::INFINITY, 1.1e16, f32::MAX] {
            assert_eq!(to_hundredths(v, RATE_LIMIT), None, "{v}");
        }
        // The largest percentage and byte rate a column holds.
        assert_eq!(to_hundredths(21_474_836.0, PCT_LIMIT), Some(2_147_483_600));
        let huge = 9.9e15f32;
        let n = to_hundredths(huge, RATE_LIMIT).expect("within 10^16 B/s");
        assert_eq!(from_hundredths(n).to_bits(), huge.to_bits());
    }
}
