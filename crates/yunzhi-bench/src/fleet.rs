//! The fleet analysis from rollups and from raw storage, the same question
//! in PromQL on Prometheus, bytes per sample, and memory.

/// Options of `yunzhi bench fleet`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub async fn run(_args: &Args) -> anyhow::Result<Vec<crate::report::Figure>> {
    anyhow::bail!("`yunzhi bench fleet` is being built")
}
