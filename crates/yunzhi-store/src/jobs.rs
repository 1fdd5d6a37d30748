//! The job table: background work that must happen exactly once in effect
//! (provisioning, expiry, the monthly sync). A job is claimed with a lease,
//! so a worker that dies leaves it to be claimed again when the lease runs
//! out; `run` implementations must therefore be idempotent.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::JobId;

use crate::{Backend, Result, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    /// Jobs with the same key are one job: enqueuing it again is a no-op.
    pub dedup_key: Option<String>,
    pub payload: serde_json::Value,
    pub run_at: Timestamp,
    pub max_attempts: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobRecord {
    #[schema(value_type = i64)]
    pub id: JobId,
    pub kind: String,
    pub dedup_key: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// queued, running, done, failed, cancelled.
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    #[schema(value_type = String, format = DateTime)]
    pub run_at: At,
    pub last_error: Option<String>,
}

/// One attempt at a job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobAttempt {
    pub attempt: i64,
    pub worker: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: At,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<At>,
    /// running, done, failed, or abandoned (its worker died; another took over).
    pub outcome: String,
    pub error: Option<String>,
}

fn job(row: &AnyRow) -> Result<JobRecord> {
    let payload: String = row.try_get("payload")?;
    Ok(JobRecord {
        id: JobId(row.try_get("id")?),
        kind: row.try_get("kind")?,
        dedup_key: row.try_get("dedup_key")?,
        payload: serde_json::from_str(&payload)?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: At::from_millis(row.try_get("run_at")?),
        last_error: row.try_get("last_error")?,
    })
}

impl crate::Store {
    /// Jobs, newest last, optionally in one state: the Big Data Center's
    /// view of what runs, waits and failed.
    pub async fn jobs(
        &self,
        state: Option<&str>,
        page: crate::PageRequest,
    ) -> Result<crate::Page<JobRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR state = $2) ORDER BY id LIMIT $3",
        )
        .bind(page.after)
        .bind(state)
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
        Ok(crate::Page::from_rows(items, page, |j| j.id.0))
    }
}

impl crate::Store {
    /// Every attempt at job `id`, first first.
    pub async fn job_attempts(&self, id: JobId) -> Result<Vec<JobAttempt>> {
        let rows = sqlx::query("SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY attempt")
            .bind(id.0)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(JobAttempt {
                    attempt: r.try_get("attempt")?,
                    worker: r.try_get("worker")?,
                    started_at: At::from_millis(r.try_get("started_at")?),
                    finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(At::from_millis),
                    outcome: r.try_get("outcome")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    /// How many jobs are due or running now: the demo clock waits for them.
    pub async fn busy_jobs(&self, now: Timestamp) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM jobs WHERE state = 'running' OR (state = 'queued' AND run_at <= $1)",
        )
        .bind(now.as_millisecond())
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get("n")?)
    }
}

impl Tx {
    /// The jobs of `kind` not yet carried out (waiting, running or failed).
    pub async fn unfinished_jobs(&mut self, kind: &str) -> Result<Vec<JobRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE kind = $1 AND state IN ('queued', 'running', 'failed') ORDER BY id",
        )
        .bind(kind)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(job).collect()
    }

    /// Forgets finished jobs (done or cancelled) last touched before
    /// `before`: the periodic reconciliations alone add hundreds a day.
    /// Failed jobs stay until someone retries or cancels them.
    pub async fn prune_jobs(&mut self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'cancelled') AND updated_at < $1")
            .bind(before.as_millisecond())
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// Keeps a running job's lease while its worker is alive, so a job that
    /// takes long is not taken over, and one whose worker died is, soon.
    pub async fn extend_job_lease(&mut self, id: JobId, worker: &str, until: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET locked_until = $1 WHERE id = $2 AND locked_by = $3 AND state = 'running'",
        )
        .bind(until.as_millisecond())
        .bind(id.0)
        .bind(worker)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn job(&mut self, id: JobId) -> Result<Option<JobRecord>> {
        let row =
            sqlx::query("SELECT * FROM jobs WHERE id = $1").bind(id.0).fetch_optional(self.conn()).await?;
        row.as_ref().map(job).transpose()
    }

    /// Puts a failed (or cancelled) job back in the queue for another round
    /// of attempts, at once. Audited by the caller's context.
    pub async fn retry_job(&mut self, ctx: &crate::AuditCtx, current: &JobRecord) -> Result<JobRecord> {
        let row = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1 WHERE id = $2 \
             AND state IN ('failed', 'cancelled') RETURNING *",
        )
        .bind(ctx.at.as_millisecond())
        .bind(current.id.0)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| {
            StoreError::Conflict(format!("job {} is {}, not failed or cancelled", current.id, current.state))
        })?;
        let updated = job(&row)?;
        self.audit_job(ctx, "job.retry", current, &updated).await?;
        Ok(updated)
    }

    /// Stops a job that has not finished; it is not attempted again.
    pub async fn cancel_job(&mut self, ctx: &crate::AuditCtx, current: &JobRecord) -> Result<JobRecord> {
        let row = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', locked_by = NULL, locked_until = NULL, updated_at = $1 \
             WHERE id = $2 AND state IN ('queued', 'failed') RETURNING *",
        )
        .bind(ctx.at.as_millisecond())
        .bind(current.id.0)
        .fetch_optional(self.conn())
        .await?
        .ok_or_else(|| {
            StoreError::Conflict(format!(
                "job {} is {}; only a waiting or failed job is cancelled",
                current.id, current.state
            ))
        })?;
        let updated = job(&row)?;
        self.audit_job(ctx, "job.cancel", current, &updated).await?;
        Ok(updated)
    }

    async fn audit_job(
        &mut self,
        ctx: &crate::AuditCtx,
        action: &str,
        before: &JobRecord,
        after: &JobRecord,
    ) -> Result<()> {
        self.audit(
            ctx,
            crate::audit::Change {
                action,
                object_type: "job",
                object_id: Some(before.id.to_string()),
                unit_id: None,
                before: Some(serde_json::json!({"state": before.state, "attempts": before.attempts})),
                after: Some(serde_json::json!({"state": after.state, "attempts": after.attempts})),
            },
        )
        .await?;
        Ok(())
    }

    /// Enqueues a job in the caller's transaction, so the job exists exactly
    /// when the change that needs it does. Returns the existing job when the
    /// dedup key is taken.
    pub async fn enqueue_job(&mut self, new: &NewJob, now: Timestamp) -> Result<JobRecord> {
        // Two servers (or a tick and the demo clock) may enqueue the same
        // job at once: the insert yields to the one that got there first.
        let row = sqlx::query(
            "INSERT INTO jobs (kind, dedup_key, payload, state, attempts, max_attempts, run_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6) ON CONFLICT (dedup_key) DO NOTHING RETURNING *",
        )
        .bind(&new.kind)
        .bind(new.dedup_key.as_deref())
        .bind(new.payload.to_string())
        .bind(new.max_attempts)
        .bind(new.run_at.as_millisecond())
        .bind(now.as_millisecond())
        .fetch_optional(self.conn())
        .await?;
        if let Some(row) = row {
            return job(&row);
        }
        let existing = sqlx::query("SELECT * FROM jobs WHERE dedup_key = $1")
            .bind(new.dedup_key.as_deref())
            .fetch_one(self.conn())
            .await?;
        job(&existing)
    }

    /// Claims the next due job for `worker` for `lease`. A running job whose
    /// lease ran out (its worker died) is due again.
    pub async fn claim_job(
        &mut self,
        worker: &str,
        now: Timestamp,
        lease: SignedDuration,
    ) -> Result<Option<JobRecord>> {
        let pick = match self.backend {
            Backend::Postgres => {
                "SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until < $3) \
                 ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            }
            // One writer connection: the UPDATE below is atomic with its pick.
            Backend::Sqlite => {
                "SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until < $3) \
                 ORDER BY run_at, id LIMIT 1"
            }
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, locked_until = $2, updated_at = $3 \
             WHERE id = ({pick}) RETURNING *"
        );
        let until = now.checked_add(lease).unwrap_or(now);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(until.as_millisecond())
            .bind(now.as_millisecond())
            .fetch_optional(self.conn())
            .await?;
        let Some(claimed) = row.as_ref().map(job).transpose()? else { return Ok(None) };
        // An attempt still running is one whose worker died: the lease ran out.
        self.finish_attempt(
            claimed.id,
            None,
            "abandoned",
            Some("its worker stopped renewing the lease"),
            now,
        )
        .await?;
        // Numbered over the job's whole life: a retry by hand starts the
        // job's attempt count again, not its history.
        sqlx::query(
            "INSERT INTO job_attempts (job_id, attempt, worker, started_at, outcome) \
             SELECT $1, COALESCE(MAX(attempt), 0) + 1, $2, $3, 'running' FROM job_attempts WHERE job_id = $1",
        )
        .bind(claimed.id.0)
        .bind(worker)
        .bind(now.as_millisecond())
        .execute(self.conn())
        .await?;
        Ok(Some(claimed))
    }

    /// Ends the running attempt at job `id` (of `worker`, if given).
    async fn finish_attempt(
        &mut self,
        id: JobId,
        worker: Option<&str>,
        outcome: &str,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE job_attempts SET outcome = $1, error = $2, finished_at = $3 WHERE job_id = $4 AND outcome = 'running' \
             AND (CAST($5 AS TEXT) IS NULL OR worker = $5)",
        )
        .bind(outcome)
        .bind(error)
        .bind(now.as_millisecond())
        .bind(id.0)
        .bind(worker)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Marks the job done, if `worker` still holds it: a worker whose lease
    /// ran out (and whose job another took over) leaves the outcome to it.
    pub async fn complete_job(&mut self, id: JobId, worker: &str, now: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, updated_at = $1 \
             WHERE id = $2 AND locked_by = $3",
        )
        .bind(now.as_millisecond())
        .bind(id.0)
        .bind(worker)
        .execute(self.conn())
        .await?;
        // The job's row first, then its attempts: the order every writer
        // keeps, so two never wait on each other.
        if done.rows_affected() == 1 {
            self.finish_attempt(id, Some(worker), "done", None, now).await?;
        }
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or failed for good
    /// once its attempts are spent (then it shows in the failed-jobs list).
    pub async fn fail_job(
        &mut self,
        id: JobId,
        worker: &str,
        error: &str,
        now: Timestamp,
        retry_at: Timestamp,
    ) -> Result<()> {
        let failed = sqlx::query(
            "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
             run_at = $1, last_error = $2, locked_by = NULL, locked_until = NULL, updated_at = $3 \
             WHERE id = $4 AND locked_by = $5",
        )
        .bind(retry_at.as_millisecond())
        .bind(error)
        .bind(now.as_millisecond())
        .bind(id.0)
        .bind(worker)
        .execute(self.conn())
        .await?;
        if failed.rows_affected() == 1 {
            self.finish_attempt(id, Some(worker), "failed", Some(error), now).await?;
        }
        Ok(())
    }
}
