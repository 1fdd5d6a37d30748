//! The audit log: every change recorded with who, when and from where, in an
//! SM3 chain that names the first record anyone tampered with.

mod common;

use common::{Backend, TestServer};
use reqwest::Method;
use serde_json::json;

on_both_backends!(
    every_change_is_recorded_with_who_when_and_from_where,
    an_edited_record_is_named_by_the_chain_check,
    a_deleted_record_is_named_by_the_chain_check,
    the_audit_log_cannot_be_changed_through_the_api,
    the_demo_clock_moves_dates_but_keeps_everyone_signed_in,
    the_log_reads_newest_first_and_pages_backwards,
);

async fn the_log_reads_newest_first_and_pages_backwards(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let auditor = s.login("audit_admin").await;
    // The demo's background work keeps writing while we read: compare what
    // both walks saw.
    let ids = |v: &[serde_json::Value]| v.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let newest = ids(&s.all(&auditor, "/api/v1/audit?order=newest&limit=7").await);
    let oldest = ids(&s.all(&auditor, "/api/v1/audit").await);
    assert!(newest.windows(2).all(|w| w[0] > w[1]), "newest first, each record once, in pages of seven");
    let top = newest[0];
    let seen_by_both: Vec<i64> = oldest.iter().copied().filter(|id| *id <= top).collect();
    let mut back = newest.clone();
    back.reverse();
    assert_eq!(back, seen_by_both);
    let first = s.get(&auditor, "/api/v1/audit?order=newest&limit=1").await.expect(200).body;
    assert!(first["items"][0]["id"].as_i64().unwrap() >= *oldest.last().unwrap());
    let bad = s.get(&auditor, "/api/v1/audit?order=sideways").await.expect(422);
    assert_eq!(bad.body["field"], "order");
    s.stop().await;
}

async fn every_change_is_recorded_with_who_when_and_from_where(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let ca = s.login("cloud_admin").await;
    let auditor = s.login("audit_admin").await;
    let created = s
        .post(
            &clerk,
            "/api/v1/systems",
            json!({"name": "审计测试系统", "mlps_level": 2, "arch": "x86_64",
            "quota": {"vcpu": 4, "memory_gib": 8, "storage_gib": 100}, "quota_basis": "测试"}),
        )
        .await
        .expect(201);
    let id = created.body["id"].as_i64().unwrap();
    s.patch(&ca, &format!("/api/v1/systems/{id}"), json!({"state": "approved"})).await.expect(200);
    s.login_with("unit1_user", "Wrong-Password-9", None).await.expect(401);

    let trail = s.all(&auditor, &format!("/api/v1/audit?object_type=system&object_id={id}")).await;
    let actions: Vec<_> = trail.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["system.create", "system.approve"]);
    assert_eq!(trail[0]["actor"], "unit1_user");
    assert_eq!(trail[1]["actor"], "cloud_admin");
    assert_eq!(trail[1]["roles"], "cloud_admin");
    assert_eq!(trail[1]["source"], "127.0.0.1");
    assert_eq!(trail[1]["before"]["state"], "draft");
    assert_eq!(trail[1]["after"]["state"], "approved");
    assert!(trail[1]["at"].as_str().unwrap().ends_with("+08:00"));
    let failures = s.all(&auditor, "/api/v1/audit?action=session.login_failed&actor=unit1_user").await;
    assert_eq!(failures.len(), 1);

    // The background tasks (the efficiency analysis, say) may add records
    // meanwhile: every record listed is in the verified chain.
    let all = s.all(&auditor, "/api/v1/audit?limit=500").await;
    let report = s.get(&auditor, "/api/v1/audit/verify").await.expect(200);
    assert_eq!(report.body["ok"], true, "{}", report.body);
    assert!(report.body["records"].as_u64().unwrap() >= all.len() as u64, "{}", report.body);
    s.stop().await;
}

async fn an_edited_record_is_named_by_the_chain_check(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let auditor = s.login("audit_admin").await;
    let units = s.all(&auditor, "/api/v1/audit?action=unit.create").await;
    let target = units[2]["id"].as_i64().unwrap();
    // Someone with database access renames a unit in its creation record.
    s.exec_sql(&format!("UPDATE audit SET after = REPLACE(after, '青浦区', '松江区') WHERE id = {target}"))
        .await;
    let report = s.get(&auditor, "/api/v1/audit/verify").await.expect(200);
    assert_eq!(report.body["ok"], false);
    assert_eq!(report.body["first_bad"], target);
    assert_eq!(report.body["records"], target - 1);
    assert!(report.body["reason"].as_str().unwrap().contains("altered"));
    s.stop().await;
}

async fn a_deleted_record_is_named_by_the_chain_check(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let auditor = s.login("audit_admin").await;
    let n = s.all(&auditor, "/api/v1/audit?limit=500").await.len() as i64;
    s.exec_sql("DELETE FROM audit WHERE id = 5").await;
    let report = s.get(&auditor, "/api/v1/audit/verify").await.expect(200);
    assert_eq!((report.body["ok"].as_bool(), report.body["first_bad"].as_i64()), (Some(false), Some(5)));
    // Cutting off the tail is caught too.
    let s2 = TestServer::demo(backend).await;
    let auditor2 = s2.login("audit_admin").await;
    let n2 = s2.all(&auditor2, "/api/v1/audit?limit=500").await.len() as i64;
    s2.exec_sql(&format!("DELETE FROM audit WHERE id = {n2}")).await;
    let report = s2.get(&auditor2, "/api/v1/audit/verify").await.expect(200);
    assert_eq!((report.body["ok"].as_bool(), report.body["first_bad"].as_i64()), (Some(false), Some(n2)));
    assert!(n > 5);
    s.stop().await;
    s2.stop().await;
}

async fn the_audit_log_cannot_be_changed_through_the_api(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let auditor = s.login("audit_admin").await;
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = s.send(method.clone(), Some(&auditor), "/api/v1/audit", Some(&json!({})), &[]).await;
        assert_eq!(r.status, 405, "{method} /api/v1/audit");
        let r = s.send(method.clone(), Some(&auditor), "/api/v1/audit/1", Some(&json!({})), &[]).await;
        assert!(r.status == 404 || r.status == 405, "{method} /api/v1/audit/1: {}", r.status);
    }
    s.get(&auditor, "/api/v1/audit/verify").await.expect(200);
    s.stop().await;
}

async fn the_demo_clock_moves_dates_but_keeps_everyone_signed_in(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let admin = s.login("sys_admin").await;
    let clerk = s.login("unit1_user").await;
    let r = s.post(&admin, "/api/v1/demo/clock", json!({"today": "2027-03-03"})).await.expect(200);
    assert_eq!(r.body["today"], "2027-03-03");
    let me = s.get(&clerk, "/api/v1/session").await.expect(200);
    assert_eq!(me.body["today"], "2027-03-03");
    let bad = s.post(&admin, "/api/v1/demo/clock", json!({"today": "3 March"})).await.expect(422);
    assert_eq!(bad.body["field"], "today");
    let auditor = s.login("audit_admin").await;
    let moves = s.all(&auditor, "/api/v1/audit?action=demo.clock_set").await;
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0]["after"]["to"], "2027-03-03");
    s.stop().await;
}
