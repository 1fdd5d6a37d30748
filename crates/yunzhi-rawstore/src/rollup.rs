//! Per host and day statistics straight from raw samples, for the fleet
//! analysis: one pass over the columns it needs, days in parallel.
//!
//! A sealed day's main file is sorted by host, so a host's day is one run and
//! is summarised as the file streams past, decoded page by page a few
//! thousand rows at a time (`pages.rs`). The file is read in chunks that end
//! where a host's rows do, so nearly every host's day is summarised where it
//! was decoded; one that does not fit a chunk (or straddles row groups) is
//! gathered first. Rows that arrived late (extra files, the unsealed WAL)
//! are few; they are read first, sorted, and merged into their host's run.
//!
//! The arithmetic is on the stored hundredths (see `hundredths.rs`), in
//! integers: sums and bytes are exact until the one division that makes the
//! figure, so a day gives the same statistics whether its rows come from the
//! WAL, a day file or both, in whatever order they are added up.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::day::Day;
use crate::dayfile;
use crate::error::{Error, Result};
use crate::hundredths::{NO_PCT, NO_RATE, PCT_LIMIT, RATE_LIMIT, from_hundredths, to_hundredths};
use crate::row::Row;
use crate::scan::{Columns, wanted_runs};
use crate::select::kth_smallest;
use crate::store::DayPlan;
use crate::stored::{Chunk, Stored};

/// The longest gap one reading is taken to cover when adding up bytes: an
/// agent that was silent for an hour did not move an hour's worth of bytes.
const MAX_GAP_MS: i64 = 10 * 60_000;
/// What a lone reading of a day is taken to cover: the agent's interval.
const LONE_READING_MS: i64 = 60_000;
/// Hundredths of a byte per second times milliseconds, per byte.
const HUNDREDTH_MS_PER_BYTE: f64 = 100.0 * 1000.0;

/// One host's day, summarised.
///
/// Readings are taken as stored: to the hundredth (see the crate's README).
/// A reading stored as missing (NaN) makes that day's average and bytes of
/// its metric NaN; the maximum passes over it; the 95th percentile ranks it
/// above every number, as `f32::total_cmp` does.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceDay {
    pub resource_id: i64,
    pub day: Day,
    /// Readings that day.
    pub count: u32,
    pub cpu_avg: f32,
    pub cpu_max: f32,
    /// 95th percentile (nearest rank) of the day's CPU readings.
    pub cpu_p95: f32,
    pub memory_avg: f32,
    pub memory_max: f32,
    /// Bytes moved: each reading's rate times the time since the previous
    /// reading (capped at 10 minutes; a day's first reading covers the gap
    /// to the next one).
    pub disk_read_bytes: f64,
    pub disk_write_bytes: f64,
    pub net_rx_bytes: f64,
    pub net_tx_bytes: f64,
}

const RATES: Columns = Columns::DISK_READ_BPS
    .union(Columns::DISK_WRITE_BPS)
    .union(Columns::NET_RX_BPS)
    .union(Columns::NET_TX_BPS);
const METRICS: Columns = Columns::CPU_PCT.union(Columns::MEMORY_PCT).union(RATES);

/// The columns to read for `metrics`: the metrics, and the times when a rate
/// is to be turned into bytes.
fn columns_for(metrics: Columns) -> Columns {
    let m = metrics.intersection(METRICS);
    if m.intersection(RATES) == Columns::NONE { m } else { m | Columns::AT_MS }
}

/// Summarises every host's day of `plans` on `threads` threads, in day then host order.
pub(crate) fn run(
    plans: &[DayPlan],
    wanted: Option<&[i64]>,
    metrics: Columns,
    offset_secs: i32,
    threads: usize,
) -> Result<Vec<ResourceDay>> {
    let columns = columns_for(metrics);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Vec<ResourceDay>)>> = Mutex::new(Vec::with_capacity(plans.len()));
    let threads = threads.clamp(1, plans.len().max(1));
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut group = Group { columns, ..Group::default() };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(plan) = plans.get(i) else { return Ok(()) };
                        let out = summarise_day(plan, wanted, offset_secs, &mut group)?;
                        done.lock().map_err(|_| Error::Poisoned("daily stats"))?.push((i, out));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| Error::Poisoned("daily stats worker"))??;
        }
        Ok(())
    })?;
    let mut done = done.into_inner().map_err(|_| Error::Poisoned("daily stats"))?;
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().flat_map(|(_, v)| v).collect())
}

fn summarise_day(
    plan: &DayPlan,
    wanted: Option<&[i64]>,
    offset_secs: i32,
    group: &mut Group,
) -> Result<Vec<ResourceDay>> {
    let day = plan.day;
    let mut late = plan.wal_rows(offset_secs, wanted)?;
    let extras = if plan.has_main { &plan.files[1..] } else { &plan.files[..] };
    let columns = group.columns;
    for path in extras {
        dayfile::read(path, columns, wanted, |rb| {
            let s = Stored::of(rb)?;
            wanted_runs(s.resource_id, wanted, |run| late.extend(run.map(|i| s.row(i))));
            Ok(())
        })?;
    }
    late.sort_by_key(|r| (r.resource_id, r.at_ms));
    let mut m = Merge { day, late: &late, next_late: 0, out: Vec::new(), group };
    m.group.active = false;
    if plan.has_main {
        dayfile::read_chunks(&plan.files[0], columns, wanted, |chunk| {
            wanted_runs(chunk.resource_id, wanted, |run| m.add_sorted(chunk, run));
            Ok(())
        })?;
    }
    m.flush_late_before(i64::MAX);
    Ok(m.out)
}

/// Streams a sorted day past, merging in the late rows.
struct Merge<'a> {
    day: Day,
    late: &'a [Row],
    next_late: usize,
    out: Vec<ResourceDay>,
    group: &'a mut Group,
}

impl Merge<'_> {
    /// Adds the rows `run` of `chunk`, sorted by host then time.
    fn add_sorted(&mut self, chunk: &Chunk<'_>, run: Range<usize>) {
        let ids = chunk.resource_id;
        let mut i = run.start;
        while i < run.end {
            let r = ids[i];
            let end = i + ids[i..run.end].partition_point(|&x| x == r);
            if self.group.active && self.group.resource_id == r {
                self.group.extend(chunk, i..end);
                i = end;
                continue;
            }
            self.flush_late_before(r);
            let late = self.late.get(self.next_late).is_some_and(|l| l.resource_id == r);
            let whole = end < ids.len() || chunk.ends_host;
            if whole && !late {
                // The host's whole day is here: summarised where it lies.
                self.out.push(self.group.summarise_run(chunk, i..end, self.day));
            } else {
                self.group.start(r);
                while let Some(row) = self.late.get(self.next_late).filter(|l| l.resource_id == r) {
                    self.group.push_row(row);
                    self.group.unsorted = true;
                    self.next_late += 1;
                }
                self.group.extend(chunk, i..end);
            }
            i = end;
        }
    }

    /// Finishes the open group, then summarises late-only hosts below `limit`.
    fn flush_late_before(&mut self, limit: i64) {
        if self.group.active {
            self.out.push(self.group.finish(self.day));
        }
        while let Some(first) = self.late.get(self.next_late).filter(|l| l.resource_id < limit) {
            let r = first.resource_id;
            self.group.start(r);
            while let Some(row) = self.late.get(self.next_late).filter(|l| l.resource_id == r) {
                self.group.push_row(row);
                self.next_late += 1;
            }
            self.out.push(self.group.finish(self.day));
        }
    }
}

/// One host's day being gathered, in hundredths; buffers are reused from
/// host to host. A column not read stays empty.
#[derive(Default)]
struct Group {
    /// What is read.
    columns: Columns,
    active: bool,
    count: usize,
    resource_id: i64,
    /// Whether `at` may be out of time order (late rows were merged in).
    unsorted: bool,
    at: Vec<i64>,
    /// CPU, memory.
    pct: [Vec<i32>; 2],
    /// Disk read, disk write, network rx, network tx.
    rates: [Vec<i64>; 4],
    /// Whether a column holds a missing reading, by the same index.
    pct_missing: [bool; 2],
    rates_missing: [bool; 4],
    scratch: Scratch,
}

/// Buffers the summary works in, reused from host to host.
#[derive(Default)]
struct Scratch {
    /// The milliseconds each reading covers, by position in the columns.
    covers: Vec<i64>,
    order: Vec<u32>,
}

/// One host's day as column slices (a column not read is empty).
struct DayColumns<'a> {
    resource_id: i64,
    count: usize,
    at: &'a [i64],
    /// CPU, memory.
    pct: [&'a [i32]; 2],
    /// Disk read, disk write, network rx, network tx.
    rates: [&'a [i64]; 4],
    /// Whether a column holds a missing reading, by the same index.
    pct_missing: [bool; 2],
    rates_missing: [bool; 4],
    /// Whether `at` may be out of time order (late rows were merged in).
    unsorted: bool,
}

const PCT_FLAGS: [Columns; 2] = [Columns::CPU_PCT, Columns::MEMORY_PCT];
const RATE_FLAGS: [Columns; 4] =
    [Columns::DISK_READ_BPS, Columns::DISK_WRITE_BPS, Columns::NET_RX_BPS, Columns::NET_TX_BPS];

impl Group {
    fn start(&mut self, resource_id: i64) {
        self.active = true;
        self.resource_id = resource_id;
        self.unsorted = false;
        self.count = 0;
        self.at.clear();
        self.pct.iter_mut().for_each(Vec::clear);
        self.rates.iter_mut().for_each(Vec::clear);
        self.pct_missing = [false; 2];
        self.rates_missing = [false; 4];
    }

    fn reads(&self, c: Columns) -> bool {
        self.columns.intersection(c) != Columns::NONE
    }

    fn extend(&mut self, chunk: &Chunk<'_>, run: Range<usize>) {
        self.count += run.len();
        if let Some(at) = chunk.at_ms.get(run.clone()) {
            self.at.extend_from_slice(at);
        }
        for (k, col) in chunk.pct.iter().enumerate() {
            if let Some(v) = col.get(run.clone()) {
                self.pct[k].extend_from_slice(v);
                self.pct_missing[k] |= chunk.missing && v.contains(&NO_PCT);
            }
        }
        for (k, col) in chunk.rates.iter().enumerate() {
            if let Some(v) = col.get(run.clone()) {
                self.rates[k].extend_from_slice(v);
                self.rates_missing[k] |= chunk.missing && v.contains(&NO_RATE);
            }
        }
    }

    fn push_row(&mut self, r: &Row) {
        self.count += 1;
        if self.reads(Columns::AT_MS) {
            self.at.push(r.at_ms);
        }
        for (k, v) in [r.cpu_pct, r.memory_pct].into_iter().enumerate() {
            if self.reads(PCT_FLAGS[k]) {
                let n = to_hundredths(v, PCT_LIMIT).map(|n| n as i32);
                self.pct_missing[k] |= n.is_none();
                self.pct[k].push(n.unwrap_or(NO_PCT));
            }
        }
        let rates = [r.disk_read_bps, r.disk_write_bps, r.net_rx_bps, r.net_tx_bps];
        for (k, v) in rates.into_iter().enumerate() {
            if self.reads(RATE_FLAGS[k]) {
                let n = to_hundredths(v, RATE_LIMIT);
                self.rates_missing[k] |= n.is_none();
                self.rates[k].push(n.unwrap_or(NO_RATE));
            }
        }
    }

    /// The host's day gathered here, as columns.
    fn columns(&self) -> DayColumns<'_> {
        DayColumns {
            resource_id: self.resource_id,
            count: self.count,
            at: &self.at,
            pct: [&self.pct[0], &self.pct[1]],
            rates: [&self.rates[0], &self.rates[1], &self.rates[2], &self.rates[3]],
            pct_missing: self.pct_missing,
            rates_missing: self.rates_missing,
            unsorted: self.unsorted,
        }
    }

    /// Summarises the host's day gathered here.
    fn finish(&mut self, day: Day) -> ResourceDay {
        self.active = false;
        let mut scratch = std::mem::take(&mut self.scratch);
        let summary = summarise(&self.columns(), day, &mut scratch);
        self.scratch = scratch;
        summary
    }

    /// Summarises a host's whole day lying at `run` of `chunk`, without
    /// gathering it first (nearly every host: chunks end where hosts do).
    fn summarise_run(&mut self, chunk: &Chunk<'_>, run: Range<usize>, day: Day) -> ResourceDay {
        let pct = chunk.pct.map(|c| c.get(run.clone()).unwrap_or(&[]));
        let rates = chunk.rates.map(|c| c.get(run.clone()).unwrap_or(&[]));
        let cols = DayColumns {
            resource_id: chunk.resource_id[run.start],
            count: run.len(),
            at: chunk.at_ms.get(run.clone()).unwrap_or(&[]),
            pct,
            rates,
            pct_missing: pct.map(|v| chunk.missing && v.contains(&NO_PCT)),
            rates_missing: rates.map(|v| chunk.missing && v.contains(&NO_RATE)),
            unsorted: false,
        };
        summarise(&cols, day, &mut self.scratch)
    }
}

/// Summarises a host's day. The summary's loops (sums, least and
/// greatest, the percentile's counting passes, rate × time products) are
/// a quarter of the fleet analysis; the release build targets baseline
/// x86-64, whose vectors hold four 32-bit or two 64-bit lanes and have no
/// 32-bit min/max, so on a processor with AVX2 the same code is used
/// compiled for it (twice the lanes), chosen at run time. The arithmetic,
/// and so every figure, is the same either way.
fn summarise(cols: &DayColumns<'_>, day: Day, scratch: &mut Scratch) -> ResourceDay {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor was just found to have AVX2.
        return unsafe { summarise_avx2(cols, day, scratch) };
    }
    summarise_here(cols, day, scratch)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn summarise_avx2(cols: &DayColumns<'_>, day: Day, scratch: &mut Scratch) -> ResourceDay {
    summarise_here(cols, day, scratch)
}

/// [`summarise`] for the processor it is compiled for: everything it
/// calls is inlined into it, so that it is compiled so too.
#[inline(always)]
fn summarise_here(cols: &DayColumns<'_>, day: Day, scratch: &mut Scratch) -> ResourceDay {
    let cpu = level(cols.pct[0], cols.pct_missing[0], true);
    let memory = level(cols.pct[1], cols.pct_missing[1], false);
    fill_covers(cols.at, cols.unsorted, scratch);
    let mut bytes = [0f64; 4];
    for (k, b) in bytes.iter_mut().enumerate() {
        let rates = cols.rates[k];
        *b = if rates.is_empty() {
            0.0
        } else if cols.rates_missing[k] {
            f64::NAN
        } else {
            bytes_moved(rates, &scratch.covers)
        };
    }
    ResourceDay {
        resource_id: cols.resource_id,
        day,
        count: cols.count as u32,
        cpu_avg: cpu.avg,
        cpu_max: cpu.max,
        cpu_p95: cpu.p95,
        memory_avg: memory.avg,
        memory_max: memory.max,
        disk_read_bytes: bytes[0],
        disk_write_bytes: bytes[1],
        net_rx_bytes: bytes[2],
        net_tx_bytes: bytes[3],
    }
}

/// The milliseconds each reading at `at` covers, in time order, into
/// `scratch.covers`: the gap since the previous reading, capped; the first
/// covers the gap to the next.
#[inline(always)]
fn fill_covers(at: &[i64], unsorted: bool, scratch: &mut Scratch) {
    let covers = &mut scratch.covers;
    covers.clear();
    let cap = |gap: i64| gap.clamp(0, MAX_GAP_MS);
    if !unsorted {
        if let Some(first) = at.first() {
            covers.push(at.get(1).map_or(LONE_READING_MS, |next| cap(next - first)));
        }
        covers.extend(at.windows(2).map(|w| cap(w[1] - w[0])));
        return;
    }
    covers.resize(at.len(), 0);
    let order = &mut scratch.order;
    order.clear();
    order.extend(0..at.len() as u32);
    order.sort_by_key(|&i| at[i as usize]);
    for w in order.windows(2) {
        covers[w[1] as usize] = cap(at[w[1] as usize] - at[w[0] as usize]);
    }
    if let Some(&first) = order.first() {
        covers[first as usize] = match order.get(1) {
            Some(&next) => cap(at[next as usize] - at[first as usize]),
            None => LONE_READING_MS,
        };
    }
}

/// Bytes moved at `rates` (hundredths of a byte per second) over `covers`
/// (milliseconds, each below 2^20), summed exactly. The covers of a day's
/// readings add up to less than 2^27 ms (a day and one capped gap), so with
/// every rate below 2^32 hundredths (43 MB/s) each product is one 32 × 32
/// bit multiplication and the sum fits a `u64`; faster rates take `i128`.
#[inline(always)]
fn bytes_moved(rates: &[i64], covers: &[i64]) -> f64 {
    // Rates are never negative in practice; one that is takes the wide sum.
    let bits = rates.iter().fold(0u64, |bits, &n| bits | n as u64);
    if bits < 1 << 32 {
        let narrow: u64 =
            rates.iter().zip(covers).map(|(&n, &ms)| u64::from(n as u32) * u64::from(ms as u32)).sum();
        // One rounding, as from the wide sum below.
        narrow as f64 / HUNDREDTH_MS_PER_BYTE
    } else {
        let wide: i128 = rates.iter().zip(covers).map(|(&n, &ms)| i128::from(n) * i128::from(ms)).sum();
        wide as f64 / HUNDREDTH_MS_PER_BYTE
    }
}

/// Average, maximum and (when asked) 95th percentile of a level such as
/// CPU %; all zero for a metric not read.
struct Level {
    avg: f32,
    max: f32,
    p95: f32,
}

#[inline(always)]
fn level(v: &[i32], missing: bool, with_p95: bool) -> Level {
    if v.is_empty() {
        return Level { avg: 0.0, max: 0.0, p95: 0.0 };
    }
    if missing {
        return level_with_nan(v, with_p95);
    }
    // Three plain loops, which the compiler turns into vector code.
    let sum: i64 = v.iter().map(|&x| i64::from(x)).sum();
    let lo = v.iter().copied().min().unwrap_or(0);
    let hi = v.iter().copied().max().unwrap_or(0);
    // Exact: |sum| < 2^53. One rounding to f64, one to f32.
    let avg = (sum as f64 / (v.len() as f64 * 100.0)) as f32;
    let p95 =
        if with_p95 { from_hundredths(i64::from(kth_smallest(v, p95_rank(v.len()), (lo, hi)))) } else { 0.0 };
    Level { avg, max: from_hundredths(i64::from(hi)), p95 }
}

/// Nearest rank of the 95th percentile among `n` values, from 0.
fn p95_rank(n: usize) -> usize {
    (n * 95).div_ceil(100).max(1) - 1
}

/// [`level`] of a day with a missing reading, in `f32` as the readings are
/// handed out (NaN for the missing one), so it answers as it always has.
fn level_with_nan(v: &[i32], with_p95: bool) -> Level {
    let mut f: Vec<f32> =
        v.iter().map(|&x| if x == NO_PCT { f32::NAN } else { from_hundredths(i64::from(x)) }).collect();
    let (sum, max) = f.iter().fold((0.0, f32::NEG_INFINITY), |(s, m), &x| (s + f64::from(x), m.max(x)));
    let p95 = if with_p95 {
        let rank = p95_rank(f.len());
        *f.select_nth_unstable_by(rank, f32::total_cmp).1
    } else {
        0.0
    };
    Level { avg: (sum / f.len() as f64) as f32, max, p95 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host's day of noisy readings, five minutes apart, some late
    /// (out of time order) and some bursts past 2^32 hundredths a second.
    fn group_of_a_noisy_day(seed: u64) -> Group {
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut g = Group { columns: Columns::ALL, ..Group::default() };
        g.start(7);
        for i in 0..288i64 {
            let burst = next() % 50 == 0;
            let rate = (next() % 5_000_000) as f32 + if burst { 9.0e7 } else { 0.0 };
            g.push_row(&Row {
                resource_id: 7,
                at_ms: 1_780_000_000_000 + ((i * 7) % 288) * 300_000,
                cpu_pct: (next() % 10_001) as f32 / 100.0,
                memory_pct: (next() % 10_001) as f32 / 100.0,
                disk_read_bps: rate,
                disk_write_bps: (next() % 1000) as f32,
                net_rx_bps: rate / 3.0,
                net_tx_bps: (next() % 100_000) as f32 / 100.0,
                sessions: 0,
                listening: 0,
                accepted: None,
            });
        }
        g.unsorted = true;
        g
    }

    #[test]
    fn a_day_sums_up_the_same_with_or_without_the_processors_wider_vectors() {
        let day = Day::parse("2026-06-01").unwrap();
        for seed in [1, 2, 0x2545_f491_4f6c_dd1d] {
            let group = group_of_a_noisy_day(seed);
            // The day takes both ways of adding up bytes: some rates need
            // more than 32 bits of hundredths, the others' column does not.
            assert!(group.rates[0].iter().any(|&n| n >= 1 << 32), "seed {seed}: a burst past 2^32");
            assert!(group.rates[3].iter().all(|&n| n < 1 << 32));
            let here = summarise_here(&group.columns(), day, &mut Scratch::default());
            let chosen = group_of_a_noisy_day(seed).finish(day);
            assert_eq!(here, chosen, "seed {seed}");
            assert!(here.cpu_p95 > 0.0, "{here:?}");
        }
    }
}
