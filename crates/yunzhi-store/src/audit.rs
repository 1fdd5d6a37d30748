//! The audit log as an SM3 hash chain (MLPS level 3, Art. 19–21).
//!
//! Each record's hash covers its predecessor's hash and all its own fields,
//! so editing, deleting or reordering any record breaks the chain from that
//! record on, and truncating the tail is caught against `audit_head`.
//! Nothing in the API writes this table except through [`Tx`] methods that
//! change something else in the same transaction; nothing updates or
//! deletes it.

use jiff::Timestamp;
use serde::Serialize;
use sm3::{Digest, Sm3};
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::AuditReader;
use yunzhi_domain::clock::At;

use crate::page::{Page, PageRequest};
use crate::{Result, Store, Tx, placeholders};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who is changing something, from where, when.
#[derive(Debug, Clone)]
pub struct AuditCtx {
    pub actor_id: Option<i64>,
    /// The username, or `system` / `cli` for the server's own work.
    pub actor: String,
    pub roles: String,
    pub source: Option<String>,
    pub at: Timestamp,
}

impl AuditCtx {
    /// The server acting on its own (scheduler, demo seeding, migrations).
    pub fn system(actor: &str, at: Timestamp) -> AuditCtx {
        AuditCtx { actor_id: None, actor: actor.to_owned(), roles: String::new(), source: None, at }
    }
}

/// One change, as it is recorded.
pub(crate) struct Change<'a> {
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: Option<String>,
    pub unit_id: Option<i64>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl<'a> Change<'a> {
    /// The creation of `record`, which is recorded whole as the state after.
    pub(crate) fn created(
        action: &'a str,
        object_type: &'a str,
        id: impl std::fmt::Display,
        unit_id: Option<i64>,
        record: &impl Serialize,
    ) -> Result<Change<'a>> {
        Ok(Change {
            action,
            object_type,
            object_id: Some(id.to_string()),
            unit_id,
            before: None,
            after: Some(serde_json::to_value(record).map_err(crate::StoreError::from)?),
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: At,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub roles: String,
    pub source: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub unit_id: Option<i64>,
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// How many records were checked.
    pub records: i64,
    /// The first record that does not hold, when one does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Newest first (the console's view) rather than oldest first.
    pub newest_first: bool,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
}

/// The bytes a record's hash covers: each field length-prefixed, so that
/// moving text from one field to the next changes the hash.
#[expect(clippy::too_many_arguments, reason = "every field of a record goes into its hash")]
fn chain_hash(
    prev_hash: &str,
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor: &str,
    roles: &str,
    source: Option<&str>,
    action: &str,
    object_type: &str,
    object_id: Option<&str>,
    unit_id: Option<i64>,
    before: Option<&str>,
    after: Option<&str>,
) -> String {
    let mut h = Sm3::new();
    let mut field = |bytes: Option<&[u8]>| match bytes {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    };
    field(Some(prev_hash.as_bytes()));
    field(Some(&id.to_be_bytes()));
    field(Some(&at.to_be_bytes()));
    field(actor_id.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    field(Some(actor.as_bytes()));
    field(Some(roles.as_bytes()));
    field(source.map(str::as_bytes));
    field(Some(action.as_bytes()));
    field(Some(object_type.as_bytes()));
    field(object_id.map(str::as_bytes));
    field(unit_id.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    field(before.map(str::as_bytes));
    field(after.map(str::as_bytes));
    data_encoding::HEXLOWER.encode(&h.finalize())
}

impl Tx {
    /// Appends one record to the chain, inside this transaction.
    pub(crate) async fn audit(&mut self, ctx: &AuditCtx, change: Change<'_>) -> Result<i64> {
        self.audit_all(ctx, vec![change]).await
    }

    /// Appends records to the chain in order, inside this transaction,
    /// dozens per statement; returns the first one's id. The head is moved
    /// once for all of them: what a batch of findings costs is then their
    /// hashing, not a round of statements each.
    pub(crate) async fn audit_all(&mut self, ctx: &AuditCtx, changes: Vec<Change<'_>>) -> Result<i64> {
        /// Bound per record.
        const PER_ROW: usize = 14;
        let n = changes.len() as i64;
        // Taking the head row's lock (an UPDATE) serialises appenders on
        // PostgreSQL; on SQLite the single writer already does.
        let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
            .bind(n)
            .fetch_one(self.conn())
            .await?;
        let first = head.try_get::<i64, _>("seq")? - n + 1;
        let mut prev: String = head.try_get("hash")?;
        if changes.is_empty() {
            return Ok(first);
        }
        let at = ctx.at.as_millisecond();
        let mut records = Vec::with_capacity(changes.len());
        for (id, change) in (first..).zip(changes) {
            let before = change.before.map(|v| v.to_string());
            let after = change.after.map(|v| v.to_string());
            let hash = chain_hash(
                &prev,
                id,
                at,
                ctx.actor_id,
                &ctx.actor,
                &ctx.roles,
                ctx.source.as_deref(),
                change.action,
                change.object_type,
                change.object_id.as_deref(),
                change.unit_id,
                before.as_deref(),
                after.as_deref(),
            );
            let prev_hash = std::mem::replace(&mut prev, hash.clone());
            records.push((
                id,
                change.action,
                change.object_type,
                change.object_id,
                change.unit_id,
                before,
                after,
                prev_hash,
                hash,
            ));
        }
        for chunk in records.chunks(crate::rows_per_statement(PER_ROW)) {
            let rows: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(1 + i * PER_ROW, PER_ROW))).collect();
            let sql = format!(
                "INSERT INTO audit (id, at, actor_id, actor, roles, source, action, object_type, object_id, \
                 unit_id, before, after, prev_hash, hash) VALUES {}",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, action, object_type, object_id, unit_id, before, after, prev_hash, hash) in chunk {
                q = q
                    .bind(*id)
                    .bind(at)
                    .bind(ctx.actor_id)
                    .bind(ctx.actor.as_str())
                    .bind(ctx.roles.as_str())
                    .bind(ctx.source.as_deref())
                    .bind(*action)
                    .bind(*object_type)
                    .bind(object_id.as_deref())
                    .bind(*unit_id)
                    .bind(before.as_deref())
                    .bind(after.as_deref())
                    .bind(prev_hash.as_str())
                    .bind(hash.as_str());
            }
            q.execute(self.conn()).await?;
        }
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&prev).execute(self.conn()).await?;
        Ok(first)
    }

    /// Records an event that changes no other row (a sign-in, a failed
    /// sign-in, a lockout) — still a state change of the system's security.
    pub async fn audit_event(
        &mut self,
        ctx: &AuditCtx,
        action: &str,
        object_type: &str,
        object_id: Option<String>,
        details: Option<serde_json::Value>,
    ) -> Result<i64> {
        self.audit(
            ctx,
            Change { action, object_type, object_id, unit_id: None, before: None, after: details },
        )
        .await
    }
}

fn record(row: &AnyRow) -> Result<AuditRecord> {
    let json = |col: &str| -> Result<Option<serde_json::Value>> {
        let text: Option<String> = row.try_get(col)?;
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    };
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: At::from_millis(row.try_get("at")?),
        actor_id: row.try_get("actor_id")?,
        actor: row.try_get("actor")?,
        roles: row.try_get("roles")?,
        source: row.try_get("source")?,
        action: row.try_get("action")?,
        object_type: row.try_get("object_type")?,
        object_id: row.try_get("object_id")?,
        unit_id: row.try_get("unit_id")?,
        before: json("before")?,
        after: json("after")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

impl Store {
    /// The log, oldest first, for the audit admin.
    pub async fn audit_list(
        &self,
        _: &AuditReader,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>> {
        // Newest first pages backwards: the cursor is the last id seen, and
        // the next page holds the ids below it. Two literal statements, one
        // filter text.
        macro_rules! listing {
            ($position:literal, $order:literal) => {
                concat!(
                    "SELECT * FROM audit WHERE ",
                    $position,
                    " AND (CAST($2 AS TEXT) IS NULL OR object_type = $2) \
                     AND (CAST($3 AS TEXT) IS NULL OR object_id = $3) \
                     AND (CAST($4 AS TEXT) IS NULL OR actor = $4) \
                     AND (CAST($5 AS TEXT) IS NULL OR action = $5) \
                     ORDER BY id ",
                    $order,
                    " LIMIT $6"
                )
            };
        }
        let sql = if filter.newest_first {
            listing!("($1 = 0 OR id < $1)", "DESC")
        } else {
            listing!("id > $1", "ASC")
        };
        let rows = sqlx::query(sql)
            .bind(page.after)
            .bind(filter.object_type.as_deref())
            .bind(filter.object_id.as_deref())
            .bind(filter.actor.as_deref())
            .bind(filter.action.as_deref())
            .bind(page.fetch())
            .fetch_all(&self.read)
            .await?;
        let records = rows.iter().map(record).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(records, page, |r| r.id))
    }

    /// Walks the whole chain and reports the first record that does not hold.
    /// Reads in batches, so a long log does not have to fit in memory.
    pub async fn audit_verify(&self, _: &AuditReader) -> Result<VerifyReport> {
        self.verify_chain().await
    }

    /// The chain check for the command line, which runs as the operator of
    /// the machine rather than as a signed-in user.
    pub async fn audit_verify_local(&self) -> Result<VerifyReport> {
        self.verify_chain().await
    }

    async fn verify_chain(&self) -> Result<VerifyReport> {
        const BATCH: i64 = 2000;
        let mut prev = GENESIS.to_owned();
        let mut expected_id = 1;
        let mut checked = 0;
        let bad = |id: i64, checked: i64, reason: String| VerifyReport {
            ok: false,
            records: checked,
            first_bad: Some(id),
            reason: Some(reason),
        };
        loop {
            let rows = sqlx::query("SELECT * FROM audit WHERE id >= $1 ORDER BY id LIMIT $2")
                .bind(expected_id)
                .bind(BATCH)
                .fetch_all(&self.read)
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let id: i64 = row.try_get("id")?;
                if id != expected_id {
                    return Ok(bad(expected_id, checked, format!("record {expected_id} is missing")));
                }
                let text = |c: &str| -> Result<Option<String>> { Ok(row.try_get::<Option<String>, _>(c)?) };
                let stored_prev: String = row.try_get("prev_hash")?;
                let stored_hash: String = row.try_get("hash")?;
                if stored_prev != prev {
                    return Ok(bad(id, checked, format!("record {id} does not follow record {}", id - 1)));
                }
                let computed = chain_hash(
                    &stored_prev,
                    id,
                    row.try_get("at")?,
                    row.try_get("actor_id")?,
                    &row.try_get::<String, _>("actor")?,
                    &row.try_get::<String, _>("roles")?,
                    text("source")?.as_deref(),
                    &row.try_get::<String, _>("action")?,
                    &row.try_get::<String, _>("object_type")?,
                    text("object_id")?.as_deref(),
                    row.try_get("unit_id")?,
                    text("before")?.as_deref(),
                    text("after")?.as_deref(),
                );
                if computed != stored_hash {
                    return Ok(bad(id, checked, format!("record {id} was altered after it was written")));
                }
                prev = stored_hash;
                expected_id += 1;
                checked += 1;
            }
        }
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&self.read).await?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        if head_seq != checked || head_hash != prev {
            let first = checked + 1;
            return Ok(bad(
                first,
                checked,
                format!("records from {first} to {head_seq} are missing from the end"),
            ));
        }
        Ok(VerifyReport { ok: true, records: checked, first_bad: None, reason: None })
    }
}
