//! Walks every endpoint with every role and checks who may do what: allowed
//! roles get their answer, others 403, another unit's object 404, and no
//! one without a session gets anywhere.

mod common;

use common::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(every_role_may_do_exactly_its_job);

const ROLES: [&str; 9] = [
    "unit1_user",
    "unit1_admin",
    "cloud_admin",
    "infra_chief",
    "bdc_leader",
    "office",
    "sys_admin",
    "sec_admin",
    "audit_admin",
];

const EVERYONE_BUT_AUDITOR: &[&str] = &[
    "unit1_user",
    "unit1_admin",
    "cloud_admin",
    "infra_chief",
    "bdc_leader",
    "office",
    "sys_admin",
    "sec_admin",
];

struct Case {
    method: Method,
    path: String,
    body: Option<Box<dyn Fn(usize) -> Value>>,
    /// A raw body with its content type instead of JSON (uploads).
    raw: Option<(&'static str, Vec<u8>)>,
    /// Roles that get through (any answer but 401/403/404).
    allowed: &'static [&'static str],
    /// Roles for whom the object does not exist (another unit's).
    hidden: &'static [&'static str],
}

fn case(method: Method, path: String, allowed: &'static [&'static str]) -> Case {
    Case { method, path, body: None, raw: None, allowed, hidden: &[] }
}

fn credit_code(n: usize) -> String {
    yunzhi_domain::unit::CreditCode::with_check_character(&format!("11310118{:09}", 700_000 + n)).unwrap()
}

async fn every_role_may_do_exactly_its_job(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let ca = s.login("cloud_admin").await;
    let systems = s.all(&ca, "/api/v1/systems").await;
    let u1 = s.login("unit1_user").await;
    let unit1 = s.get(&u1, "/api/v1/session").await.body["unit_id"].as_i64().unwrap();
    let own_system = systems.iter().find(|x| x["unit_id"] == json!(unit1)).unwrap()["id"].clone();
    let other_system = systems.iter().find(|x| x["unit_id"] != json!(unit1)).unwrap();
    let (other_system_id, unit2) = (other_system["id"].clone(), other_system["unit_id"].clone());
    let units_staff: &'static [&'static str] = &["unit1_user", "unit1_admin"];
    // Accounts whose password and lock the walk may change: one in the
    // clerk's unit, one in another unit.
    let sys = s.login("sys_admin").await;
    let staff = |name: &str, unit: Value| json!({"username": name, "display_name": "职员", "password": "Staff-Pass-2026", "roles": ["unit_user"], "unit_id": unit});
    let target =
        s.post(&sys, "/api/v1/users", staff("target_one", json!(unit1))).await.expect(201).body["id"].clone();
    let foreign =
        s.post(&sys, "/api/v1/users", staff("target_two", unit2.clone())).await.expect(201).body["id"]
            .clone();
    let unit_admin_only: &'static [&'static str] = &["unit1_admin"];

    let mut cases = vec![
        case(Method::GET, "/api/v1/session".into(), &ROLES),
        case(Method::GET, "/api/v1/units".into(), EVERYONE_BUT_AUDITOR),
        case(Method::GET, format!("/api/v1/units/{unit1}"), EVERYONE_BUT_AUDITOR),
        Case {
            hidden: units_staff,
            ..case(Method::GET, format!("/api/v1/units/{unit2}"), EVERYONE_BUT_AUDITOR)
        },
        case(Method::GET, "/api/v1/systems".into(), EVERYONE_BUT_AUDITOR),
        case(Method::GET, format!("/api/v1/systems/{own_system}"), EVERYONE_BUT_AUDITOR),
        Case {
            hidden: units_staff,
            ..case(Method::GET, format!("/api/v1/systems/{other_system_id}"), EVERYONE_BUT_AUDITOR)
        },
        case(Method::GET, format!("/api/v1/systems/{own_system}/documents"), EVERYONE_BUT_AUDITOR),
        Case {
            hidden: units_staff,
            ..case(Method::GET, format!("/api/v1/systems/{other_system_id}/documents"), EVERYONE_BUT_AUDITOR)
        },
        case(Method::GET, "/api/v1/catalog".into(), EVERYONE_BUT_AUDITOR),
        case(Method::GET, "/api/v1/exports/systems.csv".into(), EVERYONE_BUT_AUDITOR),
        case(Method::GET, "/api/v1/exports/units.csv".into(), EVERYONE_BUT_AUDITOR),
        case(Method::GET, "/api/v1/catalog/1".into(), EVERYONE_BUT_AUDITOR),
        case(
            Method::GET,
            "/api/v1/platforms".into(),
            &["cloud_admin", "infra_chief", "bdc_leader", "office", "sys_admin"],
        ),
        case(
            Method::GET,
            "/api/v1/platforms/1".into(),
            &["cloud_admin", "infra_chief", "bdc_leader", "office", "sys_admin"],
        ),
        case(Method::GET, "/api/v1/users".into(), &["unit1_admin", "sys_admin"]),
        case(Method::GET, "/api/v1/audit".into(), &["audit_admin"]),
        case(Method::GET, "/api/v1/audit/verify".into(), &["audit_admin"]),
    ];
    cases.push(Case {
        body: Some(Box::new(|n| json!({"name": format!("测试单位{n}"), "credit_code": credit_code(n)}))),
        ..case(Method::POST, "/api/v1/units".into(), &["sys_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(move |n| {
            json!({"unit_id": unit1, "name": format!("测试系统{n}"), "mlps_level": 2, "arch": "x86_64",
                   "quota": {"vcpu": 4, "memory_gib": 8, "storage_gib": 100}, "quota_basis": "测试"})
        })),
        ..case(Method::POST, "/api/v1/systems".into(), &["unit1_user", "unit1_admin", "cloud_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(|n| json!({"description": format!("说明{n}")}))),
        ..case(
            Method::PATCH,
            format!("/api/v1/systems/{own_system}"),
            &["unit1_user", "unit1_admin", "cloud_admin"],
        )
    });
    cases.push(Case {
        body: Some(Box::new(|n| json!({"description": format!("说明{n}")}))),
        hidden: units_staff,
        ..case(
            Method::PATCH,
            format!("/api/v1/systems/{other_system_id}"),
            &["unit1_user", "unit1_admin", "cloud_admin"],
        )
    });
    cases.push(Case {
        body: Some(Box::new(|n| json!({"code": format!("sec.test{n}"), "kind": "security_service", "name": "测试", "name_en": "test"}))),
        ..case(Method::POST, "/api/v1/catalog".into(), &["cloud_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(|n| {
            json!({"name": format!("测试平台{n}"), "arch": "x86_64", "driver": "simulator",
                   "capacity": {"vcpu": 10, "memory_gib": 10, "storage_gib": 10}})
        })),
        ..case(Method::POST, "/api/v1/platforms".into(), &["cloud_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(move |n| {
            json!({"username": format!("staff{n}"), "display_name": "职员", "password": "Staff-Pass-2026",
                   "roles": ["unit_user"], "unit_id": unit1})
        })),
        ..case(Method::POST, "/api/v1/users".into(), &["unit1_admin", "sys_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(|n| {
            json!({"year": 2030, "source": format!("测试{n}"), "holidays": ["2030-01-01"], "workdays": []})
        })),
        ..case(Method::PUT, "/api/v1/calendar/years/2030".into(), &["sys_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(|_| json!({"today": "2026-12-01"}))),
        ..case(Method::POST, "/api/v1/demo/clock".into(), &["sys_admin"])
    });

    for (user, hidden) in [(target, &[][..]), (foreign, unit_admin_only)] {
        cases.push(Case {
            body: Some(Box::new(|n| json!({"password": format!("New-Pass-{n}-2026")}))),
            hidden,
            ..case(Method::POST, format!("/api/v1/users/{user}/password"), &["unit1_admin", "sys_admin"])
        });
        cases.push(Case {
            hidden,
            ..case(Method::POST, format!("/api/v1/users/{user}/unlock"), &["unit1_admin", "sys_admin"])
        });
    }

    cases.push(Case {
        body: Some(Box::new(
            |n| json!({"contacts": [{"name": format!("联系人{n}"), "phone": "021-59720000"}]}),
        )),
        ..case(Method::PATCH, format!("/api/v1/units/{unit1}"), &["unit1_admin", "sys_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(
            |n| json!({"contacts": [{"name": format!("联系人{n}"), "phone": "021-59720000"}]}),
        )),
        hidden: unit_admin_only,
        ..case(Method::PATCH, format!("/api/v1/units/{unit2}"), &["unit1_admin", "sys_admin"])
    });

    cases.push(Case {
        body: Some(Box::new(|n| json!({"description": format!("说明{n}")}))),
        ..case(Method::PATCH, "/api/v1/catalog/1".into(), &["cloud_admin"])
    });

    let pdf = ("application/pdf", b"%PDF-1.7 evidence".to_vec());
    let query = "kind=other&filename=evidence.pdf";
    let u2 = s.login("unit2_user").await;
    let own_upload = format!("/api/v1/systems/{own_system}/documents?{query}");
    let own_doc = s.post_bytes(&u1, &own_upload, pdf.0, pdf.1.clone()).await.expect(201).body["id"].clone();
    let other_upload = format!("/api/v1/systems/{other_system_id}/documents?{query}");
    let other_doc =
        s.post_bytes(&u2, &other_upload, pdf.0, pdf.1.clone()).await.expect(201).body["id"].clone();
    cases.push(case(Method::GET, format!("/api/v1/documents/{own_doc}"), EVERYONE_BUT_AUDITOR));
    cases.push(Case {
        hidden: units_staff,
        ..case(Method::GET, format!("/api/v1/documents/{other_doc}"), EVERYONE_BUT_AUDITOR)
    });
    cases.push(Case {
        raw: Some(pdf.clone()),
        ..case(
            Method::POST,
            format!("/api/v1/systems/{own_system}/documents?{query}"),
            &["unit1_user", "unit1_admin", "cloud_admin"],
        )
    });
    cases.push(Case {
        raw: Some(pdf),
        hidden: units_staff,
        ..case(
            Method::POST,
            format!("/api/v1/systems/{other_system_id}/documents?{query}"),
            &["unit1_user", "unit1_admin", "cloud_admin"],
        )
    });

    // Requests: one of the clerk's unit in review, one of another unit.
    let host =
        s.all(&u1, "/api/v1/catalog").await.iter().find(|c| c["code"] == "ecs.x86.c2m4").unwrap()["id"]
            .clone();
    let own_x86 = systems
        .iter()
        .find(|x| x["unit_id"] == json!(unit1) && x["arch"] == "x86_64" && x["state"] == "online")
        .unwrap()["id"]
        .clone();
    let other_x86 = systems
        .iter()
        .find(|x| x["unit_id"] == unit2 && x["arch"] == "x86_64" && x["state"] == "online")
        .unwrap()["id"]
        .clone();
    let ask = move |system: &Value| json!({"kind": "new", "system_id": system, "items": [{"catalog_item_id": host, "quantity": 1}], "justification": "测试"});
    let own_request = s.post(&u1, "/api/v1/requests", ask(&own_x86)).await.expect(201).body["id"].clone();
    let other_request = s.post(&u2, "/api/v1/requests", ask(&other_x86)).await.expect(201).body["id"].clone();
    cases.push(case(Method::GET, "/api/v1/requests".into(), EVERYONE_BUT_AUDITOR));
    cases.push(case(Method::GET, format!("/api/v1/requests/{own_request}"), EVERYONE_BUT_AUDITOR));
    cases.push(Case {
        hidden: units_staff,
        ..case(Method::GET, format!("/api/v1/requests/{other_request}"), EVERYONE_BUT_AUDITOR)
    });
    cases.push(Case {
        body: Some(Box::new(move |_| ask(&own_x86))),
        ..case(Method::POST, "/api/v1/requests".into(), &["unit1_user", "unit1_admin"])
    });
    cases.push(case(Method::GET, "/api/v1/resources".into(), EVERYONE_BUT_AUDITOR));
    cases.push(case(Method::GET, "/api/v1/findings".into(), EVERYONE_BUT_AUDITOR));
    cases.push(case(Method::GET, "/api/v1/warnings".into(), EVERYONE_BUT_AUDITOR));
    cases.push(case(Method::GET, "/api/v1/ingest-tokens".into(), &["sys_admin"]));
    let ca = s.login("cloud_admin").await;
    let active = s.all(&ca, "/api/v1/resources?state=active").await[0]["id"].clone();
    let hosts = s.all(&ca, "/api/v1/resources?state=active").await;
    let host_of = |unit: &Value| {
        hosts.iter().find(|r| r["unit_id"] == *unit && r["kind"] == "cloud_host").unwrap()["id"].clone()
    };
    let (own_host, other_host) = (host_of(&json!(unit1)), host_of(&unit2));
    cases.push(case(Method::GET, format!("/api/v1/resources/{own_host}/metrics"), EVERYONE_BUT_AUDITOR));
    cases.push(case(Method::GET, format!("/api/v1/resources/{own_host}/readings"), EVERYONE_BUT_AUDITOR));
    cases.push(Case {
        hidden: units_staff,
        ..case(Method::GET, format!("/api/v1/resources/{other_host}/readings"), EVERYONE_BUT_AUDITOR)
    });
    cases.push(Case {
        hidden: units_staff,
        ..case(Method::GET, format!("/api/v1/resources/{other_host}/metrics"), EVERYONE_BUT_AUDITOR)
    });
    cases.push(case(
        Method::POST,
        format!("/api/v1/resources/{own_host}/enrollment"),
        &["cloud_admin", "unit1_admin"],
    ));
    cases.push(Case {
        hidden: unit_admin_only,
        ..case(Method::POST, format!("/api/v1/resources/{other_host}/enrollment"), &["cloud_admin"])
    });
    cases.push(Case {
        body: Some(Box::new(|_| json!({"action": "suspend", "reason": "权限测试"}))),
        ..case(Method::POST, format!("/api/v1/resources/{active}/actions"), &["cloud_admin"])
    });
    cases.push(case(Method::GET, "/api/v1/requests/overdue".into(), EVERYONE_BUT_AUDITOR));
    cases.push(case(
        Method::GET,
        "/api/v1/jobs".into(),
        &["cloud_admin", "infra_chief", "bdc_leader", "office", "sys_admin"],
    ));
    cases.push(case(Method::GET, "/api/v1/notifications".into(), &ROLES));

    let mut tokens = Vec::new();
    for role in ROLES {
        tokens.push((role, s.login(role).await));
    }
    let mut n = 0;
    let mut wrong = Vec::new();
    for c in &cases {
        let anonymous =
            s.send(c.method.clone(), None, &c.path, c.body.as_ref().map(|b| b(0)).as_ref(), &[]).await;
        if anonymous.status != 401 {
            wrong.push(format!("{} {} without a session: {}", c.method, c.path, anonymous.status));
        }
        for (role, token) in &tokens {
            n += 1;
            let body = c.body.as_ref().map(|b| b(n));
            let r = match &c.raw {
                Some((content_type, bytes)) => {
                    s.post_bytes(token, &c.path, content_type, bytes.clone()).await
                }
                None => s.send(c.method.clone(), Some(token), &c.path, body.as_ref(), &[]).await,
            };
            let status = r.status.as_u16();
            let expected = if c.hidden.contains(role) {
                "404"
            } else if c.allowed.contains(role) {
                "2xx"
            } else {
                "403"
            };
            let ok = match expected {
                "404" => status == 404,
                "2xx" => (200..300).contains(&status),
                _ => status == 403,
            };
            if !ok {
                wrong.push(format!(
                    "{} {} as {role}: expected {expected}, got {status} {}",
                    c.method, c.path, r.body
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
    s.stop().await;
}
