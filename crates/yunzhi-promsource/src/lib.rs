//! The efficiency analysis' daily statistics (Art. 13: idle and zombie
//! hosts) read from a Prometheus-compatible store over its HTTP query API,
//! for sites whose monitoring outgrew one machine: Prometheus,
//! VictoriaMetrics or Thanos Query, fed by node_exporter.
//!
//! The store computes the figures ([`PromSource::daily_stats`]); they come
//! back as the same [`DailyStats`](yunzhi_domain::efficiency::DailyStats)
//! Yunzhi's own rollups produce, so the rules cannot tell the sources apart.

mod api;
mod config;
mod days;
mod error;
mod promql;
mod source;
#[cfg(feature = "testing")]
pub mod testing;

pub use api::Series;
pub use config::PromSourceConfig;
pub use error::{Error, Result};
pub use source::{HostKey, PromSource};
