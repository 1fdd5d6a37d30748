//! Signing in and out (`/api/v1/session`): password, lockout, second factor.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use yunzhi_domain::access::Actor;
use yunzhi_domain::clock::At;
use yunzhi_store::{AuditCtx, UserRecord};

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, ClientAddr};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
    /// The 6-digit code of the authenticator app; required for every role
    /// but unit staff (demo accounts in demo mode are excused).
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    pub token: String,
    /// When the session expires if unused; every request moves it on.
    pub expires_at: String,
    pub roles: Vec<String>,
    pub username: String,
    pub display_name: String,
    pub unit_id: Option<i64>,
    /// Demo mode, whose demo accounts sign in without a second factor.
    pub demo: bool,
}

pub fn actor_of(user: &UserRecord) -> Actor {
    Actor {
        user_id: user.id,
        username: user.username.clone(),
        roles: user.roles.clone(),
        unit_id: user.unit_id,
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "the username or password is wrong")
}

#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginInput,
    responses((status = 201, description = "Created", body = SessionOut), (status = 401, description = "Not signed in, or wrong credentials", body = crate::error::Problem), (status = 423, description = "Account locked", body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    body: ApiJson<LoginInput>,
) -> ApiResult<(StatusCode, Json<SessionOut>)> {
    let input = body.value;
    let now = state.now();
    let settings = &state.settings;
    let ctx = |actor: &str, id: Option<i64>, roles: String| AuditCtx {
        actor_id: id,
        actor: actor.to_owned(),
        roles,
        source: source.clone(),
        at: now,
    };
    let record = state.store.auth_by_username(input.username.trim()).await?;
    // Demo accounts exist only in demo mode: outside it they are unknown.
    let Some(record) = record.filter(|r| !r.user.demo || settings.demo) else {
        let _ = auth::verify_password_off_runtime(&input.password, auth::decoy_hash()).await;
        return Err(invalid_credentials());
    };
    let user = &record.user;
    let roles = user.roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(",");
    let ctx = ctx(&user.username, Some(user.id.0), roles);
    if let Some(until) = record.locked_until.filter(|u| *u > now) {
        return Err(ApiError::Locked { until: At(until).to_string() });
    }
    if user.disabled {
        let _ = auth::verify_password_off_runtime(&input.password, auth::decoy_hash()).await;
        return Err(invalid_credentials());
    }
    let fail = async |err: ApiError| -> ApiResult<(StatusCode, Json<SessionOut>)> {
        let mut tx = state.store.begin().await?;
        let failure = tx
            .record_login_failure(&ctx, user.id, settings.lockout_threshold, settings.lockout_duration)
            .await?;
        tx.commit().await?;
        match failure.locked_until {
            Some(until) => Err(ApiError::Locked { until: At(until).to_string() }),
            None => Err(err),
        }
    };
    if !auth::verify_password_off_runtime(&input.password, &record.password_hash).await {
        return fail(invalid_credentials()).await;
    }
    let excused = settings.demo && user.demo;
    // Unit staff who enrolled a second factor use it too.
    let needs_second_factor =
        !excused && (user.roles.requires_second_factor() || record.totp_secret.is_some());
    if needs_second_factor {
        let Some(sealed) = &record.totp_secret else {
            return Err(ApiError::Forbidden {
                code: "totp_not_enrolled",
                detail: "this role signs in with a second factor, and none is enrolled for this account; \
                         ask the system administrator to enrol one"
                    .into(),
                field: Some("totp".into()),
                article: None,
            });
        };
        let secret = state
            .secrets
            .open(sealed, &format!("totp:{}", user.username))
            .map_err(|e| ApiError::Internal(e.context("opening a second-factor seed")))?;
        let secret = String::from_utf8(secret).map_err(|e| ApiError::Internal(e.into()))?;
        let code = input.totp.as_deref().map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| {
            ApiError::unauthorized("totp_required", "enter the 6-digit code from your authenticator app")
        })?;
        let Some(step) = auth::verify_totp(&secret, code, now.as_second()) else {
            return fail(ApiError::unauthorized("totp_invalid", "the 6-digit code is wrong or has expired"))
                .await;
        };
        let mut tx = state.store.begin().await?;
        let fresh = tx.use_totp_step(user.id, step).await?;
        tx.commit().await?;
        if !fresh {
            return fail(ApiError::unauthorized(
                "totp_invalid",
                "this 6-digit code has already been used; wait for the next one",
            ))
            .await;
        }
    }
    let token = auth::new_token()?;
    let mut tx = state.store.begin().await?;
    tx.open_session(&ctx, user.id, &auth::token_digest(&token)).await?;
    tx.commit().await?;
    let expires = now.checked_add(settings.session_idle).unwrap_or(now);
    Ok((
        StatusCode::CREATED,
        Json(SessionOut {
            token,
            expires_at: At(expires).to_string(),
            roles: user.roles.iter().map(|r| r.code().to_owned()).collect(),
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            unit_id: user.unit_id.map(|u| u.0),
            demo: settings.demo,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204, description = "Signed out")))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin().await?;
    tx.close_session(&caller.audit(state.now()), caller.session_id, caller.actor.user_id, "logout").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub user_id: i64,
    pub username: String,
    pub roles: Vec<String>,
    pub unit_id: Option<i64>,
    pub demo: bool,
    pub demo_account: bool,
    /// The server's clock (moved in demo mode), in the district's zone.
    pub now: String,
    pub today: String,
}

#[utoipa::path(get, path = "/api/v1/session", tag = "session", responses((status = 200, description = "OK", body = WhoAmI)))]
pub async fn whoami(State(state): State<AppState>, caller: Caller) -> Json<WhoAmI> {
    let now = state.now();
    Json(WhoAmI {
        user_id: caller.actor.user_id.0,
        username: caller.actor.username.clone(),
        roles: caller.actor.roles.iter().map(|r| r.code().to_owned()).collect(),
        unit_id: caller.actor.unit_id.map(|u| u.0),
        demo: state.settings.demo,
        demo_account: caller.demo_account,
        now: At(now).to_string(),
        today: yunzhi_domain::clock::Clock::today(state.clock.as_ref()).to_string(),
    })
}
