//! Requests and their approval (`/api/v1/requests`): filed by a unit's
//! staff, decided step by step by the roles of the route, carried out by jobs.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use yunzhi_domain::FieldError;
use yunzhi_domain::access::Scope;
use yunzhi_domain::calendar::Calendar;
use yunzhi_domain::clock::Clock;
use yunzhi_domain::ids::{CatalogItemId, SystemId};
use yunzhi_domain::request::{
    self, Decision, DecisionRefusal, Demand, Outcome, QuotaShare, RequestDraft, RequestInput, RequestKind,
    RequestState, Sla, SlaPolicy,
};
use yunzhi_domain::role::Role;
use yunzhi_domain::system::Quota;
use yunzhi_store::{
    NewJob, NewRequest, Notice, Page, RequestFilter, RequestRecord, SystemRecord, Tx, VersionRecord,
};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller, IdempotencyKey};
use crate::idempotent;
use crate::state::AppState;

/// A request as the API shows it: the record, whose turn it is and how it
/// stands against its deadline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub request: RequestRecord,
    /// The role whose decision is awaited.
    #[schema(value_type = Option<String>)]
    pub turn: Option<Role>,
    #[schema(value_type = String)]
    pub sla: Sla,
    /// Working days from receipt to the end (or to today, while open).
    pub working_days_taken: Option<u32>,
    /// What the requester must know before going on: for a reclaim, that
    /// it cannot be undone (Art. 11).
    pub warning: Option<String>,
}

/// Said plainly on every reclaim (Art. 11).
pub const RECLAIM_WARNING: &str = "回收不可逆：资源一经回收即被删除，无法恢复。请确认已自行完成应用和数据的备份迁移（第十一条）。\
     Reclaim is irreversible: the resources and everything on them are deleted for good. The unit must have backed up \
     and migrated its application and data first (Art. 11).";

fn view(calendar: &Calendar, today: jiff::civil::Date, r: RequestRecord) -> RequestView {
    let zone = yunzhi_domain::clock::district_zone();
    let finished = r.finished_at.map(|t| t.0.to_zoned(zone.clone()).date());
    let received = r.submitted_at.0.to_zoned(zone).date();
    let taken = calendar.working_days_taken(received, finished.unwrap_or(today)).ok();
    RequestView {
        warning: (r.kind == RequestKind::Reclaim).then(|| RECLAIM_WARNING.to_owned()),
        turn: r.turn(),
        sla: request::sla(calendar, today, r.due_on, finished),
        working_days_taken: taken,
        request: r,
    }
}

/// What the approvers see beside a request (Art. 25): the system, its
/// quota and use, and the unit's recent requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestContext {
    pub system_name: String,
    pub unit_name: String,
    #[schema(value_type = Object)]
    pub quota: Quota,
    /// Held now by live resources and requests in flight (this one included).
    #[schema(value_type = Object)]
    pub in_use: Demand,
    #[schema(value_type = Object)]
    pub in_use_percent: QuotaShare,
    /// The system's other requests, newest first.
    pub history: Vec<HistoryLine>,
    /// The unit's latest published annual evaluation (Art. 25), once there is one.
    #[schema(value_type = Option<Object>)]
    pub latest_evaluation: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryLine {
    pub id: i64,
    #[schema(value_type = String)]
    pub kind: RequestKind,
    #[schema(value_type = String)]
    pub state: RequestState,
    pub submitted_at: String,
    pub exception: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestDetail {
    #[serde(flatten)]
    pub view: RequestView,
    /// Every submitted version, oldest first.
    pub versions: Vec<VersionRecord>,
    pub context: RequestContext,
}

/// The facts of a draft checked against the system, the catalog, its
/// resources and the quota: what is stored with the request.
struct Assessed {
    route: Vec<Role>,
    exception: bool,
    demand: Demand,
    due_on: jiff::civil::Date,
}

/// Checks `draft` for `system` inside `tx`, leaving request `except` out of
/// what the system holds (a resubmission does not count against itself).
async fn assess(
    tx: &mut Tx,
    policy: &SlaPolicy,
    calendar: &Calendar,
    today: jiff::civil::Date,
    system: &SystemRecord,
    draft: &RequestDraft,
    except: i64,
) -> ApiResult<Assessed> {
    request::check_system(draft.kind, &system.system).map_err(ApiError::Refused)?;
    tx.lock_system(system.id).await?;
    let mut demand = Demand::default();
    let mut exception = false;
    if draft.kind.asks_for_items() {
        for (i, (item, quantity)) in draft.items.iter().enumerate() {
            let Some(record) = tx.catalog_item(CatalogItemId(*item)).await? else {
                return Err(FieldError::new(
                    format!("items[{i}].catalog_item_id"),
                    "unknown_item",
                    format!("there is no catalog item {item}"),
                )
                .into());
            };
            request::check_item(i, &record.spec, record.active, system.system.arch)?;
            demand = demand + Demand::of(&record.spec, *quantity);
        }
        let in_use = tx.quota_in_use(system.id, except).await?;
        let check = request::check_quota(
            draft.kind,
            &system.system.quota,
            in_use,
            demand,
            policy.expansion_limit_percent,
            draft.exception_reason.as_deref(),
        )
        .map_err(ApiError::Refused)?;
        exception = check.exception;
    }
    if draft.kind.names_resources() {
        let found = tx.resources_of(system.id, &draft.resource_ids).await?;
        for id in &draft.resource_ids {
            match found.iter().find(|r| r.id == *id) {
                None => {
                    return Err(FieldError::new(
                        "resource_ids",
                        "unknown_resource",
                        format!("the system has no resource {id}"),
                    )
                    .into());
                }
                Some(r) if !r.state.is_live() => {
                    return Err(FieldError::new(
                        "resource_ids",
                        "already_reclaimed",
                        format!("resource {id} is already reclaimed"),
                    )
                    .into());
                }
                Some(r) if draft.kind == RequestKind::Extension && !r.temporary => {
                    return Err(FieldError::new(
                        "resource_ids",
                        "not_temporary",
                        format!(
                            "resource {id} is not a temporary resource; only those expire and are extended"
                        ),
                    )
                    .into());
                }
                Some(_) => {}
            }
        }
        if draft.kind == RequestKind::Extension {
            let expiry = found.iter().filter_map(|r| r.expires_on).min();
            if let (Some(expiry), Some(until)) = (expiry, draft.until) {
                request::check_extension(today, expiry, until).map_err(ApiError::Refused)?;
            }
        }
    }
    let due_on =
        policy.due_on(calendar, draft.kind, today).map_err(|e| ApiError::Refused(e.field_error("due_on")))?;
    Ok(Assessed { route: request::route(draft.kind, exception), exception, demand, due_on })
}

fn notice_turn(r: &RequestRecord, system: &str) -> Notice {
    Notice {
        kind: "request.turn",
        title: format!("待审批：{system} 的{}申请 #{}", kind_zh(r.kind), r.id),
        body: format!(
            "Request #{} ({}) for {system} awaits your decision by {}.",
            r.id,
            r.kind.code(),
            r.due_on
        ),
        link: Some(format!("/api/v1/requests/{}", r.id)),
        dedup_key: Some(format!("turn:{}:{}:{}", r.id, r.round, r.step)),
    }
}

pub fn kind_zh(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::New => "新增",
        RequestKind::Expansion => "扩容",
        RequestKind::Reclaim => "回收",
        RequestKind::Temporary => "临时资源",
        RequestKind::Extension => "延期",
    }
}

fn requester(caller: &Caller) -> ApiResult<yunzhi_domain::access::Requester> {
    caller.actor.requester().ok_or_else(|| ApiError::forbidden("requests are filed by a using unit's staff"))
}

#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = RequestInput,
    responses((status = 201, description = "Submitted", body = RequestView),
        (status = 422, description = "Invalid, or refused by a rule: quota_exceeded, deadline_missed, backup_confirmation_required, …", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<RequestInput>,
) -> ApiResult<Response> {
    let filer = requester(&caller)?;
    let draft = RequestDraft::parse(&body.value)?;
    let calendar = state.store.calendar().await?;
    let today = state.clock.today();
    let policy = state.settings.sla;
    let ctx = caller.audit(state.now());
    let now = ctx.at.as_millisecond();
    idempotent::create(&state, &caller, key, "POST /requests", &body.raw, async |tx| {
        let system = tx.system(filer.scope(), SystemId(draft.system_id)).await?.ok_or_else(|| {
            FieldError::new("system_id", "unknown_system", format!("there is no system {}", draft.system_id))
        })?;
        let a = assess(tx, &policy, &calendar, today, &system, &draft, 0).await?;
        let new = NewRequest {
            unit: system.unit_id,
            draft: &draft,
            route: &a.route,
            exception: a.exception,
            demand: a.demand,
            due_on: a.due_on,
        };
        let created = tx.create_request(&ctx, &new).await?;
        tx.notify_role(a.route[0], None, &notice_turn(&created, &system.system.name), now).await?;
        Ok(view(&calendar, today, created))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    pub system_id: Option<i64>,
    /// in_review, returned, approved, fulfilled, rejected, withdrawn.
    pub state: Option<String>,
    /// new, expansion, reclaim, temporary, extension.
    pub kind: Option<String>,
    /// `mine`: those awaiting the caller's decision; or a role.
    pub turn: Option<String>,
    /// on_time, due_soon, overdue, met, missed.
    pub sla: Option<String>,
    /// `true`: only expansions admitted as exceptions beyond the 120 % limit (Art. 10).
    pub exception: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(RequestQuery),
    responses((status = 200, description = "Requests the caller may see, with their deadline state")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RequestQuery>,
) -> ApiResult<Json<Page<RequestView>>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read requests"))?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    let turn = match q.turn.as_deref() {
        None => None,
        Some("mine") => Some(
            caller
                .actor
                .roles
                .iter()
                .find(|r| matches!(r, Role::CloudAdmin | Role::InfraChief | Role::BdcLeader | Role::Office))
                .ok_or_else(|| {
                    FieldError::new("turn", "no_turn", "only approvers and the office have a turn")
                })?,
        ),
        Some(r) => Some(Role::parse("turn", r)?),
    };
    let filter = RequestFilter {
        system: q.system_id.map(SystemId),
        state: q.state.as_deref().map(|s| RequestState::parse("state", s)).transpose()?,
        kind: q.kind.as_deref().map(|k| RequestKind::parse("kind", k)).transpose()?,
        turn,
    };
    let sla = q.sla.as_deref().map(|s| Sla::parse("sla", s)).transpose()?;
    let calendar = state.store.calendar().await?;
    let today = state.clock.today();
    let page = state.store.requests(reader.scope(), &filter, page).await?;
    let mut views = page.map(|r| view(&calendar, today, r));
    if let Some(sla) = sla {
        views.items.retain(|v| v.sla == sla);
    }
    if let Some(exception) = q.exception {
        views.items.retain(|v| v.request.exception == exception);
    }
    Ok(Json(views))
}

/// Overdue requests of one role at one step.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OverdueLine {
    /// The role whose decision (or, once approved, whose provisioning) is late.
    #[schema(value_type = String)]
    pub role: Role,
    /// The step of the route, from 1; for approved requests, the step after the last.
    pub step: i64,
    pub count: usize,
    pub requests: Vec<i64>,
}

#[utoipa::path(get, path = "/api/v1/requests/overdue", tag = "requests",
    responses((status = 200, description = "Overdue requests per role and step")))]
pub async fn overdue(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Page<OverdueLine>>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read requests"))?;
    let calendar = state.store.calendar().await?;
    let today = state.clock.today();
    let mut lines: std::collections::BTreeMap<(i64, Role), Vec<i64>> = std::collections::BTreeMap::new();
    for s in [RequestState::InReview, RequestState::Approved] {
        let filter = RequestFilter { state: Some(s), ..RequestFilter::default() };
        for r in state.store.requests_all(reader.scope(), &filter).await? {
            if request::sla(&calendar, today, r.due_on, None) == Sla::Overdue {
                let (role, step) = match r.turn() {
                    Some(t) => (t, r.step + 1),
                    None => (Role::CloudAdmin, r.route.len() as i64 + 1),
                };
                lines.entry((step, role)).or_default().push(r.id);
            }
        }
    }
    let items = lines
        .into_iter()
        .map(|((step, role), requests)| OverdueLine { role, step, count: requests.len(), requests })
        .collect();
    Ok(Json(Page { items, next_cursor: None }))
}

async fn context(state: &AppState, scope: Scope, r: &RequestRecord) -> ApiResult<RequestContext> {
    let system = state.store.system(scope, r.system_id).await?.ok_or(ApiError::NotFound)?;
    let unit = state.store.unit(scope, r.unit_id).await?.ok_or(ApiError::NotFound)?;
    let in_use = state.store.quota_in_use(r.system_id).await?;
    let filter = RequestFilter { system: Some(r.system_id), ..RequestFilter::default() };
    let others = state.store.requests_all(scope, &filter).await?;
    let mut history: Vec<HistoryLine> = others
        .into_iter()
        .filter(|o| o.id != r.id)
        .map(|o| HistoryLine {
            id: o.id,
            kind: o.kind,
            state: o.state,
            submitted_at: o.submitted_at.to_string(),
            exception: o.exception,
        })
        .collect();
    history.reverse();
    history.truncate(20);
    Ok(RequestContext {
        system_name: system.system.name,
        unit_name: unit.name,
        quota: system.system.quota,
        in_use,
        in_use_percent: in_use.percent_of(&system.system.quota),
        history,
        latest_evaluation: None,
    })
}

#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = RequestDetail), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestDetail>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read requests"))?;
    let r = state.store.request(reader.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    let calendar = state.store.calendar().await?;
    let versions = state.store.request_versions(r.id).await?;
    let context = context(&state, reader.scope(), &r).await?;
    Ok(Json(RequestDetail { view: view(&calendar, state.clock.today(), r), versions, context }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// approve, reject or return.
    pub decision: String,
    #[serde(default)]
    pub comment: String,
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/decisions", tag = "requests", request_body = DecisionInput,
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Decided", body = RequestView),
        (status = 403, description = "Not this role's turn (`not_your_turn`)", body = crate::error::Problem),
        (status = 409, description = "Already decided (`not_in_review`, `conflict`)", body = crate::error::Problem)))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<DecisionInput>,
) -> ApiResult<Json<RequestView>> {
    let decider = caller.actor.decider().ok_or_else(|| ApiError::Forbidden {
        code: "not_your_turn",
        detail: "requests are decided by the Big Data Center's approvers and the office".into(),
        field: None,
        article: None,
    })?;
    let decision = Decision::parse("decision", &body.value.decision)?;
    let comment = body.value.comment.trim().to_owned();
    if comment.chars().count() > 2000 {
        return Err(
            FieldError::new("comment", "too_long", "comment must have at most 2000 characters").into()
        );
    }
    let calendar = state.store.calendar().await?;
    let today = state.clock.today();
    let ctx = caller.audit(state.now());
    let now = ctx.at.as_millisecond();
    let mut tx = state.store.begin().await?;
    let current = tx.request(decider.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    let roles: Vec<Role> = caller.actor.roles.iter().collect();
    let outcome =
        request::decide(current.state, &current.route, current.step as usize, &roles, decision, &comment)
            .map_err(|refusal| match refusal {
                DecisionRefusal::NotInReview(s) => ApiError::Conflict {
                    code: "not_in_review",
                    detail: format!("the request is {}, not waiting for a decision", s.code()),
                    field: None,
                },
                DecisionRefusal::NotYourTurn { turn } => ApiError::Forbidden {
                    code: "not_your_turn",
                    detail: format!("it is the {} whose decision is awaited", turn.code()),
                    field: None,
                    article: Some(current.kind.article()),
                },
                DecisionRefusal::AlreadyDecided { turn } => ApiError::Conflict {
                    code: "already_decided",
                    detail: format!(
                        "this step has already been decided; the request now awaits the {}",
                        turn.code()
                    ),
                    field: None,
                },
                DecisionRefusal::Invalid(i) => ApiError::Invalid(i),
            })?;
    let role = current.route[current.step as usize];
    let (new_state, step, due_on) = match outcome {
        Outcome::Next { step } => (RequestState::InReview, step as i64, current.due_on),
        Outcome::Approved => {
            let due = state
                .settings
                .sla
                .due_after_approval(&calendar, current.kind, today, current.due_on)
                .map_err(|e| ApiError::Refused(e.field_error("due_on")))?;
            (RequestState::Approved, current.step, due)
        }
        Outcome::Rejected => (RequestState::Rejected, current.step, current.due_on),
        Outcome::Returned => (RequestState::Returned, current.step, current.due_on),
    };
    let decided =
        tx.decide_request(&ctx, &current, role, decision, &comment, new_state, step, due_on).await?;
    let system = tx.system(Scope::AllUnits, decided.system_id).await?.ok_or(ApiError::NotFound)?;
    let name = &system.system.name;
    match outcome {
        Outcome::Next { .. } => {
            if let Some(next) = decided.turn() {
                tx.notify_role(next, None, &notice_turn(&decided, name), now).await?;
            }
        }
        Outcome::Approved => carry_out(&mut tx, &ctx, &decided).await?,
        Outcome::Rejected | Outcome::Returned => {}
    }
    let told = Notice {
        kind: "request.decided",
        title: format!(
            "{name} 的{}申请 #{}：{}",
            kind_zh(decided.kind),
            decided.id,
            decided_zh(decision, outcome)
        ),
        body: if comment.is_empty() { String::new() } else { comment.clone() },
        link: Some(format!("/api/v1/requests/{}", decided.id)),
        dedup_key: None,
    };
    tx.notify_unit(decided.unit_id, &told, now).await?;
    tx.commit().await?;
    state.worker.notify_one();
    Ok(Json(view(&calendar, today, decided)))
}

fn decided_zh(decision: Decision, outcome: Outcome) -> &'static str {
    match (decision, outcome) {
        (_, Outcome::Approved) => "审批通过",
        (_, Outcome::Next { .. }) => "本级通过，转下一级审批",
        (Decision::Reject, _) => "驳回",
        _ => "退回修改",
    }
}

/// What an approval sets going, in the approval's own transaction: a
/// provisioning or reclaim job, or the extension itself.
async fn carry_out(tx: &mut Tx, ctx: &yunzhi_store::AuditCtx, r: &RequestRecord) -> ApiResult<()> {
    match r.kind {
        RequestKind::New | RequestKind::Expansion | RequestKind::Temporary => {
            let job = NewJob {
                kind: "provision".into(),
                dedup_key: Some(format!("provision:{}", r.id)),
                payload: serde_json::json!({"request_id": r.id}),
                run_at: ctx.at,
                max_attempts: 20,
            };
            tx.enqueue_job(&job, ctx.at).await?;
        }
        RequestKind::Reclaim => {
            let job = NewJob {
                kind: "reclaim".into(),
                dedup_key: Some(format!("reclaim:{}", r.id)),
                payload: serde_json::json!({"request_id": r.id}),
                run_at: ctx.at,
                max_attempts: 20,
            };
            tx.enqueue_job(&job, ctx.at).await?;
        }
        RequestKind::Extension => {
            let until = r
                .content
                .until
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an extension without until")))?;
            for res in tx.request_resources(r.id).await? {
                tx.extend_resource(ctx, &res, until).await?;
            }
            tx.fulfil_request(ctx, r).await?;
        }
    }
    Ok(())
}

#[utoipa::path(patch, path = "/api/v1/requests/{id}", tag = "requests", request_body = RequestInput,
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Resubmitted", body = RequestView),
        (status = 409, description = "Not returned for changes", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn resubmit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<RequestInput>,
) -> ApiResult<Json<RequestView>> {
    let filer = requester(&caller)?;
    let draft = RequestDraft::parse(&body.value)?;
    let calendar = state.store.calendar().await?;
    let today = state.clock.today();
    let ctx = caller.audit(state.now());
    let mut tx = state.store.begin().await?;
    let current = tx.request(filer.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    if current.state != RequestState::Returned {
        return Err(ApiError::Conflict {
            code: "not_returned",
            detail: format!(
                "the request is {}; only a request returned for changes is edited and resubmitted",
                current.state.code()
            ),
            field: None,
        });
    }
    if draft.kind != current.kind || draft.system_id != current.system_id.0 {
        return Err(FieldError::new(
            "kind",
            "immutable",
            "a resubmission keeps the request's kind and system",
        )
        .into());
    }
    let system = tx.system(filer.scope(), current.system_id).await?.ok_or(ApiError::NotFound)?;
    let a = assess(&mut tx, &state.settings.sla, &calendar, today, &system, &draft, current.id).await?;
    let updated =
        tx.resubmit_request(&ctx, &current, &draft, &a.route, a.exception, a.demand, a.due_on).await?;
    tx.notify_role(a.route[0], None, &notice_turn(&updated, &system.system.name), ctx.at.as_millisecond())
        .await?;
    tx.commit().await?;
    Ok(Json(view(&calendar, today, updated)))
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "requests",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Withdrawn; its quota is released", body = RequestView),
        (status = 409, description = "Already decided", body = crate::error::Problem)))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    let filer = requester(&caller)?;
    let calendar = state.store.calendar().await?;
    let ctx = caller.audit(state.now());
    let mut tx = state.store.begin().await?;
    let current = tx.request(filer.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    if !matches!(current.state, RequestState::InReview | RequestState::Returned) {
        return Err(ApiError::Conflict {
            code: "not_withdrawable",
            detail: format!(
                "the request is {}; only one still in review or returned can be withdrawn",
                current.state.code()
            ),
            field: None,
        });
    }
    let updated = tx.withdraw_request(&ctx, &current).await?;
    tx.commit().await?;
    Ok(Json(view(&calendar, state.clock.today(), updated)))
}
