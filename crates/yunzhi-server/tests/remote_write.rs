//! Prometheus remote-write: a sender with an ingest token posts
//! node_exporter series, split over requests as Prometheus's shards do;
//! they become the host's readings.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use serde_json::{Value, json};
use yunzhi_server::remote_write::{Label, Sample, TimeSeries, WriteRequest};

on_both_backends!(
    node_exporter_series_sent_by_remote_write_become_a_hosts_readings,
    a_full_inbox_asks_the_sender_to_wait_and_keeps_what_it_acknowledged,
);

fn series(host: i64, name: &str, extra: &[(&str, &str)], points: &[(i64, f64)]) -> TimeSeries {
    let mut labels = vec![
        Label { name: "__name__".into(), value: name.into() },
        Label { name: "instance".into(), value: "10.0.0.8:9100".into() },
        Label { name: "yunzhi_resource_id".into(), value: host.to_string() },
    ];
    labels.extend(extra.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }));
    TimeSeries { labels, samples: points.iter().map(|(t, v)| Sample { value: *v, timestamp: *t }).collect() }
}

fn body(series: Vec<TimeSeries>) -> Vec<u8> {
    let req = WriteRequest { timeseries: series };
    snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(&req)).unwrap()
}

async fn write(s: &TestServer, token: &str, body: Vec<u8>, encoding: &str) -> u16 {
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/write", s.base))
        .bearer_auth(token)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", encoding)
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

async fn node_exporter_series_sent_by_remote_write_become_a_hosts_readings(backend: Backend) {
    // A moment waits a second for its other shards (thirty by default).
    let settings = yunzhi_server::Settings {
        demo: true,
        remote_write_idle: Duration::from_secs(1),
        ..Default::default()
    };
    let s = TestServer::start(backend, settings).await;
    let sys = s.login("sys_admin").await;
    let ca = s.login("cloud_admin").await;
    s.post(&ca, "/api/v1/ingest-tokens", json!({"name": "prometheus-dc1"})).await.expect(403);
    let created =
        s.post(&sys, "/api/v1/ingest-tokens", json!({"name": "prometheus-dc1"})).await.expect(201).body;
    let token = created["token"].as_str().unwrap().to_owned();
    let listed = s.get(&sys, "/api/v1/ingest-tokens").await.expect(200).body;
    assert!(!listed.to_string().contains(&token), "the token is shown once: {listed}");

    let host = s
        .all(&ca, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host")
        .unwrap();
    let id = host["id"].as_i64().unwrap();
    // Five scrapes a minute apart, ten minutes ago: one CPU, busy 25 % of
    // each minute; 8 GB of memory, 2 available; 120 kB/s received.
    let t0 = s.state().now().as_millisecond() - 10 * 60_000;
    let at = |i: i64| t0 + i * 60_000;
    let points = |per_minute: f64| (0..5).map(|i| (at(i), per_minute * i as f64)).collect::<Vec<_>>();
    let busy = series(id, "node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")], &points(15.0));
    let idle = series(id, "node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")], &points(45.0));
    let mem = vec![
        series(id, "node_memory_MemTotal_bytes", &[], &(0..5).map(|i| (at(i), 8e9)).collect::<Vec<_>>()),
        series(id, "node_memory_MemAvailable_bytes", &[], &(0..5).map(|i| (at(i), 2e9)).collect::<Vec<_>>()),
    ];
    let net = series(id, "node_network_receive_bytes_total", &[("device", "eth0")], &points(7_200_000.0));

    assert_eq!(write(&s, "wrong", body(vec![busy.clone()]), "snappy").await, 401);
    assert_eq!(
        write(&s, &token, prost::Message::encode_to_vec(&WriteRequest { timeseries: vec![] }), "identity")
            .await,
        400
    );
    assert_eq!(write(&s, &token, b"not snappy at all".to_vec(), "snappy").await, 400);
    // Two shards: the busy CPU time in one request, the rest in another.
    assert_eq!(write(&s, &token, body(vec![busy]), "snappy").await, 204);
    // A series naming no host Yunzhi knows (a sender's relabelling typo)
    // travels with the host's: it is left out and counted, and the host's
    // readings are stored all the same.
    let stranger =
        series(9_999_999, "node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")], &points(6.0));
    let mut rest = vec![idle, net, stranger];
    rest.extend(mem);
    assert_eq!(write(&s, &token, body(rest), "snappy").await, 204);

    let clerk_or_ca = &ca;
    let mut hours: Vec<Value> = Vec::new();
    for _ in 0..200 {
        hours = s
            .get(clerk_or_ca, &format!("/api/v1/resources/{id}/metrics?span=hour"))
            .await
            .expect(200)
            .body
            .as_array()
            .unwrap()
            .clone();
        if hours.iter().map(|h| h["samples"].as_u64().unwrap()).sum::<u64>() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let samples: u64 = hours.iter().map(|h| h["samples"].as_u64().unwrap()).sum();
    assert_eq!(samples, 4, "the first scrape only sets the counters' base: {hours:?}");
    for h in &hours {
        assert!((h["cpu_avg"].as_f64().unwrap() - 25.0).abs() < 1e-6, "{h}");
        assert!((h["memory_avg"].as_f64().unwrap() - 75.0).abs() < 1e-6, "{h}");
    }
    let bytes: f64 = hours.iter().map(|h| h["net_bytes"].as_f64().unwrap()).sum();
    assert!((bytes - 4.0 * 7_200_000.0).abs() < 1.0, "120 kB/s for four minutes: {bytes}");
    // The writer counts a group once its transaction is committed, a moment
    // after the readings became visible.
    let counted = "yunzhi_ingested_samples_total{source=\"remote_write\"} 4";
    let mut metrics = String::new();
    for _ in 0..100 {
        let m = s.send(reqwest::Method::GET, None, "/metrics", None, &[]).await.expect(200);
        metrics = m.body.as_str().unwrap().to_owned();
        if metrics.contains(counted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.contains(counted), "{metrics}");
    assert!(metrics.contains("yunzhi_remote_write_unplaced_samples_total 5"), "{metrics}");

    let tid = created["id"].as_i64().unwrap();
    s.send(reqwest::Method::DELETE, Some(&sys), &format!("/api/v1/ingest-tokens/{tid}"), None, &[])
        .await
        .expect(200);
    assert_eq!(write(&s, &token, body(vec![]), "snappy").await, 401, "a revoked token is refused");
    s.stop().await;
}

async fn a_full_inbox_asks_the_sender_to_wait_and_keeps_what_it_acknowledged(backend: Backend) {
    // An inbox of two requests, whose moments wait a minute for their
    // other shards: the first two requests fill it.
    let settings = yunzhi_server::Settings {
        demo: true,
        remote_write_idle: Duration::from_secs(60),
        remote_write_backlog: 2,
        ..Default::default()
    };
    let s = TestServer::start(backend, settings).await;
    let sys = s.login("sys_admin").await;
    let token =
        s.post(&sys, "/api/v1/ingest-tokens", json!({"name": "vmagent"})).await.expect(201).body["token"]
            .as_str()
            .unwrap()
            .to_owned();
    let ca = s.login("cloud_admin").await;
    let host = s
        .all(&ca, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let t0 = s.state().now().as_millisecond() - 10 * 60_000;
    let up = |i: i64| body(vec![series(host, "node_memory_MemTotal_bytes", &[], &[(t0 + i * 60_000, 8e9)])]);
    assert_eq!(write(&s, &token, up(0), "snappy").await, 204);
    assert_eq!(write(&s, &token, up(1), "snappy").await, 204);
    let client = reqwest::Client::new();
    let refused = client
        .post(format!("{}/api/v1/write", s.base))
        .bearer_auth(&token)
        .header("content-encoding", "snappy")
        .body(up(2))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("holds 2 requests"), "{problem}");
    let metrics = s.send(reqwest::Method::GET, None, "/metrics", None, &[]).await.expect(200).body;
    assert!(metrics.as_str().unwrap().contains("yunzhi_remote_write_inbox_requests 2"), "{metrics}");
    // The two it took are kept, not dropped, while it waits.
    assert_eq!(s.state().store.inbox_len().await.unwrap(), 2);
    s.stop().await;
}
