//! Using units.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::{Reader, Scope, UnitEditor, UnitRegistrar};
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::UnitId;
use yunzhi_domain::unit::{Contact, NewUnit, UnitPatch};

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::{Result, Store, StoreError, Tx, like_pattern, scope_param};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UnitRecord {
    #[schema(value_type = i64)]
    pub id: UnitId,
    pub name: String,
    pub credit_code: String,
    #[schema(value_type = Vec<Object>)]
    pub contacts: Vec<Contact>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: At,
}

fn unit(row: &AnyRow) -> Result<UnitRecord> {
    let contacts: String = row.try_get("contacts")?;
    Ok(UnitRecord {
        id: UnitId(row.try_get("id")?),
        name: row.try_get("name")?,
        credit_code: row.try_get("credit_code")?,
        contacts: serde_json::from_str(&contacts)?,
        created_at: At::from_millis(row.try_get("created_at")?),
        updated_at: At::from_millis(row.try_get("updated_at")?),
    })
}

impl Store {
    /// Units in the reader's scope, optionally those whose name or credit
    /// code contains `q`.
    pub async fn units(
        &self,
        reader: &Reader,
        q: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<UnitRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM units WHERE id > $1 AND (CAST($2 AS BIGINT) IS NULL OR id = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR LOWER(name) LIKE $3 ESCAPE '\\' OR LOWER(credit_code) LIKE $3 ESCAPE '\\') \
             ORDER BY id LIMIT $4",
        )
        .bind(page.after)
        .bind(scope_param(reader.scope()))
        .bind(q.map(like_pattern))
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(unit).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |u| u.id.0))
    }

    /// One unit, or `None` when it does not exist *or* is outside the scope.
    pub async fn unit(&self, scope: Scope, id: UnitId) -> Result<Option<UnitRecord>> {
        let row =
            sqlx::query("SELECT * FROM units WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR id = $2)")
                .bind(id.0)
                .bind(scope_param(scope))
                .fetch_optional(&self.read)
                .await?;
        row.as_ref().map(unit).transpose()
    }
}

impl Tx {
    pub async fn create_unit(
        &mut self,
        _: &UnitRegistrar,
        ctx: &AuditCtx,
        new: &NewUnit,
    ) -> Result<UnitRecord> {
        let now = ctx.at.as_millisecond();
        let row = sqlx::query(
            "INSERT INTO units (name, credit_code, contacts, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             RETURNING *",
        )
        .bind(&new.name)
        .bind(new.credit_code.as_str())
        .bind(serde_json::to_string(&new.contacts)?)
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["credit_code"]))?;
        let created = unit(&row)?;
        self.audit(ctx, Change::created("unit.create", "unit", created.id, Some(created.id.0), &created)?)
            .await?;
        Ok(created)
    }

    /// A unit read inside this transaction, for a read-modify-write.
    pub async fn unit(&mut self, scope: Scope, id: UnitId) -> Result<Option<UnitRecord>> {
        let row =
            sqlx::query("SELECT * FROM units WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR id = $2)")
                .bind(id.0)
                .bind(scope_param(scope))
                .fetch_optional(self.conn())
                .await?;
        row.as_ref().map(unit).transpose()
    }

    pub async fn update_unit(
        &mut self,
        _: &UnitEditor,
        ctx: &AuditCtx,
        current: &UnitRecord,
        patch: &UnitPatch,
    ) -> Result<UnitRecord> {
        let name = patch.name.as_ref().unwrap_or(&current.name);
        let contacts = patch.contacts.as_ref().unwrap_or(&current.contacts);
        let row = sqlx::query(
            "UPDATE units SET name = $1, contacts = $2, updated_at = $3 WHERE id = $4 RETURNING *",
        )
        .bind(name)
        .bind(serde_json::to_string(contacts)?)
        .bind(ctx.at.as_millisecond())
        .bind(current.id.0)
        .fetch_one(self.conn())
        .await?;
        let updated = unit(&row)?;
        self.audit(
            ctx,
            Change {
                action: "unit.update",
                object_type: "unit",
                object_id: Some(updated.id.to_string()),
                unit_id: Some(updated.id.0),
                before: Some(serde_json::to_value(current)?),
                after: Some(serde_json::to_value(&updated)?),
            },
        )
        .await?;
        Ok(updated)
    }

    /// A unit by credit code, for idempotent seeding.
    pub async fn unit_by_credit_code(&mut self, code: &str) -> Result<Option<UnitRecord>> {
        let row = sqlx::query("SELECT * FROM units WHERE credit_code = $1")
            .bind(code)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(unit).transpose()
    }
}
