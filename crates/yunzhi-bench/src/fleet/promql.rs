//! The same question in PromQL: every host's daily CPU average, maximum,
//! 95th percentile and count, memory average, and network and disk bytes,
//! over the window, asked of Prometheus over HTTP as one `query_range` per
//! figure with a one-day step (all at once, as a client in a hurry would),
//! then the same rules on the answers.
//!
//! Beijing days: each figure is evaluated one second before a day's end
//! (the next Beijing midnight) over `[1d]`. Prometheus 2.x windows are
//! closed at both ends, so the window runs from the day's 00:00:00 minus a
//! second to 23:59:59: exactly the day's 288 readings, 00:00 to 23:55.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::Deserialize;
use yunzhi_domain::efficiency::{DailyStats, Rules};
use yunzhi_domain::system::PeriodicLoad;

use super::answers::{self, Answer, Verdicts};
use super::generate::{BEIJING_OFFSET_SECS, INTERVAL_SECS};
use super::openmetrics::RESOURCE_LABEL;

const DAY_SECS: i64 = 86_400;

/// The figures the rules need, and their PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stat {
    Samples,
    CpuAvg,
    CpuMax,
    CpuP95,
    MemoryAvg,
    NetBytes,
    DiskBytes,
}

const STATS: [Stat; 7] = [
    Stat::Samples,
    Stat::CpuAvg,
    Stat::CpuMax,
    Stat::CpuP95,
    Stat::MemoryAvg,
    Stat::NetBytes,
    Stat::DiskBytes,
];

impl Stat {
    fn promql(self) -> String {
        match self {
            Stat::Samples => "count_over_time(yunzhi_cpu_percent[1d])".into(),
            Stat::CpuAvg => "avg_over_time(yunzhi_cpu_percent[1d])".into(),
            Stat::CpuMax => "max_over_time(yunzhi_cpu_percent[1d])".into(),
            Stat::CpuP95 => "quantile_over_time(0.95, yunzhi_cpu_percent[1d])".into(),
            Stat::MemoryAvg => "avg_over_time(yunzhi_memory_percent[1d])".into(),
            // A rate held for the interval it stands for, as Yunzhi's rollups count bytes.
            Stat::NetBytes => format!("sum_over_time(yunzhi_network_bytes_per_second[1d]) * {INTERVAL_SECS}"),
            Stat::DiskBytes => format!("sum_over_time(yunzhi_disk_bytes_per_second[1d]) * {INTERVAL_SECS}"),
        }
    }
}

pub struct Measured {
    /// From the first request sent to the last verdict.
    pub elapsed: Duration,
    /// The queries alone, answers decoded.
    pub queries: Duration,
    pub series: usize,
    pub points: usize,
    /// Host-days whose CPU count is not the day's 288 readings.
    pub short_days: usize,
    pub answer: Answer,
    pub verdicts: Verdicts,
}

/// The Unix second one second before `day` ends in Beijing.
fn evaluated_at(day: Date) -> anyhow::Result<i64> {
    let next = yunzhi_rawstore::Day::from(day.tomorrow()?);
    Ok(next.start_ms(BEIJING_OFFSET_SECS) / 1000 - 1)
}

/// Asks Prometheus at `url` the fleet question over `first..=last` and
/// applies the rules for hosts `ids` as of `today`.
pub async fn ask(
    url: &str,
    (first, last, today): (Date, Date, Date),
    rules: &Rules,
    ids: &[i64],
    periodic: &[Option<PeriodicLoad>],
) -> anyhow::Result<Measured> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(1800)).build()?;
    let (start, end) = (evaluated_at(first)?, evaluated_at(last)?);
    let started = Instant::now();
    let asks = STATS.iter().map(|f| query_range(&http, url, f.promql(), start, end));
    let results = futures_join_all(asks).await?;
    let queries = started.elapsed();

    let mut days: BTreeMap<i64, BTreeMap<i64, [Option<f64>; 7]>> = BTreeMap::new();
    let (mut series, mut points) = (0, 0);
    for (stat, result) in STATS.iter().zip(results) {
        for s in result {
            series += 1;
            let id: i64 =
                s.metric.get(RESOURCE_LABEL).and_then(|v| v.parse().ok()).with_context(|| {
                    format!("a series without a numeric {RESOURCE_LABEL}: {:?}", s.metric)
                })?;
            let host = days.entry(id).or_default();
            for (t, v) in s.values {
                points += 1;
                let k = ((t - start as f64) / DAY_SECS as f64).round() as i64;
                host.entry(k).or_default()[*stat as usize] = v.parse::<f64>().ok().filter(|v| v.is_finite());
            }
        }
    }
    let n_days = first.until(last)?.get_days() as i64 + 1;
    let mut answer: Answer = HashMap::new();
    let mut short_days = 0;
    for (id, host) in days {
        let stats = (0..n_days)
            .map(|k| {
                let day = first.checked_add(k.days())?;
                let f = host.get(&k).copied().unwrap_or_default();
                let complete = f.iter().all(Option::is_some);
                let v = |x: Stat| f[x as usize].unwrap_or(0.0);
                if v(Stat::Samples) as usize != super::generate::READINGS_PER_DAY {
                    short_days += 1;
                }
                Ok(DailyStats {
                    day,
                    samples: if complete { v(Stat::Samples) as u32 } else { 0 },
                    cpu_avg: v(Stat::CpuAvg),
                    cpu_max: v(Stat::CpuMax),
                    cpu_p95: v(Stat::CpuP95),
                    memory_avg: v(Stat::MemoryAvg),
                    net_bytes: v(Stat::NetBytes),
                    disk_bytes: v(Stat::DiskBytes),
                    // Four gauges, no sessions: nobody is seen logged in.
                    sessions_max: 0,
                    accepted: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        answer.insert(id, stats);
    }
    let verdicts = answers::verdicts(rules, today, ids, periodic, &answer);
    Ok(Measured { elapsed: started.elapsed(), queries, series, points, short_days, answer, verdicts })
}

/// Awaits every future, concurrently, failing on the first error.
async fn futures_join_all<T>(
    futures: impl Iterator<Item = impl Future<Output = anyhow::Result<T>> + Send + 'static>,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await??);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: HashMap<String, String>,
    values: Vec<(f64, String)>,
}

fn query_range(
    http: &reqwest::Client,
    url: &str,
    promql: String,
    start: i64,
    end: i64,
) -> impl Future<Output = anyhow::Result<Vec<Series>>> + Send + 'static {
    let (http, url) = (http.clone(), format!("{url}/api/v1/query_range"));
    async move {
        let form = [
            ("query", promql.clone()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", DAY_SECS.to_string()),
        ];
        let response =
            http.post(&url).form(&form).send().await.with_context(|| format!("asking {promql}"))?;
        let status = response.status();
        let body = response.bytes().await?;
        let envelope: Envelope = serde_json::from_slice(&body).with_context(|| {
            format!("{status} answering {promql}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]))
        })?;
        if envelope.status != "success" {
            bail!("{promql}: {}", envelope.error.unwrap_or(envelope.status));
        }
        if !envelope.warnings.is_empty() {
            bail!("{promql}: Prometheus warns the answer may be partial: {:?}", envelope.warnings);
        }
        Ok(envelope.data.map(|d| d.result).unwrap_or_default())
    }
}
