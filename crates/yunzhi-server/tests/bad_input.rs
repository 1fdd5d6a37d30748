//! Bad input gets a clear 4xx naming the field and the rule, and changes nothing.

mod common;

use common::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    malformed_oversized_and_mistyped_bodies_get_clear_answers,
    every_field_of_a_system_is_checked_and_nothing_is_written,
    every_field_of_a_unit_is_checked,
    bad_query_strings_and_ids_are_refused_cleanly,
);

fn system() -> Value {
    json!({
        "name": "招生入学系统二期",
        "mlps_level": 2,
        "project_ref": "青发改〔2026〕12号",
        "arch": "x86_64",
        "quota": {"vcpu": 32, "memory_gib": 64, "storage_gib": 2048},
        "quota_basis": "feasibility study §4.2",
        "periodic_load": {"description": "enrolment", "months": [7, 8]}
    })
}

async fn raw(s: &TestServer, token: &str, content_type: &str, body: Vec<u8>) -> common::Reply {
    s.post_bytes(token, "/api/v1/systems", content_type, body).await
}

async fn count(s: &TestServer, token: &str) -> usize {
    s.all(token, "/api/v1/systems").await.len()
}

async fn malformed_oversized_and_mistyped_bodies_get_clear_answers(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("unit1_user").await;
    let before = count(&s, &t).await;

    let r = raw(&s, &t, "text/plain", b"{}".to_vec()).await.expect(415);
    assert_eq!(r.code(), "unsupported_media_type");
    assert_eq!(r.headers["content-type"], "application/problem+json");

    let r = raw(&s, &t, "application/json", b"{\"name\": ".to_vec()).await.expect(400);
    assert_eq!(r.code(), "malformed_json");
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(r.body["request_id"], id, "the problem names its request");
    let traced = s
        .send(Method::GET, Some(&t), "/api/v1/systems/0", None, &[("x-request-id", "proxy-42")])
        .await
        .expect(404);
    assert_eq!(
        (traced.headers["x-request-id"].to_str().unwrap(), traced.body["request_id"].as_str()),
        ("proxy-42", Some("proxy-42"))
    );

    let status = s.post_declaring(&t, "/api/v1/systems", "application/json", 2 * 1024 * 1024).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    let mut unknown = system();
    unknown["colour"] = json!("red");
    let r = s.post(&t, "/api/v1/systems", unknown).await.expect(422);
    assert_eq!((r.code(), r.body["field"].as_str()), ("validation", Some("colour")));
    assert_eq!(r.body["errors"][0]["code"], "unknown_field");

    let mut nested_unknown = system();
    nested_unknown["quota"]["gpu"] = json!(1);
    let r = s.post(&t, "/api/v1/systems", nested_unknown).await.expect(422);
    assert_eq!(r.body["field"], "quota.gpu");

    let mut missing = system();
    missing.as_object_mut().unwrap().remove("quota_basis");
    let r = s.post(&t, "/api/v1/systems", missing).await.expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["errors"][0]["code"].as_str()),
        (Some("quota_basis"), Some("required"))
    );

    let mut mistyped = system();
    mistyped["quota"]["vcpu"] = json!("many");
    let r = s.post(&t, "/api/v1/systems", mistyped).await.expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["errors"][0]["code"].as_str()),
        (Some("quota.vcpu"), Some("wrong_type"))
    );

    let r = raw(&s, &t, "application/json", b"[1, 2]".to_vec()).await.expect(422);
    assert_eq!(r.body["errors"][0]["code"], "wrong_type");

    assert_eq!(count(&s, &t).await, before, "no refused request may write");
    s.stop().await;
}

async fn every_field_of_a_system_is_checked_and_nothing_is_written(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("unit1_user").await;
    let before = count(&s, &t).await;
    let cases: Vec<(&str, Value, &str, &str, Option<u64>)> = vec![
        ("name", json!(""), "name", "required", None),
        ("name", json!("x".repeat(101)), "name", "too_long", None),
        ("mlps_level", json!(4), "mlps_level", "mlps_level_out_of_range", Some(5)),
        ("mlps_level", json!(0), "mlps_level", "mlps_level_out_of_range", Some(5)),
        ("classified", json!(true), "classified", "classified_refused", Some(5)),
        ("arch", json!("riscv64"), "arch", "unknown_arch", None),
        ("quota", json!({"vcpu": -1, "memory_gib": 1, "storage_gib": 1}), "quota.vcpu", "out_of_range", None),
        ("quota", json!({"vcpu": 0, "memory_gib": 0, "storage_gib": 0}), "quota", "quota_empty", Some(8)),
        ("quota_basis", json!("  "), "quota_basis", "required", Some(8)),
        (
            "periodic_load",
            json!({"description": "x", "months": [13]}),
            "periodic_load.months[0]",
            "month_out_of_range",
            None,
        ),
        (
            "periodic_load",
            json!({"description": "x", "months": []}),
            "periodic_load.months",
            "required",
            Some(8),
        ),
        ("project_ref", json!("x".repeat(65)), "project_ref", "too_long", None),
        ("unit_id", json!(999), "unit_id", "unknown_unit", None),
    ];
    for (key, value, field, code, article) in cases {
        let mut body = system();
        body[key] = value.clone();
        let r = s.post(&t, "/api/v1/systems", body).await;
        assert_eq!(r.status, 422, "{key}={value}: {}", r.body);
        let e = r.body["errors"].as_array().and_then(|e| e.first()).cloned().unwrap_or(r.body.clone());
        assert_eq!(e["field"], field, "{key}={value}: {}", r.body);
        assert_eq!(e["code"], code, "{key}={value}: {}", r.body);
        assert_eq!(e["article"].as_u64(), article, "{key}={value}: {}", r.body);
        assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if let Some(a) = article {
            assert_eq!(r.body["article"].as_u64(), Some(a), "a rule of the regulation leads: {}", r.body);
            assert_eq!(r.body["code"], code);
        }
    }
    // A PATCH is checked the same way.
    let id = s.all(&t, "/api/v1/systems").await[0]["id"].as_i64().unwrap();
    let r = s.patch(&t, &format!("/api/v1/systems/{id}"), json!({"mlps_level": 9})).await.expect(422);
    assert_eq!(r.code(), "mlps_level_out_of_range");
    let r = s.patch(&t, &format!("/api/v1/systems/{id}"), json!({})).await.expect(422);
    assert_eq!(r.body["errors"][0]["code"], "empty_patch");
    let r = s
        .patch(&t, &format!("/api/v1/systems/{id}"), json!({"golive": {"self_check_on": "2026-13-01"}}))
        .await
        .expect(422);
    assert_eq!(r.body["field"], "golive.self_check_on");
    assert_eq!(count(&s, &t).await, before, "no refused request may write");
    s.stop().await;
}

async fn every_field_of_a_unit_is_checked(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("sys_admin").await;
    let good = yunzhi_domain::unit::CreditCode::with_check_character("11310118002461111").unwrap();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"name": "", "credit_code": good}), "name", "required"),
        (json!({"name": "青浦区档案局", "credit_code": "12345"}), "credit_code", "credit_code_length"),
        (
            json!({"name": "青浦区档案局", "credit_code": format!("{}0", &good[..17])}),
            "credit_code",
            "credit_code_checksum",
        ),
        (
            json!({"name": "青浦区档案局", "credit_code": good, "contacts": [{"name": "王", "phone": "call me"}]}),
            "contacts[0].phone",
            "phone_format",
        ),
    ];
    let before = s.all(&t, "/api/v1/units").await.len();
    for (body, field, code) in cases {
        let r = s.post(&t, "/api/v1/units", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(
            (r.body["field"].as_str(), r.body["errors"][0]["code"].as_str()),
            (Some(field), Some(code)),
            "{}",
            r.body
        );
    }
    assert_eq!(s.all(&t, "/api/v1/units").await.len(), before);
    let ok =
        s.post(&t, "/api/v1/units", json!({"name": "青浦区档案局", "credit_code": good})).await.expect(201);
    let dup = s.post(&t, "/api/v1/units", json!({"name": "另一个", "credit_code": good})).await.expect(409);
    assert_eq!((dup.code(), dup.body["field"].as_str()), ("duplicate", Some("credit_code")));
    assert!(ok.body["id"].as_i64().is_some());
    s.stop().await;
}

async fn bad_query_strings_and_ids_are_refused_cleanly(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let t = s.login("cloud_admin").await;
    let r = s.get(&t, "/api/v1/systems?limit=0").await.expect(422);
    assert_eq!(r.body["field"], "limit");
    let r = s.get(&t, "/api/v1/systems?limit=abc").await.expect(400);
    assert_eq!(r.code(), "bad_query");
    let r = s.get(&t, "/api/v1/systems?cursor=xyz").await.expect(422);
    assert_eq!(r.body["field"], "cursor");
    let r = s.get(&t, "/api/v1/systems/not-a-number").await.expect(404);
    assert_eq!(r.code(), "not_found");
    let r = s.get(&t, "/api/v1/nothing-here").await.expect(404);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let r = s.send(Method::PUT, Some(&t), "/api/v1/units", Some(&json!({})), &[]).await.expect(405);
    assert_eq!(r.code(), "method_not_allowed");
    let r =
        s.send(Method::POST, Some(&t), "/api/v1/units", Some(&json!({})), &[("idempotency-key", "")]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    s.stop().await;
}
