//! The statutory working-day calendar: every year it knows, a year as
//! twelve months with its holidays and make-up working days, and for the
//! system administrator the editor that loads a year when the State
//! Council announces it (deadlines everywhere are counted on it).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use yunzhi_domain::calendar::{YearInput, YearSchedule};

use super::i18n::Tr;
use super::session::FormErrors;
use super::view::{Chrome, page};
use super::{ConsoleError, ConsoleResult, Signed, Submitted};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// One day cell of a month grid.
pub struct Cell {
    pub day: i8,
    /// `holiday`, `workday` (a make-up working Saturday or Sunday),
    /// `weekend`, `normal`; empty for padding before the 1st.
    pub class: &'static str,
    pub date: String,
}

pub struct Month {
    pub name: String,
    pub cells: Vec<Cell>,
}

fn months(t: Tr, s: &YearSchedule) -> Vec<Month> {
    (1..=12)
        .filter_map(|m| {
            let first = Date::new(s.year, m, 1).ok()?;
            // Weeks start on Monday, as Chinese calendars print them.
            let pad = first.weekday().to_monday_zero_offset();
            let mut cells: Vec<Cell> =
                (0..pad).map(|_| Cell { day: 0, class: "", date: String::new() }).collect();
            for d in 1..=first.days_in_month() {
                let date = Date::new(s.year, m, d).ok()?;
                let class = if s.holidays.contains(&date) {
                    "holiday"
                } else if s.workdays.contains(&date) {
                    "workday"
                } else if matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
                    "weekend"
                } else {
                    "normal"
                };
                cells.push(Cell { day: d, class, date: date.to_string() });
            }
            Some(Month { name: t.f("calendar.month", "n", m), cells })
        })
        .collect()
}

#[derive(Template)]
#[template(path = "calendar.html")]
struct YearsPage {
    t: Tr,
    years: Vec<(i16, usize, usize, String)>,
    can_edit: bool,
    next_year: i16,
}

/// `GET /calendar`.
pub async fn years(State(state): State<AppState>, signed: Signed, headers: HeaderMap) -> ConsoleResult {
    let t = signed.tr();
    let axum::Json(all) = crate::api::calendar::years(State(state.clone())).await?;
    let years: Vec<(i16, usize, usize, String)> =
        all.items.iter().map(|y| (y.year, y.holidays.len(), y.workdays.len(), y.source.clone())).collect();
    let next_year = years.iter().map(|y| y.0).max().map(|y| y + 1).unwrap_or(2027);
    let view = YearsPage { t, years, can_edit: signed.caller.actor.calendar_editor().is_some(), next_year };
    let chrome = Chrome::new(&signed, &state, "/calendar").await?;
    page(&headers, &chrome, t.s("calendar.title"), &view)
}

#[derive(Template)]
#[template(path = "calendar_year.html")]
struct YearPage<'a> {
    t: Tr,
    year: i16,
    known: bool,
    months: Vec<Month>,
    weekdays: Vec<String>,
    can_edit: bool,
    csrf: &'a str,
    source: String,
    holidays: String,
    workdays: String,
    errors: FormErrors,
    saved: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct YearQuery {
    #[serde(default)]
    pub saved: String,
}

fn dates(set: &std::collections::BTreeSet<Date>) -> String {
    set.iter().map(Date::to_string).collect::<Vec<_>>().join("\n")
}

impl YearPage<'_> {
    /// The error about a list or any of its entries (`holidays[3]`).
    fn err(&self, field: &str) -> Option<&str> {
        let prefix = format!("{field}[");
        self.errors.fields.iter().find(|(f, _)| f == field || f.starts_with(&prefix)).map(|(_, m)| m.as_str())
    }
}

async fn render_year(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    year: i16,
    typed: Option<&YearForm>,
    errors: FormErrors,
    saved: bool,
) -> ConsoleResult {
    let t = signed.tr();
    let found = crate::api::calendar::year(State(state.clone()), Path(year.to_string())).await;
    let schedule = match found {
        Ok(axum::Json(s)) => Some(s),
        Err(ApiError::NotFound) => None,
        Err(e) => return Err(ConsoleError::Api(e)),
    };
    let can_edit = signed.caller.actor.calendar_editor().is_some();
    if schedule.is_none() && !can_edit {
        return Err(ConsoleError::Api(ApiError::NotFound));
    }
    let (source, holidays, workdays) = match (typed, &schedule) {
        (Some(f), _) => (f.source.clone(), f.holidays.clone(), f.workdays.clone()),
        (None, Some(s)) => (s.source.clone(), dates(&s.holidays), dates(&s.workdays)),
        (None, None) => (String::new(), String::new(), String::new()),
    };
    let view = YearPage {
        t,
        year,
        known: schedule.is_some(),
        months: schedule.as_ref().map(|s| months(t, s)).unwrap_or_default(),
        weekdays: (1..=7).map(|d| t.name("weekday", &d.to_string())).collect(),
        can_edit,
        csrf: &signed.csrf,
        source,
        holidays,
        workdays,
        errors,
        saved,
    };
    let chrome = Chrome::new(signed, state, &format!("/calendar/{year}")).await?;
    page(headers, &chrome, &t.f("calendar.year", "year", year), &view)
}

fn year_of(raw: &str) -> ConsoleResult<i16> {
    raw.parse::<i16>().ok().filter(|y| (2000..=2100).contains(y)).ok_or(ConsoleError::Api(ApiError::NotFound))
}

/// `GET /calendar/{year}`.
pub async fn year(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<YearQuery>,
) -> ConsoleResult {
    render_year(&state, &signed, &headers, year_of(&raw)?, None, FormErrors::default(), q.saved == "1").await
}

#[derive(Debug, Deserialize, Default)]
pub struct YearForm {
    #[serde(default)]
    pub source: String,
    /// Dates, one per line (or separated by commas or spaces).
    #[serde(default)]
    pub holidays: String,
    #[serde(default)]
    pub workdays: String,
}

fn split(raw: &str) -> Vec<String> {
    raw.split(|c: char| c.is_whitespace() || c == ',' || c == '，' || c == '、')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `POST /calendar/{year}`: loads the year through the API's handler.
pub async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    posted: Submitted<YearForm>,
) -> ConsoleResult {
    let Submitted { signed, form } = posted;
    let year = year_of(&raw)?;
    let input = YearInput {
        year: i64::from(year),
        source: form.source.trim().to_owned(),
        holidays: split(&form.holidays),
        workdays: split(&form.workdays),
    };
    let result = crate::api::calendar::put_year(
        State(state.clone()),
        signed.caller.clone(),
        Path(year.to_string()),
        ApiJson { value: input, raw: Bytes::new() },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/calendar/{year}?saved=1")).into_response()),
        Err(e @ (ApiError::Invalid(_) | ApiError::Refused(_))) => {
            let errors = FormErrors::from_api(signed.tr(), &e);
            render_year(&state, &signed, &headers, year, Some(&form), errors, false).await
        }
        Err(e) => Err(e.into()),
    }
}
