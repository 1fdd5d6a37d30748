//! The audit log, for the audit admin alone: newest first, filtered by
//! actor, action or object, with the SM3 hash chain's status on top.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::i18n::Tr;
use super::session::local_time;
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed, percent};
use crate::api::ApiQuery;
use crate::api::audit::AuditQuery;
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub object_type: String,
    pub cursor: Option<String>,
}

pub struct Line {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub roles: String,
    pub source: String,
    pub action: String,
    pub object: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    t: Tr,
    f: &'a Filters,
    ok: bool,
    checked: i64,
    first_bad: Option<i64>,
    reason: String,
    lines: Vec<Line>,
    older: Option<String>,
}

fn given(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `GET /audit`.
pub async fn log(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> ConsoleResult {
    let t = signed.tr();
    let axum::Json(report) = crate::api::audit::verify(State(state.clone()), signed.caller.clone()).await?;
    let q = AuditQuery {
        object_type: given(&f.object_type),
        object_id: None,
        actor: given(&f.actor),
        action: given(&f.action),
        order: Some("newest".into()),
        limit: Some(100),
        cursor: f.cursor.clone(),
    };
    let axum::Json(found) =
        crate::api::audit::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    let pretty =
        |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| serde_json::to_string_pretty(v).ok());
    let lines = found
        .items
        .iter()
        .map(|r| Line {
            id: r.id,
            at: local_time(&r.at.to_string()),
            actor: r.actor.clone(),
            roles: r
                .roles
                .split(',')
                .filter(|x| !x.is_empty())
                .map(|x| t.name("role", x))
                .collect::<Vec<_>>()
                .join(" / "),
            source: r.source.clone().unwrap_or_default(),
            action: r.action.clone(),
            object: match &r.object_id {
                Some(id) => format!("{} #{id}", r.object_type),
                None => r.object_type.clone(),
            },
            before: pretty(&r.before),
            after: pretty(&r.after),
        })
        .collect();
    let older = found.next_cursor.map(|c| {
        format!(
            "/audit?actor={}&action={}&object_type={}&cursor={}",
            percent(&f.actor),
            percent(&f.action),
            percent(&f.object_type),
            percent(&c)
        )
    });
    let view = AuditPage {
        t,
        f: &f,
        ok: report.ok,
        checked: report.records,
        first_bad: report.first_bad,
        reason: report.reason.unwrap_or_default(),
        lines,
        older,
    };
    let chrome = Chrome::new(&signed, &state, "/audit").await?;
    page(&headers, &chrome, t.s("audit.title"), &view)
}
