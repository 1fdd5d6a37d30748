//! Provisioning: an approved request's resources are placed, recorded
//! `provisioning`, made by their platforms' drivers (outside any
//! transaction, keyed by the resource's id) and handed over.

use yunzhi_domain::access::Scope;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::ids::CatalogItemId;
use yunzhi_domain::request::{self, RequestKind, RequestState};
use yunzhi_domain::resource::{ResourceState, place};
use yunzhi_drivers::ResourceSpec;
use yunzhi_store::{AuditCtx, NewResource, Notice};

use super::{driver_of, resource_key, system_ctx};
use crate::api::requests::kind_zh;
use crate::state::AppState;

/// Creates the resources of an approved request on platforms of the
/// system's architecture with room, and hands them over.
pub(super) async fn provision(state: &AppState, request_id: i64) -> anyhow::Result<()> {
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
    for res in resources.iter().filter(|r| r.state == ResourceState::Provisioning) {
        let driver = driver_of(state, res).await?;
        let spec = spec_of(res);
        let made = driver.create(&spec).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // A drill hook: the crash tests stop the process here, between the
        // platform's answer and the commit, to prove nothing is made twice.
        crate::failpoint::hit("after_driver_create").await;
        let ctx = system_ctx(state);
        let mut tx = state.store.begin().await?;
        tx.hand_over(&ctx, res, &made.remote_id).await?;
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
    tx.notify_unit(done.unit_id, &notice, ctx.at.as_millisecond()).await?;
    tx.commit().await?;
    tracing::info!(request = done.id, resources = n, "request carried out");
    Ok(())
}

/// What a platform is asked to make for `res`.
pub fn spec_of(res: &yunzhi_store::ResourceRecord) -> ResourceSpec {
    ResourceSpec {
        key: resource_key(res.id),
        name: res.name.clone(),
        kind: driver_kind(res.kind),
        vcpu: u32::try_from(res.vcpu).unwrap_or(u32::MAX),
        memory_gib: u32::try_from(res.memory_gib).unwrap_or(u32::MAX),
        storage_gib: u32::try_from(res.storage_gib).unwrap_or(u32::MAX),
        image: None,
    }
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
            let platform = place(arch, spec.kind, demand, &loads).ok_or_else(|| {
                anyhow::anyhow!(
                    "no_capacity: no enabled {} platform making {} has room for {} vCPU, {} GiB memory, {} GiB storage",
                    arch.code(),
                    spec.kind.code(),
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
