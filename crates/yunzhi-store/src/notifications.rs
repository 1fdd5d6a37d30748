//! The in-app inbox: what each person is told (their turn to decide, a
//! deadline near, resources handed over, temporary resources expiring).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::{UnitId, UserId};
use yunzhi_domain::role::Role;

use crate::page::{Page, PageRequest};
use crate::{Result, Store, Tx};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct NotificationRecord {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<At>,
}

fn notification(row: &AnyRow) -> Result<NotificationRecord> {
    Ok(NotificationRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        link: row.try_get("link")?,
        created_at: At::from_millis(row.try_get("created_at")?),
        read_at: row.try_get::<Option<i64>, _>("read_at")?.map(At::from_millis),
    })
}

/// A message, before it is addressed.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: &'static str,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    /// Sent at most once per recipient with this key (scheduler notices).
    pub dedup_key: Option<String>,
}

impl Store {
    pub async fn notifications(
        &self,
        user: UserId,
        unread_only: bool,
        page: PageRequest,
    ) -> Result<Page<NotificationRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM notifications WHERE user_id = $1 AND id > $2 AND ($3 = 0 OR read_at IS NULL) ORDER BY id LIMIT $4",
        )
        .bind(user.0)
        .bind(page.after)
        .bind(crate::flag(unread_only))
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(notification).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |n| n.id))
    }

    /// How many of the user's notifications are unread (the console's badge).
    pub async fn unread_count(&self, user: UserId) -> Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL")
                .bind(user.0)
                .fetch_one(&self.read)
                .await?;
        Ok(row.try_get("n")?)
    }

    /// The user's newest notifications, newest first (the console's inbox).
    pub async fn latest_notifications(
        &self,
        user: UserId,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM notifications WHERE user_id = $1 AND ($2 = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT $3",
        )
        .bind(user.0)
        .bind(crate::flag(unread_only))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(notification).collect()
    }
}

/// A notification waiting to go out by e-mail or webhook.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub notification: NotificationRecord,
    pub username: String,
    pub email: Option<String>,
    pub attempts: i64,
}

impl Store {
    /// Notifications created since `since` (epoch ms) still to be delivered
    /// and due for an attempt at `now`, oldest first.
    pub async fn outbox(&self, since: i64, now: i64, limit: i64) -> Result<Vec<Outgoing>> {
        let rows = sqlx::query(
            "SELECT n.*, u.username AS username, u.email AS email FROM notifications n JOIN users u ON u.id = n.user_id \
             WHERE n.delivered_at IS NULL AND n.next_delivery_at <= $1 AND n.created_at >= $2 ORDER BY n.id LIMIT $3",
        )
        .bind(now)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Outgoing {
                    notification: notification(r)?,
                    username: r.try_get("username")?,
                    email: r.try_get("email")?,
                    attempts: r.try_get("delivery_attempts")?,
                })
            })
            .collect()
    }
}

impl Tx {
    pub async fn mark_delivered(&mut self, id: i64, at: i64) -> Result<()> {
        sqlx::query("UPDATE notifications SET delivered_at = $1, delivery_error = NULL WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records a failed delivery, to be tried again at `retry_at` (or never,
    /// when `None`: the error stays for the operator to see).
    pub async fn delivery_failed(&mut self, id: i64, error: &str, retry_at: Option<i64>) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET delivery_attempts = delivery_attempts + 1, delivery_error = $1, \
             next_delivery_at = $2 WHERE id = $3",
        )
        .bind(error)
        .bind(retry_at.unwrap_or(i64::MAX))
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Sends `notice` to every active holder of `role` — within `unit` for
    /// unit roles. Returns how many were told (duplicates of a keyed notice
    /// are skipped).
    /// Tells a unit's staff (its clerks and its admin). Returns how many
    /// were told.
    pub async fn notify_unit(&mut self, unit: UnitId, notice: &Notice, at: i64) -> Result<u64> {
        let mut told = 0;
        for role in [Role::UnitUser, Role::UnitAdmin] {
            told += self.notify_role(role, Some(unit), notice, at).await?;
        }
        Ok(told)
    }

    pub async fn notify_role(
        &mut self,
        role: Role,
        unit: Option<UnitId>,
        notice: &Notice,
        at: i64,
    ) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT id, roles FROM users WHERE disabled = 0 AND (CAST($1 AS BIGINT) IS NULL OR unit_id = $1)",
        )
        .bind(unit.map(|u| u.0))
        .fetch_all(self.conn())
        .await?;
        let mut users = Vec::new();
        for r in rows {
            let roles: String = r.try_get("roles")?;
            if roles.split(',').any(|x| x == role.code()) {
                users.push(UserId(r.try_get("id")?));
            }
        }
        let mut sent = 0;
        for u in users {
            sent += self.notify_user(u, notice, at).await?;
        }
        Ok(sent)
    }

    pub async fn notify_user(&mut self, user: UserId, notice: &Notice, at: i64) -> Result<u64> {
        let done = sqlx::query(
            "INSERT INTO notifications (user_id, kind, title, body, link, dedup_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, dedup_key) DO NOTHING",
        )
        .bind(user.0)
        .bind(notice.kind)
        .bind(&notice.title)
        .bind(&notice.body)
        .bind(notice.link.as_deref())
        .bind(notice.dedup_key.as_deref())
        .bind(at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected())
    }

    /// Marks one of `user`'s notifications read; `false` when it is not theirs.
    pub async fn mark_read(&mut self, user: UserId, id: i64, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3",
        )
        .bind(at)
        .bind(id)
        .bind(user.0)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
