//! The home page: what this user has to do today, by role. A unit sees
//! its systems, its open requests with their deadlines and the warnings it
//! must answer; approvers and the office their queue, overdue first, with
//! the working days left; the office also the findings awaiting review and
//! the suspension proposals; the Big Data Center's operator the findings
//! and the failed jobs.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::role::Role;

use super::findings::Row as FindingRow;
use super::i18n::Tr;
use super::operations::Use;
use super::requests::{Line, Liner, decides, query, request_query};
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed};
use crate::api::ApiQuery;
use crate::api::findings::FindingQuery;
use crate::api::jobs::JobQuery;
use crate::api::systems::SystemQuery;
use crate::api::warnings::WarningQuery;
use crate::state::AppState;

pub struct SystemLine {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub quota: String,
    /// The most used of its quota's classes, in percent.
    pub percent: u64,
    pub verdict: &'static str,
}

pub struct WarningLine {
    pub id: i64,
    pub title: String,
    pub state: String,
    pub deadline: String,
}

pub struct JobLine {
    pub id: i64,
    pub kind: String,
    pub attempts: i64,
    pub error: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    t: Tr,
    greeting: String,
    today: String,
    queue: Option<Vec<Line>>,
    mine: Option<Vec<Line>>,
    systems: Option<Vec<SystemLine>>,
    warnings: Option<Vec<WarningLine>>,
    proposals: Option<Vec<WarningLine>>,
    findings: Option<Vec<FindingRow>>,
    failed_jobs: Option<Vec<JobLine>>,
    capacity: Option<Vec<(String, Vec<Use>)>>,
    audit: bool,
}

/// `GET /`.
pub async fn page_handler(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
) -> ConsoleResult {
    let t = signed.tr();
    let actor = &signed.caller.actor;
    let caller = &signed.caller;
    let today = state.clock.today();
    let Some(reader) = actor.reader() else {
        // The audit admin reads the log and nothing else.
        let home = HomePage {
            t,
            greeting: t.f("home.greeting", "name", &signed.caller.display_name),
            today: today.to_string(),
            queue: None,
            mine: None,
            systems: None,
            warnings: None,
            proposals: None,
            findings: None,
            failed_jobs: None,
            capacity: None,
            audit: true,
        };
        return page(&headers, &Chrome::new(&signed, &state, "/").await?, t.s("nav.home"), &home);
    };
    let mut liner = Liner::new(&state, reader.scope(), t).await?;
    let queue = if decides(&signed) {
        let found =
            query(&state, &signed, request_query(Some("in_review"), None, Some("mine"), None)).await?;
        Some(liner.lines(found.items).await?)
    } else {
        None
    };
    let unit_staff = actor.roles.is_unit_staff();
    let mine = if unit_staff {
        let mut all = Vec::new();
        for st in ["in_review", "returned", "approved"] {
            all.extend(query(&state, &signed, request_query(Some(st), None, None, None)).await?.items);
        }
        Some(liner.lines(all).await?)
    } else {
        None
    };
    let systems = if unit_staff {
        let q = SystemQuery { unit_id: None, state: None, q: None, limit: Some(50), cursor: None };
        let axum::Json(page) =
            crate::api::systems::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
        let mut lines = Vec::new();
        for s in page.items {
            // The quota's use, of a system the API has just shown this caller.
            let used = state.store.quota_in_use(s.id).await?;
            let q = &s.system.quota;
            let share = used.percent_of(q);
            let percent = share.vcpu.max(share.memory_gib).max(share.storage_gib).min(999);
            lines.push(SystemLine {
                id: s.id.0,
                state: t.name("system_state", s.system.state.code()),
                quota: t.f2(
                    "home.quota",
                    ("cpu", &q.vcpu),
                    ("mem", &format!("{} GiB · {} GiB", q.memory_gib, q.storage_gib)),
                ),
                percent,
                verdict: super::view::quota_verdict(percent, state.settings.sla.expansion_limit_percent),
                name: s.system.name,
            });
        }
        Some(lines)
    } else {
        None
    };
    let warning_lines = async |wanted: &str| -> ConsoleResult<Vec<WarningLine>> {
        let q = WarningQuery { state: Some(wanted.into()), limit: Some(50), cursor: None };
        let axum::Json(page) =
            crate::api::warnings::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
        Ok(page
            .items
            .into_iter()
            .map(|w| WarningLine {
                id: w.id,
                state: t.name("warning_state", w.state.code()),
                deadline: w.deadline.to_string(),
                title: w.title,
            })
            .collect())
    };
    let warnings = if unit_staff { Some(warning_lines("open").await?) } else { None };
    let proposals =
        if actor.has(Role::Office) { Some(warning_lines("suspension_proposed").await?) } else { None };
    let findings = if [Role::Office, Role::CloudAdmin, Role::InfraChief, Role::BdcLeader]
        .iter()
        .any(|r| actor.has(*r))
    {
        let q = FindingQuery {
            kind: None,
            state: Some("open".into()),
            platform_id: None,
            limit: Some(8),
            cursor: None,
        };
        let axum::Json(page) =
            crate::api::findings::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
        Some(page.items.iter().map(|f| FindingRow::of(t, f)).collect())
    } else {
        None
    };
    let failed_jobs = if actor.has(Role::CloudAdmin) {
        let q = JobQuery { state: Some("failed".into()), limit: Some(20), cursor: None };
        let axum::Json(page) =
            crate::api::jobs::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
        Some(
            page.items
                .into_iter()
                .map(|j| JobLine {
                    id: j.id.0,
                    kind: j.kind,
                    attempts: j.attempts,
                    error: j.last_error.unwrap_or_default(),
                })
                .collect(),
        )
    } else {
        None
    };
    let home = HomePage {
        t,
        greeting: t.f("home.greeting", "name", &signed.caller.display_name),
        today: today.to_string(),
        queue,
        mine,
        systems,
        warnings,
        proposals,
        findings,
        failed_jobs,
        capacity: if actor.has(Role::CloudAdmin) {
            Some(super::operations::capacity_by_arch(&state, &signed, t).await?)
        } else {
            None
        },
        audit: actor.has(Role::AuditAdmin),
    };
    let chrome = Chrome::new(&signed, &state, "/").await?;
    page(&headers, &chrome, t.s("nav.home"), &home)
}
