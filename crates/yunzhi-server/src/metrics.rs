//! The server's own Prometheus metrics, served at `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    ingested: Family<Labels, Counter>,
    /// Time to store one group of reports.
    pub ingest_batch: Histogram,
    /// Remote-write samples of series that name no host Yunzhi knows.
    pub unplaced: Counter,
    /// Remote-write requests kept but not yet turned into readings.
    pub inbox: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("yunzhi");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        let ingested = Family::<Labels, Counter>::default();
        registry.register(
            "ingested_samples",
            "Readings stored, by source (agent, remote_write)",
            ingested.clone(),
        );
        let ingest_batch = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "ingest_batch_duration_seconds",
            "Time to store one group of reports, from the queue to the commit",
            ingest_batch.clone(),
        );
        let unplaced = Counter::default();
        registry.register(
            "remote_write_unplaced_samples",
            "Remote-write samples left out: their series name no host Yunzhi knows, or one the store refuses",
            unplaced.clone(),
        );
        let inbox = Gauge::default();
        registry.register(
            "remote_write_inbox_requests",
            "Remote-write requests kept but not yet turned into readings",
            inbox.clone(),
        );
        Metrics { registry, requests, latency, ingested, ingest_batch, unplaced, inbox }
    }

    /// Counts `n` readings stored from `source`.
    pub fn ingested(&self, source: &str, n: u64) {
        self.ingested.get_or_create(&vec![("source", source.to_owned())]).inc_by(n);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts and times every request by its route template (never the raw
/// path: ids would make the label set unbounded).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    state
        .metrics
        .requests
        .get_or_create(&vec![("method", method), ("route", route.clone()), ("status", status)])
        .inc();
    state.metrics.latency.get_or_create(&vec![("route", route)]).observe(start.elapsed().as_secs_f64());
    response
}
