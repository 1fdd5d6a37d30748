//! Properties of the efficiency rules, over many generated hosts.

use jiff::ToSpan;
use jiff::civil::{Date, date};
use proptest::prelude::*;
use yunzhi_domain::calendar::Calendar;
use yunzhi_domain::efficiency::{DailyStats, RestDays, Rules, Verdict, usage_verdicts};
use yunzhi_domain::finding::FindingKind;
use yunzhi_domain::system::PeriodicLoad;

const TODAY: Date = date(2026, 11, 15);
const MIB: f64 = 1024.0 * 1024.0;

/// A day's figures, mostly near the thresholds so that every rule is
/// exercised.
fn figures() -> impl Strategy<Value = (f64, f64, f64, f64, u32)> {
    (
        prop_oneof![3 => 0.0..12.0f64, 1 => 0.0..100.0f64],
        prop_oneof![3 => 0.0..25.0f64, 1 => 0.0..100.0f64],
        prop_oneof![3 => 0.0..6.0 * MIB, 1 => 0.0..1e9f64],
        0.0..20.0 * MIB,
        prop_oneof![3 => Just(0u32), 1 => 0u32..3],
    )
}

fn stats(
    ago: i64,
    samples: u32,
    (cpu_avg, cpu_p95, net_bytes, disk_bytes, sessions_max): (f64, f64, f64, f64, u32),
) -> DailyStats {
    DailyStats {
        day: TODAY.checked_sub(ago.days()).unwrap(),
        samples,
        cpu_avg,
        cpu_max: cpu_p95.max(cpu_avg),
        cpu_p95: cpu_p95.max(cpu_avg),
        memory_avg: 30.0,
        net_bytes,
        disk_bytes,
        sessions_max,
        accepted: None,
    }
}

/// What a host does on most days: nothing, little, or work.
const PROFILES: [(f64, f64, f64, f64, u32); 3] =
    [(0.5, 1.0, 0.2 * MIB, MIB, 0), (5.0, 12.0, 3.0 * MIB, 5.0 * MIB, 1), (40.0, 80.0, 1e9, 1e9, 3)];

/// The 60 days before today of a host with one profile, some days
/// different, missing or without samples, and a few days listed twice.
fn host() -> impl Strategy<Value = Vec<DailyStats>> {
    let day = prop_oneof![
        12 => Just(None),
        1 => Just(Some((0u32, PROFILES[0]))),
        2 => figures().prop_map(|f| Some((1440, f))),
    ];
    (
        0usize..3,
        proptest::collection::vec((day, any::<bool>()), 60),
        proptest::collection::vec((1i64..=60, figures()), 0..4),
    )
        .prop_map(|(profile, days, extra)| {
            let mut out: Vec<DailyStats> = days
                .into_iter()
                .zip(1i64..)
                .filter(|((_, present), ago)| *present || ago % 7 != 0)
                .map(|((change, _), ago)| match change {
                    None => stats(ago, 1440, PROFILES[profile]),
                    Some((samples, f)) => stats(ago, samples, f),
                })
                .collect();
            out.extend(extra.into_iter().map(|(ago, f)| stats(ago, 1440, f)));
            out
        })
}

/// A day listed twice counts as first listed, so order matters for those:
/// these hosts have one entry per day.
fn one_entry_per_day() -> impl Strategy<Value = Vec<DailyStats>> {
    host().prop_map(|mut days| {
        let mut seen = std::collections::HashSet::new();
        days.retain(|d| seen.insert(d.day));
        days
    })
}

/// The verdicts with the shipped working-day calendar's rest days.
fn verdicts(days: &[DailyStats], periodic: Option<&PeriodicLoad>) -> Vec<Verdict> {
    let calendar = Calendar::new(Calendar::shipped().unwrap());
    let rest = RestDays::from_calendar(&calendar, TODAY.yesterday().unwrap());
    usage_verdicts(&Rules::default(), TODAY, days, periodic, &rest)
}

fn kinds(days: &[DailyStats], periodic: Option<&PeriodicLoad>) -> Vec<FindingKind> {
    verdicts(days, periodic).into_iter().map(|v| v.kind).collect()
}

proptest! {
    #[test]
    fn a_host_gets_at_most_one_usage_verdict_and_never_zombie_and_low_together(days in host()) {
        let k = kinds(&days, None);
        prop_assert!(k.len() <= 1, "{k:?}");
    }

    #[test]
    fn the_order_of_the_days_does_not_change_the_verdict(
        (days, shuffled) in one_entry_per_day().prop_flat_map(|d| (Just(d.clone()), Just(d).prop_shuffle()))
    ) {
        let a = verdicts(&days, None);
        let b = verdicts(&shuffled, None);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn a_busier_host_is_never_flagged_when_a_quieter_one_is_not(days in host(), factor in 1.0..20.0f64) {
        prop_assume!(kinds(&days, None).is_empty());
        let busier: Vec<DailyStats> = days
            .iter()
            .map(|d| DailyStats {
                cpu_avg: d.cpu_avg * factor,
                cpu_p95: d.cpu_p95 * factor,
                net_bytes: d.net_bytes * factor,
                disk_bytes: d.disk_bytes * factor,
                sessions_max: d.sessions_max + 1,
                ..d.clone()
            })
            .collect();
        prop_assert!(kinds(&busier, None).is_empty());
    }

    #[test]
    fn nothing_is_flagged_in_a_declared_off_season(days in host()) {
        // The 60 days before 15 November fall in September to November.
        let spring = PeriodicLoad { description: "春季招生".into(), months: vec![2, 3, 4, 5, 6] };
        prop_assert!(kinds(&days, Some(&spring)).is_empty());
    }
}

#[test]
fn the_generated_hosts_exercise_every_usage_verdict() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut found = std::collections::HashSet::new();
    for _ in 0..500 {
        let days = host().new_tree(&mut runner).unwrap().current();
        found.extend(kinds(&days, None));
    }
    assert!(found.contains(&FindingKind::Zombie) && found.contains(&FindingKind::LowUtilization));
}
