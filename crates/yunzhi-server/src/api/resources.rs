//! Cloud resources (`/api/v1/resources`), within the caller's scope.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use yunzhi_domain::ids::SystemId;
use yunzhi_domain::resource::ResourceState;
use yunzhi_store::{Page, ResourceFilter, ResourceRecord};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResourceQuery {
    pub system_id: Option<i64>,
    /// provisioning, active, suspended, reclaimed.
    pub state: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/resources", tag = "resources", params(ResourceQuery),
    responses((status = 200, description = "Resources the caller may see")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ResourceQuery>,
) -> ApiResult<Json<Page<ResourceRecord>>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read resources"))?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    let filter = ResourceFilter {
        system: q.system_id.map(SystemId),
        state: q.state.as_deref().map(|s| ResourceState::parse("state", s)).transpose()?,
    };
    Ok(Json(state.store.resources(reader.scope(), &filter, page).await?))
}

#[utoipa::path(get, path = "/api/v1/resources/{id}", tag = "resources",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = ResourceRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ResourceRecord>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read resources"))?;
    state.store.resource(reader.scope(), path_id(&id)?).await?.map(Json).ok_or(ApiError::NotFound)
}
