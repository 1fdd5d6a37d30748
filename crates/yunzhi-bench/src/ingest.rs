//! Ingest through HTTP: remote-write batches of node_exporter-style series
//! to `yunzhi serve` and to Prometheus's remote-write receiver.

/// Options of `yunzhi bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub async fn run(_args: &Args) -> anyhow::Result<Vec<crate::report::Figure>> {
    anyhow::bail!("`yunzhi bench ingest` is being built")
}
