//! Demo mode only: moving the server's clock, so a trainee can watch
//! deadlines pass. The route is not mounted outside demo mode.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use yunzhi_domain::clock::{At, Clock};
use yunzhi_domain::system::parse_date;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockInput {
    /// `YYYY-MM-DD`: the date the server should take as today.
    pub today: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClockOut {
    pub today: String,
    pub now: String,
    /// What the scheduler did at the new date: notices sent, temporary
    /// resources suspended and reclaimed.
    #[schema(value_type = Object)]
    pub scheduler: crate::scheduler::TickReport,
}

#[utoipa::path(post, path = "/api/v1/demo/clock", tag = "demo", request_body = ClockInput,
    responses((status = 200, description = "OK", body = ClockOut), (status = 403, description = "This role may not do this", body = crate::error::Problem)))]
pub async fn set_clock(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<ClockInput>,
) -> ApiResult<Json<ClockOut>> {
    caller
        .actor
        .clock_setter(state.settings.demo)
        .ok_or_else(|| ApiError::forbidden("only the system administrator moves the demo clock"))?;
    let date = parse_date("today", &body.value.today)?;
    let before = state.clock.today();
    let was = state.clock.now();
    let mut tx = state.store.begin().await?;
    let now = state.clock.set_today(date);
    tx.shift_sessions(now.duration_since(was)).await?;
    let details = serde_json::json!({"from": before.to_string(), "to": date.to_string()});
    tx.audit_event(&caller.audit(now), "demo.clock_set", "clock", None, Some(details)).await?;
    tx.commit().await?;
    // Run at once what the new date makes due, so the trainee sees it.
    let scheduler = crate::scheduler::tick(&state).await?;
    // And the jobs it queued (suspensions, reclaims), so the trainee sees
    // their outcome at once rather than a moment later.
    crate::worker::drain(&state, std::time::Duration::from_secs(20)).await?;
    Ok(Json(ClockOut { today: state.clock.today().to_string(), now: At(now).to_string(), scheduler }))
}
