//! Replayable answers for `Idempotency-Key`: the same key twice yields the
//! same result, not a second object. The answer is saved in the transaction
//! that made the object, so it exists exactly when the object does.

use sqlx::Row;
use yunzhi_domain::ids::UserId;

use crate::{Result, StoreError, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// A digest of the request the key was first used with.
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
}

impl Tx {
    pub async fn idempotent_response(&mut self, user: UserId, key: &str) -> Result<Option<StoredResponse>> {
        let row =
            sqlx::query("SELECT fingerprint, status, body FROM idempotency WHERE user_id = $1 AND key = $2")
                .bind(user.0)
                .bind(key)
                .fetch_optional(self.conn())
                .await?;
        row.map(|r| {
            Ok(StoredResponse {
                fingerprint: r.try_get("fingerprint")?,
                status: u16::try_from(r.try_get::<i64, _>("status")?)
                    .map_err(|_| StoreError::corrupt("idempotency.status"))?,
                body: r.try_get("body")?,
            })
        })
        .transpose()
    }

    /// Reserves `key` for this transaction before the create runs. A
    /// concurrent first use of the same key waits here (PostgreSQL blocks on
    /// the primary key; SQLite has one writer) and then fails with
    /// `Duplicate { field: "idempotency" }`: its caller rolls back and
    /// replays the winner's answer. A create that fails rolls the
    /// reservation back with it.
    pub async fn reserve_idempotency_key(
        &mut self,
        user: UserId,
        key: &str,
        fingerprint: &str,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO idempotency (user_id, key, fingerprint, status, body, created_at) VALUES ($1, $2, $3, 0, '', $4)",
        )
        .bind(user.0)
        .bind(key)
        .bind(fingerprint)
        .bind(at)
        .execute(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["idempotency"]))?;
        Ok(())
    }

    /// Records the answer on the reservation, in the create's transaction.
    pub async fn save_idempotent_response(
        &mut self,
        user: UserId,
        key: &str,
        response: &StoredResponse,
    ) -> Result<()> {
        sqlx::query("UPDATE idempotency SET status = $1, body = $2 WHERE user_id = $3 AND key = $4")
            .bind(i64::from(response.status))
            .bind(&response.body)
            .bind(user.0)
            .bind(key)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
