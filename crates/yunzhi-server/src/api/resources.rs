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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    /// suspend (stop, keeping it) or resume (start again).
    pub action: String,
    /// Why, for the unit and the log.
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/resources/{id}/actions", tag = "resources", request_body = ActionInput,
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 202, description = "Queued: the job that carries it out", body = yunzhi_store::JobRecord),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 409, description = "Not in a state this action applies to", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: crate::extract::ApiJson<ActionInput>,
) -> ApiResult<(axum::http::StatusCode, Json<yunzhi_store::JobRecord>)> {
    use crate::worker::ResourceAction;
    caller
        .actor
        .cloud_operator()
        .ok_or_else(|| ApiError::forbidden("only the cloud resource admin suspends and resumes resources"))?;
    let mut c = yunzhi_domain::invalid::Checker::new();
    let action = match body.value.action.as_str() {
        "suspend" => Some(ResourceAction::Suspend),
        "resume" => Some(ResourceAction::Resume),
        _ => {
            c.push(yunzhi_domain::FieldError::new(
                "action",
                "unknown_action",
                "action must be suspend or resume",
            ));
            None
        }
    };
    let reason = c.take(yunzhi_domain::text::bounded("reason", &body.value.reason, 2, 500));
    c.finish()?;
    let (Some(action), Some(reason)) = (action, reason) else {
        return Err(ApiError::Internal(anyhow::anyhow!("action and reason were checked above")));
    };
    let id = path_id(&id)?;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let res = tx.resource(id).await?.ok_or(ApiError::NotFound)?;
    let (from, audit) = match action {
        ResourceAction::Resume => (ResourceState::Suspended, "resource.resume"),
        _ => (ResourceState::Active, "resource.suspend"),
    };
    if res.state != from {
        return Err(ApiError::Conflict {
            code: "wrong_state",
            detail: format!(
                "resource {id} is {}; only a {} resource can be asked to {}",
                res.state.code(),
                from.code(),
                action.code()
            ),
            field: None,
        });
    }
    let (zh, en) =
        if action == ResourceAction::Suspend { ("已停用", "suspended") } else { ("已恢复", "resumed") };
    let notice = yunzhi_store::Notice {
        kind: if action == ResourceAction::Suspend { "resource.suspended" } else { "resource.resumed" },
        title: format!("资源 {} {zh}", res.name),
        body: format!("Resource {} was {en} by the cloud resource admin: {reason}", res.name),
        link: Some(format!("/api/v1/resources/{id}")),
        dedup_key: None,
    };
    let key = format!("operator:{}:{id}:{}", action.code(), res.version);
    let job = crate::worker::enqueue_action(&mut tx, &res, action, audit, Some(&notice), key, now).await?;
    tx.audit_event(
        &caller.audit(now),
        &format!("resource.{}_requested", action.code()),
        "resource",
        Some(id.to_string()),
        Some(serde_json::json!({"reason": reason, "job_id": job.id})),
    )
    .await?;
    tx.commit().await?;
    state.worker.notify_one();
    Ok((axum::http::StatusCode::ACCEPTED, Json(job)))
}
