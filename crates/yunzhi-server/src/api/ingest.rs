//! Prometheus remote-write (`POST /api/v1/write`) and the tokens its
//! senders use (`/api/v1/ingest-tokens`, sys_admin). A request is checked
//! (a token, snappy protobuf that decodes) and kept in the inbox before it
//! is acknowledged; the inbox is turned into readings in the background.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use yunzhi_domain::invalid::Checker;
use yunzhi_store::IngestTokenRecord;

use super::path_id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// Who sends with it, e.g. `prometheus-dc1`.
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewToken {
    #[serde(flatten)]
    pub record: IngestTokenRecord,
    /// Shown once: the sender's bearer token.
    pub token: String,
}

/// How long a sender's token is trusted without asking the database again.
/// A token revoked on this server stops at once; one revoked on another
/// server sharing the database stops within this long.
const TOKEN_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// Senders' tokens recently seen, by digest: a busy Prometheus sends many
/// requests a second, each would otherwise cost a query.
#[derive(Default)]
pub struct TokenCache(std::sync::Mutex<std::collections::HashMap<String, (i64, std::time::Instant)>>);

impl TokenCache {
    fn get(&self, digest: &str) -> Option<i64> {
        let seen = self.0.lock().ok()?;
        seen.get(digest).filter(|(_, at)| at.elapsed() < TOKEN_FRESH).map(|(id, _)| *id)
    }

    fn put(&self, digest: String, id: i64) {
        if let Ok(mut seen) = self.0.lock() {
            seen.retain(|_, (_, at)| at.elapsed() < TOKEN_FRESH);
            seen.insert(digest, (id, std::time::Instant::now()));
        }
    }

    fn forget(&self, id: i64) {
        if let Ok(mut seen) = self.0.lock() {
            seen.retain(|_, (known, _)| *known != id);
        }
    }
}

/// The id of the unrevoked token `token`, if it is one.
async fn sender_of(state: &AppState, token: &str) -> ApiResult<Option<i64>> {
    let digest = crate::auth::token_digest(token);
    if let Some(id) = state.ingest_tokens.get(&digest) {
        return Ok(Some(id));
    }
    let Some(record) = state.store.ingest_token_by_digest(&digest).await? else { return Ok(None) };
    state.ingest_tokens.put(digest, record.id);
    Ok(Some(record.id))
}

fn admin(caller: &Caller) -> ApiResult<()> {
    caller
        .actor
        .ingest_token_admin()
        .map(drop)
        .ok_or_else(|| ApiError::forbidden("the system administrator issues and revokes ingest tokens"))
}

#[utoipa::path(post, path = "/api/v1/ingest-tokens", tag = "agents", request_body = TokenInput,
    responses((status = 201, description = "A token for a remote-write sender, shown once", body = NewToken),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<TokenInput>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    admin(&caller)?;
    let mut c = Checker::new();
    let name = c.take(yunzhi_domain::text::bounded("name", &body.value.name, 2, 64));
    c.finish()?;
    let name = name.unwrap_or_default();
    let token = crate::auth::new_token()?;
    let mut tx = state.store.begin().await?;
    let record =
        tx.create_ingest_token(&caller.audit(state.now()), &name, &crate::auth::token_digest(&token)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(NewToken { record, token })))
}

#[utoipa::path(get, path = "/api/v1/ingest-tokens", tag = "agents",
    responses((status = 200, description = "Every ingest token, without its secret", body = Vec<IngestTokenRecord>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<IngestTokenRecord>>> {
    admin(&caller)?;
    Ok(Json(state.store.ingest_tokens().await?))
}

#[utoipa::path(delete, path = "/api/v1/ingest-tokens/{id}", tag = "agents",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Revoked", body = IngestTokenRecord),
        (status = 404, description = "No such token, or already revoked", body = crate::error::Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IngestTokenRecord>> {
    admin(&caller)?;
    let mut tx = state.store.begin().await?;
    let revoked =
        tx.revoke_ingest_token(&caller.audit(state.now()), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    state.ingest_tokens.forget(revoked.id);
    Ok(Json(revoked))
}

#[utoipa::path(post, path = "/api/v1/write", tag = "agents", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "A snappy-compressed remote-write 1.0 WriteRequest"),
    responses((status = 204, description = "Kept; it becomes readings shortly"),
        (status = 400, description = "Not snappy protobuf, or not a WriteRequest (not worth retrying)", body = crate::error::Problem),
        (status = 401, description = "Unknown or revoked ingest token", body = crate::error::Problem),
        (status = 503, description = "The inbox is full: send again after Retry-After seconds", body = crate::error::Problem)))]
pub async fn write(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<StatusCode> {
    let token = crate::extract::bearer_token(&headers).unwrap_or_default();
    let Some(sender) = sender_of(&state, token).await? else {
        return Err(ApiError::unauthorized(
            "invalid_ingest_token",
            "this ingest token is unknown or was revoked",
        ));
    };
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !encoding.eq_ignore_ascii_case("snappy") {
        return Err(ApiError::bad_request(
            "unsupported_encoding",
            "remote-write requests are snappy-compressed protobuf (Content-Encoding: snappy)",
        ));
    }
    // Checked now, so a request that can never be read is refused at once
    // (a 400 is not retried) rather than kept.
    crate::remote_write::check(&body).map_err(|e| ApiError::bad_request("malformed_write_request", e))?;
    if state.remote_write.held() >= state.settings.remote_write_backlog {
        return Err(ApiError::Busy {
            detail: format!(
                "the inbox holds {} requests not yet turned into readings; send this one again shortly",
                state.remote_write.held()
            ),
            retry_after_secs: 5,
        });
    }
    let mut tx = state.store.begin().await?;
    tx.inbox_put(sender, state.now().as_millisecond(), &body).await?;
    tx.commit().await?;
    state.remote_write.ring(&state.metrics);
    Ok(StatusCode::NO_CONTENT)
}
