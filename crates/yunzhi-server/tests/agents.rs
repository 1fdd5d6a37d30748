//! Monitoring agents (Art. 13): a host's one-time enrolment code, the
//! agent's enrolment, its reports rolled up by hour and day, resends and
//! restarted sequences.

mod common;

use common::{Backend, TestServer};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

on_both_backends!(
    an_enrolled_agent_reports_and_its_readings_roll_up_by_hour_and_day,
    an_enrolment_code_is_for_one_host_of_ones_own_unit_and_works_once,
    a_resent_batch_is_taken_once_and_a_restarted_count_is_noted,
    rollups_are_kept_400_days_and_deleted_after,
);

const SM3: &str = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";

/// A host of unit 1 in the demo district.
async fn host_of_unit1(s: &TestServer) -> Value {
    let admin = s.login("unit1_admin").await;
    s.all(&admin, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host")
        .unwrap()
}

async fn enrol(s: &TestServer, host: i64) -> String {
    let admin = s.login("unit1_admin").await;
    let code = s.post(&admin, &format!("/api/v1/resources/{host}/enrollment"), json!(null)).await.expect(201);
    let body = json!({"code": code.body["code"], "hostname": "web-01", "machine_id": "4f1c", "version": "0.1.0", "binary_sm3": SM3});
    let r = s.send(reqwest::Method::POST, None, "/api/v1/agent/enroll", Some(&body), &[]).await.expect(201);
    assert_eq!(r.body["resource_id"], host);
    r.body["credential"].as_str().unwrap().to_owned()
}

fn reading(at: Timestamp, cpu: f64) -> Value {
    json!({"at": at.to_string(), "cpu_pct": cpu, "memory_pct": 50.0, "disk_read_bps": 1000.0, "disk_write_bps": 0.0,
           "net_rx_bps": 2000.0, "net_tx_bps": 0.0, "sessions": 2, "listening": 4})
}

fn report(sequence: i64, samples: Vec<Value>, now: Timestamp) -> Value {
    json!({"sequence": sequence, "boot_id": "b-1", "version": "0.1.0", "binary_sm3": SM3,
           "sent_at": now.to_string(), "samples": samples})
}

async fn an_enrolled_agent_reports_and_its_readings_roll_up_by_hour_and_day(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = host_of_unit1(&s).await["id"].as_i64().unwrap();
    let credential = enrol(&s, host).await;
    let now = s.state().now();
    // Ten readings a minute apart, all in the hour before this one: CPU 0, 10, … 90 %;
    // the last five count the connections accepted (5, 6, … 9), the first five do not say.
    let this_hour = now.as_millisecond() - now.as_millisecond().rem_euclid(3_600_000);
    let start = Timestamp::from_millisecond(this_hour - 3_600_000).unwrap() + SignedDuration::from_mins(5);
    let samples: Vec<Value> = (0..10)
        .map(|i| {
            let mut r = reading(start + SignedDuration::from_mins(i), 10.0 * i as f64);
            if i >= 5 {
                r["accepted"] = json!(i);
            }
            r
        })
        .collect();
    let r = s.post(&credential, "/api/v1/agent/report", report(1, samples, now)).await.expect(202);
    assert_eq!((r.body["accepted"].as_u64(), r.body["next_sequence"].as_i64()), (Some(10), Some(2)));

    let clerk = s.login("unit1_user").await;
    let days = s.get(&clerk, &format!("/api/v1/resources/{host}/metrics")).await.expect(200).body;
    let total: u64 = days.as_array().unwrap().iter().map(|d| d["samples"].as_u64().unwrap()).sum();
    assert_eq!(total, 10);
    let hours = s.get(&clerk, &format!("/api/v1/resources/{host}/metrics?span=hour")).await.expect(200).body;
    let hours = hours.as_array().unwrap();
    assert_eq!(hours.len(), 1, "ten minutes of one hour: {hours:?}");
    let h = &hours[0];
    assert_eq!(
        (h["cpu_max"].as_f64(), h["cpu_min"].as_f64(), h["cpu_avg"].as_f64()),
        (Some(90.0), Some(0.0), Some(45.0))
    );
    assert_eq!(h["cpu_p95"].as_f64(), Some(90.0));
    // The first reading stands for one minute (no previous one), each next for its minute.
    assert_eq!(h["net_bytes"].as_f64(), Some(2000.0 * 60.0 * 10.0));
    assert_eq!(h["sessions_max"].as_u64(), Some(2));
    assert_eq!(h["accepted"].as_u64(), Some(35), "the counted readings' connections, summed");
    // Memory and throughput have their least, most, average and p95 too.
    let figures = |keys: &[&str]| keys.iter().map(|k| h[*k].as_f64()).collect::<Vec<_>>();
    assert_eq!(figures(&["memory_min", "memory_max", "memory_p95"]), [Some(50.0); 3], "{h}");
    assert_eq!(
        figures(&["net_avg_bps", "net_min_bps", "net_max_bps", "net_p95_bps"]),
        [Some(2000.0); 4],
        "{h}"
    );
    assert_eq!(
        figures(&["disk_avg_bps", "disk_min_bps", "disk_max_bps", "disk_p95_bps"]),
        [Some(1000.0); 4],
        "{h}"
    );
    let day = &s.get(&clerk, &format!("/api/v1/resources/{host}/metrics")).await.expect(200).body[0];
    assert_eq!(
        (day["memory_p95"].as_f64(), day["net_avg_bps"].as_f64(), day["accepted"].as_u64()),
        (Some(50.0), Some(2000.0), Some(35)),
        "{day}"
    );
    let agent = s.get(&clerk, &format!("/api/v1/resources/{host}/agent")).await.expect(200).body;
    assert_eq!((agent["last_sequence"].as_i64(), agent["binary_sm3"].as_str()), (Some(1), Some(SM3)));
    assert!(agent["last_report_at"].is_string());
    // The raw readings are kept as they came, for the evidence charts.
    let day = yunzhi_domain::clock::district_date(start);
    let raw = s
        .get(&clerk, &format!("/api/v1/resources/{host}/readings?from={day}&to={day}"))
        .await
        .expect(200)
        .body;
    let cpu: Vec<f64> = raw.as_array().unwrap().iter().map(|r| r["cpu_pct"].as_f64().unwrap()).collect();
    assert_eq!(cpu, (0..10).map(|i| 10.0 * f64::from(i)).collect::<Vec<_>>());
    assert_eq!(raw[3]["at"], (start + SignedDuration::from_mins(3)).to_string());
    assert_eq!((raw[0]["sessions"].as_u64(), raw[0]["net_rx_bps"].as_f64()), (Some(2), Some(2000.0)));
    // Connections accepted as counted, and none where the reading did not count them.
    let accepted: Vec<Option<u64>> = raw.as_array().unwrap().iter().map(|r| r["accepted"].as_u64()).collect();
    assert_eq!(accepted, (0..10).map(|i| (i >= 5).then_some(i)).collect::<Vec<_>>());
    let r = s
        .get(&clerk, &format!("/api/v1/resources/{host}/readings?from=2026-01-01&to=2026-01-03"))
        .await
        .expect(422);
    assert_eq!(r.body["field"], "from");
    // Another unit sees neither.
    let other = s.login("unit2_user").await;
    s.get(&other, &format!("/api/v1/resources/{host}/readings")).await.expect(404);
    s.get(&other, &format!("/api/v1/resources/{host}/metrics")).await.expect(404);
    s.get(&other, &format!("/api/v1/resources/{host}/agent")).await.expect(404);
    let m = s.send(reqwest::Method::GET, None, "/metrics", None, &[]).await.expect(200);
    let text = m.body.as_str().unwrap().to_owned();
    assert!(text.contains("yunzhi_ingested_samples_total{source=\"agent\"} 10"), "{text}");

    // Bad input changes nothing and names the sample and the field.
    let mut bad = report(2, vec![reading(now, 140.0)], now);
    let r = s.post(&credential, "/api/v1/agent/report", bad.clone()).await.expect(422);
    assert_eq!(r.body["field"], "samples[0].cpu_pct");
    bad["samples"] = json!([]);
    bad["binary_sm3"] = json!("not-a-digest");
    let r = s.post(&credential, "/api/v1/agent/report", bad).await.expect(422);
    assert_eq!(r.body["field"], "binary_sm3");
    let r = s.post("not-a-credential", "/api/v1/agent/report", report(2, vec![], now)).await.expect(401);
    assert_eq!(r.code(), "invalid_credential");
    let r = s.get(&clerk, &format!("/api/v1/resources/{host}/metrics?span=week")).await.expect(422);
    assert_eq!(r.body["field"], "span");
    s.stop().await;
}

async fn an_enrolment_code_is_for_one_host_of_ones_own_unit_and_works_once(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = host_of_unit1(&s).await["id"].as_i64().unwrap();
    let clerk = s.login("unit1_user").await;
    s.post(&clerk, &format!("/api/v1/resources/{host}/enrollment"), json!(null)).await.expect(403);
    let other_admin = s.login("unit2_admin").await;
    s.post(&other_admin, &format!("/api/v1/resources/{host}/enrollment"), json!(null)).await.expect(404);
    let admin = s.login("unit1_admin").await;
    let storage = s
        .all(&admin, "/api/v1/resources")
        .await
        .into_iter()
        .find(|r| r["kind"] != "cloud_host")
        .expect("the demo gives unit 1 block storage");
    let r = s
        .post(&admin, &format!("/api/v1/resources/{}/enrollment", storage["id"]), json!(null))
        .await
        .expect(409);
    assert_eq!(r.code(), "not_a_host");
    let ca = s.login("cloud_admin").await;
    let code =
        s.post(&ca, &format!("/api/v1/resources/{host}/enrollment"), json!(null)).await.expect(201).body;
    let typed = code["code"].as_str().unwrap().to_lowercase().replace('-', " ");
    let body = json!({"code": typed, "hostname": "web-01", "version": "0.1.0", "binary_sm3": SM3});
    s.send(reqwest::Method::POST, None, "/api/v1/agent/enroll", Some(&body), &[]).await.expect(201);
    let again =
        s.send(reqwest::Method::POST, None, "/api/v1/agent/enroll", Some(&body), &[]).await.expect(401);
    assert_eq!(again.code(), "invalid_enrollment_code");
    let auditor = s.login("audit_admin").await;
    assert_eq!(s.all(&auditor, "/api/v1/audit?action=agent.enroll").await.len(), 1);
    assert_eq!(s.all(&auditor, "/api/v1/audit?action=agent.enrollment_code").await.len(), 1);
    s.stop().await;
}

async fn a_resent_batch_is_taken_once_and_a_restarted_count_is_noted(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = host_of_unit1(&s).await["id"].as_i64().unwrap();
    let credential = enrol(&s, host).await;
    let now = s.state().now();
    let first = report(1, vec![reading(now - SignedDuration::from_mins(2), 5.0)], now);
    s.post(&credential, "/api/v1/agent/report", first.clone()).await.expect(202);
    // The answer was lost; the agent sends the same batch again.
    let again = s.post(&credential, "/api/v1/agent/report", first).await.expect(200);
    assert_eq!((again.body["accepted"].as_u64(), again.body["duplicate"].as_bool()), (Some(0), Some(true)));
    let second = report(2, vec![reading(now - SignedDuration::from_mins(1), 6.0)], now);
    s.post(&credential, "/api/v1/agent/report", second).await.expect(202);
    // Counting from 1 again with new readings: reinstalled, or replaced.
    let restarted = report(1, vec![reading(now, 7.0)], now);
    s.post(&credential, "/api/v1/agent/report", restarted).await.expect(202);
    let clerk = s.login("unit1_user").await;
    let agent = s.get(&clerk, &format!("/api/v1/resources/{host}/agent")).await.expect(200).body;
    assert_eq!(agent["sequence_resets"], 1);
    let days = s.get(&clerk, &format!("/api/v1/resources/{host}/metrics")).await.expect(200).body;
    let total: u64 = days.as_array().unwrap().iter().map(|d| d["samples"].as_u64().unwrap()).sum();
    assert_eq!(total, 3, "each reading once");
    // The restarted count is a sign of tampering...
    common::analyse(&s).await;
    let office = s.login("office").await;
    let tampered = |all: Vec<Value>| all.into_iter().find(|f| f["resource_id"] == host);
    let found = tampered(s.all(&office, "/api/v1/findings?kind=agent_tampered&state=open").await)
        .expect("a tampering finding");
    assert!(found["evidence"].to_string().contains("sequence"), "{found}");
    // ...until the host's agent is enrolled afresh, with a code the unit
    // asks for: the new agent starts with a clean record, and the finding
    // no longer holds (it stays on record, resolved).
    let credential = enrol(&s, host).await;
    let later = s.state().now();
    s.post(&credential, "/api/v1/agent/report", report(1, vec![reading(later, 8.0)], later))
        .await
        .expect(202);
    let agent = s.get(&clerk, &format!("/api/v1/resources/{host}/agent")).await.expect(200).body;
    assert_eq!(
        (agent["sequence_resets"].as_i64(), agent["last_sequence"].as_i64()),
        (Some(0), Some(1)),
        "{agent}"
    );
    common::analyse(&s).await;
    let after = s.get(&office, &format!("/api/v1/findings/{}", found["id"])).await.expect(200).body;
    assert_eq!(after["state"], "resolved", "{after}");
    s.stop().await;
}

async fn rollups_are_kept_400_days_and_deleted_after(backend: Backend) {
    use yunzhi_domain::clock::Clock;
    use yunzhi_domain::monitoring::Rollup;
    use yunzhi_store::Span;
    let s = TestServer::start(backend, yunzhi_server::Settings { demo: true, ..Default::default() }).await;
    let state = s.state();
    let host = host_of_unit1(&s).await["id"].as_i64().unwrap();
    // The scheduler prunes once a district day, and it ticked as the server
    // started: the rollups are written for tomorrow's window, then the
    // clock moves to tomorrow.
    let today = state.clock.today().tomorrow().unwrap();
    let day = |back: i64| today.checked_sub(jiff::Span::new().days(back)).unwrap();
    let midnight = |back: i64| {
        day(back).to_zoned(yunzhi_domain::clock::district_zone()).unwrap().timestamp().as_millisecond()
    };
    let r = Rollup { samples: 12, cpu_sum: 120.0, cpu_min: 5.0, cpu_max: 20.0, ..Default::default() };
    let (kept, gone) = (399, 400);
    let mut tx = state.store.begin().await.unwrap();
    for back in [kept, gone] {
        tx.put_rollup(Span::Day, host, &day(back).to_string(), &r).await.unwrap();
        tx.put_rollup(Span::Hour, host, &midnight(back).to_string(), &r).await.unwrap();
        // The last hour of the day before the window.
        tx.put_rollup(Span::Hour, host, &(midnight(back) - 3_600_000).to_string(), &r).await.unwrap();
    }
    tx.commit().await.unwrap();
    state.clock.advance(SignedDuration::from_hours(24));
    assert_eq!(state.clock.today(), today);
    yunzhi_server::scheduler::tick(state).await.unwrap();
    let days = state.store.daily_rollups(host, day(500), today).await.unwrap();
    assert_eq!(days.iter().map(|(d, _)| *d).collect::<Vec<_>>(), vec![day(kept)], "400 days, today included");
    let hours = state
        .store
        .hourly_rollups(host, Timestamp::from_millisecond(midnight(500)).unwrap(), state.now())
        .await
        .unwrap();
    let starts: Vec<i64> = hours.iter().map(|(at, _)| at.as_millisecond()).collect();
    assert_eq!(starts, vec![midnight(kept)], "the window starts at its first day's midnight in Shanghai");
    s.stop().await;
}
