//! Findings: raised by the reconciliation (and later the efficiency
//! analysis), one per subject and kind, reviewed by the office.

use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::Scope;
use yunzhi_domain::clock::At;
use yunzhi_domain::finding::{FindingKind, FindingState};
use yunzhi_domain::ids::{PlatformId, SystemId, UnitId};

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::{CHUNK, Result, Store, StoreError, Tx, placeholders, rows_per_statement, scope_param};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FindingRecord {
    pub id: i64,
    #[schema(value_type = String)]
    pub kind: FindingKind,
    #[schema(value_type = String)]
    pub state: FindingState,
    #[schema(value_type = Option<i64>)]
    pub unit_id: Option<UnitId>,
    #[schema(value_type = Option<i64>)]
    pub system_id: Option<SystemId>,
    pub resource_id: Option<i64>,
    #[schema(value_type = Option<i64>)]
    pub platform_id: Option<PlatformId>,
    pub title: String,
    /// The numbers behind it: what was seen, where, when.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen_at: At,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: At,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<At>,
    /// The office's comment when it confirmed or dismissed the finding.
    pub review_comment: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub reviewed_at: Option<At>,
    pub version: i64,
}

/// The ids and dedup keys of a kind's open findings, which every analysis
/// pass reads; answered from index `findings_open_keys` alone (migration 19).
const OPEN_FINDING_KEYS: &str =
    "SELECT id, dedup_key FROM findings WHERE kind = $1 AND state = 'open' ORDER BY id";

/// A finding as its finder reports it.
#[derive(Debug, Clone)]
pub struct NewFinding {
    pub kind: FindingKind,
    pub unit: Option<UnitId>,
    pub system: Option<SystemId>,
    pub resource: Option<i64>,
    pub platform: Option<PlatformId>,
    pub title: String,
    /// The evidence as the JSON text it is stored as ([`NewFinding::evidence`]
    /// makes it). Kept as text, not as a tree of values: an analysis holds
    /// every host's findings between passes, and a day-by-day evidence
    /// takes ≈ 9 KB as text but several times that as a tree.
    pub evidence: Box<RawValue>,
    /// What makes two reports the same finding, e.g. `orphan:p2:srv-81`.
    pub dedup_key: String,
}

impl NewFinding {
    /// `value` as a finding's evidence: compact JSON text.
    pub fn evidence(value: &serde_json::Value) -> Box<RawValue> {
        // Writing out a `Value` cannot fail (its keys are strings).
        serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }
}

#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub kind: Option<FindingKind>,
    pub state: Option<FindingState>,
    pub platform: Option<PlatformId>,
}

/// `SELECT` of whole findings with their last sighting (`sighted_at`,
/// from `finding_sightings`), followed by `$rest` (`WHERE …`).
macro_rules! select_findings {
    ($rest:literal) => {
        concat!(
            "SELECT f.*, s.seen_at AS sighted_at FROM findings f \
             LEFT JOIN finding_sightings s ON s.finding_id = f.id ",
            $rest
        )
    };
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("findings.{what}: {e}"))
}

pub(crate) fn finding(row: &AnyRow) -> Result<FindingRecord> {
    Ok(FindingRecord {
        id: row.try_get("id")?,
        kind: FindingKind::parse("kind", &row.try_get::<String, _>("kind")?)
            .map_err(|e| corrupt("kind", e))?,
        state: FindingState::parse("state", &row.try_get::<String, _>("state")?)
            .map_err(|e| corrupt("state", e))?,
        unit_id: row.try_get::<Option<i64>, _>("unit_id")?.map(UnitId),
        system_id: row.try_get::<Option<i64>, _>("system_id")?.map(SystemId),
        resource_id: row.try_get("resource_id")?,
        platform_id: row.try_get::<Option<i64>, _>("platform_id")?.map(PlatformId),
        title: row.try_get("title")?,
        evidence: serde_json::from_str(&row.try_get::<String, _>("evidence")?)
            .map_err(|e| corrupt("evidence", e))?,
        first_seen_at: At::from_millis(row.try_get("first_seen_at")?),
        // Seen with new evidence (`last_seen_at`) or, later, with the same.
        last_seen_at: At::from_millis(
            row.try_get::<i64, _>("last_seen_at")?
                .max(row.try_get::<Option<i64>, _>("sighted_at")?.unwrap_or(i64::MIN)),
        ),
        resolved_at: row.try_get::<Option<i64>, _>("resolved_at")?.map(At::from_millis),
        review_comment: row.try_get("review_comment")?,
        reviewed_at: row.try_get::<Option<i64>, _>("reviewed_at")?.map(At::from_millis),
        version: row.try_get("version")?,
    })
}

impl Store {
    /// Findings in `scope`: a unit sees those about its own systems; the
    /// findings about no unit (an orphan on a platform) only the district sees.
    pub async fn findings(
        &self,
        scope: Scope,
        filter: &FindingFilter,
        page: PageRequest,
    ) -> Result<Page<FindingRecord>> {
        let rows = sqlx::query(select_findings!(
            "WHERE id > $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR kind = $3) AND (CAST($4 AS TEXT) IS NULL OR state = $4) \
             AND (CAST($5 AS BIGINT) IS NULL OR platform_id = $5) ORDER BY id LIMIT $6"
        ))
        .bind(page.after)
        .bind(scope_param(scope))
        .bind(filter.kind.map(|k| k.code()))
        .bind(filter.state.map(|s| s.code()))
        .bind(filter.platform.map(|p| p.0))
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(finding).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |f| f.id))
    }

    pub async fn finding(&self, scope: Scope, id: i64) -> Result<Option<FindingRecord>> {
        let row =
            sqlx::query(select_findings!("WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)"))
                .bind(id)
                .bind(scope_param(scope))
                .fetch_optional(&self.read)
                .await?;
        row.as_ref().map(finding).transpose()
    }
}

impl Tx {
    /// Raises what one analysis pass found, in few statements: the new
    /// findings one by one (each is audited); those known and still open,
    /// confirmed or dismissed — most of every pass — seen again together;
    /// a resolved one reopened (audited). Of the seen again, those whose
    /// dedup key is in `unchanged` (title and evidence as the caller last
    /// wrote them) only get a sighting (`finding_sightings`: a few bytes,
    /// where moving a column of `findings` would rewrite its evidence too),
    /// without a new version, so that an office member reviewing one is not
    /// told it changed meanwhile; the others get their new evidence. Returns how many are new or
    /// reopened.
    pub async fn raise_findings(
        &mut self,
        ctx: &AuditCtx,
        found: &[&NewFinding],
        unchanged: &std::collections::HashSet<&str>,
    ) -> Result<usize> {
        let mut known: std::collections::HashMap<String, (i64, FindingState)> =
            std::collections::HashMap::new();
        for chunk in found.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, dedup_key, state FROM findings WHERE dedup_key IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for f in chunk {
                q = q.bind(f.dedup_key.as_str());
            }
            for row in q.fetch_all(self.conn()).await? {
                let state = FindingState::parse("state", &row.try_get::<String, _>("state")?)
                    .map_err(|e| corrupt("state", e))?;
                known.insert(row.try_get("dedup_key")?, (row.try_get("id")?, state));
            }
        }
        let mut raised = 0;
        let mut seen: Vec<(i64, &&NewFinding)> = Vec::new();
        let mut touched: Vec<i64> = Vec::new();
        let mut fresh: Vec<&NewFinding> = Vec::new();
        for f in found {
            match known.get(&f.dedup_key) {
                Some((id, state)) if state.seen_again() == *state => {
                    if unchanged.contains(f.dedup_key.as_str()) {
                        touched.push(*id);
                    } else {
                        seen.push((*id, f));
                    }
                }
                Some(_) => raised += usize::from(self.raise_finding(ctx, f).await?.1),
                None => fresh.push(f),
            }
        }
        let conflicted = self.insert_findings(ctx, &fresh, |_| raised += 1).await?;
        for f in conflicted {
            raised += usize::from(self.raise_finding(ctx, f).await?.1);
        }
        let now = ctx.at.as_millisecond();
        for chunk in seen.chunks(rows_per_statement(3)) {
            let rows: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(2 + i * 3, 3))).collect();
            // A VALUES list's columns are column1, column2, … on both backends.
            let sql = format!(
                "UPDATE findings SET evidence = v.column2, title = v.column3, last_seen_at = $1, \
                 version = version + 1, updated_at = $1 FROM (VALUES {}) AS v WHERE findings.id = v.column1",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for (id, f) in chunk {
                q = q.bind(*id).bind(f.evidence.get()).bind(f.title.as_str());
            }
            q.execute(self.conn()).await?;
        }
        for chunk in touched.chunks(CHUNK) {
            let rows: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, $1)", i + 2)).collect();
            let sql = format!(
                "INSERT INTO finding_sightings (finding_id, seen_at) VALUES {} \
                 ON CONFLICT (finding_id) DO UPDATE SET seen_at = excluded.seen_at",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(self.conn()).await?;
        }
        Ok(raised)
    }

    /// Raises a finding, or notes that an existing one was seen again
    /// (fresh evidence, `last_seen_at`; a resolved one opens again). Returns
    /// the finding and whether it is news: new, or opened again.
    pub async fn raise_finding(&mut self, ctx: &AuditCtx, new: &NewFinding) -> Result<(FindingRecord, bool)> {
        let now = ctx.at.as_millisecond();
        // Inserted unless it exists (also when another pass raised it a
        // moment ago); then it is an existing finding seen again.
        let mut created = None;
        self.insert_findings(ctx, &[new], |record| created = Some(record)).await?;
        if let Some(created) = created {
            return Ok((created, true));
        }
        let row = sqlx::query(select_findings!("WHERE dedup_key = $1"))
            .bind(&new.dedup_key)
            .fetch_one(self.conn())
            .await?;
        let current = finding(&row)?;
        let state = current.state.seen_again();
        let row = sqlx::query(
            "UPDATE findings SET state = $1, evidence = $2, title = $3, last_seen_at = $4, \
             resolved_at = CASE WHEN $1 = 'resolved' THEN resolved_at ELSE NULL END, \
             version = version + 1, updated_at = $4 WHERE id = $5 RETURNING *, \
             (SELECT seen_at FROM finding_sightings WHERE finding_id = findings.id) AS sighted_at",
        )
        .bind(state.code())
        .bind(new.evidence.get())
        .bind(&new.title)
        .bind(now)
        .bind(current.id)
        .fetch_one(self.conn())
        .await?;
        let updated = finding(&row)?;
        let reopened = current.state != state;
        if reopened {
            self.audit(
                ctx,
                Change {
                    action: "finding.reopen",
                    object_type: "finding",
                    object_id: Some(current.id.to_string()),
                    unit_id: current.unit_id.map(|u| u.0),
                    before: Some(serde_json::json!({"state": current.state})),
                    after: Some(serde_json::json!({"state": state, "evidence": new.evidence})),
                },
            )
            .await?;
        }
        Ok((updated, reopened))
    }

    /// Inserts findings not raised before, dozens per statement, records
    /// each in the audit chain as raised, whole, and hands each to
    /// `created` (one at a time: a first pass raises thousands, each with
    /// kilobytes of evidence). Returns those whose key turned out to be
    /// taken (a concurrent pass raised it a moment ago), for the caller to
    /// treat as seen again.
    async fn insert_findings<'f>(
        &mut self,
        ctx: &AuditCtx,
        new: &[&'f NewFinding],
        mut created: impl FnMut(FindingRecord),
    ) -> Result<Vec<&'f NewFinding>> {
        /// Bound per finding; `$1` is the time, shared.
        const PER_ROW: usize = 8;
        let now = ctx.at.as_millisecond();
        let mut conflicted = Vec::new();
        for chunk in new.chunks(rows_per_statement(PER_ROW)) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = 2 + i * PER_ROW;
                    format!(
                        "(${b}, 'open', ${}, ${}, ${}, ${}, ${}, ${}, ${}, $1, $1, 1, $1, $1)",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO findings (kind, state, unit_id, system_id, resource_id, platform_id, title, evidence, \
                 dedup_key, first_seen_at, last_seen_at, version, created_at, updated_at) VALUES {} \
                 ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for f in chunk {
                q = q
                    .bind(f.kind.code())
                    .bind(f.unit.map(|u| u.0))
                    .bind(f.system.map(|s| s.0))
                    .bind(f.resource)
                    .bind(f.platform.map(|p| p.0))
                    .bind(f.title.as_str())
                    .bind(f.evidence.get())
                    .bind(f.dedup_key.as_str());
            }
            let mut ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            for row in q.fetch_all(self.conn()).await? {
                ids.insert(row.try_get("dedup_key")?, row.try_get("id")?);
            }
            let mut changes = Vec::with_capacity(ids.len());
            for f in chunk {
                let Some(&id) = ids.get(&f.dedup_key) else {
                    conflicted.push(*f);
                    continue;
                };
                // What the row now holds, as `finding` would read it back.
                let record = FindingRecord {
                    id,
                    kind: f.kind,
                    state: FindingState::Open,
                    unit_id: f.unit,
                    system_id: f.system,
                    resource_id: f.resource,
                    platform_id: f.platform,
                    title: f.title.clone(),
                    evidence: serde_json::from_str(f.evidence.get())?,
                    first_seen_at: At::from_millis(now),
                    last_seen_at: At::from_millis(now),
                    resolved_at: None,
                    review_comment: None,
                    reviewed_at: None,
                    version: 1,
                };
                changes.push(Change::created(
                    "finding.raise",
                    "finding",
                    id,
                    record.unit_id.map(|u| u.0),
                    &record,
                )?);
                created(record);
            }
            if !changes.is_empty() {
                self.audit_all(ctx, changes).await?;
            }
        }
        Ok(conflicted)
    }

    pub async fn finding_for_update(&mut self, id: i64) -> Result<Option<FindingRecord>> {
        let row = sqlx::query(select_findings!("WHERE id = $1")).bind(id).fetch_optional(self.conn()).await?;
        row.as_ref().map(finding).transpose()
    }

    /// Every open finding of `kind`, to resolve those not seen again.
    /// The ids and dedup keys of every open finding of `kind`: what an
    /// analysis pass checks against what it found, reading the whole
    /// finding (evidence and all) only for those it resolves.
    pub async fn open_finding_keys(&mut self, kind: FindingKind) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(OPEN_FINDING_KEYS).bind(kind.code()).fetch_all(self.conn()).await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("dedup_key")?))).collect()
    }

    /// The open findings of `kind` about `platform`, to resolve those not
    /// seen again.
    pub async fn open_findings_on(
        &mut self,
        kind: FindingKind,
        platform: PlatformId,
    ) -> Result<Vec<FindingRecord>> {
        let rows = sqlx::query(select_findings!(
            "WHERE kind = $1 AND platform_id = $2 AND state = 'open' ORDER BY id"
        ))
        .bind(kind.code())
        .bind(platform.0)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(finding).collect()
    }

    /// Marks a finding resolved: what was found is gone.
    pub async fn resolve_finding(
        &mut self,
        ctx: &AuditCtx,
        current: &FindingRecord,
        why: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE findings SET state = 'resolved', resolved_at = $1, version = version + 1, updated_at = $1 \
             WHERE id = $2 AND version = $3",
        )
        .bind(ctx.at.as_millisecond())
        .bind(current.id)
        .bind(current.version)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("finding {} changed meanwhile", current.id)));
        }
        self.audit(
            ctx,
            Change {
                action: "finding.resolve",
                object_type: "finding",
                object_id: Some(current.id.to_string()),
                unit_id: current.unit_id.map(|u| u.0),
                before: Some(serde_json::json!({"state": current.state})),
                after: Some(serde_json::json!({"state": "resolved", "why": why})),
            },
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On SQLite a finding's `dedup_key` lies after its evidence (≈ 10 KB,
    /// in overflow pages): read from the table, every open finding's
    /// evidence would be walked each hour.
    #[tokio::test]
    async fn the_open_findings_keys_are_read_from_an_index_alone_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("yunzhi-open-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let url = format!("sqlite://{}", dir.join("plan.db").display());
        let store = crate::Store::open_and_migrate(&url).await.expect("migrated");
        let sql = format!("EXPLAIN QUERY PLAN {}", OPEN_FINDING_KEYS.replace("$1", "'zombie'"));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&store.read).await.expect("a plan");
        let plan: Vec<String> =
            rows.iter().map(|r| r.try_get::<String, _>("detail").expect("detail")).collect();
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();
        assert!(plan.iter().any(|d| d.contains("COVERING INDEX findings_open_keys")), "{plan:?}");
    }
}
