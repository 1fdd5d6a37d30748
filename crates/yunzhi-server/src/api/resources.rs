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
    /// suspend (stop, keeping it), resume (start again) or resize (within the
    /// system's quota; needs `size`).
    pub action: String,
    /// Why, for the unit and the log.
    pub reason: String,
    /// The new size, for resize.
    #[serde(default)]
    pub size: Option<SizeInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SizeInput {
    pub vcpu: i64,
    pub memory_gib: i64,
    pub storage_gib: i64,
}

impl SizeInput {
    fn parse(&self, c: &mut yunzhi_domain::invalid::Checker) -> Option<yunzhi_domain::request::Demand> {
        let mut n = |field: &str, v: i64| match u64::try_from(v) {
            Ok(v) if v <= 1_000_000 => Some(v),
            _ => {
                c.push(yunzhi_domain::FieldError::new(
                    format!("size.{field}"),
                    "out_of_range",
                    format!("size.{field} must be a whole number from 0 to 1000000"),
                ));
                None
            }
        };
        let (v, m, s) =
            (n("vcpu", self.vcpu), n("memory_gib", self.memory_gib), n("storage_gib", self.storage_gib));
        Some(yunzhi_domain::request::Demand { vcpu: v?, memory_gib: m?, storage_gib: s? })
    }
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
    let reason = c.take(yunzhi_domain::text::bounded("reason", &body.value.reason, 2, 500));
    if body.value.action == "resize" {
        let size = match &body.value.size {
            Some(size) => size.parse(&mut c),
            None => {
                c.push(yunzhi_domain::FieldError::new("size", "required", "a resize needs the new size"));
                None
            }
        };
        c.finish()?;
        let (Some(size), Some(reason)) = (size, reason) else {
            return Err(ApiError::Internal(anyhow::anyhow!("size and reason were checked above")));
        };
        return resize(&state, &caller, path_id(&id)?, size, reason).await;
    }
    let action = match body.value.action.as_str() {
        "suspend" => Some(ResourceAction::Suspend),
        "resume" => Some(ResourceAction::Resume),
        _ => {
            c.push(yunzhi_domain::FieldError::new(
                "action",
                "unknown_action",
                "action must be suspend, resume or resize",
            ));
            None
        }
    };
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

/// Queues a resize the system's quota allows (Art. 8): one at a time per
/// system, so two resizes cannot each fit and together overshoot.
async fn resize(
    state: &AppState,
    caller: &Caller,
    id: i64,
    size: yunzhi_domain::request::Demand,
    reason: String,
) -> ApiResult<(axum::http::StatusCode, Json<yunzhi_store::JobRecord>)> {
    use yunzhi_domain::access::Scope;
    let now = state.now();
    let mut tx = state.store.begin().await?;
    let res = tx.resource(id).await?.ok_or(ApiError::NotFound)?;
    if !matches!(res.state, ResourceState::Active | ResourceState::Suspended) {
        return Err(ApiError::Conflict {
            code: "wrong_state",
            detail: format!(
                "resource {id} is {}; only an active or suspended resource is resized",
                res.state.code()
            ),
            field: None,
        });
    }
    tx.lock_system(res.system_id).await?;
    for job in tx.unfinished_jobs("resize").await? {
        let other = job.payload["resource_id"].as_i64();
        let of_system = match other {
            Some(other) => tx.resource(other).await?.is_some_and(|r| r.system_id == res.system_id),
            None => false,
        };
        if of_system {
            return Err(ApiError::Conflict {
                code: "resize_in_progress",
                detail: format!(
                    "a resize of this system is not finished yet (job {}); retry or cancel it first",
                    job.id
                ),
                field: None,
            });
        }
    }
    let system = tx.system(Scope::AllUnits, res.system_id).await?.ok_or(ApiError::NotFound)?;
    let in_use = tx.quota_in_use(res.system_id, 0).await?;
    let old = yunzhi_domain::request::Demand {
        vcpu: res.vcpu.max(0) as u64,
        memory_gib: res.memory_gib.max(0) as u64,
        storage_gib: res.storage_gib.max(0) as u64,
    };
    yunzhi_domain::resource::check_resize(res.kind, &system.system.quota, in_use, old, size)?;
    let job = tx
        .enqueue_job(
            &yunzhi_store::NewJob {
                kind: "resize".into(),
                dedup_key: Some(format!("operator:resize:{id}:{}", res.version)),
                payload: serde_json::json!({"resource_id": id, "size": size}),
                run_at: now,
                max_attempts: 10,
            },
            now,
        )
        .await?;
    tx.audit_event(
        &caller.audit(now),
        "resource.resize_requested",
        "resource",
        Some(id.to_string()),
        Some(serde_json::json!({"reason": reason, "job_id": job.id, "from": old, "to": size})),
    )
    .await?;
    tx.commit().await?;
    state.worker.notify_one();
    Ok((axum::http::StatusCode::ACCEPTED, Json(job)))
}
