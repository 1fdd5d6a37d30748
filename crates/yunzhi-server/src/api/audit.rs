//! The audit log (`/api/v1/audit`): read-only, for the audit admin alone.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use yunzhi_domain::FieldError;
use yunzhi_store::{AuditFilter, AuditRecord, Page, VerifyReport};

use super::{ApiQuery, PageQuery};
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

const ONLY_AUDITOR: &str = "only the audit admin reads the audit log";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `unit`, `system`, `user`, `platform`, `catalog_item`…
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// A username.
    pub actor: Option<String>,
    /// e.g. `system.create`, `session.login_failed`.
    pub action: Option<String>,
    /// `oldest` (default) or `newest` first; a cursor pages on in the same order.
    pub order: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Audit records, oldest first"), (status = 403, description = "This role may not do this", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let reader = caller.actor.audit_reader().ok_or_else(|| ApiError::forbidden(ONLY_AUDITOR))?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.page()?;
    let newest_first = match q.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(_) => {
            return Err(FieldError::new("order", "unknown_order", "order must be oldest or newest").into());
        }
    };
    let filter = AuditFilter {
        newest_first,
        object_type: q.object_type,
        object_id: q.object_id,
        actor: q.actor,
        action: q.action,
    };
    Ok(Json(state.store.audit_list(&reader, &filter, page).await?))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "OK", body = VerifyReport), (status = 403, description = "This role may not do this", body = crate::error::Problem)))]
pub async fn verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<VerifyReport>> {
    let reader = caller.actor.audit_reader().ok_or_else(|| ApiError::forbidden(ONLY_AUDITOR))?;
    Ok(Json(state.store.audit_verify(&reader).await?))
}
