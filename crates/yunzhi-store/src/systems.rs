//! Information systems.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::{Scope, SystemRegistrar};
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::{SystemId, UnitId};
use yunzhi_domain::system::{Arch, MlpsLevel, NewSystem, Quota, System, SystemState};

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::{Result, Store, StoreError, Tx, like_pattern, scope_param};

/// What a list of systems may be narrowed to (always within the caller's scope).
#[derive(Debug, Clone, Default)]
pub struct SystemFilter {
    pub unit: Option<UnitId>,
    pub state: Option<SystemState>,
    /// Part of the name or the project approval number, any case.
    pub q: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SystemRecord {
    #[schema(value_type = i64)]
    pub id: SystemId,
    #[schema(value_type = i64)]
    pub unit_id: UnitId,
    #[serde(flatten)]
    pub system: System,
    /// Bumped on every change; a PATCH may send `If-Match` with it.
    pub version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: At,
}

fn parse_stored<T>(what: &str, r: std::result::Result<T, yunzhi_domain::Invalid>) -> Result<T> {
    r.map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

fn system(row: &AnyRow) -> Result<SystemRecord> {
    let quota = |c: &str| -> Result<u32> {
        u32::try_from(row.try_get::<i64, _>(c)?)
            .map_err(|_| StoreError::corrupt(format!("systems.{c} out of range")))
    };
    let periodic: Option<String> = row.try_get("periodic_load")?;
    let golive: String = row.try_get("golive")?;
    Ok(SystemRecord {
        id: SystemId(row.try_get("id")?),
        unit_id: UnitId(row.try_get("unit_id")?),
        system: System {
            name: row.try_get("name")?,
            mlps_level: parse_stored(
                "mlps_level",
                MlpsLevel::parse("mlps_level", row.try_get("mlps_level")?),
            )?,
            project_ref: row.try_get("project_ref")?,
            arch: parse_stored("arch", Arch::parse("arch", &row.try_get::<String, _>("arch")?))?,
            quota: Quota {
                vcpu: quota("quota_vcpu")?,
                memory_gib: quota("quota_memory_gib")?,
                storage_gib: quota("quota_storage_gib")?,
            },
            quota_basis: row.try_get("quota_basis")?,
            periodic_load: periodic.map(|p| serde_json::from_str(&p)).transpose()?,
            description: row.try_get("description")?,
            state: parse_stored("state", SystemState::parse("state", &row.try_get::<String, _>("state")?))?,
            golive: serde_json::from_str(&golive)?,
        },
        version: row.try_get("version")?,
        created_at: At::from_millis(row.try_get("created_at")?),
        updated_at: At::from_millis(row.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn systems(
        &self,
        scope: Scope,
        filter: &SystemFilter,
        page: PageRequest,
    ) -> Result<Page<SystemRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM systems WHERE id > $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR unit_id = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR state = $4) \
             AND (CAST($5 AS TEXT) IS NULL OR LOWER(name) LIKE $5 ESCAPE '\\' \
                  OR LOWER(COALESCE(project_ref, '')) LIKE $5 ESCAPE '\\') \
             ORDER BY id LIMIT $6",
        )
        .bind(page.after)
        .bind(scope_param(scope))
        .bind(filter.unit.map(|u| u.0))
        .bind(filter.state.map(|s| s.code()))
        .bind(filter.q.as_deref().map(like_pattern))
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(system).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |s| s.id.0))
    }

    pub async fn system(&self, scope: Scope, id: SystemId) -> Result<Option<SystemRecord>> {
        let row = sqlx::query(
            "SELECT * FROM systems WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)",
        )
        .bind(id.0)
        .bind(scope_param(scope))
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(system).transpose()
    }
}

impl Tx {
    pub async fn create_system(
        &mut self,
        registrar: &SystemRegistrar,
        ctx: &AuditCtx,
        new: &NewSystem,
    ) -> Result<Option<SystemRecord>> {
        if !registrar.scope().admits(new.unit_id) {
            return Ok(None);
        }
        let exists = sqlx::query("SELECT id FROM units WHERE id = $1")
            .bind(new.unit_id.0)
            .fetch_optional(self.conn())
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let s = System::new(new);
        let now = ctx.at.as_millisecond();
        let row = sqlx::query(
            "INSERT INTO systems (unit_id, name, mlps_level, project_ref, arch, quota_vcpu, quota_memory_gib, \
             quota_storage_gib, quota_basis, periodic_load, description, state, golive, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14) RETURNING *",
        )
        .bind(new.unit_id.0)
        .bind(&s.name)
        .bind(i64::from(s.mlps_level.get()))
        .bind(s.project_ref.as_deref())
        .bind(s.arch.code())
        .bind(i64::from(s.quota.vcpu))
        .bind(i64::from(s.quota.memory_gib))
        .bind(i64::from(s.quota.storage_gib))
        .bind(&s.quota_basis)
        .bind(s.periodic_load.as_ref().map(serde_json::to_string).transpose()?)
        .bind(s.description.as_deref())
        .bind(s.state.code())
        .bind(serde_json::to_string(&s.golive)?)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["name"]))?;
        let created = system(&row)?;
        self.audit(
            ctx,
            Change::created("system.create", "system", created.id, Some(created.unit_id.0), &created)?,
        )
        .await?;
        Ok(Some(created))
    }

    /// A system read inside this transaction, for a read-modify-write.
    pub async fn system(&mut self, scope: Scope, id: SystemId) -> Result<Option<SystemRecord>> {
        let row = sqlx::query(
            "SELECT * FROM systems WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)",
        )
        .bind(id.0)
        .bind(scope_param(scope))
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(system).transpose()
    }

    /// Writes `next` over `current` if nobody changed it since it was read
    /// (the version check), with the audit record of the change.
    pub async fn update_system(
        &mut self,
        _: &SystemRegistrar,
        ctx: &AuditCtx,
        current: &SystemRecord,
        next: &System,
    ) -> Result<SystemRecord> {
        let row = sqlx::query(
            "UPDATE systems SET name = $1, mlps_level = $2, project_ref = $3, arch = $4, quota_vcpu = $5, \
             quota_memory_gib = $6, quota_storage_gib = $7, quota_basis = $8, periodic_load = $9, description = $10, \
             state = $11, golive = $12, version = version + 1, updated_at = $13 WHERE id = $14 AND version = $15 \
             RETURNING *",
        )
        .bind(&next.name)
        .bind(i64::from(next.mlps_level.get()))
        .bind(next.project_ref.as_deref())
        .bind(next.arch.code())
        .bind(i64::from(next.quota.vcpu))
        .bind(i64::from(next.quota.memory_gib))
        .bind(i64::from(next.quota.storage_gib))
        .bind(&next.quota_basis)
        .bind(next.periodic_load.as_ref().map(serde_json::to_string).transpose()?)
        .bind(next.description.as_deref())
        .bind(next.state.code())
        .bind(serde_json::to_string(&next.golive)?)
        .bind(ctx.at.as_millisecond())
        .bind(current.id.0)
        .bind(current.version)
        .fetch_optional(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["name"]))?;
        let Some(row) = row else {
            return Err(StoreError::Conflict(format!(
                "system {} was changed by someone else; reload it",
                current.id
            )));
        };
        let updated = system(&row)?;
        let action = if updated.system.state != current.system.state {
            match updated.system.state {
                SystemState::Approved => "system.approve",
                SystemState::Online => "system.go_online",
                SystemState::Retired => "system.retire",
                SystemState::Draft => "system.update",
            }
        } else {
            "system.update"
        };
        self.audit(
            ctx,
            Change {
                action,
                object_type: "system",
                object_id: Some(updated.id.to_string()),
                unit_id: Some(updated.unit_id.0),
                before: Some(serde_json::to_value(current)?),
                after: Some(serde_json::to_value(&updated)?),
            },
        )
        .await?;
        Ok(updated)
    }
}
