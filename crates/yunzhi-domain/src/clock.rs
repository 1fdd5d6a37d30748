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

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// The date in Shanghai.
    fn today(&self) -> Date {
        self.now().to_zoned(district_zone()).date()
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
        let days = real_date
            .until(date)
            .map(|s| i64::from(s.get_days()))
            .unwrap_or(0);
        let shift = SignedDuration::from_hours(24 * days);
        self.offset_ms
            .store(shift.as_millis() as i64, Ordering::SeqCst);
        self.now()
    }

    /// Moves the clock to exactly `at` (tests).
    pub fn set_now(&self, at: Timestamp) {
        let offset = at.as_millisecond() - Timestamp::now().as_millisecond();
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    pub fn advance(&self, by: SignedDuration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ShiftableClock {
    fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_millis(self.offset_ms.load(Ordering::SeqCst));
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| Timestamp::now())
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
