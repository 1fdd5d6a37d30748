//! Cloud platforms (`/api/v1/platforms`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use yunzhi_domain::ids::PlatformId;
use yunzhi_domain::invalid::{Checker, FieldError};
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
    let credentials = body.value.credentials.clone();
    let sealed = seal(&state, &new.name, credentials.as_ref())?;
    let ctx = caller.audit(state.now());
    idempotent::create(&state, &caller, key, "POST /platforms", &body.raw, async |tx| {
        let created = tx.create_platform(&operator, &ctx, &new, sealed.as_deref()).await?;
        // A typo in the settings is a 422 now, not a failing job later.
        crate::drivers::check_settings(&created, credentials.clone())?;
        Ok(created)
    })
    .await
}

/// Seals a platform's credentials for the database.
fn seal(state: &AppState, name: &str, credentials: Option<&serde_json::Value>) -> ApiResult<Option<String>> {
    credentials
        .map(|c| {
            let plain = serde_json::to_vec(c).map_err(|e| ApiError::Internal(e.into()))?;
            state.secrets.seal(&plain, &crate::drivers::credentials_context(name)).map_err(ApiError::Internal)
        })
        .transpose()
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformPatchInput {
    /// enabled, draining (keeps what it runs, takes nothing new) or disabled.
    #[serde(default)]
    pub state: Option<String>,
    /// New driver settings, replacing the old ones.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// New credentials (a rotated password or application credential);
    /// sealed at rest, never shown.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
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
        ApiError::forbidden(
            "only the cloud resource admin enables, drains, disables or reconfigures platforms",
        )
    })?;
    let input = &body.value;
    let mut c = Checker::new();
    let new_state = input.state.as_deref().and_then(|s| c.take(PlatformState::parse("state", s)));
    for (field, v) in [("config", &input.config), ("credentials", &input.credentials)] {
        if v.as_ref().is_some_and(|v| !v.is_object()) {
            c.push(FieldError::new(field, "not_an_object", format!("{field} must be a JSON object")));
        }
    }
    if input.state.is_none() && input.config.is_none() && input.credentials.is_none() {
        c.push(FieldError::new("state", "required", "give state, config or credentials to change"));
    }
    c.finish()?;
    let id = PlatformId(path_id(&id)?);
    let reader = caller.actor.platform_reader().ok_or_else(|| ApiError::forbidden(NOT_YOURS))?;
    let current = state.store.platform(&reader, id).await?.ok_or(ApiError::NotFound)?;
    let sealed = seal(&state, &current.name, input.credentials.as_ref())?;
    let ctx = caller.audit(state.now());
    let mut tx = state.store.begin().await?;
    let mut updated = current;
    if let Some(new_state) = new_state {
        updated = tx.set_platform_state(&operator, &ctx, id, new_state).await?.ok_or(ApiError::NotFound)?;
    }
    if input.config.is_some() || sealed.is_some() {
        updated = tx
            .set_platform_connection(&operator, &ctx, id, input.config.as_ref(), sealed.as_deref())
            .await?
            .ok_or(ApiError::NotFound)?;
        let credentials = match &input.credentials {
            Some(c) => Some(c.clone()),
            None => match state.store.platform_credentials(id).await? {
                Some(sealed) => Some(
                    serde_json::from_slice(
                        &state
                            .secrets
                            .open(&sealed, &crate::drivers::credentials_context(&updated.name))
                            .map_err(ApiError::Internal)?,
                    )
                    .map_err(|e| ApiError::Internal(e.into()))?,
                ),
                None => None,
            },
        };
        crate::drivers::check_settings(&updated, credentials)?;
    }
    tx.commit().await?;
    Ok(Json(updated))
}

#[utoipa::path(post, path = "/api/v1/platforms/{id}/reconcile", tag = "platforms",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 202, description = "Queued: the reconciliation job", body = yunzhi_store::JobRecord),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn reconcile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(axum::http::StatusCode, Json<yunzhi_store::JobRecord>)> {
    caller
        .actor
        .cloud_operator()
        .ok_or_else(|| ApiError::forbidden("only the cloud resource admin reconciles platforms"))?;
    let reader = caller.actor.platform_reader().ok_or_else(|| ApiError::forbidden(NOT_YOURS))?;
    let platform =
        state.store.platform(&reader, PlatformId(path_id(&id)?)).await?.ok_or(ApiError::NotFound)?;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let job = tx
        .enqueue_job(
            &yunzhi_store::NewJob {
                kind: "reconcile".into(),
                dedup_key: None,
                payload: serde_json::json!({"platform_id": platform.id.0}),
                run_at: now,
                max_attempts: 3,
            },
            now,
        )
        .await?;
    tx.audit_event(
        &caller.audit(now),
        "platform.reconcile_requested",
        "platform",
        Some(platform.id.to_string()),
        Some(serde_json::json!({"job_id": job.id})),
    )
    .await?;
    tx.commit().await?;
    state.worker.notify_one();
    Ok((axum::http::StatusCode::ACCEPTED, Json(job)))
}
