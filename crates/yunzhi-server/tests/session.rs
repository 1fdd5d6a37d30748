//! Signing in: passwords, lockout, second factor, idle expiry, demo accounts.

mod common;

use common::{Backend, DEMO_PASSWORD, TestServer};
use jiff::SignedDuration;
use serde_json::json;
use yunzhi_domain::access::Actor;
use yunzhi_domain::ids::UserId;
use yunzhi_domain::role::{Role, RoleSet};
use yunzhi_domain::user::NewUser;
use yunzhi_server::{Settings, auth};
use yunzhi_store::{AuditCtx, Store};

on_both_backends!(
    health_metrics_and_openapi_answer,
    a_demo_account_signs_in_and_out,
    five_wrong_passwords_lock_the_account_even_against_the_right_one,
    a_session_unused_past_the_idle_limit_expires,
    roles_other_than_unit_staff_need_the_second_factor,
    demo_accounts_do_not_exist_outside_demo_mode,
    an_account_holder_changes_their_own_password_and_their_other_sessions_end,
    an_account_holder_enrols_a_second_factor_and_sign_in_then_asks_for_it,
);

/// A unit clerk of unit 1 that is not a demo account (demo accounts skip the
/// second factor in demo mode), made by the system administrator.
async fn real_clerk(s: &TestServer, username: &str) {
    let sys = s.login("sys_admin").await;
    let clerk = s.login("unit1_user").await;
    let unit = s.get(&clerk, "/api/v1/session").await.body["unit_id"].clone();
    let body = json!({"username": username, "display_name": "张经办", "password": "Staff-Pass-2026",
        "roles": ["unit_user"], "unit_id": unit});
    s.post(&sys, "/api/v1/users", body).await.expect(201);
}

async fn an_account_holder_changes_their_own_password_and_their_other_sessions_end(backend: Backend) {
    let s = TestServer::demo(backend).await;
    real_clerk(&s, "clerk_zhang").await;
    let token = |r: common::Reply| r.body["token"].as_str().unwrap().to_owned();
    let here = token(s.login_with("clerk_zhang", "Staff-Pass-2026", None).await.expect(201));
    let elsewhere = token(s.login_with("clerk_zhang", "Staff-Pass-2026", None).await.expect(201));
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let wrong =
        s.post(&here, "/api/v1/session/password", change("Not-The-Pass-1", "Brand-New-Pass-2026")).await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.code(), wrong.body["field"].as_str()),
        (422, "validation", Some("current_password"))
    );
    let weak =
        s.post(&here, "/api/v1/session/password", change("Staff-Pass-2026", "short")).await.expect(422);
    assert_eq!(weak.body["field"], "new_password");
    let same = s.post(&here, "/api/v1/session/password", change("Staff-Pass-2026", "Staff-Pass-2026")).await;
    assert_eq!(same.status.as_u16(), 422);
    assert_eq!(same.body["errors"][0]["code"], "same_password");
    s.post(&here, "/api/v1/session/password", change("Staff-Pass-2026", "Brand-New-Pass-2026"))
        .await
        .expect(204);
    // This session goes on; the one in another browser has ended.
    s.get(&here, "/api/v1/session").await.expect(200);
    s.get(&elsewhere, "/api/v1/session").await.expect(401);
    s.login_with("clerk_zhang", "Staff-Pass-2026", None).await.expect(401);
    s.login_with("clerk_zhang", "Brand-New-Pass-2026", None).await.expect(201);
    let auditor = s.login("audit_admin").await;
    let log = s.all(&auditor, "/api/v1/audit").await;
    assert!(log.iter().any(|e| e["action"] == "account.password_changed"));
    // The wrong current password counted towards the lockout, as at sign-in.
    assert!(log.iter().any(|e| e["action"] == "session.login_failed"), "{log:?}");
    s.stop().await;
}

async fn an_account_holder_enrols_a_second_factor_and_sign_in_then_asks_for_it(backend: Backend) {
    let s = TestServer::demo(backend).await;
    real_clerk(&s, "clerk_li").await;
    let t = s.login_with("clerk_li", "Staff-Pass-2026", None).await.expect(201).body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let fresh = s.post(&t, "/api/v1/session/totp/secret", json!(null)).await.expect(200).body;
    let secret = fresh["secret"].as_str().unwrap().to_owned();
    assert!(fresh["uri"].as_str().unwrap().starts_with("otpauth://totp/Yunzhi:clerk_li?secret="));
    let raw = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let now = s.clock.as_ref().now_seconds();
    let code = auth::totp_code(&raw, now);
    let enrol = |password: &str, code: &str| json!({"password": password, "secret": secret, "code": code});
    let put = async |body: serde_json::Value| {
        s.send(reqwest::Method::PUT, Some(&t), "/api/v1/session/totp", Some(&body), &[]).await
    };
    let r = put(enrol("Staff-Pass-2026", "000000")).await.expect(422);
    assert_eq!(r.body["field"], "code");
    let r = put(enrol("Wrong-Pass-2026", &code)).await.expect(422);
    assert_eq!(r.body["field"], "password");
    // Until a code proves the seed, sign-in goes on without one.
    s.login_with("clerk_li", "Staff-Pass-2026", None).await.expect(201);
    put(enrol("Staff-Pass-2026", &code)).await.expect(204);
    let missing = s.login_with("clerk_li", "Staff-Pass-2026", None).await.expect(401);
    assert_eq!(missing.code(), "totp_required");
    // The enrolment's code is spent; the next step's is taken.
    s.login_with("clerk_li", "Staff-Pass-2026", Some(&code)).await.expect(401);
    let next = auth::totp_code(&raw, now + 30);
    s.login_with("clerk_li", "Staff-Pass-2026", Some(&next)).await.expect(201);
    s.stop().await;
}

async fn health_metrics_and_openapi_answer(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let h = s.send(reqwest::Method::GET, None, "/healthz", None, &[]).await.expect(200);
    assert_eq!(h.body, json!({"status": "ok"}));
    let doc = s.send(reqwest::Method::GET, None, "/api/v1/openapi.json", None, &[]).await.expect(200);
    for path in [
        "/api/v1/session",
        "/api/v1/session/password",
        "/api/v1/session/totp",
        "/api/v1/session/totp/secret",
        "/api/v1/units",
        "/api/v1/systems/{id}",
        "/api/v1/audit/verify",
        "/api/v1/platforms",
        "/api/v1/findings",
        "/api/v1/resources/{id}/actions",
        "/api/v1/platforms/{id}/reconcile",
        "/api/v1/jobs/{id}",
        "/api/v1/resources/{id}/enrollment",
        "/api/v1/agent/enroll",
        "/api/v1/agent/report",
        "/api/v1/findings/{id}/review",
        "/api/v1/warnings",
        "/api/v1/write",
        "/api/v1/ingest-tokens",
        "/api/v1/warnings/{id}/response",
        "/api/v1/warnings/{id}/decision",
        "/api/v1/resources/{id}/readings",
        "/api/v1/efficiency/rules",
        "/api/v1/efficiency/source",
    ] {
        assert!(doc.body["paths"][path].is_object(), "the OpenAPI document lacks {path}");
    }
    let m = s.send(reqwest::Method::GET, None, "/metrics", None, &[]).await.expect(200);
    let text = m.body.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("yunzhi_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
    s.stop().await;
}

async fn a_demo_account_signs_in_and_out(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let r = s.login_with("unit1_user", DEMO_PASSWORD, None).await.expect(201);
    assert_eq!(r.body["roles"], json!(["unit_user"]));
    assert!(r.body["expires_at"].as_str().unwrap().ends_with("+08:00"));
    let token = r.body["token"].as_str().unwrap().to_owned();
    let me = s.get(&token, "/api/v1/session").await.expect(200);
    assert_eq!(me.body["username"], "unit1_user");
    s.send(reqwest::Method::DELETE, Some(&token), "/api/v1/session", None, &[]).await.expect(204);
    let after = s.get(&token, "/api/v1/session").await.expect(401);
    assert_eq!(after.code(), "unauthenticated");
    let wrong = s.login_with("unit1_user", "Wrong-Password-1", None).await.expect(401);
    assert_eq!(wrong.code(), "invalid_credentials");
    let unknown = s.login_with("nobody_here", "Wrong-Password-1", None).await.expect(401);
    assert_eq!(unknown.problem(), wrong.problem(), "an unknown user answers exactly as a wrong password");
    s.stop().await;
}

async fn five_wrong_passwords_lock_the_account_even_against_the_right_one(backend: Backend) {
    let s = TestServer::demo(backend).await;
    for i in 1..=4 {
        let r = s.login_with("unit2_user", "Wrong-Password-1", None).await;
        assert_eq!(r.status, 401, "failure {i}");
    }
    let fifth = s.login_with("unit2_user", "Wrong-Password-1", None).await.expect(423);
    assert_eq!(fifth.code(), "account_locked");
    let right = s.login_with("unit2_user", DEMO_PASSWORD, None).await.expect(423);
    assert_eq!(right.code(), "account_locked");
    // The lock lasts the configured 15 minutes, then the right password works.
    s.clock.advance(SignedDuration::from_mins(16));
    s.login_with("unit2_user", DEMO_PASSWORD, None).await.expect(201);
    // The sys_admin can also lift a lock before it runs out.
    for _ in 0..5 {
        s.login_with("unit2_user", "Wrong-Password-1", None).await;
    }
    s.login_with("unit2_user", DEMO_PASSWORD, None).await.expect(423);
    let admin = s.login("sys_admin").await;
    let users = s.all(&admin, "/api/v1/users").await;
    let id = users.iter().find(|u| u["username"] == "unit2_user").unwrap()["id"].as_i64().unwrap();
    s.post(&admin, &format!("/api/v1/users/{id}/unlock"), json!(null)).await.expect(204);
    s.login_with("unit2_user", DEMO_PASSWORD, None).await.expect(201);
    s.stop().await;
}

async fn a_session_unused_past_the_idle_limit_expires(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let token = s.login("office").await;
    s.clock.advance(SignedDuration::from_mins(20));
    s.get(&token, "/api/v1/session").await.expect(200);
    // Used 20 minutes in, so it lives 30 more.
    s.clock.advance(SignedDuration::from_mins(25));
    s.get(&token, "/api/v1/session").await.expect(200);
    s.clock.advance(SignedDuration::from_mins(31));
    let r = s.get(&token, "/api/v1/session").await.expect(401);
    assert_eq!(r.code(), "session_expired");
    s.get(&token, "/api/v1/session").await.expect(401);
    s.stop().await;
}

fn sys(role: Role) -> Actor {
    Actor {
        user_id: UserId(0),
        username: "test".into(),
        roles: RoleSet::from_stored(vec![role]),
        unit_id: None,
    }
}

async fn roles_other_than_unit_staff_need_the_second_factor(backend: Backend) {
    let s = TestServer::start(backend, Settings::default()).await;
    let store = Store::open(s.db_url()).await.unwrap();
    let secret = auth::new_totp_secret().unwrap();
    let admin = sys(Role::SysAdmin).account_admin().unwrap();
    let new = NewUser {
        username: "root_admin".into(),
        display_name: "系统管理员".into(),
        password: String::new(),
        roles: RoleSet::from_stored(vec![Role::SysAdmin]),
        unit_id: None,
        email: None,
    };
    let no_factor = NewUser {
        username: "no_factor".into(),
        roles: RoleSet::from_stored(vec![Role::Office]),
        ..new.clone()
    };
    let hash = auth::hash_password("Root-Admin-2026").unwrap();
    let mut tx = store.begin().await.unwrap();
    let ctx = AuditCtx::system("test", jiff::Timestamp::now());
    // Stored sealed, as the server seals it; the plain seed never reaches the database.
    let sealed = yunzhi_server::secrets::SecretBox::new(common::SECRET_KEY)
        .seal(secret.as_bytes(), "totp:root_admin")
        .unwrap();
    tx.create_user(&admin, &ctx, &new, &hash, Some(&sealed), false).await.unwrap();
    tx.create_user(&admin, &ctx, &no_factor, &hash, None, false).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    let missing = s.login_with("root_admin", "Root-Admin-2026", None).await.expect(401);
    assert_eq!(missing.code(), "totp_required");
    let wrong = s.login_with("root_admin", "Root-Admin-2026", Some("000000")).await.expect(401);
    assert_eq!(wrong.code(), "totp_invalid");
    let raw = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let code = auth::totp_code(&raw, s.clock.as_ref().now_seconds());
    let ok = s.login_with("root_admin", "Root-Admin-2026", Some(&code)).await.expect(201);
    let token = ok.body["token"].as_str().unwrap().to_owned();
    // The same code a second time is refused: it may have been seen.
    let replay = s.login_with("root_admin", "Root-Admin-2026", Some(&code)).await.expect(401);
    assert_eq!(replay.code(), "totp_invalid");
    assert!(replay.body["detail"].as_str().unwrap().contains("already been used"));

    let unenrolled = s.login_with("no_factor", "Root-Admin-2026", None).await.expect(403);
    assert_eq!(unenrolled.code(), "totp_not_enrolled");

    // A new approver gets the enrolment URI once, and then signs in with it.
    let created = s
        .post(
            &token,
            "/api/v1/users",
            json!({"username": "chief_li", "display_name": "李科长", "password": "Chief-Li-2026", "roles": ["infra_chief"]}),
        )
        .await
        .expect(201);
    let uri = created.body["totp_uri"].as_str().unwrap();
    let secret = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    let raw = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let code = auth::totp_code(&raw, s.clock.as_ref().now_seconds());
    s.login_with("chief_li", "Chief-Li-2026", Some(&code)).await.expect(201);
    // Unit staff sign in with the password alone.
    let unit = s
        .post(&token, "/api/v1/units", json!({"name": "青浦区教育局", "credit_code": unit_code()}))
        .await
        .expect(201);
    let staff = s
        .post(
            &token,
            "/api/v1/users",
            json!({"username": "clerk_wang", "display_name": "王", "password": "Clerk-Wang-2026",
                   "roles": ["unit_user"], "unit_id": unit.body["id"]}),
        )
        .await
        .expect(201);
    assert!(staff.body.get("totp_uri").is_none());
    s.login_with("clerk_wang", "Clerk-Wang-2026", None).await.expect(201);
    s.stop().await;
}

fn unit_code() -> String {
    yunzhi_domain::unit::CreditCode::with_check_character("11310118002469999").unwrap()
}

async fn demo_accounts_do_not_exist_outside_demo_mode(backend: Backend) {
    let s = TestServer::demo(backend).await;
    s.login("cloud_admin").await;
    let db = s.stop_keep_db().await;
    let s = TestServer::start_on(backend, db, Settings::default()).await;
    let r = s.login_with("cloud_admin", DEMO_PASSWORD, None).await.expect(401);
    assert_eq!(r.code(), "invalid_credentials");
    // And the clock endpoint is not there at all.
    let c = s
        .send(reqwest::Method::POST, None, "/api/v1/demo/clock", Some(&json!({"today": "2027-01-04"})), &[])
        .await;
    assert_eq!(c.status, 404);
    s.stop().await;
}

trait Seconds {
    fn now_seconds(&self) -> i64;
}

impl Seconds for yunzhi_domain::clock::ShiftableClock {
    fn now_seconds(&self) -> i64 {
        yunzhi_domain::clock::Clock::now(self).as_second()
    }
}
