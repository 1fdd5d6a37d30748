//! A real Prometheus (Debian's `prometheus` package) on a random port,
//! backfilled with node_exporter-style series whose true daily figures the
//! tests compute independently, from the same numbers the file was written
//! from.

use std::fmt::Write as _;

use jiff::civil::{Date, date};

/// The sampling interval of the generated series, like a 5-minute scrape.
pub const STEP: i64 = 300;
/// Our rate window: two steps, so each rate holds three samples in
/// Prometheus 2.x's closed windows and two in 3.x's half-open ones.
pub const RATE_WINDOW: i64 = 600;
/// The first sample: 2026-03-01T15:00:00Z, an hour before the first Beijing
/// day starts, so the first day's rates and increases have earlier samples.
pub const T0: i64 = 1_772_377_200;
/// The last sample: 2026-03-04T16:00:00Z, the end of Beijing's 4 March.
pub const T_END: i64 = 1_772_640_000;
/// The Beijing days the data covers completely.
pub const DAYS: [Date; 3] = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)];
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One generated host; index `i` is the sample at `T0 + i * STEP`, and the
/// per-interval figures describe the step that ends there.
pub struct Host {
    pub instance: &'static str,
    pub resource_id: Option<&'static str>,
    /// Busy fraction of each of the two CPUs per interval.
    pub busy: Vec<[f64; 2]>,
    pub mem_total: f64,
    pub mem_available: Vec<f64>,
    /// Bytes per interval on eth0 (received, sent); `lo` carries a lot more
    /// and must not count.
    pub net: Vec<(f64, f64)>,
    /// Bytes per interval (read, written) on vda and vdb together.
    pub disk: Vec<(f64, f64)>,
    /// Logged-in user sessions, where the logind collector runs.
    pub sessions: Option<Vec<f64>>,
    /// TCP connections accepted per interval, where the netstat collector
    /// exports `Tcp_PassiveOpens`.
    pub accepted: Option<Vec<f64>>,
}

pub fn n_points() -> usize {
    ((T_END - T0) / STEP + 1) as usize
}

pub fn ts(i: usize) -> i64 {
    T0 + i as i64 * STEP
}

fn beijing_hour(t: i64) -> i64 {
    (t + 8 * 3600).rem_euclid(86_400) / 3600
}

/// The Beijing day an interval ending at `t` belongs to, as an index into [`DAYS`].
fn beijing_day_index(t: i64) -> usize {
    ((t - 1 - (T0 + 3600)).div_euclid(86_400)).clamp(0, 2) as usize
}

/// A small deterministic wobble, so that max and p95 are not all alike.
fn wobble(i: usize) -> f64 {
    ((i * 37) % 11) as f64 / 100.0
}

/// A busy host whose level changes at Beijing midnight (20 %, 80 %, 50 %)
/// with office hours on top; an idle host; a zombie.
pub fn hosts() -> Vec<Host> {
    let n = n_points();
    let busy = Host {
        instance: "10.0.0.1:9100",
        resource_id: Some("vm-busy"),
        busy: (0..n)
            .map(|i| {
                let t = ts(i);
                let level = [0.20, 0.80, 0.50][beijing_day_index(t)];
                let office = if (9..18).contains(&beijing_hour(t)) { 0.15 } else { 0.0 };
                let b = f64::min(level + office + wobble(i), 0.98);
                [b, b / 2.0]
            })
            .collect(),
        mem_total: 8.0 * GIB,
        mem_available: (0..n).map(|i| 8.0 * GIB * (0.4 - 0.025 * (i % 5) as f64)).collect(),
        net: (0..n).map(|i| (300.0 * 20_000.0 * (1.0 + wobble(i)), 300.0 * 5_000.0)).collect(),
        disk: (0..n).map(|i| (300.0 * 50_000.0, 300.0 * 80_000.0 * (1.0 + wobble(i)))).collect(),
        sessions: Some(
            (0..n).map(|i| if (9..18).contains(&beijing_hour(ts(i))) { 3.0 } else { 1.0 }).collect(),
        ),
        accepted: Some(
            (0..n).map(|i| if (9..18).contains(&beijing_hour(ts(i))) { 40.0 } else { 4.0 }).collect(),
        ),
    };
    let idle = Host {
        instance: "10.0.0.2:9100",
        resource_id: None,
        busy: (0..n).map(|i| [0.03 + wobble(i) / 10.0, 0.02]).collect(),
        mem_total: 4.0 * GIB,
        mem_available: vec![4.0 * GIB * 0.8; n],
        net: vec![(300.0 * 5.0, 300.0 * 3.0); n],
        disk: vec![(0.0, 300.0 * 20.0); n],
        sessions: None,
        accepted: None,
    };
    let zombie = Host {
        instance: "10.0.0.3:9100",
        resource_id: Some("vm-zombie"),
        busy: vec![[0.005, 0.005]; n],
        mem_total: 2.0 * GIB,
        mem_available: vec![2.0 * GIB * 0.9; n],
        net: vec![(300.0, 300.0); n],
        disk: vec![(0.0, 600.0); n],
        sessions: None,
        accepted: Some(vec![0.0; n]),
    };
    vec![busy, idle, zombie]
}

fn labels(host: &Host, extra: &[(&str, &str)]) -> String {
    let mut all: Vec<(&str, &str)> = extra.to_vec();
    all.push(("instance", host.instance));
    all.push(("job", "node"));
    if let Some(id) = host.resource_id {
        all.push(("yunzhi_resource_id", id));
    }
    let inner: Vec<String> = all.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// One series, samples in time order: backfill appends per series and
/// refuses out-of-order samples.
fn series(out: &mut String, name: &str, labels: &str, values: impl Iterator<Item = f64>) {
    for (i, v) in values.enumerate() {
        let _ = writeln!(out, "{name}{labels} {v} {}", ts(i));
    }
}

/// A running counter from per-interval increments (the first sample is the base).
fn counter(base: f64, increments: impl Iterator<Item = f64>) -> impl Iterator<Item = f64> {
    increments.enumerate().scan(base, |acc, (i, inc)| {
        if i > 0 {
            *acc += inc;
        }
        Some(*acc)
    })
}

/// The OpenMetrics text promtool backfills: families contiguous, a `# TYPE`
/// before each (counters named without `_total`, samples with it),
/// timestamps in seconds, `# EOF` at the end.
pub fn openmetrics(hosts: &[Host]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE node_cpu_seconds counter");
    for h in hosts {
        for cpu in 0..2 {
            let c = cpu.to_string();
            // idle 90 % and iowait 10 % of the not-busy time; user and system share the rest.
            for (mode, share_of_idle, share_of_busy) in
                [("idle", 0.9, 0.0), ("iowait", 0.1, 0.0), ("user", 0.0, 0.7), ("system", 0.0, 0.3)]
            {
                let incs = h
                    .busy
                    .iter()
                    .map(|b| STEP as f64 * ((1.0 - b[cpu]) * share_of_idle + b[cpu] * share_of_busy));
                series(
                    &mut out,
                    "node_cpu_seconds_total",
                    &labels(h, &[("cpu", &c), ("mode", mode)]),
                    counter(1000.0, incs),
                );
            }
        }
    }
    let _ = writeln!(out, "# TYPE node_memory_MemTotal_bytes gauge");
    for h in hosts {
        series(
            &mut out,
            "node_memory_MemTotal_bytes",
            &labels(h, &[]),
            h.mem_available.iter().map(|_| h.mem_total),
        );
    }
    let _ = writeln!(out, "# TYPE node_memory_MemAvailable_bytes gauge");
    for h in hosts {
        series(&mut out, "node_memory_MemAvailable_bytes", &labels(h, &[]), h.mem_available.iter().copied());
    }
    for (family, pick) in [("receive", 0), ("transmit", 1)] {
        let _ = writeln!(out, "# TYPE node_network_{family}_bytes counter");
        for h in hosts {
            let name = format!("node_network_{family}_bytes_total");
            let eth = h.net.iter().map(|n| if pick == 0 { n.0 } else { n.1 });
            series(&mut out, &name, &labels(h, &[("device", "eth0")]), counter(5e6, eth));
            let lo = h.net.iter().map(|_| 1e8);
            series(&mut out, &name, &labels(h, &[("device", "lo")]), counter(1e9, lo));
        }
    }
    for (family, pick) in [("read", 0), ("written", 1)] {
        let _ = writeln!(out, "# TYPE node_disk_{family}_bytes counter");
        for h in hosts {
            let name = format!("node_disk_{family}_bytes_total");
            // vda carries 90 % and vdb 10 %, so the sum over devices is the figure.
            for (device, share) in [("vda", 0.9), ("vdb", 0.1)] {
                let incs = h.disk.iter().map(|d| share * if pick == 0 { d.0 } else { d.1 });
                series(&mut out, &name, &labels(h, &[("device", device)]), counter(7e7, incs));
            }
        }
    }
    let _ = writeln!(out, "# TYPE node_netstat_Tcp_PassiveOpens gauge");
    for h in hosts {
        if let Some(accepted) = &h.accepted {
            // node_exporter exports the kernel's /proc/net/snmp counters
            // untyped and without `_total`, so not as an OpenMetrics counter.
            series(
                &mut out,
                "node_netstat_Tcp_PassiveOpens",
                &labels(h, &[]),
                counter(812.0, accepted.iter().copied()),
            );
        }
    }
    let _ = writeln!(out, "# TYPE node_logind_sessions gauge");
    for h in hosts {
        if let Some(sessions) = &h.sessions {
            let l = labels(h, &[("class", "user"), ("remote", "true"), ("seat", ""), ("type", "tty")]);
            series(&mut out, "node_logind_sessions", &l, sessions.iter().copied());
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The figures a day should have, computed from the generated numbers the
/// way the PromQL defines them: the CPU point at `t` is the busy share over
/// the rate window ending at `t`, a day's points are those in
/// (day start, day end], one per step.
#[derive(Debug)]
pub struct Expected {
    pub samples: u32,
    pub cpu_avg: f64,
    pub cpu_max: f64,
    pub cpu_p95: f64,
    pub memory_avg: f64,
    pub net_bytes: f64,
    pub disk_bytes: f64,
    pub sessions_max: u32,
    pub accepted: Option<f64>,
}

pub fn cpu_points(h: &Host, from_excl: i64, to_incl: i64) -> Vec<f64> {
    let per_window = (RATE_WINDOW / STEP) as usize;
    (0..n_points())
        .filter(|&i| ts(i) > from_excl && ts(i) <= to_incl)
        .map(|i| {
            let window = &h.busy[i + 1 - per_window..=i];
            let per_cpu = |c: usize| window.iter().map(|b| b[c]).sum::<f64>() / window.len() as f64;
            100.0 * (per_cpu(0) + per_cpu(1)) / 2.0
        })
        .collect()
}

/// Prometheus' `quantile_over_time`: linear interpolation at rank φ·(n−1).
pub fn prom_quantile(q: f64, values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = q * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
}

pub fn expected(h: &Host, day_end: i64) -> Expected {
    let start = day_end - 86_400;
    let idx: Vec<usize> = (0..n_points()).filter(|&i| ts(i) > start && ts(i) <= day_end).collect();
    let cpu = cpu_points(h, start, day_end);
    Expected {
        samples: cpu.len() as u32,
        cpu_avg: cpu.iter().sum::<f64>() / cpu.len() as f64,
        cpu_max: cpu.iter().copied().fold(f64::MIN, f64::max),
        cpu_p95: prom_quantile(0.95, &cpu),
        memory_avg: idx.iter().map(|&i| 100.0 * (1.0 - h.mem_available[i] / h.mem_total)).sum::<f64>()
            / idx.len() as f64,
        net_bytes: idx.iter().map(|&i| h.net[i].0 + h.net[i].1).sum(),
        disk_bytes: idx.iter().map(|&i| h.disk[i].0 + h.disk[i].1).sum(),
        sessions_max: h.sessions.as_ref().map_or(0, |s| idx.iter().map(|&i| s[i]).fold(0.0, f64::max) as u32),
        accepted: h.accepted.as_ref().map(|a| idx.iter().map(|&i| a[i]).sum()),
    }
}

pub use yunzhi_promsource::testing::start;
