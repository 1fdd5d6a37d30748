//! The caller's own inbox (`/api/v1/notifications`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use yunzhi_store::{NotificationRecord, Page};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// `true` for unread ones only.
    pub unread: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", params(InboxQuery),
    responses((status = 200, description = "The caller's notifications, oldest first")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult<Json<Page<NotificationRecord>>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    Ok(Json(state.store.notifications(caller.actor.user_id, q.unread.unwrap_or(false), page).await?))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 204, description = "Marked read"), (status = 404, description = "Not the caller's", body = crate::error::Problem)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut tx = state.store.begin().await?;
    let mine = tx.mark_read(caller.actor.user_id, path_id(&id)?, state.now().as_millisecond()).await?;
    tx.commit().await?;
    if mine { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound) }
}
