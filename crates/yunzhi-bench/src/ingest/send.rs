//! Posting the payloads as Prometheus's shards do, and reading a
//! server's own `/metrics` to see how far it got.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::payload::Payloads;

/// What the senders did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    pub requests: usize,
    pub samples: u64,
    /// Requests sent again after a 429 or 503.
    pub retries: usize,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

impl Sent {
    /// "N requests acknowledged in T s (R samples/s; K resent after 429/503)".
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        format!(
            "{} requests acknowledged in {secs:.1} s ({:.0} samples/s; {} resent after 429/503)",
            self.requests,
            self.samples as f64 / secs.max(1e-3),
            self.retries
        )
    }
}

/// Longest wait a `Retry-After` may ask for before the run gives up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Attempts of one request before the run gives up.
const MAX_ATTEMPTS: usize = 100;

/// Posts every shard's requests to `url` (`…/api/v1/write`), one sender per
/// shard, each request after the previous one's answer, as a Prometheus
/// shard does. Every answer must be 2xx; 429 and 503 are waited out
/// (`Retry-After`, else a second) and sent again, and counted.
pub async fn post_all(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    payloads: &Arc<Payloads>,
) -> anyhow::Result<Sent> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for shard in 0..payloads.shards.len() {
        let client = client.clone();
        let url = url.to_owned();
        let token = token.map(str::to_owned);
        let payloads = Arc::clone(payloads);
        tasks.spawn(async move {
            let mut retries = 0;
            for (i, request) in payloads.shards[shard].iter().enumerate() {
                retries += post_one(&client, &url, token.as_deref(), &request.body)
                    .await
                    .with_context(|| format!("shard {shard}, request {i}"))?;
            }
            anyhow::Ok(retries)
        });
    }
    let mut retries = 0;
    while let Some(done) = tasks.join_next().await {
        retries += done.context("a sender panicked")??;
    }
    Ok(Sent { requests: payloads.requests(), samples: payloads.samples, retries, elapsed: start.elapsed() })
}

/// Posts one request until it is taken; returns how many times it was resent.
async fn post_one(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> anyhow::Result<usize> {
    for attempt in 0..MAX_ATTEMPTS {
        let mut req = client
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("User-Agent", "Prometheus/2.42.0")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.to_vec());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let answer = req.send().await.with_context(|| format!("posting to {url}"))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(attempt);
        }
        if status.as_u16() == 429 || status.as_u16() == 503 {
            let wait = answer
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs)
                .min(MAX_RETRY_AFTER);
            tokio::time::sleep(wait).await;
            continue;
        }
        let text = answer.text().await.unwrap_or_default();
        bail!("{url} answered {status}: {}", text.chars().take(500).collect::<String>());
    }
    bail!("{url} asked to wait {MAX_ATTEMPTS} times for one request")
}

/// The sum of every sample of `name` in a Prometheus text exposition whose
/// labels contain `having` (e.g. `source="remote_write"`; empty: all).
pub fn metric_sum(exposition: &str, name: &str, having: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.contains(having)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Reads `name` (summed over the series whose labels contain `having`) from `base/metrics`.
pub async fn read_metric(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    having: &str,
) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .with_context(|| format!("reading {base}/metrics"))?
        .error_for_status()?
        .text()
        .await?;
    Ok(metric_sum(&text, name, having))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_is_summed_over_the_series_that_have_the_label() {
        let text = "# HELP x y\n# TYPE yunzhi_ingested_samples counter\n\
                    yunzhi_ingested_samples_total{source=\"agent\"} 7\n\
                    yunzhi_ingested_samples_total{source=\"remote_write\"} 1.5e3\n\
                    yunzhi_ingested_samples_total_other 9\n\
                    prometheus_tsdb_head_samples_appended_total{type=\"float\"} 20\n\
                    prometheus_tsdb_head_samples_appended_total{type=\"histogram\"} 1\n";
        assert_eq!(metric_sum(text, "yunzhi_ingested_samples_total", "source=\"remote_write\""), 1500.0);
        assert_eq!(metric_sum(text, "yunzhi_ingested_samples_total", ""), 1507.0);
        assert_eq!(metric_sum(text, "prometheus_tsdb_head_samples_appended_total", ""), 21.0);
        assert_eq!(metric_sum(text, "missing", ""), 0.0);
    }
}
