//! Requests and approvals on the statutory working-day clock (Art. 8-12).

mod common;

use common::{Backend, TestServer};
use serde_json::{Value, json};

on_both_backends!(
    three_approvers_decide_in_order_and_the_hosts_appear_on_the_x86_platform,
    a_returned_request_is_edited_resubmitted_and_keeps_both_versions,
    an_expansion_to_exactly_120_percent_passes_and_beyond_it_needs_an_exception,
    a_reclaim_needs_the_backup_confirmation_and_removes_exactly_the_named_resources,
    a_temporary_borrow_expires_in_three_months_and_extensions_are_asked_two_weeks_ahead,
    deadlines_are_counted_in_statutory_working_days,
    racing_decisions_on_one_step_count_once,
    a_rejected_request_releases_its_quota_and_units_see_only_their_own_requests,
    borrowed_hosts_get_notices_are_suspended_at_expiry_and_reclaimed_after_the_grace_period,
    the_turn_is_told_when_a_deadline_nears_and_passes,
);

async fn three_approvers_decide_in_order_and_the_hosts_appear_on_the_x86_platform(backend: Backend) {
    let s = TestServer::demo(backend).await;
    s.set_today("2026-11-20").await; // a Friday
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "新招生系统", (32, 64, 2048), Some("青发改〔2026〕12号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c4m8").await;
    let ssd = s.catalog_id(&clerk, "evs.ssd").await;
    let body = json!({"kind": "new", "system_id": system, "justification": "招生系统上线",
        "items": [{"catalog_item_id": host, "quantity": 4}, {"catalog_item_id": ssd, "quantity": 624}]});
    let r = s.post(&clerk, "/api/v1/requests", body).await.expect(201);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!((r.body["state"].as_str(), r.body["turn"].as_str()), (Some("in_review"), Some("cloud_admin")));
    // Received Friday 20 November: 7 working days later is Tuesday 1 December.
    assert_eq!(r.body["due_on"], "2026-12-01");
    assert_eq!(r.body["demand"], json!({"vcpu": 16, "memory_gib": 32, "storage_gib": 1024}));

    // The queue shows it to the cloud admin with the unit's context.
    let ca = s.login("cloud_admin").await;
    let queue = s.all(&ca, "/api/v1/requests?turn=mine").await;
    assert!(queue.iter().any(|q| q["id"] == id));
    let detail = s.get(&ca, &format!("/api/v1/requests/{id}")).await.expect(200);
    assert_eq!(detail.body["context"]["in_use_percent"]["vcpu"], 50);
    assert_eq!(detail.body["context"]["system_name"], "新招生系统");
    let inbox = s.all(&ca, "/api/v1/notifications?unread=true").await;
    assert!(inbox.iter().any(|n| n["kind"] == "request.turn"), "the approver is told it is their turn");

    let x86_before = s.all(&ca, "/api/v1/platforms").await.iter().find(|p| p["arch"] == "x86_64").unwrap()["usage"]["vcpu"]
        .as_u64()
        .unwrap();
    // Out of turn: the leader cannot decide first.
    let r = s.decide("bdc_leader", id, "approve", "").await.expect(403);
    assert_eq!(r.code(), "not_your_turn");
    s.decide("cloud_admin", id, "approve", "同意").await.expect(200);
    let r = s.decide("cloud_admin", id, "approve", "").await.expect(409);
    assert_eq!(r.code(), "already_decided");
    s.decide("infra_chief", id, "approve", "").await.expect(200);
    s.set_today("2026-11-23").await; // Monday
    let last = s.decide("bdc_leader", id, "approve", "").await.expect(200);
    assert_eq!(last.body["state"], "approved");

    let done = s.wait_for_request(&clerk, id, "fulfilled").await;
    assert_eq!(done["working_days_taken"], 1, "handed over on day 1 of 7");
    assert_eq!(done["sla"], "met");
    let resources = s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
    assert_eq!(resources.len(), 5, "4 hosts and one SSD volume");
    let platforms = s.all(&ca, "/api/v1/platforms").await;
    let x86 = platforms.iter().find(|p| p["arch"] == "x86_64").unwrap();
    assert!(resources.iter().all(|r| r["platform_id"] == x86["id"] && r["state"] == "active"));
    assert_eq!(
        x86["usage"]["vcpu"].as_u64().unwrap(),
        x86_before + 16,
        "the hosts count in the platform's usage"
    );
    let steps: Vec<_> =
        done["steps"].as_array().unwrap().iter().map(|s| s["role"].as_str().unwrap().to_owned()).collect();
    assert_eq!(steps, ["cloud_admin", "infra_chief", "bdc_leader"]);
    let told = s.all(&clerk, "/api/v1/notifications").await;
    assert!(told.iter().any(|n| n["kind"] == "request.fulfilled"), "the clerk is told: {told:?}");
    s.stop().await;
}

async fn a_returned_request_is_edited_resubmitted_and_keeps_both_versions(backend: Backend) {
    let s = TestServer::demo(backend).await;
    s.set_today("2026-11-02").await;
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "退回测试系统", (32, 64, 2048), Some("青发改〔2026〕20号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c4m8").await;
    let id = s.file_request(&clerk, common::ask(system, host, 6, "new")).await;
    s.decide("cloud_admin", id, "approve", "").await.expect(200);
    let r = s.decide("infra_chief", id, "return", "").await.expect(422);
    assert_eq!(r.body["field"], "comment");
    s.decide("infra_chief", id, "return", "请减少到4台并说明用途").await.expect(200);
    // Resubmitted a week later: the clock restarts from the resubmission.
    s.set_today("2026-11-09").await;
    let mut edited = common::ask(system, host, 4, "new");
    edited["justification"] = json!("招生系统：4台应用服务器");
    let r = s.patch(&clerk, &format!("/api/v1/requests/{id}"), edited).await.expect(200);
    assert_eq!(
        (r.body["state"].as_str(), r.body["round"].as_i64(), r.body["turn"].as_str()),
        (Some("in_review"), Some(2), Some("cloud_admin"))
    );
    assert_eq!(r.body["due_on"], "2026-11-18");
    let detail = s.get(&clerk, &format!("/api/v1/requests/{id}")).await.expect(200);
    let versions = detail.body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["content"]["items"][0][1], 6);
    assert_eq!(versions[1]["content"]["items"][0][1], 4);
    assert_eq!(detail.body["steps"][1]["decision"], "return");
    assert_eq!(detail.body["steps"][1]["comment"], "请减少到4台并说明用途");
    // Evidence attached to the request, kept with it.
    let pdf = b"%PDF-1.7 feasibility study".to_vec();
    let doc = s
        .post_bytes(
            &clerk,
            &format!("/api/v1/requests/{id}/documents?kind=project_approval&filename=approval.pdf"),
            "application/pdf",
            pdf,
        )
        .await
        .expect(201);
    assert_eq!(doc.body["request_id"], id);
    let ca = s.login("cloud_admin").await;
    let docs = s.get(&ca, &format!("/api/v1/requests/{id}/documents")).await.expect(200);
    assert_eq!(docs.body["items"].as_array().unwrap().len(), 1);
    let other = s.login("unit2_user").await;
    s.get(&other, &format!("/api/v1/requests/{id}/documents")).await.expect(404);
    // Only a returned request is edited.
    s.patch(&clerk, &format!("/api/v1/requests/{id}"), common::ask(system, host, 3, "new")).await.expect(409);
    s.stop().await;
}

async fn an_expansion_to_exactly_120_percent_passes_and_beyond_it_needs_an_exception(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "扩容测试系统", (40, 80, 2000), Some("青发改〔2026〕30号")).await;
    let c8 = s.catalog_id(&clerk, "ecs.x86.c8m16").await;
    let c2 = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    // New resources to exactly the quota.
    let r = s.post(&clerk, "/api/v1/requests", common::ask(system, c8, 6, "new")).await.expect(422);
    assert_eq!((r.code(), r.body["article"].as_u64()), ("quota_exceeded", Some(8)));
    s.post(&clerk, "/api/v1/requests", common::ask(system, c8, 5, "new")).await.expect(201);
    // An expansion without a justification is refused (Art. 10).
    let mut bare = common::ask(system, c8, 1, "expansion");
    bare["justification"] = json!("");
    let r = s.post(&clerk, "/api/v1/requests", bare).await.expect(422);
    assert_eq!(r.body["field"], "justification");
    // 40 + 8 = 48 vCPU = exactly 120 %: passes.
    let ok = s.post(&clerk, "/api/v1/requests", common::ask(system, c8, 1, "expansion")).await.expect(201);
    assert_eq!(ok.body["exception"], false);
    assert_eq!(ok.body["route"], json!(["cloud_admin", "infra_chief"]));
    // 2 more vCPU: 125 %, refused naming Art. 10.
    let r = s.post(&clerk, "/api/v1/requests", common::ask(system, c2, 1, "expansion")).await.expect(422);
    assert_eq!(
        (r.code(), r.body["article"].as_u64(), r.body["field"].as_str()),
        ("quota_exceeded", Some(10), Some("items"))
    );
    assert!(r.body["detail"].as_str().unwrap().contains("120 %"));
    // As an exception with its reason: accepted, flagged, and the leader decides too.
    let mut exc = common::ask(system, c2, 1, "expansion");
    exc["exception_reason"] = json!("招生高峰临时需要");
    let r = s.post(&clerk, "/api/v1/requests", exc).await.expect(201);
    assert_eq!(r.body["exception"], true);
    assert_eq!(r.body["route"], json!(["cloud_admin", "infra_chief", "bdc_leader"]));
    let flagged = s.all(&s.login("cloud_admin").await, "/api/v1/requests?exception=true").await;
    assert_eq!(
        flagged.iter().map(|f| f["id"].clone()).collect::<Vec<_>>(),
        [r.body["id"].clone()],
        "exceptions are reported"
    );
    s.stop().await;
}

async fn a_reclaim_needs_the_backup_confirmation_and_removes_exactly_the_named_resources(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "回收测试系统", (32, 64, 2048), Some("青发改〔2026〕40号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let id = s.file_request(&clerk, common::ask(system, host, 3, "new")).await;
    s.approve_three_levels(id).await;
    s.wait_for_request(&clerk, id, "fulfilled").await;
    let res: Vec<i64> = s
        .all(&clerk, &format!("/api/v1/resources?system_id={system}"))
        .await
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(res.len(), 3);
    let body = json!({"kind": "reclaim", "system_id": system, "resource_ids": [res[0], res[2]], "justification": "系统下线"});
    let r = s.post(&clerk, "/api/v1/requests", body.clone()).await.expect(422);
    assert_eq!(
        (r.code(), r.body["field"].as_str(), r.body["article"].as_u64()),
        ("backup_confirmation_required", Some("backup_confirmed"), Some(11))
    );
    let mut confirmed = body;
    confirmed["backup_confirmed"] = json!(true);
    let other_unit = s.login("unit2_user").await;
    s.post(&other_unit, "/api/v1/requests", confirmed.clone()).await.expect(422);
    let rid = s.post(&clerk, "/api/v1/requests", confirmed).await.expect(201).body["id"].as_i64().unwrap();
    let r = s.get(&clerk, &format!("/api/v1/requests/{rid}")).await.expect(200);
    assert_eq!(r.body["route"], json!(["cloud_admin"]));
    assert!(
        r.body["warning"].as_str().unwrap().contains("irreversible"),
        "the API says plainly that reclaim is irreversible"
    );
    s.decide("cloud_admin", rid, "approve", "已确认备份").await.expect(200);
    s.wait_for_request(&clerk, rid, "fulfilled").await;
    let after = s.all(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
    let states: Vec<_> = after.iter().map(|r| r["state"].as_str().unwrap().to_owned()).collect();
    assert_eq!(states, ["reclaimed", "active", "reclaimed"]);
    s.stop().await;
}

async fn a_temporary_borrow_expires_in_three_months_and_extensions_are_asked_two_weeks_ahead(
    backend: Backend,
) {
    let s = TestServer::demo(backend).await;
    s.set_today("2026-03-03").await;
    let clerk = s.login("unit1_user").await;
    let with_project =
        s.approved_system(&clerk, "有立项系统", (8, 16, 500), Some("青发改〔2026〕50号")).await;
    let pilot = s.approved_system(&clerk, "普查试点", (8, 16, 500), None).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let r = s.post(&clerk, "/api/v1/requests", common::ask(pilot, host, 2, "new")).await.expect(422);
    assert_eq!((r.code(), r.body["article"].as_u64()), ("project_required", Some(9)));
    s.post(&clerk, "/api/v1/requests", common::ask(with_project, host, 1, "temporary")).await.expect(422);
    let id = s.file_request(&clerk, common::ask(pilot, host, 2, "temporary")).await;
    let r = s.decide("cloud_admin", id, "approve", "").await.expect(403);
    assert_eq!(r.code(), "not_your_turn", "temporary resources are reviewed by the office (Art. 12)");
    s.decide("office", id, "approve", "同意试点").await.expect(200);
    s.wait_for_request(&clerk, id, "fulfilled").await;
    let res = s.all(&clerk, &format!("/api/v1/resources?system_id={pilot}")).await;
    assert!(res.iter().all(|r| r["temporary"] == true && r["expires_on"] == "2026-06-03"), "{res:?}");
    let ids: Vec<_> = res.iter().map(|r| r["id"].clone()).collect();
    let extension = |until: &str| json!({"kind": "extension", "system_id": pilot, "resource_ids": ids, "until": until, "justification": "普查延长"});

    // 13 days before expiry: too late, naming the last day.
    s.set_today("2026-05-21").await;
    let r = s.post(&clerk, "/api/v1/requests", extension("2026-09-03")).await.expect(422);
    assert_eq!((r.code(), r.body["article"].as_u64()), ("deadline_missed", Some(12)));
    assert!(r.body["detail"].as_str().unwrap().contains("2026-05-20"));
    // 15 days before: in time.
    s.set_today("2026-05-19").await;
    let r = s.post(&clerk, "/api/v1/requests", extension("2026-09-04")).await.expect(422);
    assert_eq!(r.body["errors"][0]["code"], "extension_too_long");
    let ext = s.post(&clerk, "/api/v1/requests", extension("2026-09-03")).await.expect(201).body["id"]
        .as_i64()
        .unwrap();
    s.decide("office", ext, "approve", "").await.expect(200);
    s.wait_for_request(&clerk, ext, "fulfilled").await;
    let res = s.all(&clerk, &format!("/api/v1/resources?system_id={pilot}")).await;
    assert!(res.iter().all(|r| r["expires_on"] == "2026-09-03"), "{res:?}");
    s.stop().await;
}

async fn deadlines_are_counted_in_statutory_working_days(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "期限测试系统", (64, 128, 4096), Some("青发改〔2026〕60号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    // Wednesday 30 September 2026: National Day 1-7 October off, Saturday 10 October a make-up day.
    s.set_today("2026-09-30").await;
    let r = s.post(&clerk, "/api/v1/requests", common::ask(system, host, 1, "new")).await.expect(201);
    assert_eq!(r.body["due_on"], "2026-10-15");
    let r = s.post(&clerk, "/api/v1/requests", common::ask(system, host, 1, "expansion")).await.expect(201);
    assert_eq!(r.body["due_on"], "2026-10-10", "3 working days: 8, 9 and the make-up Saturday");
    // Submitted on a holiday: counted from the next working day.
    s.set_today("2026-10-03").await;
    let r = s.post(&clerk, "/api/v1/requests", common::ask(system, host, 1, "expansion")).await.expect(201);
    assert_eq!(r.body["due_on"], "2026-10-12");
    // A deadline in a year the calendar does not know is an error, not a guess.
    s.set_today("2026-12-28").await;
    let r = s.post(&clerk, "/api/v1/requests", common::ask(system, host, 1, "new")).await.expect(422);
    assert_eq!(r.code(), "calendar_year_unknown");
    // Overdue and due-soon follow the clock.
    s.set_today("2026-10-14").await;
    let all = s.all(&clerk, &format!("/api/v1/requests?system_id={system}")).await;
    let slas: Vec<_> = all.iter().map(|r| r["sla"].as_str().unwrap().to_owned()).collect();
    assert_eq!(slas, ["due_soon", "overdue", "overdue"]);
    s.stop().await;
}

async fn racing_decisions_on_one_step_count_once(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "并发测试系统", (32, 64, 2048), Some("青发改〔2026〕70号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let id = s.file_request(&clerk, common::ask(system, host, 1, "new")).await;
    let ca = s.login("cloud_admin").await;
    let path = format!("/api/v1/requests/{id}/decisions");
    let body = json!({"decision": "approve", "comment": ""});
    let replies = common::join_all(vec![
        s.post(&ca, &path, body.clone()),
        s.post(&ca, &path, body.clone()),
        s.post(&ca, &path, body.clone()),
        s.post(&ca, &path, body.clone()),
    ])
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one decision takes effect");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 409), "the others get 409");
    let detail = s.get(&ca, &format!("/api/v1/requests/{id}")).await.expect(200);
    assert_eq!(detail.body["steps"].as_array().unwrap().len(), 1);
    assert_eq!(detail.body["turn"], "infra_chief");
    s.stop().await;
}

async fn a_rejected_request_releases_its_quota_and_units_see_only_their_own_requests(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "释放测试系统", (8, 16, 500), Some("青发改〔2026〕80号")).await;
    let c8 = s.catalog_id(&clerk, "ecs.x86.c8m16").await;
    let id = s.file_request(&clerk, common::ask(system, c8, 1, "new")).await;
    s.post(&clerk, "/api/v1/requests", common::ask(system, c8, 1, "new")).await.expect(422);
    s.decide("cloud_admin", id, "reject", "请先完成等保测评").await.expect(200);
    s.post(&clerk, "/api/v1/requests", common::ask(system, c8, 1, "new")).await.expect(201);
    let withdrawn = s.post(&clerk, &format!("/api/v1/requests/{id}/withdraw"), json!(null)).await.expect(409);
    assert_eq!(withdrawn.code(), "not_withdrawable");

    let other = s.login("unit2_user").await;
    let missing = s.get(&other, "/api/v1/requests/999999").await.expect(404);
    let foreign = s.get(&other, &format!("/api/v1/requests/{id}")).await.expect(404);
    assert_eq!(foreign.problem(), missing.problem());
    assert!(s.all(&other, "/api/v1/requests").await.iter().all(|r| r["id"] != id));
    let r = s
        .post(&other, &format!("/api/v1/requests/{id}/decisions"), json!({"decision": "approve"}))
        .await
        .expect(403);
    assert_eq!(r.code(), "not_your_turn");
    s.stop().await;
}

async fn borrowed_hosts_get_notices_are_suspended_at_expiry_and_reclaimed_after_the_grace_period(
    backend: Backend,
) {
    let s = TestServer::demo(backend).await;
    s.set_today("2026-03-03").await;
    let clerk = s.login("unit1_user").await;
    let pilot = s.approved_system(&clerk, "人口普查试点（借用）", (8, 16, 500), None).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let id = s.file_request(&clerk, common::ask(pilot, host, 2, "temporary")).await;
    s.decide("office", id, "approve", "").await.expect(200);
    s.wait_for_request(&clerk, id, "fulfilled").await;
    let expiring = |all: &[Value]| all.iter().filter(|n| n["kind"] == "resource.expiring").count();
    let states = async |s: &TestServer| -> Vec<String> {
        let t = s.login("unit1_user").await;
        s.all(&t, &format!("/api/v1/resources?system_id={pilot}"))
            .await
            .iter()
            .map(|r| r["state"].as_str().unwrap().to_owned())
            .collect()
    };

    s.set_today("2026-05-05").await;
    assert_eq!(expiring(&s.all(&clerk, "/api/v1/notifications").await), 0);
    s.set_today("2026-05-06").await; // four weeks before 3 June
    s.set_today("2026-05-07").await; // a second tick tells no one twice
    assert_eq!(expiring(&s.all(&clerk, "/api/v1/notifications").await), 1);
    s.set_today("2026-05-20").await; // two weeks before
    let inbox = s.all(&clerk, "/api/v1/notifications").await;
    assert_eq!(expiring(&inbox), 2);
    assert!(inbox.iter().any(|n| n["body"].as_str().unwrap().contains("by 2026-05-20")), "{inbox:?}");
    assert_eq!(states(&s).await, ["active", "active"]);
    s.set_today("2026-06-03").await;
    assert_eq!(states(&s).await, ["suspended", "suspended"]);
    s.set_today("2026-06-16").await;
    assert_eq!(states(&s).await, ["suspended", "suspended"]);
    s.set_today("2026-06-17").await; // 14 days' grace
    assert_eq!(states(&s).await, ["reclaimed", "reclaimed"]);
    let auditor = s.login("audit_admin").await;
    assert_eq!(s.all(&auditor, "/api/v1/audit?action=resource.suspend_expired").await.len(), 2);
    assert_eq!(s.all(&auditor, "/api/v1/audit?action=resource.reclaim_expired").await.len(), 2);
    s.stop().await;
}

async fn the_turn_is_told_when_a_deadline_nears_and_passes(backend: Backend) {
    let s = TestServer::demo(backend).await;
    s.set_today("2026-11-02").await; // Monday
    let clerk = s.login("unit1_user").await;
    let system = s.approved_system(&clerk, "提醒测试系统", (32, 64, 2048), Some("青发改〔2026〕90号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c2m4").await;
    let id = s.file_request(&clerk, common::ask(system, host, 1, "new")).await;
    s.decide("cloud_admin", id, "approve", "").await.expect(200);
    // Due Wednesday 11 November; the section chief has not decided.
    let chief = s.login("infra_chief").await;
    let count = async |kind: &str| {
        s.all(&chief, "/api/v1/notifications")
            .await
            .iter()
            .filter(|n| n["kind"] == kind && n["link"].as_str().unwrap().ends_with(&format!("/{id}")))
            .count()
    };
    s.set_today("2026-11-10").await;
    assert_eq!(count("request.due_soon").await, 1);
    s.set_today("2026-11-12").await;
    assert_eq!(count("request.overdue").await, 1);
    let ca = s.login("cloud_admin").await;
    assert!(
        s.all(&ca, "/api/v1/notifications").await.iter().any(|n| n["kind"] == "request.overdue"),
        "the cloud admin hears of it too"
    );
    let overdue = s.all(&chief, "/api/v1/requests?turn=mine&sla=overdue").await;
    assert_eq!(overdue.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), [id]);
    let summary = s.get(&ca, "/api/v1/requests/overdue").await.expect(200);
    let chief_line = summary.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == "infra_chief")
        .unwrap()
        .clone();
    assert_eq!((chief_line["step"].as_i64(), chief_line["requests"][0].as_i64()), (Some(2), Some(id)));
    s.stop().await;
}
