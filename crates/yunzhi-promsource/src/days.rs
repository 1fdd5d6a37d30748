//! Which instants bound a local day. The regulation's days are Beijing days,
//! which end at 16:00 UTC; Prometheus evaluates a query at an instant and
//! looks back, so a day's figures are asked for at the instant the day ends
//! (the next local midnight) with a one-day look-back.

use jiff::civil::{Date, Time};
use jiff::tz::Offset;

use crate::error::{Error, Result};

/// Seconds in a day; days of a fixed-offset zone never have 23 or 25 hours.
pub(crate) const DAY_SECS: i64 = 86_400;

/// A fixed UTC offset in whole hours, as the sites' days are defined.
pub(crate) fn offset(tz_offset_hours: i8) -> Result<Offset> {
    if !(-12..=14).contains(&tz_offset_hours) {
        return Err(Error::Config(format!("time zone offset {tz_offset_hours} h is outside -12..=14")));
    }
    Offset::from_hours(tz_offset_hours).map_err(|e| Error::Config(e.to_string()))
}

/// The Unix second at which `day` ends: the next day's local midnight.
pub(crate) fn day_end(day: Date, offset: Offset) -> Result<i64> {
    let next = day.tomorrow().map_err(|e| Error::Config(format!("day {day}: {e}")))?;
    let ts = offset
        .to_timestamp(next.to_datetime(Time::midnight()))
        .map_err(|e| Error::Config(format!("day {day}: {e}")))?;
    Ok(ts.as_second())
}

/// The local day that ends at `secs` (an evaluation instant of ours, so a
/// local midnight). Prometheus answers with float seconds; they are rounded
/// first so that a store that echoes `1741017600.000` or `1741017599.999`
/// maps to the same day.
pub(crate) fn day_ending_at(secs: f64, offset: Offset) -> Option<Date> {
    let secs = secs.round() as i64;
    let ts = jiff::Timestamp::from_second(secs - 1).ok()?;
    Some(offset.to_datetime(ts).date())
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn a_beijing_day_ends_at_sixteen_hundred_utc_of_the_same_date() {
        let end = day_end(date(2026, 3, 2), offset(8).expect("offset")).expect("end");
        let expected: jiff::Timestamp = "2026-03-02T16:00:00Z".parse().expect("ts");
        assert_eq!(end, expected.as_second());
    }

    #[test]
    fn an_evaluation_at_beijing_midnight_belongs_to_the_day_before() {
        let bj = offset(8).expect("offset");
        let end: jiff::Timestamp = "2026-03-02T16:00:00Z".parse().expect("ts");
        assert_eq!(day_ending_at(end.as_second() as f64, bj), Some(date(2026, 3, 2)));
        assert_eq!(day_ending_at(end.as_second() as f64 - 0.0004, bj), Some(date(2026, 3, 2)));
    }

    #[test]
    fn day_end_and_day_ending_at_are_inverse_in_every_zone() {
        for hours in -12..=14 {
            let off = offset(hours).expect("offset");
            for day in [date(2024, 2, 28), date(2024, 2, 29), date(2026, 12, 31)] {
                let end = day_end(day, off).expect("end");
                assert_eq!(day_ending_at(end as f64, off), Some(day), "offset {hours}");
            }
        }
    }

    #[test]
    fn an_offset_outside_the_earths_zones_is_refused() {
        assert!(offset(15).is_err());
        assert!(offset(-13).is_err());
    }
}
