//! A day file's columns in memory: as the Arrow reader hands them out
//! ([`Stored`]: decimals, nulls for missing readings) and as the statistics
//! want them ([`Chunk`]: plain hundredths in slices).

use arrow_array::{
    Array, ArrowPrimitiveType, Decimal32Array, Decimal64Array, Int64Array, PrimitiveArray, RecordBatch,
    TimestampMillisecondArray, UInt16Array, UInt32Array,
};
use arrow_schema::ArrowError;

use crate::dayfile::COLUMN_NAMES;
use crate::error::{Error, Result};
use crate::hundredths::{NO_PCT, NO_RATE, from_hundredths};
use crate::row::Row;

/// Rows of a day file as plain hundredths. A column not read is empty.
/// Only a chunk with `missing` set may hold a missing reading, as
/// [`NO_PCT`] or [`NO_RATE`].
pub(crate) struct Chunk<'a> {
    pub(crate) resource_id: &'a [i64],
    pub(crate) at_ms: &'a [i64],
    /// CPU, memory.
    pub(crate) pct: [&'a [i32]; 2],
    /// Disk read, disk write, network rx, network tx.
    pub(crate) rates: [&'a [i64]; 4],
    pub(crate) missing: bool,
    /// Whether the chunk's last host has no more rows in the file after it
    /// (the next row is another host's, or there is none): its run in the
    /// chunk is then the whole of its day in the file.
    pub(crate) ends_host: bool,
}

/// The buffers a [`Chunk`] is lent from.
#[derive(Default)]
pub(crate) struct ChunkBuf {
    pub(crate) resource_id: Vec<i64>,
    pub(crate) at_ms: Vec<i64>,
    pub(crate) pct: [Vec<i32>; 2],
    pub(crate) rates: [Vec<i64>; 4],
}

impl ChunkBuf {
    pub(crate) fn clear(&mut self) {
        self.resource_id.clear();
        self.at_ms.clear();
        self.pct.iter_mut().for_each(Vec::clear);
        self.rates.iter_mut().for_each(Vec::clear);
    }

    /// The first `rows` rows (a column not read stays empty).
    pub(crate) fn chunk(&self, rows: usize, missing: bool, ends_host: bool) -> Chunk<'_> {
        fn first<T>(c: &[T], rows: usize) -> &[T] {
            c.get(..rows).unwrap_or(&[])
        }
        let [cpu, mem] = &self.pct;
        let [dr, dw, rx, tx] = &self.rates;
        Chunk {
            resource_id: first(&self.resource_id, rows),
            at_ms: first(&self.at_ms, rows),
            pct: [cpu, mem].map(|c| first(c, rows)),
            rates: [dr, dw, rx, tx].map(|c| first(c, rows)),
            missing,
            ends_host,
        }
    }
}

/// A day file's columns as stored: readings in hundredths. A column not
/// read is `None` (`resource_id` is always read).
pub(crate) struct Stored<'a> {
    pub(crate) resource_id: &'a [i64],
    pub(crate) at_ms: &'a [i64],
    pub(crate) cpu_pct: Option<&'a Decimal32Array>,
    pub(crate) memory_pct: Option<&'a Decimal32Array>,
    /// Disk read, disk write, network rx, network tx.
    pub(crate) rates: [Option<&'a Decimal64Array>; 4],
    pub(crate) sessions: &'a [u16],
    pub(crate) listening: &'a [u16],
    /// `None` in a file of format 2, which did not keep it.
    pub(crate) accepted: Option<&'a UInt32Array>,
}

impl<'a> Stored<'a> {
    /// The columns of a record batch read from a day file.
    pub(crate) fn of(rb: &'a RecordBatch) -> Result<Stored<'a>> {
        fn col<A: Array + 'static>(rb: &RecordBatch, i: usize) -> Result<Option<&A>> {
            match rb.column_by_name(COLUMN_NAMES[i]) {
                None => Ok(None),
                Some(a) => a.as_any().downcast_ref::<A>().map(Some).ok_or_else(|| Error::Arrow {
                    action: "read a day-file column",
                    cause: ArrowError::SchemaError(format!(
                        "column {} has type {}",
                        COLUMN_NAMES[i],
                        a.data_type()
                    )),
                }),
            }
        }
        fn values<T: ArrowPrimitiveType>(a: Option<&PrimitiveArray<T>>) -> &[T::Native] {
            a.map(|a| &a.values()[..]).unwrap_or(&[])
        }
        Ok(Stored {
            resource_id: values(col::<Int64Array>(rb, 0)?),
            at_ms: values(col::<TimestampMillisecondArray>(rb, 1)?),
            cpu_pct: col(rb, 2)?,
            memory_pct: col(rb, 3)?,
            rates: [col(rb, 4)?, col(rb, 5)?, col(rb, 6)?, col(rb, 7)?],
            sessions: values(col::<UInt16Array>(rb, 8)?),
            listening: values(col::<UInt16Array>(rb, 9)?),
            accepted: col(rb, 10)?,
        })
    }

    /// The batch as hundredths in `buf`, a missing reading as [`NO_PCT`] or [`NO_RATE`].
    pub(crate) fn to_chunk(&self, buf: &mut ChunkBuf) {
        fn fill<T: ArrowPrimitiveType>(
            out: &mut Vec<T::Native>,
            a: Option<&PrimitiveArray<T>>,
            none: T::Native,
        ) {
            out.clear();
            if let Some(a) = a {
                out.extend(a.iter().map(|v| v.unwrap_or(none)));
            }
        }
        buf.clear();
        buf.resource_id.extend_from_slice(self.resource_id);
        buf.at_ms.extend_from_slice(self.at_ms);
        fill(&mut buf.pct[0], self.cpu_pct, NO_PCT);
        fill(&mut buf.pct[1], self.memory_pct, NO_PCT);
        for (out, a) in buf.rates.iter_mut().zip(self.rates) {
            fill(out, a, NO_RATE);
        }
    }

    /// Row `i` as handed out: readings back in `f32`, NaN where missing,
    /// columns not read zero.
    pub(crate) fn row(&self, i: usize) -> Row {
        let pct = |a: Option<&Decimal32Array>| a.map_or(0.0, |a| reading(a, i));
        let rate = |k: usize| self.rates[k].map_or(0.0, |a| reading(a, i));
        Row {
            resource_id: self.resource_id[i],
            at_ms: self.at_ms.get(i).copied().unwrap_or(0),
            cpu_pct: pct(self.cpu_pct),
            memory_pct: pct(self.memory_pct),
            disk_read_bps: rate(0),
            disk_write_bps: rate(1),
            net_rx_bps: rate(2),
            net_tx_bps: rate(3),
            sessions: self.sessions.get(i).copied().unwrap_or(0),
            listening: self.listening.get(i).copied().unwrap_or(0),
            accepted: self.accepted.filter(|a| a.is_valid(i)).map(|a| a.value(i)),
        }
    }
}

/// Value `i` of a stored hundredths column as a reading (NaN if missing).
pub(crate) fn reading<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, i: usize) -> f32
where
    T::Native: Into<i64>,
{
    if a.is_null(i) { f32::NAN } else { from_hundredths(a.value(i).into()) }
}

/// Appends a stored hundredths column as readings (NaN where missing).
pub(crate) fn extend_readings<T: ArrowPrimitiveType>(out: &mut Vec<f32>, a: &PrimitiveArray<T>)
where
    T::Native: Into<i64>,
{
    let from = out.len();
    out.extend(a.values().iter().map(|&n| from_hundredths(n.into())));
    if let Some(nulls) = a.nulls().filter(|n| n.null_count() > 0) {
        for i in nulls.iter().enumerate().filter(|(_, valid)| !valid).map(|(i, _)| i) {
            out[from + i] = f32::NAN;
        }
    }
}
