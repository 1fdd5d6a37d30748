//! The home page: what this user has to do today, by role. A unit sees
//! its systems, its open requests with their deadlines and the warnings it
//! must answer; approvers and the office their queue, overdue first, with
//! the working days left; the office also the findings awaiting review and
//! the suspension proposals; the Big Data Center's operator the findings
//! and the failed jobs.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::ids::SystemId;
use yunzhi_domain::request::Sla;
use yunzhi_domain::role::Role;

use super::findings::Row as FindingRow;
use super::i18n::Tr;
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed};
use crate::api::ApiQuery;
use crate::api::findings::FindingQuery;
use crate::api::jobs::JobQuery;
use crate::api::requests::{RequestQuery, RequestView};
use crate::api::systems::SystemQuery;
use crate::api::warnings::WarningQuery;
use crate::state::AppState;

pub struct RequestLine {
    pub id: i64,
    pub kind: String,
    pub system: String,
    pub turn: String,
    pub due_on: String,
    /// `overdue`, `due_soon`, `on_time`.
    pub sla_code: String,
    /// "2 working days left", "overdue by 3 working days".
    pub countdown: String,
}

pub struct SystemLine {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub quota: String,
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
    queue: Option<Vec<RequestLine>>,
    mine: Option<Vec<RequestLine>>,
    systems: Option<Vec<SystemLine>>,
    warnings: Option<Vec<WarningLine>>,
    proposals: Option<Vec<WarningLine>>,
    findings: Option<Vec<FindingRow>>,
    failed_jobs: Option<Vec<JobLine>>,
    audit: bool,
}

fn sla_code(sla: Sla) -> String {
    serde_json::to_value(sla).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// `GET /`.
pub async fn page_handler(State(state): State<AppState>, signed: Signed, headers: HeaderMap) -> ConsoleResult {
    let t = signed.tr();
    let actor = &signed.caller.actor;
    let caller = &signed.caller;
    let today = state.clock.today();
    let calendar = state.store.calendar().await?;
    let reader = actor.reader();

    let mut names: HashMap<i64, String> = HashMap::new();
    let mut lines = async |views: Vec<RequestView>| -> ConsoleResult<Vec<RequestLine>> {
        let mut out = Vec::new();
        for v in views {
            let r = &v.request;
            let system = match names.get(&r.system_id.0) {
                Some(n) => n.clone(),
                None => {
                    let name = match &reader {
                        Some(rd) => state
                            .store
                            .system(rd.scope(), SystemId(r.system_id.0))
                            .await?
                            .map(|s| s.system.name)
                            .unwrap_or_else(|| format!("#{}", r.system_id.0)),
                        None => format!("#{}", r.system_id.0),
                    };
                    names.insert(r.system_id.0, name.clone());
                    name
                }
            };
            let countdown = if today > r.due_on {
                let late = calendar.count_working_days(r.due_on, today).unwrap_or(0).saturating_sub(1);
                t.f("home.overdue_by", "n", late.max(1))
            } else {
                t.f("home.days_left", "n", calendar.count_working_days(today, r.due_on).unwrap_or(0))
            };
            out.push(RequestLine {
                id: r.id,
                kind: t.name("request_kind", r.kind.code()),
                system,
                turn: v.turn.map(|role| t.name("role", role.code())).unwrap_or_default(),
                due_on: r.due_on.to_string(),
                sla_code: sla_code(v.sla),
                countdown,
            });
        }
        // Overdue first, then by deadline.
        out.sort_by(|a, b| (a.sla_code != "overdue", &a.due_on).cmp(&(b.sla_code != "overdue", &b.due_on)));
        Ok(out)
    };

    let approver = [Role::CloudAdmin, Role::InfraChief, Role::BdcLeader, Role::Office].iter().any(|r| actor.has(*r));
    let queue = if approver {
        let q = RequestQuery {
            system_id: None,
            state: Some("in_review".into()),
            kind: None,
            turn: Some("mine".into()),
            sla: None,
            exception: None,
            limit: Some(100),
            cursor: None,
        };
        let axum::Json(page) = crate::api::requests::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
        Some(lines(page.items).await?)
    } else {
        None
    };
    let unit_staff = actor.roles.is_unit_staff();
    let mine = if unit_staff {
        let mut all = Vec::new();
        for st in ["in_review", "returned"] {
            let q = RequestQuery {
                system_id: None,
                state: Some(st.into()),
                kind: None,
                turn: None,
                sla: None,
                exception: None,
                limit: Some(50),
                cursor: None,
            };
            let axum::Json(page) =
                crate::api::requests::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
            all.extend(page.items);
        }
        Some(lines(all).await?)
    } else {
        None
    };
    let systems = if unit_staff {
        let q = SystemQuery { unit_id: None, state: None, q: None, limit: Some(50), cursor: None };
        let axum::Json(page) = crate::api::systems::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
        Some(
            page.items
                .into_iter()
                .map(|s| SystemLine {
                    id: s.id.0,
                    state: t.name("system_state", s.system.state.code()),
                    quota: t.f2(
                        "home.quota",
                        ("cpu", &s.system.quota.vcpu),
                        ("mem", &format!("{} GiB · {} GiB", s.system.quota.memory_gib, s.system.quota.storage_gib)),
                    ),
                    name: s.system.name,
                })
                .collect(),
        )
    } else {
        None
    };
    let warning_lines = async |wanted: &str| -> ConsoleResult<Vec<WarningLine>> {
        let q = WarningQuery { state: Some(wanted.into()), limit: Some(50), cursor: None };
        let axum::Json(page) = crate::api::warnings::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
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
    let proposals = if actor.has(Role::Office) { Some(warning_lines("suspension_proposed").await?) } else { None };
    let findings = if [Role::Office, Role::CloudAdmin, Role::InfraChief, Role::BdcLeader].iter().any(|r| actor.has(*r)) {
        let q = FindingQuery { kind: None, state: Some("open".into()), platform_id: None, limit: Some(8), cursor: None };
        let axum::Json(page) = crate::api::findings::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
        Some(page.items.iter().map(|f| FindingRow::of(t, f)).collect())
    } else {
        None
    };
    let failed_jobs = if actor.has(Role::CloudAdmin) {
        let q = JobQuery { state: Some("failed".into()), limit: Some(20), cursor: None };
        let axum::Json(page) = crate::api::jobs::list(State(state.clone()), caller.clone(), ApiQuery(q)).await?;
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
        audit: actor.has(Role::AuditAdmin),
    };
    let chrome = Chrome::new(&signed, &state, "/");
    page(&headers, &chrome, t.s("nav.home"), &home)
}
