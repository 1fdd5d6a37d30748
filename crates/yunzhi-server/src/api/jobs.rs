//! Background jobs (`/api/v1/jobs`): what is running, waiting and failed,
//! with a manual retry and cancel for the cloud resource admin.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use yunzhi_domain::FieldError;
use yunzhi_domain::ids::JobId;
use yunzhi_store::{JobRecord, Page};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// queued, running, done, failed, cancelled.
    pub state: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const STATES: [&str; 5] = ["queued", "running", "done", "failed", "cancelled"];

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, description = "Jobs, oldest first, with their attempts and last error")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<Json<Page<JobRecord>>> {
    caller
        .actor
        .platform_reader()
        .ok_or_else(|| ApiError::forbidden("jobs are the Big Data Center's to see"))?;
    if let Some(s) = q.state.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(FieldError::new(
            "state",
            "unknown_state",
            format!("state must be one of {}, not {s}", STATES.join(", ")),
        )
        .into());
    }
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    Ok(Json(state.store.jobs(q.state.as_deref(), page).await?))
}

/// A job with every attempt at it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: JobRecord,
    /// Each attempt: its worker, start, end, outcome and error.
    pub history: Vec<yunzhi_store::JobAttempt>,
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "The job and every attempt at it", body = JobDetail),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDetail>> {
    caller
        .actor
        .platform_reader()
        .ok_or_else(|| ApiError::forbidden("jobs are the Big Data Center's to see"))?;
    let id = JobId(path_id(&id)?);
    let job = state.store.begin().await?.job(id).await?.ok_or(ApiError::NotFound)?;
    let history = state.store.job_attempts(id).await?;
    Ok(Json(JobDetail { job, history }))
}

async fn act(state: &AppState, caller: &Caller, raw: &str, retry: bool) -> ApiResult<Json<JobRecord>> {
    caller
        .actor
        .cloud_operator()
        .ok_or_else(|| ApiError::forbidden("only the cloud resource admin retries and cancels jobs"))?;
    let mut tx = state.store.begin().await?;
    let current = tx.job(JobId(path_id(raw)?)).await?.ok_or(ApiError::NotFound)?;
    let ctx = caller.audit(state.now());
    let updated =
        if retry { tx.retry_job(&ctx, &current).await? } else { tx.cancel_job(&ctx, &current).await? };
    tx.commit().await?;
    if retry {
        state.worker.notify_one();
    }
    Ok(Json(updated))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Queued again", body = JobRecord), (status = 409, description = "Not failed or cancelled", body = crate::error::Problem)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobRecord>> {
    act(&state, &caller, &id, true).await
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Cancelled", body = JobRecord), (status = 409, description = "Already running or finished", body = crate::error::Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<JobRecord>> {
    act(&state, &caller, &id, false).await
}
