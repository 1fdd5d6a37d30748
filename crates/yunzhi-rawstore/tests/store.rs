//! The raw store against real files in temporary directories.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use yunzhi_rawstore::{Columns, Config, Day, RawStore, Row};

const BEIJING: i32 = 8 * 3600;

fn day(text: &str) -> Day {
    Day::parse(text).expect("a date")
}

fn reading(resource_id: i64, d: Day, minute: i64) -> Row {
    Row {
        resource_id,
        at_ms: d.start_ms(BEIJING) + minute * 60_000,
        cpu_pct: (minute % 100) as f32 + 0.25,
        memory_pct: 40.0 + resource_id as f32,
        disk_read_bps: 1000.0 * minute as f32,
        disk_write_bps: 2000.0,
        net_rx_bps: 500.0,
        net_tx_bps: 250.5,
        sessions: (minute % 3) as u16,
        listening: 12,
        accepted: (minute % 4 != 0).then_some(minute as u32),
    }
}

fn open(dir: &Path) -> RawStore {
    RawStore::open(dir, Config::default()).expect("open the store")
}

fn scan_all(store: &RawStore, from: Day, to: Day, resources: Option<&[i64]>) -> Vec<Row> {
    let mut rows = Vec::new();
    store.scan(from, to, resources, |b| rows.extend((0..b.len()).filter_map(|i| b.row(i)))).expect("scan");
    rows
}

/// In scan order: day by day, then by host and time.
fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| (Day::of_ms(r.at_ms, BEIJING), r.resource_id, r.at_ms));
    rows
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir.join("wal")).expect("wal dir").map(|e| e.expect("entry").path()).collect();
    v.sort();
    v
}

#[test]
fn append_then_scan_returns_exactly_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = day("2026-11-20");
    let rows: Vec<Row> = (0..50).map(|m| reading(1, d, m)).collect();
    store.append(&rows[..20]).expect("append");
    store.append(&rows[20..]).expect("append");
    assert_eq!(scan_all(&store, d, d, None), rows);
    assert!(scan_all(&store, d.plus(1), d.plus(3), None).is_empty());
}

#[test]
fn a_torn_final_wal_frame_is_ignored_on_reopen_while_earlier_frames_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = day("2026-11-20");
    let first: Vec<Row> = (0..10).map(|m| reading(1, d, m)).collect();
    {
        let store = open(dir.path());
        store.append(&first).expect("append");
        store.append(&[reading(1, d, 10), reading(1, d, 11)]).expect("append");
    }
    let seg = wal_segments(dir.path()).pop().expect("a segment");
    let len = fs::metadata(&seg).expect("stat").len();
    // Cut the last frame (8-byte header + 88 bytes) in the middle, as a crash would.
    OpenOptions::new().write(true).open(&seg).expect("open").set_len(len - 30).expect("truncate");
    let store = open(dir.path());
    assert_eq!(scan_all(&store, d, d, None), first);
    // New appends are not hidden behind the torn frame.
    store.append(&[reading(1, d, 12)]).expect("append after reopen");
    drop(store);
    let store = open(dir.path());
    assert_eq!(scan_all(&store, d, d, None).len(), 11);
}

#[test]
fn a_flipped_byte_in_the_last_wal_frame_is_caught_by_its_checksum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = day("2026-11-20");
    {
        let store = open(dir.path());
        store.append(&[reading(1, d, 0)]).expect("append");
        store.append(&[reading(1, d, 1)]).expect("append");
    }
    let seg = wal_segments(dir.path()).pop().expect("a segment");
    let mut bytes = fs::read(&seg).expect("read");
    let last = bytes.len() - 5;
    bytes[last] ^= 0x40;
    fs::write(&seg, bytes).expect("write");
    let store = open(dir.path());
    assert_eq!(scan_all(&store, d, d, None), vec![reading(1, d, 0)]);
}

#[test]
fn sealing_a_day_writes_a_parquet_file_with_the_expected_schema_and_empties_the_wal() {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (d1, d2) = (day("2026-11-20"), day("2026-11-21"));
    let rows: Vec<Row> = (0..3).flat_map(|r| (0..100).map(move |m| reading(r, d1, m))).collect();
    store.append(&rows).expect("append day 1");
    store.append(&[reading(1, d2, 0)]).expect("append day 2");

    let report = store.seal(d2).expect("seal");
    assert_eq!(report.written.len(), 1);
    let file = &report.written[0];
    assert_eq!(file.path, dir.path().join("days/2026-11-20.parquet"));
    assert_eq!(file.rows, 300);
    assert_eq!(report.segments_deleted, 1, "day 1's segment held nothing else");

    let reader = SerializedFileReader::try_from(file.path.as_path()).expect("parquet reads it");
    let meta = reader.metadata().file_metadata();
    assert_eq!(meta.num_rows(), 300);
    let names: Vec<&str> = meta.schema_descr().columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, yunzhi_rawstore::COLUMN_NAMES);
    let arrow_schema =
        parquet::arrow::parquet_to_arrow_schema(meta.schema_descr(), meta.key_value_metadata())
            .expect("arrow schema");
    assert_eq!(arrow_schema.fields(), yunzhi_rawstore::schema().fields());

    let stats = store.stats().expect("stats");
    assert_eq!((stats.sealed_rows, stats.unsealed_rows), (300, 1));
    assert_eq!(scan_all(&store, d1, d2, None).len(), 301);
    drop(store);
    // After a restart the sealed rows are not taken from the WAL a second time.
    let store = open(dir.path());
    assert_eq!(store.stats().expect("stats").rows, 301);
    assert!(store.seal(d2).expect("seal again").written.is_empty());
}

#[test]
fn late_rows_for_a_sealed_day_land_in_an_extra_file_and_scans_see_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (d1, d2) = (day("2026-11-20"), day("2026-11-21"));
    store.append(&[reading(1, d1, 0), reading(2, d1, 0)]).expect("append");
    store.seal(d2).expect("first seal");
    store.append(&[reading(1, d2, 5), reading(1, d1, 7)]).expect("a late row");
    let report = store.seal(d2).expect("second seal");
    assert_eq!(report.written.len(), 1);
    assert!(report.written[0].late);
    assert_eq!(report.written[0].path, dir.path().join("days/2026-11-20.1.parquet"));
    assert_eq!(store.day_files(d1).expect("files").len(), 2);
    let want = vec![reading(1, d1, 0), reading(1, d1, 7), reading(2, d1, 0)];
    assert_eq!(sorted(scan_all(&store, d1, d1, None)), want);
    drop(store);
    let store = open(dir.path());
    assert_eq!(sorted(scan_all(&store, d1, d1, None)), want);
    assert_eq!(scan_all(&store, d2, d2, None), vec![reading(1, d2, 5)]);
}

#[test]
fn prune_deletes_only_days_older_than_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config { retention_days: 3, ..Config::default() };
    let store = RawStore::open(dir.path(), config.clone()).expect("open");
    let today = day("2026-11-26");
    for back in 1..=5 {
        store.append(&[reading(1, today.plus(-back), 0)]).expect("append");
    }
    store.seal(today).expect("seal");
    assert_eq!(store.stats().expect("stats").day_files, 5);
    // Keeps today and the two days before it: 11-24 and 11-25.
    assert_eq!(store.prune(today).expect("prune"), 3);
    let left: Vec<Day> =
        scan_all(&store, today.plus(-10), today, None).iter().map(|r| Day::of_ms(r.at_ms, BEIJING)).collect();
    assert_eq!(left, vec![day("2026-11-24"), day("2026-11-25")]);
    assert_eq!(store.prune(today).expect("prune again"), 0);
    // A late row of a pruned day is not resurrected by a seal or a restart.
    store.append(&[reading(1, day("2026-11-20"), 9)]).expect("late append");
    assert!(store.seal(today).expect("seal").written.is_empty());
    drop(store);
    let store = RawStore::open(dir.path(), config).expect("reopen");
    assert_eq!(scan_all(&store, today.plus(-10), today, None).len(), 2);
}

#[test]
fn rows_of_two_resources_interleaved_come_back_sorted_per_resource() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = day("2026-11-20");
    // Reports arrive as the agents send them: interleaved and out of order.
    for m in (0..30).rev() {
        store.append(&[reading(20, d, m), reading(10, d, m)]).expect("append");
    }
    let unsealed = scan_all(&store, d, d, None);
    store.seal(d.plus(1)).expect("seal");
    let sealed = scan_all(&store, d, d, None);
    let want: Vec<Row> = [10, 20].iter().flat_map(|&r| (0..30).map(move |m| reading(r, d, m))).collect();
    assert_eq!(unsealed, want);
    assert_eq!(sealed, want);
    assert_eq!(scan_all(&store, d, d, Some(&[20])), want[30..]);
}

#[test]
fn a_restart_after_append_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (d1, d2) = (day("2026-11-20"), day("2026-11-21"));
    let rows: Vec<Row> = (0..5).flat_map(|r| [reading(r, d1, 1439), reading(r, d2, 0)]).collect();
    {
        let store = open(dir.path());
        store.append(&rows).expect("append");
    }
    let store = open(dir.path());
    assert_eq!(scan_all(&store, d1, d2, None), sorted(rows.clone()));
    store.seal(d2).expect("seal day 1");
    drop(store);
    let store = open(dir.path());
    assert_eq!(scan_all(&store, d1, d2, None), sorted(rows));
}

#[test]
fn a_crash_between_sealing_and_deleting_the_wal_does_not_duplicate_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (d1, d2) = (day("2026-11-20"), day("2026-11-21"));
    {
        let store = open(dir.path());
        store.append(&[reading(1, d1, 0), reading(1, d1, 1)]).expect("append");
    }
    let segment = wal_segments(dir.path()).pop().expect("a segment");
    let saved = fs::read(&segment).expect("read");
    {
        let store = open(dir.path());
        store.seal(d2).expect("seal");
    }
    assert!(!segment.exists(), "the sealed segment is deleted");
    fs::write(&segment, saved).expect("put the segment back, as if the delete never happened");
    let store = open(dir.path());
    assert_eq!(scan_all(&store, d1, d1, None).len(), 2);
    assert!(store.seal(d2).expect("seal").written.is_empty());
    assert!(!segment.exists(), "the stale segment is cleaned up");
}

#[test]
fn a_retried_report_is_stored_once_when_its_day_is_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let d = day("2026-11-20");
    store.append(&[reading(1, d, 0)]).expect("append");
    let retried = Row { cpu_pct: 99.0, ..reading(1, d, 0) };
    store.append(&[retried]).expect("append again");
    store.seal(d.plus(1)).expect("seal");
    assert_eq!(scan_all(&store, d, d, None), vec![retried]);
}

#[test]
fn daily_stats_summarise_each_host_day_including_late_and_unsealed_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (d1, d2) = (day("2026-11-20"), day("2026-11-21"));
    let at = |d: Day, minute: i64| d.start_ms(BEIJING) + minute * 60_000;
    let row = |r: i64, d: Day, minute: i64, cpu: f32| Row {
        resource_id: r,
        at_ms: at(d, minute),
        cpu_pct: cpu,
        memory_pct: 50.0,
        net_rx_bps: 100.0,
        ..Row::default()
    };
    // Host 1: 20 readings a minute apart, CPU 1..=20; host 3 only arrives late.
    store.append(&(1..=19).map(|i| row(1, d1, i, i as f32)).collect::<Vec<_>>()).expect("append");
    store.seal(d2).expect("seal");
    store.append(&[row(1, d1, 20, 20.0), row(3, d1, 0, 7.0), row(2, d2, 0, 4.0)]).expect("late rows");

    let stats = store.daily_stats(d1, d2, None).expect("stats");
    let keys: Vec<(i64, Day)> = stats.iter().map(|s| (s.resource_id, s.day)).collect();
    assert_eq!(keys, vec![(1, d1), (3, d1), (2, d2)]);
    let h1 = &stats[0];
    assert_eq!(h1.count, 20);
    assert_eq!(h1.cpu_avg, 10.5);
    assert_eq!(h1.cpu_max, 20.0);
    assert_eq!(h1.cpu_p95, 19.0);
    assert_eq!(h1.memory_avg, 50.0);
    // 20 readings, each covering one minute at 100 B/s.
    assert_eq!(h1.net_rx_bytes, 20.0 * 60.0 * 100.0);
    assert_eq!(stats[1].count, 1);
    assert_eq!(stats[1].net_rx_bytes, 60.0 * 100.0);

    store.seal(d2).expect("seal the late rows");
    assert_eq!(store.daily_stats(d1, d2, None).expect("stats"), stats);
    let only_3 = store.daily_stats(d1, d2, Some(&[3])).expect("stats");
    assert_eq!(only_3, vec![stats[1].clone()]);
    // Asking for CPU alone reads nothing else, and leaves the rest zero.
    let cpu = store.daily_stats_of(d1, d2, None, Columns::CPU_PCT).expect("stats");
    assert_eq!((cpu[0].count, cpu[0].cpu_p95, cpu[0].memory_avg, cpu[0].net_rx_bytes), (20, 19.0, 0.0, 0.0));
}
