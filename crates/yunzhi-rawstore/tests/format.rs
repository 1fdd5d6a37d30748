//! The day-file format: readings kept as whole hundredths, what that keeps
//! and what it changes, and the format version.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Decimal32Array, Decimal64Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{LogicalType, Type as PhysicalType};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use yunzhi_rawstore::{COLUMN_NAMES, Config, Day, Error, RawStore, Row};

const BEIJING: i32 = 8 * 3600;

fn day(text: &str) -> Day {
    Day::parse(text).expect("a date")
}

fn open(dir: &Path) -> RawStore {
    RawStore::open(dir, Config::default()).expect("open the store")
}

fn scan_all(store: &RawStore, d: Day) -> Vec<Row> {
    let mut rows = Vec::new();
    store.scan(d, d, None, |b| rows.extend((0..b.len()).filter_map(|i| b.row(i)))).expect("scan");
    rows
}

/// Rows compared bit for bit, so that NaN equals NaN and -0 differs from 0.
fn bits(rows: &[Row]) -> Vec<[u32; 6]> {
    rows.iter()
        .map(|r| {
            [r.cpu_pct, r.memory_pct, r.disk_read_bps, r.disk_write_bps, r.net_rx_bps, r.net_tx_bps]
                .map(f32::to_bits)
        })
        .collect()
}

fn at(d: Day, minute: i64) -> i64 {
    d.start_ms(BEIJING) + minute * 60_000
}

/// Readings an agent can send, at the edges of what a column holds.
fn edge_rows(d: Day) -> Vec<Row> {
    let row = |minute: i64, cpu: f32, mem: f32, rate: f32| Row {
        resource_id: 9,
        at_ms: at(d, minute),
        cpu_pct: cpu,
        memory_pct: mem,
        disk_read_bps: rate,
        disk_write_bps: 0.02,
        net_rx_bps: rate,
        net_tx_bps: 0.01,
        sessions: 1,
        listening: 2,
        // Counted on most minutes, once none at all, and not counted at one.
        accepted: match minute {
            1 => Some(0),
            5 => None,
            m => Some(m as u32 * 7),
        },
    };
    vec![
        row(0, 0.0, 0.0, 0.0),
        row(1, 100.0, 100.0, 0.01),
        row(2, 0.01, 99.99, 131_071.99),
        row(3, 33.33, 66.67, 1_048_576.5),
        // 2^33 B/s: a 100 Gbit/s link is 1.25e10; and far beyond any real link.
        row(4, 50.0, 50.0, 8_589_934_592.0),
        row(5, 400.0, 12.5, 9.9e15),
    ]
}

#[test]
fn readings_as_the_agent_sends_them_come_back_bit_for_bit_after_sealing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = day("2026-11-20");
    let rows = edge_rows(d);
    store.append(&rows).expect("append");
    assert_eq!(bits(&scan_all(&store, d)), bits(&rows), "unsealed");
    store.seal(d.plus(1)).expect("seal");
    assert_eq!(bits(&scan_all(&store, d)), bits(&rows), "sealed");
    assert_eq!(scan_all(&store, d), rows);
}

#[test]
fn finer_digits_nan_and_impossible_readings_are_stored_the_same_before_and_after_sealing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = day("2026-11-20");
    let odd = Row {
        resource_id: 1,
        at_ms: at(d, 0),
        cpu_pct: 12.3456,
        memory_pct: f32::NAN,
        disk_read_bps: f32::INFINITY,
        disk_write_bps: 2e16,
        net_rx_bps: -0.0,
        net_tx_bps: 0.125,
        sessions: 0,
        listening: 0,
        accepted: None,
    };
    let kept = Row {
        cpu_pct: 12.35,
        memory_pct: f32::NAN,
        disk_read_bps: f32::NAN,
        disk_write_bps: f32::NAN,
        net_rx_bps: 0.0,
        net_tx_bps: 0.13,
        ..odd
    };
    store.append(&[odd]).expect("append");
    assert_eq!(bits(&scan_all(&store, d)), bits(&[kept]), "unsealed");
    store.seal(d.plus(1)).expect("seal");
    assert_eq!(bits(&scan_all(&store, d)), bits(&[kept]), "sealed");
}

#[test]
fn a_day_file_holds_readings_as_two_place_decimals_any_parquet_reader_understands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = day("2026-11-20");
    let mut rows = edge_rows(d);
    rows[0].memory_pct = f32::NAN;
    store.append(&rows).expect("append");
    let path = store.seal(d.plus(1)).expect("seal").written.remove(0).path;

    let reader = SerializedFileReader::try_from(path.as_path()).expect("parquet reads it");
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    for (name, physical, precision) in [
        ("cpu_pct", PhysicalType::INT32, 9),
        ("memory_pct", PhysicalType::INT32, 9),
        ("disk_read_bps", PhysicalType::INT64, 18),
        ("net_tx_bps", PhysicalType::INT64, 18),
    ] {
        let col = schema.columns().iter().find(|c| c.name() == name).expect("column");
        assert_eq!(col.physical_type(), physical, "{name}");
        assert_eq!(col.logical_type_ref(), Some(&LogicalType::decimal(2, precision)), "{name}");
    }

    // A plain Arrow reader, knowing nothing of this crate, sees hundredths.
    let file = fs::File::open(&path).expect("open");
    let batch: RecordBatch = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("reader")
        .build()
        .expect("batches")
        .next()
        .expect("a batch")
        .expect("decoded");
    let cpu = batch.column_by_name("cpu_pct").expect("cpu");
    let cpu = cpu.as_any().downcast_ref::<Decimal32Array>().expect("decimal32");
    assert_eq!(cpu.values()[..], [0, 10_000, 1, 3_333, 5_000, 40_000]);
    assert_eq!(cpu.value_as_string(3), "33.33");
    let memory = batch.column_by_name("memory_pct").expect("memory");
    assert!(memory.is_null(0), "NaN is stored as a missing value");
    let rx = batch.column_by_name("net_rx_bps").expect("rx");
    let rx = rx.as_any().downcast_ref::<Decimal64Array>().expect("decimal64");
    assert_eq!(rx.value(4), 858_993_459_200);
    assert_eq!(rx.value_as_string(3), "1048576.50");
}

/// Writes a Parquet file with the given key-value metadata where a day file goes.
fn foreign_day_file(dir: &Path, name: &str, kv: Vec<KeyValue>) {
    let days = dir.join("days");
    fs::create_dir_all(&days).expect("days dir");
    let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "resource_id",
        arrow_schema::DataType::Int64,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(arrow_array::Int64Array::from(vec![1i64]))])
            .expect("batch");
    let props = WriterProperties::builder().set_key_value_metadata(Some(kv)).build();
    let file = fs::File::create(days.join(name)).expect("create");
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

#[test]
fn a_day_file_of_the_float_format_or_an_unknown_version_is_refused_by_name() {
    for (kv, says) in [
        (vec![KeyValue::new("yunzhi.wal_through".into(), "3".to_string())], "format 1"),
        (
            vec![
                KeyValue::new("yunzhi.format".into(), "4".to_string()),
                KeyValue::new("yunzhi.wal_through".into(), "3".to_string()),
            ],
            "yunzhi.format = \"4\"",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        foreign_day_file(dir.path(), "2026-11-20.parquet", kv);
        let err = RawStore::open(dir.path(), Config::default()).err().expect("refused");
        let text = err.to_string();
        assert!(matches!(err, Error::Malformed { .. }), "{text}");
        assert!(text.contains("2026-11-20.parquet") && text.contains(says), "{text}");
        assert!(text.contains("formats [2, 3]"), "{text}");
    }
}

#[test]
fn a_day_file_of_format_2_is_read_with_its_connections_not_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = day("2026-11-20");
    let rows = edge_rows(d);
    let path = {
        let store = open(dir.path());
        store.append(&rows).expect("append");
        store.seal(d.plus(1)).expect("seal").written.remove(0).path
    };
    // The same file as a build before connections accepted wrote it: the
    // column absent, the format 2, the rest as it was.
    let file = fs::File::open(&path).expect("open");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("reader");
    let mut kv = reader.metadata().file_metadata().key_value_metadata().cloned().expect("metadata");
    for k in kv.iter_mut().filter(|k| k.key == "yunzhi.format") {
        k.value = Some("2".into());
    }
    let batches: Vec<RecordBatch> = reader.build().expect("batches").map(|b| b.expect("decoded")).collect();
    let keep: Vec<usize> = (0..10).collect();
    let schema = Arc::new(batches[0].schema().project(&keep).expect("ten columns"));
    assert_eq!(schema.fields().len(), 10);
    assert!(schema.field_with_name("accepted").is_err());
    let props = WriterProperties::builder().set_key_value_metadata(Some(kv)).build();
    let mut w =
        ArrowWriter::try_new(fs::File::create(&path).expect("create"), schema, Some(props)).expect("w");
    for b in &batches {
        w.write(&b.project(&keep).expect("projected")).expect("write");
    }
    w.close().expect("close");

    let store = open(dir.path());
    let expected: Vec<Row> = rows.iter().map(|r| Row { accepted: None, ..*r }).collect();
    assert_eq!(scan_all(&store, d), expected);
    assert!(rows.iter().any(|r| r.accepted.is_some()), "the rows had counts to lose");
}

#[test]
fn each_columns_bytes_are_counted_and_add_up_to_less_than_the_day_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = day("2026-11-20");
    store.append(&edge_rows(d)).expect("append");
    store.seal(d.plus(1)).expect("seal");
    let columns = store.column_bytes().expect("sizes");
    assert_eq!(columns.iter().map(|(n, _)| *n).collect::<Vec<_>>(), COLUMN_NAMES);
    assert!(columns.iter().all(|(_, bytes)| *bytes > 0), "{columns:?}");
    let total: u64 = columns.iter().map(|(_, bytes)| bytes).sum();
    assert!(total < store.stats().expect("stats").parquet_bytes, "the footer is more");
}
