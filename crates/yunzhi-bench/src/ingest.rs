//! Ingest through HTTP: remote-write batches of node_exporter-style series
//! to `yunzhi serve` and to Prometheus's remote-write receiver.
//!
//! One fleet's payloads are built first ([`payload`]), then posted by the
//! same concurrent senders to a fresh Yunzhi and a fresh Prometheus, one
//! after the other. Each server's CPU time is read from `/proc` from just
//! before its first request until it has stored everything, seen from
//! outside through its own `/metrics`: Yunzhi's readings
//! (`yunzhi_ingested_samples_total{source="remote_write"}`, one per host
//! and scrape after the first, which only sets the counters' base) and
//! Prometheus's appended samples (`prometheus_tsdb_head_samples_appended_total`).
//! The figure is samples per server CPU-second, which holds on a shared
//! machine where wall time does not.

pub mod payload;
mod send;
mod yunzhi;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::{self, Memory, ThreadCpu};
use crate::prometheus::Prometheus;
use crate::report::Figure;
use payload::Payloads;

const DEFAULT_HOSTS: usize = 2000;
const DEFAULT_SCRAPES: usize = 20;
const DEFAULT_SENDERS: usize = 4;
/// The server's own default: the benchmark measures what a site runs.
const DEFAULT_IDLE_SECONDS: u64 = 30;
const DEFAULT_STALL_SECONDS: u64 = 300;

/// Options of `yunzhi bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Hosts in the fleet, each running node_exporter.
    #[arg(long, default_value_t = DEFAULT_HOSTS)]
    pub hosts: usize,
    /// Scrapes of every host, a minute apart, ending now.
    #[arg(long, default_value_t = DEFAULT_SCRAPES)]
    pub scrapes: usize,
    /// Concurrent senders: Prometheus's remote-write shards, one request in flight each.
    #[arg(long, default_value_t = DEFAULT_SENDERS)]
    pub senders: usize,
    /// Samples per request at most (Prometheus 2.42's `max_samples_per_send`).
    #[arg(long, default_value_t = payload::MAX_SAMPLES_PER_SEND)]
    pub max_samples_per_send: usize,
    /// How long Yunzhi waits for the rest of a moment's series
    /// (`serve --remote-write-idle-seconds`; 30 by default there and here;
    /// settled moments then wait as long again to be stored together).
    #[arg(long, default_value_t = DEFAULT_IDLE_SECONDS)]
    pub remote_write_idle_seconds: u64,
    /// The `yunzhi` binary to serve with; by default the one running.
    #[arg(long)]
    pub yunzhi_bin: Option<PathBuf>,
    /// Where the temporary data folders go; a real disk, since durability
    /// is part of what is measured (default: the system's temporary folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Seconds without progress after which a server is given up on.
    #[arg(long, default_value_t = DEFAULT_STALL_SECONDS)]
    pub stall_seconds: u64,
    /// Seeds the fleet's noise: the same seed sends the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            hosts: DEFAULT_HOSTS,
            scrapes: DEFAULT_SCRAPES,
            senders: DEFAULT_SENDERS,
            max_samples_per_send: payload::MAX_SAMPLES_PER_SEND,
            remote_write_idle_seconds: DEFAULT_IDLE_SECONDS,
            yunzhi_bin: None,
            work_dir: None,
            stall_seconds: DEFAULT_STALL_SECONDS,
            seed: 1,
        }
    }
}

/// What one server did with the payloads.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Server CPU seconds from just before the first request until all was stored.
    pub cpu_seconds: f64,
    /// From the first request until all was stored.
    pub wall: Duration,
    /// From the first request until the last answer.
    pub acknowledged: Duration,
    /// Requests resent after a 429 or 503.
    pub retries: usize,
    pub memory: Memory,
    /// What the server counted as stored: readings (Yunzhi), samples (Prometheus).
    pub stored: u64,
}

/// Both servers on the same payloads.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub samples: u64,
    pub requests: usize,
    /// Yunzhi's readings when every sample was taken: one per host and scrape after the first.
    pub expected_readings: u64,
    pub yunzhi: Measured,
    pub prometheus: Measured,
}

impl Outcome {
    /// Samples per server CPU-second (at least one clock tick is counted).
    pub fn per_cpu_second(&self, m: &Measured) -> f64 {
        self.samples as f64 / m.cpu_seconds.max(0.01)
    }

    pub fn figures(&self) -> Vec<Figure> {
        let (y, p) = (&self.yunzhi, &self.prometheus);
        let wall = |m: &Measured| self.samples as f64 / m.wall.as_secs_f64().max(1e-3) / 1e3;
        let mib = |m: &Measured| m.memory.peak as f64 / (1024.0 * 1024.0);
        vec![
            Figure {
                name: "ingest, remote-write over HTTP to durable storage".into(),
                value: self.per_cpu_second(y) / 1e6,
                unit: "M samples/CPU-s",
                goal: "≥ 2× Prometheus".into(),
                prometheus: Some(self.per_cpu_second(p) / 1e6),
                higher_is_better: true,
            },
            Figure {
                name: "ingest, wall clock (first request to all stored)".into(),
                value: wall(y),
                unit: "k samples/s",
                goal: "— (shared machine)".into(),
                prometheus: Some(wall(p)),
                higher_is_better: true,
            },
            Figure {
                name: "ingest, server peak resident memory".into(),
                value: mib(y),
                unit: "MiB",
                goal: "— (whole server ≤ 1 GiB)".into(),
                prometheus: Some(mib(p)),
                higher_is_better: false,
            },
        ]
    }
}

pub async fn run(args: &Args) -> anyhow::Result<Vec<Figure>> {
    Ok(measure(args).await?.figures())
}

/// Builds the payloads, then sends them to Yunzhi and to Prometheus and
/// measures both. Fails if either server refuses a request or does not
/// store every sample.
pub async fn measure(args: &Args) -> anyhow::Result<Outcome> {
    // The comparison is the point: without Prometheus there is no figure.
    crate::prometheus::require("prometheus")?;
    // The HTTP client's TLS stack needs its provider, even for plain HTTP.
    yunzhi_server::courier::install_tls();
    if args.hosts == 0 || args.scrapes < 2 || args.senders == 0 || args.max_samples_per_send == 0 {
        bail!("--hosts, --senders and --max-samples-per-send must be at least 1, --scrapes at least 2");
    }
    if !(1..=3600).contains(&args.remote_write_idle_seconds) {
        bail!("--remote-write-idle-seconds must be between 1 and 3600");
    }
    let bin = match &args.yunzhi_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("finding the running yunzhi binary")?,
    };
    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new()
        .prefix("yunzhi-bench-ingest-")
        .tempdir_in(&parent)
        .with_context(|| format!("making a data folder in {}", parent.display()))?;
    println!(
        "ingest: data folders in {}; {} CPUs, load average {}",
        root.path().display(),
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );

    let ydir = root.path().join("yunzhi");
    std::fs::create_dir_all(&ydir)?;
    println!(
        "yunzhi: a fresh database with {} hosts ({} migrate, then the store)",
        args.hosts,
        bin.display()
    );
    let prepared = yunzhi::prepare(&bin, &ydir, args.hosts).await?;

    let shape = payload::Shape {
        hosts: args.hosts,
        scrapes: args.scrapes,
        shards: args.senders,
        max_samples_per_send: args.max_samples_per_send,
        now_ms: jiff::Timestamp::now().as_millisecond(),
        seed: args.seed,
    };
    let started = Instant::now();
    let payloads = Arc::new(payload::build(&shape, &prepared.hosts)?);
    println!(
        "payloads: {} hosts × {} series × {} scrapes (every 60 s) = {} samples in {} requests over {} shards \
         (≤ {} samples each; {:.1} MB protobuf, {:.1} MB snappy), built in {:.1} s",
        args.hosts,
        payloads.series_per_host,
        args.scrapes,
        payloads.samples,
        payloads.requests(),
        args.senders,
        args.max_samples_per_send,
        payloads.raw_bytes as f64 / 1e6,
        payloads.compressed_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
    );
    let expected_readings = (args.hosts * (args.scrapes - 1)) as u64;
    let stall = Duration::from_secs(args.stall_seconds);
    let client = reqwest::Client::new();

    let yunzhi =
        measure_yunzhi(&client, &bin, &ydir, args, &prepared.token, &payloads, expected_readings, stall)
            .await?;
    let pdir = root.path().join("prometheus");
    let prometheus = measure_prometheus(&client, &pdir, &payloads, stall).await?;
    let outcome = Outcome {
        samples: payloads.samples,
        requests: payloads.requests(),
        expected_readings,
        yunzhi,
        prometheus,
    };
    println!("ingest: load average {} at the end", load_average());
    println!(
        "ingest: {:.3} M samples per CPU-second on Yunzhi, {:.3} M on Prometheus: Yunzhi {:.2}× Prometheus",
        outcome.per_cpu_second(&outcome.yunzhi) / 1e6,
        outcome.per_cpu_second(&outcome.prometheus) / 1e6,
        outcome.per_cpu_second(&outcome.yunzhi) / outcome.per_cpu_second(&outcome.prometheus),
    );
    Ok(outcome)
}

#[expect(clippy::too_many_arguments, reason = "one server's whole run")]
async fn measure_yunzhi(
    client: &reqwest::Client,
    bin: &Path,
    data: &Path,
    args: &Args,
    token: &str,
    payloads: &Arc<Payloads>,
    expected: u64,
    stall: Duration,
) -> anyhow::Result<Measured> {
    let mut server =
        yunzhi::Server::start(bin, data, Duration::from_secs(args.remote_write_idle_seconds)).await?;
    let pid = server.pid();
    let url = server.url();
    println!(
        "yunzhi: serving on {url} (pid {pid}); a moment settles {} s after it arrives",
        args.remote_write_idle_seconds
    );
    quiet(pid, "yunzhi").await?;

    let threads_before = process::threads(pid)?;
    let cpu_before = process::cpu_seconds(pid)?;
    let start = Instant::now();
    let sent = send::post_all(client, &format!("{url}/api/v1/write"), Some(token), payloads)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}; the server's log ends:\n{}", server.log_tail()))?;
    let cpu_acknowledged = process::cpu_seconds(pid)? - cpu_before;
    let threads_acknowledged = process::threads(pid)?;
    println!("yunzhi: {}, {cpu_acknowledged:.2} CPU-s so far", sent.summary());
    let stored = wait_for_count(
        client,
        &url,
        ("yunzhi_ingested_samples_total", "source=\"remote_write\""),
        expected,
        stall,
        "yunzhi: readings stored",
        || server.check_running(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}; the server's log ends:\n{}", server.log_tail()))?;
    let wall = start.elapsed();
    let cpu = process::cpu_seconds(pid)? - cpu_before;
    let memory = process::memory(pid)?;
    let threads_after = process::threads(pid)?;
    println!(
        "yunzhi: all {stored} readings stored {:.1} s after the first request; {cpu:.2} CPU-s \
         ({:.2} after the last answer); resident {:.0} MiB, peak {:.0} MiB",
        wall.as_secs_f64(),
        cpu - cpu_acknowledged,
        memory.resident as f64 / 1048576.0,
        memory.peak as f64 / 1048576.0,
    );
    println!(
        "yunzhi: CPU by thread until the last answer: {}",
        by_thread(&threads_before, &threads_acknowledged, cpu_acknowledged)
    );
    println!(
        "yunzhi: CPU by thread after the last answer: {}",
        by_thread(&threads_acknowledged, &threads_after, cpu - cpu_acknowledged)
    );
    if let Ok(text) = client.get(format!("{url}/metrics")).send().await.and_then(|r| r.error_for_status()) {
        let text = text.text().await.unwrap_or_default();
        let m = |name: &str, having: &str| send::metric_sum(&text, name, having);
        let route = "route=\"/api/v1/write\"";
        println!(
            "yunzhi: write handler {:.0} requests, {:.1} ms each on average; ingest writer {:.0} groups, {:.1} s in all",
            m("yunzhi_http_request_duration_seconds_count", route),
            1e3 * m("yunzhi_http_request_duration_seconds_sum", route)
                / m("yunzhi_http_request_duration_seconds_count", route).max(1.0),
            m("yunzhi_ingest_batch_duration_seconds_count", ""),
            m("yunzhi_ingest_batch_duration_seconds_sum", ""),
        );
    }
    Ok(Measured { cpu_seconds: cpu, wall, acknowledged: sent.elapsed, retries: sent.retries, memory, stored })
}

async fn measure_prometheus(
    client: &reqwest::Client,
    data: &Path,
    payloads: &Arc<Payloads>,
    stall: Duration,
) -> anyhow::Result<Measured> {
    let prom = Prometheus::start(data, &["--web.enable-remote-write-receiver"]).await?;
    let pid = prom.pid();
    let url = prom.url();
    println!("prometheus: serving on {url} (pid {pid}), remote-write receiver on");
    quiet(pid, "prometheus").await?;

    let cpu_before = process::cpu_seconds(pid)?;
    let start = Instant::now();
    let sent = send::post_all(client, &format!("{url}/api/v1/write"), None, payloads).await?;
    let cpu_acknowledged = process::cpu_seconds(pid)? - cpu_before;
    println!("prometheus: {}, {cpu_acknowledged:.2} CPU-s", sent.summary());
    let stored = wait_for_count(
        client,
        &url,
        ("prometheus_tsdb_head_samples_appended_total", ""),
        payloads.samples,
        stall,
        "prometheus: samples appended",
        || Ok(()),
    )
    .await?;
    let wall = start.elapsed();
    let cpu = process::cpu_seconds(pid)? - cpu_before;
    let memory = process::memory(pid)?;
    println!(
        "prometheus: all {stored} samples appended {:.1} s after the first request; {cpu:.2} CPU-s; \
         resident {:.0} MiB, peak {:.0} MiB",
        wall.as_secs_f64(),
        memory.resident as f64 / 1048576.0,
        memory.peak as f64 / 1048576.0,
    );
    Ok(Measured { cpu_seconds: cpu, wall, acknowledged: sent.elapsed, retries: sent.retries, memory, stored })
}

/// The machine's load averages over 1, 5 and 15 minutes: on a shared
/// machine, what else ran beside the measurement.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Waits until a freshly started server has settled (its start-up work
/// done: under two clock ticks of CPU in half a second), so that its
/// start is not counted as ingest. Gives up waiting after a minute.
async fn quiet(pid: u32, who: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let before = process::cpu_seconds(pid)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let used = process::cpu_seconds(pid)? - before;
        if used <= 0.02 {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            println!("{who}: still busy after a minute ({used:.2} CPU-s per half second); measuring anyway");
            return Ok(());
        }
    }
}

/// Polls `base/metrics` until `metric` (name, labels it must contain)
/// reaches `expected`; fails when it stops growing for `stall`, or when
/// `alive` says the server is gone.
async fn wait_for_count(
    client: &reqwest::Client,
    base: &str,
    metric: (&str, &str),
    expected: u64,
    stall: Duration,
    what: &str,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut best = -1.0;
    let mut moved = Instant::now();
    let mut told = Instant::now();
    loop {
        alive()?;
        let n = send::read_metric(client, base, metric.0, metric.1).await?;
        if n >= expected as f64 {
            return Ok(n as u64);
        }
        if n > best {
            best = n;
            moved = Instant::now();
        }
        if moved.elapsed() > stall {
            bail!("{what}: {n} of {expected}, and no more for {} s", stall.as_secs());
        }
        if told.elapsed() >= Duration::from_secs(10) {
            println!("{what}: {n} of {expected}");
            told = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the CPU time went, thread by thread, busiest first (names as
/// the kernel keeps them, 15 bytes: tokio's workers, SQLite's connection
/// threads, …).
fn by_thread(before: &[ThreadCpu], after: &[ThreadCpu], total: f64) -> String {
    let mut used: Vec<(&ThreadCpu, f64)> = after
        .iter()
        .map(|t| (t, t.cpu_seconds - before.iter().find(|b| b.tid == t.tid).map_or(0.0, |b| b.cpu_seconds)))
        .filter(|(_, s)| *s > 0.0)
        .collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    let counted: f64 = used.iter().map(|(_, s)| s).sum();
    const SHOWN: usize = 8;
    let mut parts: Vec<String> =
        used.iter().take(SHOWN).map(|(t, s)| format!("{} [{}] {s:.2} s", t.name, t.tid)).collect();
    if used.len() > SHOWN {
        let rest: f64 = used[SHOWN..].iter().map(|(_, s)| s).sum();
        parts.push(format!("{} others {rest:.2} s", used.len() - SHOWN));
    }
    if total - counted > 0.05 {
        parts.push(format!("threads that ended {:.2} s", total - counted));
    }
    parts.join(", ")
}
