//! The server's own analysis pass (`worker::analysis::analyse`) on a site's
//! database, timed twice (the first pass raises the findings, the second
//! finds them raised: the hourly steady state), and taken apart: reading
//! the hosts, reading the daily rollups (of which parsing their JSON CPU
//! histograms), turning them into daily figures, and the rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::ToSpan;
use jiff::civil::Date;
use yunzhi_domain::clock::ShiftableClock;
use yunzhi_domain::efficiency::{self, DailyStats, Rules};
use yunzhi_server::worker::analysis::{self, AnalysisReport, checkpoint};
use yunzhi_server::{AppState, Settings};
use yunzhi_store::Span;

use super::answers::{self, Answer};
use super::site::Site;
use crate::process::{self, Memory};

/// What one site's analysis measured.
pub struct Measured {
    /// The first pass: every host's window read cold, every host judged.
    pub first: Duration,
    pub first_report: AnalysisReport,
    /// Bytes read from storage during the first pass: the database as far
    /// as the page cache did not hold it.
    pub first_from_disk: u64,
    /// An hour later, after an hour's readings (today's rollups of every
    /// host, and yesterday's again for one host in a hundred: late
    /// reports): the hourly steady state.
    pub second: Duration,
    pub second_report: AnalysisReport,
    /// A day later: the day just ended read whole, every host judged again.
    pub third: Duration,
    pub third_report: AnalysisReport,
    /// The checkpoint written after that pass, and a restarted server's
    /// first pass from it.
    pub restart: Restart,
    /// Resident memory before the passes, and at most during them.
    pub memory_before: Memory,
    pub memory_peak: u64,
    pub split: Split,
    /// The daily figures the rules read, for comparison with other sources.
    pub answer: Answer,
}

/// Where a pass's time goes, each part timed on its own as the pass does it.
pub struct Split {
    pub live_hosts: Duration,
    pub rows: usize,
    /// `each_fleet_daily_stats_changed`: the daily figures the rules read
    /// (the p95 as stored), grouped by host, as the analysis reads them.
    pub read: Duration,
    /// `fleet_daily_rollups`: the same rows read whole, histograms parsed,
    /// as the analysis read them before the p95 was stored.
    pub read_whole: Duration,
    /// `efficiency::usage_verdicts` for every host.
    pub rules: Duration,
    /// Of which the hosts with a verdict, whose evidence is built, and how many.
    pub rules_with_verdict: Duration,
    pub hosts_with_verdict: usize,
}

/// The analysis' reading and rules with another window, without the
/// findings' bookkeeping: (rows read, read time, rules time).
pub struct Reading {
    pub rows: usize,
    pub read: Duration,
    pub rules: Duration,
}

/// A restart: the checkpoint the hourly job writes after a pass, and the
/// first pass of a server started again on the same database and data
/// folder (its days from the checkpoint, the rows changed since from the
/// database, every host judged again).
pub struct Restart {
    pub save: Duration,
    pub saved: checkpoint::Saved,
    pub pass: Duration,
    pub report: AnalysisReport,
}

async fn restart(site: &Site, state: &AppState) -> anyhow::Result<Restart> {
    let dir = site.dir.join("analysis");
    let mut before = state.clone();
    before.analysis_dir = Some(dir.clone());
    let t = Instant::now();
    let saved = checkpoint::save(&before).await?.ok_or_else(|| anyhow::anyhow!("no checkpoint written"))?;
    let save = t.elapsed();
    let mut after = before.clone();
    after.fleet = Default::default();
    let t = Instant::now();
    let report = analysis::analyse(&after).await?;
    let pass = t.elapsed();
    drop(after);
    std::fs::remove_dir_all(&dir)?;
    Ok(Restart { save, saved, pass, report })
}

/// A server's state on `site`'s database, its clock at `now`, with `rules`.
pub async fn state(site: &Site, rules: &Rules, now: jiff::Timestamp) -> anyhow::Result<AppState> {
    let store = site.open_db().await?;
    let clock = Arc::new(ShiftableClock::new());
    clock.set_now(now);
    let settings = Settings { efficiency: rules.clone(), ..Settings::default() };
    Ok(AppState::new(store, clock, settings))
}

/// The first day the analysis reads with `rules`, for an analysis on `today`.
pub fn window_start(rules: &Rules, today: Date) -> anyhow::Result<Date> {
    let longest =
        rules.low_utilization.window_days.max(rules.long_term_low.window_days).max(rules.zombie.window_days);
    Ok(today.checked_sub(i64::from(longest).days())?)
}

pub async fn measure(
    site: &Site,
    rules: &Rules,
    now: jiff::Timestamp,
    today: Date,
) -> anyhow::Result<Measured> {
    let state = state(site, rules, now).await?;
    let me = std::process::id();
    process::release_freed_memory();
    process::reset_peak(me)?;
    let memory_before = process::memory(me)?;
    let read_before = process::storage_read_bytes(me)?;
    let t = Instant::now();
    let first_report = analysis::analyse(&state).await?;
    let first = t.elapsed();
    let first_from_disk = process::storage_read_bytes(me)?.saturating_sub(read_before);
    an_hour_of_readings(&state, today, now + jiff::SignedDuration::from_hours(1)).await?;
    let clock = state.clock.clone();
    clock.set_now(now + jiff::SignedDuration::from_hours(1));
    let t = Instant::now();
    let second_report = analysis::analyse(&state).await?;
    let second = t.elapsed();
    agents_reported(&state, now + jiff::SignedDuration::from_hours(24)).await?;
    clock.set_now(now + jiff::SignedDuration::from_hours(24));
    let t = Instant::now();
    let third_report = analysis::analyse(&state).await?;
    let third = t.elapsed();
    let restart = restart(site, &state).await?;
    clock.set_now(now);
    let memory_peak = process::memory(me)?.peak;

    // The pass taken apart, on the same database.
    let (from, to) = (window_start(rules, today)?, today.yesterday()?);
    let t = Instant::now();
    let hosts = state.store.live_hosts().await?;
    let live_hosts = t.elapsed();
    let t = Instant::now();
    let mut answer: Answer = HashMap::new();
    let rows = state
        .store
        .each_fleet_daily_stats_changed(i64::MIN, from, to, |id, d| answer.entry(id).or_default().push(d))
        .await?;
    let read = t.elapsed();
    let t = Instant::now();
    let whole = state.store.fleet_daily_rollups(from, to).await?;
    let read_whole = t.elapsed();
    drop(whole);
    let t = Instant::now();
    let rest = answers::rest_days(today);
    let (mut with_verdict, mut rules_with_verdict) = (0usize, Duration::ZERO);
    for live in hosts.iter() {
        let days = answer.get(&live.resource.id).map(Vec::as_slice).unwrap_or_default();
        let one = Instant::now();
        let found = efficiency::usage_verdicts(rules, today, days, live.periodic_load.as_ref(), &rest);
        if !found.is_empty() {
            rules_with_verdict += one.elapsed();
            with_verdict += 1;
        }
        std::hint::black_box(found);
    }
    let rules_time = t.elapsed();
    state.store.close().await;
    let split = Split {
        live_hosts,
        rows,
        read,
        read_whole,
        rules: rules_time,
        rules_with_verdict,
        hosts_with_verdict: with_verdict,
    };
    Ok(Measured {
        first,
        first_report,
        first_from_disk,
        second,
        second_report,
        third,
        third_report,
        restart,
        memory_before,
        memory_peak,
        split,
        answer,
    })
}

/// What an hour brings the database: every host's rollup of `today`
/// (yesterday's figures again, as if the day repeated), one host in a
/// hundred reporting yesterday late, and every agent's report received
/// by `until` (its last report then a minute before it).
async fn an_hour_of_readings(state: &AppState, today: Date, until: jiff::Timestamp) -> anyhow::Result<()> {
    let yesterday = today.yesterday()?;
    let rows = state.store.fleet_daily_rollups(yesterday, yesterday).await?;
    agents_reported(state, until).await?;
    let mut tx = state.store.begin().await?;
    let (today_key, yesterday_key) = (today.to_string(), yesterday.to_string());
    for (n, (id, _, r)) in rows.iter().enumerate() {
        tx.put_rollup(Span::Day, *id, &today_key, r).await?;
        if n % 100 == 0 {
            tx.put_rollup(Span::Day, *id, &yesterday_key, r).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Every reporting agent's last report a minute before `until`.
async fn agents_reported(state: &AppState, until: jiff::Timestamp) -> anyhow::Result<()> {
    let mut agents = state.store.agents_all().await?;
    for agent in &mut agents {
        if agent.last_report_at.is_some() {
            agent.last_report_at = Some(yunzhi_domain::clock::At(until - jiff::SignedDuration::from_mins(1)));
        }
    }
    let mut tx = state.store.begin().await?;
    tx.update_agents(&agents).await?;
    tx.commit().await?;
    Ok(())
}

/// Reading and rules alone with `rules`' windows (e.g. the shipped 30 days).
pub async fn read_and_rules(
    site: &Site,
    rules: &Rules,
    now: jiff::Timestamp,
    today: Date,
) -> anyhow::Result<Reading> {
    let state = state(site, rules, now).await?;
    let hosts = state.store.live_hosts().await?;
    let t = Instant::now();
    let mut by_host: HashMap<i64, Vec<DailyStats>> = HashMap::new();
    let rows = state
        .store
        .each_fleet_daily_stats_changed(i64::MIN, window_start(rules, today)?, today.yesterday()?, |id, d| {
            by_host.entry(id).or_default().push(d)
        })
        .await?;
    let read = t.elapsed();
    let t = Instant::now();
    let mut verdicts = 0usize;
    let rest = answers::rest_days(today);
    for live in hosts.iter() {
        let days = by_host.get(&live.resource.id).map(Vec::as_slice).unwrap_or_default();
        verdicts += efficiency::usage_verdicts(rules, today, days, live.periodic_load.as_ref(), &rest).len();
    }
    let rules_time = t.elapsed();
    std::hint::black_box(verdicts);
    state.store.close().await;
    Ok(Reading { rows, read, rules: rules_time })
}
