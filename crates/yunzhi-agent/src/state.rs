//! The state directory: the host credential, the sequence counter and the
//! spool. Everything the agent must not lose or repeat across restarts lives
//! here, written atomically (temporary file, fsync, rename, fsync of the
//! directory), so a power cut leaves the old or the new version, never half.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::spool::Spool;

const CREDENTIAL: &str = "credential.json";
/// Where a credential the server refused is moved, so the next run asks for a
/// new enrolment code instead of retrying a dead one.
const REVOKED: &str = "credential.revoked.json";
const COUNTERS: &str = "counters.json";
const LOCK: &str = "lock";

/// What enrolment gave this host.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credential {
    pub resource_id: u64,
    pub credential: String,
    #[serde(default)]
    pub interval_secs: Option<u64>,
}

impl std::fmt::Debug for Credential {
    // Never let the secret reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("resource_id", &self.resource_id).finish_non_exhaustive()
    }
}

/// The sequence of the next new batch and the batches lost to a full spool
/// that the next new batch must report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub next_sequence: u64,
    #[serde(default)]
    pub dropped_batches: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters { next_sequence: 1, dropped_batches: 0 }
    }
}

#[derive(Debug)]
pub struct StateError {
    pub what: String,
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot {} {}: {}", self.what, self.path.display(), self.source)
    }
}

impl std::error::Error for StateError {}

pub fn err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
    let (what, path) = (what.to_owned(), path.to_owned());
    move |source| StateError { what, path, source }
}

pub struct StateDir {
    dir: PathBuf,
    /// Held for the life of the process: two agents on one state directory
    /// would hand out the same sequence twice.
    _lock: File,
}

impl StateDir {
    /// Creates the directory (mode 0700) if need be and takes its lock.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err("create", dir))?;
        // An existing directory keeps whatever mode it had; the credential
        // inside must not be listable by others either way.
        fs::set_permissions(dir, Permissions::from_mode(0o700)).map_err(err("restrict", dir))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(err("open", &lock_path))?;
        lock.try_lock().map_err(|e| StateError {
            what: "lock (is another yunzhi-agent running on it?)".into(),
            path: lock_path.clone(),
            source: match e {
                fs::TryLockError::Error(e) => e,
                fs::TryLockError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
            },
        })?;
        Ok(StateDir { dir: dir.to_owned(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn credential(&self) -> Result<Option<Credential>, StateError> {
        read_json(&self.dir.join(CREDENTIAL))
    }

    pub fn save_credential(&self, credential: &Credential) -> Result<(), StateError> {
        write_json_atomically(&self.dir.join(CREDENTIAL), credential)
    }

    pub fn was_revoked(&self) -> bool {
        self.dir.join(REVOKED).exists()
    }

    pub fn mark_revoked(&self) -> Result<(), StateError> {
        let from = self.dir.join(CREDENTIAL);
        fs::rename(&from, self.dir.join(REVOKED)).map_err(err("set aside the revoked credential", &from))?;
        sync_dir(&self.dir)
    }

    /// After a successful new enrolment the old, revoked credential has no use.
    pub fn forget_revoked(&self) {
        let _ = fs::remove_file(self.dir.join(REVOKED));
    }

    pub fn counters(&self) -> Result<Counters, StateError> {
        Ok(read_json(&self.dir.join(COUNTERS))?.unwrap_or_default())
    }

    pub fn save_counters(&self, counters: &Counters) -> Result<(), StateError> {
        write_json_atomically(&self.dir.join(COUNTERS), counters)
    }

    pub fn spool(&self) -> Result<Spool, StateError> {
        Spool::open(&self.dir.join("spool"))
    }
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err("read", path)(e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| err("parse", path)(io::Error::other(e)))
}

pub fn write_json_atomically<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let bytes = serde_json::to_vec(value).map_err(|e| err("encode", path)(io::Error::other(e)))?;
    write_atomically(path, &bytes)
}

/// Mode 0600 from the start: the file never exists with wider permissions,
/// not even for a moment.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err("create", &tmp))?;
    file.write_all(bytes).map_err(err("write", &tmp))?;
    file.sync_all().map_err(err("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(err("rename into place", path))?;
    sync_dir(dir)
}

/// Makes a rename durable: without it the new name may vanish in a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(err("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_stored_readable_by_its_owner_only() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("state");
        let state = StateDir::open(&dir).expect("opens");
        state
            .save_credential(&Credential { resource_id: 7, credential: "s3cret".into(), interval_secs: None })
            .expect("saves");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(CREDENTIAL)), 0o600);
        assert_eq!(state.credential().expect("reads").expect("present").resource_id, 7);
    }

    #[test]
    fn a_second_agent_on_the_same_state_directory_is_refused() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let _first = StateDir::open(tmp.path()).expect("opens");
        let err = StateDir::open(tmp.path()).err().expect("locked").to_string();
        assert!(err.contains("another yunzhi-agent"), "{err}");
    }

    #[test]
    fn a_revoked_credential_is_set_aside_and_no_longer_used() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let state = StateDir::open(tmp.path()).expect("opens");
        state
            .save_credential(&Credential { resource_id: 1, credential: "x".into(), interval_secs: Some(60) })
            .expect("saves");
        state.mark_revoked().expect("sets aside");
        assert!(state.credential().expect("reads").is_none());
        assert!(state.was_revoked());
    }

    #[test]
    fn the_credential_never_appears_in_debug_output() {
        let c = Credential { resource_id: 1, credential: "s3cret".into(), interval_secs: None };
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn counters_start_at_sequence_one() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let state = StateDir::open(tmp.path()).expect("opens");
        assert_eq!(state.counters().expect("reads"), Counters { next_sequence: 1, dropped_batches: 0 });
    }
}
