//! A request id for every request: taken from `X-Request-Id` when a proxy
//! sent a sane one, else made here; echoed in the response header, shown in
//! every problem document and logged with every failure, so that a clerk's
//! screenshot of an error leads the operator straight to the log line.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn fresh() -> String {
    // Start-up time and a counter: unique per server, sortable, short.
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let epoch = EPOCH.get_or_init(|| jiff::Timestamp::now().as_second() as u64);
    format!("{epoch:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub async fn layer(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(fresh);
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut response =
        REQUEST_ID.scope(id.clone(), tracing::Instrument::instrument(next.run(request), span)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
