//! Signing in and out of the console, and the language switch.
//!
//! Sign-in goes through the API's own handler, so the console has exactly
//! its rules: the lockout after repeated failures, the second factor for
//! every role but unit staff, the one-use TOTP step. The session token it
//! returns is kept in an HttpOnly cookie the page's scripts cannot read.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::i18n::{self, Lang, Tr};
use super::{ConsoleError, ConsoleResult, SESSION_COOKIE, Submitted, assets, local_path, percent};
use crate::api::session::LoginInput;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, ClientAddr};
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    pub next: Option<String>,
    pub expired: Option<String>,
    /// The language to show the page in (and remember in the browser).
    pub lang: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub totp: String,
    #[serde(default)]
    pub next: String,
}

/// An error shown beside a field, or above the form when it has none.
#[derive(Debug, Default)]
pub struct FormErrors {
    pub fields: Vec<(String, String)>,
    pub form: Option<String>,
}

impl FormErrors {
    /// The message beside `field`, if any.
    pub fn on(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    /// The errors a refusal names, in the user's language.
    pub fn from_api(t: Tr, e: &ApiError) -> FormErrors {
        let problem = e.problem();
        let mut out = FormErrors::default();
        if problem.errors.is_empty() {
            let message = t.error(&problem.code, &problem.detail);
            match problem.field {
                Some(f) => out.fields.push((f, message)),
                None => out.form = Some(message),
            }
        } else {
            for fe in &problem.errors {
                let mut message = t.error(fe.code, &fe.detail);
                if let Some(article) = fe.article {
                    message = format!("{message}{}", t.f("error.article", "n", article));
                }
                out.fields.push((fe.field.clone(), message));
            }
        }
        out
    }
}

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    t: Tr,
    /// `/login?lang=…&next=…` in the other language.
    switch: String,
    css: String,
    favicon: String,
    username: &'a str,
    next: &'a str,
    expired: bool,
    /// Ask for the second factor prominently (the account needs one).
    totp_needed: bool,
    errors: FormErrors,
    demo: bool,
}

/// The sign-in page. Sent back with its errors it still answers 200:
/// browsers log every 4xx load as a console error.
fn render_login(page: LoginPage<'_>) -> ConsoleResult {
    Ok(page.into_response())
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> ConsoleResult {
    let chosen = q.lang.as_deref().and_then(Lang::parse);
    let t = chosen.map(Tr::new).unwrap_or_else(Tr::current);
    let next = local_path(q.next.as_deref());
    let mut response = render_login(LoginPage {
        t,
        switch: format!("/login?lang={}&next={}", t.lang.other().code(), percent(&next)),
        css: assets::url("console.css"),
        favicon: assets::url("favicon.svg"),
        username: "",
        next: &next,
        expired: q.expired.is_some(),
        totp_needed: false,
        errors: FormErrors::default(),
        demo: state.settings.demo,
    })?;
    if let Some(lang) = chosen {
        set_cookie(&mut response, i18n::COOKIE, lang.code(), Some(365 * 86_400), over_https(&headers));
    }
    Ok(response)
}

/// Whether the request came through a proxy that ended TLS, so that the
/// cookies may be marked `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: Option<i64>, https: bool) {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax");
    if name == SESSION_COOKIE {
        c.push_str("; HttpOnly");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if https {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    address: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ConsoleResult {
    let t = Tr::current();
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let next = local_path(Some(&form.next));
    let input = LoginInput {
        username: form.username.clone(),
        password: form.password,
        totp: Some(form.totp.trim().to_owned()).filter(|c| !c.is_empty()),
    };
    let source = address.0.clone();
    let result = crate::api::session::login(
        State(state.clone()),
        address,
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    let session = match result {
        Ok((_, Json(session))) => session,
        Err(e @ ApiError::Internal(_)) => return Err(ConsoleError::Api(e)),
        Err(e) => {
            let problem = e.problem();
            let mut errors = FormErrors::default();
            let message = t.error(&problem.code, &problem.detail);
            let totp_needed =
                matches!(problem.code.as_str(), "totp_required" | "totp_invalid" | "totp_not_enrolled");
            match problem.code.as_str() {
                "totp_required" | "totp_invalid" | "totp_not_enrolled" => {
                    errors.fields.push(("totp".into(), message))
                }
                "invalid_credentials" => errors.fields.push(("password".into(), message)),
                "account_locked" => {
                    let until = match &e {
                        ApiError::Locked { until } => until.clone(),
                        _ => String::new(),
                    };
                    errors.form = Some(t.f("error.account_locked", "until", local_time(&until)));
                }
                _ => errors.form = Some(message),
            }
            return render_login(LoginPage {
                t,
                switch: format!("/login?lang={}&next={}", t.lang.other().code(), percent(&next)),
                css: assets::url("console.css"),
                favicon: assets::url("favicon.svg"),
                username: &form.username,
                next: &next,
                expired: false,
                totp_needed,
                errors,
                demo: state.settings.demo,
            });
        }
    };
    let caller = Caller::from_token(&state, &session.token, source).await?;
    let mut response = Redirect::to(&next).into_response();
    let https = over_https(&headers);
    set_cookie(&mut response, SESSION_COOKIE, &session.token, None, https);
    set_cookie(&mut response, i18n::COOKIE, &caller.locale, Some(365 * 86_400), https);
    Ok(response)
}

/// A stored RFC 3339 instant as the district's wall-clock time, `YYYY-MM-DD HH:MM`.
pub fn local_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|ts| ts.to_zoned(yunzhi_domain::clock::district_zone()).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<NoFields>,
) -> ConsoleResult {
    let caller = &posted.signed.caller;
    crate::api::session::logout(State(state), caller.clone()).await?;
    let mut response = Redirect::to("/login").into_response();
    set_cookie(&mut response, SESSION_COOKIE, "", Some(0), over_https(&headers));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct LangForm {
    pub lang: String,
    #[serde(default)]
    pub back: String,
}

/// `POST /lang`: switches the console's language and keeps the choice
/// with the account, so it follows the user to another browser.
pub async fn set_lang(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<LangForm>,
) -> ConsoleResult {
    let Some(lang) = Lang::parse(&posted.form.lang) else {
        return Err(ConsoleError::Api(ApiError::from(yunzhi_domain::FieldError::new(
            "lang",
            "unknown_language",
            "lang must be zh-CN or en",
        ))));
    };
    let caller = &posted.signed.caller;
    let mut tx = state.store.begin().await?;
    tx.set_locale(&caller.audit(state.now()), caller.actor.user_id, lang.code()).await?;
    tx.commit().await?;
    let mut response = Redirect::to(&local_path(Some(&posted.form.back))).into_response();
    set_cookie(&mut response, i18n::COOKIE, lang.code(), Some(365 * 86_400), over_https(&headers));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct ClockForm {
    #[serde(default)]
    pub today: String,
    #[serde(default)]
    pub back: String,
}

/// `POST /demo/clock` (demo mode, the system administrator): moves the
/// server's date through the API's own handler, which runs what the new
/// date makes due, so a trainee watches deadlines pass.
pub async fn move_clock(State(state): State<AppState>, posted: Submitted<ClockForm>) -> ConsoleResult {
    if !state.settings.demo {
        return Err(ConsoleError::Api(ApiError::NotFound));
    }
    let input = crate::api::demo::ClockInput { today: posted.form.today.clone() };
    let axum::Json(_moved) = crate::api::demo::set_clock(
        State(state),
        posted.signed.caller.clone(),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await?;
    Ok(Redirect::to(&local_path(Some(&posted.form.back))).into_response())
}
