//! Yunzhi's persistence on SQLite (the embedded default) and PostgreSQL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver: `$N`
//! placeholders work on both, times are epoch milliseconds, flags 0/1. Every
//! change goes through a [`Tx`], whose mutating methods write their audit
//! record in the same transaction (invariant 2 of ARCHITECTURE.md). Every
//! read of unit-scoped data takes a [`Scope`] and filters by it in SQL, so
//! another unit's row is never even loaded (invariant 4).
//!
//! On SQLite all writes go through a single connection, so transactions never
//! race for the write lock (SQLite has one writer anyway); reads use a pool
//! and, with WAL, never wait for writes.

mod audit;
mod calendar;
mod catalog;
mod documents;
mod error;
mod findings;
mod idempotency;
mod ingest_tokens;
mod jobs;
mod migrate;
mod monitoring;
mod notifications;
mod page;
mod platforms;
mod requests;
mod resources;
mod settings;
mod systems;
mod units;
mod users;
mod warnings;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

pub use audit::{AuditCtx, AuditFilter, AuditRecord, VerifyReport};
pub use catalog::CatalogItemRecord;
pub use documents::DocumentRecord;
pub use error::StoreError;
pub use findings::{FindingFilter, FindingRecord, NewFinding};
pub use idempotency::StoredResponse;
pub use ingest_tokens::{InboxEntry, IngestTokenRecord};
pub use jobs::{JobAttempt, JobRecord, NewJob};
pub use monitoring::{AgentRecord, AgentSignals, Enrolment, Span};
pub use notifications::{Notice, NotificationRecord, Outgoing};
pub use page::{Page, PageRequest};
pub use platforms::{PlatformRecord, PlatformUsage};
pub use requests::{NewRequest, RequestFilter, RequestRecord, StepRecord, VersionRecord};
pub use resources::{LiveHost, NewResource, ResourceFilter, ResourceRecord};
pub use systems::{SystemFilter, SystemRecord};
pub use units::UnitRecord;
pub use users::{AuthRecord, SessionRecord, UserRecord};
pub use warnings::{WarningChange, WarningFilter, WarningRecord};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// The live hosts as last read, with the change mark they were read at
    /// (see [`Store::live_hosts`]).
    live_hosts: std::sync::Arc<std::sync::Mutex<Option<HeldHosts>>>,
}

/// The live hosts and the change mark they were read at.
type HeldHosts = (String, std::sync::Arc<[LiveHost]>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

impl Store {
    /// Opens `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite
    /// file if it does not exist. Does not migrate.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL `{url}`: use sqlite://PATH or postgres://USER@HOST/DB"
            )));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = |max: u32| {
            AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(15)).after_connect(
                move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // WAL lets readers run beside the writer; FULL sync
                            // makes every acknowledged commit survive a power cut.
                            sqlx::raw_sql(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .execute(&mut *conn)
                            .await?;
                        }
                        Ok(())
                    })
                },
            )
        };
        let (read, write) = match backend {
            Backend::Sqlite => {
                let write = pool(1).connect_with(options.clone()).await?;
                let read = pool(8).connect_with(options).await?;
                (read, write)
            }
            Backend::Postgres => {
                let p = pool(16).connect_with(options).await?;
                (p.clone(), p)
            }
        };
        Ok(Store { read, write, backend, live_hosts: Default::default() })
    }

    /// Opens and brings the schema up to date.
    pub async fn open_and_migrate(url: &str) -> Result<Store> {
        let store = Store::open(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite every write goes through one
    /// connection, so a transaction that waits long for it, or holds it
    /// long, is logged with the place in the code that began it: that is
    /// how a slow writer starving the others is found.
    #[track_caller]
    pub fn begin(&self) -> impl std::future::Future<Output = Result<Tx>> + Send + '_ {
        let at = std::panic::Location::caller();
        async move {
            let asked = Instant::now();
            let inner = self.write.begin().await.inspect_err(|e| {
                tracing::warn!(
                    at = %at,
                    waited_ms = asked.elapsed().as_millis() as u64,
                    "no write connection: {e}"
                );
            })?;
            let waited = asked.elapsed();
            if waited >= SLOW_TX {
                tracing::warn!(at = %at, waited_ms = waited.as_millis() as u64, "write transaction waited long for the writer");
            }
            Ok(Tx { inner: Some(inner), backend: self.backend, at, began: Instant::now() })
        }
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// One write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    /// Taken by [`Tx::commit`]; still here on drop means a rollback.
    inner: Option<sqlx::Transaction<'static, sqlx::Any>>,
    backend: Backend,
    /// Where the transaction was begun and when, for the slow-writer log.
    at: &'static std::panic::Location<'static>,
    began: Instant,
}

/// A write transaction waiting for, or holding, the writer this long is
/// logged: on SQLite every other write waits behind it.
const SLOW_TX: Duration = Duration::from_secs(2);

impl Tx {
    pub async fn commit(mut self) -> Result<()> {
        let inner = self.inner.take().expect("a transaction is committed once");
        inner.commit().await?;
        let held = self.began.elapsed();
        if held >= SLOW_TX {
            tracing::warn!(at = %self.at, held_ms = held.as_millis() as u64, "write transaction held the writer long");
        }
        Ok(())
    }

    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.inner.as_mut().expect("a transaction in use is not committed")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let held = self.began.elapsed();
        if self.inner.is_some() && held >= SLOW_TX {
            tracing::warn!(at = %self.at, held_ms = held.as_millis() as u64, "write transaction rolled back after holding the writer long");
        }
    }
}

/// `(CAST($n AS BIGINT) IS NULL OR col = $n)` binds: `None` means every unit.
fn scope_param(scope: yunzhi_domain::access::Scope) -> Option<i64> {
    scope.unit().map(|u| u.0)
}

/// A `LIKE` pattern matching `text` anywhere, lower-cased, with `%`, `_`
/// and the escape character itself escaped (used with `ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Rows per statement in batched reads and writes: well under both
/// backends' limits on bound parameters (SQLite 32 766, PostgreSQL 65 535).
pub(crate) const CHUNK: usize = 400;

/// Rows per statement for a batched write binding `per_row` parameters a
/// row: about [`PARAMETERS`] parameters a statement.
pub(crate) fn rows_per_statement(per_row: usize) -> usize {
    (PARAMETERS / per_row.max(1)).max(1)
}

/// Parameters bound per batched write. Not more: SQLite finds each
/// parameter's name by walking the statement's list of names, so binding
/// n parameters costs n² / 2 steps — at 5 600 (400 rows of 14) that was
/// more than the rows' own writing. A statement of ~500 still spreads the
/// round trip to the database over dozens of rows.
const PARAMETERS: usize = 500;

/// `$first, $first+1, …` for `n` parameters.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
