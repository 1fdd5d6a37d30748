//! The one error type of the crate: every variant names the file or the
//! operation that failed, so a log line is enough to find the culprit.

use std::path::PathBuf;

/// What went wrong in the raw store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system call failed.
    #[error("could not {action} {}: {cause}", path.display())]
    Io { action: &'static str, path: PathBuf, cause: std::io::Error },
    /// The Parquet library refused to read or write a day file.
    #[error("could not {action} Parquet file {}: {cause}", path.display())]
    Parquet { action: &'static str, path: PathBuf, cause: parquet::errors::ParquetError },
    /// Arrow refused to assemble or read a record batch.
    #[error("could not {action}: {cause}")]
    Arrow { action: &'static str, cause: arrow_schema::ArrowError },
    /// A day file does not look like one this crate wrote.
    #[error("day file {} is not in the expected form: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
    /// One `append` call must fit in one write-ahead-log frame, so that it is
    /// durable all or nothing.
    #[error("a batch of {rows} rows is more than one write-ahead-log frame holds ({max} rows)")]
    BatchTooLarge { rows: usize, max: usize },
    /// A store lock was poisoned by a panic in another thread.
    #[error("the raw store's {0} lock was poisoned by a panic in another thread")]
    Poisoned(&'static str),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with the action and the path.
pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |cause| Error::Io { action, path, cause }
}

/// Wraps a Parquet error with the action and the path.
pub(crate) fn pq(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
    let path = path.into();
    move |cause| Error::Parquet { action, path, cause }
}
