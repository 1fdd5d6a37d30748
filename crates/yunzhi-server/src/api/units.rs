//! Using units (`/api/v1/units`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use yunzhi_domain::ids::UnitId;
use yunzhi_domain::unit::{NewUnit, UnitInput, UnitPatch, UnitPatchInput};
use yunzhi_store::{Page, UnitRecord};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, IdempotencyKey};
use crate::idempotent;
use crate::state::AppState;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitQuery {
    /// Part of the name or credit code.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/units", tag = "units", params(UnitQuery),
    responses((status = 200, description = "The units the caller may see: unit staff see their own")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UnitQuery>,
) -> ApiResult<Json<Page<UnitRecord>>> {
    let reader = caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read units"))?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.page()?;
    Ok(Json(state.store.units(&reader, q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()), page).await?))
}

#[utoipa::path(get, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = UnitRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<UnitRecord>> {
    let reader = caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read units"))?;
    let unit = state.store.unit(reader.scope(), UnitId(path_id(&id)?)).await?;
    unit.map(Json).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/v1/units", tag = "units", request_body = UnitInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first result")),
    responses((status = 201, description = "Created", body = UnitRecord), (status = 409, description = "Conflict: taken, or changed meanwhile", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<UnitInput>,
) -> ApiResult<Response> {
    let registrar = caller
        .actor
        .unit_registrar()
        .ok_or_else(|| ApiError::forbidden("only the system administrator registers units"))?;
    let new = NewUnit::parse(&body.value)?;
    let ctx = caller.audit(state.now());
    idempotent::create(&state, &caller, key, "POST /units", &body.raw, async |tx| {
        Ok(tx.create_unit(&registrar, &ctx, &new).await?)
    })
    .await
}

#[utoipa::path(patch, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path, description = "The object's id")), request_body = UnitPatchInput,
    responses((status = 200, description = "OK", body = UnitRecord), (status = 403, description = "This role may not do this", body = crate::error::Problem),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<UnitPatchInput>,
) -> ApiResult<Json<UnitRecord>> {
    let editor = caller.actor.unit_editor().ok_or_else(|| {
        ApiError::forbidden("units are edited by the system administrator and their unit administrator")
    })?;
    let id = UnitId(path_id(&id)?);
    let patch = UnitPatch::parse(&body.value)?;
    let mut tx = state.store.begin().await?;
    let current = tx.unit(editor.scope(), id).await?.ok_or(ApiError::NotFound)?;
    if patch.name.as_ref().is_some_and(|n| *n != current.name) && !editor.may_rename() {
        return Err(ApiError::Forbidden {
            code: "rename_by_sys_admin",
            detail: "a unit is renamed by the system administrator; a unit administrator keeps its contacts"
                .into(),
            field: Some("name".into()),
            article: None,
        });
    }
    let updated = tx.update_unit(&editor, &caller.audit(state.now()), &current, &patch).await?;
    tx.commit().await?;
    Ok(Json(updated))
}
