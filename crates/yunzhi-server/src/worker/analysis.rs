//! The efficiency analysis (Art. 13): every live cloud host's daily
//! rollups and agent state against the rules, raising a finding for what
//! holds and resolving the open findings that no longer do. Runs hourly
//! (and on demand) as a job; a finding once dismissed by the office stays
//! dismissed.

use std::collections::{HashMap, HashSet};

use jiff::ToSpan;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::efficiency::{self, AgentState, DailyStats, Verdict};
use yunzhi_domain::finding::FindingKind;
use yunzhi_domain::resource::ResourceState;
use yunzhi_domain::role::Role;
use yunzhi_store::{AuditCtx, NewFinding, NewJob, Notice, ResourceRecord};

use crate::state::AppState;

/// The kinds this analysis raises, and so may resolve.
const KINDS: [FindingKind; 5] = [
    FindingKind::LowUtilization,
    FindingKind::Zombie,
    FindingKind::AgentMissing,
    FindingKind::AgentSilent,
    FindingKind::AgentTampered,
];

/// The fleet's daily statistics as the analysis last read them, kept
/// between passes so that a pass reads from the database only the days
/// written since the previous one: an hour's worth of changes instead of
/// the whole window of every host.
#[derive(Debug, Default)]
pub struct FleetDays {
    /// Real time (ms) the previous read started; `None` before the first.
    read_at: Option<i64>,
    /// The first day held.
    from: Option<jiff::civil::Date>,
    /// Every host's days, oldest first, today's unfinished one included.
    hosts: HashMap<i64, Vec<DailyStats>>,
}

/// How far before the previous read a read reaches back: a rollup stamped
/// before that read began but committed after it was read is still seen
/// (a writer's transaction lasts well under a second).
const OVERLAP_MS: i64 = 10 * 60 * 1000;

impl FleetDays {
    /// Reads what changed since the previous read, for days from `from`
    /// on, and forgets days before it. Days after the analysis' window are
    /// read too (today's, still filling): a day is read whenever it is
    /// written, so none is missed for having been too new at the time.
    pub async fn refresh(
        &mut self,
        store: &yunzhi_store::Store,
        from: jiff::civil::Date,
    ) -> anyhow::Result<usize> {
        if self.from.is_some_and(|held| from < held) {
            // The window moved back (the demo's clock): read it all again.
            *self = FleetDays::default();
        }
        let started = jiff::Timestamp::now().as_millisecond();
        let since = self.read_at.map_or(i64::MIN, |at| at - OVERLAP_MS);
        let changed = store.fleet_daily_changed(since, from, jiff::civil::Date::MAX).await?;
        let read = changed.len();
        for (id, day, r) in changed {
            let days = self.hosts.entry(id).or_default();
            let stats = r.daily_stats(day);
            match days.binary_search_by_key(&day, |d| d.day) {
                Ok(i) => days[i] = stats,
                Err(i) => days.insert(i, stats),
            }
        }
        for days in self.hosts.values_mut() {
            let gone = days.partition_point(|d| d.day < from);
            days.drain(..gone);
        }
        self.hosts.retain(|_, days| !days.is_empty());
        self.read_at = Some(started);
        self.from = Some(from);
        Ok(read)
    }

    /// A host's days up to `to`, oldest first.
    pub fn days(&self, host: i64, to: jiff::civil::Date) -> &[DailyStats] {
        let days = self.hosts.get(&host).map(Vec::as_slice).unwrap_or_default();
        &days[..days.partition_point(|d| d.day <= to)]
    }
}

/// Every host's days from a Prometheus-compatible store, by resource: a
/// series carries the resource's id in its resource label, or names the
/// host in its instance label (the agent's hostname, or the resource's name).
async fn prometheus_days(
    state: &AppState,
    source: &yunzhi_promsource::PromSource,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> anyhow::Result<HashMap<i64, Vec<DailyStats>>> {
    /// Beijing: the district's days end at its midnight.
    const DISTRICT_OFFSET_HOURS: i8 = 8;
    let by_name = crate::remote_write::hosts_by_name(state).await?;
    let mut out = HashMap::new();
    for (key, days) in source.daily_stats(from, to, DISTRICT_OFFSET_HOURS).await? {
        let resource = match &key {
            yunzhi_promsource::HostKey::Resource(id) => id.parse().ok(),
            yunzhi_promsource::HostKey::Instance(instance) => {
                let host = instance.rsplit_once(':').map_or(instance.as_str(), |(h, _)| h);
                by_name.get(host).copied()
            }
        };
        match resource {
            Some(id) => {
                out.insert(id, days);
            }
            None => tracing::debug!(%key, "a host in the Prometheus store that Yunzhi does not know"),
        }
    }
    Ok(out)
}

/// What one pass found.
#[derive(Debug, Default, serde::Serialize)]
pub struct AnalysisReport {
    pub hosts: usize,
    pub verdicts: usize,
    pub new_findings: usize,
    pub resolved: usize,
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
fn finding(host: &ResourceRecord, v: &Verdict, source: &str) -> NewFinding {
    let mut evidence = v.evidence.clone();
    if let Some(obj) = evidence.as_object_mut() {
        obj.insert("source".into(), serde_json::json!(source));
        obj.insert("summary_en".into(), serde_json::json!(v.summary_en));
        obj.insert("resource".into(), serde_json::json!({"id": host.id, "name": host.name}));
    }
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
    let hosts = state.store.live_hosts().await?;
    let source = crate::api::efficiency::source_in_effect(state).await?;
    let prometheus = source
        .prometheus()
        .map_err(|e| anyhow::anyhow!("the analysis' Prometheus source is misconfigured: {:?}", e.0))?;
    let mut fleet = state.fleet.lock().await;
    let from_prometheus = match prometheus {
        Some(p) => Some(prometheus_days(state, &p, from, to).await?),
        None => {
            fleet.refresh(&state.store, from).await?;
            None
        }
    };
    let source_name = if from_prometheus.is_some() { "prometheus" } else { "rollups" };
    let agents: HashMap<i64, yunzhi_store::AgentRecord> =
        state.store.agents_all().await?.into_iter().map(|a| (a.resource_id, a)).collect();
    let mut report = AnalysisReport { hosts: hosts.len(), ..AnalysisReport::default() };
    let mut holding: HashSet<String> = HashSet::new();
    let mut raised = Vec::new();
    for live in &hosts {
        let (host, periodic) = (&live.resource, &live.periodic_load);
        let days = match &from_prometheus {
            Some(hosts) => hosts.get(&host.id).map(Vec::as_slice).unwrap_or_default(),
            None => fleet.days(host.id, to),
        };
        let mut verdicts = efficiency::usage_verdicts(rules, today, days, periodic.as_ref());
        let agent = agents.get(&host.id);
        let agent_state = AgentState {
            enrolled: agent.is_some(),
            last_report_at: agent.and_then(|a| a.last_report_at).map(|a| a.0),
            handed_over_at: host.handed_over_at.map(|a| a.0),
            running_on_platform: host.state == ResourceState::Active,
            binary_sm3: agent.and_then(|a| a.binary_sm3.clone()),
            sequence_reset: agent.is_some_and(|a| a.sequence_resets > 0),
            clock_skew_secs: agent.and_then(|a| a.last_clock_skew_ms).map(|ms| ms / 1000),
        };
        verdicts.extend(efficiency::agent_verdicts(rules, now, &agent_state, &state.settings.agent_digests));
        for v in &verdicts {
            let f = finding(host, v, source_name);
            holding.insert(f.dedup_key.clone());
            raised.push(f);
        }
    }
    report.verdicts = raised.len();
    let ctx = AuditCtx::system("efficiency-analysis", now);
    let mut tx = state.store.begin().await?;
    report.new_findings = tx.raise_findings(&ctx, &raised).await?;
    for kind in KINDS {
        for open in tx.open_findings(kind).await? {
            let key = open.resource_id.map(|r| format!("{}:{r}", kind.code())).unwrap_or_default();
            if !holding.contains(&key) {
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
    Ok(report)
}
