//! Suspend, resume and delete resources on their platforms, and reclaim
//! what an approved reclaim names (Art. 11). The platform acts first; the
//! state in the database follows once it has, so Yunzhi never says a host
//! is stopped while it runs.

use jiff::Timestamp;
use yunzhi_domain::access::Scope;
use yunzhi_domain::request::RequestState;
use yunzhi_domain::resource::ResourceState;
use yunzhi_drivers::DriverError;
use yunzhi_store::{JobRecord, NewJob, Notice, ResourceRecord, Tx};

use super::{driver_of, resource_key, system_ctx};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceAction {
    Suspend,
    Resume,
    /// Deletes it for good: the resource is reclaimed.
    Delete,
}

impl ResourceAction {
    pub fn code(self) -> &'static str {
        match self {
            ResourceAction::Suspend => "suspend",
            ResourceAction::Resume => "resume",
            ResourceAction::Delete => "delete",
        }
    }

    fn parse(raw: &str) -> Option<ResourceAction> {
        [ResourceAction::Suspend, ResourceAction::Resume, ResourceAction::Delete]
            .into_iter()
            .find(|a| a.code() == raw)
    }

    fn target(self) -> ResourceState {
        match self {
            ResourceAction::Suspend => ResourceState::Suspended,
            ResourceAction::Resume => ResourceState::Active,
            ResourceAction::Delete => ResourceState::Reclaimed,
        }
    }
}

/// Queues `action` on `res` in the caller's transaction. `audit_action` names
/// the audit record the state change gets (`resource.suspend_expired` …);
/// `notice`, if any, goes to the unit once done. `dedup_key` makes the same
/// decision queue one job however often it is taken.
pub async fn enqueue_action(
    tx: &mut Tx,
    res: &ResourceRecord,
    action: ResourceAction,
    audit_action: &str,
    notice: Option<&Notice>,
    dedup_key: String,
    now: Timestamp,
) -> anyhow::Result<JobRecord> {
    let notice = notice.map(|n| {
        serde_json::json!({"kind": n.kind, "title": n.title, "body": n.body, "link": n.link, "dedup_key": n.dedup_key})
    });
    let job = NewJob {
        kind: action.code().into(),
        dedup_key: Some(dedup_key),
        payload: serde_json::json!({
            "resource_id": res.id,
            "audit_action": audit_action,
            "notice": notice,
        }),
        run_at: now,
        max_attempts: 10,
    };
    Ok(tx.enqueue_job(&job, now).await?)
}

/// Runs a queued suspend, resume or delete.
pub(super) async fn run(state: &AppState, job: &JobRecord) -> anyhow::Result<()> {
    let action = ResourceAction::parse(&job.kind).ok_or_else(|| anyhow::anyhow!("not a resource action"))?;
    let id = super::payload_id(job, "resource_id")?;
    let audit_action = job.payload["audit_action"].as_str().unwrap_or("resource.set_state").to_owned();
    let Some(res) = state.store.begin().await?.resource(id).await? else { return Ok(()) };
    let Some(done) = act(state, &res, action, &audit_action).await? else { return Ok(()) };
    if let Some(n) = job.payload.get("notice").filter(|n| n.is_object()) {
        let text = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
        let kind = match text("kind").as_str() {
            "resource.expired" => "resource.expired",
            "resource.suspended" => "resource.suspended",
            "resource.resumed" => "resource.resumed",
            _ => "resource.changed",
        };
        let notice = Notice {
            kind,
            title: text("title"),
            body: text("body"),
            link: n["link"].as_str().map(str::to_owned),
            dedup_key: n["dedup_key"].as_str().map(str::to_owned),
        };
        let ctx = system_ctx(state);
        let mut tx = state.store.begin().await?;
        tx.notify_unit(done.unit_id, &notice, ctx.at.as_millisecond()).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Runs a queued resize: the platform first, then the record (if nobody
/// changed it meanwhile), then the unit is told.
pub(super) async fn resize(state: &AppState, job: &JobRecord) -> anyhow::Result<()> {
    let id = super::payload_id(job, "resource_id")?;
    let size: yunzhi_domain::request::Demand = serde_json::from_value(job.payload["size"].clone())?;
    let Some(res) = state.store.begin().await?.resource(id).await? else { return Ok(()) };
    if !res.state.is_live() {
        return Ok(());
    }
    let same = res.vcpu == size.vcpu as i64
        && res.memory_gib == size.memory_gib as i64
        && res.storage_gib == size.storage_gib as i64;
    if same {
        return Ok(());
    }
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let driver = driver_of(state, &res).await?;
    driver
        .resize(&resource_key(res.id), narrow(size.vcpu), narrow(size.memory_gib), narrow(size.storage_gib))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = system_ctx(state);
    let mut tx = state.store.begin().await?;
    let Some(current) = tx.resource(id).await? else { return Ok(()) };
    let done = tx.resize_resource(&ctx, &current, size).await?;
    let notice = Notice {
        kind: "resource.resized",
        title: format!("资源 {} 已调整规格", done.name),
        body: format!(
            "Resource {} now has {} vCPU, {} GiB memory and {} GiB storage.",
            done.name, done.vcpu, done.memory_gib, done.storage_gib
        ),
        link: Some(format!("/api/v1/resources/{}", done.id)),
        dedup_key: None,
    };
    tx.notify_unit(done.unit_id, &notice, ctx.at.as_millisecond()).await?;
    tx.commit().await?;
    Ok(())
}

/// Has the platform carry out `action` on `res`, then records the new
/// state, audited. `None` when there was nothing to do (already done, or
/// reclaimed meanwhile).
async fn act(
    state: &AppState,
    res: &ResourceRecord,
    action: ResourceAction,
    audit_action: &str,
) -> anyhow::Result<Option<ResourceRecord>> {
    let target = action.target();
    if res.state == target || res.state == ResourceState::Reclaimed {
        return Ok(None);
    }
    if res.state == ResourceState::Provisioning {
        anyhow::bail!("resource {} is still being made; it is {} once it is", res.id, action.code());
    }
    if res.platform_id.is_some() {
        let driver = driver_of(state, res).await?;
        let key = resource_key(res.id);
        let done = match action {
            ResourceAction::Suspend => driver.suspend(&key).await.map(drop),
            ResourceAction::Resume => driver.resume(&key).await.map(drop),
            ResourceAction::Delete => driver.delete(&key).await,
        };
        match done {
            Ok(()) => {}
            Err(DriverError::NotFound(_)) => anyhow::bail!(
                "the platform no longer has resource {} ({key}); the reconciliation reports it",
                res.id
            ),
            Err(e) => anyhow::bail!("{e}"),
        }
    }
    let ctx = system_ctx(state);
    let mut tx = state.store.begin().await?;
    let Some(current) = tx.resource(res.id).await? else { return Ok(None) };
    if current.state == target || current.state == ResourceState::Reclaimed {
        return Ok(None);
    }
    let updated = tx.set_resource_state(&ctx, &current, target, audit_action).await?;
    tx.commit().await?;
    Ok(Some(updated))
}

/// Reclaims exactly the resources an approved reclaim names (Art. 11):
/// each deleted on its platform, then marked reclaimed; the request is
/// fulfilled once all are.
pub(super) async fn reclaim(state: &AppState, request_id: i64) -> anyhow::Result<()> {
    let named = {
        let mut tx = state.store.begin().await?;
        let Some(r) = tx.request(Scope::AllUnits, request_id).await? else { return Ok(()) };
        if r.state != RequestState::Approved {
            return Ok(());
        }
        tx.request_resources(r.id).await?
    };
    let mut n = 0;
    for res in named.iter().filter(|r| r.state.is_live()) {
        if act(state, res, ResourceAction::Delete, "resource.reclaim").await?.is_some() {
            n += 1;
        }
    }
    let ctx = system_ctx(state);
    let mut tx = state.store.begin().await?;
    let Some(r) = tx.request(Scope::AllUnits, request_id).await? else { return Ok(()) };
    if r.state != RequestState::Approved {
        return Ok(());
    }
    let reclaimed = tx.request_resources(r.id).await?.iter().filter(|r| !r.state.is_live()).count();
    let done = tx.fulfil_request(&ctx, &r).await?;
    let notice = Notice {
        kind: "request.fulfilled",
        title: format!("回收申请 #{}：{reclaimed} 项资源已回收", done.id),
        body: format!("{reclaimed} resources reclaimed; this cannot be undone (Art. 11)."),
        link: Some(format!("/api/v1/requests/{}", done.id)),
        dedup_key: Some(format!("fulfilled:{}", done.id)),
    };
    tx.notify_unit(done.unit_id, &notice, ctx.at.as_millisecond()).await?;
    tx.commit().await?;
    tracing::info!(request = done.id, reclaimed = n, "reclaim carried out");
    Ok(())
}
