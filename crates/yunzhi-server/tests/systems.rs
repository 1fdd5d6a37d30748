//! Units and information systems: registration, lifecycle, isolation,
//! idempotent creates and pagination.

mod common;

use common::{Backend, TestServer};
use serde_json::{Value, json};

on_both_backends!(
    a_clerk_registers_the_enrolment_system_of_the_stories,
    a_unit_never_sees_another_units_objects,
    the_lifecycle_runs_draft_approved_online_retired,
    the_same_idempotency_key_yields_the_same_object,
    racing_creates_with_one_key_make_one_object,
    lists_page_through_every_item_exactly_once,
    the_demo_district_is_believable,
    search_and_exports_stay_within_the_unit,
    a_unit_admin_keeps_its_contacts_and_the_sys_admin_renames_units,
    the_cloud_admin_edits_and_withdraws_catalog_items,
    racing_edits_never_lose_a_change,
);

fn enrolment() -> Value {
    json!({
        "name": "招生入学系统（新）",
        "mlps_level": 2,
        "project_ref": "青发改〔2026〕12号",
        "arch": "x86_64",
        "quota": {"vcpu": 32, "memory_gib": 64, "storage_gib": 2048},
        "quota_basis": "feasibility study §4.2",
        "periodic_load": {"description": "enrolment", "months": [8, 7]}
    })
}

async fn a_clerk_registers_the_enrolment_system_of_the_stories(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("unit1_user").await;
    let me = s.get(&t, "/api/v1/session").await.expect(200);
    let r = s.post(&t, "/api/v1/systems", enrolment()).await.expect(201);
    assert_eq!(r.body["unit_id"], me.body["unit_id"], "unit_id defaults to the caller's unit");
    assert_eq!(r.body["state"], "draft");
    assert_eq!(r.body["quota"], json!({"vcpu": 32, "memory_gib": 64, "storage_gib": 2048}));
    assert_eq!(r.body["periodic_load"]["months"], json!([7, 8]));
    let id = r.body["id"].as_i64().unwrap();
    let again = s.get(&t, &format!("/api/v1/systems/{id}")).await.expect(200);
    assert_eq!(again.body, r.body);
    // The same name twice in one unit is a conflict naming the field.
    let dup = s.post(&t, "/api/v1/systems", enrolment()).await.expect(409);
    assert_eq!(dup.body["field"], "name");
    // The cloud resource admin must say which unit a system belongs to.
    let ca = s.login("cloud_admin").await;
    let r = s.post(&ca, "/api/v1/systems", enrolment()).await.expect(422);
    assert_eq!(r.body["field"], "unit_id");
    s.stop().await;
}

async fn a_unit_never_sees_another_units_objects(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let u1 = s.login("unit1_user").await;
    let u2 = s.login("unit2_admin").await;
    let mine = s.all(&u1, "/api/v1/systems").await;
    let theirs = s.all(&u2, "/api/v1/systems").await;
    assert!(!mine.is_empty() && !theirs.is_empty());
    let my_unit = mine[0]["unit_id"].clone();
    assert!(mine.iter().all(|x| x["unit_id"] == my_unit));
    assert!(theirs.iter().all(|x| x["unit_id"] != my_unit));
    let other = theirs[0]["id"].as_i64().unwrap();
    let missing = s.get(&u1, "/api/v1/systems/999999").await.expect(404);
    let foreign = s.get(&u1, &format!("/api/v1/systems/{other}")).await.expect(404);
    assert_eq!(
        foreign.problem(),
        missing.problem(),
        "another unit's system answers exactly as a missing one"
    );
    let patched =
        s.patch(&u1, &format!("/api/v1/systems/{other}"), json!({"name": "hijacked"})).await.expect(404);
    assert_eq!(patched.problem(), missing.problem());
    // Filtering by another unit's id yields nothing rather than their systems.
    let other_unit = theirs[0]["unit_id"].as_i64().unwrap();
    let filtered = s.all(&u1, &format!("/api/v1/systems?unit_id={other_unit}")).await;
    assert!(filtered.is_empty());
    // Units: one's own only.
    let units = s.all(&u1, "/api/v1/units").await;
    assert_eq!(units.len(), 1);
    assert_eq!(units[0]["id"], my_unit);
    let foreign_unit = s.get(&u1, &format!("/api/v1/units/{other_unit}")).await.expect(404);
    assert_eq!(foreign_unit.problem(), missing.problem());
    // Registering into another unit is refused as an unknown unit.
    let mut body = enrolment();
    body["unit_id"] = json!(other_unit);
    let r = s.post(&u1, "/api/v1/systems", body).await.expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["errors"][0]["code"].as_str()),
        (Some("unit_id"), Some("unknown_unit"))
    );
    // A unit admin's account list holds its own unit's staff only.
    let staff = s.all(&u2, "/api/v1/users").await;
    assert!(!staff.is_empty());
    assert!(staff.iter().all(|u| u["unit_id"].as_i64() == Some(other_unit)), "{staff:?}");
    s.stop().await;
}

async fn the_lifecycle_runs_draft_approved_online_retired(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let ca = s.login("cloud_admin").await;
    let r = s.post(&clerk, "/api/v1/systems", enrolment()).await.expect(201);
    let path = format!("/api/v1/systems/{}", r.body["id"]);
    // A draft's terms are the unit's to edit.
    s.patch(&clerk, &path, json!({"quota": {"vcpu": 16, "memory_gib": 64, "storage_gib": 2048}}))
        .await
        .expect(200);
    let refused = s.patch(&clerk, &path, json!({"state": "approved"})).await.expect(403);
    assert_eq!(refused.code(), "approval_by_big_data_center");
    let chief = s.login("infra_chief").await;
    s.patch(&chief, &path, json!({"state": "approved"})).await.expect(403);
    let approved = s.patch(&ca, &path, json!({"state": "approved"})).await.expect(200);
    assert_eq!(approved.body["state"], "approved");
    // Once approved, the quota is locked to the unit (Art. 10).
    let locked = s
        .patch(&clerk, &path, json!({"quota": {"vcpu": 64, "memory_gib": 64, "storage_gib": 2048}}))
        .await
        .expect(403);
    assert_eq!((locked.code(), locked.body["article"].as_u64()), ("terms_locked", Some(10)));
    // Going online needs the go-live gate (Art. 22).
    let gate = s.patch(&clerk, &path, json!({"state": "online"})).await.expect(422);
    assert_eq!((gate.code(), gate.body["article"].as_u64()), ("golive_check_missing", Some(22)));
    assert_eq!(gate.body["errors"].as_array().unwrap().len(), 3);
    let today = s.get(&clerk, "/api/v1/session").await.body["today"].as_str().unwrap().to_owned();
    s.patch(&clerk, &path, json!({"golive": {"self_check_on": today, "assessment_on": today}}))
        .await
        .expect(200);
    s.patch(&clerk, &path, json!({"state": "online"})).await.expect(422);
    // A stale version is refused.
    let current = s.get(&clerk, &path).await.body["version"].as_i64().unwrap();
    let stale = s
        .send(
            reqwest::Method::PATCH,
            Some(&clerk),
            &path,
            Some(&json!({"golive": {"hardening_on": today}})),
            &[("if-match", "1")],
        )
        .await
        .expect(409);
    assert_eq!(stale.code(), "version_mismatch");
    let v = current.to_string();
    let online = s
        .send(
            reqwest::Method::PATCH,
            Some(&clerk),
            &path,
            Some(&json!({"golive": {"hardening_on": today}, "state": "online"})),
            &[("if-match", v.as_str())],
        )
        .await
        .expect(200);
    assert_eq!(online.body["state"], "online");
    s.patch(&clerk, &path, json!({"state": "retired"})).await.expect(200);
    let done = s.patch(&clerk, &path, json!({"name": "again"})).await.expect(403);
    assert_eq!(done.code(), "system_retired");
    s.stop().await;
}

async fn the_same_idempotency_key_yields_the_same_object(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("unit1_admin").await;
    let before = s.all(&t, "/api/v1/systems").await.len();
    let body = enrolment();
    let key = [("idempotency-key", "req-2026-11-26-001")];
    let first =
        s.send(reqwest::Method::POST, Some(&t), "/api/v1/systems", Some(&body), &key).await.expect(201);
    let second =
        s.send(reqwest::Method::POST, Some(&t), "/api/v1/systems", Some(&body), &key).await.expect(201);
    assert_eq!(first.body, second.body);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(s.all(&t, "/api/v1/systems").await.len(), before + 1);
    let mut other = enrolment();
    other["name"] = json!("另一个系统");
    let reused =
        s.send(reqwest::Method::POST, Some(&t), "/api/v1/systems", Some(&other), &key).await.expect(422);
    assert_eq!(reused.body["errors"][0]["code"], "idempotency_key_reused");
    assert_eq!(s.all(&t, "/api/v1/systems").await.len(), before + 1);
    s.stop().await;
}

async fn racing_creates_with_one_key_make_one_object(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("sys_admin").await;
    let code = yunzhi_domain::unit::CreditCode::with_check_character("11310118002465555").unwrap();
    let body = json!({"name": "青浦区档案局", "credit_code": code});
    let sends = (0..6).map(|_| {
        s.send(
            reqwest::Method::POST,
            Some(&t),
            "/api/v1/units",
            Some(&body),
            &[("idempotency-key", "race-1")],
        )
    });
    let replies = common::join_all(sends).await;
    let ids: std::collections::HashSet<_> = replies.iter().map(|r| r.body["id"].as_i64()).collect();
    for r in &replies {
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assert_eq!(ids.len(), 1, "one object for one key: {ids:?}");
    let units = s.all(&t, "/api/v1/units").await;
    assert_eq!(units.iter().filter(|u| u["credit_code"] == json!(code)).count(), 1);
    s.stop().await;
}

async fn lists_page_through_every_item_exactly_once(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("cloud_admin").await;
    let whole = s.get(&t, "/api/v1/catalog?limit=500").await.expect(200);
    let all: Vec<_> = whole.body["items"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect();
    assert!(whole.body["next_cursor"].is_null());
    let paged: Vec<_> = s.all(&t, "/api/v1/catalog?limit=4").await.iter().map(|i| i["id"].clone()).collect();
    assert_eq!(paged, all);
    let first = s.get(&t, "/api/v1/catalog?limit=4").await.expect(200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 4);
    assert!(first.body["next_cursor"].is_string());
    s.stop().await;
}

async fn the_demo_district_is_believable(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("cloud_admin").await;
    let units = s.all(&t, "/api/v1/units").await;
    assert!(units.len() >= 5, "{} units", units.len());
    let systems = s.all(&t, "/api/v1/systems").await;
    assert!(systems.len() >= 12);
    assert!(systems.iter().filter(|x| !x["periodic_load"].is_null()).count() >= 3);
    assert!(systems.iter().any(|x| x["arch"] == "aarch64"));
    let platforms = s.all(&t, "/api/v1/platforms").await;
    let archs: std::collections::HashSet<_> =
        platforms.iter().map(|p| p["arch"].as_str().unwrap().to_owned()).collect();
    assert_eq!(archs.len(), 2);
    assert!(
        platforms.iter().all(|p| p["driver"] == "simulator" && p["allocatable"]["vcpu"].as_u64() > Some(0))
    );
    let catalog = s.all(&t, "/api/v1/catalog").await;
    let kinds: std::collections::HashSet<_> =
        catalog.iter().map(|c| c["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds.len(), 8);
    // An ARM host is offered only on the ARM platform; storage on both.
    let arm_platform = platforms.iter().find(|p| p["arch"] == "aarch64").unwrap()["id"].clone();
    let arm_host = catalog.iter().find(|c| c["kind"] == "cloud_host" && c["arch"] == "aarch64").unwrap();
    assert_eq!(arm_host["platform_ids"], json!([arm_platform]));
    let ssd = catalog.iter().find(|c| c["code"] == "evs.ssd").unwrap();
    assert_eq!(ssd["platform_ids"].as_array().unwrap().len(), 2);
    for name in [
        "cloud_admin",
        "infra_chief",
        "bdc_leader",
        "office",
        "sys_admin",
        "sec_admin",
        "audit_admin",
        "unit1_user",
        "unit1_admin",
        "unit2_user",
        "unit2_admin",
    ] {
        s.login(name).await;
    }
    s.stop().await;
}

async fn search_and_exports_stay_within_the_unit(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let u1 = s.login("unit1_user").await;
    let ca = s.login("cloud_admin").await;
    // "系统" is in nearly every system's name; a unit finds only its own.
    let everyone = s.all(&ca, "/api/v1/systems?q=%E7%B3%BB%E7%BB%9F").await;
    let mine = s.all(&u1, "/api/v1/systems?q=%E7%B3%BB%E7%BB%9F").await;
    assert!(everyone.len() > mine.len() && !mine.is_empty());
    let unit1 = mine[0]["unit_id"].clone();
    assert!(mine.iter().all(|x| x["unit_id"] == unit1));
    // Another unit's system by its exact name: nothing.
    let foreign = everyone.iter().find(|x| x["unit_id"] != unit1).unwrap();
    let name = foreign["name"].as_str().unwrap();
    let q: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(s.all(&ca, &format!("/api/v1/systems?q={q}")).await.len(), 1);
    assert!(s.all(&u1, &format!("/api/v1/systems?q={q}")).await.is_empty());
    // Search by approval number, any case, and wildcards are literal.
    assert_eq!(s.all(&ca, "/api/v1/systems?q=%E3%80%942026%E3%80%9512").await.len(), 1);
    assert!(s.all(&ca, "/api/v1/systems?q=%25").await.is_empty());
    let online = s.all(&ca, "/api/v1/systems?state=online").await;
    assert!(!online.is_empty() && online.iter().all(|x| x["state"] == "online"));
    s.get(&ca, "/api/v1/systems?state=flying").await.expect(422);
    let units = s.all(&u1, "/api/v1/units?q=%E5%8D%AB%E7%94%9F").await;
    assert!(units.is_empty(), "the health commission is not the clerk's unit");

    let csv = s.get(&u1, "/api/v1/exports/systems.csv").await.expect(200);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let text = csv.body.as_str().unwrap().to_owned();
    let lines: Vec<_> = text.trim_end().split("\r\n").collect();
    assert!(lines[0].starts_with("\u{feff}\"系统编号\""));
    assert_eq!(lines.len() - 1, s.all(&u1, "/api/v1/systems").await.len());
    assert!(!text.contains(name), "another unit's system must not be exported");
    let all_csv = s.get(&ca, "/api/v1/exports/systems.csv?lang=en").await.expect(200);
    let all_text = all_csv.body.as_str().unwrap();
    assert!(all_text.contains(name) && all_text.contains("\"quota_vcpu\""));
    let units_csv = s.get(&u1, "/api/v1/exports/units.csv").await.expect(200);
    assert_eq!(units_csv.body.as_str().unwrap().trim_end().split("\r\n").count(), 2);
    s.stop().await;
}

async fn a_unit_admin_keeps_its_contacts_and_the_sys_admin_renames_units(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let admin = s.login("unit1_admin").await;
    let unit = s.get(&admin, "/api/v1/session").await.body["unit_id"].as_i64().unwrap();
    let path = format!("/api/v1/units/{unit}");
    let contacts =
        json!({"contacts": [{"name": "王老师", "phone": "021-59720000", "email": "wang@qp.edu.sh.cn"}]});
    let r = s.patch(&admin, &path, contacts).await.expect(200);
    assert_eq!(r.body["contacts"][0]["email"], "wang@qp.edu.sh.cn");
    let r = s.patch(&admin, &path, json!({"name": "青浦区教育局（新）"})).await.expect(403);
    assert_eq!((r.code(), r.body["field"].as_str()), ("rename_by_sys_admin", Some("name")));
    let r = s.patch(&admin, &path, json!({"contacts": [{"name": "王", "phone": "n/a"}]})).await.expect(422);
    assert_eq!(r.body["field"], "contacts[0].phone");
    s.patch(&admin, &path, json!({})).await.expect(422);
    s.patch(&admin, &path, json!({"credit_code": "x"})).await.expect(422);
    let other = s
        .all(&s.login("cloud_admin").await, "/api/v1/units")
        .await
        .into_iter()
        .find(|u| u["id"] != json!(unit))
        .unwrap();
    s.patch(&admin, &format!("/api/v1/units/{}", other["id"]), json!({"contacts": []})).await.expect(404);
    let sys = s.login("sys_admin").await;
    let renamed = s.patch(&sys, &path, json!({"name": "青浦区教育局（新）"})).await.expect(200);
    assert_eq!(renamed.body["name"], "青浦区教育局（新）");
    assert_eq!(renamed.body["contacts"][0]["name"], "王老师", "contacts stay when only the name changes");
    let auditor = s.login("audit_admin").await;
    let trail =
        s.all(&auditor, &format!("/api/v1/audit?object_type=unit&object_id={unit}&action=unit.update")).await;
    assert_eq!(trail.len(), 2);
    assert_eq!(trail[1]["before"]["name"], "青浦区教育局");
    s.stop().await;
}

async fn the_cloud_admin_edits_and_withdraws_catalog_items(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let ca = s.login("cloud_admin").await;
    let host = s.all(&ca, "/api/v1/catalog").await.into_iter().find(|c| c["kind"] == "cloud_host").unwrap();
    let path = format!("/api/v1/catalog/{}", host["id"]);
    let r =
        s.patch(&ca, &path, json!({"images": ["openEuler 24.03 LTS"], "active": false})).await.expect(200);
    assert_eq!(
        (r.body["images"].clone(), r.body["active"].clone()),
        (json!(["openEuler 24.03 LTS"]), json!(false))
    );
    assert_eq!(r.body["code"], host["code"], "the code never changes");
    let r = s.patch(&ca, &path, json!({"vcpu": 64})).await.expect(422);
    assert_eq!(r.body["errors"][0]["code"], "unknown_field");
    s.patch(&ca, &path, json!({"images": []})).await.expect(422);
    s.patch(&ca, "/api/v1/catalog/99999", json!({"active": true})).await.expect(404);
    let clerk = s.login("unit1_user").await;
    s.patch(&clerk, &path, json!({"active": true})).await.expect(403);
    assert_eq!(s.get(&clerk, &path).await.expect(200).body["active"], false);
    s.stop().await;
}

async fn racing_edits_never_lose_a_change(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let ca = s.login("cloud_admin").await;
    let system = s.all(&ca, "/api/v1/systems").await[0].clone();
    let path = format!("/api/v1/systems/{}", system["id"]);
    let version = system["version"].as_i64().unwrap();
    let bodies: Vec<_> = (0..8).map(|i| json!({"description": format!("第{i}次修改")})).collect();
    let replies = common::join_all(bodies.iter().map(|b| s.patch(&ca, &path, b.clone()))).await;
    let won: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    for r in &replies {
        assert!(r.status == 200 || (r.status == 409 && r.code() == "conflict"), "{}: {}", r.status, r.body);
    }
    assert!(!won.is_empty());
    // Every acknowledged edit is one version step and one audit record.
    let after = s.get(&ca, &path).await.expect(200);
    assert_eq!(after.body["version"].as_i64().unwrap(), version + won.len() as i64);
    let auditor = s.login("audit_admin").await;
    let trail = s
        .all(
            &auditor,
            &format!("/api/v1/audit?object_type=system&object_id={}&action=system.update", system["id"]),
        )
        .await;
    assert_eq!(trail.len(), won.len());
    let versions: std::collections::HashSet<_> = won.iter().map(|r| r.body["version"].as_i64()).collect();
    assert_eq!(versions.len(), won.len(), "no two acknowledged edits share a version");
    s.stop().await;
}
