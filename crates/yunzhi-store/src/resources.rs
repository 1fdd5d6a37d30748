//! Cloud resources: created when a request is carried out, reclaimed,
//! extended; and the load of each platform for placement.

use jiff::civil::Date;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::Scope;
use yunzhi_domain::catalog::CatalogKind;
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::{CatalogItemId, PlatformId, SystemId, UnitId};
use yunzhi_domain::platform::{Capacity, DriverKind, Overcommit, PlatformState};
use yunzhi_domain::request::Demand;
use yunzhi_domain::resource::{PlatformLoad, ResourceState};
use yunzhi_domain::system::Arch;

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::{Backend, Result, Store, StoreError, Tx, scope_param};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ResourceRecord {
    pub id: i64,
    #[schema(value_type = i64)]
    pub unit_id: UnitId,
    #[schema(value_type = i64)]
    pub system_id: SystemId,
    pub request_id: i64,
    #[schema(value_type = i64)]
    pub catalog_item_id: CatalogItemId,
    #[schema(value_type = String)]
    pub kind: CatalogKind,
    pub name: String,
    #[schema(value_type = Option<i64>)]
    pub platform_id: Option<PlatformId>,
    #[schema(value_type = String)]
    pub state: ResourceState,
    pub vcpu: i64,
    pub memory_gib: i64,
    pub storage_gib: i64,
    /// GiB for storage, Mbps for bandwidth, 1 otherwise.
    pub quantity: i64,
    pub temporary: bool,
    #[schema(value_type = Option<String>, format = Date)]
    pub expires_on: Option<Date>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub handed_over_at: Option<At>,
    /// What the platform calls it, once made.
    pub remote_id: Option<String>,
    pub version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("resources.{what}: {e}"))
}

fn resource(row: &AnyRow) -> Result<ResourceRecord> {
    let expires: Option<String> = row.try_get("expires_on")?;
    Ok(ResourceRecord {
        id: row.try_get("id")?,
        unit_id: UnitId(row.try_get("unit_id")?),
        system_id: SystemId(row.try_get("system_id")?),
        request_id: row.try_get("request_id")?,
        catalog_item_id: CatalogItemId(row.try_get("catalog_item_id")?),
        kind: CatalogKind::parse("kind", &row.try_get::<String, _>("kind")?)
            .map_err(|e| corrupt("kind", e))?,
        name: row.try_get("name")?,
        platform_id: row.try_get::<Option<i64>, _>("platform_id")?.map(PlatformId),
        state: ResourceState::parse("state", &row.try_get::<String, _>("state")?)
            .map_err(|e| corrupt("state", e))?,
        vcpu: row.try_get("vcpu")?,
        memory_gib: row.try_get("memory_gib")?,
        storage_gib: row.try_get("storage_gib")?,
        quantity: row.try_get("quantity")?,
        temporary: row.try_get::<i64, _>("temporary")? != 0,
        expires_on: expires.map(|d| d.parse().map_err(|e| corrupt("expires_on", e))).transpose()?,
        handed_over_at: row.try_get::<Option<i64>, _>("handed_over_at")?.map(At::from_millis),
        remote_id: row.try_get("remote_id")?,
        version: row.try_get("version")?,
        created_at: At::from_millis(row.try_get("created_at")?),
    })
}

/// A live cloud host with what the analysis needs of its system.
#[derive(Debug, Clone)]
pub struct LiveHost {
    pub resource: ResourceRecord,
    /// The system's declared periodic load (Art. 8).
    pub periodic_load: Option<yunzhi_domain::system::PeriodicLoad>,
    pub system_name: String,
}

#[derive(Debug, Clone, Default)]
pub struct ResourceFilter {
    pub system: Option<SystemId>,
    pub state: Option<ResourceState>,
}

/// A resource about to be created.
pub struct NewResource {
    pub unit: UnitId,
    pub system: SystemId,
    pub request: i64,
    pub catalog_item: CatalogItemId,
    pub kind: CatalogKind,
    pub name: String,
    pub platform: Option<PlatformId>,
    pub demand: Demand,
    pub quantity: u32,
    pub temporary: bool,
    pub expires_on: Option<Date>,
    /// Made on its platform later, by a driver (`provisioning`), rather than
    /// handed over at once (`active`).
    pub provisioning: bool,
}

/// Per-platform usage by live resources, as a subquery on `p`.
pub(crate) const USAGE_COLUMNS: &str = "\
    (SELECT CAST(COALESCE(SUM(r.vcpu), 0) AS BIGINT) FROM resources r WHERE r.platform_id = p.id AND r.state <> 'reclaimed') AS used_vcpu, \
    (SELECT CAST(COALESCE(SUM(r.memory_gib), 0) AS BIGINT) FROM resources r WHERE r.platform_id = p.id AND r.state <> 'reclaimed') AS used_memory_gib, \
    (SELECT CAST(COALESCE(SUM(r.storage_gib), 0) AS BIGINT) FROM resources r WHERE r.platform_id = p.id AND r.state <> 'reclaimed') AS used_storage_gib";

impl Store {
    pub async fn resources(
        &self,
        scope: Scope,
        filter: &ResourceFilter,
        page: PageRequest,
    ) -> Result<Page<ResourceRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM resources WHERE id > $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR system_id = $3) AND (CAST($4 AS TEXT) IS NULL OR state = $4) \
             ORDER BY id LIMIT $5",
        )
        .bind(page.after)
        .bind(scope_param(scope))
        .bind(filter.system.map(|s| s.0))
        .bind(filter.state.map(|s| s.code()))
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(resource).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |r| r.id))
    }

    pub async fn resource(&self, scope: Scope, id: i64) -> Result<Option<ResourceRecord>> {
        let row = sqlx::query(
            "SELECT * FROM resources WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)",
        )
        .bind(id)
        .bind(scope_param(scope))
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(resource).transpose()
    }
}

impl Store {
    /// Every cloud host that is not reclaimed, with its system's declared
    /// periodic load: what the efficiency analysis looks at every hour.
    ///
    /// Read again only when a resource or a system may have changed since
    /// the last read: reading and decoding ten thousand hosts is most of an
    /// hourly pass that has nothing else to do, while checking the change
    /// mark is one small query. The mark is read before the hosts, so a
    /// change committed between the two is read again next time rather
    /// than missed.
    pub async fn live_hosts(&self) -> Result<std::sync::Arc<[LiveHost]>> {
        let mark = self.live_hosts_mark().await?;
        if let Some((held, hosts)) = self.live_hosts.lock().expect("live hosts cache").as_ref()
            && *held == mark
        {
            return Ok(hosts.clone());
        }
        let hosts: std::sync::Arc<[LiveHost]> = self.read_live_hosts().await?.into();
        *self.live_hosts.lock().expect("live hosts cache") = Some((mark, hosts.clone()));
        Ok(hosts)
    }

    /// What moves whenever a resource or a system changes. SQLite: a
    /// counter its triggers move (migration 14). PostgreSQL: the count of
    /// rows and the sum of their `xmin`, the id of the transaction that
    /// wrote each row's current version — any committed insert, update or
    /// delete changes one or the other, and reading it locks nothing.
    async fn live_hosts_mark(&self) -> Result<String> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT CAST(value AS TEXT) AS mark FROM change_counters WHERE name = 'live_hosts'"
            }
            Backend::Postgres => {
                "SELECT concat_ws(':', (SELECT count(*) FROM resources), \
                 (SELECT sum(xmin::text::bigint) FROM resources), (SELECT count(*) FROM systems), \
                 (SELECT sum(xmin::text::bigint) FROM systems)) AS mark"
            }
        };
        Ok(sqlx::query(sql).fetch_one(&self.read).await?.try_get("mark")?)
    }

    async fn read_live_hosts(&self) -> Result<Vec<LiveHost>> {
        let rows = sqlx::query(
            "SELECT r.*, s.periodic_load AS system_periodic_load, s.name AS system_name FROM resources r \
             JOIN systems s ON s.id = r.system_id \
             WHERE r.kind = 'cloud_host' AND r.state IN ('active', 'suspended') ORDER BY r.id",
        )
        .fetch_all(&self.read)
        .await?;
        // Thousands of hosts share a few systems: each declaration parsed once.
        let mut parsed: std::collections::HashMap<String, yunzhi_domain::system::PeriodicLoad> =
            std::collections::HashMap::new();
        rows.iter()
            .map(|row| {
                let periodic = match row.try_get::<Option<String>, _>("system_periodic_load")? {
                    None => None,
                    Some(text) => match parsed.get(&text) {
                        Some(p) => Some(p.clone()),
                        None => {
                            let p: yunzhi_domain::system::PeriodicLoad =
                                serde_json::from_str(&text).map_err(|e| corrupt("periodic_load", e))?;
                            parsed.insert(text, p.clone());
                            Some(p)
                        }
                    },
                };
                Ok(LiveHost {
                    resource: resource(row)?,
                    periodic_load: periodic,
                    system_name: row.try_get("system_name")?,
                })
            })
            .collect()
    }

    /// Every live temporary resource, for the expiry scheduler.
    pub async fn live_temporary_resources(&self) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM resources WHERE temporary = 1 AND state IN ('active', 'suspended') AND expires_on IS NOT NULL \
             ORDER BY expires_on, id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(resource).collect()
    }
}

impl Tx {
    /// One resource inside this transaction, for a read-modify-write.
    pub async fn resource(&mut self, id: i64) -> Result<Option<ResourceRecord>> {
        let row =
            sqlx::query("SELECT * FROM resources WHERE id = $1").bind(id).fetch_optional(self.conn()).await?;
        row.as_ref().map(resource).transpose()
    }

    /// Resources of a system by id, inside this transaction.
    pub async fn resources_of(&mut self, system: SystemId, ids: &[i64]) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query("SELECT * FROM resources WHERE system_id = $1 ORDER BY id")
            .bind(system.0)
            .fetch_all(self.conn())
            .await?;
        let all = rows.iter().map(resource).collect::<Result<Vec<_>>>()?;
        Ok(all.into_iter().filter(|r| ids.contains(&r.id)).collect())
    }

    /// The resources a reclaim or an extension named.
    pub async fn request_resources(&mut self, request: i64) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query(
            "SELECT r.* FROM resources r JOIN request_resources rr ON rr.resource_id = r.id WHERE rr.request_id = $1 \
             ORDER BY r.id",
        )
        .bind(request)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(resource).collect()
    }

    /// Every platform with its live usage, for placement.
    pub async fn platform_loads(&mut self) -> Result<Vec<PlatformLoad>> {
        let sql = format!("SELECT p.*, {USAGE_COLUMNS} FROM platforms p ORDER BY p.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.conn()).await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<u32> {
                    Ok(u32::try_from(r.try_get::<i64, _>(c)?).unwrap_or(u32::MAX))
                };
                let u = |c: &str| -> Result<u64> { Ok(r.try_get::<i64, _>(c)?.max(0) as u64) };
                let capacity = Capacity {
                    vcpu: n("capacity_vcpu")?,
                    memory_gib: n("capacity_memory_gib")?,
                    storage_gib: n("capacity_storage_gib")?,
                };
                let over =
                    Overcommit { cpu: r.try_get("overcommit_cpu")?, memory: r.try_get("overcommit_memory")? };
                Ok(PlatformLoad {
                    id: PlatformId(r.try_get("id")?),
                    arch: Arch::parse("arch", &r.try_get::<String, _>("arch")?)
                        .map_err(|e| corrupt("arch", e))?,
                    driver: DriverKind::parse("driver", &r.try_get::<String, _>("driver")?)
                        .map_err(|e| corrupt("driver", e))?,
                    state: PlatformState::parse("state", &r.try_get::<String, _>("state")?)
                        .map_err(|e| corrupt("state", e))?,
                    allocatable: capacity.allocatable(over),
                    used: Demand {
                        vcpu: u("used_vcpu")?,
                        memory_gib: u("used_memory_gib")?,
                        storage_gib: u("used_storage_gib")?,
                    },
                })
            })
            .collect()
    }

    /// Records a resource: `provisioning` until its platform has made it,
    /// or handed over at once.
    pub async fn create_resource(&mut self, ctx: &AuditCtx, new: &NewResource) -> Result<ResourceRecord> {
        let now = ctx.at.as_millisecond();
        let row = sqlx::query(
            "INSERT INTO resources (unit_id, system_id, request_id, catalog_item_id, kind, name, platform_id, state, vcpu, \
             memory_gib, storage_gib, quantity, temporary, expires_on, handed_over_at, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $15, $8, $9, $10, $11, $12, $13, $16, 1, $14, $14) RETURNING *",
        )
        .bind(new.unit.0)
        .bind(new.system.0)
        .bind(new.request)
        .bind(new.catalog_item.0)
        .bind(new.kind.code())
        .bind(&new.name)
        .bind(new.platform.map(|p| p.0))
        .bind(new.demand.vcpu as i64)
        .bind(new.demand.memory_gib as i64)
        .bind(new.demand.storage_gib as i64)
        .bind(i64::from(new.quantity))
        .bind(crate::flag(new.temporary))
        .bind(new.expires_on.map(|d| d.to_string()))
        .bind(now)
        .bind(if new.provisioning { "provisioning" } else { "active" })
        .bind((!new.provisioning).then_some(now))
        .fetch_one(self.conn())
        .await?;
        let created = resource(&row)?;
        self.audit(
            ctx,
            Change::created("resource.create", "resource", created.id, Some(created.unit_id.0), &created)?,
        )
        .await?;
        Ok(created)
    }

    /// Moves a resource to `state` (suspend, resume, reclaim), audited.
    pub async fn set_resource_state(
        &mut self,
        ctx: &AuditCtx,
        current: &ResourceRecord,
        state: ResourceState,
        action: &str,
    ) -> Result<ResourceRecord> {
        self.update_resource(
            ctx,
            current,
            "state",
            state.code().to_owned(),
            action,
            |r| serde_json::json!({"state": r.state}),
        )
        .await
    }

    /// The resources a request made, oldest first.
    pub async fn resources_of_request(&mut self, request: i64) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query("SELECT * FROM resources WHERE request_id = $1 ORDER BY id")
            .bind(request)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(resource).collect()
    }

    /// A resource its platform has made: active and handed over now.
    pub async fn hand_over(
        &mut self,
        ctx: &AuditCtx,
        current: &ResourceRecord,
        remote_id: &str,
    ) -> Result<ResourceRecord> {
        let row = sqlx::query(
            "UPDATE resources SET state = 'active', handed_over_at = $1, remote_id = $3, version = version + 1, \
             updated_at = $1 WHERE id = $2 AND state = 'provisioning' RETURNING *",
        )
        .bind(ctx.at.as_millisecond())
        .bind(current.id)
        .bind(remote_id)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("resource {} is no longer provisioning", current.id)))?;
        let updated = resource(&row)?;
        self.audit(
            ctx,
            Change {
                action: "resource.hand_over",
                object_type: "resource",
                object_id: Some(current.id.to_string()),
                unit_id: Some(current.unit_id.0),
                before: Some(serde_json::json!({"state": current.state})),
                after: Some(serde_json::json!({
                    "state": updated.state,
                    "platform_id": updated.platform_id,
                    "remote_id": updated.remote_id,
                })),
            },
        )
        .await?;
        Ok(updated)
    }

    /// Sets a temporary resource's new expiry (an extension, Art. 12).
    pub async fn extend_resource(
        &mut self,
        ctx: &AuditCtx,
        current: &ResourceRecord,
        until: Date,
    ) -> Result<ResourceRecord> {
        self.update_resource(
            ctx,
            current,
            "expires_on",
            until.to_string(),
            "resource.extend",
            |r| serde_json::json!({"expires_on": r.expires_on}),
        )
        .await
    }

    /// Records a resource's new size once its platform resized it, if nobody
    /// changed it since `current` was read; audited.
    pub async fn resize_resource(
        &mut self,
        ctx: &AuditCtx,
        current: &ResourceRecord,
        size: Demand,
    ) -> Result<ResourceRecord> {
        let row = sqlx::query(
            "UPDATE resources SET vcpu = $1, memory_gib = $2, storage_gib = $3, quantity = CASE WHEN kind = 'block_storage' \
             THEN $3 ELSE quantity END, version = version + 1, updated_at = $4 WHERE id = $5 AND version = $6 RETURNING *",
        )
        .bind(size.vcpu as i64)
        .bind(size.memory_gib as i64)
        .bind(size.storage_gib as i64)
        .bind(ctx.at.as_millisecond())
        .bind(current.id)
        .bind(current.version)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("resource {} changed meanwhile", current.id)))?;
        let updated = resource(&row)?;
        let shown = |r: &ResourceRecord| serde_json::json!({"vcpu": r.vcpu, "memory_gib": r.memory_gib, "storage_gib": r.storage_gib});
        self.audit(
            ctx,
            Change {
                action: "resource.resize",
                object_type: "resource",
                object_id: Some(current.id.to_string()),
                unit_id: Some(current.unit_id.0),
                before: Some(shown(current)),
                after: Some(shown(&updated)),
            },
        )
        .await?;
        Ok(updated)
    }

    /// Records what the platform calls a resource, once known (a resource
    /// seeded before its platform made it, or found by reconciliation).
    pub async fn set_remote_id(&mut self, id: i64, remote_id: &str) -> Result<()> {
        sqlx::query("UPDATE resources SET remote_id = $1 WHERE id = $2")
            .bind(remote_id)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// A system's hosts, not reclaimed.
    pub async fn live_hosts_of_system(&mut self, system: SystemId) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM resources WHERE system_id = $1 AND kind = 'cloud_host' AND state <> 'reclaimed' ORDER BY id",
        )
        .bind(system.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(resource).collect()
    }

    /// Every resource placed on `platform` that is not reclaimed.
    pub async fn live_resources_on(&mut self, platform: PlatformId) -> Result<Vec<ResourceRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM resources WHERE platform_id = $1 AND state <> 'reclaimed' ORDER BY id",
        )
        .bind(platform.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(resource).collect()
    }

    /// Sets one column of a resource if nobody changed it since `current`
    /// was read, with the audit record of what `shown` picks out of it.
    async fn update_resource(
        &mut self,
        ctx: &AuditCtx,
        current: &ResourceRecord,
        column: &'static str,
        value: String,
        action: &str,
        shown: impl Fn(&ResourceRecord) -> serde_json::Value,
    ) -> Result<ResourceRecord> {
        let sql = format!(
            "UPDATE resources SET {column} = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4 \
             RETURNING *"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(ctx.at.as_millisecond())
            .bind(current.id)
            .bind(current.version)
            .fetch_optional(self.conn())
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("resource {} changed meanwhile", current.id)))?;
        let updated = resource(&row)?;
        self.audit(
            ctx,
            Change {
                action,
                object_type: "resource",
                object_id: Some(current.id.to_string()),
                unit_id: Some(current.unit_id.0),
                before: Some(shown(current)),
                after: Some(shown(&updated)),
            },
        )
        .await?;
        Ok(updated)
    }
}
