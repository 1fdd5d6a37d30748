//! Agents, enrolment codes and the hourly and daily rollups of what they
//! report.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::clock::At;
use yunzhi_domain::efficiency::DailyStats;
use yunzhi_domain::monitoring::Rollup;

use crate::audit::{AuditCtx, Change};
use crate::{Backend, CHUNK, Result, Store, StoreError, Tx, placeholders, rows_per_statement};

/// A host's agent as the server knows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AgentRecord {
    pub resource_id: i64,
    pub hostname: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: At,
    pub version: Option<String>,
    pub binary_sm3: Option<String>,
    pub boot_id: Option<String>,
    pub last_sequence: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_report_at: Option<At>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_sample_at: Option<At>,
    pub sequence_resets: i64,
    pub last_clock_skew_ms: Option<i64>,
    pub dropped_batches: i64,
}

fn agent(row: &AnyRow) -> Result<AgentRecord> {
    let at = |c: &str| -> Result<Option<At>> { Ok(row.try_get::<Option<i64>, _>(c)?.map(At::from_millis)) };
    Ok(AgentRecord {
        resource_id: row.try_get("resource_id")?,
        hostname: row.try_get("hostname")?,
        enrolled_at: At::from_millis(row.try_get("enrolled_at")?),
        version: row.try_get("version")?,
        binary_sm3: row.try_get("binary_sm3")?,
        boot_id: row.try_get("boot_id")?,
        last_sequence: row.try_get("last_sequence")?,
        last_report_at: at("last_report_at")?,
        last_sample_at: at("last_sample_at")?,
        sequence_resets: row.try_get("sequence_resets")?,
        last_clock_skew_ms: row.try_get("last_clock_skew_ms")?,
        dropped_batches: row.try_get("dropped_batches")?,
    })
}

/// What the analysis judges an agent by (`efficiency::agent_verdicts`):
/// the few columns of [`AgentRecord`] it reads every hour for every host.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSignals {
    pub resource_id: i64,
    pub last_report_at: Option<At>,
    pub binary_sm3: Option<String>,
    pub sequence_resets: i64,
    pub last_clock_skew_ms: Option<i64>,
}

/// Who enrols, with what.
pub struct Enrolment<'a> {
    pub resource_id: i64,
    pub credential_digest: &'a str,
    pub hostname: &'a str,
    pub machine_id: Option<&'a str>,
    pub version: &'a str,
    pub binary_sm3: &'a str,
}

/// Which rollup: by hour (key: epoch milliseconds of the hour's start) or
/// by day (key: `YYYY-MM-DD`, Beijing time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Hour,
    Day,
}

impl Span {
    fn table(self) -> &'static str {
        match self {
            Span::Hour => "metric_hourly",
            Span::Day => "metric_daily",
        }
    }

    fn key_column(self) -> &'static str {
        match self {
            Span::Hour => "hour",
            Span::Day => "day",
        }
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("{what}: {e}"))
}

/// A rollup row, every column of [`ROLLUP_COLUMNS`]. A NULL histogram (a
/// row written before memory and throughput had theirs) reads as an empty
/// one, a NULL least or most as none seen, a NULL time as unknown.
fn rollup(row: &AnyRow) -> Result<Rollup> {
    let hist = |column: &str, len: usize| -> Result<Vec<u64>> {
        match row.try_get::<Option<String>, _>(column)? {
            Some(text) => hist_from(&text, len).map_err(|e| corrupt(&format!("metric rollups.{column}"), e)),
            None => Ok(Vec::new()),
        }
    };
    let real = |column: &str, none: f64| -> Result<f64> {
        Ok(row.try_get::<Option<f64>, _>(column)?.unwrap_or(none))
    };
    use yunzhi_domain::monitoring::RATE_BUCKETS;
    let figures = rollup_figures(row)?;
    // A span with readings from before the time was kept has an unknown
    // time (NaN, which stays unknown when merged), not none.
    let seconds = real("seconds", if figures.samples > 0 { f64::NAN } else { 0.0 })?;
    Ok(Rollup {
        memory_min: real("memory_min", f64::INFINITY)?,
        memory_hist: hist("memory_hist", 101)?,
        seconds,
        net_min_bps: real("net_min_bps", f64::INFINITY)?,
        net_max_bps: real("net_max_bps", 0.0)?,
        net_hist: hist("net_hist", RATE_BUCKETS)?,
        disk_min_bps: real("disk_min_bps", f64::INFINITY)?,
        disk_max_bps: real("disk_max_bps", 0.0)?,
        disk_hist: hist("disk_hist", RATE_BUCKETS)?,
        ..figures
    })
}

/// The figures of a rollup row the efficiency rules judge a day by, and
/// no more (the analysis' first pass reads a whole fleet's window of them;
/// the other statistics are left empty). A NULL CPU histogram (left out by
/// a reader that has the day's stored p95 instead) reads as an empty one.
fn rollup_figures(row: &AnyRow) -> Result<Rollup> {
    let hist: Option<String> = row.try_get("cpu_hist")?;
    Ok(Rollup {
        samples: row.try_get::<i64, _>("samples")?.max(0) as u64,
        cpu_sum: row.try_get("cpu_sum")?,
        cpu_min: row.try_get("cpu_min")?,
        cpu_max: row.try_get("cpu_max")?,
        cpu_hist: match hist {
            Some(text) => hist_from(&text, 101).map_err(|e| corrupt("metric rollups.cpu_hist", e))?,
            None => Vec::new(),
        },
        memory_sum: row.try_get("memory_sum")?,
        memory_max: row.try_get("memory_max")?,
        net_bytes: row.try_get("net_bytes")?,
        disk_bytes: row.try_get("disk_bytes")?,
        sessions_max: row.try_get::<i64, _>("sessions_max")?.max(0) as u64,
        accepted: row.try_get::<Option<i64>, _>("accepted")?.map(|n| n.max(0) as u64),
        // Not read here: spelled out rather than taken from `Default`,
        // whose empty histograms would be allocated for every row.
        memory_min: f64::INFINITY,
        memory_hist: Vec::new(),
        seconds: 0.0,
        net_min_bps: f64::INFINITY,
        net_max_bps: 0.0,
        net_hist: Vec::new(),
        disk_min_bps: f64::INFINITY,
        disk_max_bps: 0.0,
        disk_hist: Vec::new(),
    })
}

/// A daily rollup row's day.
fn day_of(row: &AnyRow) -> Result<Date> {
    let day: String = row.try_get("day")?;
    day.parse().map_err(|e| corrupt("metric_daily.day", e))
}

const ROLLUP_COLUMNS: &str = "samples, cpu_sum, cpu_min, cpu_max, cpu_hist, memory_sum, memory_max, net_bytes, \
                              disk_bytes, sessions_max, memory_min, memory_hist, seconds, net_min_bps, net_max_bps, \
                              net_hist, disk_min_bps, disk_max_bps, disk_hist, accepted";

impl Store {
    pub async fn agent(&self, resource_id: i64) -> Result<Option<AgentRecord>> {
        let row = sqlx::query("SELECT * FROM agents WHERE resource_id = $1")
            .bind(resource_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(agent).transpose()
    }

    /// The resource whose agent holds the credential with this digest.
    pub async fn agent_by_credential(&self, digest: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT resource_id FROM agents WHERE credential_digest = $1")
            .bind(digest)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("resource_id")).transpose()?)
    }

    /// Every agent's [`AgentSignals`], for the analysis.
    pub async fn agent_signals(&self) -> Result<Vec<AgentSignals>> {
        let rows = sqlx::query(
            "SELECT resource_id, last_report_at, binary_sm3, sequence_resets, last_clock_skew_ms FROM agents",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AgentSignals {
                    resource_id: r.try_get("resource_id")?,
                    last_report_at: r.try_get::<Option<i64>, _>("last_report_at")?.map(At::from_millis),
                    binary_sm3: r.try_get("binary_sm3")?,
                    sequence_resets: r.try_get("sequence_resets")?,
                    last_clock_skew_ms: r.try_get("last_clock_skew_ms")?,
                })
            })
            .collect()
    }

    /// Every agent, whole, by resource.
    pub async fn agents_all(&self) -> Result<Vec<AgentRecord>> {
        let rows = sqlx::query("SELECT * FROM agents ORDER BY resource_id").fetch_all(&self.read).await?;
        rows.iter().map(agent).collect()
    }

    /// A host's daily rollups for days in `[from, to]`, oldest first.
    pub async fn daily_rollups(&self, resource_id: i64, from: Date, to: Date) -> Result<Vec<(Date, Rollup)>> {
        let sql = format!(
            "SELECT day, {ROLLUP_COLUMNS} FROM metric_daily WHERE resource_id = $1 AND day >= $2 AND day <= $3 ORDER BY day"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(resource_id)
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok((day_of(r)?, rollup(r)?))).collect()
    }

    /// Every host's daily rollups for days in `[from, to]`, histograms
    /// included: one read for the whole fleet. (The analysis reads only
    /// the figures it judges by: [`Store::each_fleet_daily_stats_changed`].)
    pub async fn fleet_daily_rollups(&self, from: Date, to: Date) -> Result<Vec<(i64, Date, Rollup)>> {
        let sql = format!(
            "SELECT resource_id, day, {ROLLUP_COLUMNS} FROM metric_daily WHERE day >= $1 AND day <= $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("resource_id")?, day_of(r)?, rollup(r)?))).collect()
    }

    /// The daily figures the efficiency rules judge by
    /// ([`DailyStats`]) of every host's days in `[from, to]` whose rollups
    /// were written at or after `since` (real time, ms), handed to `each`
    /// row by row as the database returns them. Returns how many.
    ///
    /// Reads the stored p95 rather than the histogram, and so only plain
    /// numbers: this is the read of the analysis' first pass after a
    /// start, a whole fleet's window at once. A row stored before the p95
    /// was kept has its histogram read instead.
    pub async fn each_fleet_daily_stats_changed(
        &self,
        since: i64,
        from: Date,
        to: Date,
        mut each: impl FnMut(i64, DailyStats),
    ) -> Result<usize> {
        use futures_util::TryStreamExt;
        // Which index answers depends on `since`: the whole window (the
        // first read) is a range of days; a later read is the few rows
        // written since, found by `changed_at`. PostgreSQL's statistics
        // tell it which; SQLite, without statistics and with the values
        // bound, takes the range of days every time, and so read a
        // 10,000-host window's 900,000 rows each hour to return 100.
        let table = match (since, self.backend) {
            (i64::MIN, _) | (_, Backend::Postgres) => "metric_daily",
            (_, Backend::Sqlite) => "metric_daily INDEXED BY metric_daily_changed",
        };
        let sql = format!(
            "SELECT resource_id, day, samples, cpu_sum, cpu_min, cpu_max, cpu_p95, memory_sum, memory_max, \
             net_bytes, disk_bytes, sessions_max, accepted, CASE WHEN cpu_p95 IS NULL THEN cpu_hist END AS cpu_hist \
             FROM {table} WHERE changed_at >= $1 AND day >= $2 AND day <= $3"
        );
        let (from, to) = (from.to_string(), to.to_string());
        let mut rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since).bind(&from).bind(&to).fetch(&self.read);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            let r = rollup_figures(&row)?;
            let day = day_of(&row)?;
            let stats = match row.try_get::<Option<f64>, _>("cpu_p95")? {
                Some(p95) => r.daily_stats_with_p95(day, p95),
                None => r.daily_stats(day),
            };
            each(row.try_get("resource_id")?, stats);
            n += 1;
        }
        Ok(n)
    }

    /// A host's hourly rollups for hours starting in `[from, to)`.
    pub async fn hourly_rollups(
        &self,
        resource_id: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Timestamp, Rollup)>> {
        let sql = format!(
            "SELECT hour, {ROLLUP_COLUMNS} FROM metric_hourly WHERE resource_id = $1 AND hour >= $2 AND hour < $3 \
             ORDER BY hour"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(resource_id)
            .bind(from.as_millisecond())
            .bind(to.as_millisecond())
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let hour: i64 = r.try_get("hour")?;
                let at = Timestamp::from_millisecond(hour).map_err(|e| corrupt("metric_hourly.hour", e))?;
                Ok((at, rollup(r)?))
            })
            .collect()
    }
}

impl Tx {
    /// Records a one-time enrolment code (its digest) for a host, audited.
    pub async fn create_enrollment_code(
        &mut self,
        ctx: &AuditCtx,
        resource_id: i64,
        unit_id: i64,
        code_digest: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_codes (code_digest, resource_id, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code_digest)
        .bind(resource_id)
        .bind(ctx.actor_id)
        .bind(ctx.at.as_millisecond())
        .bind(expires_at.as_millisecond())
        .execute(self.conn())
        .await?;
        self.audit(
            ctx,
            Change {
                action: "agent.enrollment_code",
                object_type: "resource",
                object_id: Some(resource_id.to_string()),
                unit_id: Some(unit_id),
                before: None,
                after: Some(serde_json::json!({"expires_at": At(expires_at)})),
            },
        )
        .await?;
        Ok(())
    }

    /// Uses up an enrolment code: the host it was for, if the code is
    /// known, unused and unexpired. A code works once.
    pub async fn use_enrollment_code(&mut self, code_digest: &str, now: Timestamp) -> Result<Option<i64>> {
        let row = sqlx::query(
            "UPDATE enrollment_codes SET used_at = $1 WHERE code_digest = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING resource_id",
        )
        .bind(now.as_millisecond())
        .bind(code_digest)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.map(|r| r.try_get("resource_id")).transpose()?)
    }

    /// Records a host's agent and its credential; enrolling again replaces
    /// the credential (the old one stops working) and starts the sequence
    /// over. Audited.
    pub async fn enroll_agent(
        &mut self,
        ctx: &AuditCtx,
        unit_id: i64,
        e: &Enrolment<'_>,
    ) -> Result<AgentRecord> {
        let row = sqlx::query(
            "INSERT INTO agents (resource_id, credential_digest, hostname, machine_id, enrolled_at, version, binary_sm3, \
             last_sequence, sequence_resets, dropped_batches) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 0) \
             ON CONFLICT (resource_id) DO UPDATE SET credential_digest = excluded.credential_digest, \
             hostname = excluded.hostname, machine_id = excluded.machine_id, enrolled_at = excluded.enrolled_at, \
             version = excluded.version, binary_sm3 = excluded.binary_sm3, last_sequence = 0, \
             sequence_resets = 0, last_clock_skew_ms = NULL RETURNING *",
        )
        .bind(e.resource_id)
        .bind(e.credential_digest)
        .bind(e.hostname)
        .bind(e.machine_id)
        .bind(ctx.at.as_millisecond())
        .bind(e.version)
        .bind(e.binary_sm3)
        .fetch_one(self.conn())
        .await?;
        let created = agent(&row)?;
        self.audit(
            ctx,
            Change {
                action: "agent.enroll",
                object_type: "resource",
                object_id: Some(e.resource_id.to_string()),
                unit_id: Some(unit_id),
                before: None,
                after: Some(serde_json::json!({
                    "hostname": e.hostname, "version": e.version, "binary_sm3": e.binary_sm3,
                })),
            },
        )
        .await?;
        Ok(created)
    }

    /// The record of a host fed by a sender without enrolment (Prometheus
    /// remote-write): no credential works for it (its placeholder is not a
    /// digest), no version or digest is claimed, so none is judged.
    pub async fn feed_record(&mut self, resource_id: i64, at: jiff::Timestamp) -> Result<AgentRecord> {
        let row = sqlx::query(
            "INSERT INTO agents (resource_id, credential_digest, enrolled_at, last_sequence, sequence_resets, \
             dropped_batches) VALUES ($1, $2, $3, 0, 0, 0) RETURNING *",
        )
        .bind(resource_id)
        .bind(format!("no-credential:{resource_id}"))
        .bind(at.as_millisecond())
        .fetch_one(self.conn())
        .await?;
        agent(&row)
    }

    /// The agents of `ids` (sorted, distinct), locked for this transaction
    /// on PostgreSQL in id order, so that two writers never wait on each
    /// other crosswise (SQLite has one writer): reports of one host are
    /// applied one after another.
    pub async fn agents_for_update(&mut self, ids: &[i64]) -> Result<Vec<AgentRecord>> {
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT * FROM agents WHERE resource_id IN ({}) ORDER BY resource_id{lock}",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(self.conn()).await? {
                out.push(agent(&row)?);
            }
        }
        Ok(out)
    }

    /// Writes what reports changed of their agents' records (taken with
    /// [`Tx::agents_for_update`] in this transaction): the sequence, the
    /// boot, the build, the times, the counts.
    pub async fn update_agents(&mut self, agents: &[AgentRecord]) -> Result<()> {
        const COLUMNS: usize = 10;
        for chunk in agents.chunks(rows_per_statement(COLUMNS)) {
            let rows: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS))).collect();
            // A VALUES list's columns are column1, column2, … on both backends.
            let sql = format!(
                "UPDATE agents SET last_sequence = v.column2, boot_id = v.column3, version = v.column4, \
                 binary_sm3 = v.column5, last_report_at = v.column6, last_sample_at = v.column7, \
                 sequence_resets = v.column8, last_clock_skew_ms = v.column9, dropped_batches = v.column10 \
                 FROM (VALUES {}) AS v WHERE agents.resource_id = v.column1",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in chunk {
                q = q
                    .bind(a.resource_id)
                    .bind(a.last_sequence)
                    .bind(a.boot_id.clone())
                    .bind(a.version.clone())
                    .bind(a.binary_sm3.clone())
                    .bind(a.last_report_at.map(|t| t.0.as_millisecond()))
                    .bind(a.last_sample_at.map(|t| t.0.as_millisecond()))
                    .bind(a.sequence_resets)
                    .bind(a.last_clock_skew_ms)
                    .bind(a.dropped_batches);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// The stored rollup of `resource_id` for `key` (an hour's start in epoch
    /// milliseconds, or a day `YYYY-MM-DD`), to merge new readings into.
    pub async fn rollup(&mut self, span: Span, resource_id: i64, key: &str) -> Result<Option<Rollup>> {
        let mut found = self.rollups(span, &[(resource_id, key.to_owned())]).await?;
        Ok(found.pop().map(|(_, _, r)| r))
    }

    /// The stored rollups of the `(resource, key)` pairs asked for (those
    /// that exist), in a few statements however many are asked for.
    pub async fn rollups(
        &mut self,
        span: Span,
        wanted: &[(i64, String)],
    ) -> Result<Vec<(i64, String, Rollup)>> {
        let (table, column) = (span.table(), span.key_column());
        let mut out = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(CHUNK) {
            // Hosts × keys covers the pairs (a group of reports spans an hour
            // or two); what was not asked for is dropped below.
            let mut ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut keys: Vec<&str> = chunk.iter().map(|(_, k)| k.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            let sql = format!(
                "SELECT resource_id, {column} AS key, {ROLLUP_COLUMNS} FROM {table} WHERE resource_id IN ({}) \
                 AND {column} IN ({})",
                placeholders(1, ids.len()),
                placeholders(ids.len() + 1, keys.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                q = q.bind(*id);
            }
            for k in &keys {
                q = bind_key(q, span, k)?;
            }
            let asked: std::collections::HashSet<(i64, &str)> =
                chunk.iter().map(|(id, k)| (*id, k.as_str())).collect();
            for row in q.fetch_all(self.conn()).await? {
                let id: i64 = row.try_get("resource_id")?;
                let key = match span {
                    Span::Hour => row.try_get::<i64, _>("key")?.to_string(),
                    Span::Day => row.try_get::<String, _>("key")?,
                };
                if asked.contains(&(id, key.as_str())) {
                    out.push((id, key, rollup(&row)?));
                }
            }
        }
        Ok(out)
    }

    /// Writes a rollup, replacing what was there.
    /// Sets when `day`'s daily rollups last changed (real time, ms), for
    /// rollups written after the fact — an import of history, the
    /// benchmark's generated fleet: stamped with the end of their day, as a
    /// server taking the readings as they came would have stamped them, a
    /// later analysis pass does not take them for news. Returns how many.
    pub async fn stamp_daily_changed(&mut self, day: Date, at_ms: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE metric_daily SET changed_at = $1 WHERE day = $2")
            .bind(at_ms)
            .bind(day.to_string())
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes the hourly rollups of hours starting before `hour_before`
    /// (epoch ms) and the daily ones of days before `day_before`; returns
    /// how many of each.
    pub async fn prune_rollups(&mut self, hour_before: i64, day_before: Date) -> Result<(u64, u64)> {
        let hours = sqlx::query("DELETE FROM metric_hourly WHERE hour < $1")
            .bind(hour_before)
            .execute(self.conn())
            .await?;
        let days = sqlx::query("DELETE FROM metric_daily WHERE day < $1")
            .bind(day_before.to_string())
            .execute(self.conn())
            .await?;
        Ok((hours.rows_affected(), days.rows_affected()))
    }

    pub async fn put_rollup(&mut self, span: Span, resource_id: i64, key: &str, r: &Rollup) -> Result<()> {
        self.put_rollups(span, &[(resource_id, key.to_owned(), r.clone())]).await
    }

    /// Writes rollups, replacing what was there, a few hundred per statement.
    /// A daily rollup is stamped with the real time of the write (not the
    /// demo's movable clock), for [`Store::each_fleet_daily_stats_changed`].
    pub async fn put_rollups(&mut self, span: Span, rollups: &[(i64, String, Rollup)]) -> Result<()> {
        let (table, column) = (span.table(), span.key_column());
        // A day also keeps its CPU p95 as a plain number, and when it changed.
        let (day_columns, day_set) = match span {
            Span::Day => {
                (", cpu_p95, changed_at", ", cpu_p95 = excluded.cpu_p95, changed_at = excluded.changed_at")
            }
            Span::Hour => ("", ""),
        };
        let columns = if span == Span::Day { 24 } else { 22 };
        let changed_at = Timestamp::now().as_millisecond();
        for chunk in rollups.chunks(rows_per_statement(columns)) {
            let rows: Vec<String> =
                (0..chunk.len()).map(|i| format!("({})", placeholders(i * columns + 1, columns))).collect();
            let sql = format!(
                "INSERT INTO {table} (resource_id, {column}, {ROLLUP_COLUMNS}{day_columns}) VALUES {} \
                 ON CONFLICT (resource_id, {column}) DO UPDATE SET samples = excluded.samples, \
                 cpu_sum = excluded.cpu_sum, cpu_min = excluded.cpu_min, cpu_max = excluded.cpu_max, \
                 cpu_hist = excluded.cpu_hist, memory_sum = excluded.memory_sum, memory_max = excluded.memory_max, \
                 net_bytes = excluded.net_bytes, disk_bytes = excluded.disk_bytes, \
                 sessions_max = excluded.sessions_max, memory_min = excluded.memory_min, \
                 memory_hist = excluded.memory_hist, seconds = excluded.seconds, net_min_bps = excluded.net_min_bps, \
                 net_max_bps = excluded.net_max_bps, net_hist = excluded.net_hist, \
                 disk_min_bps = excluded.disk_min_bps, disk_max_bps = excluded.disk_max_bps, \
                 disk_hist = excluded.disk_hist, accepted = excluded.accepted{day_set}",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (resource_id, key, r) in chunk {
                q = bind_key(q.bind(*resource_id), span, key)?
                    .bind(r.samples as i64)
                    .bind(r.cpu_sum)
                    .bind(if r.cpu_min.is_finite() { r.cpu_min } else { 0.0 })
                    .bind(r.cpu_max)
                    .bind(hist_text(&r.cpu_hist))
                    .bind(r.memory_sum)
                    .bind(r.memory_max)
                    .bind(r.net_bytes)
                    .bind(r.disk_bytes)
                    .bind(r.sessions_max as i64)
                    .bind(finite(r.memory_min))
                    .bind(hist_text(&r.memory_hist))
                    .bind(r.seconds)
                    .bind(finite(r.net_min_bps))
                    .bind(r.net_max_bps)
                    .bind(hist_text(&r.net_hist))
                    .bind(finite(r.disk_min_bps))
                    .bind(r.disk_max_bps)
                    .bind(hist_text(&r.disk_hist))
                    .bind(r.accepted.map(|n| i64::try_from(n).unwrap_or(i64::MAX)));
                if span == Span::Day {
                    q = q.bind(r.cpu_quantile(0.95)).bind(changed_at);
                }
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a rollup key: an hour as its epoch milliseconds, a day as its text.
fn bind_key<'q>(q: AnyQuery<'q>, span: Span, key: &str) -> Result<AnyQuery<'q>> {
    Ok(match span {
        Span::Hour => q.bind(key.parse::<i64>().map_err(|e| corrupt("hour key", e))?),
        Span::Day => q.bind(key.to_owned()),
    })
}

/// The CPU histogram as stored: its non-empty buckets as `bucket:count`
/// pairs (`"3:40,4:17,100:3"`). An hour fills a handful of the 101 buckets,
/// so this is a few bytes where a full list is hundreds, and it is read and
/// written for every rollup the ingest writer touches.
fn hist_text(hist: &[u64]) -> String {
    let mut out = String::with_capacity(64);
    for (bucket, count) in hist.iter().enumerate().filter(|(_, c)| **c > 0) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&bucket.to_string());
        out.push(':');
        out.push_str(&count.to_string());
    }
    out
}

/// A least value as stored: none seen (an empty span) is NULL.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Reads [`hist_text`]'s form of a histogram of `len` buckets, or the full
/// JSON list earlier versions wrote.
fn hist_from(text: &str, len: usize) -> std::result::Result<Vec<u64>, String> {
    if text.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    let mut hist = vec![0; len];
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (bucket, count) = pair.split_once(':').ok_or_else(|| format!("{pair:?} is not bucket:count"))?;
        let bucket: usize = bucket.parse().map_err(|_| format!("bucket {bucket:?} is not a number"))?;
        let slot = hist.get_mut(bucket).ok_or_else(|| format!("bucket {bucket} is past {}", len - 1))?;
        *slot = count.parse().map_err(|_| format!("count {count:?} is not a number"))?;
    }
    Ok(hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_survives_its_stored_form() {
        let mut hist = vec![0; 101];
        hist[0] = 5;
        hist[37] = 1;
        hist[100] = 12;
        assert_eq!(hist_text(&hist), "0:5,37:1,100:12");
        assert_eq!(hist_from(&hist_text(&hist), 101), Ok(hist));
        assert_eq!(hist_from("", 101), Ok(vec![0; 101]));
        assert_eq!(hist_from("63:2", 64).map(|h| (h.len(), h[63])), Ok((64, 2)));
    }

    #[test]
    fn a_histogram_written_as_a_json_list_still_reads() {
        let mut hist = vec![0; 101];
        hist[2] = 3;
        assert_eq!(hist_from(&serde_json::to_string(&hist).expect("json"), 101), Ok(hist));
    }

    #[test]
    fn a_damaged_histogram_is_refused_not_misread() {
        assert!(hist_from("101:1", 101).is_err());
        assert!(hist_from("3-1", 101).is_err());
        assert!(hist_from("x:1", 101).is_err());
    }
}
