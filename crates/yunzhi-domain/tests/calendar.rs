//! The working-day calendar against an independent source and over many
//! generated dates.

use jiff::ToSpan;
use jiff::civil::Date;
use proptest::prelude::*;
use yunzhi_domain::calendar::Calendar;

fn cal() -> Calendar {
    Calendar::new(Calendar::shipped().unwrap())
}

#[test]
fn every_day_from_2023_to_2026_agrees_with_the_chinese_holiday_crate() {
    let c = cal();
    let mut d = Date::constant(2023, 1, 1);
    let mut checked = 0;
    // The crate's data ends on 25 December 2026.
    while d <= Date::constant(2026, 12, 25) {
        let theirs =
            chinese_holiday::chinese_holiday((d.year() as u16, d.month() as u8, d.day() as u8)).is_workday();
        assert_eq!(c.is_working_day(d).unwrap(), theirs, "{d}");
        d = d.checked_add(1.day()).unwrap();
        checked += 1;
    }
    assert_eq!(checked, 365 * 4 + 1 - 6);
}

fn date_in_known_years() -> impl Strategy<Value = Date> {
    // Up to March 2026, so that 150 working days later is still known.
    (0i32..(365 * 3 + 60)).prop_map(|n| Date::constant(2023, 1, 1).checked_add(n.days()).unwrap())
}

proptest! {
    #[test]
    fn counting_undoes_adding(from in date_in_known_years(), n in 0u32..150) {
        let c = cal();
        let to = c.add_working_days(from, n).unwrap();
        prop_assert_eq!(c.count_working_days(from, to).unwrap(), n);
    }

    #[test]
    fn a_due_date_is_never_a_day_off(received in date_in_known_years(), n in 1u32..30) {
        let c = cal();
        let due = c.due_on(received, n).unwrap();
        prop_assert!(c.is_working_day(due).unwrap());
        prop_assert!(due > received);
    }

    #[test]
    fn a_deadline_is_n_working_days_after_the_first_working_day_of_receipt(received in date_in_known_years(), n in 1u32..30) {
        let c = cal();
        let due = c.due_on(received, n).unwrap();
        let counted = c.count_working_days(received, due).unwrap();
        // Received on a working day: exactly n more; on a day off: the first
        // working day is the day of receipt, and n more follow it.
        let expected = if c.is_working_day(received).unwrap() { n } else { n + 1 };
        prop_assert_eq!(counted, expected);
    }
}

#[test]
fn make_up_days_count_as_working_days() {
    let c = cal();
    for y in c.years() {
        for d in &y.workdays {
            assert!(c.is_working_day(*d).unwrap(), "{d}");
            let before = d.checked_sub(1.day()).unwrap();
            if before.year() == d.year() {
                assert_eq!(
                    c.add_working_days(before, 1).unwrap(),
                    *d,
                    "the make-up day {d} is the next working day"
                );
            }
        }
    }
}
