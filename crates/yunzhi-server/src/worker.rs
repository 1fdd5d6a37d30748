//! The job runner: carries out approved requests (provisioning, reclaim)
//! outside any request handler (invariant 3), retried with backoff, visible
//! when failed.
//!
//! A job is claimed with a lease in its own transaction, run, then marked
//! done or failed. A worker that dies mid-run leaves the job to be claimed
//! again when the lease runs out, so every run must be idempotent: each
//! checks the request's state first and does nothing twice.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use tokio::sync::{Notify, watch};
use yunzhi_domain::access::Scope;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::ids::CatalogItemId;
use yunzhi_domain::request::{self, RequestKind, RequestState};
use yunzhi_domain::resource::{ResourceState, place};
use yunzhi_domain::role::Role;
use yunzhi_drivers::ResourceSpec;
use yunzhi_store::{AuditCtx, JobRecord, NewResource, Notice};

use crate::api::requests::kind_zh;
use crate::state::AppState;

const LEASE: SignedDuration = SignedDuration::from_secs(120);
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Starts the runner; it stops when `stop` turns true.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let id = format!("worker-{}", std::process::id());
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                return;
            }
            match run_one(&state, &id).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "the job runner could not reach the store"),
            }
            tokio::select! {
                _ = state.worker.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Backoff before the next attempt: `base` doubled at each attempt
/// (5 s, 10 s, 20 s … by default), at most 10 minutes.
fn backoff(base: SignedDuration, attempts: i64) -> SignedDuration {
    let ms = (base.as_millis() as i64).saturating_mul(1i64 << attempts.clamp(0, 10));
    SignedDuration::from_millis(ms.min(600_000))
}

/// Claims and runs one due job. `Ok(false)` when there was none.
async fn run_one(state: &AppState, worker: &str) -> anyhow::Result<bool> {
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let Some(job) = tx.claim_job(worker, now, LEASE).await? else {
        return Ok(false);
    };
    tx.commit().await?;
    let result = run(state, &job).await;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    match result {
        Ok(()) => tx.complete_job(job.id, now).await?,
        Err(e) => {
            tracing::warn!(job = job.id.0, kind = %job.kind, attempt = job.attempts, error = %e, "job failed; will retry");
            tx.fail_job(
                job.id,
                &e.to_string(),
                now,
                now + backoff(state.settings.job_retry_base, job.attempts),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

async fn run(state: &AppState, job: &JobRecord) -> anyhow::Result<()> {
    let request =
        job.payload["request_id"].as_i64().ok_or_else(|| anyhow::anyhow!("job without request_id"))?;
    match job.kind.as_str() {
        "provision" => provision(state, request).await,
        "reclaim" => reclaim(state, request).await,
        other => Err(anyhow::anyhow!("unknown job kind {other}")),
    }
}

fn system_ctx(state: &AppState) -> AuditCtx {
    AuditCtx::system("job-runner", state.now())
}

/// Creates the resources of an approved request on platforms of the
/// system's architecture with room, and hands them over. Until the cloud
/// drivers land, the simulated platforms answer at once.
async fn provision(state: &AppState, request_id: i64) -> anyhow::Result<()> {
    let ctx = system_ctx(state);
    // 1. Decide and record what to make, once: a retried job finds the rows.
    let mut tx = state.store.begin().await?;
    let Some(r) = tx.request(Scope::AllUnits, request_id).await? else { return Ok(()) };
    if r.state != RequestState::Approved {
        return Ok(()); // already carried out, or withdrawn: nothing to do twice
    }
    if tx.resources_of_request(r.id).await?.is_empty() {
        provision_in(&mut tx, &ctx, &r, state.clock.today(), true).await?;
    }
    let resources = tx.resources_of_request(r.id).await?;
    tx.commit().await?;

    // 2. Have each made by its platform, outside any transaction. The key
    // is the resource's own id, so a retry after a crash or a lost answer
    // finds what the first attempt made instead of making another.
    let reader = internal_reader();
    for res in resources.iter().filter(|r| r.state == ResourceState::Provisioning) {
        let platform_id =
            res.platform_id.ok_or_else(|| anyhow::anyhow!("resource {} has no platform", res.id))?;
        let platform = state
            .store
            .platform(&reader, platform_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("platform {platform_id} is gone"))?;
        let driver = state.drivers.for_platform(&platform).await?;
        let spec = ResourceSpec {
            key: format!("yz-res-{}", res.id),
            name: res.name.clone(),
            kind: driver_kind(res.kind),
            vcpu: u32::try_from(res.vcpu).unwrap_or(u32::MAX),
            memory_gib: u32::try_from(res.memory_gib).unwrap_or(u32::MAX),
            storage_gib: u32::try_from(res.storage_gib).unwrap_or(u32::MAX),
            image: None,
        };
        driver.create(&spec).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let ctx = system_ctx(state);
        let mut tx = state.store.begin().await?;
        tx.hand_over(&ctx, res).await?;
        tx.commit().await?;
    }

    // 3. All made: the request is carried out.
    let ctx = system_ctx(state);
    let mut tx = state.store.begin().await?;
    let Some(r) = tx.request(Scope::AllUnits, request_id).await? else { return Ok(()) };
    if r.state != RequestState::Approved {
        return Ok(());
    }
    let made = tx.resources_of_request(r.id).await?;
    if made.iter().any(|m| m.state == ResourceState::Provisioning) {
        anyhow::bail!("request {} still has resources being made", r.id);
    }
    let system =
        tx.system(Scope::AllUnits, r.system_id).await?.ok_or_else(|| anyhow::anyhow!("system gone"))?;
    let n = made.len();
    let expires_on = made.iter().find_map(|m| m.expires_on);
    let done = tx.fulfil_request(&ctx, &r).await?;
    let notice = Notice {
        kind: "request.fulfilled",
        title: format!("{} 的{}申请 #{}：资源已交付", system.system.name, kind_zh(done.kind), done.id),
        body: match expires_on {
            Some(d) => format!("{n} resources handed over; temporary, they expire on {d} (Art. 12)."),
            None => format!("{n} resources handed over."),
        },
        link: Some(format!("/api/v1/resources?system_id={}", system.id)),
        dedup_key: Some(format!("fulfilled:{}", done.id)),
    };
    for role in [Role::UnitUser, Role::UnitAdmin] {
        tx.notify_role(role, Some(done.unit_id), &notice, ctx.at.as_millisecond()).await?;
    }
    tx.commit().await?;
    tracing::info!(request = done.id, resources = n, "request carried out");
    Ok(())
}

/// What a platform is asked to make for a catalog kind.
fn driver_kind(kind: yunzhi_domain::catalog::CatalogKind) -> yunzhi_drivers::ResourceKind {
    use yunzhi_domain::catalog::CatalogKind as C;
    match kind {
        C::CloudHost => yunzhi_drivers::ResourceKind::Host,
        C::BlockStorage => yunzhi_drivers::ResourceKind::Volume,
        _ => yunzhi_drivers::ResourceKind::Service,
    }
}

/// The server's own reading permission on platforms, for the job runner.
fn internal_reader() -> yunzhi_domain::access::PlatformReader {
    // A cloud admin always reads platforms.
    crate::seed::internal_actor(Role::CloudAdmin).platform_reader().expect("a cloud admin reads platforms")
}

/// Records the resources of approved request `r` inside `tx`, placing each
/// on the least loaded platform of the system's architecture with room:
/// `provisioning`, for the drivers to make, or (seeding the demo) handed
/// over at once. Returns how many.
pub async fn provision_in(
    tx: &mut yunzhi_store::Tx,
    ctx: &AuditCtx,
    r: &yunzhi_store::RequestRecord,
    today: jiff::civil::Date,
    through_drivers: bool,
) -> anyhow::Result<usize> {
    let system =
        tx.system(Scope::AllUnits, r.system_id).await?.ok_or_else(|| anyhow::anyhow!("system gone"))?;
    let arch = system.system.arch;
    let mut loads = tx.platform_loads().await?;
    let expires_on = (r.kind == RequestKind::Temporary).then(|| request::temporary_expiry(today));
    let mut n = 0;
    for (item, quantity) in &r.content.items {
        let spec = tx
            .catalog_item(CatalogItemId(*item))
            .await?
            .ok_or_else(|| anyhow::anyhow!("catalog item {item} gone"))?
            .spec;
        let pieces = yunzhi_domain::resource::pieces(&spec, *quantity);
        for (demand, quantity) in pieces {
            let platform = place(arch, demand, &loads).ok_or_else(|| {
                anyhow::anyhow!(
                    "no_capacity: no enabled {} platform has room for {} vCPU, {} GiB memory, {} GiB storage",
                    arch.code(),
                    demand.vcpu,
                    demand.memory_gib,
                    demand.storage_gib
                )
            })?;
            if let Some(l) = loads.iter_mut().find(|l| l.id == platform) {
                l.used = l.used + demand;
            }
            n += 1;
            let new = NewResource {
                unit: r.unit_id,
                system: r.system_id,
                request: r.id,
                catalog_item: CatalogItemId(*item),
                kind: spec.kind,
                name: format!("s{}-r{}-{}-{n:02}", system.id, r.id, spec.code),
                platform: Some(platform),
                demand,
                quantity,
                temporary: r.kind == RequestKind::Temporary,
                expires_on,
                provisioning: through_drivers,
            };
            tx.create_resource(ctx, &new).await?;
        }
    }
    Ok(n)
}

/// Reclaims exactly the resources an approved reclaim names (Art. 11).
async fn reclaim(state: &AppState, request_id: i64) -> anyhow::Result<()> {
    let ctx = system_ctx(state);
    let mut tx = state.store.begin().await?;
    let Some(r) = tx.request(Scope::AllUnits, request_id).await? else { return Ok(()) };
    if r.state != RequestState::Approved {
        return Ok(());
    }
    let mut n = 0;
    for res in tx.request_resources(r.id).await? {
        if res.state.is_live() {
            tx.set_resource_state(&ctx, &res, ResourceState::Reclaimed, "resource.reclaim").await?;
            n += 1;
        }
    }
    let done = tx.fulfil_request(&ctx, &r).await?;
    let notice = Notice {
        kind: "request.fulfilled",
        title: format!("回收申请 #{}：{n} 项资源已回收", done.id),
        body: format!("{n} resources reclaimed; this cannot be undone (Art. 11)."),
        link: Some(format!("/api/v1/requests/{}", done.id)),
        dedup_key: Some(format!("fulfilled:{}", done.id)),
    };
    for role in [Role::UnitUser, Role::UnitAdmin] {
        tx.notify_role(role, Some(done.unit_id), &notice, ctx.at.as_millisecond()).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The worker's doorbell: rung after an approval so the job runs at once.
pub type Doorbell = Arc<Notify>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_ten_minutes() {
        let base = SignedDuration::from_secs(5);
        assert_eq!(backoff(base, 1), SignedDuration::from_secs(10));
        assert_eq!(backoff(base, 3), SignedDuration::from_secs(40));
        assert_eq!(backoff(base, 30), SignedDuration::from_secs(600));
    }
}
