//! What the platforms run against what Yunzhi records: the inventory pass
//! reports resources nobody asked for and resources that vanished, and
//! corrects states changed behind Yunzhi's back; suspend and resume go
//! through the platform as jobs; racing final approvals make exactly the
//! approved resources; an ARM system's hosts land on ARM platforms only.

mod common;

use common::{Backend, TestServer};
use serde_json::{Value, json};
use yunzhi_domain::ids::PlatformId;
use yunzhi_drivers::{RemoteState, ResourceKind, ResourceSpec};

on_both_backends!(
    the_inventory_pass_reports_orphans_and_missing_resources_and_corrects_states,
    suspend_and_resume_go_through_the_platform_as_jobs,
    five_racing_final_approvals_produce_exactly_the_approved_resources,
    an_arm_systems_hosts_land_only_on_arm_platforms,
    platform_credentials_are_sealed_and_never_shown,
    the_demo_hosts_are_used_as_their_profiles_say,
    a_host_is_resized_within_its_quota_through_its_platform,
);

/// Runs a reconciliation of `platform` and waits for its job to finish.
async fn reconcile(s: &TestServer, ca: &str, platform: i64) {
    let job = s.post(ca, &format!("/api/v1/platforms/{platform}/reconcile"), json!(null)).await.expect(202);
    s.wait_job(ca, &job.body["id"]).await;
}

/// The findings of the inventory pass (the efficiency analysis raises others,
/// such as hosts whose agent was never installed).
async fn inventory_findings(s: &TestServer, token: &str) -> Vec<Value> {
    let mut all = s.all(token, "/api/v1/findings?kind=orphan_resource").await;
    all.extend(s.all(token, "/api/v1/findings?kind=other").await);
    all
}

async fn resource_state(s: &TestServer, token: &str, id: i64) -> String {
    s.get(token, &format!("/api/v1/resources/{id}")).await.expect(200).body["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn the_inventory_pass_reports_orphans_and_missing_resources_and_corrects_states(backend: Backend) {
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    let x86 = s.all(&ca, "/api/v1/platforms").await.into_iter().find(|p| p["arch"] == "x86_64").unwrap();
    let pid = x86["id"].as_i64().unwrap();
    // A clean pass on the demo district finds nothing: the seeded resources
    // were made on the simulated platforms too.
    reconcile(&s, &ca, pid).await;
    assert_eq!(inventory_findings(&s, &ca).await, Vec::<Value>::new());
    // And the platform's own account of its capacity is kept beside the configured one.
    let after = s.get(&ca, &format!("/api/v1/platforms/{pid}")).await.expect(200).body;
    assert_eq!(after["reported"]["vcpu"], after["allocatable"]["vcpu"], "{after}");
    assert_eq!(
        after["reported"]["used_vcpu"], after["usage"]["vcpu"],
        "the simulator runs what Yunzhi recorded"
    );
    assert!(after["reported"]["at"].is_string());

    let mine: Vec<Value> = s
        .all(&clerk, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .filter(|r| r["platform_id"] == pid && r["kind"] == "cloud_host")
        .collect();
    assert!(mine.len() >= 2, "the demo gives unit 1 hosts on the x86 platform");
    let (gone, stopped) = (mine[0]["id"].as_i64().unwrap(), mine[1]["id"].as_i64().unwrap());
    // Behind Yunzhi's back: a host made by hand, one deleted, one stopped.
    let driver = s.state().driver(PlatformId(pid)).await.unwrap();
    let spec = ResourceSpec {
        key: String::new(),
        name: "legacy-erp".into(),
        kind: ResourceKind::Host,
        vcpu: 2,
        memory_gib: 4,
        storage_gib: 40,
        image: None,
    };
    let hand_made = driver.create(&ResourceSpec { key: "hand-made-1".into(), ..spec }).await.unwrap();
    driver.delete(&format!("yz-res-{gone}")).await.unwrap();
    driver.suspend(&format!("yz-res-{stopped}")).await.unwrap();

    reconcile(&s, &ca, pid).await;
    let findings = s.all(&ca, "/api/v1/findings?state=open").await;
    let orphans: Vec<_> = findings.iter().filter(|f| f["kind"] == "orphan_resource").collect();
    assert_eq!(orphans.len(), 1, "{findings:?}");
    assert_eq!(orphans[0]["evidence"]["remote_id"], json!(hand_made.remote_id));
    assert_eq!(orphans[0]["evidence"]["vcpu"], 2);
    assert_eq!(orphans[0]["platform_id"], pid);
    let missing: Vec<_> =
        findings.iter().filter(|f| f["evidence"]["problem"] == "missing_on_platform").collect();
    assert_eq!(missing.len(), 1, "{findings:?}");
    assert_eq!(
        (missing[0]["kind"].as_str(), missing[0]["resource_id"].as_i64()),
        (Some("other"), Some(gone))
    );
    // Stopped on the platform: Yunzhi now says so too, with an audit record.
    assert_eq!(resource_state(&s, &clerk, stopped).await, "suspended");
    let auditor = s.login("audit_admin").await;
    let corrections = s.all(&auditor, "/api/v1/audit?action=resource.reconcile").await;
    assert_eq!(corrections.len(), 1, "{corrections:?}");
    // The unit sees the finding about its own resource, not the platform's orphan.
    let seen: Vec<_> =
        inventory_findings(&s, &clerk).await.iter().map(|f| f["resource_id"].clone()).collect();
    assert_eq!(seen, [json!(gone)]);
    let other_unit = s.login("unit2_user").await;
    assert_eq!(inventory_findings(&s, &other_unit).await.len(), 0);
    let orphan_id = orphans[0]["id"].as_i64().unwrap();
    s.get(&clerk, &format!("/api/v1/findings/{orphan_id}")).await.expect(404);
    // The Big Data Center was told.
    let inbox = s.all(&ca, "/api/v1/notifications").await;
    assert!(inbox.iter().any(|n| n["kind"] == "finding.raised"), "{inbox:?}");

    // A second pass raises nothing twice; once the orphan is removed by
    // hand its finding is resolved.
    reconcile(&s, &ca, pid).await;
    assert_eq!(inventory_findings(&s, &ca).await.len(), 2);
    driver.delete("hand-made-1").await.unwrap();
    reconcile(&s, &ca, pid).await;
    let orphan = s.get(&ca, &format!("/api/v1/findings/{orphan_id}")).await.expect(200);
    assert_eq!(orphan.body["state"], "resolved");
    assert!(orphan.body["resolved_at"].is_string());
    s.stop().await;
}

async fn suspend_and_resume_go_through_the_platform_as_jobs(backend: Backend) {
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    let host = s
        .all(&clerk, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host")
        .unwrap();
    let (id, pid) = (host["id"].as_i64().unwrap(), host["platform_id"].as_i64().unwrap());
    let path = format!("/api/v1/resources/{id}/actions");
    let bad = s.post(&ca, &path, json!({"action": "reboot", "reason": "x"})).await.expect(422);
    assert_eq!(bad.body["errors"].as_array().unwrap().len(), 2, "action and reason named: {}", bad.body);
    s.post(&clerk, &path, json!({"action": "suspend", "reason": "安全整改"})).await.expect(403);
    s.post(&ca, &path, json!({"action": "resume", "reason": "安全整改"})).await.expect(409);

    let job = s.post(&ca, &path, json!({"action": "suspend", "reason": "安全整改"})).await.expect(202);
    assert_eq!(job.body["kind"], "suspend");
    s.wait_job(&ca, &job.body["id"]).await;
    assert_eq!(resource_state(&s, &clerk, id).await, "suspended");
    let driver = s.state().driver(PlatformId(pid)).await.unwrap();
    let remote = driver.get(&format!("yz-res-{id}")).await.unwrap().unwrap();
    assert_eq!(remote.state, RemoteState::Stopped, "the platform stopped it before Yunzhi said so");
    let inbox = s.all(&clerk, "/api/v1/notifications").await;
    assert!(
        inbox
            .iter()
            .any(|n| n["kind"] == "resource.suspended" && n["body"].as_str().unwrap().contains("安全整改"))
    );

    let job = s.post(&ca, &path, json!({"action": "resume", "reason": "整改完成"})).await.expect(202);
    s.wait_job(&ca, &job.body["id"]).await;
    assert_eq!(resource_state(&s, &clerk, id).await, "active");
    assert_eq!(driver.get(&format!("yz-res-{id}")).await.unwrap().unwrap().state, RemoteState::Active);
    s.stop().await;
}

async fn five_racing_final_approvals_produce_exactly_the_approved_resources(backend: Backend) {
    let s = TestServer::demo_quick_jobs(backend).await;
    let clerk = s.login("unit1_user").await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let system =
            s.approved_system(&clerk, &format!("并发审批系统{n}"), (16, 32, 800), Some("QP-2026-010")).await;
        let id = s.file_request(&clerk, common::ask(system, host, 2, "new")).await;
        s.decide("cloud_admin", id, "approve", "").await.expect(200);
        s.decide("infra_chief", id, "approve", "").await.expect(200);
        ids.push(id);
    }
    // Five final approvals at once, and each sent twice.
    let leader = s.login("bdc_leader").await;
    let body = json!({"decision": "approve", "comment": "同意"});
    let paths: Vec<String> =
        ids.iter().chain(ids.iter()).map(|id| format!("/api/v1/requests/{id}/decisions")).collect();
    let replies = common::join_all(paths.iter().map(|p| s.post(&leader, p, body.clone()))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 5, "one approval per request counts");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 409));
    for id in &ids {
        s.wait_for_request(&clerk, *id, "fulfilled").await;
    }
    let ca = s.login("cloud_admin").await;
    let ours: Vec<Value> = s
        .all(&ca, "/api/v1/resources")
        .await
        .into_iter()
        .filter(|r| ids.contains(&r["request_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(ours.len(), 10, "two hosts for each of five requests");
    // And the platforms made each exactly once.
    let mut made = 0;
    for p in s.all(&ca, "/api/v1/platforms").await {
        let driver = s.state().driver(PlatformId(p["id"].as_i64().unwrap())).await.unwrap();
        let list = driver.list().await.unwrap();
        for r in &ours {
            made += list.iter().filter(|x| x.key == format!("yz-res-{}", r["id"])).count();
        }
    }
    assert_eq!(made, 10);
    s.stop().await;
}

async fn an_arm_systems_hosts_land_only_on_arm_platforms(backend: Backend) {
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    // A second x86 platform, nearly empty: the least loaded overall, yet no place for ARM hosts.
    let body = json!({"name": "x86 二区", "arch": "x86_64", "driver": "simulator",
        "capacity": {"vcpu": 4096, "memory_gib": 16384, "storage_gib": 900000}});
    s.post(&ca, "/api/v1/platforms", body).await.expect(201);
    let body = json!({"name": "鲲鹏业务系统", "mlps_level": 2, "arch": "aarch64", "project_ref": "QP-2026-011",
        "quota": {"vcpu": 32, "memory_gib": 64, "storage_gib": 1000}, "quota_basis": "可研报告"});
    let system = s.post(&clerk, "/api/v1/systems", body).await.expect(201).body["id"].as_i64().unwrap();
    s.patch(&ca, &format!("/api/v1/systems/{system}"), json!({"state": "approved"})).await.expect(200);
    let host = s.catalog_id(&clerk, "ecs.arm.c4m8").await;
    let id = s.file_request(&clerk, common::ask(system, host, 3, "new")).await;
    s.approve_three_levels(id).await;
    s.wait_for_request(&clerk, id, "fulfilled").await;
    let platforms = s.all(&ca, "/api/v1/platforms").await;
    let arch_of = |pid: &Value| platforms.iter().find(|p| p["id"] == *pid).unwrap()["arch"].clone();
    let hosts = s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
    assert_eq!(hosts.len(), 3);
    for h in hosts {
        assert_eq!(arch_of(&h["platform_id"]), "aarch64", "{h}");
    }
    s.stop().await;
}

async fn platform_credentials_are_sealed_and_never_shown(backend: Backend) {
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let base = json!({"name": "OpenStack 一区", "arch": "x86_64", "driver": "openstack",
        "endpoint": "http://127.0.0.1:9/v3", "capacity": {"vcpu": 64, "memory_gib": 256, "storage_gib": 4000},
        "config": {"region": "RegionOne", "network_id": "net-1", "image_id": "img-1"}});
    let r = s.post(&ca, "/api/v1/platforms", base.clone()).await.expect(422);
    assert_eq!(r.body["field"], "credentials", "{}", r.body);
    let mut bad = base.clone();
    bad["credentials"] = json!({"type": "password", "username": "yunzhi"});
    let r = s.post(&ca, "/api/v1/platforms", bad).await.expect(422);
    assert_eq!(r.body["field"], "credentials", "a password credential without its password: {}", r.body);
    assert_eq!(s.all(&ca, "/api/v1/platforms").await.len(), 2, "a refused platform leaves nothing behind");

    let mut good = base;
    good["credentials"] =
        json!({"type": "application_credential", "id": "ac-1", "secret": "S3cret-never-shown"});
    let created = s.post(&ca, "/api/v1/platforms", good).await.expect(201);
    assert!(!created.body.to_string().contains("S3cret"), "{}", created.body);
    assert_eq!(created.body["has_credentials"], true);
    assert_eq!(created.body["config"]["region"], "RegionOne");
    let id = created.body["id"].as_i64().unwrap();
    let sealed = s.state().store.platform_credentials(PlatformId(id)).await.unwrap().unwrap();
    assert!(!sealed.contains("S3cret") && !sealed.contains("ac-1"), "sealed at rest: {sealed}");
    // Rotated: audited without the secret.
    let path = format!("/api/v1/platforms/{id}");
    let rotated =
        json!({"credentials": {"type": "application_credential", "id": "ac-2", "secret": "N3w-secret"}});
    s.patch(&ca, &path, rotated).await.expect(200);
    let auditor = s.login("audit_admin").await;
    let log = s.all(&auditor, "/api/v1/audit?action=platform.set_connection").await;
    assert_eq!(log.len(), 1);
    assert!(!serde_json::to_string(&log).unwrap().contains("N3w-secret"));
    assert_eq!(log[0]["after"]["credentials_changed"], true, "{log:?}");
    s.patch(&ca, &path, json!({})).await.expect(422);
    s.stop().await;
}

async fn the_demo_hosts_are_used_as_their_profiles_say(backend: Backend) {
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let systems = s.all(&ca, "/api/v1/systems").await;
    let id_of = |name: &str| systems.iter().find(|x| x["name"] == name).unwrap()["id"].clone();
    let host_of = async |name: &str| {
        let all = s.all(&ca, &format!("/api/v1/resources?system_id={}", id_of(name))).await;
        all.into_iter().find(|r| r["kind"] == "cloud_host").unwrap()
    };
    let at: jiff::Timestamp = "2026-11-26T10:00:00+08:00".parse().unwrap();
    let read = async |host: &Value| {
        let sim =
            s.state().drivers.simulator(PlatformId(host["platform_id"].as_i64().unwrap())).await.unwrap();
        sim.guest_sample(&format!("yz-res-{}", host["id"]), at).await.unwrap()
    };
    let zombie = read(&host_of("旧版行政审批系统").await).await;
    assert!(zombie.cpu_pct < 2.0 && zombie.logged_in_sessions == 0, "{zombie:?}");
    let busy = read(&host_of("区域卫生信息平台").await).await;
    assert!(busy.cpu_pct > 30.0, "{busy:?}");
    s.stop().await;
}

async fn a_host_is_resized_within_its_quota_through_its_platform(backend: Backend) {
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "规格调整系统", (8, 16, 400), Some("QP-2026-014")).await;
    let item = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let id = s.file_request(&clerk, common::ask(system, item, 2, "new")).await;
    s.approve_three_levels(id).await;
    s.wait_for_request(&clerk, id, "fulfilled").await;
    let hosts = s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
    let host = &hosts[0];
    let (rid, disk) = (host["id"].as_i64().unwrap(), host["storage_gib"].as_i64().unwrap());
    let path = format!("/api/v1/resources/{rid}/actions");
    let ask = |vcpu: i64, mem: i64, disk: i64| json!({"action": "resize", "reason": "业务增长", "size": {"vcpu": vcpu, "memory_gib": mem, "storage_gib": disk}});
    // Beyond the quota: an expansion's business, named with its article.
    let r = s.post(&ca, &path, ask(8, 8, disk)).await.expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["article"].as_u64()),
        (Some("size.vcpu"), Some(8)),
        "{}",
        r.body
    );
    let r = s.post(&ca, &path, ask(4, 8, disk - 1)).await.expect(422);
    assert_eq!(r.body["errors"][0]["code"], "cannot_shrink", "{}", r.body);
    s.post(&ca, &path, json!({"action": "resize", "reason": "业务增长"})).await.expect(422);
    s.post(&clerk, &path, ask(4, 8, disk)).await.expect(403);

    let job = s.post(&ca, &path, ask(4, 8, disk + 20)).await.expect(202).body;
    assert_eq!(job["kind"], "resize");
    s.wait_job(&ca, &job["id"]).await;
    let after = s.get(&clerk, &format!("/api/v1/resources/{rid}")).await.expect(200).body;
    assert_eq!((after["vcpu"].as_i64(), after["memory_gib"].as_i64()), (Some(4), Some(8)));
    assert_eq!(after["storage_gib"].as_i64(), Some(disk + 20));
    let driver = s.state().driver(PlatformId(after["platform_id"].as_i64().unwrap())).await.unwrap();
    let remote = driver.get(&format!("yz-res-{rid}")).await.unwrap().unwrap();
    assert_eq!((remote.vcpu, remote.memory_gib), (4, 8), "the platform resized it");
    let auditor = s.login("audit_admin").await;
    assert_eq!(s.all(&auditor, "/api/v1/audit?action=resource.resize").await.len(), 1);
    s.stop().await;
}
