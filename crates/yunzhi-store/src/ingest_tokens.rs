//! Bearer tokens for Prometheus remote-write senders, and the inbox their
//! requests are kept in until they are turned into readings.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::clock::At;

use crate::audit::{AuditCtx, Change};
use crate::{Result, Store, StoreError, Tx};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IngestTokenRecord {
    pub id: i64,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<At>,
}

fn token(row: &AnyRow) -> Result<IngestTokenRecord> {
    Ok(IngestTokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: At::from_millis(row.try_get("created_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(At::from_millis),
    })
}

/// A request in the inbox.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub id: i64,
    pub token_id: i64,
    pub received_at: At,
    pub body: Vec<u8>,
}

impl Store {
    pub async fn ingest_tokens(&self) -> Result<Vec<IngestTokenRecord>> {
        let rows = sqlx::query("SELECT * FROM ingest_tokens ORDER BY id").fetch_all(&self.read).await?;
        rows.iter().map(token).collect()
    }

    /// The live token whose digest this is.
    pub async fn ingest_token_by_digest(&self, digest: &str) -> Result<Option<IngestTokenRecord>> {
        let row = sqlx::query("SELECT * FROM ingest_tokens WHERE token_digest = $1 AND revoked_at IS NULL")
            .bind(digest)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(token).transpose()
    }

    /// How many requests the inbox holds (not yet turned into readings).
    pub async fn inbox_len(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM remote_write_inbox").fetch_one(&self.read).await?;
        Ok(row.try_get("n")?)
    }

    /// Inbox entries after `after` (an entry id) not yet turned into
    /// readings, oldest first.
    pub async fn inbox_after(&self, after: i64, limit: i64) -> Result<Vec<InboxEntry>> {
        let rows = sqlx::query(
            "SELECT id, token_id, received_at, body FROM remote_write_inbox WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InboxEntry {
                    id: r.try_get("id")?,
                    token_id: r.try_get("token_id")?,
                    received_at: At::from_millis(r.try_get("received_at")?),
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }
}

impl Tx {
    pub async fn create_ingest_token(
        &mut self,
        ctx: &AuditCtx,
        name: &str,
        digest: &str,
    ) -> Result<IngestTokenRecord> {
        let row = sqlx::query(
            "INSERT INTO ingest_tokens (name, token_digest, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(name)
        .bind(digest)
        .bind(ctx.actor_id)
        .bind(ctx.at.as_millisecond())
        .fetch_one(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["token"]))?;
        let created = token(&row)?;
        self.audit(ctx, Change::created("ingest_token.create", "ingest_token", created.id, None, &created)?)
            .await?;
        Ok(created)
    }

    pub async fn revoke_ingest_token(
        &mut self,
        ctx: &AuditCtx,
        id: i64,
    ) -> Result<Option<IngestTokenRecord>> {
        let row = sqlx::query(
            "UPDATE ingest_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING *",
        )
        .bind(ctx.at.as_millisecond())
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let revoked = token(&row)?;
        self.audit(
            ctx,
            Change {
                action: "ingest_token.revoke",
                object_type: "ingest_token",
                object_id: Some(id.to_string()),
                unit_id: None,
                before: None,
                after: Some(serde_json::json!({"revoked_at": revoked.revoked_at})),
            },
        )
        .await?;
        Ok(Some(revoked))
    }

    /// Keeps a remote-write request until it is turned into readings.
    pub async fn inbox_put(&mut self, token_id: i64, received_at: i64, body: &[u8]) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO remote_write_inbox (token_id, received_at, body) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(token_id)
        .bind(received_at)
        .bind(body)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Forgets inbox entries up to `last_id`: their readings are stored.
    pub async fn inbox_done(&mut self, last_id: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM remote_write_inbox WHERE id <= $1")
            .bind(last_id)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }
}
