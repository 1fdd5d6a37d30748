//! The test harness: a real server on a random port over a real database,
//! SQLite in a temporary folder or a fresh PostgreSQL database.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;
use yunzhi_domain::clock::ShiftableClock;
use yunzhi_server::{Running, ServerConfig, Settings};

pub const DEMO_PASSWORD: &str = "Yunzhi@Demo2026";
/// The key the test servers seal secrets with.
pub const SECRET_KEY: [u8; 16] = [42; 16];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($f:ident),* $(,)?) => {$(
        mod $f {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$f($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$f($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// Where the tests find PostgreSQL: `YUNZHI_TEST_POSTGRES`, else the local
/// server that CI starts.
pub fn postgres_admin_url() -> String {
    std::env::var("YUNZHI_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn base_of(url: &str) -> &str {
    url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url)
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A database for one test, and how to drop it afterwards.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

async fn admin_conn() -> sqlx::PgConnection {
    let url = postgres_admin_url();
    match sqlx::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "the PostgreSQL tests need a server at {url} ({e}). Start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or point YUNZHI_TEST_POSTGRES at one; `.ci/run` does this for you"
        ),
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}", dir.path().join("yunzhi.db").display());
                TestDb { url, pg_name: None, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let mut admin = admin_conn().await;
                drop_stale(&mut admin).await;
                let name = format!("yunzhi_t_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("CREATE DATABASE");
                let url = format!("{}/{name}", base_of(&postgres_admin_url()));
                TestDb { url, pg_name: Some(name), _dir: None }
            }
        }
    }

    pub async fn drop_db(self) {
        if let Some(name) = &self.pg_name {
            let mut admin = admin_conn().await;
            let _ =
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await;
        }
    }
}

/// Drops test databases left behind by test processes that have ended.
async fn drop_stale(admin: &mut sqlx::PgConnection) {
    use sqlx::Row;
    let rows = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'yunzhi_t_%'")
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for row in rows {
        let name: String = row.get("datname");
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid
            .is_some_and(|p| p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists())
        {
            let _ =
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut *admin)
                    .await;
        }
    }
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ShiftableClock>,
    pub backend: Backend,
    running: Option<Running>,
    pub db: Option<TestDb>,
    /// The raw readings' folder, removed with the server.
    pub raw_dir: Option<tempfile::TempDir>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The problem document without its request id, which differs on
    /// every answer: what a client may compare.
    pub fn problem(&self) -> Value {
        let mut v = self.body.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("request_id");
        }
        v
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {}", self.body);
        self
    }
}

impl TestServer {
    pub async fn demo(backend: Backend) -> TestServer {
        Self::start(backend, Settings { demo: true, ..Settings::default() }).await
    }

    /// The demo district, with failed jobs tried again within milliseconds.
    pub async fn demo_quick_jobs(backend: Backend) -> TestServer {
        let settings = Settings {
            demo: true,
            job_retry_base: jiff::SignedDuration::from_millis(50),
            ..Settings::default()
        };
        Self::start(backend, settings).await
    }

    pub async fn start(backend: Backend, settings: Settings) -> TestServer {
        log_when_asked();
        let db = TestDb::new(backend).await;
        Self::start_on(backend, db, settings).await
    }

    pub async fn start_on(backend: Backend, db: TestDb, settings: Settings) -> TestServer {
        let raw = tempfile::tempdir().expect("a folder for raw readings");
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            database_url: db.url.clone(),
            settings,
            demo_password: DEMO_PASSWORD.into(),
            secret_key: SECRET_KEY,
            simulator_dir: None,
            raw_dir: Some(raw.path().to_path_buf()),
            analysis_dir: Some(raw.path().join("analysis")),
            webhook_url: None,
            webhook_secret: None,
            smtp_url: None,
            smtp_from: None,
        };
        let mut server = Self::start_with(backend, db, config).await;
        server.raw_dir = Some(raw);
        server
    }

    /// Starts on `db` with a whole configuration (notification channels…).
    pub async fn start_with(backend: Backend, db: TestDb, config: ServerConfig) -> TestServer {
        yunzhi_server::courier::install_tls();
        let clock = Arc::new(ShiftableClock::new());
        let running = yunzhi_server::start(config, clock.clone()).await.expect("the server starts");
        TestServer {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            clock,
            backend,
            running: Some(running),
            db: Some(db),
            raw_dir: None,
        }
    }

    /// The running server's state (drivers, store), for what only it can show.
    pub fn state(&self) -> &yunzhi_server::AppState {
        &self.running.as_ref().expect("running").state
    }

    /// Stops the server and keeps its database, to start again on it.
    pub async fn stop_keep_db(mut self) -> TestDb {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("the server stops");
        }
        self.db.take().expect("a database")
    }

    pub async fn stop(self) {
        let db = self.stop_keep_db().await;
        db.drop_db().await;
    }

    pub fn db_url(&self) -> &str {
        &self.db.as_ref().expect("a database").url
    }

    /// Runs `sql` on the server's database over a connection of its own,
    /// past the server: someone with database access, or another server.
    pub async fn exec_sql(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(self.db_url()).await.expect("a direct connection");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("the statement runs");
        conn.close().await.ok();
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, headers, body }
    }

    /// The status line answering a POST that declares a `length`-byte body
    /// and waits for `100 Continue` before sending it, as careful clients
    /// do: a body too large is refused before it is sent.
    pub async fn post_declaring(&self, token: &str, path: &str, content_type: &str, length: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("the server listens");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.expect("the request goes out");
        let mut buf = vec![0u8; 4096];
        let n = tcp.read(&mut buf).await.expect("the server answers");
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned()
    }

    /// A POST of raw bytes with any content type (uploads, broken bodies).
    pub async fn post_bytes(&self, token: &str, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, headers, body }
    }

    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(reqwest::Method::GET, Some(token), path, None, &[]).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, Some(token), path, Some(&body), &[]).await
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PATCH, Some(token), path, Some(&body), &[]).await
    }

    pub async fn login_with(&self, username: &str, password: &str, totp: Option<&str>) -> Reply {
        let mut body = serde_json::json!({"username": username, "password": password});
        if let Some(code) = totp {
            body["totp"] = Value::String(code.into());
        }
        self.send(reqwest::Method::POST, None, "/api/v1/session", Some(&body), &[]).await
    }

    /// Moves the demo clock as a trainee would (POST /api/v1/demo/clock), so
    /// that signed-in sessions move with it.
    pub async fn set_today(&self, date: &str) {
        let admin = self.login("sys_admin").await;
        self.post(&admin, "/api/v1/demo/clock", serde_json::json!({"today": date})).await.expect(200);
    }

    /// Signs a demo account in and returns its token.
    pub async fn login(&self, username: &str) -> String {
        let r = self.login_with(username, DEMO_PASSWORD, None).await.expect(201);
        r.body["token"].as_str().expect("a token").to_owned()
    }

    /// The id of the catalog item with stable code `code`.
    pub async fn catalog_id(&self, token: &str, code: &str) -> i64 {
        let all = self.all(token, "/api/v1/catalog").await;
        all.iter().find(|c| c["code"] == code).unwrap_or_else(|| panic!("no catalog item {code}"))["id"]
            .as_i64()
            .expect("an id")
    }

    /// An x86 system registered by `clerk` and approved by the cloud admin.
    pub async fn approved_system(
        &self,
        clerk: &str,
        name: &str,
        quota: (u32, u32, u32),
        project: Option<&str>,
    ) -> i64 {
        let ca = self.login("cloud_admin").await;
        let body = serde_json::json!({"name": name, "mlps_level": 2, "project_ref": project, "arch": "x86_64",
            "quota": {"vcpu": quota.0, "memory_gib": quota.1, "storage_gib": quota.2}, "quota_basis": "可研报告"});
        let id =
            self.post(clerk, "/api/v1/systems", body).await.expect(201).body["id"].as_i64().expect("an id");
        self.patch(&ca, &format!("/api/v1/systems/{id}"), serde_json::json!({"state": "approved"}))
            .await
            .expect(200);
        id
    }

    /// Files a request that must be accepted; its id.
    pub async fn file_request(&self, token: &str, body: Value) -> i64 {
        self.post(token, "/api/v1/requests", body).await.expect(201).body["id"].as_i64().expect("an id")
    }

    /// `who` decides request `id`.
    pub async fn decide(&self, who: &str, id: i64, decision: &str, comment: &str) -> Reply {
        let t = self.login(who).await;
        let body = serde_json::json!({"decision": decision, "comment": comment});
        self.post(&t, &format!("/api/v1/requests/{id}/decisions"), body).await
    }

    /// The three levels approve a new request in turn.
    pub async fn approve_three_levels(&self, id: i64) {
        for who in ["cloud_admin", "infra_chief", "bdc_leader"] {
            self.decide(who, id, "approve", "").await.expect(200);
        }
    }

    /// Request `id` once it is in `state`, waiting up to a minute for the job runner.
    pub async fn wait_for_request(&self, token: &str, id: i64, state: &str) -> Value {
        for _ in 0..1200 {
            let r = self.get(token, &format!("/api/v1/requests/{id}")).await.expect(200);
            if r.body["state"] == state {
                return r.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("request {id} never became {state}");
    }

    /// Job `id` once it is done (read with `token`, a role that sees jobs),
    /// waiting up to twenty seconds; a job that failed for good fails the test.
    pub async fn wait_job(&self, token: &str, id: &Value) -> Value {
        for _ in 0..400 {
            let job = self.get(token, &format!("/api/v1/jobs/{id}")).await.expect(200).body;
            if job["state"] == "done" {
                return job;
            }
            assert_ne!(job["state"], "failed", "{job}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("job {id} never finished");
    }

    /// Drains the simulated x86 platforms (as `token`, the cloud admin), so
    /// new x86 hosts go to the other platforms.
    pub async fn drain_simulated_x86(&self, token: &str) {
        for p in self.all(token, "/api/v1/platforms").await {
            if p["driver"] == "simulator" && p["arch"] == "x86_64" {
                let path = format!("/api/v1/platforms/{}", p["id"]);
                self.patch(token, &path, serde_json::json!({"state": "draining"})).await.expect(200);
            }
        }
    }

    /// Every page of a list, following `next_cursor`.
    pub async fn all(&self, token: &str, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next: Option<String> = None;
        loop {
            let url = match &next {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_owned(),
            };
            let page = self.get(token, &url).await.expect(200);
            items.extend(page.body["items"].as_array().expect("items").iter().cloned());
            match page.body["next_cursor"].as_str() {
                Some(c) => next = Some(c.to_owned()),
                None => return items,
            }
        }
    }
}

/// Sends the server's log to the test output when `RUST_LOG` is set, to
/// see why a test failed.
pub fn log_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("RUST_LOG").is_some() {
        ONCE.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        });
    }
}

/// A request for `n` of catalog item `item` for `system`.
pub fn ask(system: i64, item: i64, n: u32, kind: &str) -> Value {
    serde_json::json!({"kind": kind, "system_id": system, "items": [{"catalog_item_id": item, "quantity": n}],
        "justification": "业务需要"})
}

/// Runs `futures` at once on this task and returns their outputs in order:
/// the requests they make are in flight together.
pub async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).map(Some).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in pinned.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// A day of a host nobody uses: CPU about 0.3 %, nobody logged in.
pub fn dead_day() -> yunzhi_domain::monitoring::Rollup {
    let mut hist = vec![0; 101];
    hist[0] = 1440;
    yunzhi_domain::monitoring::Rollup {
        samples: 1440,
        cpu_sum: 0.3 * 1440.0,
        cpu_min: 0.1,
        cpu_max: 0.9,
        cpu_hist: hist,
        memory_sum: 20.0 * 1440.0,
        memory_max: 21.0,
        net_bytes: 2_000_000.0,
        disk_bytes: 1_000_000.0,
        sessions_max: 0,
        ..Default::default()
    }
}

/// A host of unit 1 that has 45 quiet days behind it and whose agent reports.
pub async fn zombie_host(s: &TestServer) -> Value {
    let ca = s.login("cloud_admin").await;
    let hosts = s.all(&ca, "/api/v1/resources?state=active").await;
    let clerk = s.login("unit1_user").await;
    let unit1 = s.get(&clerk, "/api/v1/session").await.body["unit_id"].clone();
    // A system that declared no periodic load: its quiet months are idleness.
    let systems = s.all(&ca, "/api/v1/systems").await;
    let steady = |system: &Value| {
        systems.iter().any(|x| x["id"] == *system && x["periodic_load"].is_null() && x["unit_id"] == unit1)
    };
    let host = hosts.into_iter().find(|r| r["kind"] == "cloud_host" && steady(&r["system_id"])).unwrap();
    quiet_for_45_days(s, host["id"].as_i64().unwrap()).await;
    host
}

/// Gives host `id` 45 quiet days (a zombie's) up to yesterday.
pub async fn quiet_for_45_days(s: &TestServer, id: i64) {
    let store = yunzhi_store::Store::open(s.db_url()).await.unwrap();
    let today = yunzhi_domain::clock::district_date(s.state().now());
    let mut tx = store.begin().await.unwrap();
    for n in 1..=45 {
        let day = today.checked_sub(jiff::ToSpan::days(n)).unwrap();
        tx.put_rollup(yunzhi_store::Span::Day, id, &day.to_string(), &dead_day()).await.unwrap();
    }
    tx.commit().await.unwrap();
    store.close().await;
}

pub async fn analyse(s: &TestServer) {
    let ca = s.login("cloud_admin").await;
    let job = s.post(&ca, "/api/v1/findings/analysis", serde_json::json!(null)).await.expect(202).body;
    s.wait_job(&ca, &job["id"]).await;
}
