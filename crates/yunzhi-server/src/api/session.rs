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
use yunzhi_domain::{FieldError, password};

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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Checks the signed-in account's own password again before a change to
/// its credentials, so that a session left open is not enough to take the
/// account over. A wrong one counts towards the lockout, as at sign-in.
async fn reauthenticate(
    state: &AppState,
    caller: &Caller,
    field: &str,
    password: &str,
) -> ApiResult<UserRecord> {
    let record = state.store.auth_by_username(&caller.actor.username).await?.ok_or(ApiError::NotFound)?;
    if auth::verify_password_off_runtime(password, &record.password_hash).await {
        return Ok(record.user);
    }
    let mut tx = state.store.begin().await?;
    let s = &state.settings;
    tx.record_login_failure(
        &caller.audit(state.now()),
        record.user.id,
        s.lockout_threshold,
        s.lockout_duration,
    )
    .await?;
    tx.commit().await?;
    Err(FieldError::new(field, "wrong_password", format!("{field} is not this account's password")).into())
}

#[utoipa::path(post, path = "/api/v1/session/password", tag = "session", request_body = PasswordChange,
    responses((status = 204, description = "Changed; the account's other sessions end"),
        (status = 422, description = "Wrong current password, or a new one the policy refuses", body = crate::error::Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let input = body.value;
    let user = reauthenticate(&state, &caller, "current_password", &input.current_password).await?;
    password::check("new_password", &input.new_password, &user.username)?;
    if input.new_password == input.current_password {
        return Err(FieldError::new(
            "new_password",
            "same_password",
            "new_password must differ from the current one",
        )
        .into());
    }
    let new = input.new_password.clone();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&new))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)?;
    let mut tx = state.store.begin().await?;
    tx.change_own_password(&caller.audit(state.now()), user.id, &hash, caller.session_id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpSecret {
    /// Base32, for typing into an authenticator app by hand.
    pub secret: String,
    /// The `otpauth://` URI a QR code carries.
    pub uri: String,
}

#[utoipa::path(post, path = "/api/v1/session/totp/secret", tag = "session",
    responses((status = 200, description = "A fresh seed to enrol; nothing is stored until PUT /api/v1/session/totp proves it", body = TotpSecret)))]
pub async fn new_totp_secret(caller: Caller) -> ApiResult<Json<TotpSecret>> {
    let secret = auth::new_totp_secret()?;
    let uri = auth::totp_uri(&secret, &caller.actor.username);
    Ok(Json(TotpSecret { secret, uri }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrolment {
    /// The account's password.
    pub password: String,
    /// The seed from POST /api/v1/session/totp/secret.
    pub secret: String,
    /// The authenticator app's current 6-digit code for that seed.
    pub code: String,
}

#[utoipa::path(put, path = "/api/v1/session/totp", tag = "session", request_body = TotpEnrolment,
    responses((status = 204, description = "Enrolled: sign-in now asks for the app's code"),
        (status = 422, description = "Wrong password, a malformed seed, or a code that does not match it", body = crate::error::Problem)))]
pub async fn enrol_totp(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<TotpEnrolment>,
) -> ApiResult<StatusCode> {
    let input = body.value;
    let user = reauthenticate(&state, &caller, "password", &input.password).await?;
    let secret = input.secret.trim().to_ascii_uppercase();
    let decoded = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).ok();
    if decoded.is_none_or(|d| d.len() < 16) {
        return Err(FieldError::new(
            "secret",
            "invalid_secret",
            "secret must be the base32 seed the server gave",
        )
        .into());
    }
    let now = state.now();
    let Some(step) = auth::verify_totp(&secret, &input.code, now.as_second()) else {
        return Err(FieldError::new(
            "code",
            "totp_invalid",
            "the code does not match this seed; check the phone's clock",
        )
        .into());
    };
    let sealed = state.secrets.seal(secret.as_bytes(), &format!("totp:{}", user.username))?;
    let mut tx = state.store.begin().await?;
    tx.enrol_totp(&caller.audit(now), user.id, &sealed, step).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
