//! Story 5 (Art. 13-14): a zombie host is found, the office confirms it
//! into a warning, the town neither answers nor explains, the Big Data
//! Center proposes suspension, the office approves, the hosts are
//! suspended; once the rectification is confirmed they come back.

mod common;

use std::time::Duration;

use common::{Backend, TestServer, analyse, dead_day, zombie_host};
use jiff::ToSpan;
use serde_json::{Value, json};
use yunzhi_store::{Span, Store};

on_both_backends!(
    a_zombie_is_found_warned_suspended_and_resumed_once_rectified,
    an_explanation_is_accepted_or_rejected_by_the_office,
    an_unanswered_warning_closes_at_the_deadline_once_the_latest_analysis_no_longer_finds_it,
    the_analysis_sees_days_written_or_rewritten_since_its_previous_pass,
    a_finding_seen_again_unchanged_keeps_its_version,
    the_analysis_sees_a_host_changed_by_any_path_since_its_previous_pass,
    a_day_is_judged_by_its_stored_p95_and_a_day_stored_before_it_was_kept_by_its_histogram,
    findings_raised_together_are_each_recorded_whole_in_the_audit_chain,
    the_rules_are_read_by_everyone_set_by_the_system_administrator_and_used_by_the_next_pass,
);

async fn zombie_finding(s: &TestServer, host: &Value) -> Value {
    let office = s.login("office").await;
    let all = s.all(&office, "/api/v1/findings?kind=zombie").await;
    all.into_iter().find(|f| f["resource_id"] == host["id"]).expect("a zombie finding about the host")
}

async fn state_of(s: &TestServer, id: &Value) -> String {
    let ca = s.login("cloud_admin").await;
    for _ in 0..200 {
        let jobs = s.all(&ca, "/api/v1/jobs?state=queued").await.len()
            + s.all(&ca, "/api/v1/jobs?state=running").await.len();
        if jobs == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.get(&ca, &format!("/api/v1/resources/{id}")).await.expect(200).body["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_zombie_is_found_warned_suspended_and_resumed_once_rectified(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = zombie_host(&s).await;
    analyse(&s).await;
    let finding = zombie_finding(&s, &host).await;
    assert_eq!(finding["state"], "open");
    assert_eq!(finding["evidence"]["window"]["days"], 30, "{finding}");
    assert!(finding["evidence"]["days"].as_array().unwrap().len() >= 24);
    // The unit sees its own finding, another unit does not.
    let clerk = s.login("unit1_user").await;
    s.get(&clerk, &format!("/api/v1/findings/{}", finding["id"])).await.expect(200);
    let other = s.login("unit2_user").await;
    s.get(&other, &format!("/api/v1/findings/{}", finding["id"])).await.expect(404);
    // Analysing again raises nothing twice.
    analyse(&s).await;
    let office = s.login("office").await;
    assert_eq!(
        s.all(&office, "/api/v1/findings?kind=zombie")
            .await
            .iter()
            .filter(|f| f["resource_id"] == host["id"])
            .count(),
        1
    );

    // Only the office reviews; a confirmed finding becomes the unit's warning.
    let path = format!("/api/v1/findings/{}/review", finding["id"]);
    let ca = s.login("cloud_admin").await;
    s.post(&ca, &path, json!({"decision": "confirm", "comment": "x"})).await.expect(403);
    let r = s.post(&office, &path, json!({"decision": "maybe", "comment": ""})).await.expect(422);
    assert_eq!(r.body["field"], "decision");
    let reviewed = s
        .post(&office, &path, json!({"decision": "confirm", "comment": "请核实系统是否仍在使用"}))
        .await
        .expect(200)
        .body;
    assert_eq!(reviewed["finding"]["state"], "confirmed");
    let warning = reviewed["warning"].clone();
    assert_eq!(warning["state"], "open");
    let wid = warning["id"].clone();
    s.post(&office, &path, json!({"decision": "dismiss", "comment": "重复"})).await.expect(409);
    let inbox = s.all(&clerk, "/api/v1/notifications").await;
    assert!(inbox.iter().any(|n| n["kind"] == "warning.issued"), "{inbox:?}");
    let r = s.post(&office, &path, json!({"decision": "confirm", "comment": "再次确认"})).await.expect(409);
    assert_eq!(r.code(), "already_reviewed");
    assert_eq!(s.all(&other, "/api/v1/warnings").await.len(), 0);
    s.get(&other, &format!("/api/v1/warnings/{wid}")).await.expect(404);

    // Not yet overdue: no suspension can be proposed.
    let decision = format!("/api/v1/warnings/{wid}/decision");
    let r = s
        .post(&ca, &decision, json!({"action": "propose_suspension", "comment": "未整改"}))
        .await
        .expect(409);
    assert_eq!((r.code(), r.body["field"].as_str()), ("wrong_state", Some("action")));

    // The deadline passes unanswered.
    let deadline: jiff::civil::Date = warning["deadline"].as_str().unwrap().parse().unwrap();
    s.set_today(&deadline.tomorrow().unwrap().to_string()).await;
    let w = s.get(&office, &format!("/api/v1/warnings/{wid}")).await.expect(200).body;
    assert_eq!(w["state"], "overdue", "{w}");
    // The Big Data Center, which may propose a suspension, and the office,
    // which decides on it, are told.
    for who in [&ca, &office] {
        let inbox = s.all(who, "/api/v1/notifications").await;
        assert!(inbox.iter().any(|n| n["kind"] == "warning.deadline"), "{inbox:?}");
    }
    s.post(&office, &decision, json!({"action": "propose_suspension", "comment": "未整改"}))
        .await
        .expect(403);
    s.post(&ca, &decision, json!({"action": "propose_suspension", "comment": "逾期未整改，提议停用"}))
        .await
        .expect(200);
    s.post(&ca, &decision, json!({"action": "approve_suspension", "comment": "自己批"})).await.expect(403);
    let approved = s
        .post(&office, &decision, json!({"action": "approve_suspension", "comment": "同意停用"}))
        .await
        .expect(200)
        .body;
    assert_eq!(approved["state"], "suspended");
    let suspended: Vec<Value> =
        approved["history"].as_array().unwrap().last().unwrap()["suspended"].as_array().unwrap().clone();
    assert!(suspended.contains(&host["id"]), "{approved}");
    assert_eq!(state_of(&s, &host["id"]).await, "suspended");

    // The unit rectifies; the office confirms; the hosts come back.
    let admin = s.login("unit1_admin").await;
    let response = format!("/api/v1/warnings/{wid}/response");
    s.post(&clerk, &response, json!({"answer": "rectified", "comment": "x"})).await.expect(403);
    s.post(&admin, &response, json!({"answer": "rectified", "comment": "已下线旧系统，申请回收"}))
        .await
        .expect(200);
    let closed = s
        .post(&office, &decision, json!({"action": "confirm_rectification", "comment": "已核实"}))
        .await
        .expect(200)
        .body;
    assert_eq!(closed["state"], "closed");
    assert_eq!(state_of(&s, &host["id"]).await, "active");
    let steps: Vec<_> = closed["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        steps,
        [
            "issued",
            "deadline_passed",
            "propose_suspension",
            "approve_suspension",
            "answer_rectified",
            "confirm_rectification"
        ]
    );
    let auditor = s.login("audit_admin").await;
    assert_eq!(s.all(&auditor, "/api/v1/audit?action=warning.step").await.len(), 5);
    assert!(!s.all(&auditor, "/api/v1/audit?action=resource.suspend_warning").await.is_empty());
    s.stop().await;
}

async fn an_explanation_is_accepted_or_rejected_by_the_office(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = zombie_host(&s).await;
    analyse(&s).await;
    let finding = zombie_finding(&s, &host).await;
    let office = s.login("office").await;
    let path = format!("/api/v1/findings/{}/review", finding["id"]);
    let r = s.post(&office, &path, json!({"decision": "dismiss", "comment": ""})).await.expect(422);
    assert_eq!(r.body["field"], "comment", "a dismissal says why");
    let r = s.post(&office, &path, json!({"decision": "confirm", "comment": " "})).await.expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["article"].as_i64()),
        (Some("comment"), Some(14)),
        "a confirmation says what to put right"
    );
    let w = s
        .post(&office, &path, json!({"decision": "confirm", "comment": "请缩容或说明"}))
        .await
        .expect(200)
        .body["warning"]
        .clone();
    let admin = s.login("unit1_admin").await;
    let response = format!("/api/v1/warnings/{}/response", w["id"]);
    let r = s.post(&admin, &response, json!({"answer": "maybe", "comment": "季节性"})).await.expect(422);
    assert_eq!(r.body["field"], "answer");
    // The explanation cites the system's documents: its own, not another system's.
    let system = w["system_id"].as_i64().unwrap();
    let upload = |system: i64, name: &'static str| {
        let s = &s;
        let admin = &admin;
        async move {
            let query = format!("kind=other&filename={name}");
            let body = b"%PDF-1.7\nflood season schedule".to_vec();
            s.post_bytes(
                admin,
                &format!("/api/v1/systems/{system}/documents?{query}"),
                "application/pdf",
                body,
            )
            .await
            .expect(201)
            .body["id"]
                .as_i64()
                .unwrap()
        }
    };
    let schedule = upload(system, "schedule.pdf").await;
    let others = s.all(&admin, "/api/v1/systems").await;
    let other_system = others.iter().find(|x| x["id"] != system).unwrap()["id"].as_i64().unwrap();
    let elsewhere = upload(other_system, "elsewhere.pdf").await;
    let r = s
        .post(
            &admin,
            &response,
            json!({"answer": "explained", "comment": "防汛季才用", "documents": [schedule, elsewhere]}),
        )
        .await
        .expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["errors"][0]["code"].as_str()),
        (Some("documents[1]"), Some("other_system")),
        "{}",
        r.body
    );
    let r = s
        .post(
            &admin,
            &response,
            json!({"answer": "explained", "comment": "防汛季才用", "documents": [987_654]}),
        )
        .await
        .expect(422);
    assert_eq!(r.body["errors"][0]["code"], "not_found", "{}", r.body);
    let answered = s
        .post(&admin, &response, json!({"answer": "explained", "comment": "防汛季才用，已申报周期性负载", "documents": [schedule]}))
        .await
        .expect(200)
        .body;
    let cited = &answered["history"].as_array().unwrap().last().unwrap()["documents"];
    assert_eq!(cited[0]["id"], schedule);
    assert_eq!(cited[0]["filename"], "schedule.pdf");
    assert_eq!(cited[0]["sm3"].as_str().unwrap().len(), 64, "{cited}");
    let decision = format!("/api/v1/warnings/{}/decision", w["id"]);
    let rejected = s
        .post(&office, &decision, json!({"action": "reject_explanation", "comment": "非汛期也应缩容"}))
        .await
        .expect(200)
        .body;
    assert_eq!(rejected["state"], "open");
    s.post(&admin, &response, json!({"answer": "explained", "comment": "补充：应急演练需要"}))
        .await
        .expect(200);
    // The deadline passes with the explanation still before the office:
    // it stays answered, and the office is reminded, once.
    let deadline: jiff::civil::Date = w["deadline"].as_str().unwrap().parse().unwrap();
    s.set_today(&deadline.tomorrow().unwrap().to_string()).await;
    yunzhi_server::scheduler::tick(s.state()).await.unwrap();
    assert_eq!(
        s.get(&office, &format!("/api/v1/warnings/{}", w["id"])).await.expect(200).body["state"],
        "answered"
    );
    let reminders = s.all(&office, "/api/v1/notifications").await;
    let reminders: Vec<_> = reminders.iter().filter(|n| n["kind"] == "warning.awaiting_decision").collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    let accepted = s
        .post(&office, &decision, json!({"action": "accept_explanation", "comment": "同意"}))
        .await
        .expect(200)
        .body;
    assert_eq!(accepted["state"], "closed");
    s.post(&office, &decision, json!({"action": "accept_explanation", "comment": "again"})).await.expect(409);
    s.stop().await;
}

/// Art. 14 suspends a unit that refuses to rectify: one that put things
/// right without writing back has not refused. The check at the deadline
/// asks the latest analysis pass, not the calendar.
async fn an_unanswered_warning_closes_at_the_deadline_once_the_latest_analysis_no_longer_finds_it(
    backend: Backend,
) {
    let s = TestServer::demo(backend).await;
    let host = zombie_host(&s).await;
    analyse(&s).await;
    let finding = zombie_finding(&s, &host).await;
    let office = s.login("office").await;
    let path = format!("/api/v1/findings/{}/review", finding["id"]);
    let w = s
        .post(&office, &path, json!({"decision": "confirm", "comment": "请盘活或回收"}))
        .await
        .expect(200)
        .body["warning"]
        .clone();
    // The unit puts the system to use (its days are busy now) and says nothing.
    let mut busy = dead_day();
    busy.cpu_sum = 55.0 * 1440.0;
    busy.cpu_max = 90.0;
    busy.cpu_hist = vec![0; 101];
    busy.cpu_hist[55] = 1440;
    busy.sessions_max = 3;
    let store = Store::open(s.db_url()).await.unwrap();
    let today = yunzhi_domain::clock::district_date(s.state().now());
    let id = host["id"].as_i64().unwrap();
    let mut tx = store.begin().await.unwrap();
    for n in 1..=45 {
        tx.put_rollup(Span::Day, id, &today.checked_sub(n.days()).unwrap().to_string(), &busy).await.unwrap();
    }
    tx.commit().await.unwrap();
    store.close().await;
    analyse(&s).await;
    let deadline: jiff::civil::Date = w["deadline"].as_str().unwrap().parse().unwrap();
    s.set_today(&deadline.tomorrow().unwrap().to_string()).await;
    yunzhi_server::scheduler::tick(s.state()).await.unwrap();
    let closed = s.get(&office, &format!("/api/v1/warnings/{}", w["id"])).await.expect(200).body;
    assert_eq!(closed["state"], "closed", "{closed}");
    let last = closed["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["step"].as_str(), last["rule_holds"].as_bool()), (Some("deadline_passed"), Some(false)));
    let unit = s.login("unit1_admin").await;
    let inbox = s.all(&unit, "/api/v1/notifications").await;
    assert!(
        inbox
            .iter()
            .any(|n| n["kind"] == "warning.deadline" && n["title"].as_str().unwrap().contains("办结")),
        "{inbox:?}"
    );
    s.stop().await;
}

async fn the_analysis_sees_days_written_or_rewritten_since_its_previous_pass(backend: Backend) {
    let s = TestServer::demo(backend).await;
    // A first pass reads the whole window; the host has no days yet.
    analyse(&s).await;
    let office = s.login("office").await;
    assert!(s.all(&office, "/api/v1/findings?kind=zombie").await.is_empty());
    // Its quiet days arrive afterwards: the next pass reads only what changed, and sees them.
    let host = zombie_host(&s).await;
    analyse(&s).await;
    assert_eq!(zombie_finding(&s, &host).await["state"], "open");
    // The same days written again as busy ones: the finding no longer holds.
    let busy = {
        let mut day = dead_day();
        day.cpu_sum = 55.0 * 1440.0;
        day.cpu_max = 90.0;
        day.cpu_hist = vec![0; 101];
        day.cpu_hist[55] = 1440;
        day.sessions_max = 3;
        day
    };
    let store = Store::open(s.db_url()).await.unwrap();
    let today = yunzhi_domain::clock::district_date(s.state().now());
    let id = host["id"].as_i64().unwrap();
    let mut tx = store.begin().await.unwrap();
    for n in 1..=45 {
        let day = today.checked_sub(n.days()).unwrap();
        tx.put_rollup(Span::Day, id, &day.to_string(), &busy).await.unwrap();
    }
    tx.commit().await.unwrap();
    store.close().await;
    analyse(&s).await;
    assert_eq!(zombie_finding(&s, &host).await["state"], "resolved");
    s.stop().await;
}

/// The hourly pass finds the same zombie with the same evidence: the
/// finding is marked seen, not rewritten, so an office member reviewing it
/// (with the version they read) is not told it changed meanwhile.
async fn a_finding_seen_again_unchanged_keeps_its_version(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = zombie_host(&s).await;
    analyse(&s).await;
    let before = zombie_finding(&s, &host).await;
    s.clock.advance(jiff::SignedDuration::from_mins(5));
    analyse(&s).await;
    let after = zombie_finding(&s, &host).await;
    assert_eq!(after["version"], before["version"], "{before} → {after}");
    assert_eq!(after["evidence"], before["evidence"]);
    assert!(after["last_seen_at"].as_str() > before["last_seen_at"].as_str(), "{before} → {after}");
    // The office sets it aside with its reason; the Big Data Center learns why.
    let office = s.login("office").await;
    let path = format!("/api/v1/findings/{}/review", after["id"]);
    let r = s
        .post(&office, &path, json!({"decision": "dismiss", "comment": "灾备系统，平时待机"}))
        .await
        .expect(200);
    assert_eq!((r.body["finding"]["state"].as_str(), r.body["warning"].is_null()), (Some("dismissed"), true));
    let ca = s.login("cloud_admin").await;
    let inbox = s.all(&ca, "/api/v1/notifications").await;
    let told = inbox.iter().find(|n| n["kind"] == "finding.dismissed").expect("the Big Data Center is told");
    assert!(told["body"].as_str().unwrap().contains("灾备系统，平时待机"), "{told}");
    s.stop().await;
}

/// The analysis reads a day's CPU p95 as stored with the day, not its
/// histogram; a day stored before the p95 was kept (the column empty) is
/// judged by its histogram. Each change is stamped as new, as a write by
/// the server would be, so that the next pass reads it.
async fn a_day_is_judged_by_its_stored_p95_and_a_day_stored_before_it_was_kept_by_its_histogram(
    backend: Backend,
) {
    let s = TestServer::demo(backend).await;
    let host = zombie_host(&s).await;
    let id = host["id"].as_i64().unwrap();
    analyse(&s).await;
    // The dead day's readings all lie in the lowest bucket, and at most 0.9 %.
    assert_eq!(zombie_finding(&s, &host).await["evidence"]["peak"]["cpu_p95"], json!(0.9));
    let restamp = |p95: &str, stamp: i64| {
        format!("UPDATE metric_daily SET cpu_p95 = {p95}, changed_at = {stamp} WHERE resource_id = {id}")
    };
    // Far in the future, so that no pass's "changed since" can miss it.
    let later = 9_000_000_000_000i64;
    // The histograms still say 0.9 %: only the stored figure says 50 %.
    s.exec_sql(&restamp("50", later)).await;
    s.clock.advance(jiff::SignedDuration::from_mins(5));
    analyse(&s).await;
    assert_eq!(zombie_finding(&s, &host).await["state"], "resolved", "judged by the stored p95");
    s.exec_sql(&restamp("NULL", later + 1)).await;
    s.clock.advance(jiff::SignedDuration::from_mins(5));
    analyse(&s).await;
    let office = s.login("office").await;
    let found = s.all(&office, "/api/v1/findings?kind=zombie").await;
    let open: Vec<_> =
        found.iter().filter(|f| f["resource_id"] == host["id"] && f["state"] == "open").collect();
    assert_eq!(open.len(), 1, "judged by the histogram again: {found:?}");
    assert_eq!(open[0]["evidence"]["peak"]["cpu_p95"], json!(0.9), "{}", open[0]);
    s.stop().await;
}

/// A pass raises its new findings together (a few statements for
/// hundreds); each is still recorded in the audit chain as raised, whole,
/// and the chain still verifies.
async fn findings_raised_together_are_each_recorded_whole_in_the_audit_chain(backend: Backend) {
    let s = TestServer::demo(backend).await;
    zombie_host(&s).await;
    analyse(&s).await;
    let office = s.login("office").await;
    let found = s.all(&office, "/api/v1/findings?state=open").await;
    assert!(found.len() >= 2, "one pass raised several findings: {found:?}");
    let auditor = s.login("audit_admin").await;
    let raised = s.all(&auditor, "/api/v1/audit?action=finding.raise&limit=500").await;
    for f in &found {
        let id = f["id"].to_string();
        let records: Vec<&Value> = raised.iter().filter(|r| r["object_id"] == id.as_str()).collect();
        assert_eq!(records.len(), 1, "finding {id}: {records:?}");
        assert_recorded_as_raised(&records[0]["after"], f);
        assert_eq!(records[0]["actor"], "efficiency-analysis");
    }
    let report = s.get(&auditor, "/api/v1/audit/verify").await.expect(200);
    assert_eq!(report.body["ok"], true, "{}", report.body);

    // More at once than one statement takes (a pass's first raise on a
    // large site): every one recorded, in order, the chain unbroken.
    let many: Vec<yunzhi_store::NewFinding> = (0..150)
        .map(|i| yunzhi_store::NewFinding {
            kind: yunzhi_domain::finding::FindingKind::Other,
            unit: None,
            system: None,
            resource: None,
            platform: None,
            title: format!("batch finding {i}"),
            evidence: yunzhi_store::NewFinding::evidence(
                &json!({"problem": "batch", "n": i, "days": vec![i; 50]}),
            ),
            dedup_key: format!("batch:{i}"),
        })
        .collect();
    let store = Store::open(s.db_url()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let ctx = yunzhi_store::AuditCtx::system("batch-test", s.state().now());
    let found: Vec<&yunzhi_store::NewFinding> = many.iter().collect();
    let raised = tx.raise_findings(&ctx, &found, &Default::default()).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    assert_eq!(raised, 150);
    let batch = s.all(&auditor, "/api/v1/audit?actor=batch-test&limit=500").await;
    assert_eq!(batch.len(), 150, "one record per finding");
    let mut ids: Vec<i64> = batch.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "consecutive records: {ids:?}");
    let listed = s.all(&office, "/api/v1/findings?kind=other").await;
    for r in &batch {
        let f = listed
            .iter()
            .find(|f| Some(f["id"].to_string().as_str()) == r["object_id"].as_str())
            .expect("listed");
        assert_recorded_as_raised(&r["after"], f);
    }
    let report = s.get(&auditor, "/api/v1/audit/verify").await.expect(200);
    assert_eq!(report.body["ok"], true, "{}", report.body);
    s.stop().await;
}

/// A finding's `finding.raise` record holds it as it was raised: version
/// 1, first seen then. The finding read now is the same unless a later
/// pass saw it again (a later `last_seen_at`) or rewrote it (a later
/// version): the server's own passes run beside the test.
fn assert_recorded_as_raised(after: &Value, now: &Value) {
    assert_eq!(after["version"], 1, "{after}");
    assert_eq!(after["last_seen_at"], after["first_seen_at"], "{after}");
    let without_sighting = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().expect("a finding").remove("last_seen_at");
        v
    };
    if now["version"] == 1 {
        assert_eq!(without_sighting(after), without_sighting(now), "as recorded and as read");
    } else {
        for field in ["id", "kind", "title", "first_seen_at", "resource_id", "unit_id"] {
            assert_eq!(after[field], now[field], "{field}: {after} / {now}");
        }
    }
}

/// The analysis keeps the live hosts between its hourly passes; a host
/// changed by a path that is not the server's own (another server on the
/// same database, an operator's statement) is still seen by the next pass.
async fn the_analysis_sees_a_host_changed_by_any_path_since_its_previous_pass(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = zombie_host(&s).await;
    let id = host["id"].as_i64().unwrap();
    analyse(&s).await;
    assert_eq!(zombie_finding(&s, &host).await["evidence"]["resource"]["name"], host["name"]);
    s.exec_sql(&format!("UPDATE resources SET name = 'renamed-by-hand' WHERE id = {id}")).await;
    s.clock.advance(jiff::SignedDuration::from_mins(5));
    analyse(&s).await;
    let renamed = zombie_finding(&s, &host).await;
    assert_eq!(renamed["evidence"]["resource"]["name"], "renamed-by-hand", "{renamed}");
    assert_eq!(renamed["state"], "open");
    s.exec_sql(&format!("UPDATE resources SET state = 'reclaimed' WHERE id = {id}")).await;
    s.clock.advance(jiff::SignedDuration::from_mins(5));
    analyse(&s).await;
    assert_eq!(zombie_finding(&s, &host).await["state"], "resolved", "a reclaimed host is no longer judged");
    s.stop().await;
}

async fn the_rules_are_read_by_everyone_set_by_the_system_administrator_and_used_by_the_next_pass(
    backend: Backend,
) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let shipped = s.get(&clerk, "/api/v1/efficiency/rules").await.expect(200).body;
    assert_eq!(shipped["low_utilization"]["window_days"], 14, "{shipped}");
    assert_eq!(shipped["zombie"]["window_days"], 30);
    // Only the system administrator changes them.
    let change = json!({"zombie": {"window_days": 40}});
    s.send(reqwest::Method::PUT, Some(&clerk), "/api/v1/efficiency/rules", Some(&change), &[])
        .await
        .expect(403);
    let sys = s.login("sys_admin").await;
    // A rule the analysis cannot work with is refused, naming the field, and changes nothing.
    let bad = json!({"low_utilization": {"window_days": 14, "min_days": 20}});
    let r = s
        .send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/rules", Some(&bad), &[])
        .await
        .expect(422);
    assert_eq!(r.body["field"], "low_utilization.min_days");
    let typo = json!({"zombie": {"window_dayz": 40}});
    s.send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/rules", Some(&typo), &[]).await.expect(422);
    assert_eq!(s.get(&clerk, "/api/v1/efficiency/rules").await.expect(200).body, shipped);
    // A longer zombie window: fields left out keep their defaults.
    let set = s
        .send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/rules", Some(&change), &[])
        .await
        .expect(200);
    assert_eq!(set.body["zombie"]["window_days"], 40);
    assert_eq!(set.body["zombie"]["cpu_p95_max_pct"], shipped["zombie"]["cpu_p95_max_pct"]);
    assert_eq!(s.get(&clerk, "/api/v1/efficiency/rules").await.expect(200).body, set.body);
    let auditor = s.login("audit_admin").await;
    let changes = s.all(&auditor, "/api/v1/audit?action=setting.change").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    // The next pass judges by them.
    let host = zombie_host(&s).await;
    analyse(&s).await;
    let finding = zombie_finding(&s, &host).await;
    assert_eq!(finding["evidence"]["window"]["days"], 40, "{finding}");
    s.stop().await;
}

/// node_exporter series of hosts nobody uses (CPU 0.5 %, a trickle of
/// network, no disk), every 5 minutes from `from` (Unix seconds) until each
/// host's own last scrape, as promtool backfills them: counters with their
/// `_total` samples, families contiguous, timestamps in seconds. Each host
/// is `(resource id, last scrape)`.
fn idle_hosts_openmetrics(hosts: &[(i64, i64)], from: i64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let counter = |out: &mut String, family: &str, extra: &str, per_step: f64| {
        for (id, until) in hosts {
            let labels =
                format!("{{instance=\"ghost-{id}:9100\",job=\"node\",yunzhi_resource_id=\"{id}\"{extra}}}");
            for (i, t) in (from..=*until).step_by(300).enumerate() {
                let _ = writeln!(out, "{family}_total{labels} {} {t}", 1000.0 + per_step * i as f64);
            }
        }
    };
    let _ = writeln!(out, "# TYPE node_cpu_seconds counter");
    counter(&mut out, "node_cpu_seconds", ",cpu=\"0\",mode=\"idle\"", 300.0 * 0.995);
    counter(&mut out, "node_cpu_seconds", ",cpu=\"0\",mode=\"user\"", 300.0 * 0.005);
    let _ = writeln!(out, "# TYPE node_network_receive_bytes counter");
    counter(&mut out, "node_network_receive_bytes", ",device=\"eth0\"", 3_000.0);
    let _ = writeln!(out, "# TYPE node_network_transmit_bytes counter");
    counter(&mut out, "node_network_transmit_bytes", ",device=\"eth0\"", 3_000.0);
    let _ = writeln!(out, "# TYPE node_disk_read_bytes counter");
    counter(&mut out, "node_disk_read_bytes", ",device=\"vda\"", 0.0);
    let _ = writeln!(out, "# TYPE node_disk_written_bytes counter");
    counter(&mut out, "node_disk_written_bytes", ",device=\"vda\"", 1_000.0);
    for (name, value) in [("node_memory_MemTotal_bytes", 8e9), ("node_memory_MemAvailable_bytes", 6e9)] {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (id, until) in hosts {
            for t in (from..=*until).step_by(300) {
                let _ = writeln!(
                    out,
                    "{name}{{instance=\"ghost-{id}:9100\",job=\"node\",yunzhi_resource_id=\"{id}\"}} {value} {t}"
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[tokio::test]
async fn the_analysis_can_read_a_prometheus_store_instead_of_its_own_rollups() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let sys = s.login("sys_admin").await;
    let clerk = s.login("unit1_user").await;
    assert_eq!(s.get(&clerk, "/api/v1/efficiency/source").await.expect(200).body, json!({"kind": "rollups"}));
    // A host whose figures are only in Prometheus: Yunzhi's own rollups have nothing on it.
    let ca = s.login("cloud_admin").await;
    let unit1 = s.get(&clerk, "/api/v1/session").await.body["unit_id"].clone();
    // A system that declared no periodic load: its quiet months are idleness.
    let systems = s.all(&ca, "/api/v1/systems").await;
    let steady = |system: &Value| {
        systems.iter().any(|x| x["id"] == *system && x["periodic_load"].is_null() && x["unit_id"] == unit1)
    };
    let host = s
        .all(&ca, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host" && steady(&r["system_id"]))
        .unwrap();
    let id = host["id"].as_i64().unwrap();
    let today = yunzhi_domain::clock::district_date(s.state().now());
    // A week of data and a week's zombie window: promtool writes a block per
    // two hours, and Prometheus opens every one of them.
    let week = json!({"zombie": {"window_days": 7}});
    s.send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/rules", Some(&week), &[]).await.expect(200);
    // The idle host is scraped until a minute ago; a second host of the
    // district, which has no Yunzhi agent either, was last scraped an hour
    // and a half ago: its node_exporter was stopped.
    let stopped = s
        .all(&ca, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host" && r["id"] != host["id"])
        .unwrap();
    let stopped_id = stopped["id"].as_i64().unwrap();
    let tz = yunzhi_domain::clock::district_zone();
    let now = s.state().now().as_second();
    let from = today.to_zoned(tz).unwrap().timestamp().as_second() - 8 * 86_400 - 3600;
    let (scraped, stopped_at) =
        (from + (now - 60 - from) / 300 * 300, from + (now - 90 * 60 - from) / 300 * 300);
    let series = idle_hosts_openmetrics(&[(id, scraped), (stopped_id, stopped_at)], from);
    let prometheus = yunzhi_promsource::testing::start(&series).await;
    // Bad settings are refused, naming the field.
    let bad = json!({"kind": "prometheus", "url": "ftp://somewhere"});
    let r = s
        .send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/source", Some(&bad), &[])
        .await
        .expect(422);
    assert_eq!(r.body["field"], "url");
    let bad = json!({"kind": "prometheus", "url": prometheus.url, "step_secs": 420});
    let r = s
        .send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/source", Some(&bad), &[])
        .await
        .expect(422);
    assert_eq!(r.body["field"], "prometheus");
    let set = json!({"kind": "prometheus", "url": prometheus.url, "rate_window_secs": 600});
    s.send(reqwest::Method::PUT, Some(&clerk), "/api/v1/efficiency/source", Some(&set), &[])
        .await
        .expect(403);
    let r = s
        .send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/source", Some(&set), &[])
        .await
        .expect(200);
    assert_eq!(
        (r.body["step_secs"].as_u64(), r.body["resource_label"].as_str()),
        (Some(300), Some("yunzhi_resource_id"))
    );
    analyse(&s).await;
    let office = s.login("office").await;
    let zombies = s.all(&office, "/api/v1/findings?kind=zombie").await;
    let f = zombies
        .iter()
        .find(|f| f["resource_id"] == id)
        .expect("the idle host, read from Prometheus, is a zombie");
    assert_eq!(f["evidence"]["source"], "prometheus", "{f}");
    let p95 = f["evidence"]["days"][0]["cpu_p95"].as_f64().unwrap();
    assert!((p95 - 0.5).abs() < 0.01, "CPU p95 as Prometheus computes it: {f}");
    // Neither host has a Yunzhi agent; node_exporter stands in for it. The
    // one scraped a minute ago is monitored, the one stopped is silent.
    let agent_findings = |id: i64| {
        let (s, office) = (&s, &office);
        async move {
            let mut found = Vec::new();
            for kind in ["agent_missing", "agent_silent", "agent_tampered"] {
                let all = s.all(office, &format!("/api/v1/findings?kind={kind}&state=open")).await;
                found.extend(all.into_iter().filter(|f| f["resource_id"] == id));
            }
            found
        }
    };
    assert_eq!(agent_findings(id).await, Vec::<Value>::new());
    let silent = agent_findings(stopped_id).await;
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0]["kind"], "agent_silent", "{silent:?}");
    assert_eq!(silent[0]["evidence"]["source"], "prometheus", "{silent:?}");
    let last = jiff::Timestamp::from_second(stopped_at).unwrap().to_string();
    assert_eq!(silent[0]["evidence"]["last_report_at"], last, "dated to the scrape: {silent:?}");
    // Back to the rollups: the next pass finds nothing on the host (it has no rollups) and resolves it.
    let back = json!({"kind": "rollups"});
    s.send(reqwest::Method::PUT, Some(&sys), "/api/v1/efficiency/source", Some(&back), &[]).await.expect(200);
    analyse(&s).await;
    assert_eq!(zombie_finding(&s, &host).await["state"], "resolved");
    s.stop().await;
}
