//! The signed-in user's own account: who they are, changing the password,
//! and enrolling the second factor by scanning a QR code. Both changes go
//! through the API's handlers, which ask for the password again.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::i18n::Tr;
use super::session::FormErrors;
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed, Submitted};
use crate::api::session::{PasswordChange, TotpEnrolment};
use crate::auth;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct AccountQuery {
    /// What was just done: `password` or `totp`.
    #[serde(default)]
    pub done: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    t: Tr,
    username: &'a str,
    display_name: &'a str,
    roles: Vec<String>,
    totp_enabled: bool,
    done: &'a str,
    csrf: &'a str,
    /// The seed offered for enrolment, its QR code (an SVG data URI).
    secret: String,
    qr: String,
    /// Which form came back with errors: `password` or `totp`.
    failed: &'a str,
    errors: FormErrors,
}

impl AccountPage<'_> {
    fn label(&self, field: &str) -> &'static str {
        match field {
            "current_password" => "account.current_password",
            "new_password" => "account.new_password",
            _ => "account.repeat_password",
        }
    }
}

/// An `otpauth://` URI as a QR code, ready for `<img src>`.
pub fn qr_data_uri(uri: &str) -> Result<String, ApiError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("QR code: {e}")))?;
    let svg =
        code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    Ok(format!("data:image/svg+xml;base64,{}", data_encoding::BASE64.encode(svg.as_bytes())))
}

async fn render(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    done: &str,
    failed: &str,
    secret: Option<String>,
    errors: FormErrors,
) -> ConsoleResult {
    let t = signed.tr();
    let actor = &signed.caller.actor;
    let record = state.store.auth_by_username(&actor.username).await?.ok_or(ApiError::NotFound)?;
    let secret = match secret {
        Some(s) => s,
        None => auth::new_totp_secret().map_err(ApiError::Internal)?,
    };
    let qr = qr_data_uri(&auth::totp_uri(&secret, &actor.username))?;
    let view = AccountPage {
        t,
        username: &actor.username,
        display_name: &signed.caller.display_name,
        roles: actor.roles.iter().map(|r| t.name("role", r.code())).collect(),
        totp_enabled: record.totp_secret.is_some(),
        done,
        csrf: &signed.csrf,
        secret,
        qr,
        failed,
        errors,
    };
    let chrome = Chrome::new(signed, state, "/account").await?;
    page(headers, &chrome, t.s("account.title"), &view)
}

/// `GET /account`.
pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> ConsoleResult {
    let done = match q.done.as_str() {
        "password" => "password",
        "totp" => "totp",
        _ => "",
    };
    render(&state, &signed, &headers, done, "", None, FormErrors::default()).await
}

#[derive(Debug, Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub repeat_password: String,
}

/// `POST /account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<PasswordForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let t = signed.tr();
    if form.new_password != form.repeat_password {
        let errors = FormErrors {
            fields: vec![("repeat_password".into(), t.s("account.repeat_differs").to_owned())],
            form: None,
        };
        return render(&state, &signed, &headers, "", "password", None, errors).await;
    }
    let input = PasswordChange { current_password: form.current_password, new_password: form.new_password };
    let result = crate::api::session::change_password(
        State(state.clone()),
        signed.caller.clone(),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/account?done=password").into_response()),
        Err(e @ ApiError::Internal(_)) => Err(e.into()),
        Err(e) => {
            let errors = FormErrors::from_api(t, &e);
            render(&state, &signed, &headers, "", "password", None, errors).await
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct TotpForm {
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub code: String,
}

/// `POST /account/totp`.
pub async fn enrol_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<TotpForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let secret = form.secret.clone();
    let input = TotpEnrolment { password: form.password, secret: form.secret, code: form.code };
    let result = crate::api::session::enrol_totp(
        State(state.clone()),
        signed.caller.clone(),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/account?done=totp").into_response()),
        Err(e @ ApiError::Internal(_)) => Err(e.into()),
        Err(e) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            // The same seed again: the phone may already hold it.
            let keep =
                (secret.len() <= 64 && secret.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(secret);
            render(&state, &signed, &headers, "", "totp", keep, errors).await
        }
    }
}
