//! Cloud platforms.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::{CloudOperator, PlatformReader};
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::PlatformId;
use yunzhi_domain::platform::{Capacity, DriverKind, NewPlatform, Overcommit, PlatformState};
use yunzhi_domain::system::Arch;

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::resources::USAGE_COLUMNS;
use crate::{Result, Store, StoreError, Tx};

/// What is allocated on a platform, against what may be.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default, utoipa::ToSchema)]
pub struct PlatformUsage {
    pub vcpu: u32,
    pub memory_gib: u32,
    pub storage_gib: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PlatformRecord {
    #[schema(value_type = i64)]
    pub id: PlatformId,
    pub name: String,
    #[schema(value_type = String)]
    pub arch: Arch,
    #[schema(value_type = String)]
    pub driver: DriverKind,
    pub endpoint: Option<String>,
    #[schema(value_type = Object)]
    pub capacity: Capacity,
    #[schema(value_type = Object)]
    pub overcommit: Overcommit,
    /// Capacity times overcommit: what placement may hand out.
    #[schema(value_type = Object)]
    pub allocatable: Capacity,
    /// Allocated to live resources.
    pub usage: PlatformUsage,
    /// The driver's settings (no secrets).
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// Whether sign-in credentials are kept (sealed; never shown).
    pub has_credentials: bool,
    /// What the platform last reported of its own capacity and use, at the
    /// last inventory pass (`reported_at`).
    #[schema(value_type = Option<Object>)]
    pub reported: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub state: PlatformState,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: At,
}

fn corrupt<T>(r: std::result::Result<T, yunzhi_domain::Invalid>) -> Result<T> {
    r.map_err(|e| StoreError::corrupt(format!("platforms: {e}")))
}

fn platform(row: &AnyRow) -> Result<PlatformRecord> {
    let n = |c: &str| -> Result<u32> {
        u32::try_from(row.try_get::<i64, _>(c)?).map_err(|_| StoreError::corrupt(format!("platforms.{c}")))
    };
    let capacity = Capacity {
        vcpu: n("capacity_vcpu")?,
        memory_gib: n("capacity_memory_gib")?,
        storage_gib: n("capacity_storage_gib")?,
    };
    let overcommit =
        Overcommit { cpu: row.try_get("overcommit_cpu")?, memory: row.try_get("overcommit_memory")? };
    let used = |c: &str| -> Result<u32> { Ok(u32::try_from(row.try_get::<i64, _>(c)?).unwrap_or(u32::MAX)) };
    Ok(PlatformRecord {
        id: PlatformId(row.try_get("id")?),
        name: row.try_get("name")?,
        arch: corrupt(Arch::parse("arch", &row.try_get::<String, _>("arch")?))?,
        driver: corrupt(DriverKind::parse("driver", &row.try_get::<String, _>("driver")?))?,
        endpoint: row.try_get("endpoint")?,
        capacity,
        overcommit,
        allocatable: capacity.allocatable(overcommit),
        usage: PlatformUsage {
            vcpu: used("used_vcpu")?,
            memory_gib: used("used_memory_gib")?,
            storage_gib: used("used_storage_gib")?,
        },
        config: row
            .try_get::<Option<String>, _>("config")?
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| StoreError::corrupt(format!("platforms.config: {e}")))?,
        has_credentials: row.try_get::<Option<String>, _>("credentials")?.is_some(),
        reported: row
            .try_get::<Option<String>, _>("reported")?
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| StoreError::corrupt(format!("platforms.reported: {e}")))?,
        state: corrupt(PlatformState::parse("state", &row.try_get::<String, _>("state")?))?,
        created_at: At::from_millis(row.try_get("created_at")?),
        updated_at: At::from_millis(row.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn platforms(&self, _: &PlatformReader, page: PageRequest) -> Result<Page<PlatformRecord>> {
        let sql =
            format!("SELECT p.*, {USAGE_COLUMNS} FROM platforms p WHERE p.id > $1 ORDER BY p.id LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(page.after)
            .bind(page.fetch())
            .fetch_all(&self.read)
            .await?;
        let items = rows.iter().map(platform).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |p| p.id.0))
    }

    /// Every platform, for the server's background work.
    pub async fn platforms_all(&self) -> Result<Vec<PlatformRecord>> {
        let sql = format!("SELECT p.*, {USAGE_COLUMNS} FROM platforms p ORDER BY p.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.read).await?;
        rows.iter().map(platform).collect()
    }

    /// A platform's sealed credentials, for its driver only.
    pub async fn platform_credentials(&self, id: PlatformId) -> Result<Option<String>> {
        let row = sqlx::query("SELECT credentials FROM platforms WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("credentials")).transpose()?.flatten())
    }

    pub async fn platform(&self, _: &PlatformReader, id: PlatformId) -> Result<Option<PlatformRecord>> {
        let sql = format!("SELECT p.*, {USAGE_COLUMNS} FROM platforms p WHERE p.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(&self.read).await?;
        row.as_ref().map(platform).transpose()
    }
}

impl Tx {
    /// Enables, drains or disables a platform, audited. A draining or
    /// disabled platform keeps what it runs and takes nothing new.
    pub async fn set_platform_state(
        &mut self,
        _: &CloudOperator,
        ctx: &AuditCtx,
        id: PlatformId,
        state: PlatformState,
    ) -> Result<Option<PlatformRecord>> {
        let before: Option<String> = sqlx::query("SELECT state FROM platforms WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .map(|r| r.try_get("state"))
            .transpose()?;
        let Some(before) = before else { return Ok(None) };
        sqlx::query("UPDATE platforms SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state.code())
            .bind(ctx.at.as_millisecond())
            .bind(id.0)
            .execute(self.conn())
            .await?;
        self.audit(
            ctx,
            Change {
                action: "platform.set_state",
                object_type: "platform",
                object_id: Some(id.to_string()),
                unit_id: None,
                before: Some(serde_json::json!({"state": before})),
                after: Some(serde_json::json!({"state": state})),
            },
        )
        .await?;
        let sql = format!("SELECT p.*, {USAGE_COLUMNS} FROM platforms p WHERE p.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(self.conn()).await?;
        row.as_ref().map(platform).transpose()
    }

    /// Records what the platform reported of its capacity. Not audited: a
    /// reading, not a decision (the pass that took it is).
    pub async fn set_platform_reported(
        &mut self,
        id: PlatformId,
        reported: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query("UPDATE platforms SET reported = $1 WHERE id = $2")
            .bind(reported.to_string())
            .bind(id.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Changes how a platform's driver reaches it: its settings, its sealed
    /// credentials, or both (`None` keeps what is there). The audit record
    /// says the credentials changed, never what they are.
    pub async fn set_platform_connection(
        &mut self,
        _: &CloudOperator,
        ctx: &AuditCtx,
        id: PlatformId,
        config: Option<&serde_json::Value>,
        sealed_credentials: Option<&str>,
    ) -> Result<Option<PlatformRecord>> {
        let before: Option<Option<String>> = sqlx::query("SELECT config FROM platforms WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?
            .map(|r| r.try_get("config"))
            .transpose()?;
        let Some(before) = before else { return Ok(None) };
        sqlx::query(
            "UPDATE platforms SET config = COALESCE($1, config), credentials = COALESCE($2, credentials), \
             updated_at = $3 WHERE id = $4",
        )
        .bind(config.map(|c| c.to_string()))
        .bind(sealed_credentials)
        .bind(ctx.at.as_millisecond())
        .bind(id.0)
        .execute(self.conn())
        .await?;
        let before: Option<serde_json::Value> = before.and_then(|c| serde_json::from_str(&c).ok());
        self.audit(
            ctx,
            Change {
                action: "platform.set_connection",
                object_type: "platform",
                object_id: Some(id.to_string()),
                unit_id: None,
                before: Some(serde_json::json!({"config": before})),
                after: Some(serde_json::json!({
                    "config": config.or(before.as_ref()),
                    "credentials_changed": sealed_credentials.is_some(),
                })),
            },
        )
        .await?;
        let sql = format!("SELECT p.*, {USAGE_COLUMNS} FROM platforms p WHERE p.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.0).fetch_optional(self.conn()).await?;
        row.as_ref().map(platform).transpose()
    }

    /// Records a new platform; `sealed_credentials` is already sealed by the caller.
    pub async fn create_platform(
        &mut self,
        _: &CloudOperator,
        ctx: &AuditCtx,
        new: &NewPlatform,
        sealed_credentials: Option<&str>,
    ) -> Result<PlatformRecord> {
        let now = ctx.at.as_millisecond();
        let row = sqlx::query(
            "INSERT INTO platforms (name, arch, driver, endpoint, capacity_vcpu, capacity_memory_gib, capacity_storage_gib, \
             overcommit_cpu, overcommit_memory, state, created_at, updated_at, config, credentials) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'enabled', $10, $10, $11, $12) \
             RETURNING *, 0 AS used_vcpu, 0 AS used_memory_gib, 0 AS used_storage_gib",
        )
        .bind(&new.name)
        .bind(new.arch.code())
        .bind(new.driver.code())
        .bind(new.endpoint.as_deref())
        .bind(i64::from(new.capacity.vcpu))
        .bind(i64::from(new.capacity.memory_gib))
        .bind(i64::from(new.capacity.storage_gib))
        .bind(new.overcommit.cpu)
        .bind(new.overcommit.memory)
        .bind(now)
        .bind(new.config.as_ref().map(|c| c.to_string()))
        .bind(sealed_credentials)
        .fetch_one(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["name"]))?;
        let created = platform(&row)?;
        // A new platform offers the catalog items of its architecture, and
        // those of no architecture (storage, databases, security services).
        sqlx::query(
            "INSERT INTO catalog_offers (catalog_item_id, platform_id) SELECT id, $1 FROM catalog_items \
             WHERE arch IS NULL OR arch = $2",
        )
        .bind(created.id.0)
        .bind(new.arch.code())
        .execute(self.conn())
        .await?;
        self.audit(ctx, Change::created("platform.create", "platform", created.id, None, &created)?).await?;
        Ok(created)
    }
}
