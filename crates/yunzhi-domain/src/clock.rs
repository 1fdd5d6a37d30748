//! Time, from one place the tests (and the demo) can set.
//!
//! Rules never read the time themselves: they take `today` or `now` as an
//! argument. The server holds one [`Clock`] and passes its readings down.

use std::sync::atomic::{AtomicI64, Ordering};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The district's time zone: every date in the regulation is a Shanghai date.
pub fn district_zone() -> TimeZone {
    // Bundled with the binary (jiff's `tzdb-bundle-always`), so this cannot fail.
    TimeZone::get("Asia/Shanghai").unwrap_or(TimeZone::fixed(jiff::tz::offset(8)))
}

/// The district's date at `at`: the day a reading, a deadline or a rollup
/// belongs to.
pub fn district_date(at: Timestamp) -> Date {
    at.to_zoned(district_zone()).date()
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// The date in Shanghai.
    fn today(&self) -> Date {
        district_date(self.now())
    }
}

/// The real time, shifted by an offset that only demo mode and tests change.
#[derive(Debug, Default)]
pub struct ShiftableClock {
    offset_ms: AtomicI64,
}

impl ShiftableClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock so that today is `date`, keeping the time of day
    /// running. Returns the new reading.
    pub fn set_today(&self, date: Date) -> Timestamp {
        let real = Timestamp::now();
        let real_date = real.to_zoned(district_zone()).date();
        let days = real_date.until(date).map(|s| i64::from(s.get_days())).unwrap_or(0);
        let shift = SignedDuration::from_hours(24 * days);
        self.offset_ms.store(shift.as_millis() as i64, Ordering::SeqCst);
        self.now()
    }

    /// Moves the clock to exactly `at` (tests).
    pub fn set_now(&self, at: Timestamp) {
        let offset = at.as_millisecond() - Timestamp::now().as_millisecond();
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    pub fn advance(&self, by: SignedDuration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ShiftableClock {
    fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_millis(self.offset_ms.load(Ordering::SeqCst));
        Timestamp::now().checked_add(offset).unwrap_or_else(|_| Timestamp::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_today_moves_the_date_in_shanghai() {
        let clock = ShiftableClock::new();
        clock.set_today(Date::constant(2027, 3, 3));
        assert_eq!(clock.today(), Date::constant(2027, 3, 3));
    }

    #[test]
    fn advancing_the_clock_moves_now_forward() {
        let clock = ShiftableClock::new();
        let before = clock.now();
        clock.advance(SignedDuration::from_hours(48));
        assert!(clock.now().duration_since(before) >= SignedDuration::from_hours(48));
    }
}

/// A moment as the API shows it: RFC 3339 with the district's offset
/// (`2026-11-26T18:25:16+08:00`), whatever zone the server runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct At(pub Timestamp);

impl At {
    pub fn from_millis(ms: i64) -> At {
        At(Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    pub fn millis(self) -> i64 {
        self.0.as_millisecond()
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let zoned = self.0.to_zoned(district_zone());
        write!(f, "{}", zoned.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    }
}

impl serde::Serialize for At {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod at_tests {
    use super::*;

    #[test]
    fn moments_are_shown_with_the_shanghai_offset() {
        let at = At(Timestamp::from_second(0).unwrap());
        assert_eq!(at.to_string(), "1970-01-01T08:00:00+08:00");
    }
}
