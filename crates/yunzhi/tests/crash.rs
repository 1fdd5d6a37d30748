//! No acknowledged write is lost on a crash: the server is killed with
//! SIGKILL right after answering, and everything it acknowledged is there
//! after a restart, with an intact audit chain.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod common;

use common::PgDb;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    /// A failed assertion must not leave a server running.
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(args: &[String]) -> Server {
    yunzhi_server::courier::install_tls();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_yunzhi"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("RUST_LOG", "warn")
        .env("YUNZHI_SECRET_KEY", "000102030405060708090a0b0c0d0e0f")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("yunzhi starts");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status() == 200) {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!("the server did not come up on {base}");
}

async fn login(base: &str, user: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": user, "password": "Yunzhi@Demo2026"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().expect("a token").to_owned()
}

async fn acknowledged_writes_survive_a_kill(args: Vec<String>) {
    let mut server = start(&args).await;
    let token = login(&server.base, "unit1_user").await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..25 {
        let r = client
            .post(format!("{}/api/v1/systems", server.base))
            .bearer_auth(&token)
            .json(&json!({"name": format!("崩溃测试系统{i}"), "mlps_level": 2, "arch": "x86_64",
                          "quota": {"vcpu": 4, "memory_gib": 8, "storage_gib": 100}, "quota_basis": "测试"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        ids.push(body["id"].as_i64().unwrap());
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();

    let mut server = start(&args).await;
    let token = login(&server.base, "unit1_user").await;
    for id in &ids {
        let r = client
            .get(format!("{}/api/v1/systems/{id}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "system {id} was acknowledged before the kill");
    }
    let auditor = login(&server.base, "audit_admin").await;
    let v: Value = client
        .get(format!("{}/api/v1/audit/verify", server.base))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    server.child.kill().ok();
    server.child.wait().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    acknowledged_writes_survive_a_kill(vec!["--data".into(), dir.path().display().to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_on_postgres() {
    let db = PgDb::new("crash").await;
    acknowledged_writes_survive_a_kill(vec!["--database".into(), db.url.clone()]).await;
    db.drop_db().await;
}
