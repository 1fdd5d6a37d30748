//! Evidence files of a system (`/api/v1/systems/{id}/documents`,
//! `/api/v1/documents/{id}`): uploaded by the unit, read within scope.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use yunzhi_domain::document::{DocumentMeta, MAX_DOCUMENT_BYTES};
use yunzhi_domain::ids::SystemId;
use yunzhi_domain::request::RequestState;
use yunzhi_domain::system::SystemState;
use yunzhi_store::{DocumentRecord, Page};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, IdempotencyKey};
use crate::idempotent;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// project_approval, quota_basis, security_self_check, security_assessment, security_hardening, other.
    pub kind: String,
    /// The file's name as the user knows it, e.g. `立项批复.pdf`.
    pub filename: String,
}

#[utoipa::path(post, path = "/api/v1/systems/{id}/documents", tag = "documents", params(("id" = i64, Path, description = "The object's id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf", description = "The file itself: PDF, OFD, PNG, JPEG, DOCX or XLSX, at most 20 MiB"),
    responses((status = 201, description = "Created", body = DocumentRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 413, description = "Too large", body = crate::error::Problem), (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let registrar = caller
        .actor
        .system_registrar()
        .ok_or_else(|| ApiError::forbidden("only a unit's staff or the cloud resource admin add evidence"))?;
    let id = SystemId(path_id(&id)?);
    let system = state.store.system(registrar.scope(), id).await?.ok_or(ApiError::NotFound)?;
    if system.system.state == SystemState::Retired {
        return Err(ApiError::Forbidden {
            code: "system_retired",
            detail: "a retired system takes no new documents".into(),
            field: None,
            article: None,
        });
    }
    let (meta, body) = read_upload(&q, &headers, body).await?;
    let ctx = caller.audit(state.now());
    let route = format!("POST /systems/{}/documents?{}&{}", id.0, q.kind, q.filename);
    idempotent::create(&state, &caller, key, &route, &body, async |tx| {
        Ok(tx.create_document(&registrar, &ctx, &system, None, &meta, &body).await?)
    })
    .await
}

/// Reads an upload: refused from its declared length before its bytes are
/// read when too large (a client waiting for `100 Continue` then never
/// sends them), then checked for kind, name, format and content.
async fn read_upload(q: &UploadQuery, headers: &HeaderMap, body: Body) -> ApiResult<(DocumentMeta, Bytes)> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_DOCUMENT_BYTES) {
        return Err(ApiError::TooLarge { limit: MAX_DOCUMENT_BYTES });
    }
    let body: Bytes = axum::body::to_bytes(body, MAX_DOCUMENT_BYTES).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
            ApiError::TooLarge { limit: MAX_DOCUMENT_BYTES }
        } else {
            ApiError::bad_request("unreadable_body", format!("the upload could not be read: {e}"))
        }
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let meta = DocumentMeta::parse(&q.kind, &q.filename, content_type, &body)?;
    Ok((meta, body))
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/documents", tag = "documents", params(("id" = i64, Path, description = "The object's id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf", description = "The file: PDF, OFD, PNG, JPEG, DOCX or XLSX, at most 20 MiB"),
    responses((status = 201, description = "Attached", body = DocumentRecord),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 409, description = "The request is decided", body = crate::error::Problem)))]
pub async fn upload_to_request(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let filer = caller
        .actor
        .requester()
        .ok_or_else(|| ApiError::forbidden("evidence is attached by the unit's staff"))?;
    let registrar = caller
        .actor
        .system_registrar()
        .ok_or_else(|| ApiError::forbidden("evidence is attached by the unit's staff"))?;
    let request = state.store.request(filer.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    if !matches!(request.state, RequestState::InReview | RequestState::Returned) {
        return Err(ApiError::Conflict {
            code: "request_decided",
            detail: format!(
                "the request is {}; evidence is attached while it is in review or returned",
                request.state.code()
            ),
            field: None,
        });
    }
    let system = state.store.system(filer.scope(), request.system_id).await?.ok_or(ApiError::NotFound)?;
    let (meta, body) = read_upload(&q, &headers, body).await?;
    let ctx = caller.audit(state.now());
    let route = format!("POST /requests/{}/documents?{}&{}", request.id, q.kind, q.filename);
    idempotent::create(&state, &caller, key, &route, &body, async |tx| {
        Ok(tx.create_document(&registrar, &ctx, &system, Some(request.id), &meta, &body).await?)
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/requests/{id}/documents", tag = "documents",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "The request's documents"), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn list_for_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<DocumentRecord>>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read requests"))?;
    let request = state.store.request(reader.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    let items = state.store.request_documents(reader.scope(), request.id).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

#[utoipa::path(get, path = "/api/v1/systems/{id}/documents", tag = "documents", params(("id" = i64, Path, description = "The object's id"), PageQuery),
    responses((status = 200, description = "The system's documents, oldest first"), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<DocumentRecord>>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read systems"))?;
    let id = SystemId(path_id(&id)?);
    state.store.system(reader.scope(), id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(state.store.documents(reader.scope(), id, q.page()?).await?))
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII
/// fallback for old clients and the real, often Chinese, name for the rest.
fn disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents", params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "The file"), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read systems"))?;
    let (doc, content) =
        state.store.document(reader.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, doc.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition(&doc.filename)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        content,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chinese_filename_is_sent_both_ways() {
        assert_eq!(
            disposition("批复 1.pdf"),
            "attachment; filename=\"___1.pdf\"; filename*=UTF-8''%E6%89%B9%E5%A4%8D%201.pdf"
        );
    }
}
