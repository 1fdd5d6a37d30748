//! RFC 3339 timestamps in UTC, without a date library: the agent needs only
//! this one format and stays small.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-03T08:15:30.250Z`: UTC, millisecond precision.
pub fn rfc3339(t: SystemTime) -> String {
    // A clock before 1970 is a broken clock; the epoch says so plainly.
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Howard Hinnant's days-to-civil algorithm for the proleptic Gregorian
/// calendar, for days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_772_530_530_250);
        assert_eq!(rfc3339(t), "2026-03-03T09:35:30.250Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn leap_days_and_year_ends_are_dated_correctly() {
        let day = |d: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(d * 86_400));
        assert_eq!(day(11_016), "2000-02-29T00:00:00.000Z");
        assert_eq!(day(20_818), "2026-12-31T00:00:00.000Z");
        assert_eq!(day(20_819), "2027-01-01T00:00:00.000Z");
    }
}
