//! Request extractors: a JSON body that fails with a clear problem, the
//! signed-in caller, the client's address, the `Idempotency-Key`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use yunzhi_domain::FieldError;
use yunzhi_domain::access::Actor;
use yunzhi_store::AuditCtx;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body, with the raw bytes kept for idempotency fingerprints.
///
/// Wrong content type → 415; too large → 413; not JSON → 400
/// `malformed_json`; JSON of the wrong shape (missing, unknown or mistyped
/// field) → 422 naming the field.
pub struct ApiJson<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON sent with `Content-Type: application/json`, not `{}`",
                if content_type.is_empty() { "nothing" } else { content_type }
            )));
        }
        let limit = state.settings.body_limit;
        // A body declared too large is refused before a byte of it is read,
        // so a client waiting for `100 Continue` never sends it.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::TooLarge { limit });
        }
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit }
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
        let value = parse_json(&raw)?;
        Ok(ApiJson { value, raw })
    }
}

/// Deserialises `raw`, turning serde's complaint into a problem naming the field.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // serde_path_to_error's path ends at an unknown field itself,
                // but at the parent of a missing one.
                let join = |name: &str| {
                    if path == "." {
                        name.to_owned()
                    } else if path == name || path.ends_with(&format!(".{name}")) {
                        path.clone()
                    } else {
                        format!("{path}.{name}")
                    }
                };
                let quoted = message.split('`').nth(1).unwrap_or("").to_owned();
                let (field, code, detail) = if message.starts_with("unknown field") {
                    let f = join(&quoted);
                    (f.clone(), "unknown_field", format!("{f} is not a field of this request"))
                } else if message.starts_with("missing field") {
                    let f = join(&quoted);
                    (f.clone(), "required", format!("{f} is required"))
                } else {
                    let f = if path == "." { String::new() } else { path.clone() };
                    (f.clone(), "wrong_type", format!("{f}: {message}"))
                };
                ApiError::from(FieldError::new(field, code, detail))
            }
            _ => ApiError::BadRequest {
                code: "malformed_json",
                detail: format!("the body is not valid JSON: {message}"),
                field: None,
            },
        }
    })
}

/// The client's address: the peer of the TCP connection.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())))
    }
}

/// The `Idempotency-Key` header, when sent.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
        match key {
            Some(k) => Ok(IdempotencyKey(Some(k.to_owned()))),
            None => Err(ApiError::BadRequest {
                code: "idempotency_key_format",
                detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                field: Some("Idempotency-Key".into()),
            }),
        }
    }
}

/// The signed-in caller. Rejects with 401 when there is no live session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub session_id: i64,
    pub source: Option<String>,
    pub demo_account: bool,
    /// How the console greets the caller.
    pub display_name: String,
    /// The console language the caller chose (`zh-CN` or `en`).
    pub locale: String,
}

impl Caller {
    /// The audit context of this caller's changes, at `now`.
    pub fn audit(&self, now: jiff::Timestamp) -> AuditCtx {
        AuditCtx {
            actor_id: Some(self.actor.user_id.0),
            actor: self.actor.username.clone(),
            roles: self.actor.roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(","),
            source: self.source.clone(),
            at: now,
        }
    }
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_token(&parts.headers)
}

/// The token of an `Authorization: Bearer …` header: a session's, a host
/// credential, an ingest token.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(parts).map(str::to_owned) else {
            return Err(ApiError::unauthorized(
                "unauthenticated",
                "sign in first: send `Authorization: Bearer <token>` from POST /api/v1/session",
            ));
        };
        let source = ClientAddr::from_request_parts(parts, state).await.unwrap_or(ClientAddr(None)).0;
        Caller::from_token(state, &token, source).await
    }
}

impl Caller {
    /// The caller whose session `token` is: the API's bearer token or the
    /// console's cookie. An unknown token is `unauthenticated`; one unused
    /// for longer than the idle limit (or whose account was disabled since)
    /// ends its session and is `session_expired`.
    pub async fn from_token(
        state: &AppState,
        token: &str,
        source: Option<String>,
    ) -> Result<Caller, ApiError> {
        let Some(session) = state.store.session(&auth::token_digest(token)).await? else {
            return Err(ApiError::unauthorized(
                "unauthenticated",
                "the session is unknown or has ended; sign in again",
            ));
        };
        let now = state.now();
        let user = session.user;
        let idle = now.duration_since(session.last_seen_at);
        let demo_only = user.demo && !state.settings.demo;
        let caller = Caller {
            actor: crate::api::session::actor_of(&user),
            session_id: session.id,
            source,
            demo_account: user.demo,
            display_name: user.display_name.clone(),
            locale: user.locale.clone(),
        };
        if idle > state.settings.session_idle || user.disabled || demo_only {
            let mut tx = state.store.begin().await?;
            tx.close_session(&caller.audit(now), session.id, user.id, "expired").await?;
            tx.commit().await?;
            return Err(ApiError::unauthorized(
                "session_expired",
                format!(
                    "the session expired after {} minutes without use; sign in again",
                    state.settings.session_idle.as_mins()
                ),
            ));
        }
        // Writing on every request would make reads write; a minute's
        // precision is plenty for a thirty-minute idle limit.
        if idle > jiff::SignedDuration::from_mins(1) {
            let mut tx = state.store.begin().await?;
            tx.touch_session(session.id, now).await?;
            tx.commit().await?;
        }
        Ok(caller)
    }
}
