//! The Big Data Center's operations pages: the platforms with their
//! capacity and allocation (per platform and per architecture), the
//! resources, and the jobs with the failed ones first and a retry.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::findings::{Chart, Limit, Series};
use super::i18n::Tr;
use super::session::local_time;
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed, Submitted, percent};
use crate::api::jobs::JobQuery;
use crate::api::resources::ResourceQuery;
use crate::api::systems::SystemQuery;
use crate::api::{ApiQuery, PageQuery};
use crate::state::AppState;

fn pct(used: u32, of: u32) -> u64 {
    if of == 0 { 0 } else { (u64::from(used) * 100).div_ceil(u64::from(of)) }
}

fn verdict(p: u64) -> &'static str {
    if p > 90 {
        "over"
    } else if p > 75 {
        "warn"
    } else {
        "ok"
    }
}

pub struct Use {
    pub used: u32,
    pub of: u32,
    pub percent: u64,
    pub verdict: &'static str,
}

impl Use {
    fn new(used: u32, of: u32) -> Use {
        let percent = pct(used, of);
        Use { used, of, percent, verdict: verdict(percent) }
    }
}

pub struct PlatformLine {
    pub id: i64,
    pub name: String,
    pub arch: String,
    pub driver: String,
    pub state: String,
    pub state_code: &'static str,
    pub vcpu: Use,
    pub memory: Use,
    pub storage: Use,
    /// The three classes in table order: vCPU, memory, storage.
    pub uses: Vec<(u32, u32, u64, &'static str)>,
}

#[derive(Template)]
#[template(path = "platforms.html")]
struct PlatformsPage {
    t: Tr,
    platforms: Vec<PlatformLine>,
    by_arch: Vec<(String, Vec<Use>)>,
    chart: String,
}

/// The allocation of every architecture's platforms taken together: vCPU,
/// memory, storage (the Big Data Center's home page shows it too).
pub async fn capacity_by_arch(
    state: &AppState,
    signed: &Signed,
    t: Tr,
) -> ConsoleResult<Vec<(String, Vec<Use>)>> {
    let q = PageQuery { limit: Some(500), cursor: None };
    let axum::Json(found) =
        crate::api::platforms::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    let mut arch: BTreeMap<&'static str, [(u32, u32); 3]> = BTreeMap::new();
    for p in &found.items {
        let a = arch.entry(p.arch.code()).or_default();
        for (slot, (u, c)) in a.iter_mut().zip([
            (p.usage.vcpu, p.allocatable.vcpu),
            (p.usage.memory_gib, p.allocatable.memory_gib),
            (p.usage.storage_gib, p.allocatable.storage_gib),
        ]) {
            slot.0 += u;
            slot.1 += c;
        }
    }
    Ok(arch
        .into_iter()
        .map(|(a, classes)| (t.name("arch", a), classes.iter().map(|(u, c)| Use::new(*u, *c)).collect()))
        .collect())
}

/// `GET /platforms`.
pub async fn platforms(State(state): State<AppState>, signed: Signed, headers: HeaderMap) -> ConsoleResult {
    let t = signed.tr();
    let q = PageQuery { limit: Some(500), cursor: None };
    let axum::Json(found) =
        crate::api::platforms::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    let mut lines = Vec::new();
    for p in &found.items {
        lines.push(PlatformLine {
            id: p.id.0,
            name: p.name.clone(),
            arch: t.name("arch", p.arch.code()),
            driver: t.name("driver", p.driver.code()),
            state: t.name("platform_state", p.state.code()),
            state_code: p.state.code(),
            vcpu: Use::new(p.usage.vcpu, p.allocatable.vcpu),
            memory: Use::new(p.usage.memory_gib, p.allocatable.memory_gib),
            storage: Use::new(p.usage.storage_gib, p.allocatable.storage_gib),
            uses: [
                (p.usage.vcpu, p.allocatable.vcpu),
                (p.usage.memory_gib, p.allocatable.memory_gib),
                (p.usage.storage_gib, p.allocatable.storage_gib),
            ]
            .into_iter()
            .map(|(u, c)| {
                let x = Use::new(u, c);
                (x.used, x.of, x.percent, x.verdict)
            })
            .collect(),
        });
    }
    let chart = Chart {
        kind: "bar",
        title: t.s("platforms.allocated").to_owned(),
        days: lines.iter().map(|l| l.name.clone()).collect(),
        series: vec![
            Series {
                name: t.s("quota.vcpu").to_owned(),
                axis: "pct",
                data: lines.iter().map(|l| Some(l.vcpu.percent as f64)).collect(),
            },
            Series {
                name: t.s("quota.memory_gib").to_owned(),
                axis: "pct",
                data: lines.iter().map(|l| Some(l.memory.percent as f64)).collect(),
            },
            Series {
                name: t.s("quota.storage_gib").to_owned(),
                axis: "pct",
                data: lines.iter().map(|l| Some(l.storage.percent as f64)).collect(),
            },
        ],
        limits: vec![Limit { name: t.s("platforms.full").to_owned(), axis: "pct", value: 100.0 }],
        skipped: vec![],
        percent_axis: t.s("platforms.percent_allocated").to_owned(),
        mb_axis: String::new(),
    };
    let chart = super::findings::chart_json(&chart)?;
    let view =
        PlatformsPage { t, platforms: lines, by_arch: capacity_by_arch(&state, &signed, t).await?, chart };
    let chrome = Chrome::new(&signed, &state, "/platforms").await?;
    page(&headers, &chrome, t.s("platforms.title"), &view)
}

pub struct JobLine {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub state_code: String,
    pub attempts: String,
    pub run_at: String,
    pub error: String,
    pub can_retry: bool,
    pub can_cancel: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct JobsQuery {
    #[serde(default)]
    pub state: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage<'a> {
    t: Tr,
    states: Vec<(&'static str, String, bool)>,
    jobs: Vec<JobLine>,
    csrf: &'a str,
}

const JOB_STATES: [&str; 5] = ["failed", "queued", "running", "done", "cancelled"];

/// `GET /jobs`: the failed first, unless another state is asked for.
pub async fn jobs(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<JobsQuery>,
) -> ConsoleResult {
    let t = signed.tr();
    let st = JOB_STATES.iter().find(|s| **s == q.state).copied().unwrap_or("failed");
    let query = JobQuery { state: Some(st.into()), limit: Some(200), cursor: None };
    let axum::Json(found) =
        crate::api::jobs::list(State(state.clone()), signed.caller.clone(), ApiQuery(query)).await?;
    let mut jobs: Vec<JobLine> = found
        .items
        .into_iter()
        .map(|j| JobLine {
            id: j.id.0,
            kind: t.name("job_kind", &j.kind),
            can_retry: matches!(j.state.as_str(), "failed" | "cancelled"),
            can_cancel: j.state == "queued",
            state: t.name("job_state", &j.state),
            state_code: j.state,
            attempts: format!("{}/{}", j.attempts, j.max_attempts),
            run_at: local_time(&j.run_at.to_string()),
            error: j.last_error.unwrap_or_default(),
        })
        .collect();
    jobs.reverse();
    let view = JobsPage {
        t,
        states: JOB_STATES.iter().map(|s| (*s, t.name("job_state", s), *s == st)).collect(),
        jobs,
        csrf: &signed.csrf,
    };
    let chrome = Chrome::new(&signed, &state, "/jobs").await?;
    page(&headers, &chrome, t.s("jobs.title"), &view)
}

#[derive(Debug, Deserialize, Default)]
pub struct JobAction {
    #[serde(default)]
    pub back: String,
}

/// `POST /jobs/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Submitted<JobAction>,
) -> ConsoleResult {
    let axum::Json(_queued) =
        crate::api::jobs::retry(State(state), posted.signed.caller.clone(), Path(id)).await?;
    Ok(Redirect::to(&back(&posted.form.back)).into_response())
}

/// `POST /jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Submitted<JobAction>,
) -> ConsoleResult {
    let axum::Json(_cancelled) =
        crate::api::jobs::cancel(State(state), posted.signed.caller.clone(), Path(id)).await?;
    Ok(Redirect::to(&back(&posted.form.back)).into_response())
}

fn back(raw: &str) -> String {
    let to = super::local_path(Some(raw));
    if to == "/" { "/jobs".into() } else { to }
}

pub struct ResourceLine {
    pub name: String,
    pub system_id: i64,
    pub system: String,
    pub kind: String,
    pub state: String,
    pub size: String,
    pub temporary: bool,
    pub expires: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct ResourcesQuery {
    #[serde(default)]
    pub state: String,
    pub cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "resources.html")]
struct ResourcesPage {
    t: Tr,
    states: Vec<(&'static str, String, bool)>,
    /// No state chosen: every resource.
    every: bool,
    rows: Vec<ResourceLine>,
    more: Option<String>,
}

const RESOURCE_STATES: [&str; 4] = ["active", "provisioning", "suspended", "reclaimed"];

/// `GET /resources`.
pub async fn resources(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<ResourcesQuery>,
) -> ConsoleResult {
    let t = signed.tr();
    let st = RESOURCE_STATES.iter().find(|s| **s == q.state).copied();
    let query = ResourceQuery {
        system_id: None,
        state: st.map(str::to_owned),
        limit: Some(200),
        cursor: q.cursor.clone(),
    };
    let axum::Json(found) =
        crate::api::resources::list(State(state.clone()), signed.caller.clone(), ApiQuery(query)).await?;
    let sq = SystemQuery { unit_id: None, state: None, q: None, limit: Some(500), cursor: None };
    let axum::Json(systems) =
        crate::api::systems::list(State(state.clone()), signed.caller.clone(), ApiQuery(sq)).await?;
    let names: std::collections::HashMap<i64, String> =
        systems.items.into_iter().map(|s| (s.id.0, s.system.name)).collect();
    let rows = found
        .items
        .iter()
        .map(|r| ResourceLine {
            name: r.name.clone(),
            system_id: r.system_id.0,
            system: names.get(&r.system_id.0).cloned().unwrap_or_else(|| format!("#{}", r.system_id.0)),
            kind: t.name("catalog_kind", r.kind.code()),
            state: t.name("resource_state", r.state.code()),
            size: if r.vcpu > 0 {
                format!("{} vCPU · {} GiB · {} GiB", r.vcpu, r.memory_gib, r.storage_gib)
            } else {
                format!("{} GiB", r.storage_gib)
            },
            temporary: r.temporary,
            expires: r.expires_on.map(|d| d.to_string()).unwrap_or_default(),
        })
        .collect();
    let more =
        found.next_cursor.map(|c| format!("/resources?state={}&cursor={}", st.unwrap_or(""), percent(&c)));
    let view = ResourcesPage {
        t,
        states: RESOURCE_STATES.iter().map(|s| (*s, t.name("resource_state", s), Some(*s) == st)).collect(),
        every: st.is_none(),
        rows,
        more,
    };
    let chrome = Chrome::new(&signed, &state, "/resources").await?;
    page(&headers, &chrome, t.s("resources.title"), &view)
}
