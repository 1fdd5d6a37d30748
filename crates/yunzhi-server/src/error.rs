//! The one error type at the HTTP edge, answered as RFC 9457 problem JSON.
//!
//! Error policy:
//! * every answer carries a stable `code` a client can branch on; a refused
//!   field is named in `field`, a rule of the regulation in `article`;
//! * a validation error's `code` is `validation`, unless one of its errors is
//!   a rule of the regulation: then the first such rule's code, field and
//!   article lead (e.g. `mlps_level_out_of_range`, `article: 5`); every
//!   error is listed in `errors`;
//! * another unit's object is `not_found`, exactly as a missing one (Art. 19);
//! * database and other internal failures are logged with their cause and
//!   answered as an opaque 500 — never a stack trace or SQL to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use yunzhi_domain::{FieldError, Invalid};
use yunzhi_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the input broke one or more rules.
    #[error("invalid input")]
    Invalid(Invalid),
    /// 422: a rule refused the request (not a format error); its own code
    /// leads, e.g. `calendar_year_unknown`, `quota_exceeded`.
    #[error("{}", .0.detail)]
    Refused(FieldError),
    /// 400: the request could not be read (malformed JSON, bad query string).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String, field: Option<String> },
    /// 401: no valid session, or wrong credentials.
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    /// 403: signed in, but this role may not do this.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String, field: Option<String>, article: Option<u8> },
    /// 404: no such object — or one outside the caller's unit.
    #[error("not found")]
    NotFound,
    /// 405 on a known path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the object changed meanwhile, or a unique value is taken.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String, field: Option<String> },
    /// 413.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 423: the account is locked after repeated failed sign-ins.
    #[error("the account is locked until {until}")]
    Locked { until: String },
    /// 503 with `Retry-After`: too busy to take this now without risking
    /// it; the same request later will be taken.
    #[error("{detail}")]
    Busy { detail: String, retry_after_secs: u64 },
    /// 500: logged, never detailed to the client.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::Forbidden { code: "forbidden", detail: detail.into(), field: None, article: None }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code, detail: detail.into(), field: None }
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Unauthorized { code, detail: detail.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Locked { .. } => StatusCode::LOCKED,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Invalid(e)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Invalid(Invalid::one(e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { field } => ApiError::Conflict {
                code: "duplicate",
                detail: format!("{field} is already in use"),
                field: Some(field.to_owned()),
            },
            StoreError::Conflict(detail) => ApiError::Conflict { code: "conflict", detail, field: None },
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

/// The problem document (RFC 9457) plus Yunzhi's own members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
    /// The id to quote to the operator; the same as the `X-Request-Id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (code, detail, field, article, errors): (
            String,
            String,
            Option<String>,
            Option<u8>,
            Vec<FieldError>,
        ) = match self {
            ApiError::Invalid(invalid) => {
                // A rule of the regulation outranks a plain format error.
                let first = invalid.0.iter().find(|e| e.article.is_some()).unwrap_or(invalid.first());
                let code =
                    if first.article.is_some() { first.code.to_owned() } else { "validation".to_owned() };
                (code, first.detail.clone(), Some(first.field.clone()), first.article, invalid.0.clone())
            }
            ApiError::Refused(e) => {
                (e.code.to_owned(), e.detail.clone(), Some(e.field.clone()), e.article, vec![e.clone()])
            }
            ApiError::BadRequest { code, detail, field } => {
                ((*code).into(), detail.clone(), field.clone(), None, vec![])
            }
            ApiError::Unauthorized { code, detail } => ((*code).into(), detail.clone(), None, None, vec![]),
            ApiError::Forbidden { code, detail, field, article } => {
                ((*code).into(), detail.clone(), field.clone(), *article, vec![])
            }
            ApiError::NotFound => ("not_found".into(), "no such object".into(), None, None, vec![]),
            ApiError::MethodNotAllowed => (
                "method_not_allowed".into(),
                "this path does not take this method".into(),
                None,
                None,
                vec![],
            ),
            ApiError::Conflict { code, detail, field } => {
                ((*code).into(), detail.clone(), field.clone(), None, vec![])
            }
            ApiError::TooLarge { .. } => ("payload_too_large".into(), self.to_string(), None, None, vec![]),
            ApiError::UnsupportedMediaType(d) => {
                ("unsupported_media_type".into(), d.clone(), None, None, vec![])
            }
            ApiError::Locked { .. } => ("account_locked".into(), self.to_string(), None, None, vec![]),
            ApiError::Busy { detail, .. } => ("busy".into(), detail.clone(), None, None, vec![]),
            ApiError::Internal(_) => (
                "internal".into(),
                "something went wrong on our side; it has been logged".into(),
                None,
                None,
                vec![],
            ),
        };
        Problem {
            kind: format!("urn:yunzhi:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code,
            field,
            article,
            errors,
            request_id: crate::request_id::current(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, request_id = crate::request_id::current(), "request failed");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let ApiError::Busy { retry_after_secs, .. } = &self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
