//! What can go wrong in the store, in terms the server can answer with.

use sqlx::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (a unit's credit code, a username…).
    #[error("{field} is already taken")]
    Duplicate { field: &'static str },
    /// A row changed since it was read, or a referenced row is missing.
    #[error("{0}")]
    Conflict(String),
    /// The database URL or settings are wrong.
    #[error("{0}")]
    Config(String),
    /// A stored value that the code cannot read back: a bug or a hand edit.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    /// Maps a unique violation on one of `fields` to [`StoreError::Duplicate`].
    /// Both backends name the column (SQLite) or our named constraint
    /// (PostgreSQL, `<table>_<column>_key`) in the error.
    pub(crate) fn unique(e: sqlx::Error, fields: &[&'static str]) -> StoreError {
        if let sqlx::Error::Database(db) = &e
            && db.kind() == ErrorKind::UniqueViolation
        {
            let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
            if let Some(f) = fields.iter().find(|f| text.contains(*f)) {
                return StoreError::Duplicate { field: f };
            }
        }
        StoreError::Db(e)
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::corrupt(e)
    }
}
