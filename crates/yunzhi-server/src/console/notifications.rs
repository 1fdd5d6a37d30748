//! The notifications inbox: newest first, unread marked, each leading to
//! the page it is about; reading one marks it read.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::i18n::{Lang, Tr};
use super::session::local_time;
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed, Submitted};
use crate::state::AppState;

/// What the inbox shows at most; older ones stay in the API's pages.
const SHOWN: i64 = 200;

pub struct Line {
    pub id: i64,
    pub text: String,
    pub at: String,
    pub unread: bool,
    /// The console page the notification is about, if there is one.
    pub href: Option<String>,
}

/// The console's page for an API link the notification carries.
fn console_link(api: &str) -> Option<String> {
    let rest = api.strip_prefix("/api/v1/")?;
    let (section, id) = rest.split_once('/')?;
    let known = matches!(section, "requests" | "warnings" | "findings");
    (known && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| format!("/{section}/{id}"))
}

#[derive(Debug, Deserialize, Default)]
pub struct InboxQuery {
    /// `1`: every notification, read ones too.
    #[serde(default)]
    pub all: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct InboxPage<'a> {
    t: Tr,
    all: bool,
    lines: Vec<Line>,
    csrf: &'a str,
}

/// `GET /notifications`.
pub async fn inbox(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> ConsoleResult {
    let t = signed.tr();
    let all = q.all == "1";
    let found = state.store.latest_notifications(signed.caller.actor.user_id, !all, SHOWN).await?;
    let lines = found
        .into_iter()
        .map(|n| Line {
            id: n.id,
            // Titles are written in Chinese, bodies in English.
            text: if t.lang == Lang::En { n.body } else { n.title },
            at: local_time(&n.created_at.to_string()),
            unread: n.read_at.is_none(),
            href: n.link.as_deref().and_then(console_link),
        })
        .collect();
    let view = InboxPage { t, all, lines, csrf: &signed.csrf };
    let chrome = Chrome::new(&signed, &state, "/notifications").await?;
    page(&headers, &chrome, t.s("notifications.title"), &view)
}

#[derive(Debug, Deserialize, Default)]
pub struct ReadForm {
    /// Where to go once it is marked read.
    #[serde(default)]
    pub to: String,
}

/// `POST /notifications/{id}/read`: marks it read (through the API's
/// handler) and goes on to the page it is about, or back to the inbox.
pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Submitted<ReadForm>,
) -> ConsoleResult {
    crate::api::notifications::read(State(state), posted.signed.caller.clone(), Path(id)).await?;
    let to = super::local_path(Some(&posted.form.to));
    Ok(Redirect::to(if to == "/" { "/notifications" } else { &to }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_link_leads_to_its_console_page_when_there_is_one() {
        assert_eq!(console_link("/api/v1/warnings/12").as_deref(), Some("/warnings/12"));
        assert_eq!(console_link("/api/v1/requests/3").as_deref(), Some("/requests/3"));
        assert_eq!(console_link("/api/v1/resources/3"), None);
        assert_eq!(console_link("/api/v1/requests/3/../x"), None);
        assert_eq!(console_link("https://elsewhere/api/v1/requests/3"), None);
    }
}
