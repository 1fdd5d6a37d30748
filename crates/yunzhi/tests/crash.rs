//! No acknowledged write is lost on a crash: the server is killed with
//! SIGKILL right after answering, and everything it acknowledged is there
//! after a restart, with an intact audit chain.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod common;

use common::PgDb;
use yunzhi_openstack_standin::StandIn;

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
    start_with(args, None).await
}

/// Starts a server; `failpoint` names where it stops to be killed.
async fn start_with(args: &[String], failpoint: Option<&str>) -> Server {
    yunzhi_server::courier::install_tls();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_yunzhi"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        // YUNZHI_DRILL_LOG sets the drilled servers' RUST_LOG, to see what
        // a failing drill's server did.
        .env("RUST_LOG", std::env::var("YUNZHI_DRILL_LOG").unwrap_or_else(|_| "warn".into()))
        .env("YUNZHI_FAILPOINT", failpoint.unwrap_or(""))
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
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": user, "password": "Yunzhi@Demo2026"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let r: Value = r.json().await.unwrap();
    match r["token"].as_str() {
        Some(token) => token.to_owned(),
        None => panic!("{user} could not sign in: {status} {r}"),
    }
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

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, v) = self.call(token, reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        let (status, v) = self.call(token, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }
}

/// Files and approves a request for two hosts for a new system of unit 1;
/// the request's id.
async fn approved_request(api: &Api) -> (i64, i64) {
    let clerk = login(&api.base, "unit1_user").await;
    let ca = login(&api.base, "cloud_admin").await;
    let system = api
        .post(
            &clerk,
            "/api/v1/systems",
            json!({"name": "崩溃演练系统", "mlps_level": 2, "arch": "x86_64", "project_ref": "QP-2026-013",
            "quota": {"vcpu": 8, "memory_gib": 16, "storage_gib": 200}, "quota_basis": "测试"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (s, _) = api
        .call(
            &ca,
            reqwest::Method::PATCH,
            &format!("/api/v1/systems/{system}"),
            Some(json!({"state": "approved"})),
        )
        .await;
    assert_eq!(s, 200);
    let catalog = api.get(&clerk, "/api/v1/catalog?limit=200").await;
    let host =
        catalog["items"].as_array().unwrap().iter().find(|c| c["code"] == "ecs.x86.c2m4").unwrap()["id"]
            .clone();
    let request = api
        .post(
            &clerk,
            "/api/v1/requests",
            json!({"kind": "new", "system_id": system,
            "items": [{"catalog_item_id": host, "quantity": 2}], "justification": "崩溃演练"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for who in ["cloud_admin", "infra_chief", "bdc_leader"] {
        let t = login(&api.base, who).await;
        api.post(
            &t,
            &format!("/api/v1/requests/{request}/decisions"),
            json!({"decision": "approve", "comment": ""}),
        )
        .await;
    }
    (system, request)
}

/// The ids of a system's resources, once the job runner recorded them.
async fn resource_ids(api: &Api, system: i64) -> Vec<i64> {
    let clerk = login(&api.base, "unit1_user").await;
    for _ in 0..400 {
        let page = api.get(&clerk, &format!("/api/v1/resources?system_id={system}")).await;
        let ids: Vec<i64> =
            page["items"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        if !ids.is_empty() {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the resources of system {system} were never recorded");
}

/// How many times `key` is in a simulated platform's inventory files.
fn on_simulators(data: &std::path::Path, key: &str) -> usize {
    let Ok(dir) = std::fs::read_dir(data.join("simulator")) else { return 0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let inv: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap_or(Value::Null);
            inv["resources"].as_array().map_or(0, |rs| rs.iter().filter(|r| r["key"] == key).count())
        })
        .sum()
}

/// The server dies between a platform's answer to a create and the commit
/// that records it; after a restart the job is taken over, finds what the
/// platform made under the resource's key, and nothing is made twice.
/// How many times each platform holds `key`: the simulators' inventory
/// files, or the OpenStack stand-in's servers.
fn made(data: &std::path::Path, cloud: Option<&StandIn>, key: &str) -> usize {
    match cloud {
        Some(c) => {
            c.servers().iter().filter(|s| s.metadata.get("yunzhi_key").is_some_and(|k| k == key)).count()
        }
        None => on_simulators(data, key),
    }
}

/// Adds an OpenStack platform on the stand-in and drains the simulated
/// x86 one, so new x86 hosts go to OpenStack.
async fn use_openstack(api: &Api, cloud: &StandIn) {
    let ca = login(&api.base, "cloud_admin").await;
    api.post(
        &ca,
        "/api/v1/platforms",
        json!({"name": "OpenStack 一区", "arch": "x86_64", "driver": "openstack",
        "endpoint": cloud.auth_url(), "capacity": {"vcpu": 64, "memory_gib": 256, "storage_gib": 4000},
        "config": {"region": "RegionOne", "network_id": "net-egov", "image_id": "img-openeuler",
                   "project_name": yunzhi_openstack_standin::PROJECT_NAME},
        "credentials": {"type": "password", "username": yunzhi_openstack_standin::USERNAME,
                        "password": yunzhi_openstack_standin::PASSWORD}}),
    )
    .await;
    let platforms = api.get(&ca, "/api/v1/platforms").await;
    for p in platforms["items"].as_array().unwrap() {
        if p["driver"] == "simulator" && p["arch"] == "x86_64" {
            let path = format!("/api/v1/platforms/{}", p["id"]);
            let (s, _) =
                api.call(&ca, reqwest::Method::PATCH, &path, Some(json!({"state": "draining"}))).await;
            assert_eq!(s, 200);
        }
    }
}

async fn a_kill_between_create_and_commit_makes_nothing_twice(
    args: Vec<String>,
    data: std::path::PathBuf,
    cloud: Option<&StandIn>,
) {
    let mut args = args;
    args.extend(["--job-lease-seconds".into(), "2".into()]);
    let mut server = start_with(&args, Some("after_driver_create")).await;
    let api = Api { base: server.base.clone(), client: reqwest::Client::new() };
    if let Some(cloud) = cloud {
        use_openstack(&api, cloud).await;
    }
    let (system, request) = approved_request(&api).await;
    let ids = resource_ids(&api, system).await;
    assert_eq!(ids.len(), 2);
    let first = format!("yz-res-{}", ids[0]);
    for _ in 0..400 {
        if made(&data, cloud, &first) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(made(&data, cloud, &first), 1, "the platform made the first host");
    // The server stands at the failpoint: the platform made the host, the
    // database still says it is being made.
    let clerk = login(&api.base, "unit1_user").await;
    let r = api.get(&clerk, &format!("/api/v1/resources/{}", ids[0])).await;
    assert_eq!(r["state"], "provisioning", "killed before the commit");
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();

    let mut server = start(&args).await;
    let api = Api { base: server.base.clone(), client: reqwest::Client::new() };
    let clerk = login(&api.base, "unit1_user").await;
    let mut state = Value::Null;
    for _ in 0..600 {
        state = api.get(&clerk, &format!("/api/v1/requests/{request}")).await["state"].clone();
        if state == "fulfilled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "fulfilled", "the job was taken over once its lease ran out");
    let ca = login(&api.base, "cloud_admin").await;
    let jobs = api.get(&ca, "/api/v1/jobs?limit=200").await;
    let job = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["payload"]["request_id"] == request)
        .unwrap()
        .clone();
    let detail = api.get(&ca, &format!("/api/v1/jobs/{}", job["id"])).await;
    let outcomes: Vec<_> =
        detail["history"].as_array().unwrap().iter().map(|a| a["outcome"].clone()).collect();
    assert_eq!(outcomes, [json!("abandoned"), json!("done")], "the killed attempt is on record: {detail}");
    for id in &ids {
        assert_eq!(made(&data, cloud, &format!("yz-res-{id}")), 1, "resource {id} exists exactly once");
        let r = api.get(&clerk, &format!("/api/v1/resources/{id}")).await;
        assert_eq!(r["state"], "active");
        assert!(r["remote_id"].is_string(), "{r}");
    }
    server.child.kill().ok();
    server.child.wait().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_create_and_commit_makes_nothing_twice_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let args = vec!["--data".into(), data.display().to_string()];
    a_kill_between_create_and_commit_makes_nothing_twice(args, data, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_create_and_commit_makes_nothing_twice_on_openstack() {
    let cloud = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let args = vec!["--data".into(), data.display().to_string()];
    a_kill_between_create_and_commit_makes_nothing_twice(args, data, Some(&cloud)).await;
    // The stand-in saw one server create per host, however the kill fell.
    let creates =
        cloud.requests().iter().filter(|q| q.method == "POST" && q.path_only().ends_with("/servers")).count();
    assert_eq!(creates, 2, "no server was created twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_create_and_commit_makes_nothing_twice_on_postgres() {
    let db = PgDb::new("crash_create").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let args = vec!["--database".into(), db.url.clone(), "--data".into(), data.display().to_string()];
    a_kill_between_create_and_commit_makes_nothing_twice(args, data, None).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    acknowledged_writes_survive_a_kill(vec!["--data".into(), dir.path().display().to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_on_postgres() {
    let db = PgDb::new("crash").await;
    // Its own data folder (the secret key, the raw readings, the simulator's
    // inventory), not the default one in the working tree.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    acknowledged_writes_survive_a_kill(vec!["--database".into(), db.url.clone(), "--data".into(), data])
        .await;
    db.drop_db().await;
}
