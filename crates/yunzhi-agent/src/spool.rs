//! Batches not yet delivered, one file each: `spool/<sequence>.json`.
//!
//! Every new batch is written here before it is sent and removed once the
//! server has it, so a crash or a restart can lose nothing that was sampled,
//! and batches go out in sequence order. The spool is bounded: past the
//! limits the oldest batches are dropped and the count travels in the next
//! new batch as `dropped_batches`.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::report::Batch;
use crate::state::{StateError, err, read_json, sync_dir, write_json_atomically};

/// Ten thousand one-minute batches is a week without the server; 64 MiB keeps
/// a host's disk safe whatever the batches hold.
pub const MAX_BATCHES: usize = 10_000;
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_batches: usize,
    pub max_bytes: u64,
}

pub struct Spool {
    dir: PathBuf,
    limits: Limits,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub sequence: u64,
    pub path: PathBuf,
    len: u64,
}

impl Spool {
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err("create", dir))?;
        Ok(Spool { dir: dir.to_owned(), limits: Limits { max_batches: MAX_BATCHES, max_bytes: MAX_BYTES } })
    }

    #[cfg(test)]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The spooled batches, oldest sequence first.
    pub fn pending(&self) -> Result<Vec<Entry>, StateError> {
        let mut entries = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(err("list", &self.dir))? {
            let item = item.map_err(err("list", &self.dir))?;
            let name = item.file_name();
            // Skips `.tmp` leftovers of an interrupted write.
            let Some(sequence) = name.to_str().and_then(|n| n.strip_suffix(".json")?.parse().ok()) else {
                continue;
            };
            let len = item.metadata().map(|m| m.len()).unwrap_or(0);
            entries.push(Entry { sequence, path: item.path(), len });
        }
        entries.sort_by_key(|e| e.sequence);
        Ok(entries)
    }

    /// Stores a batch and enforces the limits by dropping the oldest others.
    /// Returns how many batches were lost, counting those that the dropped
    /// batches themselves reported as lost.
    pub fn push(&self, batch: &Batch) -> Result<u64, StateError> {
        write_json_atomically(&self.path_of(batch.sequence), batch)?;
        let mut entries = self.pending()?;
        let mut bytes: u64 = entries.iter().map(|e| e.len).sum();
        let mut lost = 0;
        while entries.len() > 1 && (entries.len() > self.limits.max_batches || bytes > self.limits.max_bytes)
        {
            let oldest = entries.remove(0);
            let carried = self.load(&oldest).ok().and_then(|b| b.dropped_batches).unwrap_or(0);
            fs::remove_file(&oldest.path).map_err(err("drop the oldest spooled batch", &oldest.path))?;
            bytes = bytes.saturating_sub(oldest.len);
            lost += 1 + carried;
        }
        if lost > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(lost)
    }

    pub fn load(&self, entry: &Entry) -> Result<Batch, StateError> {
        read_json(&entry.path)?.ok_or_else(|| err("read", &entry.path)(std::io::ErrorKind::NotFound.into()))
    }

    pub fn remove(&self, entry: &Entry) -> Result<(), StateError> {
        fs::remove_file(&entry.path).map_err(err("remove the delivered batch", &entry.path))
    }

    fn path_of(&self, sequence: u64) -> PathBuf {
        self.dir.join(format!("{sequence}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(sequence: u64, dropped: Option<u64>) -> Batch {
        Batch {
            sequence,
            boot_id: "boot".into(),
            version: "0.1.0".into(),
            binary_sm3: "00".into(),
            sent_at: "1970-01-01T00:00:00.000Z".into(),
            samples: vec![],
            dropped_batches: dropped,
        }
    }

    #[test]
    fn spooled_batches_come_back_in_sequence_order_not_name_order() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let spool = Spool::open(tmp.path()).expect("opens");
        for seq in [10, 9, 100] {
            spool.push(&batch(seq, None)).expect("pushes");
        }
        fs::write(tmp.path().join("101.json.tmp"), b"{").expect("leftover");
        let order: Vec<u64> = spool.pending().expect("lists").iter().map(|e| e.sequence).collect();
        assert_eq!(order, [9, 10, 100]);
        let first = &spool.pending().expect("lists")[0];
        assert_eq!(spool.load(first).expect("loads"), batch(9, None));
    }

    #[test]
    fn a_full_spool_drops_the_oldest_batches_and_counts_what_they_had_lost() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let spool = Spool::open(tmp.path())
            .expect("opens")
            .with_limits(Limits { max_batches: 2, max_bytes: 1 << 20 });
        assert_eq!(spool.push(&batch(1, Some(5))).expect("pushes"), 0);
        assert_eq!(spool.push(&batch(2, None)).expect("pushes"), 0);
        // Batch 1 goes, and with it the news of the 5 it carried.
        assert_eq!(spool.push(&batch(3, None)).expect("pushes"), 6);
        let left: Vec<u64> = spool.pending().expect("lists").iter().map(|e| e.sequence).collect();
        assert_eq!(left, [2, 3]);
    }

    #[test]
    fn the_byte_limit_never_drops_the_batch_just_written() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let spool =
            Spool::open(tmp.path()).expect("opens").with_limits(Limits { max_batches: 100, max_bytes: 10 });
        spool.push(&batch(1, None)).expect("pushes");
        assert_eq!(spool.push(&batch(2, None)).expect("pushes"), 1);
        assert_eq!(spool.pending().expect("lists").len(), 1);
    }
}
