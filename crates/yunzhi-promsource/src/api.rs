//! The two endpoints of the Prometheus HTTP API the analysis needs,
//! `/api/v1/query` and `/api/v1/query_range`, as Prometheus documents them
//! and VictoriaMetrics and Thanos Query implement them: queries are POSTed
//! form-encoded (a long PromQL never meets a URL limit), the answer is the
//! `{status, data, errorType, error, warnings}` envelope.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// One series of an answer: its labels and its points as (Unix seconds, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: HashMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Matrix(Vec<MatrixSeries>),
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    String(serde_json::Value),
}

#[derive(Debug, Deserialize)]
struct MatrixSeries {
    metric: HashMap<String, String>,
    values: Vec<(f64, String)>,
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    metric: HashMap<String, String>,
    value: (f64, String),
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
    accept_warnings: bool,
}

impl Client {
    pub(crate) fn new(base_url: &str, timeout: Duration, accept_warnings: bool) -> Result<Self> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::Config(format!("base URL {base_url:?} is not an http(s) URL")));
        }
        // reqwest panics building a client without a process-wide rustls
        // provider; the server installs ring at start, this covers tests and
        // tools, and is a no-op when one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self { http, base_url, timeout, accept_warnings })
    }

    /// An instant query evaluated at `at` (Unix seconds).
    pub(crate) async fn query(&self, promql: &str, at: i64) -> Result<Vec<Series>> {
        let at = at.to_string();
        self.post("/api/v1/query", &[("query", promql), ("time", &at)]).await
    }

    /// A range query evaluated at `start`, `start + step`, ... up to `end`.
    pub(crate) async fn query_range(
        &self,
        promql: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>> {
        let (start, end, step) = (start.to_string(), end.to_string(), step.to_string());
        self.post(
            "/api/v1/query_range",
            &[("query", promql), ("start", &start), ("end", &end), ("step", &step)],
        )
        .await
    }

    async fn post(&self, path: &str, params: &[(&str, &str)]) -> Result<Vec<Series>> {
        let url = format!("{}{path}", self.base_url);
        // The store is told the same deadline, so it stops evaluating a query
        // nobody waits for any more.
        let timeout = format!("{}ms", self.timeout.as_millis());
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("timeout", &timeout));
        let started = std::time::Instant::now();
        let response = self.http.post(&url).form(&form).send().await.map_err(|e| self.transport(&url, e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.transport(&url, e))?;
        tracing::debug!(url, status, elapsed_ms = started.elapsed().as_millis() as u64, "prometheus query");
        self.decode(&url, status, &body)
    }

    fn transport(&self, url: &str, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout { url: url.to_owned(), timeout: self.timeout }
        } else {
            Error::Unreachable { url: url.to_owned(), source: e }
        }
    }

    fn decode(&self, url: &str, status: u16, body: &[u8]) -> Result<Vec<Series>> {
        let protocol = |detail: String| Error::Protocol { url: url.to_owned(), status, detail };
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
            let head: String = String::from_utf8_lossy(body).chars().take(200).collect();
            protocol(format!("{e}; body starts {head:?}"))
        })?;
        if envelope.status != "success" {
            let error_type = envelope.error_type.unwrap_or_default();
            let message = envelope.error.unwrap_or_else(|| format!("status {:?}", envelope.status));
            // Prometheus answers 503 `timeout` when its own deadline (ours,
            // passed along) runs out; that is the same event as ours.
            if error_type == "timeout" {
                return Err(Error::Timeout { url: url.to_owned(), timeout: self.timeout });
            }
            return Err(Error::Api { error_type, message });
        }
        if !envelope.warnings.is_empty() {
            if !self.accept_warnings {
                return Err(Error::Warnings(envelope.warnings));
            }
            tracing::warn!(url, warnings = ?envelope.warnings, "prometheus answered with warnings; data may be partial");
        }
        let data = envelope.data.ok_or_else(|| protocol("success without data".to_owned()))?;
        let series = match data {
            Data::Matrix(matrix) => matrix
                .into_iter()
                .map(|s| Ok(Series { labels: s.metric, points: parse_points(s.values)? }))
                .collect::<Result<_, String>>(),
            Data::Vector(vector) => vector
                .into_iter()
                .map(|s| Ok(Series { labels: s.metric, points: parse_points(vec![s.value])? }))
                .collect::<Result<_, String>>(),
            Data::Scalar(point) => {
                parse_points(vec![point]).map(|points| vec![Series { labels: HashMap::new(), points }])
            }
            Data::String(s) => Err(format!("a string result {s}, where numbers were asked for")),
        };
        series.map_err(protocol)
    }
}

/// Sample values come as strings so that NaN and ±Inf survive JSON.
fn parse_points(values: Vec<(f64, String)>) -> Result<Vec<(f64, f64)>, String> {
    values
        .into_iter()
        .map(|(t, v)| {
            v.parse::<f64>().map(|v| (t, v)).map_err(|_| format!("sample value {v:?} is not a number"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(accept_warnings: bool) -> Client {
        Client::new("http://127.0.0.1:1/", Duration::from_secs(1), accept_warnings).expect("client")
    }

    #[test]
    fn a_matrix_answer_keeps_labels_and_special_values() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"instance":"a:9100"},"values":[[1741017600,"1.5"],[1741104000,"NaN"],[1741190400,"+Inf"]]}]}}"#;
        let series = client(false).decode("u", 200, body).expect("decoded");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels["instance"], "a:9100");
        assert_eq!(series[0].points[0], (1741017600.0, 1.5));
        assert!(series[0].points[1].1.is_nan());
        assert_eq!(series[0].points[2].1, f64::INFINITY);
    }

    #[test]
    fn an_error_answer_carries_prometheus_error_text() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#;
        match client(false).decode("u", 400, body) {
            Err(Error::Api { error_type, message }) => {
                assert_eq!(error_type, "bad_data");
                assert!(message.contains("parse error"));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[test]
    fn a_store_side_timeout_is_reported_as_a_timeout() {
        let body =
            br#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        assert!(matches!(client(false).decode("u", 503, body), Err(Error::Timeout { .. })));
    }

    #[test]
    fn warnings_are_an_error_unless_accepted() {
        let body =
            br#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["store b down"]}"#;
        match client(false).decode("u", 200, body) {
            Err(Error::Warnings(w)) => assert_eq!(w, vec!["store b down".to_owned()]),
            other => panic!("expected warnings, got {other:?}"),
        }
        assert_eq!(client(true).decode("u", 200, body).expect("accepted"), vec![]);
    }

    #[test]
    fn an_html_page_is_a_protocol_error_quoting_its_start() {
        let err = client(false).decode("u", 502, b"<html>Bad Gateway</html>").expect_err("not JSON");
        assert!(matches!(err, Error::Protocol { status: 502, .. }));
        assert!(err.to_string().contains("Bad Gateway"), "{err}");
    }
}
