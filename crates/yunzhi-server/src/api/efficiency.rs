//! The efficiency rules in effect (Art. 13): every signed-in user may read
//! them — a unit should know what counts as idle before it is told it is —
//! and the system administrator changes them, audited. The analysis reads
//! them at every pass.

use axum::Json;
use axum::extract::State;
use yunzhi_domain::efficiency::Rules;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

/// Where the rules are kept in the settings table.
const RULES_KEY: &str = "efficiency_rules";

/// The rules in effect: the ones set through the API, else the shipped defaults.
pub async fn rules_in_effect(state: &AppState) -> anyhow::Result<Rules> {
    match state.store.setting(RULES_KEY).await? {
        Some(text) => Ok(serde_json::from_str(&text)?),
        None => Ok(state.settings.efficiency.clone()),
    }
}

#[utoipa::path(get, path = "/api/v1/efficiency/rules", tag = "findings",
    responses((status = 200, description = "The efficiency rules and thresholds in effect (Art. 13)", body = Rules)))]
pub async fn rules(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Rules>> {
    Ok(Json(rules_in_effect(&state).await?))
}

#[utoipa::path(put, path = "/api/v1/efficiency/rules", tag = "findings", request_body = Rules,
    responses((status = 200, description = "The rules now in effect; fields left out take their defaults", body = Rules),
        (status = 403, description = "Only the system administrator changes the rules", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn set_rules(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<Rules>,
) -> ApiResult<Json<Rules>> {
    caller
        .actor
        .efficiency_settings_admin()
        .ok_or_else(|| ApiError::forbidden("the system administrator sets the efficiency rules"))?;
    let rules = body.value;
    rules.check()?;
    let mut tx = state.store.begin().await?;
    tx.change_setting(
        &caller.audit(state.now()),
        RULES_KEY,
        &serde_json::to_value(&rules).map_err(anyhow::Error::from)?,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(rules))
}
