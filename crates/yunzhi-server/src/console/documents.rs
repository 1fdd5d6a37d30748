//! Documents: a system's evidence (project approval, quota basis, the
//! go-live gate's security reports) and a request's attachments, listed on
//! their pages, uploaded from a plain file field, downloaded by the API's
//! own handler (which checks the caller may read them).

use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use yunzhi_store::DocumentRecord;

use super::i18n::Tr;
use super::session::local_time;
use super::{ConsoleError, ConsoleResult, Signed};
use crate::api::ApiQuery;
use crate::api::documents::UploadQuery;
use crate::error::ApiError;
use crate::extract::IdempotencyKey;
use crate::state::AppState;

pub const KINDS: [&str; 6] = [
    "project_approval",
    "quota_basis",
    "security_self_check",
    "security_assessment",
    "security_hardening",
    "other",
];

pub struct DocLine {
    pub id: i64,
    pub kind: String,
    pub filename: String,
    pub size: String,
    pub at: String,
}

pub fn lines(t: Tr, docs: &[DocumentRecord]) -> Vec<DocLine> {
    docs.iter()
        .map(|d| DocLine {
            id: d.id,
            kind: t.name("document_kind", d.kind.code()),
            filename: d.filename.clone(),
            size: if d.size >= 1024 * 1024 {
                format!("{:.1} MB", d.size as f64 / 1024.0 / 1024.0)
            } else {
                format!("{} KB", u64::try_from(d.size).unwrap_or(0).div_ceil(1024))
            },
            at: local_time(&d.created_at.to_string()),
        })
        .collect()
}

/// The kinds to choose from, labelled.
pub fn kinds(t: Tr) -> Vec<(&'static str, String)> {
    KINDS.iter().map(|k| (*k, t.name("document_kind", k))).collect()
}

/// The format a file's name says, for browsers that send every file of an
/// unfamiliar kind (OFD, often) as `application/octet-stream`.
fn format_of(filename: &str, sent: &str) -> String {
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let by_name = match ext.as_str() {
        "pdf" => "application/pdf",
        "ofd" => "application/ofd",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "",
    };
    if sent.is_empty() || sent == "application/octet-stream" { by_name.to_owned() } else { sent.to_owned() }
}

/// A file sent from the page, with its form's fields.
struct Upload {
    kind: String,
    filename: String,
    content_type: String,
    bytes: axum::body::Bytes,
}

async fn read(signed: &Signed, mut form: Multipart) -> ConsoleResult<Upload> {
    let (mut csrf, mut kind, mut file) = (String::new(), String::new(), None);
    while let Some(field) = form.next_field().await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ConsoleError::Api(ApiError::TooLarge { limit: yunzhi_domain::document::MAX_DOCUMENT_BYTES })
        } else {
            ConsoleError::Api(ApiError::bad_request("bad_form", format!("the upload could not be read: {e}")))
        }
    })? {
        match field.name().unwrap_or("") {
            "_csrf" => csrf = field.text().await.unwrap_or_default(),
            "kind" => kind = field.text().await.unwrap_or_default(),
            "file" => {
                let filename = field.file_name().unwrap_or("").to_owned();
                let sent = field.content_type().unwrap_or("").to_owned();
                let bytes = field.bytes().await.map_err(|_| {
                    ConsoleError::Api(ApiError::TooLarge {
                        limit: yunzhi_domain::document::MAX_DOCUMENT_BYTES,
                    })
                })?;
                file = Some((filename, sent, bytes));
            }
            _ => {}
        }
    }
    if csrf != signed.csrf {
        return Err(ConsoleError::Api(ApiError::Forbidden {
            code: "form_expired",
            detail: "this form is from an earlier session; reload the page and send it again".into(),
            field: None,
            article: None,
        }));
    }
    let (filename, sent, bytes) = file.unwrap_or_default();
    Ok(Upload { kind, content_type: format_of(&filename, &sent), filename, bytes })
}

/// Where to go after an upload: back to the page, saying how it went.
fn back(page: &str, result: Result<Response, ApiError>) -> ConsoleResult {
    match result {
        Ok(_) => Ok(Redirect::to(&format!("{page}?uploaded=1#documents")).into_response()),
        Err(e @ ApiError::Internal(_)) => Err(ConsoleError::Api(e)),
        Err(e) => {
            // The rule that refused the file, not the umbrella `validation`.
            let problem = e.problem();
            let code = problem.errors.first().map(|f| f.code.to_owned()).unwrap_or(problem.code);
            Ok(Redirect::to(&format!("{page}?doc_error={code}#documents")).into_response())
        }
    }
}

fn upload_parts(u: &Upload) -> (UploadQuery, HeaderMap, Body) {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&u.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let q = UploadQuery { kind: u.kind.clone(), filename: u.filename.clone() };
    (q, headers, Body::from(u.bytes.clone()))
}

/// `POST /systems/{id}/documents`.
pub async fn upload_to_system(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Multipart,
) -> ConsoleResult {
    let u = read(&signed, form).await?;
    let (q, headers, body) = upload_parts(&u);
    let result = crate::api::documents::upload(
        State(state),
        signed.caller.clone(),
        IdempotencyKey(None),
        Path(id.clone()),
        ApiQuery(q),
        headers,
        body,
    )
    .await;
    back(&format!("/systems/{}", crate::api::path_id(&id)?), result)
}

/// `POST /requests/{id}/documents`.
pub async fn upload_to_request(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Multipart,
) -> ConsoleResult {
    let u = read(&signed, form).await?;
    let (q, headers, body) = upload_parts(&u);
    let result = crate::api::documents::upload_to_request(
        State(state),
        signed.caller.clone(),
        IdempotencyKey(None),
        Path(id.clone()),
        ApiQuery(q),
        headers,
        body,
    )
    .await;
    back(&format!("/requests/{}", crate::api::path_id(&id)?), result)
}

/// `GET /documents/{id}`: the file, by the API's handler.
pub async fn download(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> ConsoleResult {
    Ok(crate::api::documents::download(State(state), signed.caller.clone(), Path(id)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sent_as_octet_stream_is_taken_by_its_name() {
        assert_eq!(format_of("批复.OFD", "application/octet-stream"), "application/ofd");
        assert_eq!(format_of("a.pdf", ""), "application/pdf");
        assert_eq!(
            format_of("a.pdf", "image/png"),
            "image/png",
            "what the browser said stands, and is checked"
        );
        assert_eq!(format_of("a.exe", "application/octet-stream"), "");
    }
}
