//! A store that is down or hangs gives an error that says so.

use std::time::Duration;

use jiff::civil::date;
use yunzhi_promsource::{Error, PromSource, PromSourceConfig};

#[tokio::test]
async fn a_store_that_is_down_is_reported_as_unreachable_with_its_address() {
    // A port that was free a moment ago and has nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}");
    let source = PromSource::new(&url, PromSourceConfig::default()).expect("source");
    let err = source.daily_stats(date(2026, 3, 2), date(2026, 3, 2), 8).await.expect_err("nothing listens");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&url) && text.contains("cannot be reached"), "{text}");
}

#[tokio::test]
async fn a_store_that_does_not_answer_in_time_is_a_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let config = PromSourceConfig { timeout: Duration::from_millis(300), ..Default::default() };
    let source = PromSource::new(&url, config).expect("source");
    let err = source.fleet_cpu_p95(date(2026, 3, 2), 30, 8).await.expect_err("no answer");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("did not answer within 300ms"), "{err}");
    hold.abort();
}

#[test]
fn a_base_url_that_is_not_http_is_refused_at_construction() {
    let err = PromSource::new("prom:9090", PromSourceConfig::default()).expect_err("no scheme");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}
