//! The service catalog and which platforms offer each item.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::CloudOperator;
use yunzhi_domain::catalog::{CatalogSpec, default_catalog};
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::{CatalogItemId, PlatformId};

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::{Result, Store, StoreError, Tx};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CatalogItemRecord {
    #[schema(value_type = i64)]
    pub id: CatalogItemId,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: CatalogSpec,
    /// The platforms that offer this item.
    #[schema(value_type = Vec<i64>)]
    pub platform_ids: Vec<PlatformId>,
    pub active: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: At,
}

fn item(row: &AnyRow, offers: &[(i64, i64)]) -> Result<CatalogItemRecord> {
    let id: i64 = row.try_get("id")?;
    let spec: String = row.try_get("spec")?;
    Ok(CatalogItemRecord {
        id: CatalogItemId(id),
        spec: serde_json::from_str(&spec)?,
        platform_ids: offers.iter().filter(|(i, _)| *i == id).map(|(_, p)| PlatformId(*p)).collect(),
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: At::from_millis(row.try_get("created_at")?),
        updated_at: At::from_millis(row.try_get("updated_at")?),
    })
}

async fn offers<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    e: E,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT catalog_item_id, platform_id FROM catalog_offers WHERE catalog_item_id > $1 AND catalog_item_id <= $2 \
         ORDER BY catalog_item_id, platform_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(e)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("catalog_item_id")?, r.try_get("platform_id")?))).collect()
}

impl Store {
    /// The catalog is the same for every unit: no scope.
    pub async fn catalog(&self, page: PageRequest) -> Result<Page<CatalogItemRecord>> {
        let rows = sqlx::query("SELECT * FROM catalog_items WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(page.after)
            .bind(page.fetch())
            .fetch_all(&self.read)
            .await?;
        let last = rows.last().map(|r| r.try_get::<i64, _>("id")).transpose()?.unwrap_or(page.after);
        let offers = offers(&self.read, page.after, last).await?;
        let items = rows.iter().map(|r| item(r, &offers)).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |i| i.id.0))
    }

    pub async fn catalog_item(&self, id: CatalogItemId) -> Result<Option<CatalogItemRecord>> {
        let row = sqlx::query("SELECT * FROM catalog_items WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.read)
            .await?;
        let offers = offers(&self.read, id.0 - 1, id.0).await?;
        row.as_ref().map(|r| item(r, &offers)).transpose()
    }
}

impl Tx {
    pub async fn create_catalog_item(
        &mut self,
        _: &CloudOperator,
        ctx: &AuditCtx,
        spec: &CatalogSpec,
    ) -> Result<CatalogItemRecord> {
        let created = self.insert_catalog_item(ctx, spec).await?;
        self.audit(ctx, Change::created("catalog.create", "catalog_item", created.id, None, &created)?)
            .await?;
        Ok(created)
    }

    /// An item by its stable code (seeding, imports).
    pub async fn catalog_item_by_code(&mut self, code: &str) -> Result<Option<CatalogItemRecord>> {
        let row = sqlx::query("SELECT id FROM catalog_items WHERE code = $1")
            .bind(code)
            .fetch_optional(self.conn())
            .await?;
        match row {
            Some(r) => self.catalog_item(CatalogItemId(r.try_get("id")?)).await,
            None => Ok(None),
        }
    }

    /// An item read inside this transaction, for a read-modify-write.
    pub async fn catalog_item(&mut self, id: CatalogItemId) -> Result<Option<CatalogItemRecord>> {
        let row = sqlx::query("SELECT * FROM catalog_items WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.conn())
            .await?;
        let offers = offers(self.conn(), id.0 - 1, id.0).await?;
        row.as_ref().map(|r| item(r, &offers)).transpose()
    }

    /// Writes a changed item (its spec and whether it is offered), audited.
    pub async fn update_catalog_item(
        &mut self,
        _: &CloudOperator,
        ctx: &AuditCtx,
        current: &CatalogItemRecord,
        spec: &CatalogSpec,
        active: bool,
    ) -> Result<CatalogItemRecord> {
        let id = current.id.0;
        sqlx::query("UPDATE catalog_items SET spec = $1, active = $2, updated_at = $3 WHERE id = $4")
            .bind(serde_json::to_string(spec)?)
            .bind(crate::flag(active))
            .bind(ctx.at.as_millisecond())
            .bind(id)
            .execute(self.conn())
            .await?;
        let row =
            sqlx::query("SELECT * FROM catalog_items WHERE id = $1").bind(id).fetch_one(self.conn()).await?;
        let offers = offers(self.conn(), id - 1, id).await?;
        let updated = item(&row, &offers)?;
        self.audit(
            ctx,
            Change {
                action: "catalog.update",
                object_type: "catalog_item",
                object_id: Some(id.to_string()),
                unit_id: None,
                before: Some(serde_json::to_value(current)?),
                after: Some(serde_json::to_value(&updated)?),
            },
        )
        .await?;
        Ok(updated)
    }

    async fn insert_catalog_item(&mut self, ctx: &AuditCtx, spec: &CatalogSpec) -> Result<CatalogItemRecord> {
        let now = ctx.at.as_millisecond();
        let row = sqlx::query(
            "INSERT INTO catalog_items (code, kind, arch, spec, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 1, $5, $5) RETURNING id",
        )
        .bind(&spec.code)
        .bind(spec.kind.code())
        .bind(spec.arch.map(|a| a.code()))
        .bind(serde_json::to_string(spec)?)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["code"]))?;
        let id: i64 = row.try_get("id")?;
        // Offer the item on every platform of its architecture (all, when it has none).
        sqlx::query(
            "INSERT INTO catalog_offers (catalog_item_id, platform_id) SELECT $1, id FROM platforms \
             WHERE CAST($2 AS TEXT) IS NULL OR arch = $2",
        )
        .bind(id)
        .bind(spec.arch.map(|a| a.code()))
        .execute(self.conn())
        .await?;
        let row =
            sqlx::query("SELECT * FROM catalog_items WHERE id = $1").bind(id).fetch_one(self.conn()).await?;
        let offers = offers(self.conn(), id - 1, id).await?;
        item(&row, &offers)
    }

    /// Seeds the default catalog into an empty one; returns how many items.
    pub async fn seed_default_catalog(&mut self, ctx: &AuditCtx) -> Result<usize> {
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM catalog_items")
            .fetch_one(self.conn())
            .await?
            .try_get("n")?;
        if count > 0 {
            return Ok(0);
        }
        let items = default_catalog();
        for spec in &items {
            self.insert_catalog_item(ctx, spec).await?;
        }
        self.audit(
            ctx,
            Change {
                action: "catalog.seed_default",
                object_type: "catalog",
                object_id: None,
                unit_id: None,
                before: None,
                after: Some(serde_json::json!({ "items": items.len() })),
            },
        )
        .await?;
        Ok(items.len())
    }
}
