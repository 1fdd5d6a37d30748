//! Settings: the efficiency rules in effect (Art. 13), with where each
//! default comes from, for everyone to read — a unit should know what
//! counts as idle before it is told it is — and for the system
//! administrator to change through the API's own handler.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::{Map, Value};
use yunzhi_domain::efficiency::Rules;

use super::i18n::Tr;
use super::session::FormErrors;
use super::view::{Chrome, page};
use super::{ConsoleResult, Signed, Submitted};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

const MIB: f64 = 1024.0 * 1024.0;

/// Whether a threshold may be left unset: its empty field means the rule
/// does not judge by it (whole numbers when set).
fn optional(name: &str) -> bool {
    Rules::OPTIONAL_THRESHOLDS.contains(&name)
}

/// One threshold of one rule, as the form shows it.
pub struct Field {
    /// `group.key`, the form's name and the API's field.
    pub name: String,
    pub label: String,
    /// Bytes are shown in MB.
    pub value: String,
    pub unit: &'static str,
    pub flag: bool,
    pub checked: bool,
}

pub struct Group {
    pub code: String,
    pub title: String,
    pub source: String,
    pub fields: Vec<Field>,
}

fn groups(t: Tr, rules: &Value, typed: Option<&[(String, String)]>) -> Vec<Group> {
    let typed_value =
        |name: &str| typed.and_then(|p| p.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    let mut out = Vec::new();
    for (group, body) in rules.as_object().into_iter().flatten() {
        let mut fields = Vec::new();
        for (key, v) in body.as_object().into_iter().flatten() {
            let name = format!("{group}.{key}");
            let bytes = key.contains("bytes");
            let (value, flag, checked) = match v {
                Value::Bool(b) => {
                    (String::new(), true, typed.map(|_| typed_value(&name).is_some()).unwrap_or(*b))
                }
                Value::Number(n) => {
                    let shown = if bytes {
                        format!("{}", (n.as_f64().unwrap_or(0.0) / MIB * 100.0).round() / 100.0)
                    } else {
                        n.to_string()
                    };
                    (typed_value(&name).unwrap_or(shown), false, false)
                }
                Value::Null if optional(&name) => (typed_value(&name).unwrap_or_default(), false, false),
                _ => continue,
            };
            let unit = if bytes {
                "MB"
            } else if key.ends_with("_pct") {
                "%"
            } else if key.ends_with("_days") || key == "min_days" {
                "d"
            } else {
                ""
            };
            fields.push(Field { label: t.name("evidence", key), name, value, unit, flag, checked });
        }
        out.push(Group {
            code: group.clone(),
            title: t.name("rule", group),
            source: t.name("rule_source", group),
            fields,
        });
    }
    out
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    t: Tr,
    groups: Vec<Group>,
    can_edit: bool,
    csrf: &'a str,
    errors: FormErrors,
    saved: bool,
}

impl SettingsPage<'_> {
    fn unit_label(&self, unit: &str) -> String {
        match unit {
            "d" => self.t.s("settings.days").to_owned(),
            other => other.to_owned(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct SettingsQuery {
    #[serde(default)]
    pub saved: String,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    typed: Option<&[(String, String)]>,
    errors: FormErrors,
    saved: bool,
) -> ConsoleResult {
    let t = signed.tr();
    let axum::Json(rules) =
        crate::api::efficiency::rules(State(state.clone()), signed.caller.clone()).await?;
    let value = serde_json::to_value(&rules).map_err(|e| ApiError::Internal(e.into()))?;
    let view = SettingsPage {
        t,
        groups: groups(t, &value, typed),
        can_edit: signed.caller.actor.efficiency_settings_admin().is_some(),
        csrf: &signed.csrf,
        errors,
        saved,
    };
    let chrome = Chrome::new(signed, state, "/settings").await?;
    page(headers, &chrome, t.s("settings.title"), &view)
}

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<SettingsQuery>,
) -> ConsoleResult {
    render(&state, &signed, &headers, None, FormErrors::default(), q.saved == "1").await
}

/// The rules as the form states them, over the ones in effect: numbers as
/// typed (MB back to bytes), unticked boxes false. A field that is not a
/// number is named in the errors.
fn rules_from(current: &Value, pairs: &[(String, String)], t: Tr) -> Result<Value, FormErrors> {
    let mut next = current.clone();
    let mut errors = FormErrors::default();
    for (group, body) in current.as_object().into_iter().flatten() {
        let mut out = Map::new();
        for (key, v) in body.as_object().into_iter().flatten() {
            let name = format!("{group}.{key}");
            let typed = pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.trim());
            let new = match v {
                Value::Bool(_) => Value::Bool(typed.is_some()),
                Value::Number(_) | Value::Null if optional(&name) && typed.is_none_or(str::is_empty) => {
                    Value::Null
                }
                Value::Null if optional(&name) => match typed.map(str::parse::<u64>) {
                    Some(Ok(x)) => serde_json::json!(x),
                    _ => {
                        errors.fields.push((name.clone(), t.s("settings.whole_number").to_owned()));
                        Value::Null
                    }
                },
                Value::Number(n) => match typed.map(str::parse::<f64>) {
                    Some(Ok(x)) if x.is_finite() && x >= 0.0 => {
                        let x = if key.contains("bytes") { (x * MIB).round() } else { x };
                        if n.is_f64() {
                            serde_json::json!(x)
                        } else if x.fract() == 0.0 {
                            serde_json::json!(x as u64)
                        } else {
                            errors.fields.push((name.clone(), t.s("settings.whole_number").to_owned()));
                            v.clone()
                        }
                    }
                    _ => {
                        errors.fields.push((name.clone(), t.s("settings.not_a_number").to_owned()));
                        v.clone()
                    }
                },
                other => other.clone(),
            };
            out.insert(key.clone(), new);
        }
        next[group] = Value::Object(out);
    }
    if errors.fields.is_empty() { Ok(next) } else { Err(errors) }
}

/// `POST /settings`: the system administrator changes the rules.
pub async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Submitted<Vec<(String, String)>>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let t = signed.tr();
    let axum::Json(rules) =
        crate::api::efficiency::rules(State(state.clone()), signed.caller.clone()).await?;
    let current = serde_json::to_value(&rules).map_err(|e| ApiError::Internal(e.into()))?;
    let next = match rules_from(&current, &form, t) {
        Ok(v) => v,
        Err(errors) => return render(&state, &signed, &headers, Some(&form), errors, false).await,
    };
    let rules: Rules = serde_json::from_value(next).map_err(|e| ApiError::Internal(e.into()))?;
    let result = crate::api::efficiency::set_rules(
        State(state.clone()),
        signed.caller.clone(),
        ApiJson { value: rules, raw: Bytes::new() },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/settings?saved=1").into_response()),
        Err(e @ ApiError::Internal(_)) => Err(e.into()),
        Err(e) => {
            let errors = FormErrors::from_api(t, &e);
            render(&state, &signed, &headers, Some(&form), errors, false).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::i18n::Lang;
    use super::*;

    /// The pairs a browser posts for the form as shown.
    fn form_of(t: Tr, rules: &Value) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for f in groups(t, rules, None).into_iter().flat_map(|g| g.fields) {
            if !f.flag {
                pairs.push((f.name, f.value));
            } else if f.checked {
                pairs.push((f.name, "1".into()));
            }
        }
        pairs
    }

    #[test]
    fn the_form_round_trips_the_rules_with_bytes_in_megabytes() {
        let t = Tr::new(Lang::En);
        let rules = serde_json::to_value(Rules::default()).unwrap();
        let pairs = form_of(t, &rules);
        assert_eq!(rules_from(&rules, &pairs, t).ok(), Some(rules.clone()));
        let mb = pairs.iter().find(|(k, _)| k == "low_utilization.net_max_bytes").unwrap();
        assert_eq!(mb.1, "5", "5 MB, not 5242880");
    }

    #[test]
    fn a_threshold_that_is_not_a_number_is_named() {
        let t = Tr::new(Lang::En);
        let rules = serde_json::to_value(Rules::default()).unwrap();
        let pairs = vec![("zombie.window_days".to_owned(), "thirty".to_owned())];
        let errors = rules_from(&rules, &pairs, t).unwrap_err();
        assert!(errors.on("zombie.window_days").is_some());
    }

    #[test]
    fn an_optional_threshold_is_set_by_a_whole_number_and_cleared_by_an_empty_field() {
        let t = Tr::new(Lang::En);
        let rules = serde_json::to_value(Rules::default()).unwrap();
        let field = groups(t, &rules, None)
            .into_iter()
            .flat_map(|g| g.fields)
            .find(|f| f.name == "zombie.accepted_max_per_day")
            .expect("an unset optional threshold is still offered");
        assert_eq!(field.value, "");
        let set = |from: &Value, typed: &str| {
            let mut pairs = form_of(t, from);
            pairs
                .iter_mut()
                .filter(|(k, _)| k == "zombie.accepted_max_per_day")
                .for_each(|p| p.1 = typed.into());
            rules_from(from, &pairs, t)
        };
        let bounded = set(&rules, "300").unwrap();
        assert_eq!(bounded["zombie"]["accepted_max_per_day"], 300);
        assert_eq!(set(&bounded, "300").unwrap(), bounded, "a set bound round-trips");
        let errors = set(&rules, "3.5").unwrap_err();
        assert!(errors.on("zombie.accepted_max_per_day").is_some());
        let cleared = set(&bounded, " ");
        assert_eq!(cleared.unwrap()["zombie"]["accepted_max_per_day"], Value::Null);
    }
}
