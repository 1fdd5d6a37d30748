//! `yunzhi bench ingest` at a tiny size, against this build's `yunzhi`
//! binary and Debian's Prometheus: every sample posted is taken by both.
//! Without `prometheus` installed it fails, saying what to install: a
//! benchmark whose comparison silently disappears would prove nothing.

use std::path::PathBuf;

use yunzhi_bench::ingest::{Args, measure, payload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_bench_gets_every_sample_into_yunzhi_and_into_prometheus() {
    let args = Args {
        hosts: 6,
        scrapes: 3,
        senders: 2,
        max_samples_per_send: 50,
        remote_write_idle_seconds: 1,
        yunzhi_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_yunzhi"))),
        stall_seconds: 60,
        ..Args::default()
    };
    let outcome = match measure(&args).await {
        Ok(o) => o,
        Err(e) => panic!("the ingest bench failed: {e:#}"),
    };
    let samples = 6 * 3 * payload::series_per_host() as u64;
    assert_eq!(outcome.samples, samples);
    assert!(outcome.requests >= (samples as usize).div_ceil(50), "{} requests", outcome.requests);
    assert_eq!(outcome.expected_readings, 6 * 2, "one reading per host and scrape after the first");
    assert_eq!(outcome.yunzhi.stored, outcome.expected_readings, "Yunzhi stored every host's every reading");
    assert_eq!(outcome.prometheus.stored, samples, "Prometheus appended every sample");
    assert_eq!(outcome.yunzhi.retries + outcome.prometheus.retries, 0, "nobody was asked to wait");
    let figures = outcome.figures();
    let per_cpu = &figures[0];
    assert!(per_cpu.value > 0.0 && per_cpu.prometheus.is_some_and(|p| p > 0.0), "{}", per_cpu.line());
    assert!(outcome.yunzhi.memory.peak > 0 && outcome.prometheus.memory.peak > 0);
}
