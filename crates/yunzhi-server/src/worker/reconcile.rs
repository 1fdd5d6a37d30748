//! Reconciliation: each platform's inventory against Yunzhi's records.
//!
//! * a resource on the platform that Yunzhi did not make (or reclaimed)
//!   becomes an `orphan_resource` finding for the Big Data Center;
//! * a resource Yunzhi believes live that the platform lacks is flagged
//!   (`other`, `evidence.problem = "missing_on_platform"`);
//! * a host stopped or started behind Yunzhi's back has its state
//!   corrected, with an audit record;
//! * findings whose subject is gone are resolved.
//!
//! Jobs run beside the pass, so it guards against reading a moment
//! between a platform's change and its commit: it reads Yunzhi's records
//! before the platform's list and corrects or flags a resource only if its
//! record did not change meanwhile (the version check of every update).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use yunzhi_domain::finding::FindingKind;
use yunzhi_domain::ids::PlatformId;
use yunzhi_domain::platform::PlatformState;
use yunzhi_domain::resource::ResourceState;
use yunzhi_domain::role::Role;
use yunzhi_drivers::{Remote, RemoteState};
use yunzhi_store::{AuditCtx, NewFinding, NewJob, Notice, StoreError};

use crate::state::AppState;

/// What one pass found, as recorded in its audit event.
#[derive(Debug, Default, serde::Serialize)]
struct PassReport {
    remote: usize,
    known: usize,
    orphans: usize,
    missing: usize,
    corrected: usize,
    resolved: usize,
}

/// Queues one reconciliation per enabled or draining platform for the
/// current period of `every`: a pass per platform per period, however many
/// servers tick.
pub async fn enqueue_reconciliations(
    state: &AppState,
    now: Timestamp,
    every: jiff::SignedDuration,
) -> anyhow::Result<u64> {
    let period = now.as_millisecond() / every.as_millis().max(1) as i64;
    let platforms = state.store.platforms_all().await?;
    let mut tx = state.store.begin().await?;
    let mut queued = 0;
    for p in platforms.iter().filter(|p| p.state != PlatformState::Disabled) {
        let job = NewJob {
            kind: "reconcile".into(),
            dedup_key: Some(format!("reconcile:{}:{period}", p.id)),
            payload: serde_json::json!({"platform_id": p.id.0}),
            run_at: now,
            max_attempts: 3,
        };
        if tx.enqueue_job(&job, now).await?.attempts == 0 {
            queued += 1;
        }
    }
    tx.commit().await?;
    if queued > 0 {
        state.worker.notify_one();
    }
    Ok(queued)
}

pub(super) async fn run(state: &AppState, platform_id: PlatformId) -> anyhow::Result<()> {
    let platform = state
        .store
        .platform(&crate::seed::internal_platform_reader(), platform_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("platform {platform_id} is gone"))?;
    let driver = state.driver(platform_id).await?;
    // Ours first, then theirs: see the module's comment.
    let ours = state.store.begin().await?.live_resources_on(platform_id).await?;
    let remotes = driver.list().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // The platform's own view of its capacity, where it tells (an OpenStack
    // account without Placement access does not): shown beside the
    // configured capacity, never used for placement by itself.
    let capacity = match driver.capacity().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::info!(platform = %platform_id, error = %e, "the platform did not report its capacity");
            None
        }
    };

    let ctx = AuditCtx::system("reconciliation", state.now());
    let at = ctx.at.as_millisecond();
    let mut report = PassReport { remote: remotes.len(), ..PassReport::default() };
    let ours_by_id: HashMap<i64, &yunzhi_store::ResourceRecord> = ours.iter().map(|r| (r.id, r)).collect();
    let mut seen_orphans: HashSet<String> = HashSet::new();
    let mut seen_ids: HashSet<i64> = HashSet::new();
    let mut new_findings = 0;
    let mut tx = state.store.begin().await?;
    for remote in &remotes {
        let id = super::resource_of_key(&remote.key);
        if let Some(res) = id.and_then(|id| ours_by_id.get(&id)) {
            seen_ids.insert(res.id);
            report.known += 1;
            if res.remote_id.is_none() {
                tx.set_remote_id(res.id, &remote.remote_id).await?;
            }
            let actual = match remote.state {
                RemoteState::Active => ResourceState::Active,
                RemoteState::Stopped => ResourceState::Suspended,
            };
            let correctable = matches!(res.state, ResourceState::Active | ResourceState::Suspended);
            if correctable && res.state != actual {
                match tx.set_resource_state(&ctx, res, actual, "resource.reconcile").await {
                    Ok(_) => report.corrected += 1,
                    Err(StoreError::Conflict(_)) => {} // a job changed it meanwhile: it knows best
                    Err(e) => return Err(e.into()),
                }
            }
            continue;
        }
        let record = match id {
            Some(id) => tx.resource(id).await?,
            None => None,
        };
        // Made after our read by a job still running? Then it is ours.
        if let Some(r) = &record
            && r.platform_id == Some(platform_id)
            && r.state.is_live()
        {
            seen_ids.insert(r.id);
            continue;
        }
        seen_orphans.insert(remote.remote_id.clone());
        let finding = orphan(&platform.name, platform_id, remote, record.as_ref());
        let (_, news) = tx.raise_finding(&ctx, &finding).await?;
        report.orphans += 1;
        new_findings += u64::from(news);
    }
    for res in ours.iter().filter(|r| !seen_ids.contains(&r.id)) {
        // Still being made: the provisioning job will make it.
        if res.state == ResourceState::Provisioning {
            continue;
        }
        // Changed since our read (reclaimed, say): not for this pass to judge.
        let Some(now) = tx.resource(res.id).await? else { continue };
        if now.version != res.version {
            continue;
        }
        let finding = NewFinding {
            kind: FindingKind::Other,
            unit: Some(res.unit_id),
            system: Some(res.system_id),
            resource: Some(res.id),
            platform: Some(platform_id),
            title: format!("资源 {} 在云平台 {} 上不存在", res.name, platform.name),
            evidence: NewFinding::evidence(&serde_json::json!({
                "problem": "missing_on_platform",
                "resource_id": res.id,
                "key": super::resource_key(res.id),
                "remote_id": res.remote_id,
                "recorded_state": res.state,
                "platform_id": platform_id,
                "platform": platform.name,
                "checked_at": ctx.at.to_string(),
            })),
            dedup_key: format!("missing:{}", res.id),
        };
        let (_, news) = tx.raise_finding(&ctx, &finding).await?;
        report.missing += 1;
        new_findings += u64::from(news);
    }
    // What was found before and is gone now is resolved.
    for f in tx.open_findings_on(FindingKind::OrphanResource, platform_id).await? {
        if !f.evidence["remote_id"].as_str().is_some_and(|id| seen_orphans.contains(id)) {
            tx.resolve_finding(&ctx, &f, "no longer on the platform").await?;
            report.resolved += 1;
        }
    }
    for f in tx.open_findings_on(FindingKind::Other, platform_id).await? {
        let back = f.resource_id.is_some_and(|id| seen_ids.contains(&id));
        let gone = match f.resource_id {
            Some(id) => tx.resource(id).await?.is_none_or(|r| !r.state.is_live()),
            None => false,
        };
        if f.evidence["problem"] == "missing_on_platform" && (back || gone) {
            let why = if back { "the platform has it again" } else { "the resource was reclaimed" };
            tx.resolve_finding(&ctx, &f, why).await?;
            report.resolved += 1;
        }
    }
    if let Some(c) = capacity {
        let mut reported = serde_json::to_value(c)?;
        reported["at"] = serde_json::json!(ctx.at.to_string());
        tx.set_platform_reported(platform_id, &reported).await?;
    }
    tx.audit_event(
        &ctx,
        "platform.reconcile",
        "platform",
        Some(platform_id.to_string()),
        Some(serde_json::to_value(&report)?),
    )
    .await?;
    if new_findings > 0 {
        let notice = Notice {
            kind: "finding.raised",
            title: format!("云平台 {} 对账发现 {new_findings} 项新问题", platform.name),
            body: format!(
                "The inventory pass of platform {} found {new_findings} new findings: {} resources unknown to \
                 Yunzhi, {} recorded resources missing on the platform.",
                platform.name, report.orphans, report.missing
            ),
            link: Some(format!("/api/v1/findings?platform_id={platform_id}&state=open")),
            dedup_key: None,
        };
        // The office reviews findings (Art. 14); the Big Data Center runs the platforms.
        for role in [Role::Office, Role::CloudAdmin] {
            tx.notify_role(role, None, &notice, at).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(platform = %platform_id, ?report, "reconciled");
    Ok(())
}

/// The finding for `remote`, which Yunzhi did not make, or made and
/// reclaimed (`record`): then the unit it was reclaimed from is told too.
fn orphan(
    platform: &str,
    platform_id: PlatformId,
    remote: &Remote,
    record: Option<&yunzhi_store::ResourceRecord>,
) -> NewFinding {
    NewFinding {
        kind: FindingKind::OrphanResource,
        unit: record.map(|r| r.unit_id),
        system: record.map(|r| r.system_id),
        resource: record.map(|r| r.id),
        platform: Some(platform_id),
        title: format!(
            "云平台 {platform} 上的资源 {} 未在云管平台登记",
            if remote.name.is_empty() { &remote.remote_id } else { &remote.name }
        ),
        evidence: NewFinding::evidence(&serde_json::json!({
            "remote_id": remote.remote_id,
            "name": remote.name,
            "key": remote.key,
            "kind": remote.kind,
            "state": remote.state,
            "vcpu": remote.vcpu,
            "memory_gib": remote.memory_gib,
            "storage_gib": remote.storage_gib,
            "platform_id": platform_id,
            "platform": platform,
            "recorded_state": record.map(|r| r.state),
        })),
        dedup_key: format!("orphan:{platform_id}:{}", remote.remote_id),
    }
}
