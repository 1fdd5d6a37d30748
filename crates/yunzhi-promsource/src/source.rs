//! [`PromSource`]: the efficiency analysis' daily statistics computed by a
//! Prometheus-compatible store from node_exporter series.
//!
//! Each statistic is one `query_range` whose step is a day and whose
//! evaluation instants are the local day ends, so one request answers for
//! every host and every day, and the store reads each series once for the
//! whole period instead of once per day. The statistics go out
//! concurrently, so a store with several cores evaluates them in parallel.
//! The day's figures are computed by the store (`*_over_time`), so what
//! crosses the network is a handful of numbers per host and day, not the
//! 288 points behind each.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use jiff::ToSpan;
use jiff::civil::Date;
use jiff::tz::Offset;
use yunzhi_domain::efficiency::{DailyStats, MAX_WINDOW_DAYS};

use crate::api::{Client, Series};
use crate::config::PromSourceConfig;
use crate::days::{self, DAY_SECS};
use crate::error::{Error, Result};
use crate::promql::{HOST_LABEL, Queries};

/// Which host a figure belongs to: Yunzhi's resource id where the site's
/// relabelling put it on the series, else the scraped instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostKey {
    Resource(String),
    Instance(String),
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKey::Resource(id) => write!(f, "resource {id}"),
            HostKey::Instance(instance) => write!(f, "instance {instance}"),
        }
    }
}

/// A Prometheus-compatible store read for the efficiency analysis.
#[derive(Debug, Clone)]
pub struct PromSource {
    client: Client,
    config: PromSourceConfig,
}

/// One day's figures as they arrive, one query at a time.
#[derive(Debug, Default, Clone, Copy)]
struct Partial {
    samples: Option<f64>,
    cpu_avg: Option<f64>,
    cpu_max: Option<f64>,
    cpu_p95: Option<f64>,
    memory_avg: Option<f64>,
    net_rx: Option<f64>,
    net_tx: Option<f64>,
    disk_read: Option<f64>,
    disk_written: Option<f64>,
    sessions_max: Option<f64>,
    accepted: Option<f64>,
}

impl PromSource {
    /// `base_url` is where the store's `/api/v1` lives: `http://prom:9090`,
    /// or with a path prefix, `http://vmselect:8481/select/0/prometheus`.
    /// HTTPS uses the process' rustls provider, installing ring if there is
    /// none yet.
    pub fn new(base_url: &str, config: PromSourceConfig) -> Result<Self> {
        config.validate()?;
        let client = Client::new(base_url, config.timeout, config.accept_warnings)?;
        Ok(Self { client, config })
    }

    /// Every host's statistics for each local day from `from` to `to`
    /// inclusive, days ending at local midnight of a zone `tz_offset_hours`
    /// east of UTC (8 for Beijing). A host seen on any of those days gets an
    /// entry for every day, with `samples: 0` on days without CPU data or
    /// with another figure missing, so the rules leave those days out rather
    /// than read a missing figure as an idle one.
    pub async fn daily_stats(
        &self,
        from: Date,
        to: Date,
        tz_offset_hours: i8,
    ) -> Result<HashMap<HostKey, Vec<DailyStats>>> {
        let offset = days::offset(tz_offset_hours)?;
        let n_days = from.until(to).map_err(|e| Error::Config(e.to_string()))?.get_days();
        if to < from || n_days >= MAX_WINDOW_DAYS as i32 {
            return Err(Error::Config(format!(
                "days {from}..={to}: need from <= to and at most {MAX_WINDOW_DAYS} days"
            )));
        }
        let (start, end) = (days::day_end(from, offset)?, days::day_end(to, offset)?);
        let q = Queries::new(&self.config);
        let range =
            |promql: String| async move { self.client.query_range(&promql, start, end, DAY_SECS).await };
        let (samples, cpu_avg, cpu_max, cpu_p95, memory_avg) = tokio::try_join!(
            range(q.cpu_samples()),
            range(q.cpu_avg()),
            range(q.cpu_max()),
            range(q.cpu_p95()),
            range(q.memory_avg()),
        )?;
        let (net_rx, net_tx, disk_read, disk_written, sessions_max, accepted) = tokio::try_join!(
            range(q.daily_increase("node_network_receive_bytes_total", "device!=\"lo\"")),
            range(q.daily_increase("node_network_transmit_bytes_total", "device!=\"lo\"")),
            range(q.daily_increase("node_disk_read_bytes_total", "")),
            range(q.daily_increase("node_disk_written_bytes_total", "")),
            range(q.sessions_max()),
            range(q.accepted()),
        )?;

        let mut hosts: BTreeMap<HostKey, BTreeMap<Date, Partial>> = BTreeMap::new();
        let mut put = |answer: Vec<Series>, field: fn(&mut Partial) -> &mut Option<f64>| {
            for series in answer {
                let Some(host) = self.host_key(&series) else { continue };
                let days = hosts.entry(host).or_default();
                for (t, v) in series.points {
                    match days::day_ending_at(t, offset) {
                        Some(day) if (from..=to).contains(&day) && v.is_finite() => {
                            *field(days.entry(day).or_default()) = Some(v);
                        }
                        _ => tracing::debug!(t, v, "point outside the days asked for, or not a number"),
                    }
                }
            }
        };
        put(samples, |p| &mut p.samples);
        put(cpu_avg, |p| &mut p.cpu_avg);
        put(cpu_max, |p| &mut p.cpu_max);
        put(cpu_p95, |p| &mut p.cpu_p95);
        put(memory_avg, |p| &mut p.memory_avg);
        put(net_rx, |p| &mut p.net_rx);
        put(net_tx, |p| &mut p.net_tx);
        put(disk_read, |p| &mut p.disk_read);
        put(disk_written, |p| &mut p.disk_written);
        put(sessions_max, |p| &mut p.sessions_max);
        put(accepted, |p| &mut p.accepted);

        let all_days: Vec<Date> = from.series(1.day()).take_while(|d| *d <= to).collect();
        Ok(hosts
            .into_iter()
            .filter(|(_, days)| !days.is_empty())
            .map(|(host, days)| {
                let stats = all_days
                    .iter()
                    .map(|day| to_daily(&host, *day, days.get(day).copied().unwrap_or_default()))
                    .collect();
                (host, stats)
            })
            .collect())
    }

    /// The fleet question in one PromQL query: every host's CPU p95 over
    /// the `window_days` local days ending with `last_day`. The benchmark
    /// against Yunzhi's own analysis asks exactly this.
    pub async fn fleet_cpu_p95(
        &self,
        last_day: Date,
        window_days: u32,
        tz_offset_hours: i8,
    ) -> Result<HashMap<HostKey, f64>> {
        if window_days == 0 || window_days > MAX_WINDOW_DAYS {
            return Err(Error::Config(format!(
                "window of {window_days} days is not within 1..={MAX_WINDOW_DAYS}"
            )));
        }
        let offset: Offset = days::offset(tz_offset_hours)?;
        let at = days::day_end(last_day, offset)?;
        let answer = self.client.query(&Queries::new(&self.config).cpu_p95_over(window_days), at).await?;
        Ok(answer
            .into_iter()
            .filter_map(|series| {
                let value = series.points.first().map(|p| p.1)?;
                Some((self.host_key(&series)?, value))
            })
            .collect())
    }

    /// When each host's node_exporter was last scraped, in Unix seconds,
    /// among the hosts scraped in the `lookback_secs` before `at`: what
    /// stands in for the Yunzhi agent's last report at a site whose hosts
    /// report to the store instead (Art. 13: the monitoring must not be
    /// blocked or removed).
    ///
    /// Two queries: the last two hours every minute, so that a host that
    /// stopped minutes ago is dated to the minute (the silent rule's
    /// threshold is half an hour), and the whole look-back every hour, so
    /// that a host silent for days is still known as seen, dated to within
    /// an hour.
    pub async fn last_seen(&self, at: i64, lookback_secs: u32) -> Result<HashMap<HostKey, i64>> {
        const RECENT_SECS: u32 = 2 * 3600;
        let q = Queries::new(&self.config);
        let recent = q.last_scrape(RECENT_SECS.min(lookback_secs.max(60)), 60);
        let long = q.last_scrape(lookback_secs.max(3600), 3600);
        let (recent, long) = tokio::try_join!(self.client.query(&recent, at), self.client.query(&long, at))?;
        let mut seen: HashMap<HostKey, i64> = HashMap::new();
        for series in recent.into_iter().chain(long) {
            let Some(host) = self.host_key(&series) else { continue };
            let Some(t) = series.points.first().map(|p| p.1).filter(|t| t.is_finite()) else { continue };
            let t = t as i64;
            seen.entry(host).and_modify(|s| *s = (*s).max(t)).or_insert(t);
        }
        Ok(seen)
    }

    /// Any PromQL instant query at `at` (Unix seconds), for questions the
    /// analysis has not foreseen; answers are raw series.
    pub async fn query(&self, promql: &str, at: i64) -> Result<Vec<Series>> {
        self.client.query(promql, at).await
    }

    fn host_key(&self, series: &Series) -> Option<HostKey> {
        let key = series.labels.get(HOST_LABEL).filter(|k| !k.is_empty())?;
        let is_resource = series.labels.get(&self.config.resource_label).is_some_and(|r| r == key);
        Some(if is_resource { HostKey::Resource(key.clone()) } else { HostKey::Instance(key.clone()) })
    }
}

/// A day's statistics, or a day without data (`samples: 0`) where a figure
/// the rules read is missing: a day whose network counter is absent must not
/// look like a day without traffic.
fn to_daily(host: &HostKey, day: Date, p: Partial) -> DailyStats {
    let net = p.net_rx.zip(p.net_tx).map(|(rx, tx)| rx + tx);
    let disk = p.disk_read.zip(p.disk_written).map(|(r, w)| r + w);
    let complete = (|| Some((p.samples?, p.cpu_avg?, p.cpu_max?, p.cpu_p95?, p.memory_avg?, net?, disk?)))();
    match complete {
        Some((samples, cpu_avg, cpu_max, cpu_p95, memory_avg, net_bytes, disk_bytes)) if samples >= 1.0 => {
            DailyStats {
                day,
                samples: samples.round() as u32,
                cpu_avg,
                cpu_max,
                cpu_p95,
                memory_avg,
                net_bytes,
                disk_bytes,
                // Without the logind collector nobody is seen logged in;
                // the zombie rule then rests on CPU, network and disk.
                sessions_max: p.sessions_max.map_or(0, |s| s.round() as u32),
                // Without the netstat collector the count is unknown.
                accepted: p.accepted.map(|n| n.round().max(0.0) as u64),
            }
        }
        _ => {
            if p.samples.is_some_and(|s| s >= 1.0) {
                tracing::warn!(%host, %day, ?p, "a figure is missing for the day; the day counts as without data");
            }
            DailyStats {
                day,
                samples: 0,
                cpu_avg: 0.0,
                cpu_max: 0.0,
                cpu_p95: 0.0,
                memory_avg: 0.0,
                net_bytes: 0.0,
                disk_bytes: 0.0,
                sessions_max: 0,
                accepted: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn full() -> Partial {
        Partial {
            samples: Some(288.0),
            cpu_avg: Some(5.0),
            cpu_max: Some(9.0),
            cpu_p95: Some(8.0),
            memory_avg: Some(40.0),
            net_rx: Some(1.0),
            net_tx: Some(2.0),
            disk_read: Some(3.0),
            disk_written: Some(4.0),
            sessions_max: None,
            accepted: None,
        }
    }

    #[test]
    fn a_complete_day_sums_directions_and_devices() {
        let d = to_daily(&HostKey::Instance("a".into()), date(2026, 3, 2), full());
        assert_eq!((d.samples, d.net_bytes, d.disk_bytes, d.sessions_max), (288, 3.0, 7.0, 0));
    }

    #[test]
    fn a_day_missing_its_network_counter_counts_as_a_day_without_data() {
        let p = Partial { net_tx: None, ..full() };
        assert_eq!(to_daily(&HostKey::Instance("a".into()), date(2026, 3, 2), p).samples, 0);
    }
}
