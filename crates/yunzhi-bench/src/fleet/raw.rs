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

pub struct Measured {
    /// `daily_stats_of` over the window.
    pub scan: Duration,
    pub host_days: usize,
    /// Grouping by host and the rules.
    pub rules: Duration,
    pub memory_before: u64,
    pub memory_peak: u64,
    pub answer: Answer,
    pub verdicts: Verdicts,
    pub stats: StoreStats,
}

impl Measured {
    pub fn total(&self) -> Duration {
        self.scan + self.rules
    }

    /// Day-file bytes per value, counting the four metrics of each reading.
    pub fn bytes_per_metric_value(&self) -> f64 {
        self.stats.parquet_bytes as f64 / (self.stats.sealed_rows.max(1) as f64 * 4.0)
    }
}

/// Measures `raw` over `first..=last` for hosts `ids` (host `h` is `ids[h]`).
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
    let t = Instant::now();
    let days = raw.daily_stats_of(Day::from(first), Day::from(last), None, METRICS)?;
    let scan = t.elapsed();
    let t = Instant::now();
    let answer = answers::from_raw(&days);
    let verdicts = answers::verdicts(rules, today, ids, periodic, &answer);
    let rules_time = t.elapsed();
    let memory_peak = process::memory(me)?.peak;
    Ok(Measured {
        scan,
        host_days: days.len(),
        rules: rules_time,
        memory_before,
        memory_peak,
        answer,
        verdicts,
        stats: raw.stats()?,
    })
}
