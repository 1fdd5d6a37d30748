//! Accounts, sign-in bookkeeping (failures, lockout) and sessions.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use yunzhi_domain::access::{AccountAdmin, Scope};
use yunzhi_domain::clock::At;
use yunzhi_domain::ids::{UnitId, UserId};
use yunzhi_domain::role::{Role, RoleSet};
use yunzhi_domain::user::NewUser;

use crate::audit::{AuditCtx, Change};
use crate::page::{Page, PageRequest};
use crate::{Result, Store, StoreError, Tx, flag, scope_param};

/// An account as administrators see it: no secrets.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct UserRecord {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    #[schema(value_type = Vec<String>)]
    pub roles: RoleSet,
    #[schema(value_type = Option<i64>)]
    pub unit_id: Option<UnitId>,
    pub email: Option<String>,
    pub totp_enabled: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub locked_until: Option<At>,
    pub demo: bool,
    pub disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: At,
    /// The console's language: `zh-CN` (the default) or `en`.
    pub locale: String,
}

/// What sign-in needs to know about an account.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub user: UserRecord,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub failed_logins: i64,
    pub locked_until: Option<Timestamp>,
}

/// A live session and its account.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: i64,
    pub user: UserRecord,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

fn roles(text: &str) -> Result<RoleSet> {
    let parsed: std::result::Result<Vec<Role>, _> =
        text.split(',').map(|r| Role::parse("roles", r)).collect();
    parsed.map(RoleSet::from_stored).map_err(|e| StoreError::corrupt(format!("users.roles: {e}")))
}

fn roles_text(set: &RoleSet) -> String {
    set.iter().map(|r| r.code()).collect::<Vec<_>>().join(",")
}

fn user(row: &AnyRow) -> Result<UserRecord> {
    let secret: Option<String> = row.try_get("totp_secret")?;
    Ok(UserRecord {
        id: UserId(row.try_get("id")?),
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        roles: roles(&row.try_get::<String, _>("roles")?)?,
        unit_id: row.try_get::<Option<i64>, _>("unit_id")?.map(UnitId),
        email: row.try_get("email")?,
        totp_enabled: secret.is_some(),
        locked_until: row.try_get::<Option<i64>, _>("locked_until")?.map(At::from_millis),
        demo: row.try_get::<i64, _>("demo")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: At::from_millis(row.try_get("created_at")?),
        locale: row.try_get("locale")?,
    })
}

fn auth(row: &AnyRow) -> Result<AuthRecord> {
    Ok(AuthRecord {
        user: user(row)?,
        password_hash: row.try_get("password_hash")?,
        totp_secret: row.try_get("totp_secret")?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get::<Option<i64>, _>("locked_until")?.map(|ms| At::from_millis(ms).0),
    })
}

/// The outcome of a failed sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub consecutive: i64,
    pub locked_until: Option<Timestamp>,
}

impl Store {
    pub async fn auth_by_username(&self, username: &str) -> Result<Option<AuthRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(auth).transpose()
    }

    /// How many accounts exist: none means a fresh installation.
    pub async fn user_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&self.read).await?.try_get("n")?)
    }

    pub async fn users(&self, admin: &AccountAdmin, page: PageRequest) -> Result<Page<UserRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM users WHERE id > $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2) ORDER BY id LIMIT $3",
        )
        .bind(page.after)
        .bind(scope_param(admin.scope()))
        .bind(page.fetch())
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(user).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page, |u| u.id.0))
    }

    pub async fn user(&self, scope: Scope, id: UserId) -> Result<Option<UserRecord>> {
        let row =
            sqlx::query("SELECT * FROM users WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR unit_id = $2)")
                .bind(id.0)
                .bind(scope_param(scope))
                .fetch_optional(&self.read)
                .await?;
        row.as_ref().map(user).transpose()
    }

    /// The session whose token digests to `token_hash`, if it is still alive.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT s.id AS session_id, s.created_at AS session_created_at, s.last_seen_at, u.* \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                id: r.try_get("session_id")?,
                user: user(&r)?,
                created_at: At::from_millis(r.try_get("session_created_at")?).0,
                last_seen_at: At::from_millis(r.try_get("last_seen_at")?).0,
            })
        })
        .transpose()
    }
}

impl Tx {
    /// Creates an account. The password arrives hashed: the store never sees it.
    pub async fn create_user(
        &mut self,
        _: &AccountAdmin,
        ctx: &AuditCtx,
        new: &NewUser,
        password_hash: &str,
        totp_secret: Option<&str>,
        demo: bool,
    ) -> Result<UserRecord> {
        let now = ctx.at.as_millisecond();
        let row = sqlx::query(
            "INSERT INTO users (username, display_name, password_hash, roles, unit_id, totp_secret, failed_logins, \
             locked_until, demo, disabled, password_changed_at, created_at, updated_at, email) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7, 0, $8, $8, $8, $9) RETURNING *",
        )
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(password_hash)
        .bind(roles_text(&new.roles))
        .bind(new.unit_id.map(|u| u.0))
        .bind(totp_secret)
        .bind(flag(demo))
        .bind(now)
        .bind(new.email.as_deref())
        .fetch_one(self.conn())
        .await
        .map_err(|e| StoreError::unique(e, &["username"]))?;
        let created = user(&row)?;
        self.audit(
            ctx,
            Change::created("account.create", "user", created.id, created.unit_id.map(|u| u.0), &created)?,
        )
        .await?;
        Ok(created)
    }

    /// Counts a failed sign-in; the `lock_after`-th consecutive one locks the
    /// account until `at + lock_for`.
    pub async fn record_login_failure(
        &mut self,
        ctx: &AuditCtx,
        user_id: UserId,
        lock_after: i64,
        lock_for: SignedDuration,
    ) -> Result<Failure> {
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
        )
        .bind(user_id.0)
        .fetch_one(self.conn())
        .await?;
        let consecutive: i64 = row.try_get("failed_logins")?;
        let locked_until = if consecutive >= lock_after {
            let until = ctx.at.checked_add(lock_for).unwrap_or(ctx.at);
            sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
                .bind(until.as_millisecond())
                .bind(user_id.0)
                .execute(self.conn())
                .await?;
            Some(until)
        } else {
            None
        };
        let action = if locked_until.is_some() { "account.locked" } else { "session.login_failed" };
        let details = serde_json::json!({
            "consecutive_failures": consecutive,
            "locked_until": locked_until.map(|t| At(t).to_string()),
        });
        self.audit_event(ctx, action, "user", Some(user_id.to_string()), Some(details)).await?;
        Ok(Failure { consecutive, locked_until })
    }

    /// Opens a session after a successful sign-in and clears the failure count.
    pub async fn open_session(&mut self, ctx: &AuditCtx, user_id: UserId, token_hash: &str) -> Result<i64> {
        let now = ctx.at.as_millisecond();
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
            .bind(user_id.0)
            .execute(self.conn())
            .await?;
        let row = sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, source, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4) \
             RETURNING id",
        )
        .bind(token_hash)
        .bind(user_id.0)
        .bind(ctx.source.as_deref())
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        let id: i64 = row.try_get("id")?;
        self.audit_event(
            ctx,
            "session.login",
            "user",
            Some(user_id.to_string()),
            Some(serde_json::json!({"session": id})),
        )
        .await?;
        Ok(id)
    }

    pub async fn close_session(
        &mut self,
        ctx: &AuditCtx,
        session_id: i64,
        user_id: UserId,
        reason: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1").bind(session_id).execute(self.conn()).await?;
        let action = if reason == "expired" { "session.expired" } else { "session.logout" };
        self.audit_event(
            ctx,
            action,
            "user",
            Some(user_id.to_string()),
            Some(serde_json::json!({"session": session_id})),
        )
        .await?;
        Ok(())
    }

    /// Marks a session used now. Bookkeeping, not a change worth auditing.
    pub async fn touch_session(&mut self, session_id: i64, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(at.as_millisecond())
            .bind(session_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Moves every session's last use by `by`: when the demo clock jumps,
    /// idle time is still measured in real inactivity, so nobody is signed
    /// out by a trainee moving the calendar.
    pub async fn shift_sessions(&mut self, by: SignedDuration) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at + $1, created_at = created_at + $1")
            .bind(by.as_millis() as i64)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn user_by_username(&mut self, username: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(user).transpose()
    }

    /// Records that the second-factor code of time step `step` was used.
    /// `false` when that step (or a later one) was already used: a replay.
    pub async fn use_totp_step(&mut self, user_id: UserId, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(user_id.0)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a new password (already hashed) and ends the account's sessions.
    pub async fn set_password(
        &mut self,
        _: &AccountAdmin,
        ctx: &AuditCtx,
        user_id: UserId,
        password_hash: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3",
        )
        .bind(password_hash)
        .bind(ctx.at.as_millisecond())
        .bind(user_id.0)
        .execute(self.conn())
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id.0).execute(self.conn()).await?;
        self.audit_event(ctx, "account.password_reset", "user", Some(user_id.to_string()), None).await?;
        Ok(())
    }

    /// The account holder's own new password (already hashed): its other
    /// sessions end, the one it was changed from (`keep`) goes on.
    pub async fn change_own_password(
        &mut self,
        ctx: &AuditCtx,
        user_id: UserId,
        password_hash: &str,
        keep: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3",
        )
        .bind(password_hash)
        .bind(ctx.at.as_millisecond())
        .bind(user_id.0)
        .execute(self.conn())
        .await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id.0)
            .bind(keep)
            .execute(self.conn())
            .await?
            .rows_affected();
        let details = serde_json::json!({ "other_sessions_ended": ended });
        self.audit_event(ctx, "account.password_changed", "user", Some(user_id.to_string()), Some(details))
            .await?;
        Ok(())
    }

    /// Enrols a second factor (its seed sealed) for the account holder,
    /// replacing any earlier one; `step` is the time step of the code that
    /// proved it, now used.
    pub async fn enrol_totp(
        &mut self,
        ctx: &AuditCtx,
        user_id: UserId,
        sealed: &str,
        step: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = $2, updated_at = $3 WHERE id = $4")
            .bind(sealed)
            .bind(step)
            .bind(ctx.at.as_millisecond())
            .bind(user_id.0)
            .execute(self.conn())
            .await?;
        self.audit_event(ctx, "account.totp_enrolled", "user", Some(user_id.to_string()), None).await?;
        Ok(())
    }

    /// Keeps the console's language the user chose. `locale` is one the
    /// console speaks; the caller checked it.
    pub async fn set_locale(&mut self, ctx: &AuditCtx, user_id: UserId, locale: &str) -> Result<()> {
        sqlx::query("UPDATE users SET locale = $1, updated_at = $2 WHERE id = $3")
            .bind(locale)
            .bind(ctx.at.as_millisecond())
            .bind(user_id.0)
            .execute(self.conn())
            .await?;
        let details = serde_json::json!({ "locale": locale });
        self.audit_event(ctx, "account.locale_set", "user", Some(user_id.to_string()), Some(details)).await?;
        Ok(())
    }

    pub async fn unlock_user(&mut self, _: &AccountAdmin, ctx: &AuditCtx, user_id: UserId) -> Result<()> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = $1 WHERE id = $2")
            .bind(ctx.at.as_millisecond())
            .bind(user_id.0)
            .execute(self.conn())
            .await?;
        self.audit_event(ctx, "account.unlock", "user", Some(user_id.to_string()), None).await?;
        Ok(())
    }
}
