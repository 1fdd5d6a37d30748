//! Accounts (`/api/v1/users`): the system administrator for everyone, a
//! unit administrator for the staff of its own unit.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use yunzhi_domain::access::{AccountAdmin, Scope};
use yunzhi_domain::ids::UserId;
use yunzhi_domain::user::{NewUser, UserInput};
use yunzhi_domain::{FieldError, password};
use yunzhi_store::{Page, UserRecord};

use super::{ApiQuery, PageQuery, path_id};
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, IdempotencyKey};
use crate::idempotent;
use crate::state::AppState;

fn account_admin(caller: &Caller) -> ApiResult<AccountAdmin> {
    caller.actor.account_admin().ok_or_else(|| {
        ApiError::forbidden("accounts are managed by the system administrator and unit administrators")
    })
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, description = "Accounts")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<UserRecord>>> {
    let admin = account_admin(&caller)?;
    Ok(Json(state.store.users(&admin, q.page()?).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserCreated {
    #[serde(flatten)]
    pub user: UserRecord,
    /// Shown once: the `otpauth://` URI to enrol the second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_uri: Option<String>,
}

/// Hashing is deliberately slow; keep it off the async workers.
async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserInput,
    responses((status = 201, description = "Created", body = UserCreated), (status = 409, description = "Conflict: taken, or changed meanwhile", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<UserInput>,
) -> ApiResult<Response> {
    let admin = account_admin(&caller)?;
    let mut input = body.value.clone();
    // A unit administrator's new staff belong to its unit.
    if let (None, Scope::Unit(own)) = (input.unit_id, admin.scope()) {
        input.unit_id = Some(own.0);
    }
    let new = NewUser::parse(&input)?;
    if !admin.may_grant(&new.roles, new.unit_id) {
        return Err(ApiError::forbidden(
            "a unit administrator creates unit_user and unit_admin accounts of its own unit only",
        ));
    }
    if let Some(unit) = new.unit_id
        && state.store.unit(admin.scope(), unit).await?.is_none()
    {
        return Err(FieldError::new("unit_id", "unknown_unit", format!("there is no unit {}", unit.0)).into());
    }
    let password_hash = hash(new.password.clone()).await?;
    let secret = if new.roles.requires_second_factor() { Some(auth::new_totp_secret()?) } else { None };
    let sealed = secret
        .as_deref()
        .map(|s| state.secrets.seal(s.as_bytes(), &format!("totp:{}", new.username)))
        .transpose()?;
    let ctx = caller.audit(state.now());
    idempotent::create(&state, &caller, key, "POST /users", &body.raw, async |tx| {
        let user = tx.create_user(&admin, &ctx, &new, &password_hash, sealed.as_deref(), false).await?;
        let totp_uri = secret.as_deref().map(|s| auth::totp_uri(s, &user.username));
        Ok(UserCreated { user, totp_uri })
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    pub password: String,
}

async fn target(state: &AppState, admin: &AccountAdmin, raw: &str) -> ApiResult<UserRecord> {
    let user = state.store.user(admin.scope(), UserId(path_id(raw)?)).await?.ok_or(ApiError::NotFound)?;
    if !admin.may_grant(&user.roles, user.unit_id) {
        return Err(ApiError::forbidden("a unit administrator manages its own unit's staff only"));
    }
    Ok(user)
}

#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = i64, Path, description = "The object's id")), request_body = PasswordInput,
    responses((status = 204, description = "Password set; the account's sessions end"), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<PasswordInput>,
) -> ApiResult<StatusCode> {
    let admin = account_admin(&caller)?;
    let user = target(&state, &admin, &id).await?;
    password::check("password", &body.value.password, &user.username)?;
    let password_hash = hash(body.value.password.clone()).await?;
    let mut tx = state.store.begin().await?;
    tx.set_password(&admin, &caller.audit(state.now()), user.id, &password_hash).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", params(("id" = i64, Path, description = "The object's id")), responses((status = 204, description = "Unlocked")))]
pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let admin = account_admin(&caller)?;
    let user = target(&state, &admin, &id).await?;
    let mut tx = state.store.begin().await?;
    tx.unlock_user(&admin, &caller.audit(state.now()), user.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
