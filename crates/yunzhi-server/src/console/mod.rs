//! The web console: server-rendered pages (askama templates) made lively
//! with htmx, in Chinese by default and English on request.
//!
//! A page is a fragment wrapped in the layout (header, navigation, demo
//! banner). A request htmx makes for part of a page (`HX-Request` without
//! `HX-Boosted`) gets the fragment alone; a link or form that htmx boosts,
//! or a browser without JavaScript, gets the whole page. Every form also
//! works as a plain POST answered by a redirect.
//!
//! The console is a client of the same handlers as the JSON API: it calls
//! them with the signed-in caller, so a page can never see or do more than
//! the API lets that caller see or do, and a refusal reads the same.

pub mod account;
pub mod assets;
pub mod audit;
pub mod calendar;
pub mod documents;
pub mod findings;
pub mod home;
pub mod i18n;
pub mod notifications;
pub mod operations;
pub mod requests;
pub mod session;
pub mod settings;
pub mod systems;
pub mod users;
pub mod view;
pub mod warnings;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sm3::{Digest, Sm3};

use crate::error::ApiError;
use crate::extract::{Caller, ClientAddr};
use crate::state::AppState;
use i18n::Tr;

/// The cookie that carries the console's session token.
pub const SESSION_COOKIE: &str = "yunzhi_session";

/// A document upload: the file's limit and the form around it.
const UPLOAD_LIMIT: usize = yunzhi_domain::document::MAX_DOCUMENT_BYTES + 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page_handler))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/lang", post(session::set_lang))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/account/totp", post(account::enrol_totp))
        .route("/systems", get(systems::list))
        .route("/systems/new", get(systems::new_form).post(systems::create))
        .route("/systems/{id}", get(systems::detail))
        .route(
            "/systems/{id}/documents",
            post(documents::upload_to_system).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route(
            "/requests/{id}/documents",
            post(documents::upload_to_request).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/documents/{id}", get(documents::download))
        .route("/systems/{id}/edit", get(systems::edit_form).post(systems::update))
        .route("/requests", get(requests::list))
        .route("/requests/new", get(requests::new_form).post(requests::create))
        .route("/requests/{id}", get(requests::detail))
        .route("/requests/{id}/decision", post(requests::decide))
        .route("/warnings", get(warnings::list))
        .route("/warnings/{id}", get(warnings::detail))
        .route("/warnings/{id}/answer", post(warnings::answer))
        .route("/warnings/{id}/decision", post(warnings::decide))
        .route("/notifications", get(notifications::inbox))
        .route("/notifications/{id}/read", post(notifications::read))
        .route("/demo/clock", post(session::move_clock))
        .route("/platforms", get(operations::platforms))
        .route("/resources", get(operations::resources))
        .route("/jobs", get(operations::jobs))
        .route("/jobs/{id}/retry", post(operations::retry))
        .route("/jobs/{id}/cancel", post(operations::cancel))
        .route("/audit", get(audit::log))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}/unlock", post(users::unlock))
        .route("/users/{id}/password", post(users::reset_password))
        .route("/settings", get(settings::show).post(settings::save))
        .route("/calendar", get(calendar::years))
        .route("/calendar/{year}", get(calendar::year).post(calendar::save))
        .route("/findings", get(findings::list))
        .route("/findings/{id}", get(findings::detail))
        .route("/findings/{id}/review", post(findings::review))
        .layer(axum::middleware::from_fn(i18n::scope))
        .layer(axum::middleware::from_fn(security_headers))
        .route("/assets/{name}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
}

/// What a browser should enforce on every console page: scripts and styles
/// only from the server itself (htmx and ECharts are embedded), no framing.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The value of cookie `name`, if the request sent it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Whether htmx asked for part of a page rather than a whole one.
pub fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-boosted")
}

/// A path inside the console to go back to: only a local absolute path,
/// never another site (`//evil`) or a scheme.
pub fn local_path(raw: Option<&str>) -> String {
    raw.filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.contains("://"))
        .unwrap_or("/")
        .to_owned()
}

/// The token a form proves it came from this console with: bound to the
/// session, so it cannot be guessed without the session cookie.
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sm3::digest(format!("yunzhi-console-form:{session_token}").as_bytes());
    data_encoding::HEXLOWER.encode(&digest[..16])
}

/// The signed-in user of a console page. Without a live session the page
/// sends the browser to sign in (and back afterwards).
#[derive(Debug, Clone)]
pub struct Signed {
    pub caller: Caller,
    /// The token that forms of this session carry (see [`csrf_token`]).
    pub csrf: String,
}

impl Signed {
    pub fn tr(&self) -> Tr {
        Tr::current()
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let htmx = parts.headers.contains_key("hx-request");
        let next = (parts.method == axum::http::Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_owned()))
            .flatten();
        let sign_in = |expired| ConsoleError::SignIn { expired, next: next.clone(), htmx };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Err(sign_in(false));
        };
        let source = ClientAddr::from_request_parts(parts, state).await.unwrap_or(ClientAddr(None)).0;
        match Caller::from_token(state, &token, source).await {
            Ok(caller) => Ok(Signed { caller, csrf: csrf_token(&token) }),
            Err(ApiError::Unauthorized { code: "session_expired", .. }) => Err(sign_in(true)),
            Err(ApiError::Unauthorized { .. }) => Err(sign_in(false)),
            Err(e) => Err(ConsoleError::Api(e)),
        }
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// A form posted by the signed-in user: the fields, after checking that
/// the form came from this console (its `_csrf` field, or htmx's
/// `X-CSRF-Token` header, matches the session's token).
pub struct Submitted<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Submitted<T> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let header = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = axum::body::to_bytes(body, state.settings.body_limit)
            .await
            .map_err(|_| ConsoleError::Api(ApiError::TooLarge { limit: state.settings.body_limit }))?;
        let field = serde_urlencoded::from_bytes::<CsrfField>(&bytes).map(|f| f.csrf).unwrap_or_default();
        if header.as_deref() != Some(signed.csrf.as_str()) && field != signed.csrf {
            return Err(ConsoleError::Api(ApiError::Forbidden {
                code: "form_expired",
                detail: "this form is from an earlier session; reload the page and send it again".into(),
                field: None,
                article: None,
            }));
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            ConsoleError::Api(ApiError::bad_request("bad_form", format!("the form is not understood: {e}")))
        })?;
        Ok(Submitted { signed, form })
    }
}

/// What a console page can fail with.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session: go and sign in, then come back to `next`.
    SignIn { expired: bool, next: Option<String>, htmx: bool },
    /// Anything the API would refuse, shown as a page in the user's language.
    Api(ApiError),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api(e)
    }
}

impl From<yunzhi_store::StoreError> for ConsoleError {
    fn from(e: yunzhi_store::StoreError) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        ConsoleError::Api(ApiError::Internal(anyhow::Error::new(e).context("rendering a console page")))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::SignIn { expired, next, htmx } => {
                let mut to = String::from("/login");
                let mut query = Vec::new();
                if let Some(next) = next.filter(|n| n != "/") {
                    query.push(format!("next={}", percent(&next)));
                }
                if expired {
                    query.push("expired=1".into());
                }
                if !query.is_empty() {
                    to = format!("{to}?{}", query.join("&"));
                }
                if htmx {
                    // htmx follows a redirect inside the page; this makes
                    // the whole browser go to the sign-in page instead.
                    let mut r = StatusCode::NO_CONTENT.into_response();
                    if let Ok(v) = HeaderValue::from_str(&to) {
                        r.headers_mut().insert("hx-redirect", v);
                    }
                    r
                } else {
                    Redirect::to(&to).into_response()
                }
            }
            ConsoleError::Api(e) => view::error_page(&e),
        }
    }
}

pub type ConsoleResult<T = Response> = Result<T, ConsoleError>;

/// A form's idempotency key: the random `once` token the page put in it,
/// so that a double click or a resend files one object, not two.
pub fn form_key(once: &str) -> crate::extract::IdempotencyKey {
    let once = once.trim();
    crate::extract::IdempotencyKey(
        (!once.is_empty() && once.len() <= 64 && once.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| format!("console:{once}")),
    )
}

/// What makes a resend the same submission: its fields, not its form token.
pub fn fingerprint(pairs: &[(String, String)]) -> ConsoleResult<axum::body::Bytes> {
    let fields: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "_csrf").collect();
    Ok(serde_json::to_vec(&fields).map_err(|e| ApiError::Internal(e.into()))?.into())
}

/// The JSON an API handler answered with (a create's 201 body), for the
/// page to go on from: the new object's id, a one-time enrolment URI.
pub async fn answer_json(response: Response) -> ConsoleResult<serde_json::Value> {
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading an API handler's answer: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| ConsoleError::Api(ApiError::Internal(e.into())))
}

/// `s` percent-encoded for a query string.
pub fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/findings/3?x=1")), "/findings/3?x=1");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; yunzhi_session=tok; yunzhi_lang=en"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "yunzhi_lang").as_deref(), Some("en"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn a_form_token_is_bound_to_its_session() {
        assert_eq!(csrf_token("abc"), csrf_token("abc"));
        assert_ne!(csrf_token("abc"), csrf_token("abd"));
        assert_eq!(csrf_token("abc").len(), 32);
    }
}
