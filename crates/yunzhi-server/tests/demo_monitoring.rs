//! The demo district's monitoring: a fresh demo shows a finding of every
//! kind within a minute, fed through the same ingest path as agents.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use serde_json::Value;

on_both_backends!(a_fresh_demo_shows_a_finding_of_every_kind_within_a_minute);

async fn a_fresh_demo_shows_a_finding_of_every_kind_within_a_minute(backend: Backend) {
    let settings = yunzhi_server::Settings {
        demo: true,
        demo_agents: true,
        agent_digests: vec![yunzhi_server::demo_agents::demo_agent_digest()],
        ..Default::default()
    };
    let s = TestServer::start(backend, settings).await;
    let office = s.login("office").await;
    let wanted =
        ["agent_missing", "agent_silent", "agent_tampered", "orphan_resource", "zombie", "low_utilization"];
    let mut open: Vec<Value> = Vec::new();
    for _ in 0..120 {
        open = s.all(&office, "/api/v1/findings?state=open").await;
        if wanted.iter().all(|k| open.iter().any(|f| f["kind"] == *k)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let kinds: Vec<&str> = open.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for k in wanted {
        assert!(kinds.contains(&k), "no {k} finding among {kinds:?}");
    }
    // Each comes with its numbers: the zombie's window and days.
    let zombie = open.iter().find(|f| f["kind"] == "zombie").unwrap();
    assert_eq!(zombie["evidence"]["window"]["days"], 30);
    // The readings arrived through the ingest path, counted as the agents'.
    let m = s.send(reqwest::Method::GET, None, "/metrics", None, &[]).await.expect(200);
    let text = m.body.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("yunzhi_ingested_samples_total{source=\"agent\"}"), "{text}");
    s.stop().await;
}
