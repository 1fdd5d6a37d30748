//! The job runner: carries out what approvals, the scheduler and operators
//! decide (provisioning, suspend, resume, reclaim, reconciliation) outside
//! any request handler (invariant 3), retried with backoff, visible when
//! failed. Request handlers never call a platform.
//!
//! A job is claimed with a lease in its own transaction, run, then marked
//! done or failed. While it runs its worker renews the lease; a worker that
//! dies mid-run (a crash, a SIGKILL) stops renewing, and the job is claimed
//! again once the lease runs out. So every run must be idempotent: each
//! checks the state first, and every platform call is keyed by the
//! resource's id, so a repeated call finds what the first one made.

mod actions;
pub mod analysis;
mod provision;
mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use tokio::sync::{Notify, watch};
use yunzhi_drivers::CloudDriver;
use yunzhi_store::{AuditCtx, JobRecord, ResourceRecord};

pub use actions::{ResourceAction, enqueue_action};
pub use provision::{provision_in, spec_of};
pub use reconcile::enqueue_reconciliations;

use crate::state::AppState;

const IDLE_POLL: Duration = Duration::from_secs(2);

/// Starts the runner; it stops when `stop` turns true.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let id = format!("worker-{}-{}", std::process::id(), state.now().as_millisecond());
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

/// Runs the due jobs until none is left, waiting for those another runner
/// holds: the demo clock answers only once what its new date made due is
/// done. Gives up after `patience`.
pub async fn drain(state: &AppState, patience: Duration) -> anyhow::Result<()> {
    let id = format!("drain-{}-{}", std::process::id(), state.now().as_millisecond());
    let until = tokio::time::Instant::now() + patience;
    while tokio::time::Instant::now() < until {
        if run_one(state, &id).await? {
            continue;
        }
        if state.store.busy_jobs(state.now()).await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Backoff before the next attempt: `base` doubled at each attempt
/// (5 s, 10 s, 20 s … by default), at most 10 minutes.
fn backoff(base: SignedDuration, attempts: i64) -> SignedDuration {
    let ms = (base.as_millis() as i64).saturating_mul(1i64 << attempts.clamp(0, 10));
    SignedDuration::from_millis(ms.min(600_000))
}

/// Claims and runs one due job. `Ok(false)` when there was none.
async fn run_one(state: &AppState, worker: &str) -> anyhow::Result<bool> {
    let lease = state.settings.job_lease;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let Some(job) = tx.claim_job(worker, now, lease).await? else {
        return Ok(false);
    };
    tx.commit().await?;
    let result = {
        let work = run(state, &job);
        // Renew the lease at a third of its length while the job runs. The
        // renewal runs beside the job, never in place of it: awaited inside
        // a select! arm it would stop the job being polled, and on SQLite a
        // job holding the one writer would then wait for a renewal that
        // waits for that writer, until the pool gave up.
        let every = Duration::from_millis((lease.as_millis() / 3).max(10) as u64);
        let renew = async {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let renewed = async {
                    let mut tx = state.store.begin().await?;
                    let ok = tx.extend_job_lease(job.id, worker, state.now() + lease).await?;
                    tx.commit().await?;
                    anyhow::Ok(ok)
                };
                if let Err(e) = renewed.await {
                    tracing::warn!(job = job.id.0, error = %e, "could not renew a job's lease");
                }
            }
        };
        tokio::select! {
            r = work => r,
            never = renew => never,
        }
    };
    let now = state.now();
    let mut tx = state.store.begin().await?;
    match result {
        Ok(()) => tx.complete_job(job.id, worker, now).await?,
        Err(e) => {
            tracing::warn!(job = job.id.0, kind = %job.kind, attempt = job.attempts, error = %e, "job failed; will retry");
            tx.fail_job(
                job.id,
                worker,
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

fn payload_id(job: &JobRecord, field: &str) -> anyhow::Result<i64> {
    job.payload[field].as_i64().ok_or_else(|| anyhow::anyhow!("a {} job without {field}", job.kind))
}

async fn run(state: &AppState, job: &JobRecord) -> anyhow::Result<()> {
    match job.kind.as_str() {
        "provision" => provision::provision(state, payload_id(job, "request_id")?).await,
        "reclaim" => actions::reclaim(state, payload_id(job, "request_id")?).await,
        "suspend" | "resume" | "delete" => actions::run(state, job).await,
        "resize" => actions::resize(state, job).await,
        "analyze" => analysis::run(state).await,
        "reconcile" => {
            reconcile::run(state, yunzhi_domain::ids::PlatformId(payload_id(job, "platform_id")?)).await
        }
        other => Err(anyhow::anyhow!("unknown job kind {other}")),
    }
}

/// The key a resource goes by on its platform.
pub fn resource_key(id: i64) -> String {
    format!("yz-res-{id}")
}

/// The resource a platform-side key names, if it is one of Yunzhi's.
pub fn resource_of_key(key: &str) -> Option<i64> {
    key.strip_prefix("yz-res-")?.parse().ok()
}

/// The driver of the platform `res` is placed on.
async fn driver_of(state: &AppState, res: &ResourceRecord) -> anyhow::Result<Arc<dyn CloudDriver>> {
    let platform_id =
        res.platform_id.ok_or_else(|| anyhow::anyhow!("resource {} has no platform", res.id))?;
    state.driver(platform_id).await
}

fn system_ctx(state: &AppState) -> AuditCtx {
    AuditCtx::system("job-runner", state.now())
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
