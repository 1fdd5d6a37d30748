//! A Prometheus server from Debian's `prometheus` package, started for one
//! measurement on a random local port and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Fails with what to install when `binary` is not on the PATH: a benchmark
/// that silently skips its comparison would print a figure without its ratio.
pub fn require(binary: &str) -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(binary).is_file()))
        .unwrap_or(false);
    if !found {
        bail!(
            "`{binary}` is not installed: `apt-get install prometheus` gives `prometheus` and `promtool` (scripts/services does it)"
        );
    }
    Ok(())
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    pub data: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus on the TSDB in `data` (created if missing) with no
    /// scrape targets, plus `extra` flags (e.g.
    /// `--web.enable-remote-write-receiver`), and waits until it is ready.
    pub async fn start(data: &Path, extra: &[&str]) -> anyhow::Result<Prometheus> {
        require("prometheus")?;
        std::fs::create_dir_all(data)?;
        let config = data.join("bench-prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\nscrape_configs: []\n")?;
        let port = free_port()?;
        let log = std::fs::File::create(data.join("bench-prometheus.log"))?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Blocks older than the default 15 days are the data measured, not garbage.
            .arg("--storage.tsdb.retention.time=10y")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting prometheus")?;
        let mut p = Prometheus { child, port, data: data.to_path_buf() };
        p.wait_ready().await?;
        Ok(p)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        yunzhi_server::courier::install_tls();
        let client = reqwest::Client::new();
        let start = Instant::now();
        // Opening a large TSDB replays its WAL and maps its blocks first.
        while start.elapsed() < Duration::from_secs(600) {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "prometheus exited with {status}; see {}",
                    self.data.join("bench-prometheus.log").display()
                );
            }
            if let Ok(r) = client.get(format!("{}/-/ready", self.url())).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("prometheus was not ready within 10 minutes")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
