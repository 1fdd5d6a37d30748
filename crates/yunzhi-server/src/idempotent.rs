//! Creates that honour `Idempotency-Key`: the same key with the same body
//! answers the first result again; with another body, a 422.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sm3::{Digest, Sm3};
use yunzhi_store::{StoreError, StoredResponse, Tx};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, IdempotencyKey};
use crate::state::AppState;

fn fingerprint(route: &str, body: &[u8]) -> String {
    let mut h = Sm3::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(body);
    data_encoding::HEXLOWER.encode(&h.finalize())
}

fn respond(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

fn replay(saved: StoredResponse, fp: &str) -> ApiResult<Response> {
    if saved.fingerprint != fp {
        return Err(ApiError::from(yunzhi_domain::FieldError::new(
            "Idempotency-Key",
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
        )));
    }
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    Ok(respond(status, saved.body, true))
}

/// Runs `create` in one transaction with the saved answer, answering 201.
pub async fn create<T, F>(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    route: &str,
    raw_body: &[u8],
    create: F,
) -> ApiResult<Response>
where
    T: Serialize,
    F: AsyncFnOnce(&mut Tx) -> ApiResult<T>,
{
    let user = caller.actor.user_id;
    let fp = fingerprint(route, raw_body);
    let mut tx = state.store.begin().await?;
    if let Some(key) = &key.0 {
        if let Some(saved) = tx.idempotent_response(user, key).await? {
            return replay(saved, &fp);
        }
        match tx.reserve_idempotency_key(user, key, &fp, state.now().as_millisecond()).await {
            Ok(()) => {}
            // Another request with this key committed first while we
            // waited: ours rolls back, and the winner's answer is the answer.
            Err(StoreError::Duplicate { .. }) => {
                drop(tx);
                let mut tx = state.store.begin().await?;
                let saved = tx.idempotent_response(user, key).await?.ok_or_else(|| ApiError::Conflict {
                    code: "conflict",
                    detail: "a request with this Idempotency-Key is in progress; retry".into(),
                    field: None,
                })?;
                return replay(saved, &fp);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let created = create(&mut tx).await?;
    let body = serde_json::to_string(&created).map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(key) = &key.0 {
        let saved = StoredResponse { fingerprint: fp, status: 201, body: body.clone() };
        tx.save_idempotent_response(user, key, &saved).await?;
    }
    tx.commit().await?;
    Ok(respond(StatusCode::CREATED, body, false))
}
