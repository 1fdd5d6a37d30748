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
    assert_eq!(
        zombie["evidence"]["peak"]["accepted"], 0,
        "its agent counted no caller: {}",
        zombie["evidence"]["peak"]
    );
    // The readings arrived through the ingest path, counted as the agents'.
    let m = s.send(reqwest::Method::GET, None, "/metrics", None, &[]).await.expect(200);
    let text = m.body.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("yunzhi_ingested_samples_total{source=\"agent\"}"), "{text}");
    // The live readings come as agents' reports, each numbered: the
    // zombie's agent has sent its first batches under its credential.
    // (The first round of reports follows the history, as the findings do.)
    let mut agent = Value::Null;
    for _ in 0..120 {
        agent = s
            .get(&office, &format!("/api/v1/resources/{}/agent", zombie["resource_id"]))
            .await
            .expect(200)
            .body;
        if agent["last_sequence"].as_i64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(agent["last_sequence"].as_i64().unwrap() >= 1, "{agent}");
    assert_eq!(agent["sequence_resets"], 0, "{agent}");
    // The profiles are told apart: idleness is found only on the idle and
    // zombie systems, never on the busy, office-hours or seasonal ones.
    let systems = s.all(&office, "/api/v1/systems").await;
    let idle_or_zombie = ["旧版行政审批系统", "教师继续教育管理系统", "农村集体资产管理系统"];
    for f in open.iter().filter(|f| f["kind"] == "zombie" || f["kind"] == "low_utilization") {
        let system =
            systems.iter().find(|x| x["id"] == f["system_id"]).expect("a usage finding names its system");
        let name = system["name"].as_str().unwrap();
        assert!(idle_or_zombie.contains(&name), "a {} finding about {name}: {}", f["kind"], f["title"]);
    }
    s.stop().await;
}
