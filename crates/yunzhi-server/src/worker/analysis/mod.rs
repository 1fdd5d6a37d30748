//! The efficiency analysis (Art. 13): every live cloud host's daily
//! rollups and agent state against the rules, raising a finding for what
//! holds and resolving the open findings that no longer do. Runs hourly
//! (and on demand) as a job; a finding once dismissed by the office stays
//! dismissed.

use std::collections::{HashMap, HashSet};

use jiff::ToSpan;
use jiff::civil::Date;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::efficiency::{self, AgentState, DailyStats, RestDays, Verdict};
use yunzhi_domain::finding::FindingKind;
use yunzhi_domain::resource::ResourceState;
use yunzhi_domain::role::Role;
use yunzhi_store::{AuditCtx, LiveHost, NewFinding, NewJob, Notice, ResourceRecord};

use crate::state::AppState;

pub mod checkpoint;

/// The kinds this analysis raises, and so may resolve.
const KINDS: [FindingKind; 5] = [
    FindingKind::LowUtilization,
    FindingKind::Zombie,
    FindingKind::AgentMissing,
    FindingKind::AgentSilent,
    FindingKind::AgentTampered,
];

/// The fleet's daily statistics as the analysis last read them, and what
/// it concluded from them, kept between passes. A pass then reads from the
/// database only the days written since the previous one (in the hourly
/// steady state: late reports; once a day: the day just ended), judges
/// again only the hosts whose days, rules or records changed, and rewrites
/// only the findings whose evidence changed.
#[derive(Debug, Default)]
pub struct FleetDays {
    /// Real time (ms) the previous read started; `None` before the first.
    read_at: Option<i64>,
    /// The first and last day held.
    from: Option<Date>,
    to: Option<Date>,
    /// Every host's days in `[from, to]`, oldest first.
    hosts: HashMap<i64, Vec<DailyStats>>,
    /// Each host's usage findings as last judged, and from what.
    judged: HashMap<i64, Judged>,
    /// What the last committed pass wrote: a digest of each finding's title
    /// and evidence, by dedup key.
    written: HashMap<String, u64>,
    /// Whether the checkpoint file holds this window (see [`checkpoint`]).
    saved: bool,
}

/// A host's usage findings and the digest of everything they were judged
/// from except its days (whose change forgets the entry).
#[derive(Debug)]
struct Judged {
    today: Date,
    inputs: u64,
    findings: Vec<(NewFinding, u64)>,
}

/// How far before the previous read a read reaches back: a rollup stamped
/// before that read began but committed after it was read is still seen
/// (a writer's transaction lasts well under a second; a slower one is
/// logged).
const OVERLAP_MS: i64 = 10 * 60 * 1000;

impl FleetDays {
    /// Brings the days in `[from, to]` up to date: the days already held,
    /// as far as they changed since the previous read; the days that
    /// entered the window since (the day just ended), whole; the days that
    /// left it, forgotten. Returns how many daily rows were read.
    pub async fn refresh(
        &mut self,
        store: &yunzhi_store::Store,
        from: Date,
        to: Date,
    ) -> anyhow::Result<usize> {
        if self.from.is_some_and(|held| from < held) || self.to.is_some_and(|held| to < held) {
            // The window moved back (the demo's clock): read it all again.
            *self = FleetDays::default();
        }
        let started = jiff::Timestamp::now().as_millisecond();
        let mut read = 0;
        match (self.read_at, self.to) {
            (Some(at), Some(held_to)) => {
                let held_from = from.max(self.from.unwrap_or(from));
                if held_from <= held_to {
                    read += store
                        .each_fleet_daily_stats_changed(
                            at - OVERLAP_MS,
                            held_from,
                            held_to.min(to),
                            |id, stats| self.put(id, stats),
                        )
                        .await?;
                }
                if to > held_to {
                    let first_new = held_to.tomorrow()?.max(from);
                    read += store
                        .each_fleet_daily_stats_changed(i64::MIN, first_new, to, |id, stats| {
                            self.put(id, stats)
                        })
                        .await?;
                }
            }
            _ => {
                read += store
                    .each_fleet_daily_stats_changed(i64::MIN, from, to, |id, stats| self.put(id, stats))
                    .await?
            }
        }
        let mut trimmed = Vec::new();
        for (id, days) in self.hosts.iter_mut() {
            let gone = days.partition_point(|d| d.day < from);
            if gone > 0 {
                days.drain(..gone);
                trimmed.push(*id);
            }
        }
        if self.from != Some(from) || self.to != Some(to) {
            // A new window (once a day): worth a new checkpoint. Within the
            // same window an older checkpoint still serves, since a restart
            // reads again what changed since it was read (in the hourly
            // steady state, a day's late reports), so writing one every
            // hour would cost a fleet's worth of disk writes for nothing.
            self.saved = false;
        }
        for id in trimmed {
            // Its window moved: judged again on the next pass.
            self.judged.remove(&id);
            if self.hosts.get(&id).is_some_and(Vec::is_empty) {
                self.hosts.remove(&id);
            }
        }
        self.read_at = Some(started);
        self.from = Some(from);
        self.to = Some(to);
        Ok(read)
    }

    fn put(&mut self, id: i64, stats: DailyStats) {
        let days = self.hosts.entry(id).or_default();
        match days.binary_search_by_key(&stats.day, |d| d.day) {
            Ok(i) => days[i] = stats,
            Err(i) => days.insert(i, stats),
        }
        self.judged.remove(&id);
    }

    /// A host's days up to `to`, oldest first.
    pub fn days(&self, host: i64, to: Date) -> &[DailyStats] {
        let days = self.hosts.get(&host).map(Vec::as_slice).unwrap_or_default();
        &days[..days.partition_point(|d| d.day <= to)]
    }

    /// Whether `host`'s usage findings are judged for `today` from its
    /// days as held and `inputs` (the digest of the rules, its system's
    /// periodic load and its own record).
    fn is_judged(&self, host: i64, today: Date, inputs: u64) -> bool {
        self.judged.get(&host).is_some_and(|j| j.today == today && j.inputs == inputs)
    }

    /// Judges each of `pending` (a host and its inputs' digest) from its
    /// days up to `to`, on as many threads as the machine has cores when
    /// there are many (the first pass after a start, and the first of each
    /// day, judge every host).
    fn judge(
        &mut self,
        pending: &[(&LiveHost, u64)],
        today: Date,
        to: Date,
        judge: impl Fn(&LiveHost, &[DailyStats]) -> Vec<Verdict> + Sync,
    ) {
        /// Below this, starting threads costs more than it saves.
        const PARALLEL_FROM: usize = 500;
        let one = |&(live, inputs): &(&LiveHost, u64)| {
            let findings = judge(live, self.days(live.resource.id, to))
                .into_iter()
                .map(|v| digested(finding(&live.resource, v, ROLLUPS)))
                .collect();
            (live.resource.id, Judged { today, inputs, findings })
        };
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let judged: Vec<(i64, Judged)> = if threads < 2 || pending.len() < PARALLEL_FROM {
            pending.iter().map(one).collect()
        } else {
            std::thread::scope(|s| {
                let parts: Vec<_> = pending
                    .chunks(pending.len().div_ceil(threads))
                    .map(|part| s.spawn(|| part.iter().map(one).collect::<Vec<_>>()))
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|p| p.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                    .collect()
            })
        };
        self.judged.extend(judged);
    }

    fn judged(&self, host: i64) -> &[(NewFinding, u64)] {
        self.judged.get(&host).map(|j| j.findings.as_slice()).unwrap_or_default()
    }
}

/// The sources a finding's evidence names (`evidence.source`): the
/// rollups and the agents' records Yunzhi keeps, or the Prometheus store.
const ROLLUPS: &str = "rollups";
const AGENTS: &str = "agents";
const PROMETHEUS: &str = "prometheus";

/// A digest of anything hashable, to tell whether it changed.
fn digest(parts: &impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(parts)
}

/// A finding with the digest of its title and evidence.
fn digested(f: NewFinding) -> (NewFinding, u64) {
    let d = digest(&(&f.title, f.evidence.get()));
    (f, d)
}

/// Every host's days from a Prometheus-compatible store, by resource: a
/// series carries the resource's id in its resource label, or names the
/// host in its instance label (the agent's hostname, or the resource's name).
async fn prometheus_days(
    source: &yunzhi_promsource::PromSource,
    hosts: &HostsByKey,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> anyhow::Result<HashMap<i64, Vec<DailyStats>>> {
    /// Beijing: the district's days end at its midnight.
    const DISTRICT_OFFSET_HOURS: i8 = 8;
    let days = source.daily_stats(from, to, DISTRICT_OFFSET_HOURS).await?;
    Ok(days.into_iter().filter_map(|(key, days)| Some((hosts.resource(&key)?, days))).collect())
}

/// When the Prometheus store last scraped each host Yunzhi knows, over the
/// window the analysis reads: the agent rules' evidence at a site whose
/// hosts run node_exporter instead of (or beside) Yunzhi's agent.
/// When the latest analysis pass judged the fleet (epoch ms): a finding it
/// did not see again no longer holds (`warning::rule_still_holds`).
const LATEST_PASS: &str = "analysis_latest_pass_at";

/// The time of the latest analysis pass, if any ran.
pub async fn latest_pass(state: &AppState) -> anyhow::Result<Option<jiff::Timestamp>> {
    let ms = state.store.setting(LATEST_PASS).await?.and_then(|v| v.parse::<i64>().ok());
    Ok(ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()))
}

async fn prometheus_last_seen(
    source: &yunzhi_promsource::PromSource,
    hosts: &HostsByKey,
    now: jiff::Timestamp,
    lookback_days: u32,
) -> anyhow::Result<HashMap<i64, jiff::Timestamp>> {
    let seen = source.last_seen(now.as_second(), lookback_days.saturating_mul(86_400)).await?;
    Ok(seen
        .into_iter()
        .filter_map(|(key, at)| Some((hosts.resource(&key)?, jiff::Timestamp::from_second(at).ok()?)))
        .collect())
}

/// Yunzhi's hosts by the names the Prometheus store may give them: the
/// resource id where the site relabels it onto the series, else the
/// scraped instance's host name.
struct HostsByKey(HashMap<String, i64>);

impl HostsByKey {
    async fn read(state: &AppState) -> anyhow::Result<HostsByKey> {
        Ok(HostsByKey(crate::remote_write::hosts_by_name(state).await?))
    }

    fn resource(&self, key: &yunzhi_promsource::HostKey) -> Option<i64> {
        let found = match key {
            yunzhi_promsource::HostKey::Resource(id) => id.parse().ok(),
            yunzhi_promsource::HostKey::Instance(instance) => {
                let host = instance.rsplit_once(':').map_or(instance.as_str(), |(h, _)| h);
                self.0.get(host).copied()
            }
        };
        if found.is_none() {
            tracing::debug!(%key, "a host in the Prometheus store that Yunzhi does not know");
        }
        found
    }
}

/// What one pass found.
#[derive(Debug, Default, serde::Serialize)]
pub struct AnalysisReport {
    pub hosts: usize,
    /// Daily rollup rows read from the database (none from Prometheus).
    pub rows_read: usize,
    /// Daily rows taken from the checkpoint file instead (a restart's
    /// first pass; see [`checkpoint`]).
    pub restored_days: usize,
    pub verdicts: usize,
    pub new_findings: usize,
    pub resolved: usize,
    /// Where the pass's time went, in milliseconds, for the log and the
    /// benchmark: reading the live hosts, the agents, the days; judging;
    /// writing the findings (raising, marking seen, resolving).
    pub ms: PassTimes,
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct PassTimes {
    pub hosts: f64,
    pub agents: f64,
    pub days: f64,
    pub judge: f64,
    pub write: f64,
}

/// Milliseconds since `t`, restarting it.
fn lap(t: &mut std::time::Instant) -> f64 {
    let ms = t.elapsed().as_secs_f64() * 1e3;
    *t = std::time::Instant::now();
    ms
}

/// Queues an analysis for the current hour: one per hour, however many servers tick.
pub async fn enqueue_analysis(
    state: &AppState,
    dedup: Option<String>,
) -> anyhow::Result<yunzhi_store::JobRecord> {
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let job = tx
        .enqueue_job(
            &NewJob {
                kind: "analyze".into(),
                dedup_key: dedup,
                payload: serde_json::json!({}),
                run_at: now,
                max_attempts: 3,
            },
            now,
        )
        .await?;
    tx.commit().await?;
    state.worker.notify_one();
    Ok(job)
}

/// The finding a verdict about `host` becomes; `source` says where its
/// figures were read (`rollups` or `prometheus`).
fn finding(host: &ResourceRecord, v: Verdict, source: &str) -> NewFinding {
    let mut evidence = v.evidence;
    if let Some(obj) = evidence.as_object_mut() {
        obj.insert("source".into(), serde_json::json!(source));
        obj.insert("summary_en".into(), serde_json::json!(v.summary_en));
        obj.insert("resource".into(), serde_json::json!({"id": host.id, "name": host.name}));
    }
    let evidence = NewFinding::evidence(&evidence);
    NewFinding {
        kind: v.kind,
        unit: Some(host.unit_id),
        system: Some(host.system_id),
        resource: Some(host.id),
        platform: host.platform_id,
        title: format!("{}：{}", host.name, v.summary_zh),
        evidence,
        dedup_key: format!("{}:{}", v.kind.code(), host.id),
    }
}

pub(super) async fn run(state: &AppState) -> anyhow::Result<()> {
    let report = analyse(state).await?;
    tracing::info!(?report, "efficiency analysis done");
    // The checkpoint only spares a restart its full read: failing to write
    // one is worth a warning, not the job.
    match checkpoint::save(state).await {
        Ok(Some(saved)) => tracing::debug!(?saved, "analysis checkpoint written"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "the analysis checkpoint could not be written"),
    }
    Ok(())
}

/// One pass over the fleet.
pub async fn analyse(state: &AppState) -> anyhow::Result<AnalysisReport> {
    let rules = &crate::api::efficiency::rules_in_effect(state).await?;
    let now = state.now();
    let today = state.clock.today();
    let longest =
        rules.low_utilization.window_days.max(rules.long_term_low.window_days).max(rules.zombie.window_days);
    let from = today.checked_sub(i64::from(longest).days())?;
    let to = today.yesterday()?;
    // The offices' closed days, which the short-term rule does not count.
    let rest = &RestDays::from_calendar(&state.store.calendar().await?, to);
    let mut ms = PassTimes::default();
    let mut t = std::time::Instant::now();
    let hosts = state.store.live_hosts().await?;
    ms.hosts = lap(&mut t);
    let source = crate::api::efficiency::source_in_effect(state).await?;
    let prometheus = source
        .prometheus()
        .map_err(|e| anyhow::anyhow!("the analysis' Prometheus source is misconfigured: {:?}", e.0))?;
    let mut fleet = state.fleet.lock().await;
    let agents: HashMap<i64, yunzhi_store::AgentSignals> =
        state.store.agent_signals().await?.into_iter().map(|a| (a.resource_id, a)).collect();
    ms.agents = lap(&mut t);
    // Usage findings: judged here from Prometheus, or kept judged in `fleet`.
    let mut local: Vec<(NewFinding, u64)> = Vec::new();
    let mut rows_read = 0;
    let mut restored_days = 0;
    // When the Prometheus store last saw each host, where it is the source.
    let mut scraped: HashMap<i64, jiff::Timestamp> = HashMap::new();
    match &prometheus {
        Some(p) => {
            let by_key = HostsByKey::read(state).await?;
            let (days, seen) = tokio::try_join!(
                prometheus_days(p, &by_key, from, to),
                prometheus_last_seen(p, &by_key, now, longest),
            )?;
            scraped = seen;
            ms.days = lap(&mut t);
            for live in hosts.iter() {
                let host_days = days.get(&live.resource.id).map(Vec::as_slice).unwrap_or_default();
                for v in
                    efficiency::usage_verdicts(rules, today, host_days, live.periodic_load.as_ref(), rest)
                {
                    local.push(digested(finding(&live.resource, v, PROMETHEUS)));
                }
            }
        }
        None => {
            if fleet.read_at.is_none()
                && let Some(kept) = checkpoint::restore(state).await?
            {
                restored_days = kept.hosts.values().map(Vec::len).sum();
                *fleet = kept;
            }
            rows_read = fleet.refresh(&state.store, from, to).await?;
            ms.days = lap(&mut t);
            let rules_digest = digest(&(serde_json::to_string(rules)?, rest));
            let mut pending = Vec::new();
            for live in hosts.iter() {
                let (host, periodic) = (&live.resource, live.periodic_load.as_ref());
                let inputs = digest(&(
                    rules_digest,
                    periodic.map(serde_json::to_string).transpose()?,
                    &host.name,
                    host.unit_id.0,
                    host.system_id.0,
                    host.platform_id.map(|p| p.0),
                ));
                if !fleet.is_judged(host.id, today, inputs) {
                    pending.push((live, inputs));
                }
            }
            fleet.judge(&pending, today, to, |live, days| {
                efficiency::usage_verdicts(rules, today, days, live.periodic_load.as_ref(), rest)
            });
        }
    }
    // Agent findings depend on the time: judged every pass (few, small).
    // A host is monitored if Yunzhi's agent reports or, where Prometheus is
    // the source, node_exporter is scraped; the later of the two counts.
    for live in hosts.iter() {
        let host = &live.resource;
        let agent = agents.get(&host.id);
        let reported = agent.and_then(|a| a.last_report_at).map(|a| a.0);
        let scraped = scraped.get(&host.id).copied();
        let by_scrape = scraped.is_some_and(|s| reported.is_none_or(|r| s > r));
        let agent_state = AgentState {
            enrolled: agent.is_some() || scraped.is_some(),
            last_report_at: reported.max(scraped),
            handed_over_at: host.handed_over_at.map(|a| a.0),
            running_on_platform: host.state == ResourceState::Active,
            binary_sm3: agent.and_then(|a| a.binary_sm3.clone()),
            sequence_reset: agent.is_some_and(|a| a.sequence_resets > 0),
            clock_skew_secs: agent.and_then(|a| a.last_clock_skew_ms).map(|ms| ms / 1000),
        };
        let agent_source = if by_scrape { PROMETHEUS } else { AGENTS };
        for v in efficiency::agent_verdicts(rules, now, &agent_state, &state.settings.agent_digests) {
            local.push(digested(finding(host, v, agent_source)));
        }
    }
    let fleet_findings = if prometheus.is_some() {
        Vec::new()
    } else {
        hosts.iter().flat_map(|live| fleet.judged(live.resource.id)).collect::<Vec<_>>()
    };
    let all: Vec<&(NewFinding, u64)> = local.iter().chain(fleet_findings).collect();
    let raised: Vec<&NewFinding> = all.iter().map(|(f, _)| f).collect();
    let unchanged: HashSet<&str> = all
        .iter()
        .filter(|(f, d)| fleet.written.get(&f.dedup_key) == Some(d))
        .map(|(f, _)| f.dedup_key.as_str())
        .collect();
    let holding: HashSet<&str> = raised.iter().map(|f| f.dedup_key.as_str()).collect();
    ms.judge = lap(&mut t);
    let mut report = AnalysisReport {
        hosts: hosts.len(),
        rows_read,
        restored_days,
        verdicts: raised.len(),
        ..AnalysisReport::default()
    };
    let ctx = AuditCtx::system("efficiency-analysis", now);
    let mut tx = state.store.begin().await?;
    report.new_findings = tx.raise_findings(&ctx, &raised, &unchanged).await?;
    tx.set_setting(LATEST_PASS, &now.as_millisecond().to_string()).await?;
    for kind in KINDS {
        for (id, key) in tx.open_finding_keys(kind).await? {
            if holding.contains(key.as_str()) {
                continue;
            }
            if let Some(open) = tx.finding_for_update(id).await? {
                tx.resolve_finding(&ctx, &open, "the rule no longer holds").await?;
                report.resolved += 1;
            }
        }
    }
    if report.new_findings > 0 {
        let notice = Notice {
            kind: "finding.raised",
            title: format!("能效分析发现 {} 项新问题，待审核", report.new_findings),
            body: format!(
                "The efficiency analysis raised {} new findings (idle, zombie or monitoring agent); the office \
                 reviews them (Art. 14).",
                report.new_findings
            ),
            link: Some("/api/v1/findings?state=open".into()),
            dedup_key: None,
        };
        for role in [Role::Office, Role::CloudAdmin] {
            tx.notify_role(role, None, &notice, now.as_millisecond()).await?;
        }
    }
    tx.commit().await?;
    let written = all.iter().map(|(f, d)| (f.dedup_key.clone(), *d)).collect();
    fleet.written = written;
    ms.write = lap(&mut t);
    report.ms = ms;
    Ok(report)
}
