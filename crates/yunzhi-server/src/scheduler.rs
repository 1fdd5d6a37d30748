//! The scheduler: what happens because time passes.
//!
//! * requests whose deadline is near or past are announced to the role
//!   whose turn it is (and, once overdue, to the cloud resource admin);
//! * temporary resources (Art. 12) get notices four and two weeks before
//!   expiry, are suspended at expiry and reclaimed after the grace period
//!   (jobs that stop and delete them on their platforms);
//! * each platform's inventory is reconciled with Yunzhi's, every period;
//! * once a day, hourly and daily rollups past their window are deleted.
//!
//! Every tick is idempotent: notices carry a dedup key (one per recipient),
//! state changes are version-checked. So a tick may run twice, or on two
//! servers at once, without telling anyone twice or doing anything twice.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::ToSpan;
use tokio::sync::watch;
use yunzhi_domain::access::Scope;
use yunzhi_domain::calendar::Calendar;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::request::{self, RequestState, Sla};
use yunzhi_domain::resource::ResourceState;
use yunzhi_domain::role::Role;
use yunzhi_store::{Notice, RequestFilter, RequestRecord};

use crate::api::requests::kind_zh;
use crate::state::AppState;
use crate::worker::{ResourceAction, enqueue_action};

const TICK: Duration = Duration::from_secs(60);

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TickReport {
    pub notices: u64,
    /// Suspensions of expired temporary resources queued.
    pub suspended: u64,
    /// Reclaims of temporary resources past their grace queued.
    pub reclaimed: u64,
    /// Platform reconciliations queued.
    pub reconciliations: u64,
}

/// How long finished jobs stay listed.
const JOB_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

/// How long a server stays the scheduler's leader without renewing.
const LEASE_MS: i64 = 150_000;

pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let me = format!("{}-{}", std::process::id(), state.now().as_millisecond());
    tokio::spawn(async move {
        loop {
            match lead(&state, &me).await {
                Ok(true) => {
                    if let Err(e) = tick(&state).await {
                        tracing::error!(error = %e, "the scheduler's tick failed; it runs again next minute");
                    }
                }
                Ok(false) => tracing::debug!("another server runs the scheduler"),
                Err(e) => tracing::error!(error = %e, "the scheduler could not reach the store"),
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Whether this server leads the scheduler for the next while: servers
/// sharing one database take turns through a lease, so one ticks at a time.
async fn lead(state: &AppState, me: &str) -> anyhow::Result<bool> {
    let mut tx = state.store.begin().await?;
    let leader = tx.acquire_lease("scheduler", me, state.now().as_millisecond(), LEASE_MS).await?;
    tx.commit().await?;
    Ok(leader)
}

/// Runs everything that is due now.
pub async fn tick(state: &AppState) -> anyhow::Result<TickReport> {
    let calendar = state.store.calendar().await?;
    let mut report = TickReport::default();
    report.notices += deadlines(state, &calendar).await?;
    expiries(state, &mut report).await?;
    report.reconciliations =
        crate::worker::enqueue_reconciliations(state, state.now(), state.settings.reconcile_every).await?;
    report.notices += crate::api::warnings::check_deadlines(state).await?;
    if !crate::demo_agents::history_pending(state).await? {
        let hour = state.now().as_millisecond() / 3_600_000;
        crate::worker::analysis::enqueue_analysis(state, Some(format!("analyze:{hour}"))).await?;
    }
    let mut tx = state.store.begin().await?;
    tx.prune_jobs(state.now() - JOB_RETENTION).await?;
    tx.commit().await?;
    prune_rollups(state).await?;
    Ok(report)
}

/// The district day the rollups were last pruned on.
const ROLLUPS_PRUNED: &str = "rollups_pruned_on";

/// Deletes the rollups past the retention window, once a district day.
async fn prune_rollups(state: &AppState) -> anyhow::Result<()> {
    let today = state.clock.today();
    if state.store.setting(ROLLUPS_PRUNED).await?.is_some_and(|d| d == today.to_string()) {
        return Ok(());
    }
    let (first_day, first_hour) =
        yunzhi_domain::monitoring::rollup_window_start(today, state.settings.rollup_retention_days);
    let mut tx = state.store.begin().await?;
    let (hours, days) = tx.prune_rollups(first_hour.as_millisecond(), first_day).await?;
    tx.set_setting(ROLLUPS_PRUNED, &today.to_string()).await?;
    tx.commit().await?;
    if hours + days > 0 {
        tracing::info!(hours, days, kept_from = %first_day, "rollups past their window deleted");
    }
    Ok(())
}

async fn open_requests(state: &AppState, s: RequestState) -> anyhow::Result<Vec<RequestRecord>> {
    let filter = RequestFilter { state: Some(s), ..RequestFilter::default() };
    Ok(state.store.requests_all(Scope::AllUnits, &filter).await?)
}

/// Tells the role whose turn it is that a deadline is near or past.
async fn deadlines(state: &AppState, calendar: &Calendar) -> anyhow::Result<u64> {
    let today = state.clock.today();
    let at = state.now().as_millisecond();
    let mut sent = 0;
    let mut open = open_requests(state, RequestState::InReview).await?;
    open.extend(open_requests(state, RequestState::Approved).await?);
    let mut tx = state.store.begin().await?;
    for r in open {
        let sla = request::sla(calendar, today, r.due_on, None);
        let (tag, zh, en) = match sla {
            Sla::DueSoon => ("due_soon", "即将到期", "is due"),
            Sla::Overdue => ("overdue", "已逾期", "was due"),
            _ => continue,
        };
        // In review, the turn's role; approved, the cloud admin who provisions.
        let who = r.turn().unwrap_or(Role::CloudAdmin);
        let notice = Notice {
            kind: if tag == "overdue" { "request.overdue" } else { "request.due_soon" },
            title: format!("{}申请 #{} {zh}（{}）", kind_zh(r.kind), r.id, r.due_on),
            body: format!("Request #{} {en} on {} ({} step {}).", r.id, r.due_on, who.code(), r.step + 1),
            link: Some(format!("/api/v1/requests/{}", r.id)),
            dedup_key: Some(format!("{tag}:{}:{}:{}:{}", r.id, r.round, r.step, r.state.code())),
        };
        sent += tx.notify_role(who, None, &notice, at).await?;
        if tag == "overdue" && who != Role::CloudAdmin {
            sent += tx.notify_role(Role::CloudAdmin, None, &notice, at).await?;
        }
    }
    tx.commit().await?;
    Ok(sent)
}

/// Notices before expiry, suspension at expiry, reclaim after the grace period (Art. 12).
async fn expiries(state: &AppState, report: &mut TickReport) -> anyhow::Result<()> {
    let today = state.clock.today();
    let at = state.now().as_millisecond();
    let grace = state.settings.temporary_grace_days;
    let resources = state.store.live_temporary_resources().await?;
    // One notice per system and expiry date, not one per host.
    let mut by_expiry: BTreeMap<(i64, jiff::civil::Date), Vec<i64>> = BTreeMap::new();
    for r in &resources {
        if let Some(e) = r.expires_on {
            by_expiry.entry((r.system_id.0, e)).or_default().push(r.id);
        }
    }
    let mut tx = state.store.begin().await?;
    for ((system, expires_on), ids) in &by_expiry {
        let Some(unit) = resources.iter().find(|r| r.id == ids[0]).map(|r| r.unit_id) else { continue };
        let reclaim_on = expires_on.checked_add(grace.days()).unwrap_or(*expires_on);
        for (n, notice_on) in request::expiry_notice_dates(*expires_on).iter().enumerate() {
            if today >= *notice_on && today < *expires_on {
                let last = request::last_day_to_extend(*expires_on);
                let notice = Notice {
                    kind: "resource.expiring",
                    title: format!("临时资源将于 {expires_on} 到期（{} 项）", ids.len()),
                    body: format!(
                        "{} temporary resources of system {system} expire on {expires_on}; an extension must be asked \
                         of the office by {last} (Art. 12). They are suspended at expiry and reclaimed on {reclaim_on}.",
                        ids.len()
                    ),
                    link: Some(format!("/api/v1/resources?system_id={system}")),
                    dedup_key: Some(format!("expiring:{system}:{expires_on}:{n}")),
                };
                report.notices += tx.notify_unit(unit, &notice, at).await?;
            }
        }
    }
    for r in &resources {
        let Some(expires_on) = r.expires_on else { continue };
        let Some(current) = tx.resource(r.id).await? else { continue };
        let suspended = current.state == ResourceState::Suspended;
        let (act, target, audit, zh) = match request::expiry_step(today, expires_on, grace, suspended) {
            Some(request::ExpiryStep::Reclaim) => {
                (ResourceAction::Delete, ResourceState::Reclaimed, "resource.reclaim_expired", "已回收")
            }
            Some(request::ExpiryStep::Suspend) => {
                (ResourceAction::Suspend, ResourceState::Suspended, "resource.suspend_expired", "已停用")
            }
            None => continue,
        };
        let notice = Notice {
            kind: "resource.expired",
            title: format!("临时资源 {} {zh}（到期日 {expires_on}）", current.name),
            body: format!(
                "Temporary resource {} expired on {expires_on} and is now {}.",
                current.name,
                target.code()
            ),
            link: Some(format!("/api/v1/resources/{}", current.id)),
            dedup_key: Some(format!("expired:{}:{}", current.id, target.code())),
        };
        // The job stops or deletes it on its platform, records the new state
        // and tells the unit; one job per resource and expiry date.
        let key = format!("expiry:{}:{}:{expires_on}", act.code(), current.id);
        let job = enqueue_action(&mut tx, &current, act, audit, Some(&notice), key, state.now()).await?;
        if job.attempts == 0 && job.state == "queued" {
            if act == ResourceAction::Delete {
                report.reclaimed += 1;
            } else {
                report.suspended += 1;
            }
        }
    }
    tx.commit().await?;
    state.worker.notify_one();
    Ok(())
}
