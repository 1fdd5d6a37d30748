//! Per host and day statistics straight from raw samples, for the fleet
//! analysis: one pass over the columns it needs, days in parallel.
//!
//! A sealed day's main file is sorted by host, so a host's day is one run and
//! is summarised as the file streams past, holding one host's day in memory
//! at a time. Rows that arrived late (extra files, the unsealed WAL) are few;
//! they are read first, sorted, and merged into their host's run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::day::Day;
use crate::dayfile;
use crate::error::{Error, Result};
use crate::row::Row;
use crate::scan::{Batch, Columns};
use crate::store::DayPlan;

/// The longest gap one reading is taken to cover when adding up bytes: an
/// agent that was silent for an hour did not move an hour's worth of bytes.
const MAX_GAP_MS: i64 = 10 * 60_000;
/// What a lone reading of a day is taken to cover: the agent's interval.
const LONE_READING_MS: i64 = 60_000;

/// One host's day, summarised.
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
            Batch::from_record(day, rb)?
                .for_each_wanted(wanted, |b| late.extend((0..b.len()).filter_map(|i| b.row(i))));
            Ok(())
        })?;
    }
    late.sort_by_key(|r| (r.resource_id, r.at_ms));
    let mut m = Merge { day, late: &late, next_late: 0, out: Vec::new(), group };
    m.group.active = false;
    if plan.has_main {
        dayfile::read(&plan.files[0], columns, wanted, |rb| {
            Batch::from_record(day, rb)?.for_each_wanted(wanted, |b| m.add_sorted(b));
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
    fn add_sorted(&mut self, b: &Batch<'_>) {
        let ids = b.resource_id;
        let mut i = 0;
        while i < ids.len() {
            let r = ids[i];
            let end = i + ids[i..].partition_point(|&x| x == r);
            if !(self.group.active && self.group.resource_id == r) {
                self.flush_late_before(r);
                self.group.start(r);
                while let Some(row) = self.late.get(self.next_late).filter(|l| l.resource_id == r) {
                    self.group.push_row(row);
                    self.group.unsorted = true;
                    self.next_late += 1;
                }
            }
            self.group.extend(&b.slice(i..end));
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

/// One host's day being gathered; buffers are reused from host to host.
#[derive(Default)]
struct Group {
    /// What is read; the other vectors stay empty.
    columns: Columns,
    active: bool,
    count: usize,
    resource_id: i64,
    unsorted: bool,
    at: Vec<i64>,
    cpu: Vec<f32>,
    mem: Vec<f32>,
    disk_r: Vec<f32>,
    disk_w: Vec<f32>,
    rx: Vec<f32>,
    tx: Vec<f32>,
    order: Vec<u32>,
    scratch: Vec<f32>,
}

impl Group {
    fn start(&mut self, resource_id: i64) {
        self.active = true;
        self.resource_id = resource_id;
        self.unsorted = false;
        self.count = 0;
        for v in
            [&mut self.cpu, &mut self.mem, &mut self.disk_r, &mut self.disk_w, &mut self.rx, &mut self.tx]
        {
            v.clear();
        }
        self.at.clear();
    }

    fn extend(&mut self, b: &Batch<'_>) {
        self.count += b.len();
        self.at.extend_from_slice(b.at_ms);
        self.cpu.extend_from_slice(b.cpu_pct);
        self.mem.extend_from_slice(b.memory_pct);
        self.disk_r.extend_from_slice(b.disk_read_bps);
        self.disk_w.extend_from_slice(b.disk_write_bps);
        self.rx.extend_from_slice(b.net_rx_bps);
        self.tx.extend_from_slice(b.net_tx_bps);
    }

    fn push_row(&mut self, r: &Row) {
        self.count += 1;
        let c = self.columns;
        let push = |v: &mut Vec<f32>, on: Columns, x: f32| {
            if c.intersection(on) != Columns::NONE {
                v.push(x);
            }
        };
        push(&mut self.cpu, Columns::CPU_PCT, r.cpu_pct);
        push(&mut self.mem, Columns::MEMORY_PCT, r.memory_pct);
        push(&mut self.disk_r, Columns::DISK_READ_BPS, r.disk_read_bps);
        push(&mut self.disk_w, Columns::DISK_WRITE_BPS, r.disk_write_bps);
        push(&mut self.rx, Columns::NET_RX_BPS, r.net_rx_bps);
        push(&mut self.tx, Columns::NET_TX_BPS, r.net_tx_bps);
        if c.intersection(Columns::AT_MS) != Columns::NONE {
            self.at.push(r.at_ms);
        }
    }

    fn finish(&mut self, day: Day) -> ResourceDay {
        self.active = false;
        let n = self.count;
        let (cpu_sum, cpu_max) = sum_max(&self.cpu);
        let (mem_sum, mem_max) = sum_max(&self.mem);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.cpu);
        let rank = (self.scratch.len() * 95).div_ceil(100).max(1) - 1;
        let cpu_p95 = if self.scratch.is_empty() {
            0.0
        } else {
            *self.scratch.select_nth_unstable_by(rank, f32::total_cmp).1
        };

        // Bytes: every reading's rate times the time it covers, in time order.
        let n_at = self.at.len();
        self.order.clear();
        self.order.extend(0..n_at as u32);
        if self.unsorted {
            let at = &self.at;
            self.order.sort_by_key(|&i| at[i as usize]);
        }
        let mut bytes = [0f64; 4];
        let mut prev: Option<i64> = None;
        let rate = |v: &[f32], i: usize| f64::from(v.get(i).copied().unwrap_or(0.0));
        for k in 0..n_at {
            let i = self.order[k] as usize;
            let gap = match prev {
                Some(p) => self.at[i] - p,
                None => match self.order.get(k + 1) {
                    Some(&j) => self.at[j as usize] - self.at[i],
                    None => LONE_READING_MS,
                },
            };
            prev = Some(self.at[i]);
            let secs = gap.clamp(0, MAX_GAP_MS) as f64 / 1000.0;
            bytes[0] += rate(&self.disk_r, i) * secs;
            bytes[1] += rate(&self.disk_w, i) * secs;
            bytes[2] += rate(&self.rx, i) * secs;
            bytes[3] += rate(&self.tx, i) * secs;
        }
        let avg = |sum: f64, v: &[f32]| if v.is_empty() { 0.0 } else { (sum / v.len() as f64) as f32 };
        ResourceDay {
            resource_id: self.resource_id,
            day,
            count: n as u32,
            cpu_avg: avg(cpu_sum, &self.cpu),
            cpu_max,
            cpu_p95,
            memory_avg: avg(mem_sum, &self.mem),
            memory_max: mem_max,
            disk_read_bytes: bytes[0],
            disk_write_bytes: bytes[1],
            net_rx_bytes: bytes[2],
            net_tx_bytes: bytes[3],
        }
    }
}

/// Sum and maximum; (0, 0) for no values.
fn sum_max(v: &[f32]) -> (f64, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.iter().fold((0.0, f32::NEG_INFINITY), |(s, m), &x| (s + f64::from(x), m.max(x)))
}
