//! The statutory working-day calendar (法定工作日) that every deadline of the
//! regulation is counted in.
//!
//! Weekends and public holidays are off; make-up working days (调休上班, a
//! Saturday or Sunday declared a working day) are on. The schedule of each
//! year is data: it ships for the years announced so far and is loaded by
//! the system administrator when the State Council announces the next one.
//! A computation that needs a year the calendar does not know is an error,
//! never a weekday-only guess.

use std::collections::{BTreeMap, BTreeSet};

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};
use serde::{Deserialize, Serialize};

use crate::invalid::{Checker, FieldError, Invalid};
use crate::system::parse_date;
use crate::text;

/// One year's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct YearSchedule {
    pub year: i16,
    /// The announcement it comes from.
    pub source: String,
    /// Days off of the holiday periods.
    #[schema(value_type = Vec<String>)]
    pub holidays: BTreeSet<Date>,
    /// Saturdays and Sundays declared working days.
    #[schema(value_type = Vec<String>)]
    pub workdays: BTreeSet<Date>,
}

/// A year's schedule as a client or a file states it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct YearInput {
    pub year: i64,
    pub source: String,
    pub holidays: Vec<String>,
    pub workdays: Vec<String>,
}

impl YearSchedule {
    pub fn parse(input: &YearInput) -> Result<YearSchedule, Invalid> {
        let mut c = Checker::new();
        let year = match i16::try_from(input.year) {
            Ok(y) if (2000..=2100).contains(&y) => Some(y),
            _ => {
                c.push(FieldError::new("year", "out_of_range", "year must be between 2000 and 2100"));
                None
            }
        };
        let source = c.take(text::bounded("source", &input.source, 1, 200));
        let mut dates = |field: &str, raw: &[String]| -> BTreeSet<Date> {
            let mut out = BTreeSet::new();
            for (i, d) in raw.iter().enumerate() {
                let name = format!("{field}[{i}]");
                match parse_date(&name, d) {
                    Ok(date) if year.is_some_and(|y| date.year() != y) => {
                        c.push(FieldError::new(name, "wrong_year", format!("{d} is not in {}", input.year)))
                    }
                    Ok(date) => {
                        out.insert(date);
                    }
                    Err(e) => {
                        c.take::<()>(Err(e));
                    }
                }
            }
            out
        };
        let holidays = dates("holidays", &input.holidays);
        let workdays = dates("workdays", &input.workdays);
        if c.is_clean() && holidays.is_empty() {
            c.push(FieldError::new(
                "holidays",
                "required",
                "a year's schedule lists its public holidays; an empty list is almost certainly a mistake",
            ));
        }
        for (i, d) in input.workdays.iter().enumerate() {
            if let Ok(date) = parse_date("", d)
                && year == Some(date.year())
            {
                if !is_weekend(date) {
                    c.push(FieldError::new(
                        format!("workdays[{i}]"),
                        "not_a_weekend",
                        format!("{d} is a weekday: a make-up working day is a Saturday or Sunday declared a working day"),
                    ));
                }
                if holidays.contains(&date) {
                    c.push(FieldError::new(
                        format!("workdays[{i}]"),
                        "both_holiday_and_workday",
                        format!("{d} is listed both as a holiday and as a working day"),
                    ));
                }
            }
        }
        c.finish()?;
        Ok(YearSchedule { year: year.unwrap_or(0), source: source.unwrap_or_default(), holidays, workdays })
    }

    /// The form it is stored and exchanged in.
    pub fn to_input(&self) -> YearInput {
        YearInput {
            year: i64::from(self.year),
            source: self.source.clone(),
            holidays: self.holidays.iter().map(Date::to_string).collect(),
            workdays: self.workdays.iter().map(Date::to_string).collect(),
        }
    }
}

/// Saturday or Sunday: a rest day unless the year's schedule says otherwise.
pub(crate) fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The calendar needs a year it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the working-day calendar has no schedule for {year}")]
pub struct YearUnknown {
    pub year: i16,
}

impl YearUnknown {
    /// As a refusal of `field`, telling the reader what to do about it.
    pub fn field_error(self, field: &str) -> FieldError {
        FieldError::new(
            field,
            "calendar_year_unknown",
            format!(
                "the working-day calendar has no schedule for {}: the system administrator loads it once the State \
                 Council announces that year's holidays",
                self.year
            ),
        )
    }
}

/// The schedules of the years known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calendar {
    years: BTreeMap<i16, YearSchedule>,
}

#[derive(Deserialize)]
struct ShippedFile {
    years: Vec<YearInput>,
}

/// The schedules that ship with Yunzhi, as text.
pub const SHIPPED: &str = include_str!("../data/statutory-calendar.json");

/// Longest span one computation may cover: far beyond any deadline of the
/// regulation, short enough that a typo cannot make the server loop for long.
pub const MAX_DAYS: u32 = 1000;

impl Calendar {
    pub fn new(years: impl IntoIterator<Item = YearSchedule>) -> Calendar {
        Calendar { years: years.into_iter().map(|y| (y.year, y)).collect() }
    }

    /// The schedules Yunzhi ships with (2023 onward).
    pub fn shipped() -> Result<Vec<YearSchedule>, Invalid> {
        parse_file(SHIPPED)
    }

    pub fn years(&self) -> impl Iterator<Item = &YearSchedule> {
        self.years.values()
    }

    pub fn year(&self, year: i16) -> Option<&YearSchedule> {
        self.years.get(&year)
    }

    pub fn is_working_day(&self, d: Date) -> Result<bool, YearUnknown> {
        let schedule = self.years.get(&d.year()).ok_or(YearUnknown { year: d.year() })?;
        Ok(if schedule.workdays.contains(&d) {
            true
        } else if schedule.holidays.contains(&d) {
            false
        } else {
            !is_weekend(d)
        })
    }

    /// The `n`-th working day after `from` (whatever kind of day `from` is).
    pub fn add_working_days(&self, from: Date, n: u32) -> Result<Date, YearUnknown> {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            d = d.checked_add(1.day()).map_err(|_| YearUnknown { year: from.year() })?;
            if self.is_working_day(d)? {
                left -= 1;
            }
        }
        Ok(d)
    }

    /// Working days in `(from, to]`; zero when `to` is not after `from`.
    pub fn count_working_days(&self, from: Date, to: Date) -> Result<u32, YearUnknown> {
        let mut count = 0;
        let mut d = from;
        while d < to {
            d = d.checked_add(1.day()).map_err(|_| YearUnknown { year: to.year() })?;
            if self.is_working_day(d)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Working days used by something received on `received` and finished
    /// (or looked at) on `end`, counted like its deadline: the day of
    /// receipt does not count, and a day-off receipt counts from the next
    /// working day. "Handed over on day 2 of 7" is 2 here.
    pub fn working_days_taken(&self, received: Date, end: Date) -> Result<u32, YearUnknown> {
        let effective =
            if self.is_working_day(received)? { received } else { self.add_working_days(received, 1)? };
        self.count_working_days(effective, end)
    }

    /// The deadline of something received on `received` that must be done
    /// within `n` working days. The day of receipt does not count
    /// (期间开始之日不计算在内); something received on a day off counts as
    /// received on the next working day.
    pub fn due_on(&self, received: Date, n: u32) -> Result<Date, YearUnknown> {
        let effective =
            if self.is_working_day(received)? { received } else { self.add_working_days(received, 1)? };
        self.add_working_days(effective, n)
    }
}

/// Parses a file of schedules in the shipped format (`{"years": [...]}`).
pub fn parse_file(text: &str) -> Result<Vec<YearSchedule>, Invalid> {
    let file: ShippedFile = serde_json::from_str(text).map_err(|e| {
        Invalid::one(FieldError::new("years", "malformed_json", format!("not a calendar file: {e}")))
    })?;
    let mut out = Vec::new();
    for (i, y) in file.years.iter().enumerate() {
        out.push(YearSchedule::parse(y).map_err(|e| e.nested(&format!("years[{i}]")))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new(Calendar::shipped().unwrap())
    }

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::constant(y, m, day)
    }

    #[test]
    fn the_shipped_calendar_knows_2023_to_2026() {
        let years: Vec<_> = cal().years().map(|y| y.year).collect();
        assert_eq!(years, [2023, 2024, 2025, 2026]);
    }

    #[test]
    fn a_weekday_holiday_is_off_and_a_make_up_saturday_is_on() {
        let c = cal();
        assert!(!c.is_working_day(d(2026, 10, 1)).unwrap(), "National Day");
        assert!(c.is_working_day(d(2026, 10, 10)).unwrap(), "a make-up Saturday");
        assert!(!c.is_working_day(d(2026, 10, 11)).unwrap(), "an ordinary Sunday");
        assert!(c.is_working_day(d(2026, 10, 9)).unwrap(), "an ordinary Friday");
    }

    #[test]
    fn a_deadline_spanning_national_day_skips_the_holiday_and_counts_the_make_up_saturday() {
        // Received Wednesday 30 September 2026; 1-7 October are off; Friday
        // 9 October is the first working day after, Saturday 10 October is a
        // make-up working day.
        let c = cal();
        assert_eq!(c.due_on(d(2026, 9, 30), 1).unwrap(), d(2026, 10, 8));
        assert_eq!(c.due_on(d(2026, 9, 30), 2).unwrap(), d(2026, 10, 9));
        assert_eq!(c.due_on(d(2026, 9, 30), 3).unwrap(), d(2026, 10, 10));
        assert_eq!(c.due_on(d(2026, 9, 30), 7).unwrap(), d(2026, 10, 15));
    }

    #[test]
    fn something_received_on_a_holiday_counts_from_the_next_working_day() {
        // Received on National Day: as if received Thursday 8 October.
        let c = cal();
        assert_eq!(c.due_on(d(2026, 10, 3), 1).unwrap(), d(2026, 10, 9));
        // The plain arithmetic does not shift: the 1st working day after 3 October is the 8th.
        assert_eq!(c.add_working_days(d(2026, 10, 3), 1).unwrap(), d(2026, 10, 8));
    }

    #[test]
    fn a_year_the_calendar_does_not_know_is_an_error_not_a_guess() {
        let c = cal();
        assert_eq!(c.add_working_days(d(2026, 12, 28), 7), Err(YearUnknown { year: 2027 }));
        assert_eq!(c.is_working_day(d(2022, 6, 1)), Err(YearUnknown { year: 2022 }));
        assert_eq!(YearUnknown { year: 2027 }.field_error("from").code, "calendar_year_unknown");
    }

    #[test]
    fn a_make_up_day_must_be_a_weekend_and_not_also_a_holiday() {
        let input = YearInput {
            year: 2027,
            source: "test".into(),
            holidays: vec!["2027-01-01".into(), "2027-02-06".into()],
            workdays: vec!["2027-01-05".into(), "2027-02-06".into(), "2026-12-31".into()],
        };
        let codes: Vec<_> = YearSchedule::parse(&input).unwrap_err().0.into_iter().map(|e| e.code).collect();
        assert_eq!(codes, ["wrong_year", "not_a_weekend", "both_holiday_and_workday"]);
    }

    #[test]
    fn a_request_received_on_friday_and_handed_over_on_tuesday_took_two_working_days() {
        let c = cal();
        assert_eq!(c.working_days_taken(d(2026, 11, 20), d(2026, 11, 24)).unwrap(), 2);
        assert_eq!(c.working_days_taken(d(2026, 11, 20), d(2026, 11, 20)).unwrap(), 0);
        // Received on Saturday: Monday is the day of receipt.
        assert_eq!(c.working_days_taken(d(2026, 11, 21), d(2026, 11, 24)).unwrap(), 1);
    }

    #[test]
    fn counting_is_over_the_half_open_interval() {
        let c = cal();
        // Mon 2 Nov 2026 to Fri 6 Nov 2026: Tue..Fri.
        assert_eq!(c.count_working_days(d(2026, 11, 2), d(2026, 11, 6)).unwrap(), 4);
        assert_eq!(c.count_working_days(d(2026, 11, 6), d(2026, 11, 2)).unwrap(), 0);
    }
}
