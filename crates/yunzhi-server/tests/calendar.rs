//! The working-day calendar over HTTP: public arithmetic, the year the
//! calendar does not know, and the sys_admin loading the next year.

mod common;

use common::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    working_days_are_counted_by_the_statutory_calendar,
    the_sys_admin_loads_next_years_schedule
);

async fn public(s: &TestServer, path: &str) -> common::Reply {
    s.send(Method::GET, None, path, None, &[]).await
}

async fn working_days_are_counted_by_the_statutory_calendar(backend: Backend) {
    let s = TestServer::demo(backend).await;
    // 30 September 2026 + 3 working days: 1-7 October off, 8 and 9 on, Saturday 10 a make-up day.
    let r = public(&s, "/api/v1/calendar/working-days/add?from=2026-09-30&days=3").await.expect(200);
    assert_eq!(r.body, json!({"date": "2026-10-10"}));
    let r = public(&s, "/api/v1/calendar/working-days/count?from=2026-09-30&to=2026-10-12").await.expect(200);
    assert_eq!(r.body, json!({"days": 4}));
    // The plain arithmetic from a holiday.
    let r = public(&s, "/api/v1/calendar/working-days/add?from=2026-10-01&days=1").await.expect(200);
    assert_eq!(r.body["date"], "2026-10-08");

    let r = public(&s, "/api/v1/calendar/working-days/add?from=2026-12-28&days=7").await.expect(422);
    assert_eq!((r.code(), r.body["field"].as_str()), ("calendar_year_unknown", Some("from")));
    assert!(r.body["detail"].as_str().unwrap().contains("2027"));
    let r = public(&s, "/api/v1/calendar/working-days/count?from=2026-12-01&to=2027-01-10").await.expect(422);
    assert_eq!(r.code(), "calendar_year_unknown");

    let r = public(&s, "/api/v1/calendar/working-days/add?from=30/09/2026&days=3").await.expect(422);
    assert_eq!(r.body["field"], "from");
    let r = public(&s, "/api/v1/calendar/working-days/add?from=2026-09-30&days=0").await.expect(422);
    assert_eq!(r.body["field"], "days");
    let r = public(&s, "/api/v1/calendar/working-days/add?days=3").await.expect(422);
    assert_eq!(r.body["field"], "from");

    let years = public(&s, "/api/v1/calendar/years").await.expect(200);
    let known: Vec<_> =
        years.body["items"].as_array().unwrap().iter().map(|y| y["year"].as_i64().unwrap()).collect();
    assert_eq!(known, [2023, 2024, 2025, 2026]);
    let y = public(&s, "/api/v1/calendar/years/2026").await.expect(200);
    assert!(y.body["workdays"].as_array().unwrap().contains(&json!("2026-10-10")));
    public(&s, "/api/v1/calendar/years/2027").await.expect(404);
    s.stop().await;
}

fn year_2027() -> Value {
    // A schedule for the test: the real one is loaded when announced.
    json!({
        "year": 2027,
        "source": "测试用：2027年部分节假日安排",
        "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
        "workdays": []
    })
}

async fn the_sys_admin_loads_next_years_schedule(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let office = s.login("office").await;
    let r = s
        .send(Method::PUT, Some(&office), "/api/v1/calendar/years/2027", Some(&year_2027()), &[])
        .await
        .expect(403);
    assert_eq!(r.code(), "forbidden");
    let admin = s.login("sys_admin").await;
    let mut bad = year_2027();
    bad["workdays"] = json!(["2027-01-05"]);
    let r =
        s.send(Method::PUT, Some(&admin), "/api/v1/calendar/years/2027", Some(&bad), &[]).await.expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["errors"][0]["code"].as_str()),
        (Some("workdays[0]"), Some("not_a_weekend"))
    );
    let r = s
        .send(Method::PUT, Some(&admin), "/api/v1/calendar/years/2028", Some(&year_2027()), &[])
        .await
        .expect(422);
    assert_eq!(r.body["field"], "year");
    s.send(Method::PUT, Some(&admin), "/api/v1/calendar/years/2027", Some(&year_2027()), &[])
        .await
        .expect(200);

    // Now a deadline across the year's end is computed: Mon 28 Dec 2026 +
    // 7 working days, with 1 January (Fri) off: 29, 30, 31 Dec, 4, 5, 6, 7 Jan.
    let r = public(&s, "/api/v1/calendar/working-days/add?from=2026-12-28&days=7").await.expect(200);
    assert_eq!(r.body["date"], "2027-01-07");
    let auditor = s.login("audit_admin").await;
    let trail = s.all(&auditor, "/api/v1/audit?action=calendar.put_year&object_id=2027").await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["actor"], "sys_admin");
    s.stop().await;
}
