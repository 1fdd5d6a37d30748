//! What a scan hands out: a day's rows as column slices.

use std::ops::{BitOr, Range};

use arrow_array::{ArrowPrimitiveType, PrimitiveArray};

use crate::day::Day;
use crate::row::{Row, accepted_cell, accepted_of};
use crate::stored::{Stored, extend_readings};

/// Which columns a scan decodes. `resource_id` is always decoded; a column
/// left out is an empty slice in every [`Batch`], and costs nothing to read
/// from a day file (columnar storage decodes only what is asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Columns(u16);

impl Default for Columns {
    fn default() -> Columns {
        Columns::ALL
    }
}

impl Columns {
    /// Only `resource_id`.
    pub const NONE: Columns = Columns(1);
    pub const AT_MS: Columns = Columns(1 << 1);
    pub const CPU_PCT: Columns = Columns(1 << 2);
    pub const MEMORY_PCT: Columns = Columns(1 << 3);
    pub const DISK_READ_BPS: Columns = Columns(1 << 4);
    pub const DISK_WRITE_BPS: Columns = Columns(1 << 5);
    pub const NET_RX_BPS: Columns = Columns(1 << 6);
    pub const NET_TX_BPS: Columns = Columns(1 << 7);
    pub const SESSIONS: Columns = Columns(1 << 8);
    pub const LISTENING: Columns = Columns(1 << 9);
    pub const ACCEPTED: Columns = Columns(1 << 10);
    /// Every column.
    pub const ALL: Columns = Columns((1 << 11) - 1);

    /// Both sets of columns.
    pub const fn union(self, other: Columns) -> Columns {
        Columns(self.0 | other.0)
    }

    /// The columns in both sets (`resource_id` always).
    pub const fn intersection(self, other: Columns) -> Columns {
        Columns((self.0 & other.0) | 1)
    }

    /// Whether the column at `index` of [`crate::COLUMN_NAMES`] is in the set.
    pub(crate) fn has_index(self, index: usize) -> bool {
        index == 0 || (index < 16 && self.0 & (1 << index) != 0)
    }
}

impl BitOr for Columns {
    type Output = Columns;
    fn bitor(self, rhs: Columns) -> Columns {
        self.union(rhs)
    }
}

/// Rows of one day as column slices, sorted by `resource_id` then `at_ms`.
///
/// A day can come as several batches: a day file is read in chunks, and rows
/// that arrived late (an extra file, or the unsealed WAL) come in batches of
/// their own, so one host's day may be split over batches.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub day: Day,
    pub resource_id: &'a [i64],
    pub at_ms: &'a [i64],
    pub cpu_pct: &'a [f32],
    pub memory_pct: &'a [f32],
    pub disk_read_bps: &'a [f32],
    pub disk_write_bps: &'a [f32],
    pub net_rx_bps: &'a [f32],
    pub net_tx_bps: &'a [f32],
    pub sessions: &'a [u16],
    pub listening: &'a [u16],
    /// Connections accepted, [`crate::NOT_COUNTED`] where not counted;
    /// empty where the column was not scanned or the day file predates it.
    pub accepted: &'a [u32],
}

impl<'a> Batch<'a> {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.resource_id.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.resource_id.is_empty()
    }

    /// Row `i` put back together; columns not scanned read as zero.
    pub fn row(&self, i: usize) -> Option<Row> {
        let f = |c: &[f32]| c.get(i).copied().unwrap_or(0.0);
        Some(Row {
            resource_id: *self.resource_id.get(i)?,
            at_ms: self.at_ms.get(i).copied().unwrap_or(0),
            cpu_pct: f(self.cpu_pct),
            memory_pct: f(self.memory_pct),
            disk_read_bps: f(self.disk_read_bps),
            disk_write_bps: f(self.disk_write_bps),
            net_rx_bps: f(self.net_rx_bps),
            net_tx_bps: f(self.net_tx_bps),
            sessions: self.sessions.get(i).copied().unwrap_or(0),
            listening: self.listening.get(i).copied().unwrap_or(0),
            accepted: self.accepted.get(i).copied().and_then(accepted_of),
        })
    }

    /// The rows in `range` (empty columns stay empty).
    pub(crate) fn slice(&self, range: Range<usize>) -> Batch<'a> {
        fn s<'b, T>(c: &'b [T], r: &Range<usize>) -> &'b [T] {
            c.get(r.clone()).unwrap_or(&[])
        }
        Batch {
            day: self.day,
            resource_id: s(self.resource_id, &range),
            at_ms: s(self.at_ms, &range),
            cpu_pct: s(self.cpu_pct, &range),
            memory_pct: s(self.memory_pct, &range),
            disk_read_bps: s(self.disk_read_bps, &range),
            disk_write_bps: s(self.disk_write_bps, &range),
            net_rx_bps: s(self.net_rx_bps, &range),
            net_tx_bps: s(self.net_tx_bps, &range),
            sessions: s(self.sessions, &range),
            listening: s(self.listening, &range),
            accepted: s(self.accepted, &range),
        }
    }

    /// Calls `f` with the parts of the batch whose resource is in `wanted`
    /// (sorted, deduplicated), or with the whole batch when `wanted` is `None`.
    pub(crate) fn for_each_wanted(&self, wanted: Option<&[i64]>, mut f: impl FnMut(&Batch<'a>)) {
        wanted_runs(self.resource_id, wanted, |run| f(&self.slice(run)));
    }
}

/// Calls `f` with each non-empty run of `ids` (sorted) whose resources are
/// in `wanted` (sorted, deduplicated), or with all of `ids` when `wanted` is `None`.
pub(crate) fn wanted_runs(ids: &[i64], wanted: Option<&[i64]>, mut f: impl FnMut(Range<usize>)) {
    let Some(wanted) = wanted else {
        if !ids.is_empty() {
            f(0..ids.len());
        }
        return;
    };
    let mut i = 0;
    while i < ids.len() {
        // Jump to the first row whose resource is the next wanted one at or after ids[i].
        let Some(&next) = wanted.get(wanted.partition_point(|&w| w < ids[i])) else { return };
        i += ids[i..].partition_point(|&r| r < next);
        let start = i;
        while i < ids.len() && wanted.binary_search(&ids[i]).is_ok() {
            let r = ids[i];
            i += ids[i..].partition_point(|&x| x == r);
        }
        if i > start {
            f(start..i);
        }
    }
}

/// Readings of a day-file batch turned back into `f32`, lent out as a [`Batch`].
#[derive(Debug, Default)]
pub(crate) struct Readings {
    cpu_pct: Vec<f32>,
    memory_pct: Vec<f32>,
    /// Disk read, disk write, network rx, network tx.
    rates: [Vec<f32>; 4],
    accepted: Vec<u32>,
}

impl Readings {
    /// `s` as a batch of `day`, its readings converted into these buffers.
    pub(crate) fn batch<'a>(&'a mut self, day: Day, s: &Stored<'a>) -> Batch<'a> {
        fn fill<'b, T: ArrowPrimitiveType>(out: &'b mut Vec<f32>, a: Option<&PrimitiveArray<T>>) -> &'b [f32]
        where
            T::Native: Into<i64>,
        {
            out.clear();
            if let Some(a) = a {
                extend_readings(out, a);
            }
            out
        }
        let [disk_r, disk_w, rx, tx] = &mut self.rates;
        self.accepted.clear();
        if let Some(a) = s.accepted {
            self.accepted.extend(a.iter().map(accepted_cell));
        }
        Batch {
            day,
            resource_id: s.resource_id,
            at_ms: s.at_ms,
            cpu_pct: fill(&mut self.cpu_pct, s.cpu_pct),
            memory_pct: fill(&mut self.memory_pct, s.memory_pct),
            disk_read_bps: fill(disk_r, s.rates[0]),
            disk_write_bps: fill(disk_w, s.rates[1]),
            net_rx_bps: fill(rx, s.rates[2]),
            net_tx_bps: fill(tx, s.rates[3]),
            sessions: s.sessions,
            listening: s.listening,
            accepted: &self.accepted,
        }
    }
}

/// Owned columns: the form rows take between the WAL and a batch.
#[derive(Debug, Default)]
pub(crate) struct ColumnsBuf {
    pub(crate) resource_id: Vec<i64>,
    pub(crate) at_ms: Vec<i64>,
    pub(crate) cpu_pct: Vec<f32>,
    pub(crate) memory_pct: Vec<f32>,
    pub(crate) disk_read_bps: Vec<f32>,
    pub(crate) disk_write_bps: Vec<f32>,
    pub(crate) net_rx_bps: Vec<f32>,
    pub(crate) net_tx_bps: Vec<f32>,
    pub(crate) sessions: Vec<u16>,
    pub(crate) listening: Vec<u16>,
    pub(crate) accepted: Vec<u32>,
}

impl ColumnsBuf {
    pub(crate) fn clear(&mut self) {
        self.resource_id.clear();
        self.at_ms.clear();
        self.cpu_pct.clear();
        self.memory_pct.clear();
        self.disk_read_bps.clear();
        self.disk_write_bps.clear();
        self.net_rx_bps.clear();
        self.net_tx_bps.clear();
        self.sessions.clear();
        self.listening.clear();
        self.accepted.clear();
    }

    pub(crate) fn extend_rows(&mut self, rows: &[Row]) {
        self.resource_id.extend(rows.iter().map(|r| r.resource_id));
        self.at_ms.extend(rows.iter().map(|r| r.at_ms));
        self.cpu_pct.extend(rows.iter().map(|r| r.cpu_pct));
        self.memory_pct.extend(rows.iter().map(|r| r.memory_pct));
        self.disk_read_bps.extend(rows.iter().map(|r| r.disk_read_bps));
        self.disk_write_bps.extend(rows.iter().map(|r| r.disk_write_bps));
        self.net_rx_bps.extend(rows.iter().map(|r| r.net_rx_bps));
        self.net_tx_bps.extend(rows.iter().map(|r| r.net_tx_bps));
        self.sessions.extend(rows.iter().map(|r| r.sessions));
        self.listening.extend(rows.iter().map(|r| r.listening));
        self.accepted.extend(rows.iter().map(|r| accepted_cell(r.accepted)));
    }

    /// The buffer as a batch of `day`, showing only `columns`.
    pub(crate) fn batch(&self, day: Day, columns: Columns) -> Batch<'_> {
        fn pick<T>(c: &[T], on: bool) -> &[T] {
            if on { c } else { &[] }
        }
        Batch {
            day,
            resource_id: &self.resource_id,
            at_ms: pick(&self.at_ms, columns.has_index(1)),
            cpu_pct: pick(&self.cpu_pct, columns.has_index(2)),
            memory_pct: pick(&self.memory_pct, columns.has_index(3)),
            disk_read_bps: pick(&self.disk_read_bps, columns.has_index(4)),
            disk_write_bps: pick(&self.disk_write_bps, columns.has_index(5)),
            net_rx_bps: pick(&self.net_rx_bps, columns.has_index(6)),
            net_tx_bps: pick(&self.net_tx_bps, columns.has_index(7)),
            sessions: pick(&self.sessions, columns.has_index(8)),
            listening: pick(&self.listening, columns.has_index(9)),
            accepted: pick(&self.accepted, columns.has_index(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_filter_yields_only_the_wanted_runs_of_a_sorted_batch() {
        let rows: Vec<Row> =
            [1, 1, 2, 3, 3, 3, 5, 8, 8].iter().map(|&r| Row { resource_id: r, ..Row::default() }).collect();
        let mut buf = ColumnsBuf::default();
        buf.extend_rows(&rows);
        let batch = buf.batch(Day::from_index(0), Columns::ALL);
        let mut seen = Vec::new();
        batch.for_each_wanted(Some(&[2, 3, 4, 8, 9]), |b| seen.push(b.resource_id.to_vec()));
        assert_eq!(seen, vec![vec![2, 3, 3, 3], vec![8, 8]]);
    }
}
