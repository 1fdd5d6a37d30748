//! Small named values the server keeps between runs.

use sqlx::Row;

use crate::audit::{AuditCtx, Change};
use crate::{Result, Store, StoreError, Tx};

impl Store {
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }
}

impl Tx {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`.
    /// `true` when `holder` holds it now: it was free, had run out, or was
    /// already theirs. Servers sharing one database elect the one that
    /// runs the scheduler this way.
    pub async fn acquire_lease(&mut self, name: &str, holder: &str, now: i64, ttl_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE \
             SET holder = excluded.holder, until = excluded.until WHERE leases.until < $4 OR leases.holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Changes a setting kept as JSON (the efficiency rules, the analysis'
    /// source), audited with what it was and what it becomes.
    pub async fn change_setting(
        &mut self,
        ctx: &AuditCtx,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.conn())
            .await?;
        let before = match row {
            Some(r) => {
                let text: String = r.try_get("value")?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| StoreError::corrupt(format!("setting {key}: {e}")))?,
                )
            }
            None => None,
        };
        self.set_setting(key, &value.to_string()).await?;
        self.audit(
            ctx,
            Change {
                action: "setting.change",
                object_type: "setting",
                object_id: Some(key.to_owned()),
                unit_id: None,
                before,
                after: Some(value.clone()),
            },
        )
        .await?;
        Ok(())
    }
}
