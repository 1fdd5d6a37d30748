//! The efficiency rules in effect (Art. 13), and where the analysis reads
//! the hosts' daily figures from: every signed-in user may read them — a
//! unit should know what counts as idle before it is told it is — and the
//! system administrator changes them, audited. The analysis reads both at
//! every pass.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use yunzhi_domain::FieldError;
use yunzhi_domain::efficiency::Rules;
use yunzhi_domain::invalid::Checker;

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

/// The caller as the system administrator, who alone changes these settings.
fn admin(caller: &Caller) -> ApiResult<yunzhi_domain::access::EfficiencySettingsAdmin> {
    caller.actor.efficiency_settings_admin().ok_or_else(|| {
        ApiError::forbidden("the system administrator sets the efficiency rules and their source")
    })
}

/// Keeps a checked setting, audited; `_admin` is the proof of who may.
async fn change(
    state: &AppState,
    caller: &Caller,
    _admin: yunzhi_domain::access::EfficiencySettingsAdmin,
    key: &str,
    value: &impl serde::Serialize,
) -> ApiResult<()> {
    let value = serde_json::to_value(value).map_err(anyhow::Error::from)?;
    let mut tx = state.store.begin().await?;
    tx.change_setting(&caller.audit(state.now()), key, &value).await?;
    tx.commit().await?;
    Ok(())
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
    let admin = admin(&caller)?;
    let rules = body.value;
    rules.check()?;
    change(&state, &caller, admin, RULES_KEY, &rules).await?;
    Ok(Json(rules))
}

/// Where the analysis reads the hosts' daily figures from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnalysisSource {
    /// Yunzhi's own daily rollups, fed by its agents and remote-write (the default).
    Rollups,
    /// A Prometheus-compatible store (Prometheus, VictoriaMetrics, Thanos
    /// Query) fed by node_exporter, read over its HTTP query API: for sites
    /// whose monitoring outgrew one machine.
    Prometheus {
        /// The store's base URL, e.g. `http://vm.dc1:8428`.
        url: String,
        /// Seconds between the CPU samples read inside a day; must divide an hour. Default 300.
        #[serde(default = "default_step")]
        step_secs: u32,
        /// The window of `rate()` over CPU counters; at least two scrapes. Default 300.
        #[serde(default = "default_step")]
        rate_window_secs: u32,
        /// The label carrying Yunzhi's resource id. Default `yunzhi_resource_id`.
        #[serde(default = "default_resource_label")]
        resource_label: String,
        /// The label naming the host when the resource label is absent. Default `instance`.
        #[serde(default = "default_instance_label")]
        instance_label: String,
        /// Seconds one query may take. Default 60.
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
}

fn default_step() -> u32 {
    300
}
fn default_resource_label() -> String {
    "yunzhi_resource_id".into()
}
fn default_instance_label() -> String {
    "instance".into()
}
fn default_timeout() -> u64 {
    60
}

/// Where the source is kept in the settings table.
const SOURCE_KEY: &str = "efficiency_source";

impl AnalysisSource {
    /// The store's client, or why these settings cannot make one (named as
    /// the field `prometheus` with the store's own reason).
    pub fn prometheus(
        &self,
    ) -> Result<Option<yunzhi_promsource::PromSource>, yunzhi_domain::invalid::Invalid> {
        let AnalysisSource::Prometheus {
            url,
            step_secs,
            rate_window_secs,
            resource_label,
            instance_label,
            timeout_secs,
        } = self
        else {
            return Ok(None);
        };
        let config = yunzhi_promsource::PromSourceConfig {
            step_secs: *step_secs,
            rate_window_secs: *rate_window_secs,
            resource_label: resource_label.clone(),
            instance_label: instance_label.clone(),
            timeout: std::time::Duration::from_secs(*timeout_secs),
            ..Default::default()
        };
        let mut c = Checker::new();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            c.push(FieldError::new("url", "invalid_url", "url must be an http:// or https:// address"));
        }
        if !(1..=3600).contains(timeout_secs) {
            c.push(FieldError::new(
                "timeout_secs",
                "out_of_range",
                "timeout_secs must be between 1 and 3600",
            ));
        }
        c.finish()?;
        yunzhi_promsource::PromSource::new(url, config).map(Some).map_err(|e| {
            yunzhi_domain::invalid::Invalid(vec![FieldError::new(
                "prometheus",
                "invalid_source",
                e.to_string(),
            )])
        })
    }
}

/// The source in effect: the one set through the API, else the rollups.
pub async fn source_in_effect(state: &AppState) -> anyhow::Result<AnalysisSource> {
    match state.store.setting(SOURCE_KEY).await? {
        Some(text) => Ok(serde_json::from_str(&text)?),
        None => Ok(AnalysisSource::Rollups),
    }
}

#[utoipa::path(get, path = "/api/v1/efficiency/source", tag = "findings",
    responses((status = 200, description = "Where the analysis reads the hosts' daily figures from", body = AnalysisSource)))]
pub async fn source(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<AnalysisSource>> {
    Ok(Json(source_in_effect(&state).await?))
}

#[utoipa::path(put, path = "/api/v1/efficiency/source", tag = "findings", request_body = AnalysisSource,
    responses((status = 200, description = "The source now in effect, used from the next pass", body = AnalysisSource),
        (status = 403, description = "Only the system administrator changes the source", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn set_source(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<AnalysisSource>,
) -> ApiResult<Json<AnalysisSource>> {
    let admin = admin(&caller)?;
    let source = body.value;
    source.prometheus()?;
    change(&state, &caller, admin, SOURCE_KEY, &source).await?;
    Ok(Json(source))
}
