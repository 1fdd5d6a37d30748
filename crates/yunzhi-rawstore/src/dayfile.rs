//! Day files: one Apache Parquet file per civil day (plus small extra files
//! for rows that arrived after the day was sealed).
//!
//! Layout choices, each measured with `examples/measure.rs`:
//! - rows sorted by `resource_id` then `at_ms`, so a host's day is one run,
//!   `resource_id` and `at_ms` delta-encode to almost nothing, and a filtered
//!   scan can skip row groups by their min/max statistics;
//! - readings as whole hundredths (see `hundredths.rs`) in `DECIMAL(9, 2)`
//!   (percentages, `INT32`) and `DECIMAL(18, 2)` (byte rates, `INT64`)
//!   columns, so any Parquet reader sees `12.34`, not a float near it;
//! - the small counters dictionary-encoded (few distinct values);
//! - connections accepted a nullable `UINT32` (null: not counted), so
//!   another reader tells "none accepted" from "not counted";
//! - `at_ms` a UTC millisecond TIMESTAMP so other Parquet readers (the
//!   district's big-data platform) see a time without being told;
//! - only encodings every mainstream reader decodes (PLAIN, RLE dictionary,
//!   DELTA_BINARY_PACKED), for the same reason.
//!
//! The key-value metadata carries the layout's version
//! (`yunzhi.format`); a file of an unknown version is refused by name
//! rather than misread. Format 2 files (before connections accepted were
//! kept) are read as they are, their rows' connections not counted.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Decimal32Array, Decimal64Array, Int64Array, RecordBatch, TimestampMillisecondArray,
    UInt16Array, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use memmap2::MmapOptions;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression as PqCompression, Encoding, ZstdLevel};
use parquet::file::metadata::{
    FileMetaData, KeyValue, ParquetMetaDataReader, RowGroupMetaData, SortingColumn,
};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use crate::day::Day;
use crate::error::{Error, Result, io, pq};
use crate::hundredths::{PCT_LIMIT, RATE_LIMIT, to_hundredths};
use crate::pages::Column;
use crate::row::Row;
use crate::scan::Columns;
use crate::stored::{Chunk, ChunkBuf, Stored};
use crate::wal::sync_dir;

/// Column names, in file order.
pub const COLUMN_NAMES: [&str; 11] = [
    "resource_id",
    "at_ms",
    "cpu_pct",
    "memory_pct",
    "disk_read_bps",
    "disk_write_bps",
    "net_rx_bps",
    "net_tx_bps",
    "sessions",
    "listening",
    "accepted",
];
/// The percentage columns (hundredths in `INT32`) and the byte-rate columns
/// (hundredths in `INT64`), by index into [`COLUMN_NAMES`].
const PCT_COLUMNS: std::ops::Range<usize> = 2..4;
const RATE_COLUMNS: std::ops::Range<usize> = 4..8;
/// `DECIMAL(9, 2)`: the most digits an `INT32` decimal may declare.
const PCT_DECIMAL: (u8, i8) = (9, 2);
/// `DECIMAL(18, 2)`: the most digits an `INT64` decimal may declare.
const RATE_DECIMAL: (u8, i8) = (18, 2);
const WAL_THROUGH_KEY: &str = "yunzhi.wal_through";
/// The layout's version. 1 (no key) stored readings as `FLOAT`; 2 stores
/// them as hundredths; 3 adds the connections accepted. Bump it whenever a
/// reader of the old layout would misread a file of the new one.
const FORMAT_KEY: &str = "yunzhi.format";
const FORMAT_VERSION: u32 = 3;
/// The versions this build reads: the columns of 2 are those of 3 but the last.
const FORMATS_READ: [u32; 2] = [2, 3];
/// Rows turned into one Arrow batch while writing: bounds the copy's memory.
const WRITE_CHUNK_ROWS: usize = 65_536;
/// Rows per batch while reading.
const READ_BATCH_ROWS: usize = 65_536;

/// How day files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Zstandard at this level (1–22): the smallest files.
    Zstd(i32),
    /// Snappy: faster, bigger.
    Snappy,
    /// None, to see what the encodings alone achieve.
    None,
}

/// The Arrow schema of a day file. Readings are decimals with two places
/// (whole hundredths); a reading that was NaN is null.
pub fn schema() -> SchemaRef {
    let pct = |name: &str| Field::new(name, DataType::Decimal32(PCT_DECIMAL.0, PCT_DECIMAL.1), true);
    let rate = |name: &str| Field::new(name, DataType::Decimal64(RATE_DECIMAL.0, RATE_DECIMAL.1), true);
    Arc::new(Schema::new(vec![
        Field::new(COLUMN_NAMES[0], DataType::Int64, false),
        Field::new(COLUMN_NAMES[1], DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        pct(COLUMN_NAMES[2]),
        pct(COLUMN_NAMES[3]),
        rate(COLUMN_NAMES[4]),
        rate(COLUMN_NAMES[5]),
        rate(COLUMN_NAMES[6]),
        rate(COLUMN_NAMES[7]),
        Field::new(COLUMN_NAMES[8], DataType::UInt16, false),
        Field::new(COLUMN_NAMES[9], DataType::UInt16, false),
        Field::new(COLUMN_NAMES[10], DataType::UInt32, true),
    ]))
}

fn writer_properties(
    compression: Compression,
    row_group_rows: usize,
    wal_through: u64,
) -> Result<WriterProperties> {
    let codec = match compression {
        Compression::Zstd(level) => PqCompression::ZSTD(
            ZstdLevel::try_new(level).map_err(pq("configure zstd level for", PathBuf::new()))?,
        ),
        Compression::Snappy => PqCompression::SNAPPY,
        Compression::None => PqCompression::UNCOMPRESSED,
    };
    let col = |i: usize| ColumnPath::from(COLUMN_NAMES[i]);
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(codec)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_dictionary_enabled(false)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: 0, descending: false, nulls_first: false },
            SortingColumn { column_idx: 1, descending: false, nulls_first: false },
        ]))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(FORMAT_KEY.into(), FORMAT_VERSION.to_string()),
            KeyValue::new(WAL_THROUGH_KEY.into(), wal_through.to_string()),
        ]))
        .set_column_encoding(col(0), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(col(1), Encoding::DELTA_BINARY_PACKED);
    for i in PCT_COLUMNS.chain(RATE_COLUMNS) {
        b = b.set_column_encoding(col(i), Encoding::DELTA_BINARY_PACKED);
    }
    for i in 8..11 {
        b = b.set_column_dictionary_enabled(col(i), true);
    }
    Ok(b.build())
}

/// How a day file is to be written.
pub(crate) struct WriteSpec<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) file_name: String,
    pub(crate) compression: Compression,
    pub(crate) row_group_rows: usize,
    /// The highest WAL segment whose rows of this day the file accounts for.
    pub(crate) wal_through: u64,
}

/// Writes `rows` (already sorted) as a day file: to a temporary name, synced,
/// then renamed, so a crash leaves either no file or a whole one. Returns the
/// final path and its size in bytes.
pub(crate) fn write(spec: &WriteSpec<'_>, rows: &[Row]) -> Result<(PathBuf, u64)> {
    let path = spec.dir.join(&spec.file_name);
    let tmp = spec.dir.join(format!("{TMP_PREFIX}{}", spec.file_name));
    let file = File::create(&tmp).map_err(io("create", &tmp))?;
    let props = writer_properties(spec.compression, spec.row_group_rows, spec.wal_through)?;
    let schema = schema();
    let mut writer =
        ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema.clone(), Some(props))
            .map_err(pq("start writing", &tmp))?;
    for chunk in rows.chunks(WRITE_CHUNK_ROWS) {
        let batch = record_batch(&schema, chunk)?;
        writer.write(&batch).map_err(pq("write", &tmp))?;
    }
    let buf = writer.into_inner().map_err(pq("finish", &tmp))?;
    let file = buf.into_inner().map_err(|e| io("flush", &tmp)(e.into_error()))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    let bytes = file.metadata().map_err(io("stat", &tmp))?.len();
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io("rename into place", &tmp))?;
    sync_dir(spec.dir)?;
    Ok((path, bytes))
}

/// Prefix of a day file still being written; leftovers are deleted on open.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// The name of a day's main file (`extra == 0`) or of its `extra`-th late-rows file.
pub(crate) fn file_name(day: Day, extra: u32) -> String {
    if extra == 0 { format!("{day}.parquet") } else { format!("{day}.{extra}.parquet") }
}

/// The day and extra number in a day file's name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<(Day, u32)> {
    let stem = name.strip_suffix(".parquet")?;
    let day = Day::parse(stem.get(..10)?)?;
    match stem.get(10..)? {
        "" => Some((day, 0)),
        rest => rest.strip_prefix('.')?.parse().ok().filter(|n| *n > 0).map(|n| (day, n)),
    }
}

/// What the footer of a day file says.
pub(crate) struct Footer {
    pub(crate) rows: u64,
    pub(crate) wal_through: u64,
}

fn metadata_value<'m>(fm: &'m FileMetaData, key: &str) -> Option<&'m str> {
    fm.key_value_metadata()?.iter().find(|k| k.key == key)?.value.as_deref()
}

/// Refuses a file whose layout this build does not know, naming what it found.
fn check_format(path: &Path, fm: &FileMetaData) -> Result<()> {
    let found = metadata_value(fm, FORMAT_KEY);
    if found.and_then(|v| v.parse::<u32>().ok()).is_some_and(|v| FORMATS_READ.contains(&v)) {
        return Ok(());
    }
    let found = match found {
        None => format!("no {FORMAT_KEY} key (format 1, readings as FLOAT)"),
        Some(v) => format!("{FORMAT_KEY} = {v:?}"),
    };
    Err(Error::Malformed {
        path: path.into(),
        what: format!("{found}; this build reads day files of formats {FORMATS_READ:?} only"),
    })
}

/// Reads a day file's footer, refusing a file of another format version.
pub(crate) fn read_footer(path: &Path) -> Result<Footer> {
    let file = File::open(path).map_err(io("open", path))?;
    let meta =
        ParquetMetaDataReader::new().parse_and_finish(&file).map_err(pq("read the footer of", path))?;
    let fm = meta.file_metadata();
    check_format(path, fm)?;
    let wal_through = metadata_value(fm, WAL_THROUGH_KEY).and_then(|v| v.parse().ok()).ok_or_else(|| {
        Error::Malformed { path: path.into(), what: format!("no {WAL_THROUGH_KEY} in its metadata") }
    })?;
    Ok(Footer { rows: u64::try_from(fm.num_rows()).unwrap_or(0), wal_through })
}

/// The compressed bytes of each column of a day file, summed over its row groups.
pub(crate) fn column_bytes(path: &Path) -> Result<Vec<(String, u64)>> {
    let file = File::open(path).map_err(io("open", path))?;
    let meta =
        ParquetMetaDataReader::new().parse_and_finish(&file).map_err(pq("read the footer of", path))?;
    let mut out: Vec<(String, u64)> = Vec::new();
    for rg in meta.row_groups() {
        for c in rg.columns() {
            let name = c.column_descr().name();
            let bytes = u64::try_from(c.compressed_size()).unwrap_or(0);
            match out.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 += bytes,
                None => out.push((name.to_owned(), bytes)),
            }
        }
    }
    Ok(out)
}

/// Whether a row group could hold one of `wanted` (sorted, deduplicated),
/// by its `resource_id` statistics; `None` wants every row group.
fn may_hold(rg: &RowGroupMetaData, wanted: Option<&[i64]>) -> bool {
    let Some(wanted) = wanted else { return true };
    match rg.column(0).statistics() {
        Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(&lo), Some(&hi)) => {
                let from = wanted.partition_point(|&r| r < lo);
                wanted.get(from).is_some_and(|&r| r <= hi)
            }
            _ => true,
        },
        _ => true,
    }
}

/// Reads the projected columns of a day file, giving batches to `f`.
/// With `resources` (sorted, deduplicated) only row groups whose
/// `resource_id` range could hold one of them are decoded.
pub(crate) fn read(
    path: &Path,
    columns: Columns,
    resources: Option<&[i64]>,
    f: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    read_groups(path, columns, |_, rg| may_hold(rg, resources), f)
}

/// [`read`] of the row groups `pick` chooses.
fn read_groups(
    path: &Path,
    columns: Columns,
    pick: impl Fn(usize, &RowGroupMetaData) -> bool,
    mut f: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(io("open", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq("open", path))?;
    check_format(path, builder.metadata().file_metadata())?;
    // A file of an earlier format has fewer columns, the same ones first.
    let stored = builder.parquet_schema().num_columns();
    let leaves: Vec<usize> =
        (0..COLUMN_NAMES.len().min(stored)).filter(|&i| i == 0 || columns.has_index(i)).collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let groups: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .enumerate()
        .filter(|(i, rg)| pick(*i, rg))
        .map(|(i, _)| i)
        .collect();
    let reader = builder
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .with_row_groups(groups)
        .build()
        .map_err(pq("start reading", path))?;
    for batch in reader {
        let batch = batch.map_err(|cause| Error::Arrow { action: "decode a day-file batch", cause })?;
        f(&batch)?;
    }
    Ok(())
}

/// Reads the projected columns of a day file as hundredths, giving
/// [`Chunk`]s of up to [`CHUNK_ROWS`] rows to `f`; with `resources`, only
/// row groups that could hold one of them.
///
/// A row group whose projected readings are all present (its statistics
/// count no nulls: the usual case) is decoded page by page (`pages.rs`);
/// one with a missing reading goes through the Arrow reader.
pub(crate) fn read_chunks(
    path: &Path,
    columns: Columns,
    resources: Option<&[i64]>,
    mut f: impl FnMut(&Chunk<'_>) -> Result<()>,
) -> Result<()> {
    let reader = SerializedFileReader::new(mapped(path)?).map_err(pq("open", path))?;
    check_format(path, reader.metadata().file_metadata())?;
    // The time and reading columns asked for (`resource_id` is always read).
    let projected: Vec<usize> = (1..RATE_COLUMNS.end).filter(|&c| columns.has_index(c)).collect();
    let mut buf = ChunkBuf::default();
    for (g, rg) in reader.metadata().row_groups().iter().enumerate() {
        if !may_hold(rg, resources) {
            continue;
        }
        let complete = projected.iter().all(|&c| {
            c < PCT_COLUMNS.start || rg.column(c).statistics().and_then(|s| s.null_count_opt()) == Some(0)
        });
        if !complete {
            read_groups(
                path,
                columns,
                |i, _| i == g,
                |rb| {
                    Stored::of(rb)?.to_chunk(&mut buf);
                    f(&buf.chunk(rb.num_rows(), true, false))
                },
            )?;
            continue;
        }
        let group = reader.get_row_group(g).map_err(pq("open a row group of", path))?;
        let page_reader = |c: usize| -> Result<Column<'_>> {
            let pages = group.get_column_page_reader(c).map_err(pq("read the pages of", path))?;
            Ok(Column::new(pages, path, COLUMN_NAMES[c]))
        };
        let mut ids = page_reader(0)?;
        let mut cols = projected.iter().map(|&c| Ok((c, page_reader(c)?))).collect::<Result<Vec<_>>>()?;
        let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
        let last_group = g + 1 == reader.metadata().num_row_groups();
        // `resource_id` is decoded ahead of the other columns, so that a
        // chunk can end where a host's rows do and the statistics can sum
        // nearly every host straight from the chunk. `resource_id[..ahead]`
        // are the ids decoded and not yet handed out (the next chunk's
        // first host's); the buffer keeps its length, so that decoding
        // into it never zero-fills.
        buf.resource_id.resize(CHUNK_ROWS, 0);
        let mut ahead = 0;
        let mut done = 0;
        while done < rows {
            let want = CHUNK_ROWS.min(rows - done);
            if ahead < want {
                ids.read_into(&mut buf.resource_id[ahead..want])?;
                ahead = want;
            }
            let in_view = &buf.resource_id[..want];
            let group_ends = done + want == rows;
            let last_start = in_view.partition_point(|&r| r < in_view[want - 1]);
            // Cut before the last host unless the group ends here or one host fills the chunk.
            let (n, ends_host) = match (group_ends, last_start) {
                (true, _) => (want, last_group),
                (false, 0) => (want, false),
                (false, cut) => (cut, true),
            };
            for (c, col) in &mut cols {
                match *c {
                    1 => col.read_next(&mut buf.at_ms, n)?,
                    c if PCT_COLUMNS.contains(&c) => col.read_next(&mut buf.pct[c - PCT_COLUMNS.start], n)?,
                    c => col.read_next(&mut buf.rates[c - RATE_COLUMNS.start], n)?,
                }
            }
            f(&buf.chunk(n, false, ends_host))?;
            buf.resource_id.copy_within(n..ahead, 0);
            ahead -= n;
            done += n;
        }
    }
    Ok(())
}

/// A day file's bytes, mapped into memory rather than read: a scan's pages
/// are then decompressed straight out of the page cache, where reading
/// the file copied every page into a buffer of its own first (a tenth of
/// a fleet scan's time). The mapping is populated up front, which costs
/// one system call rather than a fault per few pages touched.
fn mapped(path: &Path) -> Result<Bytes> {
    let file = File::open(path).map_err(io("open", path))?;
    // SAFETY: a mapping is undefined behaviour only if the file is changed
    // in place while mapped. Day files never are: each is written under a
    // temporary name, synced and renamed into place (`write`), and is only
    // ever replaced by another rename or deleted, neither of which touches
    // the bytes of a file already open.
    let map = unsafe { MmapOptions::new().populate().map(&file) }.map_err(io("map", path))?;
    Ok(Bytes::from_owner(map))
}

/// Rows per [`Chunk`]: a few hundred kilobytes of columns, which stay in
/// the processor's cache between decoding and summing.
pub(crate) const CHUNK_ROWS: usize = 4096;

/// The Arrow arrays of a day file for `rows`.
fn record_batch(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch> {
    let arrow = |cause| Error::Arrow { action: "assemble a day-file batch", cause };
    // Without a missing reading (nearly always) no validity bitmap is built.
    let pct = |f: fn(&Row) -> f32| -> Result<ArrayRef> {
        let n = |r: &Row| to_hundredths(f(r), PCT_LIMIT).map(|n| n as i32);
        let a: Decimal32Array = match rows.iter().map(n).collect::<Option<Vec<i32>>>() {
            Some(all) => all.into(),
            None => rows.iter().map(n).collect(),
        };
        Ok(Arc::new(a.with_precision_and_scale(PCT_DECIMAL.0, PCT_DECIMAL.1).map_err(arrow)?))
    };
    let rate = |f: fn(&Row) -> f32| -> Result<ArrayRef> {
        let n = |r: &Row| to_hundredths(f(r), RATE_LIMIT);
        let a: Decimal64Array = match rows.iter().map(n).collect::<Option<Vec<i64>>>() {
            Some(all) => all.into(),
            None => rows.iter().map(n).collect(),
        };
        Ok(Arc::new(a.with_precision_and_scale(RATE_DECIMAL.0, RATE_DECIMAL.1).map_err(arrow)?))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.resource_id))),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.at_ms)).with_timezone("UTC"),
        ),
        pct(|r| r.cpu_pct)?,
        pct(|r| r.memory_pct)?,
        rate(|r| r.disk_read_bps)?,
        rate(|r| r.disk_write_bps)?,
        rate(|r| r.net_rx_bps)?,
        rate(|r| r.net_tx_bps)?,
        Arc::new(UInt16Array::from_iter_values(rows.iter().map(|r| r.sessions))),
        Arc::new(UInt16Array::from_iter_values(rows.iter().map(|r| r.listening))),
        Arc::new(UInt32Array::from_iter(rows.iter().map(|r| r.accepted))),
    ];
    RecordBatch::try_new(schema.clone(), columns).map_err(arrow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_file_names_parse_back_to_their_day_and_extra_number() {
        let day = Day::parse("2026-11-26").expect("date");
        assert_eq!(parse_file_name(&file_name(day, 0)), Some((day, 0)));
        assert_eq!(parse_file_name(&file_name(day, 3)), Some((day, 3)));
        assert_eq!(parse_file_name("2026-11-26.0.parquet"), None);
        assert_eq!(parse_file_name(".tmp-2026-11-26.parquet"), None);
        assert_eq!(parse_file_name("2026-11-26.parquet.bak"), None);
    }
}
