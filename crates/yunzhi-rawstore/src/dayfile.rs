//! Day files: one Apache Parquet file per civil day (plus small extra files
//! for rows that arrived after the day was sealed).
//!
//! Layout choices, each measured with `examples/measure.rs`:
//! - rows sorted by `resource_id` then `at_ms`, so a host's day is one run,
//!   `resource_id` and `at_ms` delta-encode to almost nothing, and a filtered
//!   scan can skip row groups by their min/max statistics;
//! - the `f32` columns BYTE_STREAM_SPLIT with dictionaries off: noisy
//!   utilisation has nearly as many distinct values as rows, and splitting
//!   the bytes puts the slowly changing exponent bytes together for zstd;
//! - the two small counters dictionary-encoded (few distinct values);
//! - `at_ms` a UTC millisecond TIMESTAMP so other Parquet readers (the
//!   district's big-data platform) see a time without being told.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, TimestampMillisecondArray, UInt16Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression as PqCompression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use crate::day::Day;
use crate::error::{Error, Result, io, pq};
use crate::row::Row;
use crate::scan::{Columns, ColumnsBuf};
use crate::wal::sync_dir;

/// Column names, in file order.
pub const COLUMN_NAMES: [&str; 10] = [
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
];
const FLOAT_COLUMNS: std::ops::Range<usize> = 2..8;
const WAL_THROUGH_KEY: &str = "yunzhi.wal_through";
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

/// The Arrow schema of a day file.
pub fn schema() -> SchemaRef {
    let f32_field = |name: &str| Field::new(name, DataType::Float32, false);
    Arc::new(Schema::new(vec![
        Field::new(COLUMN_NAMES[0], DataType::Int64, false),
        Field::new(COLUMN_NAMES[1], DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        f32_field(COLUMN_NAMES[2]),
        f32_field(COLUMN_NAMES[3]),
        f32_field(COLUMN_NAMES[4]),
        f32_field(COLUMN_NAMES[5]),
        f32_field(COLUMN_NAMES[6]),
        f32_field(COLUMN_NAMES[7]),
        Field::new(COLUMN_NAMES[8], DataType::UInt16, false),
        Field::new(COLUMN_NAMES[9], DataType::UInt16, false),
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
        .set_key_value_metadata(Some(vec![KeyValue::new(WAL_THROUGH_KEY.into(), wal_through.to_string())]))
        .set_column_encoding(col(0), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(col(1), Encoding::DELTA_BINARY_PACKED);
    for i in FLOAT_COLUMNS {
        b = b.set_column_encoding(col(i), Encoding::BYTE_STREAM_SPLIT);
    }
    for i in 8..10 {
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
    let mut cols = ColumnsBuf::default();
    for chunk in rows.chunks(WRITE_CHUNK_ROWS) {
        cols.clear();
        cols.extend_rows(chunk);
        let batch = record_batch(&schema, &mut cols)?;
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

/// Reads a day file's footer.
pub(crate) fn read_footer(path: &Path) -> Result<Footer> {
    let file = File::open(path).map_err(io("open", path))?;
    let meta =
        ParquetMetaDataReader::new().parse_and_finish(&file).map_err(pq("read the footer of", path))?;
    let fm = meta.file_metadata();
    let wal_through = fm
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == WAL_THROUGH_KEY))
        .and_then(|k| k.value.as_deref())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Malformed {
            path: path.into(),
            what: format!("no {WAL_THROUGH_KEY} in its metadata"),
        })?;
    Ok(Footer { rows: u64::try_from(fm.num_rows()).unwrap_or(0), wal_through })
}

/// Reads the projected columns of a day file, giving batches to `f`.
/// With `resources` (sorted, deduplicated) only row groups whose
/// `resource_id` range could hold one of them are decoded.
pub(crate) fn read(
    path: &Path,
    columns: Columns,
    resources: Option<&[i64]>,
    mut f: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(io("open", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq("open", path))?;
    let leaves: Vec<usize> = (0..COLUMN_NAMES.len()).filter(|&i| i == 0 || columns.has_index(i)).collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let mut builder = builder.with_projection(mask).with_batch_size(READ_BATCH_ROWS);
    if let Some(wanted) = resources {
        let groups: Vec<usize> = builder
            .metadata()
            .row_groups()
            .iter()
            .enumerate()
            .filter(|(_, rg)| match rg.column(0).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(&lo), Some(&hi)) => {
                        let from = wanted.partition_point(|&r| r < lo);
                        wanted.get(from).is_some_and(|&r| r <= hi)
                    }
                    _ => true,
                },
                _ => true,
            })
            .map(|(i, _)| i)
            .collect();
        builder = builder.with_row_groups(groups);
    }
    let reader = builder.build().map_err(pq("start reading", path))?;
    for batch in reader {
        let batch = batch.map_err(|cause| Error::Arrow { action: "decode a day-file batch", cause })?;
        f(&batch)?;
    }
    Ok(())
}

/// Builds the Arrow arrays of a day file, moving the column vectors out of `c`.
pub(crate) fn record_batch(schema: &SchemaRef, c: &mut ColumnsBuf) -> Result<RecordBatch> {
    use std::mem::take;
    let f = |v: &mut Vec<f32>| Arc::new(Float32Array::from(take(v))) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(take(&mut c.resource_id))),
        Arc::new(TimestampMillisecondArray::from(take(&mut c.at_ms)).with_timezone("UTC")),
        f(&mut c.cpu_pct),
        f(&mut c.memory_pct),
        f(&mut c.disk_read_bps),
        f(&mut c.disk_write_bps),
        f(&mut c.net_rx_bps),
        f(&mut c.net_tx_bps),
        Arc::new(UInt16Array::from(take(&mut c.sessions))),
        Arc::new(UInt16Array::from(take(&mut c.listening))),
    ];
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|cause| Error::Arrow { action: "assemble a day-file batch", cause })
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
