//! What every console page shares: the layout around its fragment (header,
//! navigation by role, language switch, demo banner), whole-or-fragment
//! answering, and the error page.

use askama::Template;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use yunzhi_domain::clock::Clock;

use super::i18n::Tr;
use super::{ConsoleResult, Signed, assets, wants_fragment};
use crate::error::ApiError;
use crate::state::AppState;

/// One entry of the navigation.
pub struct NavItem {
    pub href: &'static str,
    pub key: &'static str,
    pub active: bool,
}

/// How a share of a quota reads: within it, past it but within the
/// expansion limit (Art. 10, `Settings::sla`), or past that too.
pub fn quota_verdict(percent: u64, limit: u32) -> &'static str {
    if percent > u64::from(limit) {
        "over"
    } else if percent > 100 {
        "warn"
    } else {
        "ok"
    }
}

/// The layout's part of a page.
pub struct Chrome {
    pub t: Tr,
    pub display_name: String,
    /// The signed-in user's roles, by name.
    pub roles: Vec<String>,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    /// In demo mode, the server's (movable) date.
    pub demo_today: Option<String>,
    /// The page's own path, to come back to after switching language.
    pub here: String,
    /// Unread notifications, for the inbox's badge.
    pub unread: i64,
    /// In demo mode, whether this user may move the clock.
    pub moves_clock: bool,
}

impl Chrome {
    pub async fn new(signed: &Signed, state: &AppState, here: &str) -> ConsoleResult<Chrome> {
        let t = Tr::current();
        let actor = &signed.caller.actor;
        let section = here.split(['/', '?']).nth(1).unwrap_or("");
        let mut nav = vec![NavItem { href: "/", key: "nav.home", active: section.is_empty() }];
        if actor.reader().is_some() {
            nav.push(NavItem { href: "/systems", key: "nav.systems", active: section == "systems" });
            nav.push(NavItem { href: "/requests", key: "nav.requests", active: section == "requests" });
            nav.push(NavItem { href: "/findings", key: "nav.findings", active: section == "findings" });
            nav.push(NavItem { href: "/warnings", key: "nav.warnings", active: section == "warnings" });
            nav.push(NavItem { href: "/resources", key: "nav.resources", active: section == "resources" });
        }
        // The Big Data Center's pages (the office and the leaders read them too).
        if actor.platform_reader().is_some() {
            nav.push(NavItem { href: "/platforms", key: "nav.platforms", active: section == "platforms" });
            nav.push(NavItem { href: "/jobs", key: "nav.jobs", active: section == "jobs" });
        }
        if actor.account_admin().is_some() {
            nav.push(NavItem { href: "/users", key: "nav.users", active: section == "users" });
        }
        if actor.calendar_editor().is_some() {
            nav.push(NavItem { href: "/calendar", key: "nav.calendar", active: section == "calendar" });
        }
        if actor.efficiency_settings_admin().is_some() || actor.has(yunzhi_domain::role::Role::Office) {
            nav.push(NavItem { href: "/settings", key: "nav.settings", active: section == "settings" });
        }
        if actor.audit_reader().is_some() {
            nav.push(NavItem { href: "/audit", key: "nav.audit", active: section == "audit" });
        }
        nav.push(NavItem {
            href: "/notifications",
            key: "nav.notifications",
            active: section == "notifications",
        });
        Ok(Chrome {
            t,
            display_name: signed.caller.display_name.clone(),
            roles: actor.roles.iter().map(|r| t.name("role", r.code())).collect(),
            csrf: signed.csrf.clone(),
            nav,
            demo_today: state.settings.demo.then(|| state.clock.today().to_string()),
            here: here.to_owned(),
            unread: state.store.unread_count(actor.user_id).await?,
            moves_clock: actor.clock_setter(state.settings.demo).is_some(),
        })
    }
}

#[derive(Template)]
#[template(path = "layout.html")]
struct Layout<'a> {
    c: &'a Chrome,
    t: Tr,
    title: &'a str,
    body: &'a str,
}

impl Layout<'_> {
    fn asset(&self, name: &str) -> String {
        assets::url(name)
    }
}

/// Answers with `fragment`: alone when htmx asked for part of a page,
/// else inside the layout. A form sent back with its errors answers 200
/// too, not 422: browsers log every 4xx load as a console error.
pub fn page(headers: &HeaderMap, chrome: &Chrome, title: &str, fragment: &impl Template) -> ConsoleResult {
    let body = fragment.render()?;
    if wants_fragment(headers) {
        return Ok(Html(body).into_response());
    }
    let layout = Layout { c: chrome, t: chrome.t, title, body: &body };
    Ok(Html(layout.render()?).into_response())
}

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: Tr,
    heading: &'a str,
    message: String,
    request_id: Option<String>,
    css: String,
}

/// A refusal or failure as a page in the user's language.
pub fn error_page(e: &ApiError) -> Response {
    error_page_in(Tr::current(), e)
}

/// [`error_page`] in the language `t` speaks.
pub fn error_page_in(t: Tr, e: &ApiError) -> Response {
    if let ApiError::Internal(cause) = e {
        tracing::error!(error = ?cause, request_id = crate::request_id::current(), "console page failed");
    }
    let problem = e.problem();
    let heading = match e {
        ApiError::NotFound => t.s("error.page.not_found"),
        ApiError::Forbidden { .. } => t.s("error.page.forbidden"),
        ApiError::Internal(_) => t.s("error.page.internal"),
        _ => t.s("error.page.refused"),
    };
    let page = ErrorPage {
        t,
        heading,
        message: t.error(&problem.code, &problem.detail),
        request_id: problem.request_id,
        css: assets::url("console.css"),
    };
    (e.status(), page).into_response()
}
