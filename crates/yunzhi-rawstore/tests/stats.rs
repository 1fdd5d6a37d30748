//! Per host-day statistics checked against a plain recomputation from the
//! rows, wherever the rows live (WAL, day file, late file).

use yunzhi_rawstore::{Columns, Config, Day, RawStore, ResourceDay, Row};

const BEIJING: i32 = 8 * 3600;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A reading with `n` hundredths, as the agent sends it.
fn hundredths(n: u64) -> f32 {
    (n as f64 / 100.0) as f32
}

/// Noisy readings of `hosts` hosts on day `d`, at irregular times: gaps of
/// one to fifteen minutes, so some exceed the ten-minute cap.
fn fleet_day(rng: &mut Rng, d: Day, hosts: i64) -> Vec<Row> {
    let mut rows = Vec::new();
    for r in 0..hosts {
        let mut minute = rng.below(30) as i64;
        while minute < 1440 {
            rows.push(Row {
                resource_id: 1000 + r,
                at_ms: d.start_ms(BEIJING) + minute * 60_000 + rng.below(1000) as i64,
                cpu_pct: hundredths(rng.below(10_001)),
                memory_pct: hundredths(2_000 + rng.below(6_000)),
                disk_read_bps: hundredths(rng.below(100_000_000)),
                disk_write_bps: hundredths(rng.below(1_000) * 1_000_003),
                net_rx_bps: hundredths(rng.below(5_000_000)),
                net_tx_bps: hundredths(rng.below(2_000_000_000_000)),
                sessions: 0,
                listening: 0,
                accepted: None,
            });
            minute += 1 + rng.below(15) as i64;
        }
    }
    rows
}

/// What a host's day should summarise to, from first principles: exact
/// sums of hundredths, nearest-rank percentile, each rate times the
/// (capped) time it covers.
fn expected(d: Day, mut rows: Vec<Row>) -> ResourceDay {
    rows.sort_by_key(|r| r.at_ms);
    let h = |v: f32| (f64::from(v) * 100.0).round() as i128;
    let n = rows.len();
    let mut cpu: Vec<i128> = rows.iter().map(|r| h(r.cpu_pct)).collect();
    let mem: Vec<i128> = rows.iter().map(|r| h(r.memory_pct)).collect();
    let avg = |v: &[i128]| (v.iter().sum::<i128>() as f64 / (100.0 * v.len() as f64)) as f32;
    let max = |v: &[i128]| (*v.iter().max().expect("rows") as f64 / 100.0) as f32;
    let (cpu_avg, cpu_max, memory_avg, memory_max) = (avg(&cpu), max(&cpu), avg(&mem), max(&mem));
    cpu.sort_unstable();
    let rank = (n * 95).div_ceil(100);
    let cpu_p95 = (cpu[rank - 1] as f64 / 100.0) as f32;
    let covers: Vec<i128> = (0..n)
        .map(|i| {
            let gap = match i {
                0 if n == 1 => 60_000,
                0 => rows[1].at_ms - rows[0].at_ms,
                _ => rows[i].at_ms - rows[i - 1].at_ms,
            };
            i128::from(gap.clamp(0, 600_000))
        })
        .collect();
    let bytes = |f: fn(&Row) -> f32| {
        rows.iter().zip(&covers).map(|(r, c)| h(f(r)) * c).sum::<i128>() as f64 / 100_000.0
    };
    ResourceDay {
        resource_id: rows[0].resource_id,
        day: d,
        count: n as u32,
        cpu_avg,
        cpu_max,
        cpu_p95,
        memory_avg,
        memory_max,
        disk_read_bytes: bytes(|r| r.disk_read_bps),
        disk_write_bytes: bytes(|r| r.disk_write_bps),
        net_rx_bytes: bytes(|r| r.net_rx_bps),
        net_tx_bytes: bytes(|r| r.net_tx_bps),
    }
}

fn expected_all(d: Day, rows: &[Row]) -> Vec<ResourceDay> {
    let mut ids: Vec<i64> = rows.iter().map(|r| r.resource_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.iter()
        .map(|&id| expected(d, rows.iter().filter(|r| r.resource_id == id).copied().collect()))
        .collect()
}

#[test]
fn daily_stats_equal_a_plain_recomputation_whether_rows_are_unsealed_sealed_or_late() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Row groups of two pages (a page holds 20 480 rows at most) and a
    // short third: hosts' runs straddle row groups, pages and chunks.
    let config = Config { row_group_rows: 25_000, scan_threads: 2, ..Config::default() };
    let store = RawStore::open(dir.path(), config).expect("open");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let d = Day::parse("2026-11-20").expect("date");
    let mut rows = fleet_day(&mut rng, d, 320);
    // Every seventh reading arrives only after the day was sealed.
    let late: Vec<Row> = rows.iter().step_by(7).copied().collect();
    let on_time: Vec<Row> = rows.iter().enumerate().filter(|(i, _)| i % 7 != 0).map(|(_, r)| *r).collect();
    for chunk in on_time.chunks(333) {
        store.append(chunk).expect("append");
    }
    let want = expected_all(d, &on_time);
    assert_eq!(store.daily_stats(d, d, None).expect("stats from the WAL"), want);
    store.seal(d.plus(1)).expect("seal");
    assert_eq!(store.daily_stats(d, d, None).expect("stats from the day file"), want);

    // Late rows, appended out of order, first from the WAL, then sealed into an extra file.
    let mut shuffled = late.clone();
    shuffled.reverse();
    store.append(&shuffled).expect("append late rows");
    rows.sort_by_key(|r| (r.resource_id, r.at_ms));
    let want = expected_all(d, &rows);
    assert_eq!(store.daily_stats(d, d, None).expect("stats, late rows unsealed"), want);
    store.seal(d.plus(1)).expect("seal the late rows");
    assert_eq!(store.daily_stats(d, d, None).expect("stats, late rows sealed"), want);

    let some = [1003, 1017, 1139, 1319];
    let want_some: Vec<ResourceDay> =
        want.iter().filter(|s| some.contains(&s.resource_id)).cloned().collect();
    assert_eq!(store.daily_stats(d, d, Some(&some)).expect("stats of three hosts"), want_some);
    // Fewer metrics: the same figures for those asked, zero for the rest.
    let cpu_net = store.daily_stats_of(d, d, None, Columns::CPU_PCT | Columns::NET_TX_BPS).expect("stats");
    for (got, full) in cpu_net.iter().zip(&want) {
        assert_eq!((got.cpu_avg, got.cpu_max, got.cpu_p95), (full.cpu_avg, full.cpu_max, full.cpu_p95));
        assert_eq!(got.net_tx_bytes, full.net_tx_bytes);
        assert_eq!((got.memory_avg, got.disk_read_bytes, got.net_rx_bytes), (0.0, 0.0, 0.0));
    }
}

#[test]
fn a_missing_reading_makes_its_day_average_and_bytes_nan_and_leaves_other_metrics_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RawStore::open(dir.path(), Config::default()).expect("open");
    let d = Day::parse("2026-11-20").expect("date");
    let rows: Vec<Row> = (0..20)
        .map(|i| Row {
            resource_id: 5,
            at_ms: d.start_ms(BEIJING) + i * 60_000,
            cpu_pct: if i == 3 || i == 7 { f32::NAN } else { i as f32 },
            memory_pct: 50.0,
            net_rx_bps: if i == 4 { f32::NAN } else { 100.0 },
            net_tx_bps: 10.0,
            ..Row::default()
        })
        .collect();
    store.append(&rows).expect("append");
    for sealed in [false, true] {
        if sealed {
            store.seal(d.plus(1)).expect("seal");
        }
        let s = &store.daily_stats(d, d, None).expect("stats")[0];
        assert_eq!(s.count, 20);
        assert!(s.cpu_avg.is_nan(), "sealed: {sealed}");
        assert_eq!(s.cpu_max, 19.0, "the maximum passes over a missing reading");
        assert!(s.cpu_p95.is_nan(), "missing readings rank above every number: 2 of 20 reach the top 5 %");
        assert_eq!((s.memory_avg, s.memory_max), (50.0, 50.0));
        assert!(s.net_rx_bytes.is_nan());
        assert_eq!(s.net_tx_bytes, 20.0 * 60.0 * 10.0);
    }
}

#[test]
fn a_host_with_more_readings_in_a_day_than_a_scan_chunk_holds_is_summed_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Row groups of 10 000 rows: the busy hosts' days straddle them too.
    let config = Config { row_group_rows: 10_000, scan_threads: 1, ..Config::default() };
    let store = RawStore::open(dir.path(), config).expect("open");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let d = Day::parse("2026-11-21").expect("date");
    let mut rows = fleet_day(&mut rng, d, 5);
    // Two hosts reporting every five seconds (17 280 readings each, four
    // scan chunks' worth), one between them with a single reading, and one
    // after them with exactly a chunk's worth.
    for (host, every_ms, count) in
        [(2000, 5_000, 17_280), (2001, 0, 1), (2002, 5_000, 17_280), (2003, 10_000, 4096)]
    {
        for i in 0..count {
            rows.push(Row {
                resource_id: host,
                at_ms: d.start_ms(BEIJING) + i * every_ms + rng.below(1000) as i64,
                cpu_pct: hundredths(rng.below(10_001)),
                memory_pct: hundredths(rng.below(10_001)),
                disk_read_bps: hundredths(rng.below(1_000_000)),
                disk_write_bps: hundredths(rng.below(1_000_000)),
                net_rx_bps: hundredths(rng.below(1_000_000)),
                net_tx_bps: hundredths(rng.below(1_000_000)),
                sessions: 0,
                listening: 0,
                accepted: None,
            });
        }
    }
    store.append(&rows).expect("append");
    store.seal(d.plus(1)).expect("seal");
    let got = store.daily_stats(d, d, None).expect("stats from the day file");
    assert_eq!(got, expected_all(d, &rows));
    assert_eq!(got.iter().map(|s| s.count).collect::<Vec<_>>()[5..], [17_280, 1, 17_280, 4096]);
}
