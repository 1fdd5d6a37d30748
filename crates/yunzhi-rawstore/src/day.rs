//! Civil days as plain day numbers.
//!
//! The store partitions samples by the district's civil day (Beijing time by
//! default), so a day file holds exactly what an official means by "Tuesday".
//! Days are kept as a count since 1970-01-01 because that is what the hot
//! paths compare; conversion to a `jiff` date happens only at the edges.

use std::fmt;

use jiff::civil::Date;

const MS_PER_DAY: i64 = 86_400_000;

/// A civil day, counted from 1970-01-01 (day 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i32);

impl Day {
    /// The day with this number (days since 1970-01-01).
    pub const fn from_index(index: i32) -> Day {
        Day(index)
    }

    /// Days since 1970-01-01.
    pub const fn index(self) -> i32 {
        self.0
    }

    /// The civil day an instant falls on, for a zone `offset_secs` east of UTC.
    pub fn of_ms(at_ms: i64, offset_secs: i32) -> Day {
        let local = at_ms.saturating_add(i64::from(offset_secs) * 1000);
        // Saturate rather than wrap: a reading from the year 5 million is
        // garbage either way, and must not land on a plausible day.
        Day(local.div_euclid(MS_PER_DAY).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }

    /// The first millisecond (UTC epoch) of this day in a zone `offset_secs` east of UTC.
    pub fn start_ms(self, offset_secs: i32) -> i64 {
        i64::from(self.0) * MS_PER_DAY - i64::from(offset_secs) * 1000
    }

    /// The day `n` days later (earlier for negative `n`).
    pub const fn plus(self, n: i32) -> Day {
        Day(self.0.saturating_add(n))
    }

    /// The calendar date of this day.
    pub fn to_date(self) -> Date {
        let (y, m, d) = civil_from_days(i64::from(self.0));
        // Out of jiff's range (years beyond ±9999) only for nonsense input.
        Date::new(y as i16, m as i8, d as i8).unwrap_or(Date::MAX)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Day> {
        let date: Date = text.parse().ok()?;
        Some(Day::from(date))
    }
}

impl From<Date> for Day {
    fn from(date: Date) -> Day {
        let days = days_from_civil(i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
        Day(days as i32)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(i64::from(self.0));
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

// Howard Hinnant's algorithms (public domain): exact for the proleptic
// Gregorian calendar and cheap enough for per-row use.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_round_trips_through_its_calendar_date() {
        for index in [-719_162, -1, 0, 1, 19_000, 20_453, 2_900_000] {
            let day = Day::from_index(index);
            assert_eq!(Day::from(day.to_date()), day);
            assert_eq!(Day::parse(&day.to_string()), Some(day));
        }
        assert_eq!(Day::parse("1970-01-01"), Some(Day::from_index(0)));
        assert_eq!(Day::parse("2026-11-26").map(|d| d.to_string()).as_deref(), Some("2026-11-26"));
    }

    #[test]
    fn a_reading_just_after_beijing_midnight_belongs_to_the_new_beijing_day() {
        let offset = 8 * 3600;
        let start = Day::from_index(20_000).start_ms(offset);
        assert_eq!(Day::of_ms(start, offset), Day::from_index(20_000));
        assert_eq!(Day::of_ms(start - 1, offset), Day::from_index(19_999));
        // 16:00 UTC is Beijing midnight.
        assert_eq!(start.rem_euclid(MS_PER_DAY), 16 * 3_600_000);
    }
}
