//! The working-day calendar's years.

use sqlx::Row;
use yunzhi_domain::access::CalendarEditor;
use yunzhi_domain::calendar::{Calendar, YearInput, YearSchedule};

use crate::audit::{AuditCtx, Change};
use crate::{Result, Store, StoreError, Tx};

fn schedule(text: &str) -> Result<YearSchedule> {
    let input: YearInput = serde_json::from_str(text)?;
    YearSchedule::parse(&input).map_err(|e| StoreError::corrupt(format!("calendar_years: {e}")))
}

impl Store {
    /// The calendar as stored now. A few rows: read whenever a deadline is
    /// computed, so every server sees an edit at once.
    pub async fn calendar(&self) -> Result<Calendar> {
        let rows =
            sqlx::query("SELECT schedule FROM calendar_years ORDER BY year").fetch_all(&self.read).await?;
        let years = rows
            .iter()
            .map(|r| schedule(&r.try_get::<String, _>("schedule")?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Calendar::new(years))
    }
}

impl Tx {
    /// Loads or replaces one year's schedule, audited with the old and new.
    pub async fn put_calendar_year(
        &mut self,
        _: &CalendarEditor,
        ctx: &AuditCtx,
        year: &YearSchedule,
    ) -> Result<bool> {
        let text = serde_json::to_string(&year.to_input())?;
        let old = sqlx::query("SELECT schedule FROM calendar_years WHERE year = $1")
            .bind(i64::from(year.year))
            .fetch_optional(self.conn())
            .await?
            .map(|r| r.try_get::<String, _>("schedule"))
            .transpose()?;
        if old.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO calendar_years (year, schedule, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (year) DO UPDATE SET schedule = excluded.schedule, updated_at = excluded.updated_at",
        )
        .bind(i64::from(year.year))
        .bind(&text)
        .bind(ctx.at.as_millisecond())
        .execute(self.conn())
        .await?;
        let before = old.map(|o| serde_json::from_str::<serde_json::Value>(&o)).transpose()?;
        self.audit(
            ctx,
            Change {
                action: "calendar.put_year",
                object_type: "calendar_year",
                object_id: Some(year.year.to_string()),
                unit_id: None,
                before,
                after: Some(serde_json::from_str(&text)?),
            },
        )
        .await?;
        Ok(true)
    }

    /// Seeds the shipped years the database does not have yet. Years already
    /// present are left alone: an administrator's edit wins over the shipped data.
    pub async fn seed_calendar(&mut self, editor: &CalendarEditor, ctx: &AuditCtx) -> Result<usize> {
        let shipped =
            Calendar::shipped().map_err(|e| StoreError::corrupt(format!("shipped calendar: {e}")))?;
        let mut added = 0;
        for year in &shipped {
            let exists = sqlx::query("SELECT year FROM calendar_years WHERE year = $1")
                .bind(i64::from(year.year))
                .fetch_optional(self.conn())
                .await?
                .is_some();
            if !exists && self.put_calendar_year(editor, ctx, year).await? {
                added += 1;
            }
        }
        Ok(added)
    }
}
