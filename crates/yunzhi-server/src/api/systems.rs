//! Information systems (`/api/v1/systems`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use yunzhi_domain::FieldError;
use yunzhi_domain::access::Scope;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::ids::{SystemId, UnitId};
use yunzhi_domain::role::Role;
use yunzhi_domain::system::{
    EditRefusal, Editor, NewSystem, SystemInput, SystemPatch, SystemPatchInput, SystemState,
};
use yunzhi_store::{Page, SystemFilter, SystemRecord};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, IdempotencyKey};
use crate::idempotent;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SystemQuery {
    /// Only this unit's systems.
    pub unit_id: Option<i64>,
    /// Only systems in this state: draft, approved, online, retired.
    pub state: Option<String>,
    /// Part of the name or the project approval number.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl SystemQuery {
    pub fn filter(&self) -> ApiResult<SystemFilter> {
        Ok(SystemFilter {
            unit: self.unit_id.map(UnitId),
            state: self.state.as_deref().map(|s| SystemState::parse("state", s)).transpose()?,
            q: self.q.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }
}

#[utoipa::path(get, path = "/api/v1/systems", tag = "systems", params(SystemQuery),
    responses((status = 200, description = "Systems the caller may see")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SystemQuery>,
) -> ApiResult<Json<Page<SystemRecord>>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read systems"))?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    Ok(Json(state.store.systems(reader.scope(), &q.filter()?, page).await?))
}

#[utoipa::path(get, path = "/api/v1/systems/{id}", tag = "systems", params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = SystemRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SystemRecord>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read systems"))?;
    let system = state.store.system(reader.scope(), SystemId(path_id(&id)?)).await?;
    system.map(Json).ok_or(ApiError::NotFound)
}

#[utoipa::path(post, path = "/api/v1/systems", tag = "systems", request_body = SystemInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first result")),
    responses((status = 201, description = "Created", body = SystemRecord), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<SystemInput>,
) -> ApiResult<Response> {
    let registrar = caller.actor.system_registrar().ok_or_else(|| {
        ApiError::forbidden("only a unit's staff or the cloud resource admin register systems")
    })?;
    let unit = match (body.value.unit_id, registrar.scope()) {
        (Some(u), _) => UnitId(u),
        (None, Scope::Unit(own)) => own,
        (None, Scope::AllUnits) => {
            return Err(FieldError::new(
                "unit_id",
                "required",
                "unit_id is required: name the unit the system belongs to",
            )
            .into());
        }
    };
    let new = NewSystem::parse(&body.value, unit)?;
    let ctx = caller.audit(state.now());
    idempotent::create(&state, &caller, key, "POST /systems", &body.raw, async |tx| {
        // Another unit's id is refused exactly as a missing one (Art. 19).
        tx.create_system(&registrar, &ctx, &new).await?.ok_or_else(|| {
            FieldError::new("unit_id", "unknown_unit", format!("there is no unit {}", unit.0)).into()
        })
    })
    .await
}

#[utoipa::path(patch, path = "/api/v1/systems/{id}", tag = "systems", request_body = SystemPatchInput,
    params(("id" = i64, Path, description = "The object's id"), ("If-Match" = Option<String>, Header, description = "The version last read; refuses the change if it moved on")),
    responses((status = 200, description = "OK", body = SystemRecord), (status = 403, description = "This role may not do this", body = crate::error::Problem),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem), (status = 409, description = "Conflict: taken, or changed meanwhile", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<SystemPatchInput>,
) -> ApiResult<Json<SystemRecord>> {
    let registrar = caller
        .actor
        .system_registrar()
        .ok_or_else(|| ApiError::forbidden("only a unit's staff or the cloud resource admin edit systems"))?;
    let id = SystemId(path_id(&id)?);
    let patch = SystemPatch::parse(&body.value, state.clock.today())?;
    if patch.is_empty() {
        return Err(FieldError::new("", "empty_patch", "the request changes nothing").into());
    }
    let editor = if caller.actor.has(Role::CloudAdmin) { Editor::CloudAdmin } else { Editor::UnitStaff };
    let ctx = caller.audit(state.now());
    let mut tx = state.store.begin().await?;
    let current = tx.system(registrar.scope(), id).await?.ok_or(ApiError::NotFound)?;
    if let Some(expected) = headers.get("if-match").and_then(|v| v.to_str().ok())
        && expected.trim_matches('"') != current.version.to_string()
    {
        return Err(ApiError::Conflict {
            code: "version_mismatch",
            detail: format!("the system is at version {}, not {expected}; reload it", current.version),
            field: None,
        });
    }
    let next = current.system.apply(&patch, editor).map_err(|refusal| match refusal {
        EditRefusal::Invalid(invalid) => ApiError::Invalid(invalid),
        EditRefusal::NotAllowed(f) => {
            ApiError::Forbidden { code: f.code, detail: f.detail, field: Some(f.field), article: f.article }
        }
    })?;
    let updated = tx.update_system(&registrar, &ctx, &current, &next).await?;
    tx.commit().await?;
    Ok(Json(updated))
}
