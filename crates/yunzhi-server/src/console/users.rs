//! Accounts, for the system administrator (every account) and a unit's
//! administrator (its own staff): the list, a new account — whose second
//! factor, for the roles that need one, is shown once as a QR code to scan
//! on the spot — unlocking, and setting a new password.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use yunzhi_domain::role::Role;
use yunzhi_domain::user::UserInput;

use super::i18n::Tr;
use super::session::{FormErrors, local_time};
use super::view::{Chrome, page};
use super::{ConsoleError, ConsoleResult, Signed, Submitted};
use crate::api::users::PasswordInput;
use crate::api::{ApiQuery, PageQuery};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub struct Line {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub roles: String,
    pub unit: String,
    pub second_factor: bool,
    pub locked_until: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct NewForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub unit_id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub once: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    t: Tr,
    users: Vec<Line>,
    roles: Vec<(&'static str, String, bool)>,
    units: Vec<(i64, String, bool)>,
    f: &'a NewForm,
    csrf: &'a str,
    once: String,
    errors: FormErrors,
    /// The account just made, and its second factor's QR code (shown once).
    created: Option<(String, Option<String>, Option<String>)>,
    notice: Option<String>,
}

impl UsersPage<'_> {
    /// What was typed in `field` (never the password).
    fn value(&self, field: &str) -> &str {
        match field {
            "username" => &self.f.username,
            "display_name" => &self.f.display_name,
            "email" => &self.f.email,
            _ => "",
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    f: &NewForm,
    chosen: &[String],
    errors: FormErrors,
    created: Option<(String, Option<String>, Option<String>)>,
    notice: Option<String>,
) -> ConsoleResult {
    let t = signed.tr();
    let admin_all = signed.caller.actor.has(Role::SysAdmin);
    let axum::Json(found) = crate::api::users::list(
        State(state.clone()),
        signed.caller.clone(),
        ApiQuery(PageQuery { limit: Some(500), cursor: None }),
    )
    .await?;
    let q = crate::api::units::UnitQuery { q: None, limit: Some(500), cursor: None };
    let axum::Json(units) =
        crate::api::units::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    let unit_name = |id: Option<i64>| {
        id.and_then(|u| units.items.iter().find(|x| x.id.0 == u).map(|x| x.name.clone())).unwrap_or_default()
    };
    let users = found
        .items
        .iter()
        .map(|u| Line {
            id: u.id.0,
            username: u.username.clone(),
            name: u.display_name.clone(),
            roles: u.roles.iter().map(|r| t.name("role", r.code())).collect::<Vec<_>>().join(" / "),
            unit: unit_name(u.unit_id.map(|x| x.0)),
            second_factor: u.totp_enabled,
            locked_until: u.locked_until.filter(|l| l.0 > state.now()).map(|l| local_time(&l.to_string())),
            disabled: u.disabled,
        })
        .collect();
    // A unit administrator makes its own unit's staff only.
    let grantable: Vec<Role> =
        if admin_all { Role::ALL.to_vec() } else { vec![Role::UnitUser, Role::UnitAdmin] };
    let view = UsersPage {
        t,
        users,
        roles: grantable
            .iter()
            .map(|r| (r.code(), t.name("role", r.code()), chosen.iter().any(|c| c == r.code())))
            .collect(),
        units: if admin_all {
            units.items.iter().map(|u| (u.id.0, u.name.clone(), f.unit_id == u.id.0.to_string())).collect()
        } else {
            vec![]
        },
        f,
        csrf: &signed.csrf,
        once: crate::auth::new_token().map_err(ApiError::Internal)?,
        errors,
        created,
        notice,
    };
    let chrome = Chrome::new(signed, state, "/users").await?;
    page(headers, &chrome, t.s("users.title"), &view)
}

/// `GET /users`.
pub async fn list(State(state): State<AppState>, signed: Signed, headers: HeaderMap) -> ConsoleResult {
    render(&state, &signed, &headers, &NewForm::default(), &[], FormErrors::default(), None, None).await
}

/// `POST /users`: a new account through the API's handler.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<Vec<(String, String)>>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let f = NewForm {
        username: get("username"),
        display_name: get("display_name"),
        password: get("password"),
        unit_id: get("unit_id"),
        email: get("email"),
        once: get("once"),
    };
    let roles: Vec<String> = form.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.clone()).collect();
    let input = UserInput {
        username: f.username.trim().to_owned(),
        display_name: f.display_name.trim().to_owned(),
        password: f.password.clone(),
        roles: roles.clone(),
        unit_id: f.unit_id.trim().parse().ok(),
        email: Some(f.email.trim().to_owned()).filter(|e| !e.is_empty()),
    };
    let raw = super::fingerprint(&form)?;
    let key = super::form_key(&f.once);
    let result = crate::api::users::create(
        State(state.clone()),
        signed.caller.clone(),
        key,
        ApiJson { value: input, raw },
    )
    .await;
    match result {
        Ok(response) => {
            let v = super::answer_json(response).await?;
            let uri = v["totp_uri"].as_str().map(str::to_owned);
            let qr = uri.as_deref().map(super::account::qr_data_uri).transpose()?;
            let secret = uri
                .as_deref()
                .and_then(|u| u.split("secret=").nth(1))
                .map(|s| s.split('&').next().unwrap_or("").to_owned());
            let created = Some((v["username"].as_str().unwrap_or("").to_owned(), qr, secret));
            render(&state, &signed, &headers, &NewForm::default(), &[], FormErrors::default(), created, None)
                .await
        }
        Err(e @ ApiError::Internal(_)) => Err(ConsoleError::Api(e)),
        Err(e) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            let kept = NewForm { password: String::new(), ..f };
            render(&state, &signed, &headers, &kept, &roles, errors, None, None).await
        }
    }
}

/// `POST /users/{id}/unlock`.
pub async fn unlock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Submitted<Vec<(String, String)>>,
) -> ConsoleResult {
    crate::api::users::unlock(State(state), posted.signed.caller.clone(), Path(id)).await?;
    Ok(Redirect::to("/users").into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    pub password: String,
}

/// `POST /users/{id}/password`: a new password for someone who lost theirs.
pub async fn reset_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    posted: Submitted<PasswordForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let result = crate::api::users::reset_password(
        State(state.clone()),
        signed.caller.clone(),
        Path(id),
        ApiJson { value: PasswordInput { password: form.password }, raw: Bytes::new() },
    )
    .await;
    let t = signed.tr();
    let notice = match result {
        Ok(_) => t.s("users.password_set").to_owned(),
        Err(e @ ApiError::Internal(_)) => return Err(ConsoleError::Api(e)),
        Err(e) => {
            let p = e.problem();
            let code = p.errors.first().map(|f| f.code.to_owned()).unwrap_or(p.code.clone());
            t.error(&code, &p.detail)
        }
    };
    render(&state, &signed, &headers, &NewForm::default(), &[], FormErrors::default(), None, Some(notice))
        .await
}
