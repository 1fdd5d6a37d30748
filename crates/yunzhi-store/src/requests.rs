//! Requests, their decisions and versions.

use jiff::civil::Date;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::Scope;
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::{SystemId, UnitId};
use yunzhi_domain::request::{Decision, Demand, RequestDraft, RequestKind, RequestState};
use yunzhi_domain::role::Role;

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::{Result, Store, StoreError, Tx, scope_param};

/// One decision on a request.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct StepRecord {
    pub round: i64,
    pub step: i64,
    #[schema(value_type = String)]
    pub role: Role,
    #[schema(value_type = String)]
    pub decision: Decision,
    pub comment: String,
    pub decided_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: At,
}

/// One submitted version of a request's content.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct VersionRecord {
    pub round: i64,
    #[schema(value_type = Object)]
    pub content: RequestDraft,
    pub submitted_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: At,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RequestRecord {
    pub id: i64,
    #[schema(value_type = i64)]
    pub unit_id: UnitId,
    #[schema(value_type = i64)]
    pub system_id: SystemId,
    #[schema(value_type = String)]
    pub kind: RequestKind,
    #[schema(value_type = String)]
    pub state: RequestState,
    pub round: i64,
    /// The index in `route` of the step whose turn it is.
    pub step: i64,
    #[schema(value_type = Vec<String>)]
    pub route: Vec<Role>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub content: RequestDraft,
    /// An expansion beyond the 120 % limit, flagged in reports (Art. 10).
    pub exception: bool,
    #[schema(value_type = Object)]
    pub demand: Demand,
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: At,
    #[schema(value_type = String, format = Date)]
    pub due_on: Date,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub approved_at: Option<At>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<At>,
    pub version: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    /// Every decision, oldest first.
    pub steps: Vec<StepRecord>,
}

impl RequestRecord {
    /// The role whose turn it is, while the request is in review.
    pub fn turn(&self) -> Option<Role> {
        (self.state == RequestState::InReview).then(|| self.route.get(self.step as usize).copied()).flatten()
    }
}

/// What a list of requests may be narrowed to.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub system: Option<SystemId>,
    pub state: Option<RequestState>,
    pub kind: Option<RequestKind>,
    /// Only requests waiting for this role's decision.
    pub turn: Option<Role>,
}

fn corrupt<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::corrupt(format!("requests.{what}: {e}"))
}

fn roles(text: &str) -> Result<Vec<Role>> {
    text.split(',').map(|r| Role::parse("route", r).map_err(corrupt("route"))).collect()
}

fn request(row: &AnyRow, steps: Vec<StepRecord>) -> Result<RequestRecord> {
    let content: String = row.try_get("content")?;
    let due: String = row.try_get("due_on")?;
    Ok(RequestRecord {
        id: row.try_get("id")?,
        unit_id: UnitId(row.try_get("unit_id")?),
        system_id: SystemId(row.try_get("system_id")?),
        kind: RequestKind::parse("kind", &row.try_get::<String, _>("kind")?).map_err(corrupt("kind"))?,
        state: RequestState::parse("state", &row.try_get::<String, _>("state")?).map_err(corrupt("state"))?,
        round: row.try_get("round")?,
        step: row.try_get("step")?,
        route: roles(&row.try_get::<String, _>("route")?)?,
        content: serde_json::from_str(&content)?,
        exception: row.try_get::<i64, _>("exception")? != 0,
        demand: Demand {
            vcpu: row.try_get::<i64, _>("demand_vcpu")? as u64,
            memory_gib: row.try_get::<i64, _>("demand_memory_gib")? as u64,
            storage_gib: row.try_get::<i64, _>("demand_storage_gib")? as u64,
        },
        submitted_at: At::from_millis(row.try_get("submitted_at")?),
        due_on: due.parse().map_err(corrupt("due_on"))?,
        approved_at: row.try_get::<Option<i64>, _>("approved_at")?.map(At::from_millis),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(At::from_millis),
        version: row.try_get("version")?,
        created_at: At::from_millis(row.try_get("created_at")?),
        steps,
    })
}

fn step(row: &AnyRow) -> Result<(i64, StepRecord)> {
    Ok((
        row.try_get("request_id")?,
        StepRecord {
            round: row.try_get("round")?,
            step: row.try_get("step")?,
            role: Role::parse("role", &row.try_get::<String, _>("role")?).map_err(corrupt("role"))?,
            decision: Decision::parse("decision", &row.try_get::<String, _>("decision")?)
                .map_err(corrupt("decision"))?,
            comment: row.try_get("comment")?,
            decided_by: row.try_get("decided_by_name")?,
            decided_at: At::from_millis(row.try_get("decided_at")?),
        },
    ))
}

async fn steps_of<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    e: E,
    ids: &[i64],
) -> Result<Vec<(i64, StepRecord)>> {
    let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) else { return Ok(vec![]) };
    let rows = sqlx::query(
        "SELECT * FROM request_steps WHERE request_id >= $1 AND request_id <= $2 ORDER BY request_id, id",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(e)
    .await?;
    rows.iter().map(step).filter(|r| r.as_ref().map_or(true, |(id, _)| ids.contains(id))).collect()
}

fn with_steps(rows: &[AnyRow], mut steps: Vec<(i64, StepRecord)>) -> Result<Vec<RequestRecord>> {
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            let mine: Vec<StepRecord> = steps.extract_if(.., |(rid, _)| *rid == id).map(|(_, s)| s).collect();
            request(row, mine)
        })
        .collect()
}

fn route_text(route: &[Role]) -> String {
    route.iter().map(|r| r.code()).collect::<Vec<_>>().join(",")
}

const LIST: &str = "SELECT * FROM requests WHERE id > $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) \
     AND (CAST($3 AS BIGINT) IS NULL OR system_id = $3) AND (CAST($4 AS TEXT) IS NULL OR state = $4) \
     AND (CAST($5 AS TEXT) IS NULL OR kind = $5) ORDER BY id LIMIT $6";

/// Held by a system (`$1`): its live resources plus its requests in flight,
/// leaving out request `$2`. Cast, since PostgreSQL sums BIGINT as NUMERIC.
fn in_use_sql() -> String {
    let class = |resource_col: &str, request_col: &str| {
        format!(
            "CAST(COALESCE((SELECT SUM({resource_col}) FROM resources WHERE system_id = $1 AND state <> 'reclaimed'), 0) \
             + COALESCE((SELECT SUM({request_col}) FROM requests WHERE system_id = $1 AND id <> $2 \
             AND state IN ('in_review', 'returned', 'approved') AND kind IN ('new', 'expansion', 'temporary')), 0) \
             AS BIGINT) AS {resource_col}"
        )
    };
    format!(
        "SELECT {}, {}, {}",
        class("vcpu", "demand_vcpu"),
        class("memory_gib", "demand_memory_gib"),
        class("storage_gib", "demand_storage_gib")
    )
}

fn demand_row(row: &AnyRow) -> Result<Demand> {
    let get = |c: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(c)?.max(0) as u64) };
    Ok(Demand { vcpu: get("vcpu")?, memory_gib: get("memory_gib")?, storage_gib: get("storage_gib")? })
}

impl Store {
    pub async fn requests(
        &self,
        scope: Scope,
        filter: &RequestFilter,
        page: PageRequest,
    ) -> Result<Page<RequestRecord>> {
        // The turn filter is applied after loading: the route is a short list per row.
        let mut out = Vec::new();
        let mut after = page.after;
        loop {
            let rows = sqlx::query(LIST)
                .bind(after)
                .bind(scope_param(scope))
                .bind(filter.system.map(|s| s.0))
                .bind(filter.state.map(|s| s.code()))
                .bind(filter.kind.map(|k| k.code()))
                .bind(page.fetch())
                .fetch_all(&self.read)
                .await?;
            let exhausted = (rows.len() as i64) < page.fetch();
            let ids: Vec<i64> =
                rows.iter().map(|r| r.try_get("id")).collect::<std::result::Result<_, _>>()?;
            after = ids.last().copied().unwrap_or(after);
            let steps = steps_of(&self.read, &ids).await?;
            let records = with_steps(&rows, steps)?;
            out.extend(records.into_iter().filter(|r| filter.turn.is_none_or(|t| r.turn() == Some(t))));
            if exhausted || out.len() > page.limit as usize {
                break;
            }
        }
        Ok(Page::from_rows(out, page, |r| r.id))
    }

    /// Every request matching `filter` in `scope`, page after page
    /// (the scheduler's and the overdue list's whole view).
    pub async fn requests_all(&self, scope: Scope, filter: &RequestFilter) -> Result<Vec<RequestRecord>> {
        let mut all = Vec::new();
        let mut page = PageRequest { after: 0, limit: 500 };
        loop {
            let p = self.requests(scope, filter, page).await?;
            all.extend(p.items);
            match p.next_cursor.and_then(|c| c.parse().ok()) {
                Some(after) => page.after = after,
                None => return Ok(all),
            }
        }
    }

    pub async fn request(&self, scope: Scope, id: i64) -> Result<Option<RequestRecord>> {
        let row = sqlx::query(
            "SELECT * FROM requests WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)",
        )
        .bind(id)
        .bind(scope_param(scope))
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let steps = steps_of(&self.read, &[id]).await?;
        Ok(with_steps(std::slice::from_ref(&row), steps)?.pop())
    }

    pub async fn request_versions(&self, request: i64) -> Result<Vec<VersionRecord>> {
        let rows = sqlx::query("SELECT * FROM request_versions WHERE request_id = $1 ORDER BY round")
            .bind(request)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let content: String = r.try_get("content")?;
                Ok(VersionRecord {
                    round: r.try_get("round")?,
                    content: serde_json::from_str(&content)?,
                    submitted_by: r.try_get("submitted_by_name")?,
                    submitted_at: At::from_millis(r.try_get("submitted_at")?),
                })
            })
            .collect()
    }

    /// What a system holds: live resources plus requests in flight.
    pub async fn quota_in_use(&self, system: SystemId) -> Result<Demand> {
        let row = sqlx::query(sqlx::AssertSqlSafe(in_use_sql()))
            .bind(system.0)
            .bind(0i64)
            .fetch_one(&self.read)
            .await?;
        demand_row(&row)
    }
}

/// A request about to be stored.
pub struct NewRequest<'a> {
    pub unit: UnitId,
    pub draft: &'a RequestDraft,
    pub route: &'a [Role],
    pub exception: bool,
    pub demand: Demand,
    pub due_on: Date,
}

impl Tx {
    /// Takes the system's row lock, so that two requests of one system check
    /// their quota one after the other (PostgreSQL; SQLite has one writer).
    pub async fn lock_system(&mut self, system: SystemId) -> Result<()> {
        sqlx::query("UPDATE systems SET version = version WHERE id = $1")
            .bind(system.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// What the system holds, inside this transaction, leaving out `except`.
    pub async fn quota_in_use(&mut self, system: SystemId, except: i64) -> Result<Demand> {
        let row = sqlx::query(sqlx::AssertSqlSafe(in_use_sql()))
            .bind(system.0)
            .bind(except)
            .fetch_one(self.conn())
            .await?;
        demand_row(&row)
    }

    pub async fn create_request(&mut self, ctx: &AuditCtx, new: &NewRequest<'_>) -> Result<RequestRecord> {
        let now = ctx.at.as_millisecond();
        let content = serde_json::to_string(new.draft)?;
        let row = sqlx::query(
            "INSERT INTO requests (unit_id, system_id, kind, state, round, step, route, content, exception, demand_vcpu, \
             demand_memory_gib, demand_storage_gib, submitted_at, due_on, created_by, version, created_at, updated_at) \
             VALUES ($1, $2, $3, 'in_review', 1, 0, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $10, $10) RETURNING *",
        )
        .bind(new.unit.0)
        .bind(new.draft.system_id)
        .bind(new.draft.kind.code())
        .bind(route_text(new.route))
        .bind(&content)
        .bind(crate::flag(new.exception))
        .bind(new.demand.vcpu as i64)
        .bind(new.demand.memory_gib as i64)
        .bind(new.demand.storage_gib as i64)
        .bind(now)
        .bind(new.due_on.to_string())
        .bind(ctx.actor_id.unwrap_or(0))
        .fetch_one(self.conn())
        .await?;
        let created = request(&row, vec![])?;
        self.insert_version(ctx, created.id, 1, &content).await?;
        for r in &new.draft.resource_ids {
            sqlx::query("INSERT INTO request_resources (request_id, resource_id) VALUES ($1, $2)")
                .bind(created.id)
                .bind(r)
                .execute(self.conn())
                .await?;
        }
        self.audit(
            ctx,
            Change::created("request.submit", "request", created.id, Some(created.unit_id.0), &created)?,
        )
        .await?;
        Ok(created)
    }

    async fn insert_version(
        &mut self,
        ctx: &AuditCtx,
        request: i64,
        round: i64,
        content: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO request_versions (request_id, round, content, submitted_by, submitted_by_name, submitted_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(request)
        .bind(round)
        .bind(content)
        .bind(ctx.actor_id.unwrap_or(0))
        .bind(&ctx.actor)
        .bind(ctx.at.as_millisecond())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A request read inside this transaction, for a read-modify-write.
    pub async fn request(&mut self, scope: Scope, id: i64) -> Result<Option<RequestRecord>> {
        let row = sqlx::query(
            "SELECT * FROM requests WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)",
        )
        .bind(id)
        .bind(scope_param(scope))
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let steps = steps_of(self.conn(), &[id]).await?;
        Ok(with_steps(std::slice::from_ref(&row), steps)?.pop())
    }

    /// Writes the request's new state if nobody changed it since `current`
    /// was read, and returns it as it now is.
    #[expect(clippy::too_many_arguments, reason = "one statement sets each of these columns")]
    async fn move_request(
        &mut self,
        current: &RequestRecord,
        state: RequestState,
        step: i64,
        due_on: Date,
        approved_at: Option<i64>,
        finished_at: Option<i64>,
        now: i64,
    ) -> Result<RequestRecord> {
        let done = sqlx::query(
            "UPDATE requests SET state = $1, step = $2, due_on = $3, approved_at = COALESCE($4, approved_at), \
             finished_at = COALESCE($5, finished_at), version = version + 1, updated_at = $6 \
             WHERE id = $7 AND version = $8",
        )
        .bind(state.code())
        .bind(step)
        .bind(due_on.to_string())
        .bind(approved_at)
        .bind(finished_at)
        .bind(now)
        .bind(current.id)
        .bind(current.version)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "request {} was decided or changed by someone else meanwhile; reload it",
                current.id
            )));
        }
        self.request(Scope::AllUnits, current.id)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("request {} disappeared", current.id)))
    }

    /// Records a decision and moves the request on. The unique step of the
    /// round and the version check make a racing second decision fail with
    /// a conflict rather than count twice.
    #[expect(clippy::too_many_arguments, reason = "a decision has this many parts")]
    pub async fn decide_request(
        &mut self,
        ctx: &AuditCtx,
        current: &RequestRecord,
        role: Role,
        decision: Decision,
        comment: &str,
        state: RequestState,
        step: i64,
        due_on: Date,
    ) -> Result<RequestRecord> {
        let now = ctx.at.as_millisecond();
        sqlx::query(
            "INSERT INTO request_steps (request_id, round, step, role, decision, comment, decided_by, decided_by_name, \
             decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(current.id)
        .bind(current.round)
        .bind(current.step)
        .bind(role.code())
        .bind(decision.code())
        .bind(comment)
        .bind(ctx.actor_id.unwrap_or(0))
        .bind(&ctx.actor)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(|e| match StoreError::unique(e, &["request_steps"]) {
            StoreError::Duplicate { .. } => {
                StoreError::Conflict(format!("this step of request {} has just been decided by someone else", current.id))
            }
            other => other,
        })?;
        let approved_at = (state == RequestState::Approved).then_some(now);
        let finished_at = (state == RequestState::Rejected).then_some(now);
        let updated = self.move_request(current, state, step, due_on, approved_at, finished_at, now).await?;
        let action = match decision {
            Decision::Approve => "request.approve",
            Decision::Reject => "request.reject",
            Decision::Return => "request.return",
        };
        self.audit(
            ctx,
            Change {
                action,
                object_type: "request",
                object_id: Some(current.id.to_string()),
                unit_id: Some(current.unit_id.0),
                before: Some(serde_json::json!({"state": current.state, "step": current.step, "round": current.round})),
                after: Some(serde_json::json!({"state": updated.state, "step": updated.step, "role": role, "comment": comment})),
            },
        )
        .await?;
        Ok(updated)
    }

    /// A returned request, edited and submitted again: a new round from the first step.
    #[expect(clippy::too_many_arguments, reason = "a resubmission replaces all of these")]
    pub async fn resubmit_request(
        &mut self,
        ctx: &AuditCtx,
        current: &RequestRecord,
        draft: &RequestDraft,
        route: &[Role],
        exception: bool,
        demand: Demand,
        due_on: Date,
    ) -> Result<RequestRecord> {
        let now = ctx.at.as_millisecond();
        let content = serde_json::to_string(draft)?;
        let done = sqlx::query(
            "UPDATE requests SET state = 'in_review', round = round + 1, step = 0, route = $1, content = $2, \
             exception = $3, demand_vcpu = $4, demand_memory_gib = $5, demand_storage_gib = $6, submitted_at = $7, \
             due_on = $8, version = version + 1, updated_at = $7 WHERE id = $9 AND version = $10",
        )
        .bind(route_text(route))
        .bind(&content)
        .bind(crate::flag(exception))
        .bind(demand.vcpu as i64)
        .bind(demand.memory_gib as i64)
        .bind(demand.storage_gib as i64)
        .bind(now)
        .bind(due_on.to_string())
        .bind(current.id)
        .bind(current.version)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("request {} changed meanwhile; reload it", current.id)));
        }
        self.insert_version(ctx, current.id, current.round + 1, &content).await?;
        sqlx::query("DELETE FROM request_resources WHERE request_id = $1")
            .bind(current.id)
            .execute(self.conn())
            .await?;
        for r in &draft.resource_ids {
            sqlx::query("INSERT INTO request_resources (request_id, resource_id) VALUES ($1, $2)")
                .bind(current.id)
                .bind(r)
                .execute(self.conn())
                .await?;
        }
        let updated = self
            .request(Scope::AllUnits, current.id)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("request {} disappeared", current.id)))?;
        self.audit(
            ctx,
            Change {
                action: "request.resubmit",
                object_type: "request",
                object_id: Some(current.id.to_string()),
                unit_id: Some(current.unit_id.0),
                before: Some(serde_json::to_value(&current.content)?),
                after: Some(serde_json::to_value(&updated.content)?),
            },
        )
        .await?;
        Ok(updated)
    }

    pub async fn withdraw_request(
        &mut self,
        ctx: &AuditCtx,
        current: &RequestRecord,
    ) -> Result<RequestRecord> {
        self.finish_request(ctx, current, RequestState::Withdrawn, "request.withdraw").await
    }

    /// Marks an approved request carried out.
    pub async fn fulfil_request(&mut self, ctx: &AuditCtx, current: &RequestRecord) -> Result<RequestRecord> {
        self.finish_request(ctx, current, RequestState::Fulfilled, "request.fulfil").await
    }

    /// Ends a request in `state` (withdrawn, fulfilled), audited as `action`.
    async fn finish_request(
        &mut self,
        ctx: &AuditCtx,
        current: &RequestRecord,
        state: RequestState,
        action: &str,
    ) -> Result<RequestRecord> {
        let now = ctx.at.as_millisecond();
        let updated =
            self.move_request(current, state, current.step, current.due_on, None, Some(now), now).await?;
        self.audit(
            ctx,
            Change {
                action,
                object_type: "request",
                object_id: Some(current.id.to_string()),
                unit_id: Some(current.unit_id.0),
                before: Some(serde_json::json!({"state": current.state})),
                after: Some(serde_json::json!({"state": updated.state})),
            },
        )
        .await?;
        Ok(updated)
    }
}
