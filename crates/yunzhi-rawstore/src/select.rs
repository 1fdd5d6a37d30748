//! The value of a given rank among a host's day of readings: the 95th
//! percentile's nearest rank.
//!
//! `select_nth_unstable` spends most of its time on mispredicted branches
//! when the values are noise, as CPU readings are. Readings are whole
//! hundredths, so the value of rank `k` is found instead by halving the
//! range of values: it is the least `x` with more than `k` values at or
//! below it, and each count is a branch-free pass the compiler vectorises.
//! A day's readings span a few thousand hundredths: a dozen passes.

/// The `k`-th smallest of `values` (from 0), whose least and greatest are
/// `lo` and `hi`; `k` must be less than their number.
#[inline(always)]
pub(crate) fn kth_smallest(values: &[i32], k: usize, (mut lo, mut hi): (i32, i32)) -> i32 {
    // Counting in 32-bit lanes packs twice as many values per instruction;
    // a day with 2^32 readings (twenty a millisecond) would count in 64.
    let count = |mid: i32| -> usize {
        if values.len() < u32::MAX as usize {
            values.iter().map(|&v| u32::from(v <= mid)).sum::<u32>() as usize
        } else {
            values.iter().filter(|&&v| v <= mid).count()
        }
    };
    while lo < hi {
        let mid = ((i64::from(lo) + i64::from(hi)).div_euclid(2)) as i32;
        if count(mid) > k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rank_matches_the_rank_in_the_sorted_values() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Narrow spans, CPU-like spans, the whole range of i32 (negative
        // values too), and runs of equal values.
        for span in [1u64, 2, 63, 64, 65, 255, 10_001, 1 << 20, 1 << 32] {
            for n in [1usize, 2, 7, 288, 1440] {
                let values: Vec<i32> =
                    (0..n)
                        .map(|i| {
                            if i % 5 == 0 { 3 } else { (i64::from(i32::MIN) + (next() % span) as i64) as i32 }
                        })
                        .collect();
                let mut sorted = values.clone();
                sorted.sort_unstable();
                let range = (sorted[0], sorted[n - 1]);
                for k in (0..n).filter(|k| n <= 288 || k % 37 == 0 || *k == n - 1) {
                    assert_eq!(kth_smallest(&values, k, range), sorted[k], "span {span}, n {n}, k {k}");
                }
            }
        }
        assert_eq!(kth_smallest(&[i32::MAX, i32::MIN], 1, (i32::MIN, i32::MAX)), i32::MAX);
        assert_eq!(kth_smallest(&[i32::MAX, i32::MIN], 0, (i32::MIN, i32::MAX)), i32::MIN);
        assert_eq!(kth_smallest(&[5; 10], 9, (5, 5)), 5);
    }
}
