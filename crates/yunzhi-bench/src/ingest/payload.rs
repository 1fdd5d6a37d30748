//! The payloads: a fleet of hosts running node_exporter, scraped once a
//! minute, turned into remote-write requests the way Prometheus 2.42's
//! queue manager sends them. Everything is built before anything is
//! measured, so the senders only post bytes.
//!
//! How Prometheus 2.42's remote-write queue sends (its defaults are
//! documented under `remote_write.queue_config`):
//!
//! - it tails its write-ahead log, so samples come in the order they were
//!   appended: scrape by scrape, each target's series in exposition order;
//! - a sample goes to shard `series ref % shards`, where the ref is the
//!   head series' number, handed out in the order series first appeared:
//!   one series always goes through one shard, so it stays in order;
//! - each shard sends a request once it holds `max_samples_per_send`
//!   samples (500 by default in 2.42; 2,000 from 2.44) or its batch
//!   deadline (5 s) passes, one request in flight per shard;
//! - every sample becomes its own `TimeSeries` (its labels, one sample),
//!   labels sorted by name, external labels added (none here);
//! - the request is protobuf in snappy's block format.
//!
//! The series are node_exporter's after the usual relabelling: `instance`
//! (`host-00001:9100`), `job="node"` and the host's `yunzhi_resource_id`.

use prost::Message;
use yunzhi_server::remote_write::{Label, Sample, TimeSeries, WriteRequest};

/// Prometheus's scrape interval for the fleet.
pub const SCRAPE_INTERVAL_MS: i64 = 60_000;

/// `queue_config.max_samples_per_send` in Prometheus 2.42.
pub const MAX_SAMPLES_PER_SEND: usize = 500;

/// CPUs per host, and node_exporter's CPU modes on Linux.
const CPUS: usize = 2;
const MODES: [&str; 8] = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"];
/// Network devices per host: the one Yunzhi counts, and loopback, which it leaves out.
const NET_DEVICES: [&str; 2] = ["eth0", "lo"];

/// Which fleet, and how it is sent.
#[derive(Debug, Clone)]
pub struct Shape {
    pub hosts: usize,
    pub scrapes: usize,
    /// Prometheus's shards: one sender each.
    pub shards: usize,
    pub max_samples_per_send: usize,
    /// The last scrape round ends before this moment (ms since the epoch).
    pub now_ms: i64,
    /// Seeds the noise, so a run can be repeated exactly.
    pub seed: u64,
}

/// A host as Yunzhi knows it.
#[derive(Debug, Clone)]
pub struct Host {
    pub resource_id: i64,
    /// The host name in `instance` (`host-00001`).
    pub name: String,
}

/// One request, ready to post.
#[derive(Debug, Clone)]
pub struct Request {
    /// Snappy-compressed protobuf.
    pub body: Vec<u8>,
    pub samples: usize,
    /// Its protobuf size before compression.
    pub raw_bytes: usize,
}

/// Every request of the run, by shard, each shard's in sending order.
#[derive(Debug, Clone)]
pub struct Payloads {
    pub shards: Vec<Vec<Request>>,
    pub samples: u64,
    pub series_per_host: usize,
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    /// The first and last sample times (ms).
    pub first_ms: i64,
    pub last_ms: i64,
}

impl Payloads {
    pub fn requests(&self) -> usize {
        self.shards.iter().map(Vec::len).sum()
    }
}

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    BootTime,
    ContextSwitches,
    Cpu { cpu: usize, mode: usize },
    DiskRead,
    DiskWritten,
    FsAvail,
    FsSize,
    Load1,
    Load5,
    Load15,
    MemAvailable,
    MemCached,
    MemFree,
    MemTotal,
    NetRx(usize),
    NetTx(usize),
    ProcsRunning,
    Up,
    ScrapeDuration,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::BootTime => "node_boot_time_seconds",
            Metric::ContextSwitches => "node_context_switches_total",
            Metric::Cpu { .. } => "node_cpu_seconds_total",
            Metric::DiskRead => "node_disk_read_bytes_total",
            Metric::DiskWritten => "node_disk_written_bytes_total",
            Metric::FsAvail => "node_filesystem_avail_bytes",
            Metric::FsSize => "node_filesystem_size_bytes",
            Metric::Load1 => "node_load1",
            Metric::Load5 => "node_load5",
            Metric::Load15 => "node_load15",
            Metric::MemAvailable => "node_memory_MemAvailable_bytes",
            Metric::MemCached => "node_memory_Cached_bytes",
            Metric::MemFree => "node_memory_MemFree_bytes",
            Metric::MemTotal => "node_memory_MemTotal_bytes",
            Metric::NetRx(_) => "node_network_receive_bytes_total",
            Metric::NetTx(_) => "node_network_transmit_bytes_total",
            Metric::ProcsRunning => "node_procs_running",
            Metric::Up => "up",
            Metric::ScrapeDuration => "scrape_duration_seconds",
        }
    }

    /// The series' own labels, beyond the target's.
    fn labels(self) -> Vec<(&'static str, String)> {
        match self {
            Metric::Cpu { cpu, mode } => vec![("cpu", cpu.to_string()), ("mode", MODES[mode].to_owned())],
            Metric::DiskRead | Metric::DiskWritten => vec![("device", "vda".to_owned())],
            Metric::FsAvail | Metric::FsSize => vec![
                ("device", "/dev/vda1".to_owned()),
                ("fstype", "ext4".to_owned()),
                ("mountpoint", "/".to_owned()),
            ],
            Metric::NetRx(d) | Metric::NetTx(d) => vec![("device", NET_DEVICES[d].to_owned())],
            _ => Vec::new(),
        }
    }
}

/// A host's series in the order Prometheus appends them: node_exporter's
/// exposition (metric families by name), then the scrape's own `up` and
/// `scrape_duration_seconds`. Yunzhi reads CPU, memory, network and disk;
/// the rest is what a real scrape carries besides.
fn metrics() -> Vec<Metric> {
    let mut m = vec![Metric::BootTime, Metric::ContextSwitches];
    for cpu in 0..CPUS {
        for mode in 0..MODES.len() {
            m.push(Metric::Cpu { cpu, mode });
        }
    }
    m.extend([
        Metric::DiskRead,
        Metric::DiskWritten,
        Metric::FsAvail,
        Metric::FsSize,
        Metric::Load1,
        Metric::Load15,
        Metric::Load5,
        Metric::MemAvailable,
        Metric::MemCached,
        Metric::MemFree,
        Metric::MemTotal,
    ]);
    m.extend((0..NET_DEVICES.len()).map(Metric::NetRx));
    m.extend((0..NET_DEVICES.len()).map(Metric::NetTx));
    m.extend([Metric::ProcsRunning, Metric::Up, Metric::ScrapeDuration]);
    m
}

/// Series each host sends per scrape.
pub fn series_per_host() -> usize {
    metrics().len()
}

/// A small, seedable generator (SplitMix64): the noise must repeat from
/// run to run, and needs no more than this.
#[derive(Debug, Clone)]
struct Noise(u64);

impl Noise {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One host's machine, moved on a minute at a time. Counters are kept in
/// the units node_exporter reads them in (CPU in hundredths of a second,
/// bytes), so they only ever grow by whole steps.
#[derive(Debug, Clone)]
struct Machine {
    noise: Noise,
    /// The host's typical CPU use (share of its CPUs) and memory use.
    cpu_level: f64,
    memory_level: f64,
    boot_time: f64,
    cpu_ticks: [[u64; MODES.len()]; CPUS],
    context_switches: u64,
    disk_read: u64,
    disk_written: u64,
    fs_size: u64,
    fs_avail: u64,
    load: [f64; 3],
    mem_total: u64,
    mem_available: u64,
    net_rx: [u64; NET_DEVICES.len()],
    net_tx: [u64; NET_DEVICES.len()],
    /// Typical traffic, bytes per second: eth0 received, sent; disk read, written.
    net_rate: (f64, f64),
    disk_rate: (f64, f64),
    procs_running: f64,
    scrape_duration: f64,
    /// The CPU use of the last minute.
    busy: f64,
}

impl Machine {
    fn new(seed: u64, first_scrape_ms: i64) -> Machine {
        let mut noise = Noise(seed);
        let uptime_s = noise.between(3_600.0, 200.0 * 86_400.0);
        let cpu_level = noise.between(0.02, 0.65);
        let mut cpu_ticks = [[0u64; MODES.len()]; CPUS];
        for cpu in &mut cpu_ticks {
            // The time since boot, spread over the modes as the host's use has been.
            for (mode, ticks) in cpu.iter_mut().enumerate() {
                *ticks = (uptime_s * 100.0 * mode_share(mode, cpu_level)).floor() as u64;
            }
        }
        let mem_total = [4.0, 8.0, 16.0, 32.0][(noise.next_u64() % 4) as usize] * GIB - 187_000_000.0;
        let mem_total = round_to(mem_total, 4096.0) as u64;
        let fs_size = round_to(noise.between(40.0, 200.0) * GIB, 4096.0) as u64;
        let net_rate = (noise.between(2e3, 2e6), noise.between(1e3, 1e6));
        let disk_rate = (noise.between(1e3, 5e5), noise.between(5e3, 2e6));
        let mut m = Machine {
            cpu_level,
            memory_level: noise.between(0.15, 0.85),
            boot_time: (first_scrape_ms as f64 / 1000.0 - uptime_s).floor(),
            cpu_ticks,
            context_switches: (uptime_s * noise.between(500.0, 20_000.0)) as u64,
            disk_read: round_to(uptime_s * disk_rate.0, 512.0) as u64,
            disk_written: round_to(uptime_s * disk_rate.1, 512.0) as u64,
            fs_size,
            fs_avail: round_to(fs_size as f64 * noise.between(0.2, 0.9), 4096.0) as u64,
            load: [cpu_level * CPUS as f64; 3],
            mem_total,
            mem_available: 0,
            net_rx: [(uptime_s * net_rate.0) as u64, (uptime_s * 3e3) as u64],
            net_tx: [(uptime_s * net_rate.1) as u64, (uptime_s * 3e3) as u64],
            net_rate,
            disk_rate,
            procs_running: 1.0,
            scrape_duration: 0.02,
            busy: cpu_level,
            noise,
        };
        m.set_gauges();
        m
    }

    /// Sets the gauges for the minute just passed.
    fn set_gauges(&mut self) {
        let n = &mut self.noise;
        let memory = (self.memory_level * n.between(0.9, 1.1)).clamp(0.05, 0.97);
        self.mem_available = round_to(self.mem_total as f64 * (1.0 - memory), 4096.0) as u64;
        let running = self.busy * CPUS as f64;
        // Load averages over one, five and fifteen minutes.
        for (i, minutes) in [1.0, 5.0, 15.0].into_iter().enumerate() {
            let decay = (-1.0f64 / minutes).exp();
            self.load[i] =
                round_to(self.load[i] * decay + running * n.between(0.8, 1.3) * (1.0 - decay), 0.01);
        }
        self.procs_running = (1.0 + running * n.between(0.5, 2.0)).floor();
        self.scrape_duration = round_to(n.between(0.008, 0.06), 1e-6);
    }

    /// A minute passes.
    fn advance(&mut self) {
        let n = &mut self.noise;
        self.busy = (self.cpu_level * n.between(0.6, 1.4)).clamp(0.005, 0.99);
        for cpu in &mut self.cpu_ticks {
            // 6,000 hundredths of a second per CPU per minute, shared out over the modes.
            let busy = (self.busy * n.between(0.8, 1.2)).clamp(0.0, 0.99);
            let mut left = 6_000u64;
            // Every mode but idle (the first), which takes what is left.
            for (mode, counter) in cpu.iter_mut().enumerate().skip(1) {
                let ticks = ((6_000.0 * mode_share(mode, busy) * n.between(0.7, 1.3)) as u64).min(left);
                *counter += ticks;
                left -= ticks;
            }
            cpu[0] += left;
        }
        let step = |rate: f64, n: &mut Noise| rate * 60.0 * n.between(0.3, 1.7);
        self.context_switches += step(self.cpu_level * 40_000.0 + 2_000.0, n) as u64;
        let read = round_to(step(self.disk_rate.0, n), 512.0) as u64;
        let written = round_to(step(self.disk_rate.1, n), 512.0) as u64;
        self.disk_read += read;
        self.disk_written += written;
        self.fs_avail = self.fs_avail.saturating_sub(written / 50 / 4096 * 4096);
        self.net_rx[0] += step(self.net_rate.0, n) as u64;
        self.net_tx[0] += step(self.net_rate.1, n) as u64;
        let lo = step(3e3, n) as u64;
        self.net_rx[1] += lo;
        self.net_tx[1] += lo;
        self.set_gauges();
    }

    fn value(&self, m: Metric) -> f64 {
        match m {
            Metric::BootTime => self.boot_time,
            Metric::ContextSwitches => self.context_switches as f64,
            Metric::Cpu { cpu, mode } => self.cpu_ticks[cpu][mode] as f64 / 100.0,
            Metric::DiskRead => self.disk_read as f64,
            Metric::DiskWritten => self.disk_written as f64,
            Metric::FsAvail => self.fs_avail as f64,
            Metric::FsSize => self.fs_size as f64,
            Metric::Load1 => self.load[0],
            Metric::Load5 => self.load[1],
            Metric::Load15 => self.load[2],
            Metric::MemAvailable => self.mem_available as f64,
            Metric::MemCached => round_to(self.mem_available as f64 * 0.55, 4096.0),
            Metric::MemFree => round_to(self.mem_available as f64 * 0.3, 4096.0),
            Metric::MemTotal => self.mem_total as f64,
            Metric::NetRx(d) => self.net_rx[d] as f64,
            Metric::NetTx(d) => self.net_tx[d] as f64,
            Metric::ProcsRunning => self.procs_running,
            Metric::Up => 1.0,
            Metric::ScrapeDuration => self.scrape_duration,
        }
    }
}

/// The share of a CPU's time in `mode` when it is `busy` (0–1) busy:
/// mostly user and system time, a little interrupt and steal time, a
/// little waiting for the disk.
fn mode_share(mode: usize, busy: f64) -> f64 {
    match MODES[mode] {
        "user" => busy * 0.62,
        "system" => busy * 0.25,
        "softirq" => busy * 0.05,
        "irq" => busy * 0.02,
        "nice" => busy * 0.01,
        "steal" => busy * 0.05,
        "iowait" => 0.01 * (1.0 - busy),
        _ => (1.0 - busy) * 0.99,
    }
}

fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// Where in the minute a host is scraped: Prometheus spreads its targets
/// over the interval by a hash of each target.
fn scrape_offset_ms(seed: u64, host: usize) -> i64 {
    (Noise(seed ^ (host as u64).wrapping_mul(0xA24B_AED4_963E_E407)).next_u64() % SCRAPE_INTERVAL_MS as u64)
        as i64
}

/// Builds every request of the run for `hosts` (resource ids and names).
pub fn build(shape: &Shape, hosts: &[Host]) -> anyhow::Result<Payloads> {
    anyhow::ensure!(hosts.len() == shape.hosts, "{} hosts given for a fleet of {}", hosts.len(), shape.hosts);
    anyhow::ensure!(shape.scrapes >= 2, "at least two scrapes: the first only sets the counters' base");
    anyhow::ensure!(
        shape.shards >= 1 && shape.max_samples_per_send >= 1,
        "at least one shard and one sample per send"
    );
    let metrics = metrics();
    let per_host = metrics.len();
    // The last round starts one interval before the current minute, so
    // every sample is in the past and the newest are about a minute old.
    let start = shape.now_ms
        - shape.now_ms.rem_euclid(SCRAPE_INTERVAL_MS)
        - shape.scrapes as i64 * SCRAPE_INTERVAL_MS;
    // Targets in the order they are scraped within a round.
    let mut order: Vec<(i64, usize)> =
        (0..hosts.len()).map(|h| (scrape_offset_ms(shape.seed, h), h)).collect();
    order.sort();
    // Series labels, sorted by name, and each series' head ref: handed out
    // as series first appear, in the first round's order.
    let mut labels: Vec<Vec<Vec<Label>>> = vec![Vec::new(); hosts.len()];
    let mut refs: Vec<u64> = vec![0; hosts.len()];
    for (rank, &(_, h)) in order.iter().enumerate() {
        refs[h] = (rank * per_host) as u64 + 1;
        let host = &hosts[h];
        labels[h] = metrics
            .iter()
            .map(|m| {
                let mut l = vec![
                    Label { name: "__name__".into(), value: m.name().into() },
                    Label { name: "instance".into(), value: format!("{}:9100", host.name) },
                    Label { name: "job".into(), value: "node".into() },
                    Label { name: "yunzhi_resource_id".into(), value: host.resource_id.to_string() },
                ];
                l.extend(m.labels().into_iter().map(|(n, v)| Label { name: n.into(), value: v }));
                l.sort_by(|a, b| a.name.cmp(&b.name));
                l
            })
            .collect();
    }
    let mut machines: Vec<Machine> = (0..hosts.len())
        .map(|h| {
            Machine::new(shape.seed.wrapping_add(h as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D), start)
        })
        .collect();
    let mut out = Payloads {
        shards: vec![Vec::new(); shape.shards],
        samples: 0,
        series_per_host: per_host,
        raw_bytes: 0,
        compressed_bytes: 0,
        first_ms: i64::MAX,
        last_ms: i64::MIN,
    };
    let mut pending: Vec<Vec<TimeSeries>> = vec![Vec::new(); shape.shards];
    for round in 0..shape.scrapes {
        for &(offset, h) in &order {
            let at = start + round as i64 * SCRAPE_INTERVAL_MS + offset;
            if round > 0 {
                machines[h].advance();
            }
            out.first_ms = out.first_ms.min(at);
            out.last_ms = out.last_ms.max(at);
            for (s, m) in metrics.iter().enumerate() {
                let shard = ((refs[h] + s as u64) % shape.shards as u64) as usize;
                pending[shard].push(TimeSeries {
                    labels: labels[h][s].clone(),
                    samples: vec![Sample { value: machines[h].value(*m), timestamp: at }],
                });
                if pending[shard].len() == shape.max_samples_per_send {
                    let batch = std::mem::take(&mut pending[shard]);
                    push(&mut out, shard, batch)?;
                }
            }
        }
    }
    // What the batch deadline sends at the end.
    for (shard, batch) in pending.into_iter().enumerate() {
        if !batch.is_empty() {
            push(&mut out, shard, batch)?;
        }
    }
    Ok(out)
}

fn push(out: &mut Payloads, shard: usize, timeseries: Vec<TimeSeries>) -> anyhow::Result<()> {
    let samples = timeseries.len();
    let raw = WriteRequest { timeseries }.encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&raw)?;
    out.samples += samples as u64;
    out.raw_bytes += raw.len() as u64;
    out.compressed_bytes += body.len() as u64;
    out.shards[shard].push(Request { body, samples, raw_bytes: raw.len() });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use yunzhi_server::remote_write::{Assembler, Hosts, decode, decompress, host_of};

    use super::*;

    fn fleet(hosts: usize) -> Vec<Host> {
        (0..hosts).map(|i| Host { resource_id: 100 + i as i64, name: format!("host-{:05}", i + 1) }).collect()
    }

    const NOW: i64 = 1_790_000_123_456;

    fn small() -> (Shape, Payloads) {
        let shape = Shape { hosts: 7, scrapes: 5, shards: 3, max_samples_per_send: 40, now_ms: NOW, seed: 9 };
        let payloads = build(&shape, &fleet(7)).expect("payloads");
        (shape, payloads)
    }

    #[test]
    fn the_requests_hold_every_sample_once_in_order_per_series_and_within_the_batch_size() {
        let (shape, p) = small();
        let expected = (shape.hosts * series_per_host() * shape.scrapes) as u64;
        assert_eq!(p.samples, expected);
        let mut seen = 0u64;
        // Per series (its sorted labels): the shard it went through, its last time and value.
        let mut last: HashMap<String, (usize, i64, f64)> = HashMap::new();
        for (shard, requests) in p.shards.iter().enumerate() {
            for (i, r) in requests.iter().enumerate() {
                let req = decode(&r.body).expect("every request decodes");
                assert_eq!(req.timeseries.len(), r.samples);
                assert!(r.samples <= shape.max_samples_per_send, "{} samples in one request", r.samples);
                if i + 1 < requests.len() {
                    assert_eq!(
                        r.samples, shape.max_samples_per_send,
                        "only a shard's last request is partial"
                    );
                }
                for ts in &req.timeseries {
                    assert_eq!(ts.samples.len(), 1, "one sample per TimeSeries, as Prometheus sends them");
                    let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
                    let mut sorted = names.clone();
                    sorted.sort();
                    assert_eq!(names, sorted, "labels sorted by name");
                    for required in ["__name__", "instance", "job", "yunzhi_resource_id"] {
                        assert!(names.contains(&required), "{required} missing in {names:?}");
                    }
                    let key = format!("{:?}", ts.labels);
                    let name = &ts.labels[0].value;
                    let s = &ts.samples[0];
                    assert!(s.value.is_finite());
                    assert!(
                        s.timestamp <= NOW
                            && s.timestamp > NOW - (shape.scrapes as i64 + 2) * SCRAPE_INTERVAL_MS
                    );
                    if let Some((was_shard, t, v)) = last.get(&key) {
                        assert_eq!(*was_shard, shard, "a series always goes through one shard");
                        assert!(s.timestamp > *t, "{key}: {} after {t}", s.timestamp);
                        if name.ends_with("_total") {
                            assert!(s.value >= *v, "counter {key} went down: {v} to {}", s.value);
                        }
                    }
                    last.insert(key, (shard, s.timestamp, s.value));
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, expected);
        assert_eq!(last.len(), shape.hosts * series_per_host(), "every host sends every series");
    }

    #[test]
    fn yunzhis_assembler_makes_one_plausible_reading_per_host_and_scrape_after_the_first() {
        let (shape, p) = small();
        let mut asm = Assembler::default();
        // The series name their hosts by id (100 to 106 here), as live hosts.
        let hosts = Hosts { by_name: HashMap::new(), ids: (100..107).collect() };
        // Interleave the shards as concurrent senders would.
        let longest = p.shards.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            for shard in &p.shards {
                if let Some(r) = shard.get(i) {
                    let raw = decompress(&r.body).unwrap();
                    let fed = asm.feed(&raw, 0, |s| host_of(s, &hosts)).unwrap();
                    assert_eq!(fed.unplaced, 0, "every series names its host");
                }
            }
        }
        let readings = asm.emit(0);
        assert_eq!(readings.len(), shape.hosts * (shape.scrapes - 1));
        for (resource, r) in &readings {
            assert!((100..107).contains(resource));
            assert!(r.cpu_pct > 0.0 && r.cpu_pct < 100.0, "{r:?}");
            assert!(r.memory_pct > 0.0 && r.memory_pct < 100.0, "{r:?}");
            assert!(r.net_rx_bps > 0.0 && r.disk_write_bps > 0.0, "{r:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let (shape, a) = small();
        let b = build(&shape, &fleet(7)).unwrap();
        let bodies = |p: &Payloads| p.shards.iter().flatten().map(|r| r.body.clone()).collect::<Vec<_>>();
        assert_eq!(bodies(&a), bodies(&b));
    }
}
