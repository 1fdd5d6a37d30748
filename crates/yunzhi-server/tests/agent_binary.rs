//! The real agent binary against the real server: enrolment with a
//! one-time code, then numbered reports whose readings reach the host's
//! rollups, and the agent's own SM3 digest on record. The agent's other
//! tests use a stand-in of these two endpoints (it lets them answer 503 or
//! 401 at will); this one checks that the stand-in and the server agree.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Backend, TestServer};
use serde_json::json;
use sm3::{Digest, Sm3};

on_both_backends!(the_agent_enrols_with_a_one_time_code_and_its_reports_reach_the_hosts_rollups);

/// The agent as `cargo test --workspace` builds it, next to this test's own
/// folder. Run alone, this test needs it built first.
fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>").join("yunzhi-agent");
    assert!(
        bin.is_file(),
        "{} is missing: run the whole suite (cargo test --workspace) or build it first (cargo build -p yunzhi-agent)",
        bin.display()
    );
    bin
}

fn run(base: &str, state_dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(agent_bin());
    cmd.args(["--server", base, "--state-dir"]).arg(state_dir).args(extra).arg("--once");
    for proxy in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(proxy);
    }
    cmd.output().expect("the agent runs")
}

async fn the_agent_enrols_with_a_one_time_code_and_its_reports_reach_the_hosts_rollups(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let admin = s.login("unit1_admin").await;
    let host = s
        .all(&admin, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host")
        .expect("a host of unit 1")["id"]
        .as_i64()
        .unwrap();
    let code = s
        .post(&admin, &format!("/api/v1/resources/{host}/enrollment"), json!(null))
        .await
        .expect(201)
        .body["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let state_dir = tempfile::tempdir().unwrap();
    let base = s.base.clone();
    let dir = state_dir.path().to_path_buf();
    let first = tokio::task::spawn_blocking(move || run(&base, &dir, &["--enroll", &code])).await.unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let (base, dir) = (s.base.clone(), state_dir.path().to_path_buf());
    let second = tokio::task::spawn_blocking(move || run(&base, &dir, &[])).await.unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));

    let agent = s.get(&admin, &format!("/api/v1/resources/{host}/agent")).await.expect(200).body;
    let digest: String =
        Sm3::digest(std::fs::read(agent_bin()).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(agent["binary_sm3"], digest.as_str(), "{agent}");
    assert_eq!(
        (agent["last_sequence"].as_i64(), agent["sequence_resets"].as_i64()),
        (Some(2), Some(0)),
        "{agent}"
    );
    assert!(agent["last_report_at"].is_string(), "{agent}");
    let hours = s.get(&admin, &format!("/api/v1/resources/{host}/metrics?span=hour")).await.expect(200).body;
    let samples: u64 = hours.as_array().unwrap().iter().map(|h| h["samples"].as_u64().unwrap()).sum();
    assert!(samples >= 2, "a reading from each run: {hours}");
    s.stop().await;
}
