//! Evidence files of information systems.

use serde::Serialize;
use sm3::{Digest, Sm3};
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::{Scope, SystemRegistrar};
use yunzhi_domain::clock::At;
use yunzhi_domain::document::{DocumentKind, DocumentMeta};
use yunzhi_domain::ids::{SystemId, UnitId};

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::systems::SystemRecord;
use crate::{Result, Store, StoreError, Tx, scope_param};

/// A document's description; the content is fetched separately.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DocumentRecord {
    pub id: i64,
    #[schema(value_type = i64)]
    pub system_id: SystemId,
    #[schema(value_type = i64)]
    pub unit_id: UnitId,
    #[schema(value_type = String)]
    pub kind: DocumentKind,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// SM3 digest of the content, hex: what the audit record vouches for.
    pub sm3: String,
    pub uploaded_by: Option<i64>,
    /// The request it was attached to, if any.
    pub request_id: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
}

const COLUMNS: &str =
    "id, system_id, unit_id, kind, filename, content_type, size, sm3, uploaded_by, request_id, created_at";

fn document(row: &AnyRow) -> Result<DocumentRecord> {
    Ok(DocumentRecord {
        id: row.try_get("id")?,
        system_id: SystemId(row.try_get("system_id")?),
        unit_id: UnitId(row.try_get("unit_id")?),
        kind: DocumentKind::parse("kind", &row.try_get::<String, _>("kind")?)
            .map_err(|e| StoreError::corrupt(format!("documents.kind: {e}")))?,
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sm3: row.try_get("sm3")?,
        uploaded_by: row.try_get("uploaded_by")?,
        request_id: row.try_get("request_id")?,
        created_at: At::from_millis(row.try_get("created_at")?),
    })
}

impl Store {
    /// A system's documents, if the system is in scope.
    pub async fn documents(
        &self,
        scope: Scope,
        system: SystemId,
        page: PageRequest,
    ) -> Result<Page<DocumentRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM documents WHERE system_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
             AND id > $3 ORDER BY id LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(system.0)
            .bind(scope_param(scope))
            .bind(page.after)
            .bind(page.fetch())
            .fetch_all(&self.read)
            .await?;
        let items = rows.iter().map(document).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |d| d.id))
    }

    /// A request's documents (the request must be in scope: the caller checks).
    pub async fn request_documents(&self, scope: Scope, request: i64) -> Result<Vec<DocumentRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM documents WHERE request_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
             ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(request)
            .bind(scope_param(scope))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(document).collect()
    }

    /// One document with its content, or `None` when missing or out of scope.
    pub async fn document(&self, scope: Scope, id: i64) -> Result<Option<(DocumentRecord, Vec<u8>)>> {
        let sql = format!(
            "SELECT {COLUMNS}, content FROM documents WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(scope_param(scope))
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| Ok((document(&r)?, r.try_get::<Vec<u8>, _>("content")?))).transpose()
    }
}

impl Tx {
    pub async fn create_document(
        &mut self,
        _: &SystemRegistrar,
        ctx: &AuditCtx,
        system: &SystemRecord,
        request: Option<i64>,
        meta: &DocumentMeta,
        content: &[u8],
    ) -> Result<DocumentRecord> {
        let digest = data_encoding::HEXLOWER.encode(&Sm3::digest(content));
        let sql = format!(
            "INSERT INTO documents (unit_id, system_id, kind, filename, content_type, size, sm3, content, uploaded_by, \
             created_at, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(system.unit_id.0)
            .bind(system.id.0)
            .bind(meta.kind.code())
            .bind(&meta.filename)
            .bind(&meta.content_type)
            .bind(content.len() as i64)
            .bind(&digest)
            .bind(content.to_vec())
            .bind(ctx.actor_id)
            .bind(ctx.at.as_millisecond())
            .bind(request)
            .fetch_one(self.conn())
            .await?;
        let created = document(&row)?;
        self.audit(
            ctx,
            Change::created("document.upload", "system", system.id, Some(system.unit_id.0), &created)?,
        )
        .await?;
        Ok(created)
    }
}
