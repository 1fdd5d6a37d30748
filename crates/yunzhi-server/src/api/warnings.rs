//! The office's process against what the efficiency analysis finds (Art.
//! 14): a finding reviewed into a warning, the unit's answer, the office's
//! decisions, and a suspension of the system's hosts, approved by the
//! office, until the rectification is confirmed.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use yunzhi_domain::FieldError;
use yunzhi_domain::access::Scope;
use yunzhi_domain::clock::{At, Clock};
use yunzhi_domain::finding::FindingState;
use yunzhi_domain::invalid::Checker;
use yunzhi_domain::resource::ResourceState;
use yunzhi_domain::role::Role;
use yunzhi_domain::warning::{self, Answer, Step, WarningState};
use yunzhi_store::{AuditCtx, FindingRecord, Notice, Page, Tx, WarningChange, WarningFilter, WarningRecord};

use super::{ApiQuery, PageQuery, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;
use crate::worker::{ResourceAction, enqueue_action};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// confirm (a warning goes to the unit) or dismiss.
    pub decision: String,
    pub comment: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Reviewed {
    pub finding: FindingRecord,
    /// The warning a confirmed finding about a unit's system became.
    pub warning: Option<WarningRecord>,
}

#[utoipa::path(post, path = "/api/v1/findings/{id}/review", tag = "findings", request_body = ReviewInput,
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Reviewed; a confirmed finding about a unit's system is now its warning", body = Reviewed),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 409, description = "Already reviewed, or changed meanwhile", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<ReviewInput>,
) -> ApiResult<Json<Reviewed>> {
    caller
        .actor
        .finding_reviewer()
        .ok_or_else(|| ApiError::forbidden("the office reviews findings (Art. 14)"))?;
    let mut c = Checker::new();
    let decision = match body.value.decision.as_str() {
        "confirm" => Some(FindingState::Confirmed),
        "dismiss" => Some(FindingState::Dismissed),
        _ => {
            c.push(FieldError::new("decision", "unknown_decision", "decision must be confirm or dismiss"));
            None
        }
    };
    let comment = body.value.comment.trim().to_owned();
    // Art. 14: the office's review is a decision with its grounds — what the
    // unit must put right, or why the finding is no fault.
    if let Some(decision) = decision
        && comment.chars().count() < 2
    {
        let why = if decision == FindingState::Dismissed {
            "dismissing a finding needs the reason in comment"
        } else {
            "confirming a finding needs, in comment, what the unit must put right (Art. 14)"
        };
        c.push(FieldError::new("comment", "required", why).article(14));
    }
    if comment.chars().count() > 1000 {
        c.push(FieldError::new("comment", "too_long", "comment is at most 1000 characters"));
    }
    c.finish()?;
    let Some(decision) = decision else { return Err(ApiError::Internal(anyhow::anyhow!("checked above"))) };
    let now = state.now();
    let calendar = state.store.calendar().await?;
    let mut tx = state.store.begin().await?;
    let current = tx.finding_for_update(path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    if current.state != FindingState::Open {
        return Err(ApiError::Conflict {
            code: "already_reviewed",
            detail: format!("finding {} is {}, not open", current.id, current.state.code()),
            field: None,
        });
    }
    let ctx = caller.audit(now);
    let finding = tx.review_finding(&ctx, &current, decision, &comment).await?;
    let mut issued = None;
    if let (FindingState::Confirmed, Some(unit)) = (decision, finding.unit_id) {
        let days = u32::try_from(state.settings.rectification_days).unwrap_or(10);
        let deadline = calendar
            .due_on(state.clock.today(), days)
            .map_err(|e| ApiError::Refused(e.field_error("deadline")))?;
        let requirement = format!("{comment}（请于 {deadline} 前整改或说明情况，第十四条）");
        let w = tx.create_warning(&ctx, &finding, unit, &requirement, deadline).await?;
        let notice = Notice {
            kind: "warning.issued",
            title: format!("整改通知：{}", w.title),
            body: format!(
                "The office confirmed a finding about your system: {}. Rectify it or explain by {deadline} (Art. 14).",
                finding.evidence["summary_en"].as_str().unwrap_or(&finding.title)
            ),
            link: Some(format!("/api/v1/warnings/{}", w.id)),
            dedup_key: Some(format!("warning:{}", w.id)),
        };
        tx.notify_unit(unit, &notice, now.as_millisecond()).await?;
        issued = Some(w);
    }
    if decision == FindingState::Dismissed {
        // The Big Data Center watches the fleet: it learns which of its
        // findings the office set aside, and why.
        let notice = Notice {
            kind: "finding.dismissed",
            title: format!("问题已驳回：{}", finding.title),
            body: format!("The office dismissed finding {}: {comment}", finding.id),
            link: Some(format!("/api/v1/findings/{}", finding.id)),
            dedup_key: Some(format!("finding-dismissed:{}", finding.id)),
        };
        tx.notify_role(Role::CloudAdmin, None, &notice, now.as_millisecond()).await?;
    }
    tx.commit().await?;
    Ok(Json(Reviewed { finding, warning: issued }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WarningQuery {
    /// open, answered, overdue, suspension_proposed, suspended, closed.
    pub state: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/warnings", tag = "warnings", params(WarningQuery),
    responses((status = 200, description = "Warnings the caller may see: a unit its own")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WarningQuery>,
) -> ApiResult<Json<Page<WarningRecord>>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("the audit admin reads the log alone"))?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    let filter =
        WarningFilter { state: q.state.as_deref().map(|s| WarningState::parse("state", s)).transpose()? };
    Ok(Json(state.store.warnings(reader.scope(), &filter, page).await?))
}

#[utoipa::path(get, path = "/api/v1/warnings/{id}", tag = "warnings",
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "OK", body = WarningRecord), (status = 404, description = "No such object, or another unit's", body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WarningRecord>> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("the audit admin reads the log alone"))?;
    state.store.warning(reader.scope(), path_id(&id)?).await?.map(Json).ok_or(ApiError::NotFound)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    /// rectified or explained.
    pub answer: String,
    /// What was done, or why it is not a fault (e.g. a declared seasonal peak).
    pub comment: String,
    /// Documents of the warned system that bear the answer out (uploaded
    /// with `POST /api/v1/systems/{id}/documents`: the seasonal schedule,
    /// the decommissioning record); at most 10.
    #[serde(default)]
    pub documents: Vec<i64>,
}

/// Answers cite at most this many documents.
const MAX_CITED: usize = 10;

#[utoipa::path(post, path = "/api/v1/warnings/{id}/response", tag = "warnings", request_body = ResponseInput,
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Answered", body = WarningRecord),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 409, description = "Not in a state that takes an answer", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<ResponseInput>,
) -> ApiResult<Json<WarningRecord>> {
    let responder = caller
        .actor
        .warning_responder()
        .ok_or_else(|| ApiError::forbidden("the unit admin answers its unit's warnings (Art. 14)"))?;
    let mut c = Checker::new();
    let answer = c.take(Answer::parse("answer", &body.value.answer).map_err(Into::into));
    let comment = c.take(yunzhi_domain::text::bounded("comment", &body.value.comment, 2, 2000));
    c.finish()?;
    let (Some(answer), Some(comment)) = (answer, comment) else {
        return Err(ApiError::Internal(anyhow::anyhow!("checked above")));
    };
    // Another unit's warning is a 404, as a missing one.
    let seen = state.store.warning(responder.scope(), path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    let cited = cited_documents(&state, responder.scope(), &seen, &body.value.documents).await?;
    let now = state.now();
    let ctx = caller.audit(now);
    let mut tx = state.store.begin().await?;
    let current = tx.warning_for_update(seen.id).await?.ok_or(ApiError::NotFound)?;
    let to = warning::next(current.state, Some(answer), Step::Answer(answer)).map_err(conflict)?;
    let mut event = serde_json::json!({"step": Step::Answer(answer).code(), "by": ctx.actor, "at": At(now), "comment": comment});
    if !cited.is_empty() {
        event["documents"] = serde_json::json!(cited);
    }
    let updated = tx
        .step_warning(&ctx, &current, &WarningChange { state: to, answer: Some((answer, &comment)), event })
        .await?;
    let notice = Notice {
        kind: "warning.answered",
        title: format!(
            "整改通知已答复（{}）：{}",
            if answer == Answer::Rectified { "已整改" } else { "情况说明" },
            updated.title
        ),
        body: format!("The unit answered warning {}: {} — {comment}", updated.id, answer.code()),
        link: Some(format!("/api/v1/warnings/{}", updated.id)),
        dedup_key: None,
    };
    tx.notify_role(Role::Office, None, &notice, now.as_millisecond()).await?;
    tx.commit().await?;
    Ok(Json(updated))
}

/// The documents an answer cites, as its history keeps them (id, file name
/// and SM3 digest, so the record stands on its own), each checked to be one
/// of the warned system's documents.
async fn cited_documents(
    state: &AppState,
    scope: yunzhi_domain::access::Scope,
    w: &WarningRecord,
    ids: &[i64],
) -> ApiResult<Vec<serde_json::Value>> {
    if ids.len() > MAX_CITED {
        let mut c = Checker::new();
        c.push(FieldError::new(
            "documents",
            "too_many",
            format!("an answer cites at most {MAX_CITED} documents"),
        ));
        c.finish()?;
    }
    let mut c = Checker::new();
    let mut cited = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("documents[{i}]");
        match state.store.document(scope, *id).await? {
            Some((d, _)) if Some(d.system_id) == w.system_id => {
                if !cited.iter().any(|c: &serde_json::Value| c["id"] == d.id) {
                    cited.push(serde_json::json!({"id": d.id, "filename": d.filename, "sm3": d.sm3}));
                }
            }
            Some(_) => c.push(FieldError::new(
                &field,
                "other_system",
                format!("{field}: document {id} is not one of the warned system's documents"),
            )),
            None => c.push(FieldError::new(
                &field,
                "not_found",
                format!("{field}: your unit has no document {id}"),
            )),
        }
    }
    c.finish()?;
    Ok(cited)
}

fn conflict(e: FieldError) -> ApiError {
    ApiError::Conflict { code: e.code, detail: e.detail, field: Some(e.field) }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// accept_explanation, reject_explanation, confirm_rectification (office);
    /// propose_suspension (cloud_admin); approve_suspension, reject_suspension (office).
    pub action: String,
    pub comment: String,
}

#[utoipa::path(post, path = "/api/v1/warnings/{id}/decision", tag = "warnings", request_body = DecisionInput,
    params(("id" = i64, Path, description = "The object's id")),
    responses((status = 200, description = "Decided", body = WarningRecord),
        (status = 403, description = "Not this role's step", body = crate::error::Problem),
        (status = 404, description = "No such object, or another unit's", body = crate::error::Problem),
        (status = 409, description = "Not in a state that takes this step", body = crate::error::Problem),
        (status = 422, description = "Invalid input: the field, the rule and the article", body = crate::error::Problem)))]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<DecisionInput>,
) -> ApiResult<Json<WarningRecord>> {
    let mut c = Checker::new();
    let step = c.take(Step::parse_decision("action", &body.value.action).map_err(Into::into));
    let comment = c.take(yunzhi_domain::text::bounded("comment", &body.value.comment, 2, 2000));
    c.finish()?;
    let (Some(step), Some(comment)) = (step, comment) else {
        return Err(ApiError::Internal(anyhow::anyhow!("checked above")));
    };
    let allowed = match step.role() {
        Some(Role::Office) => caller.actor.finding_reviewer().is_some(),
        Some(Role::CloudAdmin) => caller.actor.suspension_proposer().is_some(),
        _ => false,
    };
    if !allowed {
        return Err(ApiError::forbidden(format!(
            "{} is the {}'s step (Art. 14)",
            step.code(),
            step.role().map(|r| r.code()).unwrap_or("platform")
        )));
    }
    let now = state.now();
    let ctx = caller.audit(now);
    let mut tx = state.store.begin().await?;
    let current = tx.warning_for_update(path_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    let to = warning::next(current.state, current.answer, step).map_err(conflict)?;
    let mut event =
        serde_json::json!({"step": step.code(), "by": ctx.actor, "at": At(now), "comment": comment});
    match (current.state, to) {
        (_, WarningState::Suspended) => {
            let ids = suspend_system(&mut tx, &current, now).await?;
            event["suspended"] = serde_json::json!(ids);
        }
        (WarningState::Suspended, WarningState::Closed) => {
            let ids = resume_system(&mut tx, &current, now).await?;
            event["resumed"] = serde_json::json!(ids);
        }
        _ => {}
    }
    let updated = tx.step_warning(&ctx, &current, &WarningChange { state: to, answer: None, event }).await?;
    let (zh, en) = match to {
        WarningState::Closed => ("已办结", "closed"),
        WarningState::Open => ("说明未被采纳，请整改", "reopened: the explanation was not accepted"),
        WarningState::SuspensionProposed => ("已提议停用", "proposed for suspension"),
        WarningState::Suspended => ("资源已停用", "suspended"),
        WarningState::Overdue => {
            ("停用提议未获批准，仍待整改", "still overdue: the suspension was not approved")
        }
        WarningState::Answered => ("已答复", "answered"),
    };
    let notice = Notice {
        kind: "warning.decided",
        title: format!("整改通知{zh}：{}", updated.title),
        body: format!("Warning {} is {en}: {comment}", updated.id),
        link: Some(format!("/api/v1/warnings/{}", updated.id)),
        dedup_key: None,
    };
    tx.notify_unit(updated.unit_id, &notice, now.as_millisecond()).await?;
    match to {
        // The office decides on a proposal...
        WarningState::SuspensionProposed => {
            tx.notify_role(Role::Office, None, &notice, now.as_millisecond()).await?;
        }
        // ...and the Big Data Center, which proposed it, learns the outcome
        // and sees the suspension or resumption through.
        WarningState::Suspended | WarningState::Overdue | WarningState::Closed
            if matches!(current.state, WarningState::SuspensionProposed | WarningState::Suspended) =>
        {
            tx.notify_role(Role::CloudAdmin, None, &notice, now.as_millisecond()).await?;
        }
        _ => {}
    }
    tx.commit().await?;
    state.worker.notify_one();
    Ok(Json(updated))
}

/// Queues the suspension of the warned system's running hosts; their ids.
async fn suspend_system(tx: &mut Tx, w: &WarningRecord, now: jiff::Timestamp) -> ApiResult<Vec<i64>> {
    let Some(system) = w.system_id else { return Ok(vec![]) };
    let mut ids = Vec::new();
    for host in tx.live_hosts_of_system(system).await? {
        if host.state != ResourceState::Active {
            continue;
        }
        let notice = Notice {
            kind: "resource.suspended",
            title: format!("资源 {} 因整改通知 #{} 已停用", host.name, w.id),
            body: format!(
                "Host {} is suspended under warning {} until the rectification is confirmed (Art. 14).",
                host.name, w.id
            ),
            link: Some(format!("/api/v1/warnings/{}", w.id)),
            dedup_key: Some(format!("warning-suspend:{}:{}", w.id, host.id)),
        };
        let key = format!("warning:{}:suspend:{}", w.id, host.id);
        enqueue_action(
            tx,
            &host,
            ResourceAction::Suspend,
            "resource.suspend_warning",
            Some(&notice),
            key,
            now,
        )
        .await?;
        ids.push(host.id);
    }
    Ok(ids)
}

/// Queues the resumption of the hosts the warning's suspension stopped.
async fn resume_system(tx: &mut Tx, w: &WarningRecord, now: jiff::Timestamp) -> ApiResult<Vec<i64>> {
    let suspended: Vec<i64> = w
        .history
        .iter()
        .filter_map(|e| e["suspended"].as_array())
        .flatten()
        .filter_map(|v| v.as_i64())
        .collect();
    let mut ids = Vec::new();
    for id in suspended {
        let Some(host) = tx.resource(id).await? else { continue };
        if !host.state.is_live() {
            continue;
        }
        let notice = Notice {
            kind: "resource.resumed",
            title: format!("资源 {} 已恢复", host.name),
            body: format!(
                "Host {} is resumed: the rectification of warning {} was confirmed.",
                host.name, w.id
            ),
            link: Some(format!("/api/v1/resources/{}", host.id)),
            dedup_key: Some(format!("warning-resume:{}:{}", w.id, host.id)),
        };
        let key = format!("warning:{}:resume:{}", w.id, host.id);
        enqueue_action(tx, &host, ResourceAction::Resume, "resource.resume_warning", Some(&notice), key, now)
            .await?;
        ids.push(host.id);
    }
    Ok(ids)
}

/// The deadline's check (Art. 14), for the scheduler: a warning unanswered
/// or answered "rectified" closes if the rule no longer finds what it found
/// (its finding not seen by the latest analysis pass), or becomes overdue if it
/// still does; an explanation still waiting for the office at the deadline
/// is put to the office once more. Returns how many changed.
pub async fn check_deadlines(state: &AppState) -> anyhow::Result<u64> {
    let now = state.now();
    let today = state.clock.today();
    let due = state.store.warnings_due(today).await?;
    let latest_pass = crate::worker::analysis::latest_pass(state).await?;
    let mut changed = 0;
    for w in due {
        let finding = state.store.finding(Scope::AllUnits, w.finding_id).await?;
        let rule_holds = finding.is_some_and(|f| warning::rule_still_holds(f.last_seen_at.0, latest_pass));
        let step = Step::DeadlinePassed { rule_holds };
        let Ok(to) = warning::next(w.state, w.answer, step) else {
            if w.state == WarningState::Answered {
                remind_office(state, &w, now).await?;
            }
            continue;
        };
        let ctx = AuditCtx::system("scheduler", now);
        let event = serde_json::json!({"step": step.code(), "by": "scheduler", "at": At(now), "rule_holds": rule_holds});
        let mut tx = state.store.begin().await?;
        let Some(current) = tx.warning_for_update(w.id).await? else { continue };
        if current.version != w.version {
            continue;
        }
        let updated =
            tx.step_warning(&ctx, &current, &WarningChange { state: to, answer: None, event }).await?;
        let (title, body) = if to == WarningState::Closed {
            (
                format!("整改已核实，通知办结：{}", updated.title),
                format!("Warning {}: the check at the deadline confirms the rectification.", updated.id),
            )
        } else {
            (
                format!("整改期限已过：{}", updated.title),
                format!(
                    "Warning {} passed its deadline {} without rectification; a suspension may be proposed (Art. 14).",
                    updated.id, updated.deadline
                ),
            )
        };
        let notice = Notice {
            kind: "warning.deadline",
            title,
            body,
            link: Some(format!("/api/v1/warnings/{}", updated.id)),
            dedup_key: Some(format!("warning-deadline:{}:{}", updated.id, to.code())),
        };
        tx.notify_unit(updated.unit_id, &notice, now.as_millisecond()).await?;
        // The Big Data Center may now propose a suspension, which the office decides.
        if to == WarningState::Overdue {
            tx.notify_role(Role::CloudAdmin, None, &notice, now.as_millisecond()).await?;
            tx.notify_role(Role::Office, None, &notice, now.as_millisecond()).await?;
        }
        tx.commit().await?;
        changed += 1;
    }
    Ok(changed)
}

/// Tells the office, once, that a unit's explanation has waited for its
/// decision past the warning's deadline.
async fn remind_office(state: &AppState, w: &WarningRecord, now: jiff::Timestamp) -> anyhow::Result<()> {
    let notice = Notice {
        kind: "warning.awaiting_decision",
        title: format!("整改通知的情况说明待决定（期限 {} 已过）：{}", w.deadline, w.title),
        body: format!(
            "The unit explained warning {} and its deadline {} has passed: accept or reject the explanation (Art. 14).",
            w.id, w.deadline
        ),
        link: Some(format!("/api/v1/warnings/{}", w.id)),
        dedup_key: Some(format!("warning-awaiting:{}:{}", w.id, w.version)),
    };
    let mut tx = state.store.begin().await?;
    tx.notify_role(Role::Office, None, &notice, now.as_millisecond()).await?;
    tx.commit().await?;
    Ok(())
}
