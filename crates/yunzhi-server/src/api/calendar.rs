//! The statutory working-day calendar (`/api/v1/calendar/…`). Reading it is
//! public — it is the State Council's published schedule — and editing a
//! year is the system administrator's.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use yunzhi_domain::FieldError;
use yunzhi_domain::calendar::{MAX_DAYS, YearInput, YearSchedule, YearUnknown};
use yunzhi_domain::system::parse_date;
use yunzhi_store::Page;

use super::ApiQuery;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AddQuery {
    /// `YYYY-MM-DD`.
    pub from: Option<String>,
    /// How many working days, 1 to 1000.
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DateOut {
    pub date: String,
}

fn date(field: &str, raw: Option<&str>) -> ApiResult<jiff::civil::Date> {
    let raw =
        raw.ok_or_else(|| FieldError::new(field, "required", format!("{field} is required (YYYY-MM-DD)")))?;
    Ok(parse_date(field, raw)?)
}

fn unknown(field: &str) -> impl Fn(YearUnknown) -> ApiError + '_ {
    move |e| ApiError::Refused(e.field_error(field))
}

#[utoipa::path(get, path = "/api/v1/calendar/working-days/add", tag = "calendar", params(AddQuery), security(()),
    responses((status = 200, description = "The Nth working day after `from`", body = DateOut),
        (status = 422, description = "Invalid input, or a year the calendar does not know (`calendar_year_unknown`)", body = crate::error::Problem)))]
pub async fn add(State(state): State<AppState>, ApiQuery(q): ApiQuery<AddQuery>) -> ApiResult<Json<DateOut>> {
    let from = date("from", q.from.as_deref())?;
    let days = match q.days {
        Some(d) if (1..=i64::from(MAX_DAYS)).contains(&d) => d as u32,
        Some(d) => {
            return Err(FieldError::new(
                "days",
                "out_of_range",
                format!("days must be between 1 and {MAX_DAYS}, it is {d}"),
            )
            .into());
        }
        None => return Err(FieldError::new("days", "required", "days is required").into()),
    };
    let calendar = state.store.calendar().await?;
    let d = calendar.add_working_days(from, days).map_err(unknown("from"))?;
    Ok(Json(DateOut { date: d.to_string() }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DaysOut {
    pub days: u32,
}

#[utoipa::path(get, path = "/api/v1/calendar/working-days/count", tag = "calendar", params(CountQuery), security(()),
    responses((status = 200, description = "Working days in (from, to]", body = DaysOut),
        (status = 422, description = "Invalid input, or a year the calendar does not know", body = crate::error::Problem)))]
pub async fn count(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CountQuery>,
) -> ApiResult<Json<DaysOut>> {
    let from = date("from", q.from.as_deref())?;
    let to = date("to", q.to.as_deref())?;
    if to.since(from).map(|s| s.get_days()).unwrap_or(0) > MAX_DAYS as i32 * 2 {
        return Err(
            FieldError::new("to", "out_of_range", "from and to may be at most 2000 days apart").into()
        );
    }
    let calendar = state.store.calendar().await?;
    let days = calendar.count_working_days(from, to).map_err(unknown("to"))?;
    Ok(Json(DaysOut { days }))
}

#[utoipa::path(get, path = "/api/v1/calendar/years", tag = "calendar", security(()),
    responses((status = 200, description = "Every year the calendar knows, with its holidays and make-up working days")))]
pub async fn years(State(state): State<AppState>) -> ApiResult<Json<Page<YearSchedule>>> {
    let calendar = state.store.calendar().await?;
    Ok(Json(Page { items: calendar.years().cloned().collect(), next_cursor: None }))
}

fn year_of(raw: &str) -> ApiResult<i16> {
    raw.parse::<i16>().ok().filter(|y| (2000..=2100).contains(y)).ok_or(ApiError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/calendar/years/{year}", tag = "calendar", security(()),
    params(("year" = i64, Path, description = "e.g. 2026")),
    responses((status = 200, description = "OK", body = YearSchedule), (status = 404, description = "The calendar does not know that year", body = crate::error::Problem)))]
pub async fn year(State(state): State<AppState>, Path(raw): Path<String>) -> ApiResult<Json<YearSchedule>> {
    let calendar = state.store.calendar().await?;
    calendar.year(year_of(&raw)?).cloned().map(Json).ok_or(ApiError::NotFound)
}

#[utoipa::path(put, path = "/api/v1/calendar/years/{year}", tag = "calendar", request_body = YearInput,
    params(("year" = i64, Path, description = "e.g. 2027")),
    responses((status = 200, description = "Loaded", body = YearSchedule), (status = 403, description = "Only the sys_admin", body = crate::error::Problem),
        (status = 422, description = "Invalid schedule", body = crate::error::Problem)))]
pub async fn put_year(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: ApiJson<YearInput>,
) -> ApiResult<Json<YearSchedule>> {
    let editor = caller.actor.calendar_editor().ok_or_else(|| {
        ApiError::forbidden("the working-day calendar is edited by the system administrator")
    })?;
    let year = year_of(&raw)?;
    if body.value.year != i64::from(year) {
        return Err(FieldError::new(
            "year",
            "year_mismatch",
            format!("the body is for {}, the path for {year}", body.value.year),
        )
        .into());
    }
    let schedule = YearSchedule::parse(&body.value)?;
    let mut tx = state.store.begin().await?;
    tx.put_calendar_year(&editor, &caller.audit(state.now()), &schedule).await?;
    tx.commit().await?;
    Ok(Json(schedule))
}
