//! An OpenStack platform end to end, against the OpenStack stand-in: the
//! Big Data Center adds it with sealed credentials, approved hosts are made
//! as Nova servers tagged with their Yunzhi key, suspended and resumed as
//! jobs, a server made by hand in the OpenStack console is reported as an
//! orphan, and a reclaim deletes exactly the named servers.

mod common;

use common::{Backend, TestServer};
use serde_json::json;
use yunzhi_openstack_standin::{APP_CREDENTIAL_ID, APP_CREDENTIAL_SECRET, StandIn};

on_both_backends!(hosts_live_their_whole_life_on_an_openstack_platform);

async fn hosts_live_their_whole_life_on_an_openstack_platform(backend: Backend) {
    let cloud = StandIn::start().await;
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    let body = json!({"name": "OpenStack 政务云一区", "arch": "x86_64", "driver": "openstack",
        "endpoint": cloud.auth_url(), "capacity": {"vcpu": 64, "memory_gib": 256, "storage_gib": 4000},
        "overcommit": {"cpu": 4.0, "memory": 1.0},
        "config": {"region": "RegionOne", "network_id": "net-egov", "image_id": "img-openeuler"},
        "credentials": {"type": "application_credential", "id": APP_CREDENTIAL_ID, "secret": APP_CREDENTIAL_SECRET}});
    let platform = s.post(&ca, "/api/v1/platforms", body).await.expect(201).body;
    let pid = platform["id"].clone();
    // Only the new platform takes new x86 hosts.
    s.drain_simulated_x86(&ca).await;
    let system = s.approved_system(&clerk, "社保查询（OpenStack）", (16, 32, 800), Some("QP-2026-012")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let id = s.file_request(&clerk, common::ask(system, host, 3, "new")).await;
    s.approve_three_levels(id).await;
    s.wait_for_request(&clerk, id, "fulfilled").await;

    let resources = s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
    assert_eq!(resources.len(), 3);
    let servers = cloud.servers();
    assert_eq!(servers.len(), 3, "one Nova server per approved host");
    for r in &resources {
        assert_eq!(r["platform_id"], pid);
        let key = format!("yz-res-{}", r["id"]);
        let server = servers.iter().find(|sv| sv.metadata.get("yunzhi_key") == Some(&key)).expect("tagged");
        assert_eq!(r["remote_id"], json!(server.id));
        assert_eq!((server.flavor.vcpus, server.flavor.ram), (2, 4096));
        assert_eq!(server.name, r["name"].as_str().unwrap());
    }
    // Every call the platform saw was signed in with the application credential.
    let auth = cloud.requests().into_iter().find(|q| q.path_only() == "/identity/v3/auth/tokens").unwrap();
    let body = auth.body.expect("a sign-in body");
    assert_eq!(body["auth"]["identity"]["methods"], json!(["application_credential"]));

    // Suspend and resume, as jobs, through Nova.
    let first = resources[0]["id"].as_i64().unwrap();
    let first_server = resources[0]["remote_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/resources/{first}/actions");
    let job = s.post(&ca, &path, json!({"action": "suspend", "reason": "整改"})).await.expect(202).body;
    s.wait_job(&ca, &job["id"]).await;
    let status =
        |cloud: &StandIn| cloud.servers().into_iter().find(|sv| sv.id == first_server).unwrap().status;
    assert_eq!(status(&cloud), "SHUTOFF");
    let job = s.post(&ca, &path, json!({"action": "resume", "reason": "整改完成"})).await.expect(202).body;
    s.wait_job(&ca, &job["id"]).await;
    assert_eq!(status(&cloud), "ACTIVE");

    // A server made by hand in the OpenStack console is an orphan.
    let hand_made = cloud.add_server("legacy-oa", "3", &[]);
    let job = s.post(&ca, &format!("/api/v1/platforms/{pid}/reconcile"), json!(null)).await.expect(202).body;
    s.wait_job(&ca, &job["id"]).await;
    let findings = s.all(&ca, &format!("/api/v1/findings?platform_id={pid}&kind=orphan_resource")).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["evidence"]["name"], "legacy-oa", "the name the console shows: {findings:?}");
    assert_eq!(
        (findings[0]["kind"].as_str(), findings[0]["evidence"]["remote_id"].as_str()),
        (Some("orphan_resource"), Some(hand_made.as_str()))
    );

    // A reclaim deletes exactly the servers it names.
    let named = [resources[1]["id"].clone(), resources[2]["id"].clone()];
    let reclaim = json!({"kind": "reclaim", "system_id": system, "resource_ids": named,
        "justification": "系统迁移完成", "backup_confirmed": true});
    let rid = s.file_request(&clerk, reclaim).await;
    s.decide("cloud_admin", rid, "approve", "已确认备份").await.expect(200);
    s.wait_for_request(&clerk, rid, "fulfilled").await;
    let left: Vec<String> = cloud.servers().into_iter().map(|sv| sv.id).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&first_server) && left.contains(&hand_made));
    assert!(
        cloud.volumes().iter().all(|v| {
            let key = v.metadata.get("yunzhi_key").cloned().unwrap_or_default();
            key.is_empty() || key == format!("yz-res-{first}")
        }),
        "the reclaimed hosts' volumes went with them"
    );
    s.stop().await;
}
