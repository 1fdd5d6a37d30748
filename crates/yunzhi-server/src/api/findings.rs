//! Findings (`/api/v1/findings`): what the platform noticed, with its
//! evidence. A unit sees the findings about its own systems; the district's
//! roles see all, including resources on a platform that belong to no unit.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use yunzhi_domain::finding::{FindingKind, FindingState};
use yunzhi_domain::ids::PlatformId;
use yunzhi_store::{FindingFilter, FindingRecord, Page};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindingQuery {
    /// low_utilization, zombie, agent_missing, agent_silent, agent_tampered, orphan_resource, other.
    pub kind: Option<String>,
    /// open, confirmed, dismissed, resolved.
    pub state: Option<String>,
    pub platform_id: Option<i64>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const NOT_YOURS: &str = "the audit admin reads the log, not findings";

#[utoipa::path(get, path = "/api/v1/findings", tag = "findings", params(FindingQuery),
    responses((status = 200, description = "Findings the caller may see, oldest first, with their evidence")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FindingQuery>,
) -> ApiResult<Json<Page<FindingRecord>>> {
    let reader = caller.actor.reader().ok_or_else(|| ApiError::forbidden(NOT_YOURS))?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    let filter = FindingFilter {
        kind: q.kind.as_deref().map(|k| FindingKind::parse("kind", k)).transpose()?,
        state: q.state.as_deref().map(|s| FindingState::parse("state", s)).transpose()?,
        platform: q.platform_id.map(PlatformId),
    };
    Ok(Json(state.store.findings(reader.scope(), &filter, page).await?))
}

#[utoipa::path(get, path = "/api/v1/findings/{id}", tag = "findings",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = FindingRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<FindingRecord>> {
    let reader = caller.actor.reader().ok_or_else(|| ApiError::forbidden(NOT_YOURS))?;
    state.store.finding(reader.scope(), path_id(&id)?).await?.map(Json).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/v1/findings/analysis", tag = "findings",
    responses((status = 202, description = "Queued: the efficiency analysis job (it also runs every hour)", body = yunzhi_store::JobRecord)))]
pub async fn analyse(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<(axum::http::StatusCode, Json<yunzhi_store::JobRecord>)> {
    caller
        .actor
        .cloud_operator()
        .ok_or_else(|| ApiError::forbidden("the cloud resource admin runs the efficiency analysis"))?;
    let job = crate::worker::analysis::enqueue_analysis(&state, None).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(job)))
}
