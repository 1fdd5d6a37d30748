//! The service catalog (`/api/v1/catalog`).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use yunzhi_domain::catalog::{CatalogItemInput, CatalogPatchInput, CatalogSpec};
use yunzhi_domain::ids::CatalogItemId;
use yunzhi_store::{CatalogItemRecord, Page};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, IdempotencyKey};
use crate::idempotent;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog", params(PageQuery),
    responses((status = 200, description = "Catalog items with the platforms that offer them")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<CatalogItemRecord>>> {
    caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read the catalog"))?;
    Ok(Json(state.store.catalog(q.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/catalog/{id}", tag = "catalog", params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = CatalogItemRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CatalogItemRecord>> {
    caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read the catalog"))?;
    let item = state.store.catalog_item(CatalogItemId(path_id(&id)?)).await?;
    item.map(Json).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/v1/catalog", tag = "catalog", request_body = CatalogItemInput,
    responses((status = 201, description = "Created", body = CatalogItemRecord), (status = 409, description = "Conflict: taken, or changed meanwhile", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<CatalogItemInput>,
) -> ApiResult<Response> {
    let operator = caller
        .actor
        .cloud_operator()
        .ok_or_else(|| ApiError::forbidden("only the cloud resource admin edits the catalog"))?;
    let spec = CatalogSpec::parse(&body.value)?;
    let ctx = caller.audit(state.now());
    idempotent::create(&state, &caller, key, "POST /catalog", &body.raw, async |tx| {
        Ok(tx.create_catalog_item(&operator, &ctx, &spec).await?)
    })
    .await
}

#[utoipa::path(patch, path = "/api/v1/catalog/{id}", tag = "catalog", params(("id" = i64, Path, description = "The object's id")), request_body = CatalogPatchInput,
    responses((status = 200, description = "OK", body = CatalogItemRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<CatalogPatchInput>,
) -> ApiResult<Json<CatalogItemRecord>> {
    let operator = caller
        .actor
        .cloud_operator()
        .ok_or_else(|| ApiError::forbidden("only the cloud resource admin edits the catalog"))?;
    let id = CatalogItemId(path_id(&id)?);
    let mut tx = state.store.begin().await?;
    let current = tx.catalog_item(id).await?.ok_or(ApiError::NotFound)?;
    let (spec, active) = current.spec.apply(current.active, &body.value)?;
    let updated =
        tx.update_catalog_item(&operator, &caller.audit(state.now()), &current, &spec, active).await?;
    tx.commit().await?;
    Ok(Json(updated))
}
