//! The libvirt driver against libvirt's in-process test hypervisor.
//!
//! Each test describes its own node in a test-driver XML file (a pool named
//! `default`, a network, a base image and a domain Yunzhi did not make) and
//! connects with `test:///<file>`. The test hypervisor keeps its state in
//! the connection, so the second look at what the driver did goes through
//! the driver's own connection (`Libvirt::with_connection`).
#![cfg(feature = "libvirt")]

use std::path::PathBuf;

use virt::connect::Connect;
use yunzhi_drivers::libvirt::{Libvirt, LibvirtConfig};
use yunzhi_drivers::{CloudDriver, DriverError, RemoteState, ResourceKind, ResourceSpec};

const GIB: u64 = 1 << 30;
const BASE_IMAGE: &str = "/var/lib/libvirt/images/base.qcow2";

const NODE: &str = r#"<node>
  <cpu>
    <mhz>2400</mhz>
    <model>x86_64</model>
    <active>32</active>
    <nodes>1</nodes>
    <sockets>2</sockets>
    <cores>8</cores>
    <threads>2</threads>
  </cpu>
  <memory>134217728</memory>
  <domain type='test'>
    <name>legacy-erp</name>
    <memory unit='KiB'>2097152</memory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>
  <network>
    <name>default</name>
    <bridge name='virbr0'/>
    <forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'/>
  </network>
  <pool type='dir'>
    <name>default</name>
    <source/>
    <target><path>/var/lib/libvirt/images</path></target>
    <volume type='file'>
      <name>base.qcow2</name>
      <capacity unit='GiB'>10</capacity>
      <target><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
"#;

/// A driver on a fresh test node; keep the directory alive while it is used.
fn platform(extra: serde_json::Value) -> (tempfile::TempDir, Libvirt) {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("node.xml");
    std::fs::write(&file, NODE).unwrap();
    let mut config = serde_json::json!({
        "uri": format!("test://{}", file.display()),
        "arch": "x86_64",
        "domain_type": "test",
        "shutdown_timeout_secs": 2,
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let config: LibvirtConfig = serde_json::from_value(config).unwrap();
    let driver = Libvirt::new("test-node", config).unwrap();
    (dir, driver)
}

fn spec(key: &str, kind: ResourceKind, vcpu: u32, memory_gib: u32, storage_gib: u32) -> ResourceSpec {
    ResourceSpec {
        key: key.into(),
        name: format!("s3-r12-{key}"),
        kind,
        vcpu,
        memory_gib,
        storage_gib,
        image: Some("openEuler-22.03".into()),
    }
}

/// What the test hypervisor holds, seen through the virt API directly.
#[derive(Debug)]
struct Look {
    domains: Vec<String>,
    volumes: Vec<(String, u64)>,
}

async fn look(driver: &Libvirt) -> Look {
    driver
        .with_connection(|conn: &Connect| {
            let mut domains = Vec::new();
            for d in conn.list_all_domains(0)? {
                domains.push(d.name()?);
            }
            let pool = conn.lookup_storage_pool_by_name("default")?;
            let mut volumes = Vec::new();
            for v in pool.list_all_volumes(0)? {
                volumes.push((v.name()?, v.info()?.capacity));
            }
            domains.sort();
            volumes.sort();
            Ok(Look { domains, volumes })
        })
        .await
        .unwrap()
}

/// The domain's XML, `inactive` for its persistent definition.
async fn domain_xml(driver: &Libvirt, name: &str, inactive: bool) -> String {
    let name = name.to_owned();
    driver
        .with_connection(move |conn| {
            let flags = if inactive { virt::sys::VIR_DOMAIN_XML_INACTIVE } else { 0 };
            conn.lookup_domain_by_name(&name)?.xml_desc(flags)
        })
        .await
        .unwrap()
}

async fn live_vcpus(driver: &Libvirt, name: &str) -> u32 {
    let name = name.to_owned();
    driver
        .with_connection(move |conn| Ok(conn.lookup_domain_by_name(&name)?.info()?.nr_virt_cpu))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_host_runs_a_full_lifecycle_on_the_test_hypervisor() {
    let (_dir, lv) = platform(serde_json::json!({}));
    let made = lv.create(&spec("yz-res-1", ResourceKind::Host, 2, 4, 20)).await.unwrap();
    assert_eq!(
        (made.key.as_str(), made.kind, made.state),
        ("yz-res-1", ResourceKind::Host, RemoteState::Active)
    );
    assert_eq!((made.vcpu, made.memory_gib, made.storage_gib), (2, 4, 20));
    assert_eq!(lv.get("yz-res-1").await.unwrap(), Some(made.clone()));

    let xml = domain_xml(&lv, "yz-res-1", true).await;
    assert!(xml.contains("<title>s3-r12-yz-res-1</title>"), "{xml}");
    assert!(xml.contains("https://yunzhi.dev/xmlns/libvirt/1") && xml.contains("key=\"yz-res-1\""), "{xml}");
    assert!(xml.contains("<vcpu placement='static'>2</vcpu>"), "{xml}");
    assert!(xml.contains("<memory unit='KiB'>4194304</memory>"), "{xml}");
    assert!(xml.contains("<source pool='default' volume='yz-res-1-disk.qcow2'/>"), "{xml}");
    assert!(xml.contains("<source network='default'/>"), "{xml}");
    let seen = look(&lv).await;
    assert!(seen.domains.contains(&"yz-res-1".to_owned()), "{seen:?}");
    assert!(seen.volumes.contains(&("yz-res-1-disk.qcow2".to_owned(), 20 * GIB)), "{seen:?}");

    // A resize changes the definition; the running instance keeps its size
    // until the next start.
    let resized = lv.resize("yz-res-1", 4, 8, 20).await.unwrap();
    assert_eq!((resized.vcpu, resized.memory_gib, resized.state), (4, 8, RemoteState::Active));
    let xml = domain_xml(&lv, "yz-res-1", true).await;
    assert!(xml.contains(">4</vcpu>") && xml.contains("<memory unit='KiB'>8388608</memory>"), "{xml}");
    assert_eq!(live_vcpus(&lv, "yz-res-1").await, 2);
    assert_eq!(lv.resize("yz-res-1", 4, 8, 20).await.unwrap(), resized, "the same size again is a no-op");

    let stopped = lv.suspend("yz-res-1").await.unwrap();
    assert_eq!(stopped.state, RemoteState::Stopped);
    assert_eq!(lv.suspend("yz-res-1").await.unwrap(), stopped, "suspending a shut-off host is a no-op");

    let started = lv.resume("yz-res-1").await.unwrap();
    assert_eq!(started.state, RemoteState::Active);
    assert_eq!(live_vcpus(&lv, "yz-res-1").await, 4, "the new size applies from the next start");
    assert_eq!(lv.resume("yz-res-1").await.unwrap(), started, "resuming a running host is a no-op");

    lv.delete("yz-res-1").await.unwrap();
    assert_eq!(lv.get("yz-res-1").await.unwrap(), None);
    let seen = look(&lv).await;
    assert!(!seen.domains.iter().any(|d| d == "yz-res-1"), "{seen:?}");
    assert!(!seen.volumes.iter().any(|(v, _)| v.starts_with("yz-res-1")), "{seen:?}");
}

#[tokio::test]
async fn creating_the_same_key_twice_defines_one_domain() {
    let (_dir, lv) = platform(serde_json::json!({}));
    let a = lv.create(&spec("yz-res-2", ResourceKind::Host, 1, 2, 10)).await.unwrap();
    let b = lv.create(&spec("yz-res-2", ResourceKind::Host, 1, 2, 10)).await.unwrap();
    assert_eq!(a, b);
    let seen = look(&lv).await;
    assert_eq!(seen.domains.iter().filter(|d| *d == "yz-res-2").count(), 1, "{seen:?}");
    assert_eq!(seen.volumes.iter().filter(|(v, _)| v.starts_with("yz-res-2")).count(), 1, "{seen:?}");
}

#[tokio::test]
async fn a_retried_create_starts_the_host_an_interrupted_one_left_stopped() {
    let (_dir, lv) = platform(serde_json::json!({}));
    let made = lv.create(&spec("yz-res-3", ResourceKind::Host, 1, 2, 10)).await.unwrap();
    // As if the first attempt had defined the domain and died before starting it.
    lv.with_connection(|conn| conn.lookup_domain_by_name("yz-res-3")?.destroy()).await.unwrap();
    assert_eq!(lv.get("yz-res-3").await.unwrap().unwrap().state, RemoteState::Stopped);
    let again = lv.create(&spec("yz-res-3", ResourceKind::Host, 1, 2, 10)).await.unwrap();
    assert_eq!((again.remote_id, again.state), (made.remote_id, RemoteState::Active));
}

#[tokio::test]
async fn deleting_a_missing_resource_succeeds() {
    let (_dir, lv) = platform(serde_json::json!({}));
    lv.delete("yz-res-404").await.unwrap();
    assert_eq!(lv.get("yz-res-404").await.unwrap(), None);
    lv.create(&spec("yz-res-4", ResourceKind::Host, 1, 1, 5)).await.unwrap();
    lv.delete("yz-res-4").await.unwrap();
    lv.delete("yz-res-4").await.unwrap();
    assert!(matches!(lv.suspend("yz-res-404").await, Err(DriverError::NotFound(_))));
    assert!(matches!(lv.resize("yz-res-404", 1, 1, 1).await, Err(DriverError::NotFound(_))));
}

#[tokio::test]
async fn a_volume_is_created_found_listed_and_deleted() {
    let (_dir, lv) = platform(serde_json::json!({}));
    let vol = lv.create(&spec("yz-res-5", ResourceKind::Volume, 0, 0, 50)).await.unwrap();
    assert_eq!((vol.kind, vol.storage_gib, vol.state), (ResourceKind::Volume, 50, RemoteState::Active));
    assert_eq!(vol.remote_id, "/var/lib/libvirt/images/yz-res-5.qcow2");
    assert_eq!(lv.create(&spec("yz-res-5", ResourceKind::Volume, 0, 0, 50)).await.unwrap(), vol);
    assert_eq!(lv.get("yz-res-5").await.unwrap(), Some(vol.clone()));
    assert!(lv.list().await.unwrap().contains(&vol));
    assert!(look(&lv).await.volumes.contains(&("yz-res-5.qcow2".to_owned(), 50 * GIB)));
    assert_eq!(lv.suspend("yz-res-5").await.unwrap(), vol, "a volume has nothing to stop");
    assert_eq!(lv.resize("yz-res-5", 0, 0, 50).await.unwrap(), vol, "the same size again is a no-op");

    lv.delete("yz-res-5").await.unwrap();
    assert_eq!(lv.get("yz-res-5").await.unwrap(), None);
    assert!(!look(&lv).await.volumes.iter().any(|(v, _)| v.starts_with("yz-res-5")));
}

/// libvirt 9's test hypervisor has no `virStorageVolResize`; real pools do.
/// What a growth meets there is libvirt's own refusal, passed on for good.
#[tokio::test]
async fn growing_storage_where_the_hypervisor_cannot_is_refused_with_its_message() {
    let (_dir, lv) = platform(serde_json::json!({}));
    lv.create(&spec("yz-res-6", ResourceKind::Volume, 0, 0, 10)).await.unwrap();
    let e = lv.resize("yz-res-6", 0, 0, 20).await.unwrap_err();
    assert!(matches!(&e, DriverError::Rejected(m) if m.contains("virStorageVolResize")), "{e}");
    assert!(!e.is_transient());
    assert_eq!(lv.get("yz-res-6").await.unwrap().unwrap().storage_gib, 10);
}

#[tokio::test]
async fn shrinking_a_disk_is_refused() {
    let (_dir, lv) = platform(serde_json::json!({}));
    lv.create(&spec("yz-res-7", ResourceKind::Host, 2, 4, 20)).await.unwrap();
    let e = lv.resize("yz-res-7", 8, 16, 10).await.unwrap_err();
    assert!(matches!(&e, DriverError::Rejected(m) if m.contains("cannot shrink")), "{e}");
    let r = lv.get("yz-res-7").await.unwrap().unwrap();
    assert_eq!((r.vcpu, r.memory_gib, r.storage_gib), (2, 4, 20), "nothing was changed");

    lv.create(&spec("yz-res-8", ResourceKind::Volume, 0, 0, 20)).await.unwrap();
    assert!(matches!(lv.resize("yz-res-8", 0, 0, 5).await, Err(DriverError::Rejected(_))));
}

#[tokio::test]
async fn capacity_reports_the_node_and_pool() {
    let (_dir, lv) = platform(serde_json::json!({}));
    let before = lv.capacity().await.unwrap();
    assert_eq!((before.vcpu, before.memory_gib), (32, 128), "{before:?}");
    // The test hypervisor gives every pool 100 GiB whatever the node file says.
    assert_eq!(before.storage_gib, 100, "{before:?}");
    // The domain Yunzhi did not make and the base image count as used.
    assert_eq!((before.used_vcpu, before.used_memory_gib, before.used_storage_gib), (2, 2, 10), "{before:?}");

    lv.create(&spec("yz-res-9", ResourceKind::Host, 4, 8, 30)).await.unwrap();
    lv.create(&spec("yz-res-10", ResourceKind::Volume, 0, 0, 5)).await.unwrap();
    let after = lv.capacity().await.unwrap();
    assert_eq!((after.used_vcpu, after.used_memory_gib, after.used_storage_gib), (6, 10, 45), "{after:?}");
}

#[tokio::test]
async fn a_domain_not_made_by_yunzhi_is_listed_without_a_key() {
    let (_dir, lv) = platform(serde_json::json!({}));
    lv.create(&spec("yz-res-11", ResourceKind::Host, 1, 2, 10)).await.unwrap();
    lv.create(&spec("yz-res-12", ResourceKind::Volume, 0, 0, 3)).await.unwrap();
    let mut all = lv.list().await.unwrap();
    all.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<_> = all.iter().map(|r| (r.key.as_str(), r.kind)).collect();
    // The host's disk and the base image are not resources of their own.
    assert_eq!(
        keys,
        [("", ResourceKind::Host), ("yz-res-11", ResourceKind::Host), ("yz-res-12", ResourceKind::Volume)]
    );
    let foreign = &all[0];
    assert_eq!((foreign.vcpu, foreign.memory_gib, foreign.state), (2, 2, RemoteState::Active));
    assert!(!foreign.remote_id.is_empty());
}

#[tokio::test]
async fn a_host_disk_is_a_copy_of_the_base_image_grown_to_its_size() {
    let (_dir, lv) = platform(serde_json::json!({ "base_image": BASE_IMAGE, "network": null }));
    let made = lv.create(&spec("yz-res-13", ResourceKind::Host, 1, 2, 40)).await.unwrap();
    assert_eq!(made.storage_gib, 40);
    let xml = domain_xml(&lv, "yz-res-13", true).await;
    assert!(!xml.contains("<interface"), "no network configured: {xml}");
    assert!(look(&lv).await.volumes.contains(&("yz-res-13-disk.qcow2".to_owned(), 40 * GIB)));
}

#[tokio::test]
async fn a_libvirt_platform_provides_no_managed_services() {
    let (_dir, lv) = platform(serde_json::json!({}));
    let e = lv.create(&spec("yz-res-14", ResourceKind::Service, 0, 0, 0)).await.unwrap_err();
    assert!(matches!(e, DriverError::Rejected(_)) && !e.is_transient(), "{e}");
}

#[tokio::test]
async fn a_platform_that_cannot_be_reached_is_unavailable() {
    let config: LibvirtConfig =
        serde_json::from_value(serde_json::json!({ "uri": "test:///no/such/node.xml", "arch": "x86_64" }))
            .unwrap();
    let lv = Libvirt::new("gone", config).unwrap();
    let e = lv.list().await.unwrap_err();
    assert!(matches!(&e, DriverError::Unavailable(m) if m.contains("test:///no/such/node.xml")), "{e}");
    assert!(e.is_transient());
}
