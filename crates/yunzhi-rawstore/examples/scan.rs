//! Times the fleet analysis' read of an existing raw store, alone, so that
//! it can be profiled (`perf record`) apart from building the fleet:
//! every host's daily figures of the four metrics (CPU, memory, disk and
//! network, both directions of each) over a span of days, `runs` times.
//!
//! ```text
//! cargo run --release -p yunzhi-rawstore --example scan -- DIR FIRST_DAY DAYS [runs]
//! ```
//! e.g. the store `yunzhi bench fleet --dir D` builds:
//! `-- D/yunzhi-10000/raw 2026-08-03 90`.

use std::path::PathBuf;
use std::time::Instant;

use yunzhi_rawstore::{Columns, Config, Day, RawStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: scan DIR FIRST_DAY DAYS [runs]";
    let dir = PathBuf::from(args.first().ok_or(usage)?);
    let first = Day::parse(args.get(1).ok_or(usage)?).ok_or("FIRST_DAY is YYYY-MM-DD")?;
    let days: i32 = args.get(2).ok_or(usage)?.parse()?;
    let runs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(3);
    // Kept long enough that opening the store expires nothing it holds.
    let config = Config { retention_days: 100_000, ..Config::default() };
    let threads = config.scan_threads;
    let store = RawStore::open(&dir, config)?;
    let metrics = Columns::CPU_PCT
        | Columns::MEMORY_PCT
        | Columns::DISK_READ_BPS
        | Columns::DISK_WRITE_BPS
        | Columns::NET_RX_BPS
        | Columns::NET_TX_BPS;
    for run in 1..=runs {
        let t = Instant::now();
        let summary = store.daily_stats_of(first, first.plus(days - 1), None, metrics)?;
        println!(
            "run {run}: {} host-days in {:.3} s on {threads} threads",
            summary.len(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
