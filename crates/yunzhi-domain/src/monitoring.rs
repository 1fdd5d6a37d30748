//! What monitoring agents report (Art. 13) and how readings roll up: the
//! checks a report must pass, and the hourly and daily summaries (average,
//! minimum, maximum, p95, count; bytes moved) that the efficiency analysis
//! reads. Rollups are mergeable, so they are kept up to date as readings
//! arrive rather than by scanning the readings again.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::invalid::{Checker, FieldError, Invalid};

/// One reading of a host, as an agent (or a Prometheus sender) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reading {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub cpu_pct: f64,
    pub memory_pct: f64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    /// Interactive sessions logged in.
    #[serde(default)]
    pub sessions: u32,
    /// TCP sockets listening.
    #[serde(default)]
    pub listening: u32,
    /// TCP connections the host accepted since its previous reading (its
    /// listening processes at work, from the kernel's `PassiveOpens`
    /// counter); `None` where the sender does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u32>,
}

/// Most readings one report may carry: a day at one a minute, and then some.
pub const MAX_READINGS: usize = 2_000;

/// How far back a reading may be (an agent that was cut off resends its
/// buffer) and how far ahead (clocks drift; beyond this they are wrong).
pub const MAX_AGE: SignedDuration = SignedDuration::from_hours(24 * 7);
pub const MAX_AHEAD: SignedDuration = SignedDuration::from_mins(10);

/// Checks the readings of one report received at `now`, naming the field of
/// each fault (`samples[3].cpu_pct`).
pub fn check_readings(readings: &[Reading], now: Timestamp) -> Result<(), Invalid> {
    let mut c = Checker::new();
    if readings.len() > MAX_READINGS {
        c.push(FieldError::new(
            "samples",
            "too_many",
            format!("a report carries at most {MAX_READINGS} samples, this one {}", readings.len()),
        ));
        return c.finish();
    }
    for (i, r) in readings.iter().enumerate() {
        let pct = [("cpu_pct", r.cpu_pct), ("memory_pct", r.memory_pct)];
        for (name, v) in pct {
            if !(0.0..=100.0).contains(&v) {
                c.push(FieldError::new(
                    format!("samples[{i}].{name}"),
                    "out_of_range",
                    format!("samples[{i}].{name} must be a percentage from 0 to 100"),
                ));
            }
        }
        let rates = [
            ("disk_read_bps", r.disk_read_bps),
            ("disk_write_bps", r.disk_write_bps),
            ("net_rx_bps", r.net_rx_bps),
            ("net_tx_bps", r.net_tx_bps),
        ];
        for (name, v) in rates {
            if !(0.0..1e13).contains(&v) {
                c.push(FieldError::new(
                    format!("samples[{i}].{name}"),
                    "out_of_range",
                    format!("samples[{i}].{name} must be a rate in bytes per second, not negative"),
                ));
            }
        }
        if r.at < now - MAX_AGE || r.at > now + MAX_AHEAD {
            c.push(FieldError::new(
                format!("samples[{i}].at"),
                "out_of_range",
                format!("samples[{i}].at must lie within the last 7 days and no more than 10 minutes ahead"),
            ));
        }
    }
    c.finish()
}

/// A summary of readings over a span (an hour, a day): for CPU and memory
/// use, network and disk throughput, the count, average, least, most and a
/// histogram to read p95 (or any quantile) from, which adds up across spans.
/// `cpu_hist[p]` and `memory_hist[p]` count readings whose use rounds down
/// to `p` per cent (100 for 100 %); `net_hist` and `disk_hist` count
/// readings by [`rate_bucket`] of their bytes per second (both directions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub samples: u64,
    pub cpu_sum: f64,
    pub cpu_min: f64,
    pub cpu_max: f64,
    pub cpu_hist: Vec<u64>,
    pub memory_sum: f64,
    pub memory_min: f64,
    pub memory_max: f64,
    pub memory_hist: Vec<u64>,
    /// Bytes moved: throughput × the time each reading stands for.
    pub net_bytes: f64,
    pub disk_bytes: f64,
    /// The time the readings stand for, in seconds: averages of throughput
    /// are the bytes over it. NaN when unknown (a span holding readings
    /// stored before it was kept), which stays unknown when merged.
    pub seconds: f64,
    pub net_min_bps: f64,
    pub net_max_bps: f64,
    pub net_hist: Vec<u64>,
    pub disk_min_bps: f64,
    pub disk_max_bps: f64,
    pub disk_hist: Vec<u64>,
    pub sessions_max: u64,
    /// TCP connections accepted over the span; `None` when none of its
    /// readings said (a sender that does not count them).
    pub accepted: Option<u64>,
}

/// Buckets of [`rate_bucket`].
pub const RATE_BUCKETS: usize = 64;

/// The histogram bucket of a throughput of `bps` bytes per second: 0 below
/// 1 B/s, then half-octaves — bucket `b` holds [2^((b−1)/2), 2^(b/2)) — up to
/// the last, which holds everything from about 3 GB/s. A quantile read off
/// them is within a factor of √2, which is what telling an idle host's
/// trickle from a working one's traffic needs.
pub fn rate_bucket(bps: f64) -> usize {
    // NaN lands here too.
    if bps.is_nan() || bps < 1.0 {
        return 0;
    }
    ((2.0 * bps.log2()).floor() as usize + 1).min(RATE_BUCKETS - 1)
}

/// The upper edge of [`rate_bucket`] `b`, in bytes per second.
fn rate_bucket_top(b: usize) -> f64 {
    if b == 0 { 1.0 } else { 2f64.powf(b as f64 / 2.0) }
}

impl Default for Rollup {
    fn default() -> Self {
        Rollup {
            samples: 0,
            cpu_sum: 0.0,
            cpu_min: f64::INFINITY,
            cpu_max: 0.0,
            cpu_hist: vec![0; 101],
            memory_sum: 0.0,
            memory_min: f64::INFINITY,
            memory_max: 0.0,
            memory_hist: vec![0; 101],
            net_bytes: 0.0,
            disk_bytes: 0.0,
            seconds: 0.0,
            net_min_bps: f64::INFINITY,
            net_max_bps: 0.0,
            net_hist: vec![0; RATE_BUCKETS],
            disk_min_bps: f64::INFINITY,
            disk_max_bps: 0.0,
            disk_hist: vec![0; RATE_BUCKETS],
            sessions_max: 0,
            accepted: None,
        }
    }
}

/// Counts one more reading in a histogram of `len` buckets (one read from
/// an older row may be shorter: it grows first).
fn count_in(hist: &mut Vec<u64>, len: usize, bucket: usize) {
    if hist.len() < len {
        hist.resize(len, 0);
    }
    hist[bucket.min(len - 1)] += 1;
}

/// Adds histogram `o` into `hist`.
fn add_hist(hist: &mut Vec<u64>, o: &[u64]) {
    if hist.len() < o.len() {
        hist.resize(o.len(), 0);
    }
    for (a, b) in hist.iter_mut().zip(o) {
        *a += b;
    }
}

/// The sum of two counts either of which may be unknown: known if either is.
fn add_known(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// The bucket where the `q` quantile of a histogram's readings falls.
fn quantile_bucket(hist: &[u64], q: f64) -> Option<usize> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    hist.iter().position(|n| {
        seen += n;
        seen >= rank
    })
}

impl Rollup {
    /// Adds a reading that stands for `seconds` of the host's life (the
    /// time since its previous reading, bounded by the caller).
    pub fn add(&mut self, r: &Reading, seconds: f64) {
        self.samples += 1;
        self.cpu_sum += r.cpu_pct;
        self.cpu_min = self.cpu_min.min(r.cpu_pct);
        self.cpu_max = self.cpu_max.max(r.cpu_pct);
        count_in(&mut self.cpu_hist, 101, r.cpu_pct.clamp(0.0, 100.0).floor() as usize);
        self.memory_sum += r.memory_pct;
        self.memory_min = self.memory_min.min(r.memory_pct);
        self.memory_max = self.memory_max.max(r.memory_pct);
        count_in(&mut self.memory_hist, 101, r.memory_pct.clamp(0.0, 100.0).floor() as usize);
        let net = r.net_rx_bps + r.net_tx_bps;
        let disk = r.disk_read_bps + r.disk_write_bps;
        self.net_bytes += net * seconds;
        self.disk_bytes += disk * seconds;
        self.seconds += seconds;
        self.net_min_bps = self.net_min_bps.min(net);
        self.net_max_bps = self.net_max_bps.max(net);
        count_in(&mut self.net_hist, RATE_BUCKETS, rate_bucket(net));
        self.disk_min_bps = self.disk_min_bps.min(disk);
        self.disk_max_bps = self.disk_max_bps.max(disk);
        count_in(&mut self.disk_hist, RATE_BUCKETS, rate_bucket(disk));
        self.sessions_max = self.sessions_max.max(u64::from(r.sessions));
        self.accepted = add_known(self.accepted, r.accepted.map(u64::from));
    }

    /// Folds another span's summary into this one.
    pub fn merge(&mut self, o: &Rollup) {
        if o.samples == 0 {
            return;
        }
        self.samples += o.samples;
        self.cpu_sum += o.cpu_sum;
        self.cpu_min = self.cpu_min.min(o.cpu_min);
        self.cpu_max = self.cpu_max.max(o.cpu_max);
        add_hist(&mut self.cpu_hist, &o.cpu_hist);
        self.memory_sum += o.memory_sum;
        self.memory_min = self.memory_min.min(o.memory_min);
        self.memory_max = self.memory_max.max(o.memory_max);
        add_hist(&mut self.memory_hist, &o.memory_hist);
        self.net_bytes += o.net_bytes;
        self.disk_bytes += o.disk_bytes;
        self.seconds += o.seconds;
        self.net_min_bps = self.net_min_bps.min(o.net_min_bps);
        self.net_max_bps = self.net_max_bps.max(o.net_max_bps);
        add_hist(&mut self.net_hist, &o.net_hist);
        self.disk_min_bps = self.disk_min_bps.min(o.disk_min_bps);
        self.disk_max_bps = self.disk_max_bps.max(o.disk_max_bps);
        add_hist(&mut self.disk_hist, &o.disk_hist);
        self.sessions_max = self.sessions_max.max(o.sessions_max);
        self.accepted = add_known(self.accepted, o.accepted);
    }

    /// This day's summary as the efficiency rules read it.
    pub fn daily_stats(&self, day: jiff::civil::Date) -> crate::efficiency::DailyStats {
        self.daily_stats_with_p95(day, self.cpu_quantile(0.95))
    }

    /// This day's summary with its CPU p95 given: read off this rollup's
    /// histogram when the day was stored, so that a reader of many days
    /// need not fetch and walk every histogram again.
    pub fn daily_stats_with_p95(
        &self,
        day: jiff::civil::Date,
        cpu_p95: f64,
    ) -> crate::efficiency::DailyStats {
        crate::efficiency::DailyStats {
            day,
            samples: u32::try_from(self.samples).unwrap_or(u32::MAX),
            cpu_avg: self.cpu_avg(),
            cpu_max: self.cpu_max,
            cpu_p95,
            memory_avg: self.memory_avg(),
            net_bytes: self.net_bytes,
            disk_bytes: self.disk_bytes,
            sessions_max: u32::try_from(self.sessions_max).unwrap_or(u32::MAX),
            accepted: self.accepted,
        }
    }

    pub fn cpu_avg(&self) -> f64 {
        if self.samples == 0 { 0.0 } else { self.cpu_sum / self.samples as f64 }
    }

    pub fn memory_avg(&self) -> f64 {
        if self.samples == 0 { 0.0 } else { self.memory_sum / self.samples as f64 }
    }

    /// The CPU use below which `q` of the readings lie (0 < q ≤ 1), to the
    /// percent: read off the histogram, the upper edge of the bucket where
    /// the quantile falls, never above the maximum seen.
    pub fn cpu_quantile(&self, q: f64) -> f64 {
        if self.samples == 0 {
            return 0.0;
        }
        match quantile_bucket(&self.cpu_hist, q) {
            Some(p) => ((p + 1) as f64).min(self.cpu_max).max(self.cpu_min.min(p as f64)),
            None => self.cpu_max,
        }
    }

    /// The memory use below which `q` of the readings lie, read as CPU's;
    /// `None` for a span stored before memory had a histogram.
    pub fn memory_quantile(&self, q: f64) -> Option<f64> {
        let p = quantile_bucket(&self.memory_hist, q)?;
        Some(((p + 1) as f64).min(self.memory_max).max(self.memory_min.min(p as f64)))
    }

    /// The network throughput (bytes per second, both directions) below
    /// which `q` of the readings lie, within a factor of √2; `None` for a
    /// span stored before throughput had a histogram.
    pub fn net_quantile(&self, q: f64) -> Option<f64> {
        let b = quantile_bucket(&self.net_hist, q)?;
        Some(
            rate_bucket_top(b)
                .min(self.net_max_bps)
                .max(self.net_min_bps.min(rate_bucket_top(b) / 2f64.sqrt())),
        )
    }

    /// The disk throughput below which `q` of the readings lie, as the network's.
    pub fn disk_quantile(&self, q: f64) -> Option<f64> {
        let b = quantile_bucket(&self.disk_hist, q)?;
        Some(
            rate_bucket_top(b)
                .min(self.disk_max_bps)
                .max(self.disk_min_bps.min(rate_bucket_top(b) / 2f64.sqrt())),
        )
    }

    /// Average network and disk throughput over the time the readings stand
    /// for; `None` for a span stored before that time was kept.
    pub fn net_avg_bps(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.net_bytes / self.seconds)
    }

    pub fn disk_avg_bps(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.disk_bytes / self.seconds)
    }
}

/// How long a reading stands for: the time since the host's previous one,
/// at most `cap` (a gap is silence, not a long busy minute) and a reporting
/// interval when there is no previous one.
pub fn span_of(
    previous: Option<Timestamp>,
    at: Timestamp,
    interval: SignedDuration,
    cap: SignedDuration,
) -> f64 {
    let gap = match previous {
        Some(p) if p < at => at.duration_since(p),
        _ => interval,
    };
    gap.min(cap).as_secs_f64()
}

/// The fewest days of hourly and daily rollups a server may keep: the
/// long-term rules look back up to 400 days, and a unit's year of use is
/// compared with the year before.
pub const MIN_ROLLUP_DAYS: u32 = 400;

/// The first district day of a rollup window of `keep_days` days ending
/// with `today`, and the instant it starts (the first hour kept): rollups
/// of anything earlier are past the window.
pub fn rollup_window_start(today: jiff::civil::Date, keep_days: u32) -> (jiff::civil::Date, Timestamp) {
    let first = today.saturating_sub(jiff::Span::new().days(i64::from(keep_days.max(1)) - 1));
    let start =
        first.to_zoned(crate::clock::district_zone()).map(|z| z.timestamp()).unwrap_or(Timestamp::MIN);
    (first, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_window_of_400_days_keeps_today_and_the_399_before_from_their_district_midnight() {
        let (first, start) = rollup_window_start(jiff::civil::date(2026, 12, 3), 400);
        assert_eq!(first, jiff::civil::date(2025, 10, 30));
        assert_eq!(start.to_string(), "2025-10-29T16:00:00Z", "midnight in Shanghai");
        let (first, _) = rollup_window_start(jiff::civil::date(2026, 12, 3), 1);
        assert_eq!(first, jiff::civil::date(2026, 12, 3), "a window of one day is today");
    }

    fn reading(at: &str, cpu: f64) -> Reading {
        Reading {
            at: at.parse().unwrap(),
            cpu_pct: cpu,
            memory_pct: 40.0,
            disk_read_bps: 100.0,
            disk_write_bps: 100.0,
            net_rx_bps: 1000.0,
            net_tx_bps: 0.0,
            sessions: 1,
            listening: 3,
            accepted: None,
        }
    }

    #[test]
    fn connections_accepted_add_up_over_a_span_and_are_unknown_only_when_no_reading_counted_them() {
        let mut hour = Rollup::default();
        hour.add(&reading("2026-11-26T02:00:00Z", 1.0), 60.0);
        assert_eq!(hour.accepted, None, "a sender that does not count them");
        hour.add(&Reading { accepted: Some(3), ..reading("2026-11-26T02:01:00Z", 1.0) }, 60.0);
        hour.add(&Reading { accepted: Some(0), ..reading("2026-11-26T02:02:00Z", 1.0) }, 60.0);
        assert_eq!(hour.accepted, Some(3));
        let mut day = Rollup::default();
        day.merge(&Rollup { accepted: None, ..hour.clone() });
        assert_eq!(day.accepted, None);
        day.merge(&hour);
        day.merge(&hour);
        assert_eq!(day.accepted, Some(6));
        assert_eq!(day.daily_stats(jiff::civil::date(2026, 11, 26)).accepted, Some(6));
    }

    #[test]
    fn memory_and_throughput_keep_their_count_average_least_most_and_p95_as_cpu_does() {
        // A hundred minutes: memory 1 % … 100 %; network 1 kB/s, but 1 MB/s in the last ten.
        let mut day = Rollup::default();
        for i in 1..=100 {
            let mut r = reading("2026-11-26T02:00:00Z", 10.0);
            r.memory_pct = f64::from(i);
            r.net_rx_bps = if i > 90 { 1_000_000.0 } else { 1_000.0 };
            day.add(&r, 60.0);
        }
        assert_eq!((day.samples, day.memory_min, day.memory_max, day.memory_avg()), (100, 1.0, 100.0, 50.5));
        assert_eq!(day.memory_quantile(0.95), Some(96.0), "the bucket of the 95th, to the percent");
        assert_eq!((day.net_min_bps, day.net_max_bps), (1_000.0, 1_000_000.0));
        let avg = day.net_avg_bps().unwrap();
        assert!((avg - (90.0 * 1_000.0 + 10.0 * 1_000_000.0) / 100.0).abs() < 1e-6, "{avg}");
        let p95 = day.net_quantile(0.95).unwrap();
        assert!((1_000_000.0 / 2f64.sqrt()..=1_000_000.0).contains(&p95), "within √2 of 1 MB/s: {p95}");
        let p50 = day.net_quantile(0.5).unwrap();
        assert!((1_000.0 / 2f64.sqrt()..=1_000.0 * 2f64.sqrt()).contains(&p50), "{p50}");
        assert_eq!((day.disk_min_bps, day.disk_max_bps, day.disk_avg_bps()), (200.0, 200.0, Some(200.0)));
        // Split in two and merged, the same summary.
        let (mut a, mut b) = (Rollup::default(), Rollup::default());
        for i in 1..=100 {
            let mut r = reading("2026-11-26T02:00:00Z", 10.0);
            r.memory_pct = f64::from(i);
            r.net_rx_bps = if i > 90 { 1_000_000.0 } else { 1_000.0 };
            if i % 2 == 0 { a.add(&r, 60.0) } else { b.add(&r, 60.0) }
        }
        a.merge(&b);
        assert_eq!(a, day);
    }

    #[test]
    fn throughput_buckets_are_half_octaves_from_one_byte_a_second() {
        assert_eq!((rate_bucket(0.0), rate_bucket(0.99), rate_bucket(f64::NAN)), (0, 0, 0));
        assert_eq!((rate_bucket(1.0), rate_bucket(1.41), rate_bucket(1.42), rate_bucket(2.0)), (1, 1, 2, 3));
        assert_eq!(rate_bucket(1e12), RATE_BUCKETS - 1, "the last holds everything above");
    }

    #[test]
    fn a_span_stored_before_memory_and_throughput_had_histograms_has_no_quantile_for_them() {
        let old = Rollup {
            samples: 10,
            memory_hist: vec![],
            net_hist: vec![],
            disk_hist: vec![],
            ..Rollup::default()
        };
        assert_eq!(
            (old.memory_quantile(0.95), old.net_quantile(0.95), old.net_avg_bps()),
            (None, None, None)
        );
    }

    #[test]
    fn the_p95_of_a_hundred_readings_is_the_ninety_fifth_smallest_to_the_percent() {
        let mut r = Rollup::default();
        for i in 0..100 {
            r.add(&reading("2026-11-26T02:00:00Z", f64::from(i)), 60.0);
        }
        assert_eq!(r.cpu_quantile(0.95), 95.0);
        assert_eq!((r.cpu_min, r.cpu_max, r.samples), (0.0, 99.0, 100));
        assert!((r.cpu_avg() - 49.5).abs() < 1e-9);
    }

    #[test]
    fn merging_two_halves_gives_the_rollup_of_the_whole() {
        let (mut a, mut b, mut whole) = (Rollup::default(), Rollup::default(), Rollup::default());
        for i in 0..50 {
            let r = reading("2026-11-26T02:00:00Z", f64::from(i) * 1.7);
            if i % 2 == 0 {
                a.add(&r, 60.0)
            } else {
                b.add(&r, 60.0)
            }
            whole.add(&r, 60.0);
        }
        a.merge(&b);
        assert_eq!(a.cpu_hist, whole.cpu_hist);
        assert_eq!((a.samples, a.cpu_max, a.cpu_min), (whole.samples, whole.cpu_max, whole.cpu_min));
        assert!((a.net_bytes - whole.net_bytes).abs() < 1e-6);
    }

    #[test]
    fn network_bytes_are_the_rate_times_the_time_a_reading_stands_for() {
        let mut r = Rollup::default();
        r.add(&reading("2026-11-26T02:00:00Z", 1.0), 60.0);
        assert_eq!(r.net_bytes, 60_000.0);
        let at: Timestamp = "2026-11-26T02:05:00Z".parse().unwrap();
        let minute = SignedDuration::from_mins(1);
        assert_eq!(span_of(Some(at - minute), at, minute, SignedDuration::from_mins(5)), 60.0);
        assert_eq!(
            span_of(Some(at - SignedDuration::from_hours(3)), at, minute, SignedDuration::from_mins(5)),
            300.0
        );
        assert_eq!(span_of(None, at, minute, SignedDuration::from_mins(5)), 60.0);
    }

    #[test]
    fn a_report_with_an_impossible_reading_is_refused_naming_the_sample_and_field() {
        let now: Timestamp = "2026-11-26T02:00:00Z".parse().unwrap();
        let mut bad = reading("2026-11-26T01:59:00Z", 140.0);
        bad.net_rx_bps = f64::NAN;
        let e = check_readings(&[reading("2026-11-26T01:58:00Z", 3.0), bad], now).unwrap_err().0;
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["samples[1].cpu_pct", "samples[1].net_rx_bps"]);
        let late = reading("2026-11-26T03:00:00Z", 3.0);
        assert_eq!(check_readings(&[late], now).unwrap_err().0[0].field, "samples[0].at");
    }
}
