//! The OpenStack driver against the stand-in cloud, asserting the exact
//! requests it sends. Shapes per the OpenStack API reference:
//! - <https://docs.openstack.org/api-ref/identity/v3/>
//! - <https://docs.openstack.org/api-ref/compute/>
//! - <https://docs.openstack.org/api-ref/block-storage/v3/>
//! - <https://docs.openstack.org/api-ref/placement/>

use serde_json::{Value, json};
use yunzhi_drivers::openstack::{OpenStack, OpenStackConfig, OpenStackCredentials};
use yunzhi_drivers::{CloudDriver, DriverError, RemoteState, ResourceKind, ResourceSpec};
use yunzhi_openstack_standin::{self as standin, Inventory, LostAnswer, Provider, Recorded, StandIn};

const NETWORK: &str = "7d1b2c3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const IMAGE: &str = "3f2e1d0c-b9a8-4765-8432-10fedcba9876";

fn config_json(s: &StandIn) -> Value {
    json!({
        "auth_url": s.auth_url(),
        "region": "RegionOne",
        "project_name": standin::PROJECT_NAME,
        "network_id": NETWORK,
        "image_id": IMAGE,
    })
}

fn config(s: &StandIn) -> OpenStackConfig {
    serde_json::from_value(config_json(s)).unwrap()
}

fn password() -> OpenStackCredentials {
    serde_json::from_value(
        json!({"type": "password", "username": standin::USERNAME, "password": standin::PASSWORD}),
    )
    .unwrap()
}

fn driver(s: &StandIn) -> OpenStack {
    OpenStack::new("district-os", config(s), password()).unwrap()
}

fn host(key: &str, vcpu: u32, memory_gib: u32, storage_gib: u32) -> ResourceSpec {
    ResourceSpec {
        key: key.into(),
        name: format!("s3-{key}-ecs"),
        kind: ResourceKind::Host,
        vcpu,
        memory_gib,
        storage_gib,
        image: None,
    }
}

fn volume(key: &str, storage_gib: u32) -> ResourceSpec {
    ResourceSpec { kind: ResourceKind::Volume, vcpu: 0, memory_gib: 0, ..host(key, 0, 0, storage_gib) }
}

/// The requests other than Keystone's, as "METHOD path-without-query",
/// with the region/interface prefix cut for readability.
fn calls(s: &StandIn) -> Vec<String> {
    s.requests()
        .iter()
        .filter(|r| !r.path.starts_with("/identity"))
        .map(|r| format!("{} {}", r.method, r.path_only().replacen("/RegionOne/public", "", 1)))
        .collect()
}

fn tokens_issued(s: &StandIn) -> usize {
    s.requests().iter().filter(|r| r.method == "POST" && r.path == "/identity/v3/auth/tokens").count()
}

fn find<'a>(rs: &'a [Recorded], method: &str, path_end: &str) -> Vec<&'a Recorded> {
    rs.iter().filter(|r| r.method == method && r.path_only().ends_with(path_end)).collect()
}

#[tokio::test]
async fn password_authentication_sends_the_documented_body_scoped_to_the_project() {
    let s = StandIn::start().await;
    driver(&s).list().await.unwrap();
    let auth = &s.requests()[0];
    assert_eq!((auth.method.as_str(), auth.path.as_str()), ("POST", "/identity/v3/auth/tokens"));
    assert_eq!(
        auth.body.as_ref().unwrap(),
        &json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "yunzhi", "domain": {"name": "Default"}, "password": standin::PASSWORD}}},
            "scope": {"project": {"name": "yunzhi-prod", "domain": {"name": "Default"}}},
        }})
    );
    assert!(auth.header("x-auth-token").is_none());
}

#[tokio::test]
async fn application_credential_authentication_sends_id_and_secret_without_a_scope() {
    let s = StandIn::start().await;
    let mut cfg = config_json(&s);
    cfg.as_object_mut().unwrap().remove("project_name");
    let creds: OpenStackCredentials = serde_json::from_value(json!({
        "type": "application_credential", "id": standin::APP_CREDENTIAL_ID, "secret": standin::APP_CREDENTIAL_SECRET,
    }))
    .unwrap();
    let os = OpenStack::new("district-os", serde_json::from_value(cfg).unwrap(), creds).unwrap();
    os.list().await.unwrap();
    assert_eq!(
        s.requests()[0].body.as_ref().unwrap(),
        &json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
            "id": standin::APP_CREDENTIAL_ID, "secret": standin::APP_CREDENTIAL_SECRET}}}})
    );
}

#[tokio::test]
async fn wrong_credentials_are_rejected_for_good() {
    let s = StandIn::start().await;
    let creds = OpenStackCredentials::Password { username: "yunzhi".into(), password: "wrong".into() };
    let e = OpenStack::new("district-os", config(&s), creds).unwrap().list().await.unwrap_err();
    assert!(matches!(e, DriverError::Rejected(ref m) if m.contains("Keystone refused")), "{e}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn password_authentication_without_a_project_is_refused_at_construction() {
    let s = StandIn::start().await;
    let mut cfg = config_json(&s);
    cfg.as_object_mut().unwrap().remove("project_name");
    let e = OpenStack::new("district-os", serde_json::from_value(cfg).unwrap(), password()).err().unwrap();
    assert!(matches!(e, DriverError::Rejected(ref m) if m.contains("project_name")), "{e}");
}

#[tokio::test]
async fn one_token_serves_many_calls_and_every_call_carries_it() {
    let s = StandIn::start().await;
    let os = driver(&s);
    os.list().await.unwrap();
    os.capacity().await.unwrap();
    os.get("yz-res-1").await.unwrap();
    assert_eq!(tokens_issued(&s), 1);
    let rs = s.requests();
    assert!(rs[1..].iter().all(|r| r.header("x-auth-token") == Some("gAAAAAstandin000001")), "{rs:#?}");
}

#[tokio::test]
async fn a_token_close_to_its_expiry_is_renewed_before_the_next_call() {
    let s = StandIn::start().await;
    // A minute's lifetime is inside the renewal margin from the start, so
    // every call asks for a new token before using it, and none is refused.
    s.set_token_lifetime(60);
    driver(&s).list().await.unwrap();
    let rs = s.requests();
    let order: Vec<&str> = rs.iter().map(|r| r.method.as_str()).collect();
    // Keystone, servers, Keystone, volumes.
    assert_eq!(order, ["POST", "GET", "POST", "GET"]);
    assert_eq!(rs[1].header("x-auth-token"), Some("gAAAAAstandin000001"));
    assert_eq!(rs[3].header("x-auth-token"), Some("gAAAAAstandin000002"));
}

#[tokio::test]
async fn a_token_refused_with_401_is_renewed_once_and_the_call_repeated() {
    let s = StandIn::start().await;
    let os = driver(&s);
    os.get("yz-res-1").await.unwrap();
    s.expire_tokens();
    s.clear_requests();
    assert_eq!(os.get("yz-res-1").await.unwrap(), None);
    let rs = s.requests();
    let order: Vec<String> = rs.iter().map(|r| format!("{} {}", r.method, r.path_only())).collect();
    assert_eq!(
        order,
        [
            "GET /RegionOne/public/compute/v2.1/servers/detail",
            "POST /identity/v3/auth/tokens",
            "GET /RegionOne/public/compute/v2.1/servers/detail",
            &format!("GET /RegionOne/public/volume/v3/{}/volumes/detail", standin::PROJECT_ID),
        ]
    );
    assert_eq!(rs[0].header("x-auth-token"), Some("gAAAAAstandin000001"));
    assert_eq!(rs[2].header("x-auth-token"), Some("gAAAAAstandin000002"));
}

#[tokio::test]
async fn the_catalog_endpoint_is_chosen_by_region_and_interface() {
    let s = StandIn::start().await;
    let mut cfg = config_json(&s);
    cfg["region"] = json!("RegionTwo");
    cfg["interface"] = json!("internal");
    let os = OpenStack::new("district-os", serde_json::from_value(cfg).unwrap(), password()).unwrap();
    os.list().await.unwrap();
    os.capacity().await.unwrap();
    let paths: Vec<String> = s
        .requests()
        .iter()
        .skip(1)
        .map(|r| r.path_only().split('/').take(4).collect::<Vec<_>>().join("/"))
        .collect();
    assert!(paths.iter().all(|p| p.starts_with("/RegionTwo/internal/")), "{paths:?}");
    assert!(paths.contains(&"/RegionTwo/internal/compute".to_owned()));
    assert!(paths.contains(&"/RegionTwo/internal/volume".to_owned()));
    assert!(paths.contains(&"/RegionTwo/internal/placement".to_owned()));
}

#[tokio::test]
async fn a_service_missing_from_the_catalog_is_a_clear_rejection() {
    let s = StandIn::start().await;
    s.hide_service("placement");
    let e = driver(&s).capacity().await.unwrap_err();
    assert!(matches!(e, DriverError::Rejected(ref m) if m.contains("no placement service")), "{e}");

    let mut cfg = config_json(&s);
    cfg["region"] = json!("RegionNine");
    let e = OpenStack::new("district-os", serde_json::from_value(cfg).unwrap(), password())
        .unwrap()
        .list()
        .await
        .unwrap_err();
    assert!(
        matches!(e, DriverError::Rejected(ref m) if m.contains("no compute (Nova) endpoint in region RegionNine at interface public")),
        "{e}"
    );
}

#[tokio::test]
async fn every_call_names_its_microversion() {
    let s = StandIn::start().await;
    let os = driver(&s);
    os.create(&host("yz-res-1", 2, 4, 10)).await.unwrap();
    os.capacity().await.unwrap();
    for r in s.requests().iter().filter(|r| !r.path.starts_with("/identity")) {
        let v = r.header("openstack-api-version");
        if r.path.contains("/compute/") {
            assert_eq!(v, Some("compute 2.60"), "{r:?}");
            assert_eq!(r.header("x-openstack-nova-api-version"), Some("2.60"), "{r:?}");
        } else if r.path.contains("/volume/") {
            assert_eq!(v, Some("volume 3.42"), "{r:?}");
        } else {
            assert_eq!(v, Some("placement 1.14"), "{r:?}");
        }
    }
}

#[tokio::test]
async fn a_host_lives_through_create_get_resize_suspend_resume_and_delete() {
    let s = StandIn::start().await;
    let os = driver(&s);

    let made = os.create(&host("yz-res-7", 2, 4, 50)).await.unwrap();
    assert_eq!(
        (made.kind, made.state, made.vcpu, made.memory_gib, made.storage_gib),
        (ResourceKind::Host, RemoteState::Active, 2, 4, 50)
    );
    assert_eq!(made.key, "yz-res-7");
    let rs = s.requests();
    let create = find(&rs, "POST", "/compute/v2.1/servers")[0];
    assert_eq!(
        create.body.as_ref().unwrap(),
        &json!({"server": {"name": "s3-yz-res-7-ecs", "flavorRef": "3", "imageRef": IMAGE,
                "networks": [{"uuid": NETWORK}], "metadata": {"yunzhi_key": "yz-res-7"}}})
    );
    let vol = find(&rs, "POST", "/volumes")[0];
    assert_eq!(
        vol.body.as_ref().unwrap(),
        &json!({"volume": {"size": 50, "name": "s3-yz-res-7-ecs-data", "metadata": {"yunzhi_key": "yz-res-7"}}})
    );
    let volume_id = s.volumes()[0].id.clone();
    let attach = find(&rs, "POST", "/os-volume_attachments")[0];
    assert_eq!(
        attach.path_only(),
        format!("/RegionOne/public/compute/v2.1/servers/{}/os-volume_attachments", made.remote_id)
    );
    assert_eq!(attach.body.as_ref().unwrap(), &json!({"volumeAttachment": {"volumeId": volume_id}}));
    assert_eq!(s.volumes()[0].attached_to.as_deref(), Some(made.remote_id.as_str()));

    assert_eq!(os.get("yz-res-7").await.unwrap(), Some(made.clone()));

    s.clear_requests();
    let bigger = os.resize("yz-res-7", 4, 16, 80).await.unwrap();
    assert_eq!((bigger.vcpu, bigger.memory_gib, bigger.storage_gib), (4, 16, 80));
    let rs = s.requests();
    let actions: Vec<&Value> =
        find(&rs, "POST", "/action").iter().map(|r| r.body.as_ref().unwrap()).collect();
    assert_eq!(
        actions,
        [
            &json!({"resize": {"flavorRef": "c4m16"}}),
            &json!({"confirmResize": null}),
            &json!({"os-extend": {"new_size": 80}})
        ]
    );
    assert_eq!(s.servers()[0].flavor.name, "c1.4x16");

    s.clear_requests();
    let stopped = os.suspend("yz-res-7").await.unwrap();
    assert_eq!(stopped.state, RemoteState::Stopped);
    assert_eq!(os.suspend("yz-res-7").await.unwrap().state, RemoteState::Stopped);
    let rs = s.requests();
    let stops = find(&rs, "POST", "/action");
    assert_eq!(stops.len(), 1, "a stopped server is not stopped again");
    assert_eq!(stops[0].body.as_ref().unwrap(), &json!({"os-stop": null}));

    let started = os.resume("yz-res-7").await.unwrap();
    assert_eq!(started.state, RemoteState::Active);
    assert_eq!(s.servers()[0].status, "ACTIVE");

    s.clear_requests();
    os.delete("yz-res-7").await.unwrap();
    assert!(s.servers().is_empty() && s.volumes().is_empty());
    let deletes: Vec<String> = calls(&s).into_iter().filter(|c| c.starts_with("DELETE")).collect();
    assert_eq!(
        deletes,
        [
            format!("DELETE /compute/v2.1/servers/{}", made.remote_id),
            format!("DELETE /volume/v3/{}/volumes/{volume_id}", standin::PROJECT_ID),
        ]
    );
    os.delete("yz-res-7").await.unwrap();
    assert_eq!(os.get("yz-res-7").await.unwrap(), None);
}

#[tokio::test]
async fn resizing_to_the_same_size_changes_nothing() {
    let s = StandIn::start().await;
    let os = driver(&s);
    os.create(&host("yz-res-8", 1, 2, 0)).await.unwrap();
    s.clear_requests();
    let same = os.resize("yz-res-8", 1, 2, 0).await.unwrap();
    assert_eq!((same.vcpu, same.memory_gib), (1, 2));
    assert!(calls(&s).iter().all(|c| c.starts_with("GET")), "{:?}", calls(&s));
}

#[tokio::test]
async fn a_volume_is_created_extended_never_shrunk_and_deleted() {
    let s = StandIn::start().await;
    let os = driver(&s);
    let v = os.create(&volume("yz-res-9", 100)).await.unwrap();
    assert_eq!((v.kind, v.storage_gib, v.vcpu), (ResourceKind::Volume, 100, 0));
    assert!(s.servers().is_empty());
    let rs = s.requests();
    let created = find(&rs, "POST", "/volumes");
    assert_eq!(
        created[0].path_only(),
        format!("/RegionOne/public/volume/v3/{}/volumes", standin::PROJECT_ID)
    );
    assert_eq!(
        created[0].body.as_ref().unwrap(),
        &json!({"volume": {"size": 100, "name": "s3-yz-res-9-ecs", "metadata": {"yunzhi_key": "yz-res-9"}}})
    );

    let grown = os.resize("yz-res-9", 0, 0, 150).await.unwrap();
    assert_eq!(grown.storage_gib, 150);
    let rs = s.requests();
    assert_eq!(
        find(&rs, "POST", "/action")[0].body.as_ref().unwrap(),
        &json!({"os-extend": {"new_size": 150}})
    );

    let e = os.resize("yz-res-9", 0, 0, 120).await.unwrap_err();
    assert!(matches!(e, DriverError::Rejected(ref m) if m.contains("cannot shrink")), "{e}");
    assert_eq!(s.volumes()[0].size, 150);

    assert_eq!(os.list().await.unwrap(), vec![grown.clone()]);
    os.delete("yz-res-9").await.unwrap();
    assert!(s.volumes().is_empty());
    os.delete("yz-res-9").await.unwrap();
}

#[tokio::test]
async fn a_volume_type_from_the_config_is_asked_for() {
    let s = StandIn::start().await;
    let mut cfg = config_json(&s);
    cfg["volume_type"] = json!("ssd");
    let os = OpenStack::new("district-os", serde_json::from_value(cfg).unwrap(), password()).unwrap();
    os.create(&volume("yz-res-10", 10)).await.unwrap();
    assert_eq!(s.volumes()[0].volume_type.as_deref(), Some("ssd"));
    let rs = s.requests();
    assert_eq!(find(&rs, "POST", "/volumes")[0].body.as_ref().unwrap()["volume"]["volume_type"], "ssd");
}

#[tokio::test]
async fn a_retried_create_after_a_lost_answer_makes_one_server() {
    for how in [LostAnswer::DroppedConnection, LostAnswer::ServiceUnavailable] {
        let s = StandIn::start().await;
        let os = driver(&s);
        s.lose_next_create_answer_with(how);
        let e = os.create(&host("yz-res-11", 2, 4, 0)).await.unwrap_err();
        assert!(matches!(e, DriverError::Unavailable(_)) && e.is_transient(), "{how:?}: {e}");
        assert_eq!(s.servers().len(), 1, "{how:?}: the cloud made it");

        let again = os.create(&host("yz-res-11", 2, 4, 0)).await.unwrap();
        assert_eq!(s.servers().len(), 1, "{how:?}: the retry found it");
        assert_eq!(again.remote_id, s.servers()[0].id);
        assert_eq!(find(&s.requests(), "POST", "/compute/v2.1/servers").len(), 1);
    }
}

#[tokio::test]
async fn a_retried_create_after_a_lost_volume_answer_makes_one_volume() {
    let s = StandIn::start().await;
    let os = driver(&s);
    s.lose_next_create_answer();
    os.create(&volume("yz-res-12", 20)).await.unwrap_err();
    let v = os.create(&volume("yz-res-12", 20)).await.unwrap();
    assert_eq!(s.volumes().len(), 1);
    assert_eq!(v.remote_id, s.volumes()[0].id);
}

#[tokio::test]
async fn a_503_is_unavailable_and_worth_retrying() {
    let s = StandIn::start().await;
    let os = driver(&s);
    os.list().await.unwrap();
    s.fail_next(1);
    let e = os.create(&host("yz-res-13", 1, 1, 0)).await.unwrap_err();
    assert!(matches!(e, DriverError::Unavailable(ref m) if m.contains("503")), "{e}");
    assert!(e.is_transient());
    assert!(s.servers().is_empty());
    os.create(&host("yz-res-13", 1, 1, 0)).await.unwrap();
    assert_eq!(s.servers().len(), 1);
}

#[tokio::test]
async fn a_host_bigger_than_every_flavor_is_rejected_with_a_clear_error() {
    let s = StandIn::start().await;
    let e = driver(&s).create(&host("yz-res-14", 64, 512, 0)).await.unwrap_err();
    assert!(
        matches!(e, DriverError::Rejected(ref m)
            if m.contains("no flavor has at least 64 vCPU and 512 GiB memory") && m.contains("m1.xlarge")),
        "{e}"
    );
    assert!(s.servers().is_empty());
}

#[tokio::test]
async fn a_full_cloud_answers_no_capacity_and_leaves_no_failed_server() {
    let s = StandIn::start().await;
    let inv = |total, allocation_ratio| Inventory { total, reserved: 0, allocation_ratio };
    s.set_providers(vec![Provider {
        uuid: "11111111-2222-4333-8444-555555555555".into(),
        name: "small".into(),
        vcpu: inv(2, 1.0),
        memory_mb: inv(8192, 1.0),
        disk_gb: inv(200, 1.0),
    }]);
    let e = driver(&s).create(&host("yz-res-15", 4, 8, 0)).await.unwrap_err();
    assert!(matches!(e, DriverError::NoCapacity(ref m) if m.contains("No valid host")), "{e}");
    assert!(s.servers().is_empty(), "the server in ERROR was removed");
}

#[tokio::test]
async fn a_managed_service_is_rejected_for_good() {
    let s = StandIn::start().await;
    let spec = ResourceSpec { kind: ResourceKind::Service, ..host("yz-res-16", 0, 0, 100) };
    let e = driver(&s).create(&spec).await.unwrap_err();
    assert!(
        matches!(e, DriverError::Rejected(ref m) if m.contains("do not provide managed services")),
        "{e}"
    );
    assert!(s.requests().is_empty(), "nothing was asked of the cloud");
}

#[tokio::test]
async fn capacity_comes_from_placement_with_allocation_ratio_and_reserved() {
    let s = StandIn::start().await;
    let os = driver(&s);
    os.create(&host("yz-res-17", 2, 4, 0)).await.unwrap();
    let c = os.capacity().await.unwrap();
    // Two providers: 32 vCPU x 4.0; (131072 - 4096) MiB; 2000 - 100 GiB.
    assert_eq!((c.vcpu, c.memory_gib, c.storage_gib), (256, 248, 3800));
    // m1.medium: 2 vCPU, 4096 MiB, 40 GiB root disk.
    assert_eq!((c.used_vcpu, c.used_memory_gib, c.used_storage_gib), (2, 4, 40));
    let placement: Vec<String> = calls(&s).into_iter().filter(|c| c.contains("/placement/")).collect();
    let p1 = &s.providers()[0].uuid;
    assert_eq!(placement[0], "GET /placement/resource_providers");
    assert_eq!(placement[1], format!("GET /placement/resource_providers/{p1}/inventories"));
    assert_eq!(placement[2], format!("GET /placement/resource_providers/{p1}/usages"));
    assert_eq!(placement.len(), 5);
}

#[tokio::test]
async fn list_includes_a_server_without_a_key_as_an_orphan() {
    let s = StandIn::start().await;
    let os = driver(&s);
    let ours = os.create(&host("yz-res-18", 1, 2, 0)).await.unwrap();
    let orphan = s.add_server("made-in-the-console", "4", &[]);
    let listed = os.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&ours));
    let o = listed.iter().find(|r| r.remote_id == orphan).unwrap();
    assert_eq!((o.key.as_str(), o.kind, o.vcpu, o.memory_gib), ("", ResourceKind::Host, 4, 8));
}

#[tokio::test]
async fn a_server_renamed_in_the_console_is_still_found_by_its_key() {
    let s = StandIn::start().await;
    let os = driver(&s);
    s.add_server("renamed-by-an-operator", "2", &[("yunzhi_key", "yz-res-19")]);
    let found = os.create(&host("yz-res-19", 1, 2, 0)).await.unwrap();
    assert_eq!(s.servers().len(), 1);
    assert_eq!(found.remote_id, s.servers()[0].id);
}

#[test]
fn the_stand_in_starts_from_synchronous_code_and_a_driver_uses_it_from_another_runtime() {
    let s = StandIn::start_blocking();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listed = rt.block_on(driver(&s).list()).unwrap();
    assert!(listed.is_empty());
}

#[test]
fn config_and_credentials_read_from_json_with_their_defaults() {
    let cfg: OpenStackConfig = serde_json::from_value(json!({
        "auth_url": "https://keystone.district.gov.cn:5000/v3", "region": "RegionOne",
        "project_name": "yunzhi", "network_id": NETWORK, "image_id": IMAGE,
    }))
    .unwrap();
    assert_eq!(cfg.interface, "public");
    assert_eq!((cfg.project_domain.as_str(), cfg.user_domain.as_str()), ("Default", "Default"));
    assert_eq!((cfg.request_timeout_secs, cfg.volume_type.as_deref()), (30, None));
    let typo = serde_json::from_value::<OpenStackConfig>(json!({
        "auth_url": "x", "region": "r", "network_id": "n", "image_id": "i", "regoin": "oops"}));
    assert!(typo.is_err(), "unknown fields are refused");
    let creds: OpenStackCredentials =
        serde_json::from_value(json!({"type": "application_credential", "id": "abc", "secret": "xyz"}))
            .unwrap();
    assert!(!format!("{creds:?}").contains("xyz"), "secrets stay out of Debug");
}
