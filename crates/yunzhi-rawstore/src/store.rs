//! The store: the WAL for what is recent, day files for what is sealed, and
//! the in-memory index that says which rows live where.
//!
//! Which WAL rows a day file accounts for is recorded in the file itself
//! (`yunzhi.wal_through`: the highest segment it covers), so renaming the file
//! into place is the one step that commits a seal. A crash before it leaves
//! the rows in the WAL; after it, replay knows they are sealed even if the
//! segments were not yet deleted.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use crate::day::Day;
use crate::dayfile::{self, Compression, WriteSpec};
use crate::error::{Error, Result, io};
use crate::row::Row;
use crate::scan::{Batch, Columns, ColumnsBuf, Readings};
use crate::stored::Stored;
use crate::wal::{self, SegmentWriter};

const WAL_DIR: &str = "wal";
const DAYS_DIR: &str = "days";
/// Holds the first day still kept after the last prune, so WAL rows of
/// pruned days are not resurrected by a replay.
const EXPIRED_BEFORE_FILE: &str = "expired_before";
/// Rows per batch when handing WAL rows to a scan.
const WAL_BATCH_ROWS: usize = 65_536;

/// How a store keeps its data.
#[derive(Clone, Debug)]
pub struct Config {
    /// Days of raw samples kept, today included (default 35).
    pub retention_days: u32,
    /// The zone whose civil days partition the data, in seconds east of UTC
    /// (default +8 h: Beijing days). Must not change for an existing store.
    pub day_offset_secs: i32,
    /// Compression of day files (default zstd level 3, see the README).
    pub compression: Compression,
    /// Rows per Parquet row group (default 1 Mi): big enough for zstd and for
    /// cheap scans, small enough that a filtered scan can skip most of a day.
    pub row_group_rows: usize,
    /// A WAL segment is closed once it holds this many bytes (default 64 MiB);
    /// a new one is also started for each new day, so a sealed day's
    /// segments hold nothing else and can be deleted at once.
    pub segment_bytes: u64,
    /// Threads [`RawStore::daily_stats`] uses (default: the machine's cores).
    pub scan_threads: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            retention_days: 35,
            day_offset_secs: 8 * 3600,
            compression: Compression::Zstd(3),
            row_group_rows: 1 << 20,
            segment_bytes: 64 << 20,
            scan_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }
}

/// What a [`RawStore::seal`] did.
#[derive(Debug, Default)]
pub struct SealReport {
    /// The day files written, oldest day first.
    pub written: Vec<SealedFile>,
    /// WAL segments deleted because everything in them is now sealed.
    pub segments_deleted: usize,
}

/// One day file written by a seal.
#[derive(Debug)]
pub struct SealedFile {
    pub day: Day,
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    /// Whether this is an extra file for rows that arrived after the day was first sealed.
    pub late: bool,
}

/// Sizes and counts of what the store holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    /// Days with a day file or unsealed rows.
    pub days: usize,
    pub day_files: usize,
    pub rows: u64,
    pub sealed_rows: u64,
    pub unsealed_rows: u64,
    pub parquet_bytes: u64,
    pub wal_bytes: u64,
    pub bytes_on_disk: u64,
    /// Day-file bytes per stored value, counting all 9 values of a row
    /// (6 readings, sessions, listening sockets, connections accepted).
    pub bytes_per_value: f64,
}

/// Raw samples: a write-ahead log sealed into daily Parquet files.
///
/// All methods take `&self` and block on file I/O; from async code call them
/// through `spawn_blocking`. Appends never wait for a seal, prune or scan;
/// seals and prunes wait for running scans and each other.
pub struct RawStore {
    wal_dir: PathBuf,
    days_dir: PathBuf,
    dir: PathBuf,
    config: Config,
    state: Mutex<State>,
    /// Shared by scans, exclusive for seal and prune, which delete files.
    maintenance: RwLock<()>,
}

struct State {
    segments: BTreeMap<u64, Segment>,
    current: Option<(u64, SegmentWriter)>,
    next_seq: u64,
    days: BTreeMap<Day, DayFiles>,
    expired_before: Option<Day>,
    /// The frame being encoded, kept to avoid an allocation per append.
    frame: Vec<u8>,
}

struct Segment {
    path: PathBuf,
    /// Bytes of complete frames: readers never look past it.
    len: u64,
    /// Rows per day.
    days: BTreeMap<Day, u64>,
}

#[derive(Default)]
struct DayFiles {
    files: Vec<DayFile>,
    /// Rows of this day in segments up to this one are in `files`.
    wal_through: u64,
}

struct DayFile {
    path: PathBuf,
    extra: u32,
    rows: u64,
    bytes: u64,
}

/// A day a seal is to write, and where its unsealed rows are.
struct SealPlan {
    day: Day,
    wal: Vec<(PathBuf, u64)>,
    /// 0 for the day's main file, else the number of the extra file.
    extra: u32,
}

/// Where one day's rows are, as of one moment.
pub(crate) struct DayPlan {
    pub(crate) day: Day,
    /// The main file first (if sealed), then the extra files.
    pub(crate) files: Vec<PathBuf>,
    pub(crate) has_main: bool,
    /// Segments holding unsealed rows of the day, with the bytes to read.
    pub(crate) wal: Vec<(PathBuf, u64)>,
}

impl DayPlan {
    /// The day's unsealed rows (of the wanted resources), sorted by resource
    /// then time, as appended: whoever hands them out rounds them to the
    /// hundredth as a day file would (see `Row::as_stored`).
    pub(crate) fn wal_rows(&self, offset_secs: i32, wanted: Option<&[i64]>) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for (path, len) in &self.wal {
            let data = wal::read_segment(path, Some(*len))?;
            wal::decode_segment(&data, |r| {
                if Day::of_ms(r.at_ms, offset_secs) == self.day
                    && wanted.is_none_or(|w| w.binary_search(&r.resource_id).is_ok())
                {
                    rows.push(r);
                }
            });
        }
        rows.sort_by_key(|r| (r.resource_id, r.at_ms));
        Ok(rows)
    }
}

impl RawStore {
    /// Opens (creating if needed) the store in `dir` and replays its WAL, so
    /// rows appended before a restart and not yet sealed can be scanned.
    pub fn open(dir: &Path, config: Config) -> Result<RawStore> {
        let wal_dir = dir.join(WAL_DIR);
        let days_dir = dir.join(DAYS_DIR);
        fs::create_dir_all(&wal_dir).map_err(io("create directory", &wal_dir))?;
        fs::create_dir_all(&days_dir).map_err(io("create directory", &days_dir))?;
        let expired_before = read_expired_before(dir)?;
        let days = load_day_files(&days_dir, expired_before)?;
        let segments = load_segments(&wal_dir, config.day_offset_secs)?;
        let next_seq = segments.keys().next_back().map_or(1, |s| s + 1);
        let state = State { segments, current: None, next_seq, days, expired_before, frame: Vec::new() };
        Ok(RawStore {
            wal_dir,
            days_dir,
            dir: dir.to_path_buf(),
            config,
            state: Mutex::new(state),
            maintenance: RwLock::new(()),
        })
    }

    /// The store's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Appends rows; they are on disk (one checksummed WAL frame, fsynced)
    /// when this returns. Call it once per group of reports, not per row: each
    /// call costs one `fdatasync`.
    pub fn append(&self, rows: &[Row]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if rows.len() > wal::MAX_FRAME_ROWS {
            return Err(Error::BatchTooLarge { rows: rows.len(), max: wal::MAX_FRAME_ROWS });
        }
        let offset = self.config.day_offset_secs;
        // Nearly always one day, sometimes two around midnight.
        let mut per_day: Vec<(Day, u64)> = Vec::with_capacity(2);
        for r in rows {
            let d = Day::of_ms(r.at_ms, offset);
            match per_day.iter_mut().find(|(day, _)| *day == d) {
                Some((_, n)) => *n += 1,
                None => per_day.push((d, 1)),
            }
        }
        let newest = per_day.iter().map(|(d, _)| *d).max();
        let mut guard = self.lock()?;
        let st = &mut *guard;
        let rotate = match &st.current {
            None => true,
            Some((seq, w)) => {
                w.len() >= self.config.segment_bytes
                    || st
                        .segments
                        .get(seq)
                        .and_then(|s| s.days.keys().next_back().copied())
                        .is_some_and(|last| Some(last) < newest)
            }
        };
        if rotate {
            let seq = st.next_seq;
            let writer = SegmentWriter::create(&self.wal_dir, seq)?;
            st.next_seq += 1;
            st.segments.insert(
                seq,
                Segment {
                    path: self.wal_dir.join(wal::segment_name(seq)),
                    len: writer.len(),
                    days: BTreeMap::new(),
                },
            );
            st.current = Some((seq, writer));
        }
        let mut frame = std::mem::take(&mut st.frame);
        wal::begin_frame(&mut frame);
        frame.reserve(rows.len() * crate::row::ENCODED_LEN);
        rows.iter().for_each(|r| r.encode(&mut frame));
        let Some((seq, writer)) = st.current.as_mut() else {
            return Err(Error::Poisoned("WAL writer"));
        };
        let seq = *seq;
        let written = writer.append_frame(&mut frame);
        let len = writer.len();
        st.frame = frame;
        if let Err(e) = written {
            // Its tail is now unknown: later frames must not follow a torn one.
            st.current = None;
            return Err(e);
        }
        if let Some(seg) = st.segments.get_mut(&seq) {
            seg.len = len;
            for (d, n) in per_day {
                *seg.days.entry(d).or_insert(0) += n;
            }
        }
        Ok(())
    }

    /// Seals every day before `before` that has rows in the WAL: writes them
    /// sorted into `days/YYYY-MM-DD.parquet` (or, for rows that arrived after
    /// the day was sealed, a small `YYYY-MM-DD.N.parquet`), then deletes the
    /// WAL segments that hold nothing unsealed. Appends go on meanwhile.
    pub fn seal(&self, before: Day) -> Result<SealReport> {
        let _exclusive = self.maintenance.write().map_err(|_| Error::Poisoned("maintenance"))?;
        let (through, plans) = {
            let mut st = self.lock()?;
            // Close the open segment: every segment up to `through` is now
            // immutable, and what arrives meanwhile goes to a newer one.
            st.current = None;
            let through = st.next_seq - 1;
            let plans: Vec<SealPlan> = unsealed_days(&st)
                .into_iter()
                .filter(|d| *d < before)
                .map(|d| {
                    let files = st.days.get(&d);
                    let next_extra =
                        files.and_then(|f| f.files.iter().map(|f| f.extra + 1).max()).unwrap_or(0);
                    SealPlan { day: d, wal: wal_parts(&st, d), extra: next_extra }
                })
                .collect();
            (through, plans)
        };
        let mut report = SealReport::default();
        for SealPlan { day, wal, extra } in plans {
            let plan = DayPlan { day, files: Vec::new(), has_main: false, wal };
            let mut rows = plan.wal_rows(self.config.day_offset_secs, None)?;
            // A retried report repeats a reading: keep the last one appended
            // (the sort is stable, so it is the last of its run).
            rows.dedup_by(|later, earlier| {
                let same = later.resource_id == earlier.resource_id && later.at_ms == earlier.at_ms;
                if same {
                    *earlier = *later;
                }
                same
            });
            let spec = WriteSpec {
                dir: &self.days_dir,
                file_name: dayfile::file_name(day, extra),
                compression: self.config.compression,
                row_group_rows: self.config.row_group_rows,
                wal_through: through,
            };
            let (path, bytes) = dayfile::write(&spec, &rows)?;
            let rows = rows.len() as u64;
            {
                let mut st = self.lock()?;
                let entry = st.days.entry(day).or_default();
                entry.files.push(DayFile { path: path.clone(), extra, rows, bytes });
                entry.wal_through = through;
            }
            tracing::info!(%day, rows, bytes, late = extra > 0, "sealed a day of raw samples");
            report.written.push(SealedFile { day, path, rows, bytes, late: extra > 0 });
        }
        report.segments_deleted = self.drop_spent_segments()?;
        Ok(report)
    }

    /// Deletes the day files of days that fell out of the retention window
    /// (everything before `today - retention_days + 1`) and returns how many.
    pub fn prune(&self, today: Day) -> Result<usize> {
        let _exclusive = self.maintenance.write().map_err(|_| Error::Poisoned("maintenance"))?;
        let keep_from = today.plus(1 - i32::try_from(self.config.retention_days).unwrap_or(i32::MAX));
        let doomed: Vec<PathBuf> = {
            let mut st = self.lock()?;
            if st.expired_before.is_some_and(|e| e >= keep_from) {
                Vec::new()
            } else {
                // Recorded first: should the deletes below be cut short, the
                // next open finishes them.
                write_expired_before(&self.dir, keep_from)?;
                st.expired_before = Some(keep_from);
                let old: Vec<Day> = st.days.range(..keep_from).map(|(d, _)| *d).collect();
                old.iter()
                    .filter_map(|d| st.days.remove(d))
                    .flat_map(|f| f.files.into_iter().map(|f| f.path))
                    .collect()
            }
        };
        for path in &doomed {
            wal::remove_file(path)?;
        }
        if !doomed.is_empty() {
            wal::sync_dir(&self.days_dir)?;
        }
        self.drop_spent_segments()?;
        Ok(doomed.len())
    }

    /// Calls `f` with every row of days `from..=to` (of `resources` only, if
    /// given), all columns. See [`RawStore::scan_columns`].
    pub fn scan(
        &self,
        from: Day,
        to: Day,
        resources: Option<&[i64]>,
        f: impl FnMut(&Batch<'_>),
    ) -> Result<()> {
        self.scan_columns(from, to, resources, Columns::ALL, f)
    }

    /// Calls `f` with the rows of days `from..=to`, day by day, decoding only
    /// `columns`: sealed rows from the day files, unsealed ones from the WAL.
    pub fn scan_columns(
        &self,
        from: Day,
        to: Day,
        resources: Option<&[i64]>,
        columns: Columns,
        mut f: impl FnMut(&Batch<'_>),
    ) -> Result<()> {
        let _shared = self.maintenance.read().map_err(|_| Error::Poisoned("maintenance"))?;
        let wanted = resources.map(sorted_ids);
        let wanted = wanted.as_deref();
        let offset = self.config.day_offset_secs;
        let mut readings = Readings::default();
        for plan in self.plan(from, to)? {
            for path in &plan.files {
                dayfile::read(path, columns, wanted, |rb| {
                    let stored = Stored::of(rb)?;
                    readings.batch(plan.day, &stored).for_each_wanted(wanted, &mut f);
                    Ok(())
                })?;
            }
            // As a day file keeps them, so that a seal changes nothing a scan sees.
            let rows: Vec<Row> = plan.wal_rows(offset, wanted)?.into_iter().map(Row::as_stored).collect();
            let mut buf = ColumnsBuf::default();
            for chunk in rows.chunks(WAL_BATCH_ROWS) {
                buf.clear();
                buf.extend_rows(chunk);
                f(&buf.batch(plan.day, columns));
            }
        }
        Ok(())
    }

    /// Per host and day of `from..=to`: count, CPU average, maximum and 95th
    /// percentile, memory average and maximum, and bytes moved on disk and
    /// network. Days are worked on in parallel ([`Config::scan_threads`]).
    pub fn daily_stats(
        &self,
        from: Day,
        to: Day,
        resources: Option<&[i64]>,
    ) -> Result<Vec<crate::rollup::ResourceDay>> {
        self.daily_stats_of(from, to, resources, Columns::ALL)
    }

    /// [`RawStore::daily_stats`] of the metrics in `metrics` only (CPU,
    /// memory, disk, network columns); the others are left zero and cost
    /// nothing to read.
    pub fn daily_stats_of(
        &self,
        from: Day,
        to: Day,
        resources: Option<&[i64]>,
        metrics: Columns,
    ) -> Result<Vec<crate::rollup::ResourceDay>> {
        let _shared = self.maintenance.read().map_err(|_| Error::Poisoned("maintenance"))?;
        let wanted = resources.map(sorted_ids);
        let plans = self.plan(from, to)?;
        crate::rollup::run(
            &plans,
            wanted.as_deref(),
            metrics,
            self.config.day_offset_secs,
            self.config.scan_threads,
        )
    }

    /// The compressed bytes of each column over every day file, by the
    /// names of [`crate::COLUMN_NAMES`] (a column a file does not have
    /// counts nothing): what each kind of reading costs to keep.
    pub fn column_bytes(&self) -> Result<Vec<(&'static str, u64)>> {
        let paths: Vec<PathBuf> = {
            let st = self.lock()?;
            st.days.values().flat_map(|d| &d.files).map(|f| f.path.clone()).collect()
        };
        let mut out: Vec<(&'static str, u64)> = crate::COLUMN_NAMES.iter().map(|&n| (n, 0)).collect();
        for path in paths {
            for (name, bytes) in crate::dayfile::column_bytes(&path)? {
                if let Some(slot) = out.iter_mut().find(|(n, _)| *n == name) {
                    slot.1 += bytes;
                }
            }
        }
        Ok(out)
    }

    /// Sizes and counts of what the store holds.
    pub fn stats(&self) -> Result<StoreStats> {
        let st = self.lock()?;
        let mut s = StoreStats::default();
        for f in st.days.values().flat_map(|d| &d.files) {
            s.day_files += 1;
            s.sealed_rows += f.rows;
            s.parquet_bytes += f.bytes;
        }
        s.wal_bytes = st.segments.values().map(|seg| seg.len).sum();
        let unsealed = unsealed_days(&st);
        s.unsealed_rows = unsealed.iter().map(|d| unsealed_rows(&st, *d)).sum();
        let mut all_days: Vec<Day> = st.days.keys().copied().chain(unsealed).collect();
        all_days.sort_unstable();
        all_days.dedup();
        s.days = all_days.len();
        s.rows = s.sealed_rows + s.unsealed_rows;
        s.bytes_on_disk = s.parquet_bytes + s.wal_bytes;
        s.bytes_per_value =
            if s.sealed_rows == 0 { 0.0 } else { s.parquet_bytes as f64 / (s.sealed_rows as f64 * 9.0) };
        Ok(s)
    }

    /// The day files of a day, main file first.
    pub fn day_files(&self, day: Day) -> Result<Vec<PathBuf>> {
        let st = self.lock()?;
        Ok(st.days.get(&day).map(|d| d.files.iter().map(|f| f.path.clone()).collect()).unwrap_or_default())
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| Error::Poisoned("state"))
    }

    fn plan(&self, from: Day, to: Day) -> Result<Vec<DayPlan>> {
        let st = self.lock()?;
        let mut days: Vec<Day> = st.days.range(from..=to).map(|(d, _)| *d).collect();
        days.extend(unsealed_days(&st).into_iter().filter(|d| (from..=to).contains(d)));
        days.sort_unstable();
        days.dedup();
        Ok(days
            .into_iter()
            .map(|day| {
                let mut files: Vec<&DayFile> =
                    st.days.get(&day).map(|d| d.files.iter().collect()).unwrap_or_default();
                files.sort_by_key(|f| f.extra);
                DayPlan {
                    day,
                    has_main: files.first().is_some_and(|f| f.extra == 0),
                    files: files.iter().map(|f| f.path.clone()).collect(),
                    wal: wal_parts(&st, day),
                }
            })
            .collect())
    }

    /// Deletes segments none of whose rows is still unsealed; returns how many.
    fn drop_spent_segments(&self) -> Result<usize> {
        let doomed: Vec<PathBuf> = {
            let mut st = self.lock()?;
            let current = st.current.as_ref().map(|(seq, _)| *seq);
            let spent: Vec<u64> = st
                .segments
                .iter()
                .filter(|(seq, seg)| {
                    Some(**seq) != current && seg.days.keys().all(|d| !is_unsealed_in(&st, *d, **seq))
                })
                .map(|(seq, _)| *seq)
                .collect();
            spent.iter().filter_map(|seq| st.segments.remove(seq)).map(|s| s.path).collect()
        };
        for path in &doomed {
            wal::remove_file(path)?;
        }
        if !doomed.is_empty() {
            wal::sync_dir(&self.wal_dir)?;
        }
        Ok(doomed.len())
    }
}

/// Whether rows of `day` in segment `seq` are still waiting to be sealed.
fn is_unsealed_in(st: &State, day: Day, seq: u64) -> bool {
    st.expired_before.is_none_or(|e| day >= e) && st.days.get(&day).is_none_or(|f| seq > f.wal_through)
}

fn unsealed_days(st: &State) -> Vec<Day> {
    let mut days: Vec<Day> = st
        .segments
        .iter()
        .flat_map(|(seq, seg)| seg.days.keys().filter(|d| is_unsealed_in(st, **d, *seq)).copied())
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}

fn unsealed_rows(st: &State, day: Day) -> u64 {
    st.segments
        .iter()
        .filter(|(seq, _)| is_unsealed_in(st, day, **seq))
        .filter_map(|(_, s)| s.days.get(&day))
        .sum()
}

fn wal_parts(st: &State, day: Day) -> Vec<(PathBuf, u64)> {
    st.segments
        .iter()
        .filter(|(seq, seg)| seg.days.contains_key(&day) && is_unsealed_in(st, day, **seq))
        .map(|(_, seg)| (seg.path.clone(), seg.len))
        .collect()
}

fn sorted_ids(ids: &[i64]) -> Vec<i64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

fn read_expired_before(dir: &Path) -> Result<Option<Day>> {
    let path = dir.join(EXPIRED_BEFORE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Day::parse(text.trim()).map(Some).ok_or_else(|| Error::Malformed {
            path,
            what: format!("{:?} is not a YYYY-MM-DD date", text.trim()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", &path)(e)),
    }
}

fn write_expired_before(dir: &Path, day: Day) -> Result<()> {
    let path = dir.join(EXPIRED_BEFORE_FILE);
    let tmp = dir.join(format!("{EXPIRED_BEFORE_FILE}.tmp"));
    {
        let file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
        std::io::Write::write_all(&mut &file, format!("{day}\n").as_bytes()).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io("rename into place", &tmp))?;
    wal::sync_dir(dir)
}

fn load_day_files(days_dir: &Path, expired_before: Option<Day>) -> Result<BTreeMap<Day, DayFiles>> {
    let mut days: BTreeMap<Day, DayFiles> = BTreeMap::new();
    for entry in fs::read_dir(days_dir).map_err(io("list", days_dir))? {
        let entry = entry.map_err(io("list", days_dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.starts_with(dayfile::TMP_PREFIX) {
            // A seal that crashed before its rename: the rows are still in the WAL.
            wal::remove_file(&path)?;
            continue;
        }
        let Some((day, extra)) = dayfile::parse_file_name(name) else { continue };
        if expired_before.is_some_and(|e| day < e) {
            // A prune that crashed part-way.
            wal::remove_file(&path)?;
            continue;
        }
        let footer = dayfile::read_footer(&path)?;
        let bytes = entry.metadata().map_err(io("stat", &path))?.len();
        let files = days.entry(day).or_default();
        files.wal_through = files.wal_through.max(footer.wal_through);
        files.files.push(DayFile { path, extra, rows: footer.rows, bytes });
    }
    for d in days.values_mut() {
        d.files.sort_by_key(|f| f.extra);
    }
    Ok(days)
}

fn load_segments(wal_dir: &Path, offset_secs: i32) -> Result<BTreeMap<u64, Segment>> {
    let mut segments = BTreeMap::new();
    for entry in fs::read_dir(wal_dir).map_err(io("list", wal_dir))? {
        let entry = entry.map_err(io("list", wal_dir))?;
        let Some(seq) = entry.file_name().to_str().and_then(wal::parse_segment_name) else { continue };
        let path = entry.path();
        let data = wal::read_segment(&path, None)?;
        let mut days: BTreeMap<Day, u64> = BTreeMap::new();
        let decoded =
            wal::decode_segment(&data, |r| *days.entry(Day::of_ms(r.at_ms, offset_secs)).or_insert(0) += 1);
        if decoded.torn {
            tracing::warn!(
                segment = %path.display(),
                ignored_bytes = data.len() as u64 - decoded.valid_len,
                "ignoring a torn or corrupt tail of a WAL segment (a write cut short by a crash)"
            );
        }
        segments.insert(seq, Segment { path, len: decoded.valid_len, days });
    }
    Ok(segments)
}
