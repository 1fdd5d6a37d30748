//! Cloud platforms (`/api/v1/platforms`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use yunzhi_domain::ids::PlatformId;
use yunzhi_domain::platform::{NewPlatform, PlatformInput, PlatformState};
use yunzhi_store::{Page, PlatformRecord};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, IdempotencyKey};
use crate::idempotent;
use crate::state::AppState;

const NOT_YOURS: &str =
    "cloud platforms are seen by the Big Data Center, the office and the system administrator";

#[utoipa::path(get, path = "/api/v1/platforms", tag = "platforms", params(PageQuery),
    responses((status = 200, description = "Platforms with arch, capacity and usage")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PlatformRecord>>> {
    let reader = caller.actor.platform_reader().ok_or_else(|| ApiError::forbidden(NOT_YOURS))?;
    Ok(Json(state.store.platforms(&reader, q.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/platforms/{id}", tag = "platforms", params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = PlatformRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PlatformRecord>> {
    let reader = caller.actor.platform_reader().ok_or_else(|| ApiError::forbidden(NOT_YOURS))?;
    let platform = state.store.platform(&reader, PlatformId(path_id(&id)?)).await?;
    platform.map(Json).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/v1/platforms", tag = "platforms", request_body = PlatformInput,
    responses((status = 201, description = "Created", body = PlatformRecord), (status = 409, description = "Conflict: taken, or changed meanwhile", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<PlatformInput>,
) -> ApiResult<Response> {
    let operator = caller
        .actor
        .cloud_operator()
        .ok_or_else(|| ApiError::forbidden("only the cloud resource admin adds platforms"))?;
    let new = NewPlatform::parse(&body.value)?;
    let ctx = caller.audit(state.now());
    idempotent::create(&state, &caller, key, "POST /platforms", &body.raw, async |tx| {
        Ok(tx.create_platform(&operator, &ctx, &new).await?)
    })
    .await
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformPatchInput {
    /// enabled, draining (keeps what it runs, takes nothing new) or disabled.
    pub state: String,
}

#[utoipa::path(patch, path = "/api/v1/platforms/{id}", tag = "platforms", request_body = PlatformPatchInput,
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = PlatformRecord),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<PlatformPatchInput>,
) -> ApiResult<Json<PlatformRecord>> {
    let operator = caller.actor.cloud_operator().ok_or_else(|| {
        ApiError::forbidden("only the cloud resource admin enables, drains or disables platforms")
    })?;
    let new_state = PlatformState::parse("state", &body.value.state)?;
    let mut tx = state.store.begin().await?;
    let updated = tx
        .set_platform_state(&operator, &caller.audit(state.now()), PlatformId(path_id(&id)?), new_state)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(updated))
}
