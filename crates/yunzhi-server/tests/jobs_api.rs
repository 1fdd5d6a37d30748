//! Jobs as the Big Data Center sees them: a provisioning that finds no room
//! waits with its reason; a failed job is retried or cancelled by hand.

mod common;

use std::time::Duration;

use common::{Backend, TestServer};
use jiff::Timestamp;
use serde_json::{Value, json};
use yunzhi_store::{NewJob, Store};

on_both_backends!(
    a_provisioning_without_room_shows_why_and_a_failed_job_is_retried_or_cancelled,
    a_platform_that_loses_its_answers_still_ends_with_exactly_the_approved_resources,
    a_drained_platform_takes_nothing_new_until_it_is_enabled_again,
);

async fn a_drained_platform_takes_nothing_new_until_it_is_enabled_again(backend: Backend) {
    let settings = yunzhi_server::Settings {
        demo: true,
        job_retry_base: jiff::SignedDuration::from_millis(50),
        ..Default::default()
    };
    let s = TestServer::start(backend, settings).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    let platforms = s.all(&ca, "/api/v1/platforms").await;
    let x86 = platforms.iter().find(|p| p["arch"] == "x86_64").unwrap()["id"].clone();
    let path = format!("/api/v1/platforms/{x86}");
    let r = s.patch(&ca, &path, json!({"state": "asleep"})).await.expect(422);
    assert_eq!(r.body["field"], "state");
    let office = s.login("office").await;
    s.patch(&office, &path, json!({"state": "draining"})).await.expect(403);
    s.patch(&ca, "/api/v1/platforms/9999", json!({"state": "draining"})).await.expect(404);
    let drained = s.patch(&ca, &path, json!({"state": "draining"})).await.expect(200);
    assert_eq!(drained.body["state"], "draining");
    assert!(drained.body["usage"]["vcpu"].as_u64() > Some(0), "it keeps what it runs");

    let system = s
        .all(&clerk, "/api/v1/systems?state=online")
        .await
        .iter()
        .find(|x| x["arch"] == "x86_64")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let req = s.post(&clerk, "/api/v1/requests", common::ask(system, host, 1, "new")).await.expect(201).body
        ["id"]
        .as_i64()
        .unwrap();
    s.approve_three_levels(req).await;
    job_where(&s, &ca, "/api/v1/jobs?state=queued", |j| {
        j["payload"]["request_id"] == req
            && j["last_error"].as_str().is_some_and(|e| e.starts_with("no_capacity"))
    })
    .await;
    s.patch(&ca, &path, json!({"state": "enabled"})).await.expect(200);
    // Enabled again, the platform takes the waiting hosts.
    s.wait_for_request(&clerk, req, "fulfilled").await;
    let auditor = s.login("audit_admin").await;
    assert_eq!(s.all(&auditor, "/api/v1/audit?action=platform.set_state").await.len(), 2);
    s.stop().await;
}

/// The crash between a platform's create and Yunzhi's commit, as the
/// platform sees it: the resource is made, the answer never arrives. Every
/// create of this simulator loses every other answer; the retried job must
/// find what was made, not make it again.
async fn a_platform_that_loses_its_answers_still_ends_with_exactly_the_approved_resources(backend: Backend) {
    let faults = yunzhi_drivers::simulator::Faults { lost_answer_rate: 0.5, seed: 3, ..Default::default() };
    let settings = yunzhi_server::Settings {
        demo: true,
        simulator_faults: faults,
        job_retry_base: jiff::SignedDuration::from_millis(50),
        ..Default::default()
    };
    let s = TestServer::start(backend, settings).await;
    let clerk = s.login("unit1_user").await;
    let ca = s.login("cloud_admin").await;
    let system = s.approved_system(&clerk, "丢包测试系统", (64, 128, 2000), Some("青发改〔2026〕98号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let req = s.post(&clerk, "/api/v1/requests", common::ask(system, host, 5, "new")).await.expect(201).body
        ["id"]
        .as_i64()
        .unwrap();
    s.approve_three_levels(req).await;
    // Carried out despite the lost answers.
    s.wait_for_request(&clerk, req, "fulfilled").await;
    let resources = s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
    assert_eq!(resources.len(), 5);
    let platform: i64 = resources[0]["platform_id"].as_i64().unwrap();
    let driver = s.state().driver(yunzhi_domain::ids::PlatformId(platform)).await.unwrap();
    let mut remote = None;
    for _ in 0..20 {
        if let Ok(list) = driver.list().await {
            remote = Some(list);
            break;
        }
    }
    let remote = remote.expect("the platform lists its inventory");
    let mut expected: Vec<_> = resources.iter().map(|r| format!("yz-res-{}", r["id"])).collect();
    expected.sort();
    // The platform also runs the demo district's resources; these are the request's.
    let mut keys: Vec<_> = remote.iter().map(|r| r.key.clone()).filter(|k| expected.contains(k)).collect();
    keys.sort();
    assert_eq!(keys, expected, "exactly one platform resource per approved resource");
    let jobs = s.all(&ca, "/api/v1/jobs").await;
    let job = jobs.iter().find(|j| j["payload"]["request_id"] == req).unwrap();
    assert!(job["attempts"].as_i64().unwrap() > 1, "answers were lost and the job retried: {job}");
    // Every attempt is on record: the failed ones with what went wrong.
    let detail = s.get(&ca, &format!("/api/v1/jobs/{}", job["id"])).await.expect(200).body;
    let history = detail["history"].as_array().unwrap();
    assert_eq!(history.len() as i64, job["attempts"].as_i64().unwrap());
    assert_eq!(history.last().unwrap()["outcome"], "done");
    assert!(
        history.iter().any(|a| a["outcome"] == "failed" && a["error"].as_str().unwrap().contains("lost")),
        "{history:?}"
    );
    s.stop().await;
}

async fn job_where(s: &TestServer, token: &str, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(j) = s.all(token, path).await.into_iter().find(|j| pred(j)) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no job as expected at {path}");
}

async fn a_provisioning_without_room_shows_why_and_a_failed_job_is_retried_or_cancelled(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    // A host bigger than what is left on the x86 platform, three times over.
    let big = s
        .post(&ca, "/api/v1/catalog", json!({"code": "ecs.x86.huge", "kind": "cloud_host", "name": "超大主机", "name_en": "huge host",
            "arch": "x86_64", "vcpu": 512, "memory_gib": 4096, "disk_gib": 100, "images": ["openEuler 22.03 LTS SP4"]}))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let system =
        s.approved_system(&clerk, "大数据分析平台", (2048, 16384, 10000), Some("青发改〔2026〕99号")).await;
    let req = s.file_request(&clerk, common::ask(system, big, 3, "new")).await;
    s.approve_three_levels(req).await;
    let waiting = job_where(&s, &ca, "/api/v1/jobs?state=queued", |j| {
        j["payload"]["request_id"] == req
            && j["last_error"].as_str().is_some_and(|e| e.starts_with("no_capacity"))
    })
    .await;
    assert!(waiting["attempts"].as_i64().unwrap() >= 1);
    let r = s.get(&clerk, &format!("/api/v1/requests/{req}")).await.expect(200);
    assert_eq!(r.body["state"], "approved", "the request waits; nothing half-made");
    assert!(s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await.is_empty());
    let id = waiting["id"].as_i64().unwrap();
    let cancelled = s.post(&ca, &format!("/api/v1/jobs/{id}/cancel"), json!(null)).await.expect(200);
    assert_eq!(cancelled.body["state"], "cancelled");
    s.post(&ca, &format!("/api/v1/jobs/{id}/cancel"), json!(null)).await.expect(409);

    // A job that fails for good is listed as failed, and retried by hand.
    let store = Store::open(s.db_url()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let odd = NewJob {
        kind: "nonsense".into(),
        dedup_key: None,
        payload: json!({"request_id": 0}),
        run_at: Timestamp::now(),
        max_attempts: 1,
    };
    let queued = tx.enqueue_job(&odd, Timestamp::now()).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    let failed = job_where(&s, &ca, "/api/v1/jobs?state=failed", |j| j["id"] == json!(queued.id.0)).await;
    assert_eq!(failed["last_error"], "unknown job kind nonsense");
    let clerk_sees = s.get(&clerk, "/api/v1/jobs").await.expect(403);
    assert_eq!(clerk_sees.code(), "forbidden");
    let chief = s.login("infra_chief").await;
    s.get(&chief, "/api/v1/jobs").await.expect(200);
    s.post(&chief, &format!("/api/v1/jobs/{}/retry", queued.id.0), json!(null)).await.expect(403);
    let retried = s.post(&ca, &format!("/api/v1/jobs/{}/retry", queued.id.0), json!(null)).await.expect(200);
    assert_eq!(
        (retried.body["state"].as_str(), retried.body["attempts"].as_i64()),
        (Some("queued"), Some(0))
    );
    job_where(&s, &ca, "/api/v1/jobs?state=failed", |j| j["id"] == json!(queued.id.0) && j["attempts"] == 1)
        .await;
    let detail = s.get(&ca, &format!("/api/v1/jobs/{}", queued.id.0)).await.expect(200).body;
    let numbers: Vec<_> =
        detail["history"].as_array().unwrap().iter().map(|a| a["attempt"].clone()).collect();
    assert_eq!(numbers, [json!(1), json!(2)], "the history outlives a retry by hand: {detail}");
    let auditor = s.login("audit_admin").await;
    let trail = s.all(&auditor, "/api/v1/audit?object_type=job").await;
    let actions: Vec<_> = trail.iter().map(|r| r["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(actions, ["job.cancel", "job.retry"]);
    s.stop().await;
}
