//! One question, three sources: every host's daily figures over the window
//! (from Yunzhi's rollups, from its raw store, from PromQL), the usage
//! rules applied to them, and how far the sources' verdicts agree.

use std::collections::HashMap;

use jiff::civil::Date;
use yunzhi_domain::calendar::Calendar;
use yunzhi_domain::efficiency::{self, DailyStats, RestDays, Rules};
use yunzhi_domain::finding::FindingKind;
use yunzhi_domain::system::PeriodicLoad;
use yunzhi_rawstore::ResourceDay;

/// Each host's daily figures, by resource id.
pub type Answer = HashMap<i64, Vec<DailyStats>>;

/// The usage verdicts' kinds of each host, host by host.
pub type Verdicts = Vec<Vec<FindingKind>>;

/// The usage rules over `answer` for hosts `ids` (host `h` is `ids[h]`,
/// its system's declared periodic load `periodic[h]`).
pub fn verdicts(
    rules: &Rules,
    today: Date,
    ids: &[i64],
    periodic: &[Option<PeriodicLoad>],
    answer: &Answer,
) -> Verdicts {
    let rest = rest_days(today);
    let judge = |h: usize| -> Vec<FindingKind> {
        let days = answer.get(&ids[h]).map(Vec::as_slice).unwrap_or_default();
        efficiency::usage_verdicts(rules, today, days, periodic[h].as_ref(), &rest)
            .iter()
            .map(|v| v.kind)
            .collect()
    };
    // Hosts are judged independently: on every core, as the scan is.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, ids.len().max(1));
    let chunk = ids.len().div_ceil(threads).max(1);
    let judge = &judge;
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..ids.len())
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || (start..(start + chunk).min(ids.len())).map(judge).collect::<Vec<_>>())
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().expect("a rules thread does not panic")).collect()
    })
}

/// The rest days of the shipped working-day calendar (what a new site's
/// server holds) for an analysis on `today`.
pub fn rest_days(today: Date) -> RestDays {
    let calendar = Calendar::new(Calendar::shipped().expect("the shipped calendar parses"));
    RestDays::from_calendar(&calendar, today.yesterday().unwrap_or(today))
}

/// How many hosts have each kind of verdict: (low utilisation, zombie).
pub fn tally(v: &Verdicts) -> (usize, usize) {
    let count = |k: FindingKind| v.iter().filter(|kinds| kinds.contains(&k)).count();
    (count(FindingKind::LowUtilization), count(FindingKind::Zombie))
}

/// Hosts (of the first `a.len().min(b.len())`) whose verdicts are the same.
pub fn agreeing(a: &Verdicts, b: &Verdicts) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

/// The raw store's per-host days as the rules read them. The raw store
/// does not summarise sessions, so nobody is seen logged in; the generated
/// fleet logs in only on hosts that work anyway.
pub fn from_raw(days: &[ResourceDay]) -> Answer {
    let mut answer: Answer = HashMap::new();
    for d in days {
        answer.entry(d.resource_id).or_default().push(DailyStats {
            day: d.day.to_date(),
            samples: d.count,
            cpu_avg: f64::from(d.cpu_avg),
            cpu_max: f64::from(d.cpu_max),
            cpu_p95: f64::from(d.cpu_p95),
            memory_avg: f64::from(d.memory_avg),
            net_bytes: d.net_rx_bytes + d.net_tx_bytes,
            disk_bytes: d.disk_read_bytes + d.disk_write_bytes,
            sessions_max: 0,
            accepted: None,
        });
    }
    answer
}

/// The largest differences between two sources' figures for the same
/// host-days: CPU and memory in percentage points, bytes relative.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gaps {
    pub host_days: usize,
    /// Host-days one source has with data and the other without.
    pub unmatched: usize,
    pub samples: u32,
    pub cpu_avg: f64,
    pub cpu_max: f64,
    /// `a`'s p95 minus `b`'s, lowest and highest.
    pub cpu_p95: (f64, f64),
    pub memory_avg: f64,
    pub net_relative: f64,
    pub disk_relative: f64,
}

impl std::fmt::Display for Gaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} host-days ({} unmatched): samples ±{}, CPU avg ±{:.3}, max ±{:.3}, p95 {:+.2}..{:+.2} points, \
             memory ±{:.3}, network ±{:.1e}, disk ±{:.1e} relative",
            self.host_days,
            self.unmatched,
            self.samples,
            self.cpu_avg,
            self.cpu_max,
            self.cpu_p95.0,
            self.cpu_p95.1,
            self.memory_avg,
            self.net_relative,
            self.disk_relative
        )
    }
}

/// How far `b`'s figures are from `a`'s on the host-days `a` has data for.
pub fn gaps(a: &Answer, b: &Answer) -> Gaps {
    let mut g = Gaps { cpu_p95: (f64::INFINITY, f64::NEG_INFINITY), ..Gaps::default() };
    let relative = |x: f64, y: f64| if x == y { 0.0 } else { (x - y).abs() / x.abs().max(y.abs()) };
    for (id, days) in a {
        let theirs: HashMap<Date, &DailyStats> =
            b.get(id).map(|v| v.iter().map(|d| (d.day, d)).collect()).unwrap_or_default();
        for x in days.iter().filter(|d| d.samples > 0) {
            let Some(y) = theirs.get(&x.day).filter(|y| y.samples > 0) else {
                g.unmatched += 1;
                continue;
            };
            g.host_days += 1;
            g.samples = g.samples.max(x.samples.abs_diff(y.samples));
            g.cpu_avg = g.cpu_avg.max((x.cpu_avg - y.cpu_avg).abs());
            g.cpu_max = g.cpu_max.max((x.cpu_max - y.cpu_max).abs());
            g.cpu_p95 = (g.cpu_p95.0.min(x.cpu_p95 - y.cpu_p95), g.cpu_p95.1.max(x.cpu_p95 - y.cpu_p95));
            g.memory_avg = g.memory_avg.max((x.memory_avg - y.memory_avg).abs());
            g.net_relative = g.net_relative.max(relative(x.net_bytes, y.net_bytes));
            g.disk_relative = g.disk_relative.max(relative(x.disk_bytes, y.disk_bytes));
        }
    }
    if g.host_days == 0 {
        g.cpu_p95 = (0.0, 0.0);
    }
    g
}
