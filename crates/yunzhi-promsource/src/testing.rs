//! A real Prometheus (Debian's `prometheus` package) for tests: series
//! backfilled with `promtool`, served on a random port, killed when
//! dropped. Behind the `testing` feature; a missing binary fails the test
//! with what to install, never skips it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus process of our own, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(binary: &str) {
    match Command::new(binary).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => {}
        Err(e) => panic!(
            "`{binary}` is needed for this test and cannot be run ({e}): apt-get install prometheus \
             (scripts/services installs it)"
        ),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").port()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Backfills `openmetrics` and starts Prometheus on it; waits for `/-/ready`.
pub async fn start(openmetrics: &str) -> Prometheus {
    require("promtool");
    require("prometheus");
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("series.om");
    let data = dir.path().join("data");
    std::fs::write(&input, openmetrics).expect("write openmetrics");
    run(
        Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(&data),
        "promtool tsdb create-blocks-from openmetrics",
    );
    // No scrape targets, no rules, no alertmanager: Prometheus then makes no
    // outgoing connection at all.
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\nscrape_configs: []\n").expect("write config");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Retention counts back from the newest block: keep the backfill.
        .arg("--storage.tsdb.retention.time=1y")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let mut prometheus = Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let log = prometheus._dir.path().join("prometheus.log");
    wait_ready(&mut prometheus, &log).await;
    prometheus
}

async fn wait_ready(p: &mut Prometheus, log: &Path) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("prometheus exited ({status}): {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        if let Ok(r) = http.get(format!("{}/-/ready", p.url)).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready after 60 s: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
