//! Requests: the list, the guided form for each kind (it picks from the
//! catalog and shows the quota effect, and for an expansion the 120 %
//! limit, before anything is sent), and one request with the unit's
//! context, its history and, for the role whose turn it is, the decision.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use yunzhi_domain::access::Scope;
use yunzhi_domain::calendar::Calendar;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::ids::SystemId;
use yunzhi_domain::request::{self, Demand, ItemInput, RequestInput, RequestKind, Sla};
use yunzhi_domain::role::Role;
use yunzhi_domain::system::SystemState;
use yunzhi_store::{CatalogItemRecord, ResourceRecord, SystemRecord};

use super::i18n::{Lang, Tr};
use super::session::{FormErrors, local_time};
use super::view::{Chrome, page};
use super::{ConsoleError, ConsoleResult, Signed, Submitted, percent};
use crate::api::ApiQuery;
use crate::api::requests::{DecisionInput, RequestQuery, RequestView};
use crate::api::resources::ResourceQuery;
use crate::api::systems::SystemQuery;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// Item rows the form offers; a request of more kinds of item is rare, and
/// the API takes up to twenty.
const ROWS: usize = 4;
const KINDS: [&str; 5] = ["new", "expansion", "temporary", "reclaim", "extension"];
const STATES: [&str; 6] = ["in_review", "returned", "approved", "fulfilled", "rejected", "withdrawn"];

fn sla_code(sla: Sla) -> String {
    serde_json::to_value(sla).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A request as a row shows it.
pub struct Line {
    pub id: i64,
    pub kind: String,
    pub system: String,
    pub state: String,
    pub state_code: &'static str,
    pub turn: String,
    pub due_on: String,
    /// `overdue`, `due_soon`, `on_time`, `met`, `missed`.
    pub sla_code: String,
    /// "2 working days left", "overdue by 3 working days", or the end.
    pub countdown: String,
    pub exception: bool,
}

/// Turns requests into rows, naming their systems (one lookup per system).
pub struct Liner<'a> {
    state: &'a AppState,
    scope: Scope,
    t: Tr,
    calendar: Calendar,
    today: jiff::civil::Date,
    names: HashMap<i64, String>,
}

impl<'a> Liner<'a> {
    pub async fn new(state: &'a AppState, scope: Scope, t: Tr) -> ConsoleResult<Liner<'a>> {
        Ok(Liner {
            state,
            scope,
            t,
            calendar: state.store.calendar().await?,
            today: state.clock.today(),
            names: HashMap::new(),
        })
    }

    pub async fn system_name(&mut self, id: i64) -> ConsoleResult<String> {
        if let Some(n) = self.names.get(&id) {
            return Ok(n.clone());
        }
        let name = self
            .state
            .store
            .system(self.scope, SystemId(id))
            .await?
            .map(|s| s.system.name)
            .unwrap_or_else(|| format!("#{id}"));
        self.names.insert(id, name.clone());
        Ok(name)
    }

    pub fn countdown(&self, v: &RequestView) -> String {
        let (t, r) = (self.t, &v.request);
        match v.sla {
            Sla::Met | Sla::Missed => t.name("sla", &sla_code(v.sla)),
            _ if self.today > r.due_on => {
                let late =
                    self.calendar.count_working_days(r.due_on, self.today).unwrap_or(1).saturating_sub(1);
                t.f("home.overdue_by", "n", late.max(1))
            }
            _ => t.f(
                "home.days_left",
                "n",
                self.calendar.count_working_days(self.today, r.due_on).unwrap_or(0),
            ),
        }
    }

    /// Rows for `views`, overdue first, then by deadline.
    pub async fn lines(&mut self, views: Vec<RequestView>) -> ConsoleResult<Vec<Line>> {
        let t = self.t;
        let mut out = Vec::new();
        for v in views {
            let r = &v.request;
            out.push(Line {
                id: r.id,
                kind: t.name("request_kind", r.kind.code()),
                system: self.system_name(r.system_id.0).await?,
                state: t.name("request_state", r.state.code()),
                state_code: r.state.code(),
                turn: v.turn.map(|role| t.name("role", role.code())).unwrap_or_default(),
                due_on: r.due_on.to_string(),
                sla_code: sla_code(v.sla),
                countdown: self.countdown(&v),
                exception: r.exception,
            });
        }
        out.sort_by(|a, b| (a.sla_code != "overdue", &a.due_on).cmp(&(b.sla_code != "overdue", &b.due_on)));
        Ok(out)
    }
}

/// The requests a role works on: approvers and the office see their turn.
pub fn decides(signed: &Signed) -> bool {
    [Role::CloudAdmin, Role::InfraChief, Role::BdcLeader, Role::Office]
        .iter()
        .any(|r| signed.caller.actor.has(*r))
}

pub async fn query(
    state: &AppState,
    signed: &Signed,
    q: RequestQuery,
) -> ConsoleResult<yunzhi_store::Page<RequestView>> {
    let axum::Json(page) =
        crate::api::requests::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    Ok(page)
}

pub fn request_query(
    state: Option<&str>,
    kind: Option<&str>,
    turn: Option<&str>,
    cursor: Option<String>,
) -> RequestQuery {
    RequestQuery {
        system_id: None,
        state: state.map(str::to_owned),
        kind: kind.map(str::to_owned),
        turn: turn.map(str::to_owned),
        sla: None,
        exception: None,
        limit: Some(100),
        cursor,
    }
}

pub struct Choice {
    pub code: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub kind: String,
    /// `1`: only those awaiting my decision.
    #[serde(default)]
    pub mine: String,
    pub cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct ListPage {
    t: Tr,
    states: Vec<Choice>,
    kinds: Vec<Choice>,
    mine: bool,
    can_decide: bool,
    can_file: bool,
    rows: Vec<Line>,
    more: Option<String>,
}

/// `GET /requests`.
pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let t = signed.tr();
    let Some(reader) = signed.caller.actor.reader() else {
        return Err(ApiError::forbidden("this role does not read requests").into());
    };
    let st = STATES.iter().find(|s| **s == q.state).copied();
    let kind = KINDS.iter().find(|k| **k == q.kind).copied();
    let can_decide = decides(&signed);
    let mine = can_decide && q.mine == "1";
    let found =
        query(&state, &signed, request_query(st, kind, mine.then_some("mine"), q.cursor.clone())).await?;
    let more = found.next_cursor.clone().map(|c| {
        format!(
            "/requests?state={}&kind={}&mine={}&cursor={}",
            st.unwrap_or(""),
            kind.unwrap_or(""),
            if mine { "1" } else { "" },
            percent(&c)
        )
    });
    let rows = Liner::new(&state, reader.scope(), t).await?.lines(found.items).await?;
    let list = ListPage {
        t,
        states: STATES
            .iter()
            .map(|s| Choice { code: s, label: t.name("request_state", s), selected: st == Some(*s) })
            .collect(),
        kinds: KINDS
            .iter()
            .map(|k| Choice { code: k, label: t.name("request_kind", k), selected: kind == Some(*k) })
            .collect(),
        mine,
        can_decide,
        can_file: signed.caller.actor.requester().is_some(),
        rows,
        more,
    };
    let chrome = Chrome::new(&signed, &state, "/requests").await?;
    page(&headers, &chrome, t.s("requests.title"), &list)
}

/// What the form holds, as typed: kept whole when it goes back with errors.
#[derive(Debug, Default, Clone)]
pub struct Draft {
    pub kind: String,
    pub system_id: Option<i64>,
    /// (catalog item id, quantity as typed).
    pub rows: Vec<(Option<i64>, String)>,
    pub justification: String,
    pub exception: bool,
    pub exception_reason: String,
    pub until: String,
    pub resource_ids: Vec<i64>,
    pub backup_confirmed: bool,
    /// The form's idempotency key, kept when it goes back with errors.
    pub once: Option<String>,
}

impl Draft {
    pub fn from_pairs(pairs: &[(String, String)]) -> Draft {
        let mut d = Draft { rows: vec![(None, String::new()); ROWS], ..Draft::default() };
        for (k, v) in pairs {
            let v = v.trim();
            match k.as_str() {
                "kind" => d.kind = v.to_owned(),
                "system_id" => d.system_id = v.parse().ok(),
                "justification" => d.justification = v.to_owned(),
                "exception" => d.exception = v == "1",
                "exception_reason" => d.exception_reason = v.to_owned(),
                "until" => d.until = v.to_owned(),
                "resource_ids" => d.resource_ids.extend(v.parse::<i64>().ok()),
                "backup_confirmed" => d.backup_confirmed = v == "1",
                "once" if !v.is_empty() && v.len() <= 64 => d.once = Some(v.to_owned()),
                _ => {
                    if let Some((field, i)) = k.split_once('_')
                        && let Ok(i) = i.parse::<usize>()
                        && i < ROWS
                    {
                        match field {
                            "item" => d.rows[i].0 = v.parse().ok(),
                            "qty" => d.rows[i].1 = v.to_owned(),
                            _ => {}
                        }
                    }
                }
            }
        }
        if !KINDS.contains(&d.kind.as_str()) {
            d.kind = "new".into();
        }
        d
    }

    fn kind(&self) -> RequestKind {
        RequestKind::parse("kind", &self.kind).unwrap_or(RequestKind::New)
    }

    /// The rows that name an item, as the API takes them (a quantity that
    /// is not a number goes as 0, which the API refuses by name).
    fn items(&self) -> Vec<(usize, ItemInput)> {
        self.rows
            .iter()
            .enumerate()
            .filter_map(|(i, (item, qty))| {
                item.map(|id| (i, ItemInput { catalog_item_id: id, quantity: qty.parse().unwrap_or(0) }))
            })
            .collect()
    }

    pub fn input(&self) -> RequestInput {
        let kind = self.kind();
        RequestInput {
            kind: self.kind.clone(),
            system_id: self.system_id.unwrap_or(0),
            items: if kind.asks_for_items() {
                self.items().into_iter().map(|(_, i)| i).collect()
            } else {
                vec![]
            },
            justification: self.justification.clone(),
            backup_confirmed: (kind == RequestKind::Reclaim).then_some(self.backup_confirmed),
            resource_ids: if kind.names_resources() { self.resource_ids.clone() } else { vec![] },
            until: (kind == RequestKind::Extension && !self.until.is_empty()).then(|| self.until.clone()),
            exception_reason: (kind == RequestKind::Expansion && self.exception)
                .then(|| self.exception_reason.clone()),
        }
    }
}

pub struct SystemChoice {
    pub id: i64,
    pub label: String,
    pub selected: bool,
}

pub struct ItemChoice {
    pub id: i64,
    pub label: String,
}

pub struct ResourceChoice {
    pub id: i64,
    pub label: String,
    pub checked: bool,
}

/// One quota class before and after the request.
pub struct QuotaLine {
    pub class: String,
    pub quota: u64,
    pub in_use: u64,
    pub asked: u64,
    pub after: u64,
    pub percent: u64,
    /// `ok`, `over`: past the limit that applies (100 %, or 120 % for an expansion).
    pub verdict: &'static str,
}

pub struct Preview {
    pub lines: Vec<QuotaLine>,
    pub limit: u32,
    /// The refusal the API would give, in words.
    pub refusal: Option<String>,
}

#[derive(Template)]
#[template(path = "request_form.html")]
struct FormPage<'a> {
    t: Tr,
    d: &'a Draft,
    kinds: Vec<Choice>,
    systems: Vec<SystemChoice>,
    items: Vec<ItemChoice>,
    resources: Vec<ResourceChoice>,
    preview: Option<Preview>,
    errors: FormErrors,
    csrf: &'a str,
    /// Sent with the form as its idempotency key: a double click or a
    /// resend files one request, not two.
    once: String,
    asks_items: bool,
    names_resources: bool,
    is_expansion: bool,
    is_reclaim: bool,
    is_extension: bool,
}

impl FormPage<'_> {
    fn row_error(&self, i: &usize) -> Option<String> {
        let item = self.errors.on(&format!("items[{i}].catalog_item_id"));
        let qty = self.errors.on(&format!("items[{i}].quantity"));
        match (item, qty) {
            (None, None) => None,
            (a, b) => Some([a, b].into_iter().flatten().collect::<Vec<_>>().join(" ")),
        }
    }

    fn row_has(&self, i: &usize, item: &i64) -> bool {
        self.d.rows.get(*i).and_then(|r| r.0) == Some(*item)
    }

    fn row_qty(&self, i: &usize) -> &str {
        self.d.rows.get(*i).map(|r| r.1.as_str()).unwrap_or("")
    }

    fn row_indices(&self) -> std::ops::Range<usize> {
        0..ROWS
    }

    /// What the chosen kind is for, and its article.
    fn kind_hint(&self) -> &'static str {
        match self.d.kind() {
            RequestKind::New => "request.hint.new",
            RequestKind::Expansion => "request.hint.expansion",
            RequestKind::Temporary => "request.hint.temporary",
            RequestKind::Reclaim => "request.hint.reclaim",
            RequestKind::Extension => "request.hint.extension",
        }
    }
}

/// Why a request past its quota is refused: an expansion names its limit
/// (120 % unless the site set another) and the way out, an exception.
fn over_limit(t: Tr, kind: RequestKind, limit: u32) -> String {
    if kind == RequestKind::Expansion {
        t.f("request.over_limit", "limit", limit)
    } else {
        t.s("request.over_quota").to_owned()
    }
}

/// The whole catalog (it is small: tens of items).
async fn catalog(state: &AppState) -> ConsoleResult<Vec<CatalogItemRecord>> {
    let page = yunzhi_store::PageRequest::parse(Some(500), None).map_err(ApiError::from)?;
    Ok(state.store.catalog(page).await?.items)
}

fn item_label(t: Tr, c: &CatalogItemRecord) -> String {
    let name = if t.lang == Lang::En { &c.spec.name_en } else { &c.spec.name };
    format!("{name} ({})", c.spec.code)
}

async fn render_form(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    d: &Draft,
    errors: FormErrors,
) -> ConsoleResult {
    let t = signed.tr();
    if signed.caller.actor.requester().is_none() {
        return Err(ApiError::forbidden("requests are filed by a using unit's staff").into());
    }
    let q = SystemQuery { unit_id: None, state: None, q: None, limit: Some(500), cursor: None };
    let axum::Json(systems) =
        crate::api::systems::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    let systems: Vec<SystemRecord> = systems
        .items
        .into_iter()
        .filter(|s| matches!(s.system.state, SystemState::Approved | SystemState::Online))
        .collect();
    let chosen = d.system_id.and_then(|id| systems.iter().find(|s| s.id.0 == id));
    let kind = d.kind();
    let catalog = catalog(state).await?;
    let items: Vec<&CatalogItemRecord> = catalog
        .iter()
        .filter(|c| c.active)
        .filter(|c| match (c.spec.arch, chosen) {
            (Some(arch), Some(s)) => arch == s.system.arch,
            _ => true,
        })
        .collect();
    let resources: Vec<ResourceRecord> = match chosen {
        Some(s) if kind.names_resources() => {
            let q = ResourceQuery { system_id: Some(s.id.0), state: None, limit: Some(500), cursor: None };
            let axum::Json(page) =
                crate::api::resources::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
            page.items
                .into_iter()
                .filter(|r| r.state.is_live() && (kind != RequestKind::Extension || r.temporary))
                .collect()
        }
        _ => vec![],
    };
    let preview = match chosen {
        Some(s) if kind.asks_for_items() => {
            let mut asked = Demand::default();
            for (_, input) in d.items() {
                if let Some(c) = catalog.iter().find(|c| c.id.0 == input.catalog_item_id) {
                    asked = asked + Demand::of(&c.spec, u32::try_from(input.quantity).unwrap_or(0));
                }
            }
            let in_use = state.store.quota_in_use(s.id).await?;
            let limit =
                if kind == RequestKind::Expansion { state.settings.sla.expansion_limit_percent } else { 100 };
            let refusal = request::check_quota(
                kind,
                &s.system.quota,
                in_use,
                asked,
                state.settings.sla.expansion_limit_percent,
                (d.exception && kind == RequestKind::Expansion).then_some(d.exception_reason.as_str()),
            )
            .err()
            .map(|e| {
                let mut m = over_limit(t, kind, limit);
                if let Some(a) = e.article {
                    m = format!("{m}{}", t.f("error.article", "n", a));
                }
                m
            });
            let q = &s.system.quota;
            let line = |class: &str, quota: u32, used: u64, ask: u64| {
                let after = used + ask;
                let percent = if quota == 0 {
                    if after == 0 { 0 } else { 999 }
                } else {
                    (after * 100).div_ceil(u64::from(quota))
                };
                QuotaLine {
                    class: t.s(class).to_owned(),
                    quota: u64::from(quota),
                    in_use: used,
                    asked: ask,
                    after,
                    percent,
                    verdict: if percent > u64::from(limit) { "over" } else { "ok" },
                }
            };
            Some(Preview {
                lines: vec![
                    line("quota.vcpu", q.vcpu, in_use.vcpu, asked.vcpu),
                    line("quota.memory_gib", q.memory_gib, in_use.memory_gib, asked.memory_gib),
                    line("quota.storage_gib", q.storage_gib, in_use.storage_gib, asked.storage_gib),
                ],
                limit,
                refusal,
            })
        }
        _ => None,
    };
    let form = FormPage {
        t,
        d,
        kinds: KINDS
            .iter()
            .map(|k| Choice { code: k, label: t.name("request_kind", k), selected: d.kind == *k })
            .collect(),
        systems: systems
            .iter()
            .map(|s| SystemChoice {
                id: s.id.0,
                label: format!("{} ({})", s.system.name, s.system.arch.code()),
                selected: Some(s.id.0) == d.system_id,
            })
            .collect(),
        items: items.iter().map(|c| ItemChoice { id: c.id.0, label: item_label(t, c) }).collect(),
        resources: resources
            .iter()
            .map(|r| ResourceChoice {
                id: r.id,
                label: match r.expires_on {
                    Some(e) => format!("{} · {}", r.name, t.f("request.expires_on", "date", e)),
                    None => r.name.clone(),
                },
                checked: d.resource_ids.contains(&r.id),
            })
            .collect(),
        preview,
        errors,
        csrf: &signed.csrf,
        once: d.once.clone().map(Ok).unwrap_or_else(crate::auth::new_token).map_err(ApiError::Internal)?,
        asks_items: kind.asks_for_items(),
        names_resources: kind.names_resources(),
        is_expansion: kind == RequestKind::Expansion,
        is_reclaim: kind == RequestKind::Reclaim,
        is_extension: kind == RequestKind::Extension,
    };
    let chrome = Chrome::new(signed, state, "/requests/new").await?;
    page(headers, &chrome, t.s("request.new_title"), &form)
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(raw).unwrap_or_default()
}

/// `GET /requests/new`: the form, as typed so far (the page re-renders it
/// on every change, so the quota effect follows what is typed).
pub async fn new_form(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ConsoleResult {
    let d = Draft::from_pairs(&pairs(q.unwrap_or_default().as_bytes()));
    render_form(&state, &signed, &headers, &d, FormErrors::default()).await
}

/// `POST /requests/new`: files the request through the API's own handler.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<Vec<(String, String)>>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let d = Draft::from_pairs(&form);
    let input = d.input();
    let raw = super::fingerprint(&form)?;
    let key = super::form_key(d.once.as_deref().unwrap_or(""));
    let result = crate::api::requests::create(
        State(state.clone()),
        signed.caller.clone(),
        key,
        ApiJson { value: input, raw },
    )
    .await;
    match result {
        Ok(response) => {
            let v = super::answer_json(response).await?;
            Ok(Redirect::to(&format!("/requests/{}", v["id"])).into_response())
        }
        Err(e @ ApiError::Internal(_)) => Err(ConsoleError::Api(e)),
        Err(e) => {
            let t = signed.tr();
            let mut errors = FormErrors::from_api(t, &e);
            // Past the quota: say which limit, as the preview does.
            if let ApiError::Refused(fe) = &e
                && fe.code == "quota_exceeded"
            {
                let limit = if d.kind() == RequestKind::Expansion {
                    state.settings.sla.expansion_limit_percent
                } else {
                    100
                };
                let article = fe.article.map(|a| t.f("error.article", "n", a)).unwrap_or_default();
                errors.fields =
                    vec![("items".into(), format!("{}{article}", over_limit(t, d.kind(), limit)))];
            }
            render_form(&state, &signed, &headers, &d, errors).await
        }
    }
}

/// One decision in a request's history.
pub struct StepLine {
    pub round: i64,
    pub role: String,
    pub decision: String,
    pub decision_code: &'static str,
    pub comment: String,
    pub by: String,
    pub at: String,
}

/// One item asked for.
pub struct AskedLine {
    pub item: String,
    pub quantity: String,
}

#[derive(Template)]
#[template(path = "request.html")]
struct DetailPage<'a> {
    t: Tr,
    line: Line,
    v: &'a crate::api::requests::RequestDetail,
    asked: Vec<AskedLine>,
    resources_named: Vec<String>,
    steps: Vec<StepLine>,
    quota: Vec<QuotaLine>,
    limit: u32,
    history: Vec<(i64, String, String, String)>,
    delivered: Vec<ResourceRecord>,
    submitted_at: String,
    can_decide: bool,
    csrf: &'a str,
    decision: &'a str,
    comment: &'a str,
    errors: FormErrors,
    documents: Vec<super::documents::DocLine>,
    doc_kinds: Vec<(&'static str, String)>,
    can_upload: bool,
    doc_notice: Option<String>,
    doc_error: Option<String>,
    upload_action: String,
}

impl DetailPage<'_> {
    fn resource_state(&self, r: &ResourceRecord) -> String {
        self.t.name("resource_state", r.state.code())
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct DecisionForm {
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub comment: String,
}

async fn render_detail(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    id: &str,
    form: Option<(&DecisionForm, FormErrors)>,
    after: &super::systems::AfterUpload,
) -> ConsoleResult {
    let t = signed.tr();
    let Some(reader) = signed.caller.actor.reader() else {
        return Err(ApiError::forbidden("this role does not read requests").into());
    };
    let axum::Json(detail) =
        crate::api::requests::get_one(State(state.clone()), signed.caller.clone(), Path(id.to_owned()))
            .await?;
    let r = &detail.view.request;
    let mut liner = Liner::new(state, reader.scope(), t).await?;
    let line = Liner::lines(&mut liner, vec![clone_view(&detail.view)]).await?.remove(0);
    let catalog = catalog(state).await?;
    let asked = r
        .content
        .items
        .iter()
        .map(|(item, qty)| {
            let c = catalog.iter().find(|c| c.id.0 == *item);
            AskedLine {
                item: c.map(|c| item_label(t, c)).unwrap_or_else(|| format!("#{item}")),
                quantity: match c {
                    Some(c) => format!("{qty} {}", t.name("measure", &c.spec.measure)),
                    None => qty.to_string(),
                },
            }
        })
        .collect();
    let q = ResourceQuery { system_id: Some(r.system_id.0), state: None, limit: Some(500), cursor: None };
    let axum::Json(resources) =
        crate::api::resources::list(State(state.clone()), signed.caller.clone(), ApiQuery(q)).await?;
    let resources_named = r
        .content
        .resource_ids
        .iter()
        .map(|rid| {
            resources.items.iter().find(|x| x.id == *rid).map(|x| x.name.clone()).unwrap_or(format!("#{rid}"))
        })
        .collect();
    let delivered = resources.items.into_iter().filter(|x| x.request_id == r.id).collect();
    let steps = r
        .steps
        .iter()
        .map(|s| StepLine {
            round: s.round,
            role: t.name("role", s.role.code()),
            decision: t.name("decision", s.decision.code()),
            decision_code: s.decision.code(),
            comment: s.comment.clone(),
            by: s.decided_by.clone(),
            at: local_time(&s.decided_at.to_string()),
        })
        .collect();
    let c = &detail.context;
    let limit = state.settings.sla.expansion_limit_percent;
    let class = |key: &str, quota: u32, used: u64, pct: u64| QuotaLine {
        class: t.s(key).to_owned(),
        quota: u64::from(quota),
        in_use: used,
        asked: 0,
        after: used,
        percent: pct.min(999),
        verdict: if pct > u64::from(limit) {
            "over"
        } else if pct > 100 {
            "warn"
        } else {
            "ok"
        },
    };
    let quota = vec![
        class("quota.vcpu", c.quota.vcpu, c.in_use.vcpu, c.in_use_percent.vcpu),
        class("quota.memory_gib", c.quota.memory_gib, c.in_use.memory_gib, c.in_use_percent.memory_gib),
        class("quota.storage_gib", c.quota.storage_gib, c.in_use.storage_gib, c.in_use_percent.storage_gib),
    ];
    let history = c
        .history
        .iter()
        .map(|h| {
            (
                h.id,
                t.name("request_kind", h.kind.code()),
                t.name("request_state", h.state.code()),
                local_time(&h.submitted_at),
            )
        })
        .collect();
    let my_turn = detail.view.turn.is_some_and(|role| signed.caller.actor.has(role));
    let (decision, comment, errors) = match form {
        Some((f, e)) => (f.decision.as_str(), f.comment.as_str(), e),
        None => ("", "", FormErrors::default()),
    };
    let axum::Json(docs) = crate::api::documents::list_for_request(
        State(state.clone()),
        signed.caller.clone(),
        Path(id.to_owned()),
    )
    .await?;
    let open = matches!(r.state.code(), "in_review" | "returned");
    let page_view = DetailPage {
        t,
        line,
        v: &detail,
        asked,
        resources_named,
        steps,
        quota,
        limit,
        history,
        delivered,
        submitted_at: local_time(&r.submitted_at.to_string()),
        can_decide: my_turn,
        csrf: &signed.csrf,
        decision,
        comment,
        errors,
        documents: super::documents::lines(t, &docs.items),
        doc_kinds: super::documents::kinds(t),
        can_upload: open && signed.caller.actor.requester().is_some(),
        doc_notice: after.notice(t),
        doc_error: after.error(t),
        upload_action: format!("/requests/{}/documents", r.id),
    };
    let chrome = Chrome::new(signed, state, &format!("/requests/{}", r.id)).await?;
    let title = format!("{} #{}", t.name("request_kind", r.kind.code()), r.id);
    page(headers, &chrome, &title, &page_view)
}

/// A view of the same request (the list's row builder takes views by value).
fn clone_view(v: &RequestView) -> RequestView {
    RequestView {
        request: v.request.clone(),
        turn: v.turn,
        sla: v.sla,
        working_days_taken: v.working_days_taken,
        warning: v.warning.clone(),
    }
}

/// `GET /requests/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(after): Query<super::systems::AfterUpload>,
) -> ConsoleResult {
    render_detail(&state, &signed, &headers, &id, None, &after).await
}

/// `POST /requests/{id}/decision`: approve, reject or return, through the
/// API's own handler (whose turn, comments required, the route on).
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    posted: Submitted<DecisionForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let input = DecisionInput { decision: form.decision.clone(), comment: form.comment.clone() };
    let result = crate::api::requests::decide(
        State(state.clone()),
        signed.caller.clone(),
        Path(id.clone()),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/requests/{id}")).into_response()),
        Err(
            e @ (ApiError::Invalid(_)
            | ApiError::Refused(_)
            | ApiError::Conflict { .. }
            | ApiError::Forbidden { .. }),
        ) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            render_detail(&state, &signed, &headers, &id, Some((&form, errors)), &Default::default()).await
        }
        Err(e) => Err(e.into()),
    }
}
