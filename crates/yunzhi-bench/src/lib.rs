//! `yunzhi bench`: generates a fleet, runs each of the performance
//! figures through Yunzhi and, on the same data in the same run, through
//! Prometheus from Debian (`prometheus`, `promtool`), and prints both and
//! their ratio. Figures are measured, never assumed: CPU time is read from
//! the measured process's `/proc/<pid>/stat`, memory from its
//! `/proc/<pid>/status`, so they hold on a shared machine.
//!
//! - [`ingest`]: remote-write batches of node_exporter-style series over
//!   HTTP, end to end to durable storage, as samples per server CPU-second.
//! - [`fleet`]: the fleet analysis from rollups and from raw storage, the
//!   same question in PromQL, bytes per sample, and memory.

pub mod fleet;
pub mod ingest;
pub mod process;
pub mod prometheus;
pub mod report;
