//! Raw monitoring samples of every cloud host, kept for a configurable
//! window (35 days by default) in compact columnar form.
//!
//! Readings are appended to a checksummed write-ahead log (durable when
//! [`RawStore::append`] returns), then each complete civil day is sealed
//! into one Apache Parquet file, `days/YYYY-MM-DD.parquet`, which the
//! district's big-data platform can read as it is. Scans hand out columns
//! as slices ([`Batch`]) and [`RawStore::daily_stats`] summarises every
//! host's day in one parallel pass.
//!
//! ```no_run
//! # fn main() -> yunzhi_rawstore::Result<()> {
//! use yunzhi_rawstore::{Config, Day, RawStore, Row};
//! let store = RawStore::open(std::path::Path::new("/var/lib/yunzhi/raw"), Config::default())?;
//! store.append(&[Row { resource_id: 7, at_ms: 1_764_000_000_000, cpu_pct: 12.5, ..Row::default() }])?;
//! let today = Day::parse("2026-11-26").expect("a date");
//! store.seal(today)?; // every day before today
//! store.prune(today)?; // days past the retention window
//! store.scan(today.plus(-7), today, Some(&[7]), |batch| println!("{} rows", batch.len()))?;
//! # Ok(()) }
//! ```

mod day;
mod dayfile;
mod error;
mod hundredths;
mod pages;
mod rollup;
mod row;
mod scan;
mod select;
mod store;
mod stored;
mod wal;

pub use day::Day;
pub use dayfile::{COLUMN_NAMES, Compression, schema};
pub use error::{Error, Result};
pub use rollup::ResourceDay;
pub use row::{NOT_COUNTED, Row};
pub use scan::{Batch, Columns};
pub use store::{Config, RawStore, SealReport, SealedFile, StoreStats};
