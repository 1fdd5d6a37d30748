//! Information systems: the list, registering one (with its quota and the
//! basis for it, its MLPS level, architecture and any periodic load, Art.
//! 5–9), editing it (the go-live gate of Art. 22 included), and one system
//! with its quota use, its resources and their utilisation charts.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use yunzhi_domain::system::{GoLiveInput, PeriodicLoadInput, QuotaInput, SystemInput, SystemPatchInput};
use yunzhi_store::{ResourceRecord, SystemRecord};

use super::findings::{Chart, Limit, Series};
use super::i18n::Tr;
use super::session::FormErrors;
use super::view::{Chrome, page};
use super::{ConsoleError, ConsoleResult, Signed, Submitted, percent};
use crate::api::ApiQuery;
use crate::api::agents::MetricsQuery;
use crate::api::resources::ResourceQuery;
use crate::api::systems::SystemQuery;
use crate::api::units::UnitQuery;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

const STATES: [&str; 4] = ["draft", "approved", "online", "retired"];

pub struct Line {
    pub id: i64,
    pub name: String,
    pub unit: String,
    pub arch: &'static str,
    pub mlps: u8,
    pub state: String,
    pub state_code: &'static str,
    pub quota: String,
}

pub struct Choice {
    pub code: String,
    pub label: String,
    pub selected: bool,
}

async fn unit_names(state: &AppState, signed: &Signed) -> ConsoleResult<HashMap<i64, String>> {
    let q = UnitQuery { q: None, limit: Some(500), cursor: None };
    let axum::Json(units) =
        crate::api::units::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    Ok(units.items.into_iter().map(|u| (u.id.0, u.name)).collect())
}

fn quota_text(s: &SystemRecord) -> String {
    let q = &s.system.quota;
    format!("{} vCPU · {} GiB · {} GiB", q.vcpu, q.memory_gib, q.storage_gib)
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub state: String,
    pub cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "systems.html")]
struct ListPage<'a> {
    t: Tr,
    q: &'a str,
    states: Vec<Choice>,
    rows: Vec<Line>,
    more: Option<String>,
    can_register: bool,
}

/// `GET /systems`.
pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let t = signed.tr();
    let st = STATES.iter().find(|s| **s == q.state).copied();
    let query = SystemQuery {
        unit_id: None,
        state: st.map(str::to_owned),
        q: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        limit: Some(100),
        cursor: q.cursor.clone(),
    };
    let axum::Json(found) =
        crate::api::systems::list(State(state.clone()), signed.caller.clone(), ApiQuery(query)).await?;
    let units = unit_names(&state, &signed).await?;
    let rows = found
        .items
        .iter()
        .map(|s| Line {
            id: s.id.0,
            name: s.system.name.clone(),
            unit: units.get(&s.unit_id.0).cloned().unwrap_or_else(|| format!("#{}", s.unit_id.0)),
            arch: s.system.arch.code(),
            mlps: s.system.mlps_level.get(),
            state: t.name("system_state", s.system.state.code()),
            state_code: s.system.state.code(),
            quota: quota_text(s),
        })
        .collect();
    let more = found
        .next_cursor
        .map(|c| format!("/systems?q={}&state={}&cursor={}", percent(&q.q), st.unwrap_or(""), percent(&c)));
    let view = ListPage {
        t,
        q: &q.q,
        states: STATES
            .iter()
            .map(|s| Choice { code: (*s).into(), label: t.name("system_state", s), selected: st == Some(*s) })
            .collect(),
        rows,
        more,
        can_register: signed.caller.actor.system_registrar().is_some(),
    };
    let chrome = Chrome::new(&signed, &state, "/systems").await?;
    page(&headers, &chrome, t.s("systems.title"), &view)
}

/// The registration form as typed.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct SystemForm {
    #[serde(default)]
    pub unit_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mlps_level: String,
    #[serde(default)]
    pub classified: String,
    #[serde(default)]
    pub project_ref: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub vcpu: String,
    #[serde(default)]
    pub memory_gib: String,
    #[serde(default)]
    pub storage_gib: String,
    #[serde(default)]
    pub quota_basis: String,
    #[serde(default)]
    pub periodic: String,
    #[serde(default)]
    pub months: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub self_check_on: String,
    #[serde(default)]
    pub assessment_on: String,
    #[serde(default)]
    pub hardening_on: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub version: String,
}

/// A number as typed; what is not one goes as -1, which the rules refuse by name.
fn number(raw: &str) -> i64 {
    raw.trim().parse().unwrap_or(-1)
}

fn text(raw: &str) -> Option<String> {
    Some(raw.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Months as typed: "3,4, 9" (a separator of any kind).
fn months(raw: &str) -> Vec<i64> {
    raw.split(|c: char| !c.is_ascii_digit() && c != '-').filter(|p| !p.is_empty()).map(number).collect()
}

impl SystemForm {
    fn of(s: &SystemRecord) -> SystemForm {
        let sys = &s.system;
        let day = |d: Option<jiff::civil::Date>| d.map(|d| d.to_string()).unwrap_or_default();
        SystemForm {
            unit_id: s.unit_id.0.to_string(),
            name: sys.name.clone(),
            mlps_level: sys.mlps_level.get().to_string(),
            classified: String::new(),
            project_ref: sys.project_ref.clone().unwrap_or_default(),
            arch: sys.arch.code().into(),
            vcpu: sys.quota.vcpu.to_string(),
            memory_gib: sys.quota.memory_gib.to_string(),
            storage_gib: sys.quota.storage_gib.to_string(),
            quota_basis: sys.quota_basis.clone(),
            periodic: sys.periodic_load.as_ref().map(|p| p.description.clone()).unwrap_or_default(),
            months: sys
                .periodic_load
                .as_ref()
                .map(|p| p.months.iter().map(u8::to_string).collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
            description: sys.description.clone().unwrap_or_default(),
            self_check_on: day(sys.golive.self_check_on),
            assessment_on: day(sys.golive.assessment_on),
            hardening_on: day(sys.golive.hardening_on),
            state: sys.state.code().into(),
            version: s.version.to_string(),
        }
    }

    fn periodic_load(&self) -> Option<PeriodicLoadInput> {
        (!self.periodic.trim().is_empty() || !self.months.trim().is_empty()).then(|| PeriodicLoadInput {
            description: self.periodic.trim().to_owned(),
            months: months(&self.months),
        })
    }

    fn quota(&self) -> QuotaInput {
        QuotaInput {
            vcpu: number(&self.vcpu),
            memory_gib: number(&self.memory_gib),
            storage_gib: number(&self.storage_gib),
        }
    }

    fn input(&self) -> SystemInput {
        SystemInput {
            unit_id: self.unit_id.trim().parse().ok(),
            name: self.name.trim().to_owned(),
            mlps_level: number(&self.mlps_level),
            classified: self.classified == "1",
            project_ref: text(&self.project_ref),
            arch: self.arch.clone(),
            quota: self.quota(),
            quota_basis: self.quota_basis.trim().to_owned(),
            periodic_load: self.periodic_load(),
            description: text(&self.description),
        }
    }

    /// Only what differs from `was`: a unit may edit an approved system's
    /// description without touching the terms it may no longer change.
    fn patch(&self, was: &SystemForm) -> SystemPatchInput {
        let changed = |a: &str, b: &str| a.trim() != b.trim();
        let golive = [
            (&self.self_check_on, &was.self_check_on),
            (&self.assessment_on, &was.assessment_on),
            (&self.hardening_on, &was.hardening_on),
        ]
        .iter()
        .any(|(a, b)| changed(a, b))
        .then(|| GoLiveInput {
            self_check_on: text(&self.self_check_on),
            assessment_on: text(&self.assessment_on),
            hardening_on: text(&self.hardening_on),
        });
        SystemPatchInput {
            name: changed(&self.name, &was.name).then(|| self.name.trim().to_owned()),
            mlps_level: changed(&self.mlps_level, &was.mlps_level).then(|| number(&self.mlps_level)),
            classified: (self.classified == "1").then_some(true),
            project_ref: changed(&self.project_ref, &was.project_ref).then(|| text(&self.project_ref)),
            arch: changed(&self.arch, &was.arch).then(|| self.arch.clone()),
            quota: (changed(&self.vcpu, &was.vcpu)
                || changed(&self.memory_gib, &was.memory_gib)
                || changed(&self.storage_gib, &was.storage_gib))
            .then(|| self.quota()),
            quota_basis: changed(&self.quota_basis, &was.quota_basis)
                .then(|| self.quota_basis.trim().to_owned()),
            periodic_load: (changed(&self.periodic, &was.periodic) || changed(&self.months, &was.months))
                .then(|| self.periodic_load()),
            description: changed(&self.description, &was.description).then(|| text(&self.description)),
            golive,
            state: changed(&self.state, &was.state).then(|| self.state.clone()),
        }
    }
}

#[derive(Template)]
#[template(path = "system_form.html")]
struct FormPage<'a> {
    t: Tr,
    f: &'a SystemForm,
    /// `None` when registering.
    id: Option<i64>,
    units: Vec<Choice>,
    states: Vec<Choice>,
    csrf: &'a str,
    once: String,
    errors: FormErrors,
}

impl FormPage<'_> {
    fn err(&self, field: &str) -> Option<&str> {
        self.errors.on(field).or_else(|| {
            // The rules name nested fields (`quota.vcpu`, `periodic_load.months[0]`).
            self.errors
                .fields
                .iter()
                .find(|(f, _)| f.starts_with(&format!("{field}.")) || f.starts_with(&format!("{field}[")))
                .map(|(_, m)| m.as_str())
        })
    }
}

async fn render_form(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    f: &SystemForm,
    id: Option<i64>,
    errors: FormErrors,
) -> ConsoleResult {
    let t = signed.tr();
    let units = if signed.caller.actor.unit_id.is_none() && id.is_none() {
        let mut names: Vec<(i64, String)> = unit_names(state, signed).await?.into_iter().collect();
        names.sort();
        names
            .into_iter()
            .map(|(uid, name)| Choice {
                code: uid.to_string(),
                label: name,
                selected: f.unit_id == uid.to_string(),
            })
            .collect()
    } else {
        vec![]
    };
    let states = STATES
        .iter()
        .map(|s| Choice { code: (*s).into(), label: t.name("system_state", s), selected: f.state == *s })
        .collect();
    let view = FormPage {
        t,
        f,
        id,
        units,
        states,
        csrf: &signed.csrf,
        once: crate::auth::new_token().map_err(ApiError::Internal)?,
        errors,
    };
    let (here, title) = match id {
        Some(id) => (format!("/systems/{id}/edit"), t.s("systems.edit")),
        None => ("/systems/new".to_owned(), t.s("systems.register")),
    };
    let chrome = Chrome::new(signed, state, &here).await?;
    page(headers, &chrome, title, &view)
}

/// `GET /systems/new`.
pub async fn new_form(State(state): State<AppState>, signed: Signed, headers: HeaderMap) -> ConsoleResult {
    if signed.caller.actor.system_registrar().is_none() {
        return Err(
            ApiError::forbidden("only a unit's staff or the cloud resource admin register systems").into()
        );
    }
    let f = SystemForm { mlps_level: "2".into(), arch: "x86_64".into(), ..SystemForm::default() };
    render_form(&state, &signed, &headers, &f, None, FormErrors::default()).await
}

#[derive(Debug, Deserialize)]
pub struct Posted {
    #[serde(flatten)]
    pub form: SystemForm,
    #[serde(default)]
    pub once: String,
}

/// `POST /systems/new`: registers through the API's handler.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<Posted>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let input = form.form.input();
    let raw = Bytes::from(format!("{:?}", form.form));
    let key = super::form_key(&form.once);
    let result = crate::api::systems::create(
        State(state.clone()),
        signed.caller.clone(),
        key,
        ApiJson { value: input, raw },
    )
    .await;
    match result {
        Ok(response) => {
            let v = super::answer_json(response).await?;
            Ok(Redirect::to(&format!("/systems/{}", v["id"])).into_response())
        }
        Err(e @ ApiError::Internal(_)) => Err(ConsoleError::Api(e)),
        Err(e) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            render_form(&state, &signed, &headers, &form.form, None, errors).await
        }
    }
}

async fn system(state: &AppState, signed: &Signed, id: &str) -> ConsoleResult<SystemRecord> {
    let axum::Json(s) =
        crate::api::systems::get_one(State(state.clone()), signed.caller.clone(), Path(id.to_owned()))
            .await?;
    Ok(s)
}

/// `GET /systems/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ConsoleResult {
    let s = system(&state, &signed, &id).await?;
    render_form(&state, &signed, &headers, &SystemForm::of(&s), Some(s.id.0), FormErrors::default()).await
}

/// `POST /systems/{id}/edit`: sends what changed, guarded by the version
/// the form was read at, so two editors do not overwrite each other.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    posted: Submitted<Posted>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let current = system(&state, &signed, &id).await?;
    let was = SystemForm::of(&current);
    let patch = form.form.patch(&was);
    let mut guard = HeaderMap::new();
    if let Ok(v) = form.form.version.parse::<axum::http::HeaderValue>() {
        guard.insert("if-match", v);
    }
    let result = crate::api::systems::update(
        State(state.clone()),
        signed.caller.clone(),
        Path(id.clone()),
        guard,
        ApiJson { value: patch, raw: Bytes::new() },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/systems/{id}")).into_response()),
        Err(e @ ApiError::Internal(_)) | Err(e @ ApiError::NotFound) => Err(ConsoleError::Api(e)),
        Err(e) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            render_form(&state, &signed, &headers, &form.form, Some(current.id.0), errors).await
        }
    }
}

pub struct ResourceLine {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub size: String,
    pub expires: String,
}

pub struct QuotaBar {
    pub class: String,
    pub quota: u64,
    pub in_use: u64,
    pub percent: u64,
    pub verdict: &'static str,
}

#[derive(Template)]
#[template(path = "system.html")]
struct DetailPage<'a> {
    t: Tr,
    s: &'a SystemRecord,
    unit: String,
    state: String,
    quota: Vec<QuotaBar>,
    months: String,
    resources: Vec<ResourceLine>,
    chart: Option<String>,
    can_edit: bool,
    can_request: bool,
    documents: Vec<super::documents::DocLine>,
    doc_kinds: Vec<(&'static str, String)>,
    can_upload: bool,
    doc_notice: Option<String>,
    doc_error: Option<String>,
    upload_action: String,
    csrf: &'a str,
}

impl DetailPage<'_> {
    fn periodic_text(&self, p: &yunzhi_domain::system::PeriodicLoad) -> String {
        self.t.f2("systems.periodic_with_months", ("what", &p.description), ("months", &self.months))
    }
}

/// The hosts' daily average CPU over the last 30 days, one line each.
async fn utilisation(
    state: &AppState,
    signed: &Signed,
    t: Tr,
    hosts: &[&ResourceRecord],
) -> ConsoleResult<Option<String>> {
    let mut days: Vec<String> = Vec::new();
    let mut per_host: Vec<(String, HashMap<String, f64>)> = Vec::new();
    for host in hosts.iter().take(12) {
        let q = MetricsQuery { span: None, from: None, to: None };
        let axum::Json(points) = crate::api::agents::metrics(
            State(state.clone()),
            signed.caller.clone(),
            Path(host.id.to_string()),
            ApiQuery(q),
        )
        .await?;
        let mut by_day = HashMap::new();
        for p in points {
            if !days.contains(&p.at) {
                days.push(p.at.clone());
            }
            by_day.insert(p.at, (p.cpu_avg * 100.0).round() / 100.0);
        }
        per_host.push((host.name.clone(), by_day));
    }
    if days.is_empty() {
        return Ok(None);
    }
    days.sort();
    let chart = Chart {
        kind: "line",
        title: t.s("systems.utilisation").to_owned(),
        series: per_host
            .into_iter()
            .map(|(name, by_day)| Series {
                name,
                axis: "pct",
                data: days.iter().map(|d| by_day.get(d).copied()).collect(),
            })
            .collect(),
        days,
        limits: vec![Limit { name: t.s("systems.idle_line").to_owned(), axis: "pct", value: 10.0 }],
        skipped: vec![],
        percent_axis: t.s("chart.percent").to_owned(),
        mb_axis: String::new(),
    };
    Ok(Some(super::findings::chart_json(&chart)?))
}

/// `?uploaded=1` or `?doc_error=CODE` after an upload.
#[derive(Debug, Deserialize, Default)]
pub struct AfterUpload {
    #[serde(default)]
    pub uploaded: String,
    #[serde(default)]
    pub doc_error: String,
}

impl AfterUpload {
    pub fn notice(&self, t: Tr) -> Option<String> {
        (self.uploaded == "1").then(|| t.s("documents.uploaded").to_owned())
    }

    pub fn error(&self, t: Tr) -> Option<String> {
        let code = self.doc_error.as_str();
        (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then(|| t.error(code, t.s("documents.refused")))
    }
}

/// `GET /systems/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(after): Query<AfterUpload>,
) -> ConsoleResult {
    let t = signed.tr();
    let s = system(&state, &signed, &id).await?;
    let units = unit_names(&state, &signed).await?;
    let q = ResourceQuery { system_id: Some(s.id.0), state: None, limit: Some(500), cursor: None };
    let axum::Json(res) =
        crate::api::resources::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    let live: Vec<&ResourceRecord> = res.items.iter().filter(|r| r.state.is_live()).collect();
    // The quota's use: live resources and requests in flight, of a system the
    // API has just shown this caller.
    let used = state.store.quota_in_use(s.id).await?;
    let quota = &s.system.quota;
    let bar = |key: &str, granted: u32, in_use: u64| {
        let percent = if granted == 0 {
            if in_use == 0 { 0 } else { 999 }
        } else {
            (in_use * 100).div_ceil(u64::from(granted))
        };
        QuotaBar {
            class: t.s(key).to_owned(),
            quota: u64::from(granted),
            in_use,
            percent,
            verdict: super::view::quota_verdict(percent, state.settings.sla.expansion_limit_percent),
        }
    };
    let hosts: Vec<&ResourceRecord> =
        live.iter().copied().filter(|r| r.kind.code() == "cloud_host").collect();
    let chart = utilisation(&state, &signed, t, &hosts).await?;
    let axum::Json(docs) = crate::api::documents::list(
        State(state.clone()),
        signed.caller.clone(),
        Path(s.id.0.to_string()),
        ApiQuery(crate::api::PageQuery { limit: Some(500), cursor: None }),
    )
    .await?;
    let view = DetailPage {
        t,
        s: &s,
        unit: units.get(&s.unit_id.0).cloned().unwrap_or_default(),
        state: t.name("system_state", s.system.state.code()),
        quota: vec![
            bar("quota.vcpu", quota.vcpu, used.vcpu),
            bar("quota.memory_gib", quota.memory_gib, used.memory_gib),
            bar("quota.storage_gib", quota.storage_gib, used.storage_gib),
        ],
        months: s
            .system
            .periodic_load
            .as_ref()
            .map(|p| {
                p.months
                    .iter()
                    .map(|m| t.f("systems.month", "n", m))
                    .collect::<Vec<_>>()
                    .join(t.s("common.list_separator"))
            })
            .unwrap_or_default(),
        resources: res
            .items
            .iter()
            .map(|r| ResourceLine {
                name: r.name.clone(),
                kind: t.name("catalog_kind", r.kind.code()),
                state: t.name("resource_state", r.state.code()),
                size: if r.vcpu > 0 {
                    format!("{} vCPU · {} GiB · {} GiB", r.vcpu, r.memory_gib, r.storage_gib)
                } else {
                    format!("{} GiB", r.storage_gib)
                },
                expires: r.expires_on.map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect(),
        chart,
        can_edit: signed.caller.actor.system_registrar().is_some() && s.system.state.code() != "retired",
        can_request: signed.caller.actor.requester().is_some(),
        documents: super::documents::lines(t, &docs.items),
        doc_kinds: super::documents::kinds(t),
        can_upload: signed.caller.actor.system_registrar().is_some() && s.system.state.code() != "retired",
        doc_notice: after.notice(t),
        doc_error: after.error(t),
        upload_action: format!("/systems/{}/documents", s.id.0),
        csrf: &signed.csrf,
    };
    let chrome = Chrome::new(&signed, &state, &format!("/systems/{}", s.id.0)).await?;
    page(&headers, &chrome, &s.system.name, &view)
}
