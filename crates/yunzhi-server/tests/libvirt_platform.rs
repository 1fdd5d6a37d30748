//! A libvirt platform end to end, on libvirt's in-process test hypervisor:
//! approved hosts become domains named by their Yunzhi key, a suspend shuts
//! one off, the inventory pass reports the domain Yunzhi did not make, and a
//! reclaim removes exactly the named domain.
#![cfg(feature = "libvirt")]

mod common;

use common::{Backend, TestServer};
use serde_json::{Value, json};
use yunzhi_domain::ids::PlatformId;
use yunzhi_drivers::RemoteState;

on_both_backends!(hosts_live_their_whole_life_on_a_libvirt_platform);

/// A node with a storage pool named `default`, a network and one domain
/// that Yunzhi did not make.
const NODE: &str = r#"<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><active>32</active><nodes>1</nodes>
       <sockets>2</sockets><cores>8</cores><threads>2</threads></cpu>
  <memory>134217728</memory>
  <domain type='test'>
    <name>legacy-erp</name>
    <memory unit='KiB'>2097152</memory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
  <network><name>default</name><bridge name='virbr0'/><forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'/></network>
  <pool type='dir'><name>default</name><source/>
    <target><path>/var/lib/libvirt/images</path></target></pool>
</node>
"#;

async fn hosts_live_their_whole_life_on_a_libvirt_platform(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.xml");
    std::fs::write(&node, NODE).unwrap();
    let s = TestServer::demo_quick_jobs(backend).await;
    let ca = s.login("cloud_admin").await;
    let clerk = s.login("unit1_user").await;
    let body = json!({"name": "KVM 一区", "arch": "x86_64", "driver": "libvirt",
        "endpoint": format!("test://{}", node.display()),
        "capacity": {"vcpu": 32, "memory_gib": 128, "storage_gib": 100},
        "config": {"domain_type": "test", "storage_pool": "default", "network": "default", "shutdown_timeout_secs": 2}});
    let platform = s.post(&ca, "/api/v1/platforms", body).await.expect(201).body;
    let pid = platform["id"].as_i64().unwrap();
    let bad = json!({"config": {"domain_type": "test", "storage_pol": "default"}});
    let r = s.patch(&ca, &format!("/api/v1/platforms/{pid}"), bad).await.expect(422);
    assert_eq!(r.body["field"], "config", "a misspelt setting is named: {}", r.body);
    // Only the new platform takes new x86 hosts.
    s.drain_simulated_x86(&ca).await;
    let system = s.approved_system(&clerk, "区级KVM试点", (8, 16, 60), Some("QP-2026-015")).await;
    // The test hypervisor's pools hold 100 GiB: small hosts.
    let small = json!({"code": "ecs.x86.kvm2", "kind": "cloud_host", "name": "KVM 小型主机", "name_en": "small KVM host",
        "arch": "x86_64", "vcpu": 2, "memory_gib": 4, "disk_gib": 20, "images": ["openEuler 22.03 LTS SP4"]});
    let host = s.post(&ca, "/api/v1/catalog", small).await.expect(201).body["id"].as_i64().unwrap();
    let id = s.file_request(&clerk, common::ask(system, host, 2, "new")).await;
    s.approve_three_levels(id).await;
    s.wait_for_request(&clerk, id, "fulfilled").await;

    let resources = s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
    assert!(resources.iter().all(|r| r["platform_id"] == pid));
    let driver = s.state().driver(PlatformId(pid)).await.unwrap();
    let domains = driver.list().await.unwrap();
    let key = |r: &Value| format!("yz-res-{}", r["id"]);
    for r in &resources {
        let d = domains.iter().find(|d| d.key == key(r)).expect("a domain per host");
        assert_eq!((d.vcpu, d.memory_gib, d.state), (2, 4, RemoteState::Active));
    }

    let path = format!("/api/v1/resources/{}/actions", resources[0]["id"]);
    let job = s.post(&ca, &path, json!({"action": "suspend", "reason": "整改"})).await.expect(202).body;
    s.wait_job(&ca, &job["id"]).await;
    assert_eq!(driver.get(&key(&resources[0])).await.unwrap().unwrap().state, RemoteState::Stopped);

    let job = s.post(&ca, &format!("/api/v1/platforms/{pid}/reconcile"), json!(null)).await.expect(202).body;
    s.wait_job(&ca, &job["id"]).await;
    let findings = s.all(&ca, &format!("/api/v1/findings?platform_id={pid}&kind=orphan_resource")).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["kind"], "orphan_resource");
    assert_eq!(findings[0]["evidence"]["name"], "legacy-erp", "{findings:?}");

    let reclaim = json!({"kind": "reclaim", "system_id": system, "resource_ids": [resources[1]["id"]],
        "justification": "迁出", "backup_confirmed": true});
    let rid = s.file_request(&clerk, reclaim).await;
    s.decide("cloud_admin", rid, "approve", "已确认备份").await.expect(200);
    s.wait_for_request(&clerk, rid, "fulfilled").await;
    let left: Vec<String> = driver.list().await.unwrap().into_iter().map(|d| d.key).collect();
    assert!(left.contains(&key(&resources[0])) && !left.contains(&key(&resources[1])), "{left:?}");
    s.stop().await;
}
