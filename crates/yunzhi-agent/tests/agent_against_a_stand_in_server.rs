//! The real agent binary against an in-test stand-in of Yunzhi's two agent
//! endpoints, implementing the wire contract: enrolment codes are one-time,
//! reports are acknowledged by sequence, 503 carries Retry-After and a revoked
//! credential gets 401.
//!
//! By default the binary under test is the one cargo builds for this test.
//! `YUNZHI_AGENT_BIN` names another one, and `YUNZHI_AGENT_RUNNER` a program
//! to run it under: `scripts/test` runs this file once more against each
//! static (musl) release build, the aarch64 one under `qemu-aarch64`.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sm3::{Digest, Sm3};

const CODE: &str = "ENROL-2026-ABCD";
const CREDENTIAL: &str = "host-credential-12";
const DETAIL: &str = "The enrolment code is unknown, used or expired; ask the unit admin for a new one.";

#[derive(Default)]
struct StandIn {
    codes: HashSet<String>,
    enrolments: Vec<Value>,
    revoked: bool,
    /// Answer this many report attempts with 503.
    busy: u32,
    retry_after_secs: u64,
    /// Every report attempt: when, which sequence, what the answer was.
    attempts: Vec<(Instant, u64, u16)>,
    /// Accepted reports in the order they arrived.
    reports: Vec<Value>,
    seen: BTreeSet<u64>,
}

type Shared = Arc<Mutex<StandIn>>;

fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({"type": "about:blank", "title": code, "status": status.as_u16(), "code": code, "detail": detail});
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

async fn enroll(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut s = s.lock().expect("stand-in lock");
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    s.enrolments.push(body);
    if !s.codes.remove(&code) {
        return problem(StatusCode::UNAUTHORIZED, "invalid_enrollment_code", DETAIL);
    }
    (StatusCode::CREATED, Json(json!({"resource_id": 12, "credential": CREDENTIAL, "interval_secs": 60})))
        .into_response()
}

async fn report(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let mut s = s.lock().expect("stand-in lock");
    let sequence = body["sequence"].as_u64().expect("a sequence");
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let (status, response) = if s.revoked || bearer != Some(&format!("Bearer {CREDENTIAL}")) {
        (401, problem(StatusCode::UNAUTHORIZED, "invalid_credential", "This host's credential was revoked."))
    } else if s.busy > 0 {
        s.busy -= 1;
        let wait = s.retry_after_secs.to_string();
        (503, (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, wait)], "busy").into_response())
    } else if !s.seen.insert(sequence) {
        let next = s.seen.last().map_or(1, |l| l + 1);
        (200, (StatusCode::OK, Json(json!({"accepted": 0, "next_sequence": next}))).into_response())
    } else {
        let accepted = body["samples"].as_array().map_or(0, Vec::len);
        s.reports.push(body);
        (
            202,
            (StatusCode::ACCEPTED, Json(json!({"accepted": accepted, "next_sequence": sequence + 1})))
                .into_response(),
        )
    };
    s.attempts.push((Instant::now(), sequence, status));
    response
}

struct Server {
    url: String,
    state: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start() -> Server {
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        let state: Shared = Arc::new(Mutex::new(StandIn {
            codes: HashSet::from([CODE.to_owned()]),
            retry_after_secs: 1,
            ..StandIn::default()
        }));
        let app = Router::new()
            .route("/api/v1/agent/enroll", post(enroll))
            .route("/api/v1/agent/report", post(report))
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))
            .expect("bind a port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server { url, state, _runtime: runtime }
    }

    fn with<T>(&self, f: impl FnOnce(&mut StandIn) -> T) -> T {
        f(&mut self.state.lock().expect("stand-in lock"))
    }

    fn sequences(&self) -> Vec<u64> {
        self.with(|s| s.reports.iter().map(|r| r["sequence"].as_u64().expect("sequence")).collect())
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The binary under test: `YUNZHI_AGENT_BIN` when set, else cargo's build.
/// A binary or runner that was asked for but is not there fails every test
/// with what to do, rather than quietly testing something else.
fn agent_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let Some(bin) = env_var("YUNZHI_AGENT_BIN") else {
            return PathBuf::from(env!("CARGO_BIN_EXE_yunzhi-agent"));
        };
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "YUNZHI_AGENT_BIN={} does not exist; build it with crates/yunzhi-agent/dist/build-static.sh",
            bin.display()
        );
        if let Some(runner) = env_var("YUNZHI_AGENT_RUNNER") {
            let works = Command::new(&runner)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(works, "YUNZHI_AGENT_RUNNER={runner} does not run; install it (qemu-aarch64: apt-get install qemu-user)");
        }
        eprintln!("binary under test: {} (runner: {:?})", bin.display(), env_var("YUNZHI_AGENT_RUNNER"));
        bin
    })
}

fn agent_command(server: &Server, state_dir: &Path, args: &[&str]) -> Command {
    agent_command_to(&server.url, state_dir, args)
}

/// The agent, told to report to `url`.
fn agent_command_to(url: &str, state_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = match env_var("YUNZHI_AGENT_RUNNER") {
        Some(runner) => {
            let mut cmd = Command::new(runner);
            cmd.arg(agent_bin());
            cmd
        }
        None => Command::new(agent_bin()),
    };
    cmd.args(["--server", url, "--state-dir"]).arg(state_dir).args(args);
    for proxy in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(proxy);
    }
    cmd.env_remove("YUNZHI_AGENT_ENROLL").env_remove("JOURNAL_STREAM");
    cmd
}

fn run_once(server: &Server, state_dir: &Path, args: &[&str]) -> Output {
    let output = agent_command(server, state_dir, args).arg("--once").output().expect("the agent runs");
    eprintln!("agent stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn binary_sm3() -> String {
    let bytes = std::fs::read(agent_bin()).expect("read the binary");
    Sm3::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn enrolment_keeps_a_private_credential_and_the_first_report_is_sequence_one() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    let state_dir = tmp.path().join("state");

    let output = run_once(&server, &state_dir, &["--enroll", CODE]);

    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(mode(&state_dir), 0o700);
    assert_eq!(mode(&state_dir.join("credential.json")), 0o600);
    let enrolment = server.with(|s| s.enrolments[0].clone());
    assert_eq!(enrolment["code"], CODE);
    assert_eq!(enrolment["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(enrolment["binary_sm3"], binary_sm3().as_str());
    assert!(!enrolment["hostname"].as_str().expect("a hostname").is_empty());
    assert!(enrolment.get("machine_id").is_some(), "machine_id is sent, null if unknown");

    let reports = server.with(|s| s.reports.clone());
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report["sequence"], 1);
    assert_eq!(report["binary_sm3"], binary_sm3().as_str());
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    assert_eq!(report["boot_id"], boot_id.trim());
    assert!(report["sent_at"].as_str().expect("sent_at").ends_with('Z'));
    assert!(report.get("dropped_batches").is_none());
    let sample = &report["samples"][0];
    let number = |k: &str| sample[k].as_f64().unwrap_or_else(|| panic!("{k} is a number in {sample}"));
    assert!((0.0..=100.0).contains(&number("cpu_pct")), "{sample}");
    assert!(number("memory_pct") > 0.0 && number("memory_pct") < 100.0, "{sample}");
    for rate in ["disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps"] {
        assert!(number(rate) >= 0.0, "{sample}");
    }
    assert!(sample["sessions"].is_u64() && sample["listening"].is_u64(), "{sample}");
    assert!(sample["listening"].as_u64() >= Some(1), "the stand-in itself listens: {sample}");
    assert!(sample["at"].as_str().expect("at").ends_with('Z'));
}

#[test]
fn a_second_run_needs_no_code_and_sends_the_next_sequence() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    assert!(run_once(&server, tmp.path(), &["--enroll", CODE]).status.success());

    let second = run_once(&server, tmp.path(), &[]);

    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(server.with(|s| s.enrolments.len()), 1, "no second enrolment");
    assert_eq!(server.sequences(), [1, 2]);
}

#[test]
fn a_batch_refused_with_503_is_spooled_and_sent_first_in_order_on_the_next_run() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    assert!(run_once(&server, tmp.path(), &["--enroll", CODE]).status.success());
    server.with(|s| s.busy = 1);

    let refused = run_once(&server, tmp.path(), &[]);

    assert_eq!(refused.status.code(), Some(75), "kept for later: {}", stderr(&refused));
    assert!(tmp.path().join("spool/2.json").exists());
    assert_eq!(server.sequences(), [1]);

    let next = run_once(&server, tmp.path(), &[]);

    assert!(next.status.success(), "{}", stderr(&next));
    assert_eq!(server.sequences(), [1, 2, 3], "the spooled batch goes first");
    let spool_left = std::fs::read_dir(tmp.path().join("spool")).expect("spool dir").count();
    assert_eq!(spool_left, 0);
}

#[test]
fn batches_made_while_the_server_is_unreachable_are_spooled_and_sent_in_order_once_it_is_back() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    assert!(run_once(&server, tmp.path(), &["--enroll", CODE]).status.success());
    // A port nobody listens on: the connection is refused.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let unreachable = format!("http://{}", gone.local_addr().expect("address"));
    drop(gone);

    for _ in 0..2 {
        let output =
            agent_command_to(&unreachable, tmp.path(), &[]).arg("--once").output().expect("the agent runs");
        assert_eq!(output.status.code(), Some(75), "kept for later: {}", stderr(&output));
    }

    assert!(tmp.path().join("spool/2.json").exists() && tmp.path().join("spool/3.json").exists());
    let next = run_once(&server, tmp.path(), &[]);
    assert!(next.status.success(), "{}", stderr(&next));
    assert_eq!(server.sequences(), [1, 2, 3, 4], "the spooled batches go first, oldest first");
    let spool_left = std::fs::read_dir(tmp.path().join("spool")).expect("spool dir").count();
    assert_eq!(spool_left, 0);
}

#[test]
fn a_refused_enrolment_code_prints_the_servers_detail_and_fails() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");

    let output = run_once(&server, tmp.path(), &["--enroll", "NOT-A-CODE"]);

    assert_eq!(output.status.code(), Some(78), "needs a new code");
    assert!(stderr(&output).contains(DETAIL), "{}", stderr(&output));
    assert!(!tmp.path().join("credential.json").exists());
    assert!(server.with(|s| s.reports.is_empty()));
}

#[test]
fn a_revoked_credential_stops_the_agent_and_is_not_tried_again() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    assert!(run_once(&server, tmp.path(), &["--enroll", CODE]).status.success());
    server.with(|s| s.revoked = true);

    let refused = run_once(&server, tmp.path(), &[]);

    assert_eq!(refused.status.code(), Some(78));
    assert!(stderr(&refused).contains("revoked"), "{}", stderr(&refused));
    let attempts = server.with(|s| s.attempts.len());

    let again = run_once(&server, tmp.path(), &[]);

    assert_eq!(again.status.code(), Some(78));
    assert!(stderr(&again).contains("--enroll"), "asks for a new code: {}", stderr(&again));
    assert_eq!(server.with(|s| s.attempts.len()), attempts, "no report with the dead credential");
}

#[test]
fn a_running_agent_waits_at_least_retry_after_before_sending_again() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    assert!(run_once(&server, tmp.path(), &["--enroll", CODE]).status.success());
    server.with(|s| {
        s.busy = 1;
        s.retry_after_secs = 3;
    });

    let mut child = agent_command(&server, tmp.path(), &["--interval", "1"])
        .stderr(Stdio::null())
        .spawn()
        .expect("the agent starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.with(|s| s.reports.len()) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("stop the agent");
    child.wait().expect("reap the agent");

    let attempts = server.with(|s| s.attempts.clone());
    let (refused_at, refused_seq, _) = *attempts.iter().find(|a| a.2 == 503).expect("one 503");
    let (retried_at, retried_seq, _) = *attempts.iter().find(|a| a.0 > refused_at).expect("a retry");
    assert_eq!(retried_seq, refused_seq, "the refused batch is retried first");
    assert!(retried_at - refused_at >= Duration::from_secs(3), "waited {:?}", retried_at - refused_at);
    let sequences = server.sequences();
    assert!(sequences.len() >= 4, "{sequences:?}");
    assert!(sequences.windows(2).all(|w| w[1] == w[0] + 1), "in order, none lost: {sequences:?}");
}
