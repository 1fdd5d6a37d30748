//! Where the agent finds the host's files. Everything it reads about the host
//! goes through a [`HostRoot`], so tests point it at a directory of fixtures
//! instead of the real `/proc`, `/sys` and `/var/run/utmp`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The root under which `proc/`, `sys/`, `etc/` and `var/run/utmp` are found:
/// `/` on a real host.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
}

impl HostRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn proc(&self, rel: &str) -> PathBuf {
        self.root.join("proc").join(rel)
    }

    pub fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    pub fn etc(&self, rel: &str) -> PathBuf {
        self.root.join("etc").join(rel)
    }

    /// `/var/run` is a symlink to `/run` on current distributions; the
    /// historical path works on both old and new ones.
    pub fn utmp(&self) -> PathBuf {
        self.root.join("var/run/utmp")
    }

    /// The host name as the kernel knows it, without asking libc.
    pub fn hostname(&self) -> Result<String, ReadError> {
        Ok(read_to_string(&self.proc("sys/kernel/hostname"))?.trim().to_owned())
    }

    /// Changes at every boot: lets the server tell a restarted host from a
    /// restarted agent.
    pub fn boot_id(&self) -> Result<String, ReadError> {
        Ok(read_to_string(&self.proc("sys/kernel/random/boot_id"))?.trim().to_owned())
    }

    /// `None` where the host has no machine id (some minimal images), which
    /// the wire contract sends as `null`.
    pub fn machine_id(&self) -> Option<String> {
        let id = fs::read_to_string(self.etc("machine-id")).ok()?;
        let id = id.trim();
        (!id.is_empty()).then(|| id.to_owned())
    }
}

/// A host file that could not be read or understood, naming the file.
#[derive(Debug)]
pub enum ReadError {
    Io { path: PathBuf, source: io::Error },
    Format { path: PathBuf, what: String },
}

impl ReadError {
    pub fn format(path: &Path, what: impl Into<String>) -> Self {
        ReadError::Format { path: path.to_owned(), what: what.into() }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            ReadError::Format { path, what } => write!(f, "cannot understand {}: {what}", path.display()),
        }
    }
}

impl std::error::Error for ReadError {}

pub fn read_to_string(path: &Path) -> Result<String, ReadError> {
    fs::read_to_string(path).map_err(|source| ReadError::Io { path: path.to_owned(), source })
}
