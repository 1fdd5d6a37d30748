//! Findings: the list with its filters, one finding with its evidence (the
//! numbers, the window and a chart of the days behind it), and the office's
//! review that turns a finding into a warning to the unit (Art. 14).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use yunzhi_domain::finding::FindingState;
use yunzhi_store::FindingRecord;

use super::i18n::{Lang, Tr};
use super::session::{FormErrors, local_time};
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed, Submitted, percent};
use crate::api::ApiQuery;
use crate::api::findings::FindingQuery;
use crate::api::warnings::ReviewInput;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

const KINDS: [&str; 7] = [
    "low_utilization",
    "zombie",
    "agent_missing",
    "agent_silent",
    "agent_tampered",
    "orphan_resource",
    "other",
];
const STATES: [&str; 4] = ["open", "confirmed", "dismissed", "resolved"];

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub kind: String,
    /// Open findings unless asked otherwise; `all` for every state.
    #[serde(default)]
    pub state: String,
    pub cursor: Option<String>,
}

/// A finding as a row or a heading shows it.
pub struct Row {
    pub id: i64,
    pub kind: String,
    pub kind_code: &'static str,
    pub state: String,
    pub state_code: &'static str,
    pub subject: String,
    pub summary: String,
    pub last_seen: String,
}

impl Row {
    pub fn of(t: Tr, f: &FindingRecord) -> Row {
        let subject = f.evidence["resource"]["name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| f.resource_id.map(|r| format!("#{r}")).unwrap_or_else(|| "—".into()));
        Row {
            id: f.id,
            kind: t.name("kind", f.kind.code()),
            kind_code: f.kind.code(),
            state: t.name("finding_state", f.state.code()),
            state_code: f.state.code(),
            subject,
            summary: summary(t, f),
            last_seen: local_time(&f.last_seen_at.to_string()),
        }
    }
}

/// What a finding says, in the reader's language: the analysis writes the
/// title in Chinese and keeps the English in its evidence.
fn summary(t: Tr, f: &FindingRecord) -> String {
    match (t.lang, f.evidence["summary_en"].as_str()) {
        (Lang::En, Some(en)) => en.to_owned(),
        _ => f.title.split_once('：').map(|(_, s)| s.to_owned()).unwrap_or_else(|| f.title.clone()),
    }
}

/// A choice of a filter.
pub struct Choice {
    pub code: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "findings.html")]
struct ListPage {
    t: Tr,
    kinds: Vec<Choice>,
    states: Vec<Choice>,
    rows: Vec<Row>,
    more: Option<String>,
}

/// `GET /findings`.
pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ConsoleResult {
    let t = signed.tr();
    let kind = KINDS.iter().find(|k| **k == q.kind).copied();
    let wanted = if q.state.is_empty() { "open" } else { q.state.as_str() };
    let st = STATES.iter().find(|s| **s == wanted).copied();
    let query = FindingQuery {
        kind: kind.map(str::to_owned),
        state: st.map(str::to_owned),
        platform_id: None,
        limit: Some(50),
        cursor: q.cursor.clone(),
    };
    let axum::Json(found) =
        crate::api::findings::list(State(state.clone()), signed.caller.clone(), ApiQuery(query)).await?;
    let mut states: Vec<Choice> = STATES
        .iter()
        .map(|s| Choice { code: s, label: t.name("finding_state", s), selected: st == Some(*s) })
        .collect();
    states.push(Choice { code: "all", label: t.s("findings.all_states").to_owned(), selected: st.is_none() });
    let more = found.next_cursor.map(|c| {
        format!("/findings?kind={}&state={}&cursor={}", kind.unwrap_or(""), st.unwrap_or("all"), percent(&c))
    });
    let list = ListPage {
        t,
        kinds: KINDS
            .iter()
            .map(|k| Choice { code: k, label: t.name("kind", k), selected: kind == Some(*k) })
            .collect(),
        states,
        rows: found.items.iter().map(|f| Row::of(t, f)).collect(),
        more,
    };
    let chrome = Chrome::new(&signed, &state, "/findings").await?;
    page(&headers, &chrome, t.s("findings.title"), &list)
}

/// One line of the evidence's numbers.
pub struct Fact {
    pub label: String,
    pub value: String,
}

/// A chart of the days behind a finding, as `console.js` draws it.
#[derive(Debug, Serialize)]
pub struct Chart {
    /// `line` (days along the bottom) or `bar` (one group per category).
    pub kind: &'static str,
    pub title: String,
    pub days: Vec<String>,
    pub series: Vec<Series>,
    /// The rule's limits, drawn as dashed lines.
    pub limits: Vec<Limit>,
    /// Days the rule did not count (rest days), shaded.
    pub skipped: Vec<String>,
    pub percent_axis: String,
    pub mb_axis: String,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub name: String,
    /// `pct` (left axis) or `mb` (right axis).
    pub axis: &'static str,
    pub data: Vec<Option<f64>>,
}

#[derive(Debug, Serialize)]
pub struct Limit {
    pub name: String,
    pub axis: &'static str,
    pub value: f64,
}

const MIB: f64 = 1024.0 * 1024.0;

/// A chart as the JSON a page carries inside `<script>`: no `<` in it may
/// close the script early.
pub fn chart_json(chart: &Chart) -> Result<String, ApiError> {
    serde_json::to_string(chart).map(|j| j.replace('<', "\\u003c")).map_err(|e| ApiError::Internal(e.into()))
}

/// The charts a finding's evidence supports: one per rule with daily figures.
pub fn charts(t: Tr, evidence: &Value) -> Vec<Chart> {
    let mut out = Vec::new();
    // The zombie rule keeps its days at the top; the low-utilisation rules
    // each under their own name.
    let blocks: Vec<(&str, &Value)> = if evidence["rule"] == "zombie" {
        vec![("zombie", evidence)]
    } else {
        ["long_term_low", "low_utilization"]
            .iter()
            .filter(|r| evidence[**r].is_object())
            .map(|r| (*r, &evidence[*r]))
            .collect()
    };
    for (rule, block) in blocks {
        let Some(days) = block["days"].as_array().filter(|d| !d.is_empty()) else { continue };
        let column = |key: &str, scale: f64| -> Vec<Option<f64>> {
            days.iter().map(|d| d[key].as_f64().map(|v| (v / scale * 100.0).round() / 100.0)).collect()
        };
        let has = |key: &str| days.iter().any(|d| d[key].is_number());
        let mut series = Vec::new();
        for (key, axis, scale) in [
            ("cpu_avg", "pct", 1.0),
            ("cpu_p95", "pct", 1.0),
            ("cpu_max", "pct", 1.0),
            ("net_bytes", "mb", MIB),
            ("disk_bytes", "mb", MIB),
        ] {
            if has(key) {
                series.push(Series { name: t.name("metric", key), axis, data: column(key, scale) });
            }
        }
        let th = &block["thresholds"];
        let mut limits = Vec::new();
        for (key, axis, scale) in [
            ("cpu_avg_max_pct", "pct", 1.0),
            ("cpu_p95_max_pct", "pct", 1.0),
            ("net_max_bytes", "mb", MIB),
            ("net_max_bytes_per_day", "mb", MIB),
            ("disk_max_bytes_per_day", "mb", MIB),
        ] {
            if let Some(v) = th[key].as_f64() {
                limits.push(Limit { name: t.name("evidence", key), axis, value: v / scale });
            }
        }
        out.push(Chart {
            kind: "line",
            title: t.name("rule", rule),
            days: days.iter().map(|d| d["day"].as_str().unwrap_or("").to_owned()).collect(),
            series,
            limits,
            skipped: days
                .iter()
                .filter(|d| d["rest_day"] == true)
                .filter_map(|d| d["day"].as_str().map(str::to_owned))
                .collect(),
            percent_axis: t.s("chart.percent").to_owned(),
            mb_axis: t.s("chart.mb").to_owned(),
        });
    }
    out
}

/// Days of reports an agent finding's chart shows, up to now.
const AGENT_CHART_DAYS: i64 = 7;

/// For a finding about a host's monitoring agent, a chart of the readings
/// the host sent each hour over the last week, from its hourly rollups: it
/// shows when the reports stopped (silent), that they never started
/// (missing), or that an altered build is still sending (tampered).
pub async fn agent_chart(state: &AppState, t: Tr, f: &FindingRecord) -> Result<Option<Chart>, ApiError> {
    use yunzhi_domain::finding::FindingKind;
    let (FindingKind::AgentMissing | FindingKind::AgentSilent | FindingKind::AgentTampered, Some(host)) =
        (f.kind, f.resource_id)
    else {
        return Ok(None);
    };
    const HOUR: i64 = 3_600_000;
    let now = state.now().as_millisecond();
    let last = now - now.rem_euclid(HOUR);
    let first = last - (AGENT_CHART_DAYS * 24 - 1) * HOUR;
    let at = |ms: i64| jiff::Timestamp::from_millisecond(ms).map_err(|e| ApiError::Internal(e.into()));
    let stored = state.store.hourly_rollups(host, at(first)?, at(last + HOUR)?).await?;
    let by_hour: std::collections::HashMap<i64, u64> =
        stored.iter().map(|(h, r)| (h.as_millisecond(), r.samples)).collect();
    let zone = yunzhi_domain::clock::district_zone();
    let hours: Vec<i64> = (0..AGENT_CHART_DAYS * 24).map(|i| first + i * HOUR).collect();
    Ok(Some(Chart {
        kind: "line",
        title: t.s("chart.agent_reports").to_owned(),
        days: hours
            .iter()
            .map(|h| at(*h).map(|a| a.to_zoned(zone.clone()).strftime("%m-%d %H:00").to_string()))
            .collect::<Result<_, _>>()?,
        series: vec![Series {
            name: t.s("chart.readings").to_owned(),
            axis: "pct",
            data: hours.iter().map(|h| Some(by_hour.get(h).copied().unwrap_or(0) as f64)).collect(),
        }],
        limits: vec![],
        skipped: vec![],
        percent_axis: t.s("chart.readings").to_owned(),
        mb_axis: String::new(),
    }))
}

/// The evidence's figures (not its daily rows), labelled.
pub fn facts(t: Tr, evidence: &Value) -> Vec<Fact> {
    let mut out = Vec::new();
    walk_facts(t, "", evidence, &mut out);
    out
}

fn walk_facts(t: Tr, prefix: &str, v: &Value, out: &mut Vec<Fact>) {
    let Some(map) = v.as_object() else { return };
    for (key, value) in map {
        if matches!(key.as_str(), "days" | "summary_en" | "resource" | "rules") {
            continue;
        }
        let label = if prefix.is_empty() {
            t.name("evidence", key)
        } else {
            format!("{} · {}", t.name("rule", prefix), t.name("evidence", key))
        };
        match value {
            Value::Object(_) if key == "window" => out.push(Fact {
                label,
                value: format!(
                    "{} – {} ({})",
                    value["from"].as_str().unwrap_or(""),
                    value["to"].as_str().unwrap_or(""),
                    t.f("evidence.n_days", "n", value["days"].as_i64().unwrap_or(0))
                ),
            }),
            Value::Object(_) if key == "thresholds" || key == "peak" => {
                for (k, x) in value.as_object().into_iter().flatten() {
                    out.push(Fact {
                        label: format!("{label} · {}", t.name("evidence", k)),
                        value: scalar(t, k, x),
                    });
                }
            }
            Value::Object(_)
                if prefix.is_empty() && matches!(key.as_str(), "long_term_low" | "low_utilization") =>
            {
                walk_facts(t, key, value, out)
            }
            Value::Object(_) if key == "periodic_load" => {
                out.push(Fact { label, value: value["description"].as_str().unwrap_or("").to_owned() })
            }
            Value::Array(items) if key == "excluded" => {
                out.push(Fact { label, value: t.f("evidence.n_days", "n", items.len()) })
            }
            Value::Array(items) => out.push(Fact {
                label,
                value: items.iter().map(|i| scalar(t, key, i)).collect::<Vec<_>>().join(", "),
            }),
            other => out.push(Fact { label, value: scalar(t, key, other) }),
        }
    }
}

/// A figure as a person reads it: bytes in MB, shares as percentages.
fn scalar(t: Tr, key: &str, v: &Value) -> String {
    match v {
        Value::Bool(b) => t.s(if *b { "common.yes" } else { "common.no" }).to_owned(),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if key.contains("bytes") {
                format!("{:.1} MB", x / MIB)
            } else if key == "coverage" || key == "min_coverage" {
                format!("{:.0} %", x * 100.0)
            } else if key.contains("pct") || key.starts_with("cpu") {
                format!("{} %", trim(x))
            } else {
                trim(x)
            }
        }
        Value::String(s) => t.name("evidence_value", s),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.2}").trim_end_matches('0').to_owned() }
}

#[derive(Template)]
#[template(path = "finding.html")]
struct DetailPage<'a> {
    t: Tr,
    row: Row,
    f: &'a FindingRecord,
    facts: Vec<Fact>,
    charts_json: Vec<String>,
    reviewed_at: Option<String>,
    can_review: bool,
    csrf: &'a str,
    decision: &'a str,
    comment: &'a str,
    errors: FormErrors,
    warning_id: Option<i64>,
}

impl DetailPage<'_> {
    fn first_seen(&self) -> String {
        local_time(&self.f.first_seen_at.to_string())
    }
}

async fn render_detail(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    id: &str,
    form: Option<(&ReviewForm, FormErrors)>,
) -> ConsoleResult {
    let t = signed.tr();
    let axum::Json(f) =
        crate::api::findings::get_one(State(state.clone()), signed.caller.clone(), Path(id.to_owned()))
            .await?;
    let mut drawn = charts(t, &f.evidence);
    drawn.extend(agent_chart(state, t, &f).await?);
    let charts_json = drawn.iter().map(chart_json).collect::<Result<Vec<_>, _>>()?;
    let warning_id = match (f.state, signed.caller.actor.reader()) {
        (FindingState::Confirmed, Some(reader)) => {
            state.store.warning_of_finding(reader.scope(), f.id).await?
        }
        _ => None,
    };
    let (decision, comment, errors) = match form {
        Some((form, errors)) => (form.decision.as_str(), form.comment.as_str(), errors),
        None => ("", "", FormErrors::default()),
    };
    let detail = DetailPage {
        t,
        row: Row::of(t, &f),
        f: &f,
        facts: facts(t, &f.evidence),
        charts_json,
        reviewed_at: f.reviewed_at.map(|a| local_time(&a.to_string())),
        can_review: f.state == FindingState::Open && signed.caller.actor.finding_reviewer().is_some(),
        csrf: &signed.csrf,
        decision,
        comment,
        errors,
        warning_id,
    };
    let chrome = Chrome::new(signed, state, &format!("/findings/{}", f.id)).await?;
    let title = format!("{} #{}", t.name("kind", f.kind.code()), f.id);
    page(headers, &chrome, &title, &detail)
}

/// `GET /findings/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ConsoleResult {
    render_detail(&state, &signed, &headers, &id, None).await
}

#[derive(Debug, Deserialize, Default)]
pub struct ReviewForm {
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub comment: String,
}

/// `POST /findings/{id}/review`: the office confirms (a warning goes to
/// the unit) or dismisses with its reason.
pub async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    posted: Submitted<ReviewForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let input = ReviewInput { decision: form.decision.clone(), comment: form.comment.clone() };
    let result = crate::api::warnings::review(
        State(state.clone()),
        signed.caller.clone(),
        Path(id.clone()),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/findings/{id}")).into_response()),
        Err(e @ (ApiError::Invalid(_) | ApiError::Refused(_) | ApiError::Conflict { .. })) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            render_detail(&state, &signed, &headers, &id, Some((&form, errors))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_zombie_finding_charts_its_days_against_its_limits() {
        let evidence = json!({
            "rule": "zombie",
            "thresholds": {"cpu_p95_max_pct": 2.0, "net_max_bytes_per_day": 5_242_880, "disk_max_bytes_per_day": 10_485_760},
            "days": [
                {"day": "2026-11-01", "cpu_p95": 1.2, "net_bytes": 1_048_576, "disk_bytes": 0, "sessions_max": 0},
                {"day": "2026-11-02", "cpu_p95": 0.8, "net_bytes": 2_097_152, "disk_bytes": 0, "sessions_max": 0}
            ]
        });
        let c = charts(Tr::new(Lang::En), &evidence);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].days, ["2026-11-01", "2026-11-02"]);
        let net = c[0].series.iter().find(|s| s.axis == "mb" && s.data[1] == Some(2.0));
        assert!(net.is_some(), "network in MB: {:?}", c[0].series);
        assert!(c[0].limits.iter().any(|l| l.axis == "pct" && l.value == 2.0));
        assert!(c[0].limits.iter().any(|l| l.axis == "mb" && l.value == 5.0));
    }

    #[test]
    fn a_low_utilisation_finding_charts_each_rule_and_shades_rest_days() {
        let evidence = json!({
            "rules": ["low_utilization"],
            "low_utilization": {
                "thresholds": {"cpu_avg_max_pct": 10.0, "net_max_bytes": 5_242_880, "min_days": 4},
                "days": [
                    {"day": "2026-11-07", "cpu_avg": 3.0, "net_bytes": 1, "qualifies": false, "rest_day": true},
                    {"day": "2026-11-09", "cpu_avg": 4.0, "net_bytes": 1, "qualifies": true}
                ]
            }
        });
        let c = charts(Tr::new(Lang::Zh), &evidence);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].skipped, ["2026-11-07"]);
        assert_eq!(c[0].series.len(), 2, "{:?}", c[0].series);
    }

    /// Its chart is drawn from the host's hourly reports (`agent_chart`), not from its evidence.
    #[test]
    fn an_agent_findings_evidence_gives_figures_and_no_daily_chart() {
        let evidence = json!({"last_report": null, "rule": "agent_missing", "summary_en": "x"});
        assert!(charts(Tr::new(Lang::En), &evidence).is_empty());
        let f = facts(Tr::new(Lang::En), &evidence);
        assert!(f.iter().all(|f| !f.label.contains("summary")));
        assert!(!f.is_empty());
    }

    #[test]
    fn figures_read_as_a_person_reads_them() {
        let t = Tr::new(Lang::En);
        assert_eq!(scalar(t, "net_bytes", &json!(5_242_880)), "5.0 MB");
        assert_eq!(scalar(t, "coverage", &json!(0.5)), "50 %");
        assert_eq!(scalar(t, "cpu_p95", &json!(1.25)), "1.25 %");
    }
}
