//! Measures the raw store on a synthetic fleet: append throughput (one
//! fsync per 10 000-row batch), seal time, bytes per value on disk, and the
//! time to summarise every host's day from raw storage.
//!
//! ```text
//! cargo run --release -p yunzhi-rawstore --example measure -- [days] [hosts] [codec] [dir]
//! ```
//! `codec` is `zstd1`, `zstd3` (default), `zstd9`, `snappy` or `none`; `dir`
//! defaults to a temporary directory, deleted at the end.
//!
//! Readings mimic the agent: every value rounded to hundredths, CPU a
//! mean-reverting random walk with noise and a working-day swing, memory
//! drifting slowly, disk and network log-normal with occasional bursts.

use std::path::PathBuf;
use std::time::Instant;

use parquet::file::reader::{FileReader, SerializedFileReader};
use yunzhi_rawstore::{COLUMN_NAMES, Columns, Compression, Config, Day, RawStore, Row};

const READINGS_PER_DAY: i64 = 288;
const BATCH_ROWS: usize = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let days: i32 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let hosts: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let compression = match args.get(2).map(String::as_str).unwrap_or("zstd3") {
        "snappy" => Compression::Snappy,
        "none" => Compression::None,
        z => Compression::Zstd(z.strip_prefix("zstd").unwrap_or("3").parse()?),
    };
    let tmp = tempfile::tempdir()?;
    let dir = args.get(3).map(PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    let config = Config { retention_days: days as u32 + 1, compression, ..Config::default() };
    let offset = config.day_offset_secs;
    let store = RawStore::open(&dir, config)?;
    println!(
        "fleet: {hosts} hosts x {READINGS_PER_DAY} readings/day x {days} days, {compression:?}, in {}",
        dir.display()
    );

    let first = Day::parse("2026-08-01").ok_or("bad start date")?;
    let mut fleet = Fleet::new(hosts);
    let (mut append_wall, mut append_cpu, mut seal_wall, mut seal_cpu, mut rows_total) =
        (0.0, 0.0, 0.0, 0.0, 0u64);
    let mut day_rows: Vec<Row> = Vec::with_capacity(hosts * READINGS_PER_DAY as usize);
    // A directory that already holds the fleet is only measured again.
    let fresh = store.stats()?.rows == 0;
    for d in (0..days).filter(|_| fresh) {
        let day = first.plus(d);
        day_rows.clear();
        for tick in 0..READINGS_PER_DAY {
            fleet.tick(day.start_ms(offset) + tick * 300_000, tick, &mut day_rows);
        }
        let (t, c) = (Instant::now(), cpu_seconds());
        for batch in day_rows.chunks(BATCH_ROWS) {
            store.append(batch)?;
        }
        append_wall += t.elapsed().as_secs_f64();
        append_cpu += cpu_seconds() - c;
        rows_total += day_rows.len() as u64;

        let (t, c) = (Instant::now(), cpu_seconds());
        store.seal(day.plus(1))?;
        seal_wall += t.elapsed().as_secs_f64();
        seal_cpu += cpu_seconds() - c;
    }
    drop(day_rows);
    let rows = if fresh { rows_total as f64 } else { store.stats()?.rows as f64 };
    println!(
        "append: {:.0} rows/s, {:.0} values/s wall ({:.2} s); {:.0} values per CPU-second ({:.2} CPU-s)",
        rows / append_wall,
        rows * 8.0 / append_wall,
        append_wall,
        rows * 8.0 / append_cpu,
        append_cpu
    );
    println!(
        "seal: {:.2} s per day wall, {:.2} CPU-s per day; append+seal {:.0} values per CPU-second",
        seal_wall / f64::from(days),
        seal_cpu / f64::from(days),
        rows * 8.0 / (append_cpu + seal_cpu)
    );

    let stats = store.stats()?;
    println!(
        "on disk: {} day files, {} rows, {} bytes: {:.3} B per value (all 9), {:.3} B per value (as 4 metrics), {:.2} B per row",
        stats.day_files,
        stats.rows,
        stats.parquet_bytes,
        stats.bytes_per_value,
        stats.parquet_bytes as f64 / (rows * 4.0),
        stats.parquet_bytes as f64 / rows
    );
    let by_column = column_sizes(&store, first, days, rows)?;
    let readings: i64 = by_column[2..8].iter().sum();
    println!(
        "the 6 reading columns alone (cpu, memory, disk r/w, net rx/tx): {:.3} B per value",
        readings as f64 / (rows * 6.0)
    );

    let last = first.plus(days - 1);
    let (t, c) = (Instant::now(), cpu_seconds());
    let summary = store.daily_stats(first, last, None)?;
    println!(
        "daily_stats: {} host-days from {} rows in {:.2} s wall, {:.2} CPU-s ({:.0} rows/s)",
        summary.len(),
        stats.rows,
        t.elapsed().as_secs_f64(),
        cpu_seconds() - c,
        rows / t.elapsed().as_secs_f64()
    );
    let (t, c) = (Instant::now(), cpu_seconds());
    let columns = Columns::CPU_PCT | Columns::MEMORY_PCT | Columns::NET_RX_BPS | Columns::NET_TX_BPS;
    let summary = store.daily_stats_of(first, last, None, columns)?;
    println!(
        "daily_stats of 4 metrics (cpu, memory, net rx, net tx): {} host-days in {:.2} s wall, {:.2} CPU-s",
        summary.len(),
        t.elapsed().as_secs_f64(),
        cpu_seconds() - c,
    );
    let (t, mut n) = (Instant::now(), 0usize);
    let stats_columns = columns | Columns::AT_MS | Columns::DISK_READ_BPS | Columns::DISK_WRITE_BPS;
    store.scan_columns(first, last, None, stats_columns, |b| n += b.len())?;
    println!("plain scan of the 7 stats columns, one thread: {n} rows in {:.2} s", t.elapsed().as_secs_f64());
    let (t, mut n, mut sum) = (Instant::now(), 0usize, 0f64);
    store.scan_columns(first, last, None, Columns::CPU_PCT, |b| {
        n += b.len();
        sum += b.cpu_pct.iter().map(|&x| f64::from(x)).sum::<f64>();
    })?;
    println!(
        "scan of cpu_pct alone: {n} rows in {:.2} s (mean {:.2} %)",
        t.elapsed().as_secs_f64(),
        sum / n.max(1) as f64
    );
    Ok(())
}

/// Prints the compressed bytes of each column per value; returns the bytes.
fn column_sizes(
    store: &RawStore,
    first: Day,
    days: i32,
    rows: f64,
) -> Result<[i64; 10], Box<dyn std::error::Error>> {
    let mut bytes = [0i64; 10];
    for d in 0..days {
        for path in store.day_files(first.plus(d))? {
            let reader = SerializedFileReader::try_from(path.as_path())?;
            for rg in reader.metadata().row_groups() {
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b += rg.column(i).compressed_size();
                }
            }
        }
    }
    let line: Vec<String> =
        COLUMN_NAMES.iter().zip(bytes).map(|(n, b)| format!("{n} {:.3}", b as f64 / rows)).collect();
    println!("bytes per value by column: {}", line.join(", "));
    Ok(bytes)
}

/// The process's user + system CPU time, from /proc/self/stat (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name: state is field 3, utime 14, stime 15.
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(14) + field(15);
    ticks as f64 / 100.0
}

struct Host {
    cpu: f64,
    cpu_base: f64,
    memory: f64,
    disk_base: f64,
    net_base: f64,
    sessions: u16,
    listening: u16,
}

struct Fleet {
    hosts: Vec<Host>,
    rng: u64,
}

impl Fleet {
    fn new(n: usize) -> Fleet {
        let mut f = Fleet { hosts: Vec::with_capacity(n), rng: 0x9E37_79B9_7F4A_7C15 };
        for _ in 0..n {
            let kind = f.uniform();
            let cpu_base = if kind < 0.6 {
                1.0 + 4.0 * f.uniform()
            } else if kind < 0.9 {
                10.0 + 30.0 * f.uniform()
            } else {
                50.0 + 40.0 * f.uniform()
            };
            let host = Host {
                cpu: cpu_base,
                cpu_base,
                memory: 20.0 + 60.0 * f.uniform(),
                disk_base: 10f64.powf(3.0 + 3.0 * f.uniform()),
                net_base: 10f64.powf(2.5 + 3.5 * f.uniform()),
                sessions: (f.uniform() * 3.0) as u16,
                listening: 8 + (f.uniform() * 30.0) as u16,
            };
            f.hosts.push(host);
        }
        f
    }

    fn tick(&mut self, at_ms: i64, tick: i64, out: &mut Vec<Row>) {
        // Office hours (08:00-18:00 Beijing) lift busy hosts.
        let hour = tick * 5 / 60;
        let office = if (8..18).contains(&hour) { 1.3 } else { 0.8 };
        for id in 0..self.hosts.len() {
            let (n1, n2, n3, n4, n5, u1, u2) = (
                self.normal(),
                self.normal(),
                self.normal(),
                self.normal(),
                self.normal(),
                self.uniform(),
                self.uniform(),
            );
            let h = &mut self.hosts[id];
            let target = h.cpu_base * office;
            h.cpu = (h.cpu + 0.1 * (target - h.cpu) + 0.15 * target.sqrt() * n1).clamp(0.0, 100.0);
            h.memory = (h.memory + 0.05 * n2).clamp(1.0, 99.0);
            if u1 < 0.002 {
                h.sessions = h.sessions.saturating_add(1) % 4;
            }
            let burst = if u2 < 0.05 { 30.0 } else { 1.0 };
            let cpu = (h.cpu + 0.3 * n3).clamp(0.0, 100.0);
            out.push(Row {
                resource_id: 100_000 + id as i64,
                at_ms,
                cpu_pct: round2(cpu),
                memory_pct: round2(h.memory),
                disk_read_bps: round2(h.disk_base * (0.8 * n4).exp() * burst),
                disk_write_bps: round2(h.disk_base * 0.6 * (0.8 * n5).exp()),
                net_rx_bps: round2(h.net_base * (0.7 * n4).exp() * burst),
                net_tx_bps: round2(h.net_base * 0.4 * (0.7 * n5).exp() * burst),
                sessions: h.sessions,
                listening: h.listening,
                // Connections accepted follow the traffic: a few a minute
                // on a quiet host, hundreds on a busy one.
                accepted: Some((h.net_base / 500.0 * (0.7 * n4).exp() * burst) as u32),
            });
        }
    }

    fn next(&mut self) -> u64 {
        // splitmix64: fast, deterministic, good enough for synthetic load.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly standard normal (sum of four uniforms, rescaled).
    fn normal(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) * 3f64.sqrt()
    }
}

/// What the agent sends: hundredths.
fn round2(x: f64) -> f32 {
    ((x * 100.0).round() / 100.0) as f32
}
