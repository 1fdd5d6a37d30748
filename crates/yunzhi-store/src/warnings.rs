//! Warnings to units (Art. 14), and the office's review of findings that
//! issues them. A warning keeps its whole history: every step, by whom,
//! when, with what comment.

use jiff::civil::Date;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::Scope;
use yunzhi_domain::clock::At;
use yunzhi_domain::finding::FindingState;
use yunzhi_domain::ids::{SystemId, UnitId};
use yunzhi_domain::warning::{Answer, WarningState};

use crate::audit::{AuditCtx, Change};
use crate::findings::FindingRecord;
use crate::page::{Page, PageRequest};
use crate::{Result, Store, StoreError, Tx, scope_param};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WarningRecord {
    pub id: i64,
    pub finding_id: i64,
    #[schema(value_type = i64)]
    pub unit_id: UnitId,
    #[schema(value_type = Option<i64>)]
    pub system_id: Option<SystemId>,
    pub resource_id: Option<i64>,
    #[schema(value_type = String)]
    pub state: WarningState,
    pub title: String,
    /// What the unit must do.
    pub requirement: String,
    #[schema(value_type = String, format = Date)]
    pub deadline: Date,
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: At,
    #[schema(value_type = Option<String>)]
    pub answer: Option<Answer>,
    pub answer_comment: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<At>,
    /// Every step: `{"step", "by", "at", "comment", ...}`.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<serde_json::Value>,
    pub version: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("warnings.{what}: {e}"))
}

fn warning(row: &AnyRow) -> Result<WarningRecord> {
    let deadline: String = row.try_get("deadline")?;
    let answer: Option<String> = row.try_get("answer")?;
    let history: String = row.try_get("history")?;
    Ok(WarningRecord {
        id: row.try_get("id")?,
        finding_id: row.try_get("finding_id")?,
        unit_id: UnitId(row.try_get("unit_id")?),
        system_id: row.try_get::<Option<i64>, _>("system_id")?.map(SystemId),
        resource_id: row.try_get("resource_id")?,
        state: WarningState::parse("state", &row.try_get::<String, _>("state")?)
            .map_err(|e| corrupt("state", e.detail))?,
        title: row.try_get("title")?,
        requirement: row.try_get("requirement")?,
        deadline: deadline.parse().map_err(|e| corrupt("deadline", e))?,
        issued_at: At::from_millis(row.try_get("issued_at")?),
        answer: answer
            .map(|a| Answer::parse("answer", &a))
            .transpose()
            .map_err(|e| corrupt("answer", e.detail))?,
        answer_comment: row.try_get("answer_comment")?,
        answered_at: row.try_get::<Option<i64>, _>("answered_at")?.map(At::from_millis),
        history: serde_json::from_str(&history).map_err(|e| corrupt("history", e))?,
        version: row.try_get("version")?,
    })
}

#[derive(Debug, Clone, Default)]
pub struct WarningFilter {
    pub state: Option<WarningState>,
}

/// What a step changes of a warning.
pub struct WarningChange<'a> {
    pub state: WarningState,
    /// Set when the unit answers.
    pub answer: Option<(Answer, &'a str)>,
    /// The history entry of this step.
    pub event: serde_json::Value,
}

impl Store {
    pub async fn warnings(
        &self,
        scope: Scope,
        filter: &WarningFilter,
        page: PageRequest,
    ) -> Result<Page<WarningRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM warnings WHERE id > $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR state = $3) ORDER BY id LIMIT $4",
        )
        .bind(page.after)
        .bind(scope_param(scope))
        .bind(filter.state.map(|s| s.code()))
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(warning).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |w| w.id))
    }

    pub async fn warning(&self, scope: Scope, id: i64) -> Result<Option<WarningRecord>> {
        let row = sqlx::query(
            "SELECT * FROM warnings WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)",
        )
        .bind(id)
        .bind(scope_param(scope))
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(warning).transpose()
    }

    /// The warning a confirmed finding became, if the caller may see it.
    pub async fn warning_of_finding(&self, scope: Scope, finding_id: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT id FROM warnings WHERE finding_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(finding_id)
        .bind(scope_param(scope))
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Warnings past their deadline still waiting (open, or answered), for
    /// the scheduler's check.
    pub async fn warnings_due(&self, today: Date) -> Result<Vec<WarningRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM warnings WHERE deadline < $1 AND state IN ('open', 'answered') \
             ORDER BY id",
        )
        .bind(today.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(warning).collect()
    }
}

impl Tx {
    /// The office's review of a finding: confirmed or dismissed, with its
    /// comment, audited; version-checked.
    pub async fn review_finding(
        &mut self,
        ctx: &AuditCtx,
        current: &FindingRecord,
        decision: FindingState,
        comment: &str,
    ) -> Result<FindingRecord> {
        let row = sqlx::query(
            "UPDATE findings SET state = $1, reviewed_by = $2, review_comment = $3, reviewed_at = $4, \
             version = version + 1, updated_at = $4 WHERE id = $5 AND version = $6 AND state = 'open' RETURNING *, \
             (SELECT seen_at FROM finding_sightings WHERE finding_id = findings.id) AS sighted_at",
        )
        .bind(decision.code())
        .bind(ctx.actor_id)
        .bind(comment)
        .bind(ctx.at.as_millisecond())
        .bind(current.id)
        .bind(current.version)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("finding {} was reviewed or changed meanwhile", current.id)))?;
        let updated = crate::findings::finding(&row)?;
        self.audit(
            ctx,
            Change {
                action: "finding.review",
                object_type: "finding",
                object_id: Some(current.id.to_string()),
                unit_id: current.unit_id.map(|u| u.0),
                before: Some(serde_json::json!({"state": current.state})),
                after: Some(serde_json::json!({"state": updated.state, "comment": comment})),
            },
        )
        .await?;
        Ok(updated)
    }

    /// Issues the warning of a confirmed finding to its unit, audited.
    pub async fn create_warning(
        &mut self,
        ctx: &AuditCtx,
        finding: &FindingRecord,
        unit: UnitId,
        requirement: &str,
        deadline: Date,
    ) -> Result<WarningRecord> {
        let now = ctx.at.as_millisecond();
        let history = serde_json::json!([{
            "step": "issued", "by": ctx.actor, "at": At(ctx.at), "deadline": deadline.to_string(),
        }]);
        let row = sqlx::query(
            "INSERT INTO warnings (finding_id, unit_id, system_id, resource_id, state, title, requirement, deadline, \
             issued_by, issued_at, history, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, 1, $9, $9) RETURNING *",
        )
        .bind(finding.id)
        .bind(unit.0)
        .bind(finding.system_id.map(|s| s.0))
        .bind(finding.resource_id)
        .bind(&finding.title)
        .bind(requirement)
        .bind(deadline.to_string())
        .bind(ctx.actor_id)
        .bind(now)
        .bind(history.to_string())
        .fetch_one(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["finding_id"]))?;
        let created = warning(&row)?;
        self.audit(ctx, Change::created("warning.issue", "warning", created.id, Some(unit.0), &created)?)
            .await?;
        Ok(created)
    }

    pub async fn warning_for_update(&mut self, id: i64) -> Result<Option<WarningRecord>> {
        let row =
            sqlx::query("SELECT * FROM warnings WHERE id = $1").bind(id).fetch_optional(self.conn()).await?;
        row.as_ref().map(warning).transpose()
    }

    /// Takes a step on a warning if nobody changed it since `current` was
    /// read: its new state, the answer if the unit answered, one more
    /// history entry; audited.
    pub async fn step_warning(
        &mut self,
        ctx: &AuditCtx,
        current: &WarningRecord,
        change: &WarningChange<'_>,
    ) -> Result<WarningRecord> {
        let mut history = current.history.clone();
        history.push(change.event.clone());
        let (answer, comment) = match change.answer {
            Some((a, c)) => (Some(a.code()), Some(c)),
            None => (current.answer.map(|a| a.code()), current.answer_comment.as_deref()),
        };
        let answered = if change.answer.is_some() {
            Some(ctx.at.as_millisecond())
        } else {
            current.answered_at.map(|a| a.0.as_millisecond())
        };
        let row = sqlx::query(
            "UPDATE warnings SET state = $1, answer = $2, answer_comment = $3, answered_at = $4, answered_by = \
             CASE WHEN $5 THEN $6 ELSE answered_by END, history = $7, version = version + 1, updated_at = $8 \
             WHERE id = $9 AND version = $10 RETURNING *",
        )
        .bind(change.state.code())
        .bind(answer)
        .bind(comment)
        .bind(answered)
        .bind(change.answer.is_some())
        .bind(ctx.actor_id)
        .bind(serde_json::Value::Array(history).to_string())
        .bind(ctx.at.as_millisecond())
        .bind(current.id)
        .bind(current.version)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("warning {} changed meanwhile", current.id)))?;
        let updated = warning(&row)?;
        self.audit(
            ctx,
            Change {
                action: "warning.step",
                object_type: "warning",
                object_id: Some(current.id.to_string()),
                unit_id: Some(current.unit_id.0),
                before: Some(serde_json::json!({"state": current.state})),
                after: Some(serde_json::json!({"state": updated.state, "event": change.event})),
            },
        )
        .await?;
        Ok(updated)
    }
}
