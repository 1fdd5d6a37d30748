//! The fleet's readings as Prometheus holds them: four gauges per host,
//! written as OpenMetrics text and backfilled with
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! The text is streamed to a file (at 5-minute resolution a thousand hosts
//! over 90 days is about 100 million lines). Families are contiguous, each
//! host's series in time order, values the agent's hundredths exactly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use yunzhi_domain::monitoring::Reading;

use super::generate::{Fleet, READINGS_PER_DAY};

/// The label carrying Yunzhi's resource id, as a site's relabelling puts it.
pub const RESOURCE_LABEL: &str = "yunzhi_resource_id";

/// promtool's longest block, 2 h × 3⁹.
const LONGEST_BLOCK_HOURS: u32 = 2 * 19_683;

/// A gauge family and how a reading gives its value.
pub struct Family {
    pub name: &'static str,
    pub value: fn(&Reading) -> f64,
}

/// The four metrics: CPU, memory, disk and network, the last two summed
/// over directions as the rules read them.
pub const FAMILIES: [Family; 4] = [
    Family { name: "yunzhi_cpu_percent", value: |r| r.cpu_pct },
    Family { name: "yunzhi_memory_percent", value: |r| r.memory_pct },
    Family { name: "yunzhi_disk_bytes_per_second", value: |r| r.disk_read_bps + r.disk_write_bps },
    Family { name: "yunzhi_network_bytes_per_second", value: |r| r.net_rx_bps + r.net_tx_bps },
];

/// Writes the first `ids.len()` hosts of `fleet` (host `h` labelled
/// `ids[h]`) as OpenMetrics text; returns the number of samples.
pub fn write(fleet: &Fleet, ids: &[i64], out: impl Write) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut readings = Vec::with_capacity(READINGS_PER_DAY);
    let mut samples = 0u64;
    let mut line = Vec::with_capacity(128);
    for family in &FAMILIES {
        writeln!(out, "# TYPE {} gauge", family.name)?;
        for (h, id) in ids.iter().enumerate() {
            let host = fleet.host(h);
            let prefix = format!("{}{{{RESOURCE_LABEL}=\"{id}\"}} ", family.name);
            for d in 0..fleet.days() {
                readings.clear();
                fleet.readings_of(&host, h, d, &mut readings);
                for r in &readings {
                    line.clear();
                    line.extend_from_slice(prefix.as_bytes());
                    put_hundredths(&mut line, (family.value)(r));
                    line.push(b' ');
                    put_int(&mut line, r.at.as_second());
                    line.push(b'\n');
                    out.write_all(&line)?;
                    samples += 1;
                }
            }
        }
    }
    out.write_all(b"# EOF\n")?;
    out.flush()?;
    Ok(samples)
}

/// A value in hundredths as `123.45`: what the agent sent, without the
/// float formatting's cost or its `123.45000000000002`.
fn put_hundredths(line: &mut Vec<u8>, v: f64) {
    let cents = (v * 100.0).round() as i64;
    if cents < 0 {
        line.push(b'-');
    }
    let cents = cents.unsigned_abs();
    put_int(line, (cents / 100) as i64);
    line.push(b'.');
    line.push(b'0' + (cents / 10 % 10) as u8);
    line.push(b'0' + (cents % 10) as u8);
}

fn put_int(line: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        line.push(b'-');
    }
    line.extend_from_slice(&buf[i..]);
}

/// Backfills `input` into TSDB blocks under `data` with promtool.
///
/// promtool parses the whole input once to find its time range, then once
/// more per block it writes: with its default 2-hour blocks 90 days would be
/// 1,081 passes over the file. Blocks of promtool's longest length (2 h ×
/// 3⁹, 4½ years, aligned to the epoch) make it two passes, one block, for
/// any window of the benchmark. Prometheus opens blocks of any length.
pub fn backfill(input: &Path, data: &Path) -> anyhow::Result<Duration> {
    crate::prometheus::require("promtool")?;
    std::fs::create_dir_all(data)?;
    let started = Instant::now();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(format!("--max-block-duration={LONGEST_BLOCK_HOURS}h"))
        .arg(input)
        .arg(data)
        .output()
        .context("running promtool")?;
    if !out.status.success() {
        bail!(
            "promtool tsdb create-blocks-from openmetrics {} failed: {}{}",
            input.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(started.elapsed())
}

/// What the blocks of a TSDB directory hold, from each block's `meta.json`
/// and its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocks {
    pub blocks: usize,
    pub samples: u64,
    pub series: u64,
    /// Bytes of the chunk segments (`chunks/`).
    pub chunk_bytes: u64,
    /// Bytes of the index files.
    pub index_bytes: u64,
}

impl Blocks {
    /// Chunks and index per sample: what Prometheus keeps on disk for the data.
    pub fn bytes_per_sample(&self) -> f64 {
        (self.chunk_bytes + self.index_bytes) as f64 / self.samples.max(1) as f64
    }
}

/// Reads every block under `data`.
pub fn blocks(data: &Path) -> anyhow::Result<Blocks> {
    let mut b = Blocks::default();
    for entry in std::fs::read_dir(data).with_context(|| format!("listing {}", data.display()))? {
        let dir = entry?.path();
        let meta = dir.join("meta.json");
        if !meta.is_file() {
            continue;
        }
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta)?)
            .with_context(|| format!("reading {}", meta.display()))?;
        b.blocks += 1;
        b.samples += meta["stats"]["numSamples"].as_u64().unwrap_or(0);
        b.series += meta["stats"]["numSeries"].as_u64().unwrap_or(0);
        b.index_bytes += std::fs::metadata(dir.join("index")).map(|m| m.len()).unwrap_or(0);
        b.chunk_bytes += files_under(&dir.join("chunks"))?.iter().map(|p| size(p)).sum::<u64>();
    }
    if b.blocks == 0 {
        bail!("no TSDB blocks under {}", data.display());
    }
    Ok(b)
}

fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        out.push(entry?.path());
    }
    Ok(out)
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn values_are_written_as_the_agents_hundredths() {
        let mut line = Vec::new();
        for v in [0.0, 0.05, 12.3, 99.99, 1_234_567.89, 7.0] {
            put_hundredths(&mut line, v);
            line.push(b' ');
        }
        assert_eq!(String::from_utf8(line).expect("ascii"), "0.00 0.05 12.30 99.99 1234567.89 7.00 ");
    }

    #[test]
    fn two_hosts_for_a_day_are_accepted_by_promtool_with_every_sample() {
        let fleet = Fleet::new(3, 2, date(2026, 11, 30), 1).expect("a fleet");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let input = dir.path().join("fleet.om");
        let file = std::fs::File::create(&input).expect("create");
        let written = write(&fleet, &[41, 42], file).expect("write");
        assert_eq!(written, 2 * 4 * 288);
        let text = std::fs::read_to_string(&input).expect("read back");
        assert!(
            text.starts_with(
                "# TYPE yunzhi_cpu_percent gauge\nyunzhi_cpu_percent{yunzhi_resource_id=\"41\"} "
            )
        );
        assert!(text.ends_with("# EOF\n"));

        let data = dir.path().join("data");
        backfill(&input, &data).expect("promtool accepts the text");
        let b = blocks(&data).expect("blocks");
        assert_eq!(b.samples, 2 * 4 * 288, "{b:?}");
        assert_eq!(b.series, 2 * 4 * b.blocks as u64, "{b:?}");
        assert!(b.chunk_bytes > 0 && b.index_bytes > 0);
    }
}
