//! The analysis from raw storage: every host's daily figures of the four
//! metrics straight from the day files (`daily_stats_of`), then the rules;
//! and what the day files cost per value.

use std::time::{Duration, Instant};

use jiff::civil::Date;
use yunzhi_domain::efficiency::Rules;
use yunzhi_domain::system::PeriodicLoad;
use yunzhi_rawstore::{Columns, Day, RawStore, StoreStats};

use super::answers::{self, Answer, Verdicts};
use crate::process;

/// The four metrics the rules read: CPU, memory, disk and network (both
/// directions of each).
pub const METRICS: Columns = Columns::CPU_PCT
    .union(Columns::MEMORY_PCT)
    .union(Columns::DISK_READ_BPS)
    .union(Columns::DISK_WRITE_BPS)
    .union(Columns::NET_RX_BPS)
    .union(Columns::NET_TX_BPS);

/// One run of the analysis from raw storage.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// `daily_stats_of` over the window.
    pub scan: Duration,
    /// Grouping by host and the rules.
    pub rules: Duration,
    /// Bytes read from storage meanwhile: day files the page cache did not hold.
    pub from_disk: u64,
}

impl Run {
    pub fn total(&self) -> Duration {
        self.scan + self.rules
    }
}

pub struct Measured {
    /// The first run, the day files as the page cache held them.
    pub first: Run,
    /// The same run straight after, the day files as cached as the machine keeps them.
    pub again: Run,
    pub host_days: usize,
    pub memory_before: u64,
    pub memory_peak: u64,
    pub answer: Answer,
    pub verdicts: Verdicts,
    pub stats: StoreStats,
    /// Compressed bytes of each day-file column over the store.
    pub column_bytes: Vec<(&'static str, u64)>,
}

/// The day-file columns holding what the Prometheus side is not given
/// (it gets the four metrics' gauges only).
const NOT_IN_PROMETHEUS: [&str; 3] = ["sessions", "listening", "accepted"];

impl Measured {
    /// Day-file bytes per value, counting the four metrics of each reading.
    pub fn bytes_per_metric_value(&self) -> f64 {
        self.stats.parquet_bytes as f64 / (self.stats.sealed_rows.max(1) as f64 * 4.0)
    }

    /// The same, less the columns of what Prometheus is not given
    /// (sessions, listening sockets, connections accepted): the bytes of
    /// the same data on both sides. Yunzhi's still hold more of it: disk
    /// and network each as two readings (read/write, rx/tx) where the
    /// Prometheus side gets their sums.
    pub fn bytes_per_metric_value_same_data(&self) -> f64 {
        let extra: u64 = self
            .column_bytes
            .iter()
            .filter(|(name, _)| NOT_IN_PROMETHEUS.contains(name))
            .map(|(_, bytes)| bytes)
            .sum();
        self.stats.parquet_bytes.saturating_sub(extra) as f64 / (self.stats.sealed_rows.max(1) as f64 * 4.0)
    }
}

/// Measures `raw` over `first..=last` for hosts `ids` (host `h` is `ids[h]`),
/// twice: the first run reads the day files as the page cache holds them
/// (on a machine that keeps little in its cache, partly from disk: the run
/// says how much), the second straight after.
pub fn measure(
    raw: &RawStore,
    rules: &Rules,
    (first, last, today): (Date, Date, Date),
    ids: &[i64],
    periodic: &[Option<PeriodicLoad>],
) -> anyhow::Result<Measured> {
    let me = std::process::id();
    process::release_freed_memory();
    process::reset_peak(me)?;
    let memory_before = process::memory(me)?.resident;
    let once = || -> anyhow::Result<(Run, usize, Answer, Verdicts)> {
        let read_before = process::storage_read_bytes(me)?;
        let t = Instant::now();
        let days = raw.daily_stats_of(Day::from(first), Day::from(last), None, METRICS)?;
        let scan = t.elapsed();
        let from_disk = process::storage_read_bytes(me)?.saturating_sub(read_before);
        let t = Instant::now();
        let answer = answers::from_raw(&days);
        let verdicts = answers::verdicts(rules, today, ids, periodic, &answer);
        let rules = t.elapsed();
        Ok((Run { scan, rules, from_disk }, days.len(), answer, verdicts))
    };
    let (first_run, _, _, _) = once()?;
    let (again, host_days, answer, verdicts) = once()?;
    let memory_peak = process::memory(me)?.peak;
    Ok(Measured {
        first: first_run,
        again,
        host_days,
        memory_before,
        memory_peak,
        answer,
        verdicts,
        stats: raw.stats()?,
        column_bytes: raw.column_bytes()?,
    })
}
