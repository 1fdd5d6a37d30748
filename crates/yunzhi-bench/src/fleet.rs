//! The fleet analysis from rollups and from raw storage, the same question
//! in PromQL on Prometheus, bytes per sample, and memory.
//!
//! One generated fleet ([`generate`]) feeds everything: a Yunzhi site with
//! every host (its database with the district and the daily rollups, its
//! raw store), and for the side-by-side with Prometheus the first
//! `--prometheus-hosts` hosts three ways — a Yunzhi site of their own,
//! OpenMetrics text backfilled into Prometheus with promtool — so both
//! answer the same question on the same readings on the same machine.
//!
//! The analysis is the server's own pass (`worker::analysis::analyse`) with
//! the long-term-low and zombie windows stretched to the fleet's days, so
//! that rollups, raw storage and PromQL all answer for the whole window.

pub mod generate;

mod answers;
mod district;
mod openmetrics;
mod promql;
mod raw;
mod rollups;
mod site;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use yunzhi_domain::efficiency::Rules;

use crate::process;
use crate::prometheus::{self, Prometheus};
use crate::report::Figure;
use generate::Fleet;
use site::Site;

/// Options of `yunzhi bench fleet`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Hosts in the generated fleet.
    #[arg(long, default_value_t = 10_000)]
    pub hosts: usize,
    /// Days of readings (one every 5 minutes), ending on `--last-day`; at
    /// most 400, the rules' longest window.
    #[arg(long, default_value_t = 90)]
    pub days: usize,
    /// The fleet's last Beijing day; the analysis runs the next morning.
    #[arg(long, default_value = "2026-10-31")]
    pub last_day: Date,
    /// How many hosts (the first of the same fleet) also go through
    /// Prometheus, and through a Yunzhi site of their own, for the
    /// side-by-side figures. Backfilling Prometheus with promtool is the
    /// slow part: about 6 minutes per 1,000 hosts × 90 days on 2 cores.
    #[arg(long, default_value_t = 1_000)]
    pub prometheus_hosts: usize,
    /// Where the generated data is kept, so that a second run with the
    /// same fleet reuses it. Default: a temporary folder, deleted at the end.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The generator's seed.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(args: &Args) -> anyhow::Result<Vec<Figure>> {
    // Checked first: a comparison that finds no Prometheus after building
    // the fleet for ten minutes would have wasted them.
    prometheus::require("prometheus")?;
    prometheus::require("promtool")?;
    // reqwest's rustls needs a process-wide provider even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.hosts == 0 || args.days == 0 || args.days > 400 {
        bail!("--hosts must be at least 1 and --days from 1 to 400");
    }
    let n = args.prometheus_hosts.clamp(1, args.hosts);
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let fleet = Arc::new(Fleet::new(args.seed, args.hosts, args.last_day, args.days)?);
    let (first, last) = (fleet.first_day(), fleet.last_day());
    let today = last.tomorrow()?;
    let now = district::analysed_at(last)?;
    println!(
        "fleet: {} hosts × 4 metrics × {} days ({first} to {last}) × 288 readings = {:.2} billion values; seed {}; data in {}",
        fleet.hosts(),
        fleet.days(),
        (fleet.hosts() * fleet.days() * generate::READINGS_PER_DAY * 4) as f64 / 1e9,
        fleet.seed(),
        dir.display()
    );
    println!("  profiles: {}", profile_counts(&fleet));
    println!("  side by side with Prometheus: the first {n} hosts (--prometheus-hosts)");

    let mut full = Site::new(dir.join(format!("yunzhi-{}", fleet.hosts())), fleet.hosts());
    let mut subset = (n < fleet.hosts()).then(|| Site::new(dir.join(format!("yunzhi-{n}")), n));
    let mut to_build: Vec<&mut Site> = Vec::new();
    if !full.reuse(&fleet) {
        to_build.push(&mut full);
    }
    if let Some(s) = subset.as_mut()
        && !s.reuse(&fleet)
    {
        to_build.push(s);
    }
    if to_build.is_empty() {
        println!("Yunzhi sites: reusing {}", dir.display());
    } else {
        let sizes: Vec<String> = to_build.iter().map(|s| s.hosts.to_string()).collect();
        println!(
            "building Yunzhi sites of {} hosts (database with daily rollups, raw store)…",
            sizes.join(" and ")
        );
        let started = Instant::now();
        site::build(&fleet, &mut to_build).await?;
        println!("  built in {:.0} s", started.elapsed().as_secs_f64());
    }
    let mut rules = Rules::default();
    rules.long_term_low.window_days = fleet.days() as u32;
    rules.zombie.window_days = fleet.days() as u32;
    rules.check().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let periodic = district::periodic_loads(&fleet);
    let window = (first, last, today);

    println!(
        "analysis from rollups: the server's pass over {} hosts, windows of {} days (low utilisation 14), clock at {now}…",
        full.hosts,
        fleet.days()
    );
    let roll = rollups::measure(&full, &rules, now, today).await?;
    print_analysis(&roll);
    println!("  database: {:.0} MB", full.db_bytes() as f64 / 1e6);
    let shipped = rollups::read_and_rules(&full, &Rules::default(), now, today).await?;
    println!(
        "  with the shipped windows (30 days): {} rows read in {:.3} s, rules {:.3} s",
        shipped.rows,
        secs(shipped.read),
        secs(shipped.rules)
    );
    let roll_verdicts = answers::verdicts(&rules, today, &full.ids, &periodic, &roll.answer);

    println!(
        "analysis from raw storage: daily_stats_of the 4 metrics over {} days, then the rules…",
        fleet.days()
    );
    let raw_full = measure_raw(&full, &fleet, &rules, window, &periodic).await?;
    print_raw(&raw_full);
    let (low, zombie) = answers::tally(&roll_verdicts);
    println!(
        "  verdicts: {low} hosts low utilisation, {zombie} zombies (rollups); raw storage agrees on {} of {} hosts",
        answers::agreeing(&roll_verdicts, &raw_full.verdicts),
        full.hosts
    );
    println!(
        "  raw storage's figures against the rollups': {}",
        answers::gaps(&roll.answer, &raw_full.answer)
    );

    // The side by side: Prometheus, and Yunzhi on the same hosts.
    let ours = subset.as_ref().unwrap_or(&full);
    let prom_dir = dir.join(format!("prometheus-{n}"));
    let data = prom_dir.join("data");
    let backfilled = backfill(&fleet, &ours.ids, &prom_dir).await?;
    let blocks = openmetrics::blocks(&data)?;
    println!(
        "  Prometheus blocks: {} samples in {} series, {} blocks: chunks {:.1} MB + index {:.1} MB = {:.3} B per sample ({:.3} chunks alone)",
        blocks.samples,
        blocks.series,
        blocks.blocks,
        blocks.chunk_bytes as f64 / 1e6,
        blocks.index_bytes as f64 / 1e6,
        blocks.bytes_per_sample(),
        blocks.chunk_bytes as f64 / blocks.samples.max(1) as f64
    );
    println!("starting Prometheus on the blocks…");
    let prom = Prometheus::start(&data, &["--query.timeout=30m", "--log.level=warn"]).await?;
    let prom_before = process::memory(prom.pid())?;
    println!("asking Prometheus the same question (7 query_range, 1-day step, over {} days)…", fleet.days());
    let asked = promql::ask(&prom.url(), window, &rules, &ours.ids, &periodic[..n]).await?;
    let prom_memory = process::memory(prom.pid())?;
    drop(prom);
    println!(
        "  answered in {:.3} s (queries {:.3} s): {} series, {} points; {} host-days without exactly 288 readings",
        secs(asked.elapsed),
        secs(asked.queries),
        asked.series,
        asked.points,
        asked.short_days
    );
    println!(
        "  Prometheus resident: {:.0} MiB after opening the blocks, {:.0} MiB peak",
        prom_before.resident as f64 / MIB,
        prom_memory.peak as f64 / MIB
    );

    let measured_subset = match subset.as_ref() {
        Some(s) => {
            println!("Yunzhi on the same {n} hosts (a site of their own), from rollups…");
            let r = rollups::measure(s, &rules, now, today).await?;
            print_analysis(&r);
            println!("  from raw storage…");
            let raw = measure_raw(s, &fleet, &rules, window, &periodic[..n]).await?;
            print_raw(&raw);
            Some((r, raw))
        }
        None => None,
    };
    let (same_roll, same_raw) = match &measured_subset {
        Some((r, raw)) => (r, raw),
        None => (&roll, &raw_full),
    };
    let same_verdicts = answers::verdicts(&rules, today, &ours.ids, &periodic[..n], &same_roll.answer);
    println!(
        "  verdicts on the {n} hosts: PromQL agrees with the rollups on {}, with raw storage on {}",
        answers::agreeing(&same_verdicts, &asked.verdicts),
        answers::agreeing(&same_raw.verdicts, &asked.verdicts)
    );
    println!("  PromQL's figures against the rollups': {}", answers::gaps(&same_roll.answer, &asked.answer));
    let raw_same_bpv = same_raw.bytes_per_metric_value();
    println!(
        "  raw storage of the {n} hosts: {} bytes of day files for {} readings: {raw_same_bpv:.3} B per value of the 4 metrics; \
         {:.3} B without the columns Prometheus is not given",
        same_raw.stats.parquet_bytes,
        same_raw.stats.sealed_rows,
        same_raw.bytes_per_metric_value_same_data()
    );
    let per_row = |bytes: u64| bytes as f64 / same_raw.stats.sealed_rows.max(1) as f64;
    let columns: Vec<String> =
        same_raw.column_bytes.iter().map(|(name, bytes)| format!("{name} {:.3}", per_row(*bytes))).collect();
    println!("  bytes per reading by column: {}", columns.join(", "));

    let figures = figures(Numbers {
        n,
        full: &full,
        roll: &roll,
        shipped: &shipped,
        raw: &raw_full,
        same_roll,
        same_raw,
        asked: &asked,
        blocks: &blocks,
        prom_memory: prom_memory.peak,
        backfill: backfilled,
    });
    drop(tmp);
    Ok(figures)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn profile_counts(fleet: &Fleet) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for h in 0..fleet.hosts() {
        let name = fleet.host(h).profile.name();
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.iter().map(|(n, c)| format!("{n} {c}")).collect::<Vec<_>>().join(", ")
}

fn print_analysis(m: &rollups::Measured) {
    let s = &m.split;
    println!(
        "  first pass {:.3} s ({} hosts, {} rows read, {} verdicts, {} new findings, {} resolved; {:.0} MB read from disk)",
        secs(m.first),
        m.first_report.hosts,
        m.first_report.rows_read,
        m.first_report.verdicts,
        m.first_report.new_findings,
        m.first_report.resolved,
        m.first_from_disk as f64 / 1e6,
    );
    println!(
        "  an hour later (today's rollups written for every host, yesterday's again for 1 in 100): {:.3} s \
         ({} rows read, {} new, {} resolved)",
        secs(m.second),
        m.second_report.rows_read,
        m.second_report.new_findings,
        m.second_report.resolved
    );
    println!("  the first pass, in ms: {:?}", m.first_report.ms);
    println!("  an hour later, in ms: {:?}", m.second_report.ms);
    println!(
        "  a day later (the day just ended read whole, every host judged again): {:.3} s ({} rows read, {} new, \
         {} resolved)",
        secs(m.third),
        m.third_report.rows_read,
        m.third_report.new_findings,
        m.third_report.resolved
    );
    let r = &m.restart;
    println!(
        "  the checkpoint after it: {:.1} MB ({} hosts, {} days) written in {:.3} s; a restart's first pass from it: \
         {:.3} s ({} days from the checkpoint, {} rows read, {} new, {} resolved)",
        r.saved.bytes as f64 / 1e6,
        r.saved.hosts,
        r.saved.days,
        secs(r.save),
        secs(r.pass),
        r.report.restored_days,
        r.report.rows_read,
        r.report.new_findings,
        r.report.resolved
    );
    println!("  the restart's first pass, in ms: {:?}", r.report.ms);
    println!(
        "  taken apart: live hosts {:.3} s; daily figures of {} rows {:.3} s (the same rows read whole, \
         histograms parsed, {:.3} s); rules {:.3} s ({:.3} s of it for the {} hosts with a verdict, evidence built)",
        secs(s.live_hosts),
        s.rows,
        secs(s.read),
        secs(s.read_whole),
        secs(s.rules),
        secs(s.rules_with_verdict),
        s.hosts_with_verdict
    );
    let parts = s.live_hosts + s.read + s.rules;
    println!(
        "  the first pass less those parts (agents, the findings' bookkeeping): {:+.3} s \
         (a difference of separate timings: noisy on a shared machine)",
        secs(m.first) - secs(parts)
    );
    println!(
        "  resident memory: {:.0} MiB before, {:.0} MiB at most during the passes",
        m.memory_before.resident as f64 / MIB,
        m.memory_peak as f64 / MIB
    );
}

async fn measure_raw(
    site: &Site,
    fleet: &Arc<Fleet>,
    rules: &Rules,
    window: (Date, Date, Date),
    periodic: &[Option<yunzhi_domain::system::PeriodicLoad>],
) -> anyhow::Result<raw::Measured> {
    let store = site.open_raw(fleet)?;
    let (rules, ids, periodic) = (rules.clone(), site.ids.clone(), periodic.to_vec());
    tokio::task::spawn_blocking(move || raw::measure(&store, &rules, window, &ids, &periodic)).await?
}

fn print_raw(m: &raw::Measured) {
    for (when, run) in [("first run, day files as cached", &m.first), ("again", &m.again)] {
        println!(
            "  {when}: {:.3} s: daily_stats_of {:.3} s ({} host-days, {:.0} MB read from disk), rules {:.3} s",
            secs(run.total()),
            secs(run.scan),
            m.host_days,
            run.from_disk as f64 / 1e6,
            secs(run.rules),
        );
    }
    println!(
        "  resident {:.0} MiB before, {:.0} MiB at most",
        m.memory_before as f64 / MIB,
        m.memory_peak as f64 / MIB
    );
    println!(
        "  day files: {} bytes for {} readings: {:.3} B per value of the 4 metrics ({:.3} counting all 9 values of a row)",
        m.stats.parquet_bytes,
        m.stats.sealed_rows,
        m.bytes_per_metric_value(),
        m.stats.bytes_per_value
    );
}

/// What a finished Prometheus backfill holds, written last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Backfilled {
    seed: u64,
    days: usize,
    last_day: String,
    ids: Vec<i64>,
    samples: u64,
    text_bytes: u64,
    write_secs: f64,
    promtool_secs: f64,
}

/// The first hosts of the fleet (labelled `ids`) in Prometheus blocks under
/// `dir/data`: OpenMetrics text streamed to a file, backfilled by promtool,
/// the text deleted. A folder backfilled before with the same fleet is kept.
async fn backfill(fleet: &Arc<Fleet>, ids: &[i64], dir: &Path) -> anyhow::Result<Backfilled> {
    let marker = dir.join("backfill.json");
    if let Ok(text) = std::fs::read(&marker)
        && let Ok(found) = serde_json::from_slice::<Backfilled>(&text)
        && found.seed == fleet.seed()
        && found.days == fleet.days()
        && found.last_day == fleet.last_day().to_string()
        && found.ids == ids
    {
        println!("Prometheus: reusing the blocks in {}", dir.display());
        return Ok(found);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let input = dir.join("fleet.om");
    println!(
        "Prometheus: writing {} hosts × 4 gauges × {} days as OpenMetrics text to {}…",
        ids.len(),
        fleet.days(),
        input.display()
    );
    let started = Instant::now();
    let (f, i, file) = (Arc::clone(fleet), ids.to_vec(), std::fs::File::create(&input)?);
    let samples = tokio::task::spawn_blocking(move || openmetrics::write(&f, &i, file)).await??;
    let write_secs = started.elapsed().as_secs_f64();
    let text_bytes = std::fs::metadata(&input)?.len();
    println!(
        "  {samples} samples, {:.2} GB of text in {write_secs:.0} s; backfilling with promtool (one long block: two passes over the text)…",
        text_bytes as f64 / 1e9
    );
    let (inp, data) = (input.clone(), dir.join("data"));
    let promtool = tokio::task::spawn_blocking(move || openmetrics::backfill(&inp, &data)).await??;
    println!("  promtool took {:.0} s", promtool.as_secs_f64());
    std::fs::remove_file(&input).context("deleting the OpenMetrics text")?;
    let done = Backfilled {
        seed: fleet.seed(),
        days: fleet.days(),
        last_day: fleet.last_day().to_string(),
        ids: ids.to_vec(),
        samples,
        text_bytes,
        write_secs,
        promtool_secs: promtool.as_secs_f64(),
    };
    std::fs::write(&marker, serde_json::to_vec_pretty(&done)?)?;
    Ok(done)
}

struct Numbers<'a> {
    n: usize,
    full: &'a Site,
    roll: &'a rollups::Measured,
    shipped: &'a rollups::Reading,
    raw: &'a raw::Measured,
    same_roll: &'a rollups::Measured,
    same_raw: &'a raw::Measured,
    asked: &'a promql::Measured,
    blocks: &'a openmetrics::Blocks,
    prom_memory: u64,
    backfill: Backfilled,
}

fn figure(name: String, value: f64, unit: &'static str, goal: &str, prometheus: Option<f64>) -> Figure {
    Figure { name, value, unit, goal: goal.into(), prometheus, higher_is_better: false }
}

/// The figure of the raw analysis run again straight after its first run.
fn again(run: &raw::Run, goal: &str, prometheus: Option<f64>) -> Figure {
    let name = format!("  again, straight after ({:.0} MB from disk)", run.from_disk as f64 / 1e6);
    figure(name, secs(run.total()), "s", goal, prometheus)
}

fn figures(x: Numbers<'_>) -> Vec<Figure> {
    let (n, hosts) = (x.n, x.full.hosts);
    let s = &x.roll.split;
    let prom_secs = secs(x.asked.elapsed);
    vec![
        figure(
            format!("analysis from rollups, {hosts} hosts, 1st pass"),
            secs(x.roll.first),
            "s",
            "≤ 0.2 s",
            None,
        ),
        figure(
            format!("analysis from rollups, {hosts} hosts, an hour later (steady state)"),
            secs(x.roll.second),
            "s",
            "≤ 0.2 s",
            None,
        ),
        figure(
            format!("analysis from rollups, {hosts} hosts, first pass of a new day"),
            secs(x.roll.third),
            "s",
            "—",
            None,
        ),
        figure(
            format!(
                "analysis from rollups, {hosts} hosts, first pass after a restart ({:.0} MB checkpoint)",
                x.roll.restart.saved.bytes as f64 / 1e6
            ),
            secs(x.roll.restart.pass),
            "s",
            "≤ 0.2 s",
            None,
        ),
        figure(
            format!("  reading the daily figures of {} days (each_fleet_daily_stats_changed)", s.rows),
            secs(s.read),
            "s",
            "—",
            None,
        ),
        figure(
            "    the same rows read whole, histograms parsed (apart)".into(),
            secs(s.read_whole),
            "s",
            "—",
            None,
        ),
        figure("  rules (usage_verdicts, every host)".into(), secs(s.rules), "s", "—", None),
        figure(
            format!("    of which the {} hosts with a verdict", s.hosts_with_verdict),
            secs(s.rules_with_verdict),
            "s",
            "—",
            None,
        ),
        figure(
            format!("  shipped 30-day windows: read {} rows + rules", x.shipped.rows),
            secs(x.shipped.read + x.shipped.rules),
            "s",
            "—",
            None,
        ),
        figure(
            format!(
                "analysis from raw, {hosts} hosts (scan + rules), {:.0} MB from disk",
                x.raw.first.from_disk as f64 / 1e6
            ),
            secs(x.raw.first.total()),
            "s",
            "≤ 3 s",
            None,
        ),
        figure("  of which daily_stats_of, 4 metrics".into(), secs(x.raw.first.scan), "s", "—", None),
        again(&x.raw.again, "≤ 3 s", None),
        figure(
            format!(
                "same question, {n} hosts: Yunzhi from rollups (first pass, read cold, {:.0} MB from disk)",
                x.same_roll.first_from_disk as f64 / 1e6
            ),
            secs(x.same_roll.first),
            "s",
            "≥ 20× faster than PromQL",
            Some(prom_secs),
        ),
        figure(
            format!("same question, {n} hosts: Yunzhi from rollups, a restart's first pass (checkpoint)"),
            secs(x.same_roll.restart.pass),
            "s",
            "≥ 20× faster than PromQL",
            Some(prom_secs),
        ),
        figure(
            format!(
                "same question, {n} hosts: Yunzhi from raw ({:.0} MB from disk)",
                x.same_raw.first.from_disk as f64 / 1e6
            ),
            secs(x.same_raw.first.total()),
            "s",
            "≥ 20× faster than PromQL",
            Some(prom_secs),
        ),
        again(&x.same_raw.again, "≥ 20× faster than PromQL", Some(prom_secs)),
        figure(
            format!("raw storage, {hosts} hosts, B per value of 4 metrics"),
            x.raw.bytes_per_metric_value(),
            "B/value",
            "≤ 2.75 (½ of Prometheus's ≈ 5.5)",
            None,
        ),
        figure(
            format!("raw storage, {n} hosts, B/sample, the same data (Prom: chunks+index)"),
            x.same_raw.bytes_per_metric_value_same_data(),
            "B/sample",
            "≤ ½ of Prometheus",
            Some(x.blocks.bytes_per_sample()),
        ),
        figure(
            "  whole day files, with sessions, listening, connections accepted".into(),
            x.same_raw.bytes_per_metric_value(),
            "B/sample",
            "—",
            Some(x.blocks.bytes_per_sample()),
        ),
        figure(
            format!("memory, analysis from rollups, {hosts} hosts (peak RSS)"),
            x.roll.memory_peak as f64 / MIB,
            "MiB",
            "≤ 1024 MiB",
            None,
        ),
        figure(
            format!("memory, analysis from raw, {hosts} hosts (peak RSS)"),
            x.raw.memory_peak as f64 / MIB,
            "MiB",
            "≤ 1024 MiB",
            None,
        ),
        figure(
            format!("memory answering for {n} hosts (peak RSS)"),
            x.same_roll.memory_peak as f64 / MIB,
            "MiB",
            "—",
            Some(x.prom_memory as f64 / MIB),
        ),
        figure(
            format!("Prometheus backfill of {n} hosts (text + promtool)"),
            x.backfill.write_secs + x.backfill.promtool_secs,
            "s",
            "— (setup)",
            None,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use yunzhi_domain::finding::FindingKind;

    use super::*;

    /// A small fleet built as the benchmark builds it, analysed by the
    /// server from its rollups and from its raw store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rollups_and_raw_storage_answer_alike_and_the_analysis_finds_the_zombies() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let fleet = Arc::new(Fleet::new(11, 24, date(2026, 10, 31), 16).expect("a fleet"));
        let mut site = Site::new(dir.path().join("site"), fleet.hosts());
        site::build(&fleet, &mut [&mut site]).await.expect("built");
        assert_eq!(site.ids.len(), 24);
        let mut again = Site::new(dir.path().join("site"), fleet.hosts());
        assert!(again.reuse(&fleet), "a built site is reused");
        assert_eq!(again.ids, site.ids);

        let mut rules = Rules::default();
        rules.long_term_low.window_days = 16;
        rules.zombie.window_days = 16;
        let last = fleet.last_day();
        let today = last.tomorrow().expect("tomorrow");
        let now = district::analysed_at(last).expect("instant");
        let periodic = district::periodic_loads(&fleet);
        let roll = rollups::measure(&site, &rules, now, today).await.expect("analysis");
        assert_eq!(roll.first_report.hosts, 24);
        assert_eq!(roll.split.rows, 24 * 16);
        // Every host's agent reports: the usage rules alone raise findings.
        assert_eq!(roll.first_report.new_findings, roll.first_report.verdicts);
        assert_eq!(roll.second_report.new_findings, 0);
        // An hour later only the late report of yesterday is read (today's
        // rows are past the window); a day later the day just ended, whole,
        // and that late row once more (a read reaches back over the previous).
        assert_eq!(roll.second_report.rows_read, 1);
        assert_eq!(roll.third_report.rows_read, 24 + 1);
        assert_eq!(roll.first_report.rows_read, 24 * 16);
        // A restart takes the window from the checkpoint and reads again
        // only what changed shortly before it (all of the day just ended,
        // written moments ago), and finds nothing new.
        let r = &roll.restart;
        assert_eq!((r.saved.hosts, r.saved.days), (24, 24 * 16));
        assert_eq!(r.report.restored_days, 24 * 16);
        assert_eq!((r.report.new_findings, r.report.resolved), (0, 0));
        assert_eq!(r.report.verdicts, roll.third_report.verdicts);

        let raw = measure_raw(&site, &fleet, &rules, (fleet.first_day(), last, today), &periodic)
            .await
            .expect("raw");
        assert_eq!(raw.host_days, 24 * 16);
        assert_eq!(raw.stats.sealed_rows, 24 * 16 * 288);
        let g = answers::gaps(&roll.answer, &raw.answer);
        assert_eq!((g.host_days, g.unmatched, g.samples), (24 * 16, 0, 0), "{g}");
        assert!(g.cpu_avg < 0.01 && g.cpu_max < 0.01 && g.memory_avg < 0.01, "{g}");
        // The rollup's p95 is its histogram bucket's upper edge: at most a point above.
        assert!(g.cpu_p95.0 > -0.01 && g.cpu_p95.1 <= 1.0, "{g}");
        assert!(g.net_relative < 1e-5 && g.disk_relative < 1e-5, "{g}");

        let from_rollups = answers::verdicts(&rules, today, &site.ids, &periodic, &roll.answer);
        assert_eq!(from_rollups.len(), fleet.hosts());
        for (h, kinds) in from_rollups.iter().enumerate() {
            let zombie = kinds.contains(&FindingKind::Zombie);
            assert_eq!(
                zombie,
                fleet.host(h).profile == generate::Profile::Zombie,
                "host {h}: {:?}",
                fleet.host(h)
            );
            assert_eq!(zombie, raw.verdicts[h].contains(&FindingKind::Zombie), "host {h}");
        }
        let busy = (0..fleet.hosts()).filter(|h| fleet.host(*h).profile == generate::Profile::Busy);
        for h in busy {
            assert!(from_rollups[h].is_empty() && raw.verdicts[h].is_empty(), "busy host {h} judged idle");
        }
    }
}
