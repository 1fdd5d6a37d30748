//! Warnings (Art. 14): the list, one warning with the evidence of the
//! finding behind it, the unit's answer (rectified, or an explanation) and
//! the steps the office and the Big Data Center take on it — each offered
//! only to the role whose step it is and only when the warning's state
//! admits it (`warning::next`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use yunzhi_domain::warning::{self, Answer, Step};
use yunzhi_store::WarningRecord;

use super::findings::{Fact, charts, facts};
use super::i18n::Tr;
use super::session::{FormErrors, local_time};
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed, Submitted};
use crate::api::ApiQuery;
use crate::api::warnings::{DecisionInput, ResponseInput, WarningQuery};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

const STATES: [&str; 6] = ["open", "answered", "overdue", "suspension_proposed", "suspended", "closed"];
const DECISIONS: [Step; 6] = [
    Step::AcceptExplanation,
    Step::RejectExplanation,
    Step::ConfirmRectification,
    Step::ProposeSuspension,
    Step::ApproveSuspension,
    Step::RejectSuspension,
];

pub struct Line {
    pub id: i64,
    pub title: String,
    pub state: String,
    pub state_code: &'static str,
    pub deadline: String,
    pub issued: String,
}

impl Line {
    fn of(t: Tr, w: &WarningRecord) -> Line {
        Line {
            id: w.id,
            title: w.title.clone(),
            state: t.name("warning_state", w.state.code()),
            state_code: w.state.code(),
            deadline: w.deadline.to_string(),
            issued: local_time(&w.issued_at.to_string()),
        }
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
}

#[derive(Template)]
#[template(path = "warnings.html")]
struct ListPage {
    t: Tr,
    states: Vec<Choice>,
    rows: Vec<Line>,
}

/// `GET /warnings`.
pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let t = signed.tr();
    let st = STATES.iter().find(|s| **s == q.state).copied();
    let query = WarningQuery { state: st.map(str::to_owned), limit: Some(200), cursor: None };
    let axum::Json(found) =
        crate::api::warnings::list(State(state.clone()), signed.caller.clone(), ApiQuery(query)).await?;
    let mut rows: Vec<Line> = found.items.iter().map(|w| Line::of(t, w)).collect();
    rows.reverse();
    let list = ListPage {
        t,
        states: STATES
            .iter()
            .map(|s| Choice { code: s, label: t.name("warning_state", s), selected: st == Some(*s) })
            .collect(),
        rows,
    };
    let chrome = Chrome::new(&signed, &state, "/warnings").await?;
    page(&headers, &chrome, t.s("warnings.title"), &list)
}

pub struct HistoryLine {
    pub step: String,
    pub by: String,
    pub at: String,
    pub comment: String,
    /// Documents the step cites: id and file name.
    pub documents: Vec<(i64, String)>,
}

/// One of the warned system's documents, offered to an answer.
pub struct DocChoice {
    pub id: i64,
    pub filename: String,
    pub kind: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "warning.html")]
struct DetailPage<'a> {
    t: Tr,
    line: Line,
    w: &'a WarningRecord,
    answer: Option<String>,
    history: Vec<HistoryLine>,
    facts: Vec<Fact>,
    charts_json: Vec<String>,
    summary: String,
    can_answer: bool,
    documents: Vec<DocChoice>,
    actions: Vec<Choice>,
    csrf: &'a str,
    form_kind: &'a str,
    chosen: &'a str,
    comment: &'a str,
    errors: FormErrors,
}

#[derive(Debug, Deserialize, Default)]
pub struct StepForm {
    /// The unit's answer: rectified or explained.
    #[serde(default)]
    pub answer: String,
    /// The office's or the Big Data Center's step.
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub comment: String,
    /// The documents an answer cites, as checkboxes named `doc-{id}`.
    #[serde(flatten)]
    pub cited: std::collections::BTreeMap<String, String>,
}

impl StepForm {
    fn documents(&self) -> Vec<i64> {
        self.cited.keys().filter_map(|k| k.strip_prefix("doc-")?.parse().ok()).collect()
    }
}

async fn render_detail(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    id: &str,
    form: Option<(&str, &StepForm, FormErrors)>,
) -> ConsoleResult {
    let t = signed.tr();
    let axum::Json(w) =
        crate::api::warnings::get_one(State(state.clone()), signed.caller.clone(), Path(id.to_owned()))
            .await?;
    // The finding behind it, for its evidence; the unit may read its own.
    let finding = crate::api::findings::get_one(
        State(state.clone()),
        signed.caller.clone(),
        Path(w.finding_id.to_string()),
    )
    .await
    .ok()
    .map(|j| j.0);
    let (facts, charts_json, summary) = match &finding {
        Some(f) => (
            facts(t, &f.evidence),
            charts(t, &f.evidence)
                .into_iter()
                .chain(super::findings::agent_chart(state, t, f).await?)
                .map(|c| super::findings::chart_json(&c))
                .collect::<Result<Vec<_>, _>>()?,
            super::findings::Row::of(t, f).summary,
        ),
        None => (vec![], vec![], String::new()),
    };
    let actor = &signed.caller.actor;
    let can_answer = actor.warning_responder().is_some()
        && [Answer::Rectified, Answer::Explained]
            .iter()
            .any(|a| warning::next(w.state, w.answer, Step::Answer(*a)).is_ok());
    let cited = form.as_ref().map(|(_, f, _)| f.documents()).unwrap_or_default();
    let documents = match (actor.warning_responder().filter(|_| can_answer), w.system_id) {
        (Some(responder), Some(system)) => state
            .store
            .documents(responder.scope(), system, yunzhi_store::PageRequest { after: 0, limit: 100 })
            .await?
            .items
            .into_iter()
            .map(|d| DocChoice {
                id: d.id,
                checked: cited.contains(&d.id),
                filename: d.filename,
                kind: t.name("document_kind", d.kind.code()),
            })
            .collect(),
        _ => Vec::new(),
    };
    let (form_kind, chosen, comment, errors) = match form {
        Some((kind, f, e)) => (
            kind,
            if kind == "answer" { f.answer.as_str() } else { f.action.as_str() },
            f.comment.as_str(),
            e,
        ),
        None => ("", "", "", FormErrors::default()),
    };
    let actions = DECISIONS
        .iter()
        .filter(|s| s.role().is_some_and(|r| actor.has(r)))
        .filter(|s| warning::next(w.state, w.answer, **s).is_ok())
        .map(|s| Choice {
            code: s.code(),
            label: t.name("warning_step", s.code()),
            selected: chosen == s.code(),
        })
        .collect();
    let history = w
        .history
        .iter()
        .map(|e| HistoryLine {
            step: t.name("warning_step", e["step"].as_str().unwrap_or("")),
            by: e["by"].as_str().unwrap_or("").to_owned(),
            at: e["at"].as_str().map(local_time).unwrap_or_default(),
            comment: e["comment"].as_str().unwrap_or("").to_owned(),
            documents: e["documents"]
                .as_array()
                .map(|ds| {
                    ds.iter()
                        .filter_map(|d| Some((d["id"].as_i64()?, d["filename"].as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let detail = DetailPage {
        t,
        line: Line::of(t, &w),
        w: &w,
        answer: w.answer.map(|a| t.name("answer", a.code())),
        history,
        facts,
        charts_json,
        summary,
        can_answer,
        documents,
        actions,
        csrf: &signed.csrf,
        form_kind,
        chosen,
        comment,
        errors,
    };
    let chrome = Chrome::new(signed, state, &format!("/warnings/{}", w.id)).await?;
    let title = format!("{} #{}", t.s("warnings.one"), w.id);
    page(headers, &chrome, &title, &detail)
}

/// `GET /warnings/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ConsoleResult {
    render_detail(&state, &signed, &headers, &id, None).await
}

/// `POST /warnings/{id}/answer`: the unit admin's answer.
pub async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    posted: Submitted<StepForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let input = ResponseInput {
        answer: form.answer.clone(),
        comment: form.comment.clone(),
        documents: form.documents(),
    };
    let result = crate::api::warnings::respond(
        State(state.clone()),
        signed.caller.clone(),
        Path(id.clone()),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    settle(&state, &signed, &headers, &id, "answer", &form, result.map(|_| ())).await
}

/// `POST /warnings/{id}/decision`: the office's or the Big Data Center's step.
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    posted: Submitted<StepForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let input = DecisionInput { action: form.action.clone(), comment: form.comment.clone() };
    let result = crate::api::warnings::decide(
        State(state.clone()),
        signed.caller.clone(),
        Path(id.clone()),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    settle(&state, &signed, &headers, &id, "decision", &form, result.map(|_| ())).await
}

async fn settle(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    id: &str,
    kind: &str,
    form: &StepForm,
    result: Result<(), ApiError>,
) -> ConsoleResult {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/warnings/{id}")).into_response()),
        Err(
            e @ (ApiError::Invalid(_)
            | ApiError::Refused(_)
            | ApiError::Conflict { .. }
            | ApiError::Forbidden { .. }),
        ) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            render_detail(state, signed, headers, id, Some((kind, form, errors))).await
        }
        Err(e) => Err(e.into()),
    }
}
