//! Notifications beyond the inbox: a signed webhook and e-mail over SMTP,
//! delivered from the outbox and retried when the far end fails.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::{Backend, DEMO_PASSWORD, TestDb, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use yunzhi_server::{ServerConfig, Settings};

on_both_backends!(notifications_go_out_by_signed_webhook_and_by_mail_and_failures_are_retried);

type Hooks = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver that fails its first call, as a real one may.
async fn webhook_sink() -> (String, Hooks) {
    let seen: Hooks = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let mut v = s.lock().unwrap();
                v.push((headers, body.to_vec()));
                if v.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

type Mails = Arc<Mutex<Vec<String>>>;

/// The server side of SMTP (RFC 5321) as far as a relay needs it: enough
/// for a real client to hand over a message, which is kept for the test.
async fn smtp_sink() -> (String, Mails) {
    let mails: Mails = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let m = mails.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let m = m.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            m.lock().unwrap().push(std::mem::take(d));
                            data = None;
                            write.write_all(b"250 2.0.0 queued\r\n").await.ok();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok();
                            break;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(answer).await.ok();
                }
            });
        }
    });
    (format!("smtp://{addr}"), mails)
}

async fn notifications_go_out_by_signed_webhook_and_by_mail_and_failures_are_retried(backend: Backend) {
    let (hook_url, hooks) = webhook_sink().await;
    let (smtp_url, mails) = smtp_sink().await;
    let db = TestDb::new(backend).await;
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone(),
        settings: Settings { demo: true, ..Settings::default() },
        demo_password: DEMO_PASSWORD.into(),
        secret_key: common::SECRET_KEY,
        simulator_dir: None,
        raw_dir: None,
        analysis_dir: None,
        webhook_url: Some(hook_url),
        webhook_secret: Some("district-secret".into()),
        smtp_url: Some(smtp_url),
        smtp_from: Some("区云管平台 <yunzhi@qingpu.gov.cn>".into()),
    };
    let s = TestServer::start_with(backend, db, config).await;
    let admin = s.login("sys_admin").await;
    let clerk = s.login("unit1_user").await;
    let unit = s.get(&clerk, "/api/v1/session").await.body["unit_id"].clone();
    s.post(
        &admin,
        "/api/v1/users",
        json!({"username": "wang_laoshi", "display_name": "王老师", "password": "Wang-Laoshi-2026",
               "roles": ["unit_user"], "unit_id": unit, "email": "wang@qpedu.example"}),
    )
    .await
    .expect(201);
    let systems = s.all(&clerk, "/api/v1/systems?state=online").await;
    let system = systems.iter().find(|x| x["arch"] == "x86_64").unwrap()["id"].clone();
    let host =
        s.all(&clerk, "/api/v1/catalog").await.iter().find(|c| c["code"] == "ecs.x86.c2m4").unwrap()["id"]
            .clone();
    let r = s
        .post(
            &clerk,
            "/api/v1/requests",
            json!({"kind": "new", "system_id": system, "justification": "通知测试",
              "items": [{"catalog_item_id": host, "quantity": 1}]}),
        )
        .await
        .expect(201);
    let id = r.body["id"].as_i64().unwrap();
    let ca = s.login("cloud_admin").await;
    s.post(
        &ca,
        &format!("/api/v1/requests/{id}/decisions"),
        json!({"decision": "reject", "comment": "请补充材料"}),
    )
    .await
    .expect(200);

    // The clerk with an address gets the decision by mail.
    let mut mail = None;
    for _ in 0..100 {
        mail = mails.lock().unwrap().iter().find(|m| m.contains("wang@qpedu.example")).cloned();
        if mail.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mail = mail.expect("a mail to the clerk");
    assert!(mail.contains("yunzhi@qingpu.gov.cn"), "{mail}");

    // The webhook got every notification, signed; its first failure was retried.
    let mut bodies: Vec<Value> = Vec::new();
    for _ in 0..100 {
        let seen = hooks.lock().unwrap().clone();
        bodies = seen
            .iter()
            .map(|(headers, body)| {
                let sig = headers["x-yunzhi-signature"].to_str().unwrap();
                assert_eq!(
                    sig,
                    yunzhi_server::courier::signature("district-secret", body),
                    "signed with HMAC-SM3"
                );
                serde_json::from_slice(body).unwrap()
            })
            .collect();
        let decided = bodies.iter().filter(|b| b["kind"] == "request.decided").count();
        let first = &bodies.first().map(|b| b["id"].clone());
        let retried = first.as_ref().is_some_and(|f| bodies.iter().filter(|b| &b["id"] == f).count() >= 2);
        if decided >= 1 && retried {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bodies.iter().any(|b| b["kind"] == "request.turn" && b["user"] == "cloud_admin"), "{bodies:?}");
    assert!(bodies.iter().any(|b| b["kind"] == "request.decided"), "{bodies:?}");
    let first = bodies[0]["id"].clone();
    assert!(bodies.iter().filter(|b| b["id"] == first).count() >= 2, "the failed first delivery was retried");
    s.stop().await;
}
