//! The guest side the simulator plays for the demo: how each simulated host
//! is used, so the monitoring path has something true-to-life to read. A
//! profile and a seed give a repeatable sample for any moment; nothing is
//! stored but the profile.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a simulated host is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Profile {
    /// Steadily used round the clock: CPU about 45–75 %, gigabytes of traffic a day.
    Busy,
    /// An office system: busy in working hours (Beijing time, Monday to
    /// Friday), near idle at night and at weekends.
    Diurnal,
    /// Busy in the months of its declared season (Art. 8), nearly idle
    /// otherwise: its off-season is not idleness.
    Periodic { months: Vec<u8> },
    /// Running but hardly used: a few per cent of CPU, a little traffic, a
    /// login now and then (what a low-utilisation rule finds).
    Idle,
    /// Nobody uses it: CPU below 1 %, no logins, next to no traffic (a zombie).
    Zombie,
}

/// One reading of a guest, as an agent inside it would take it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GuestSample {
    pub cpu_pct: f64,
    pub memory_pct: f64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    /// Interactive sessions logged in (zombie evidence when always 0).
    pub logged_in_sessions: u32,
    /// TCP connections accepted in the minute before (zombie evidence when
    /// always 0: nobody calls on its services).
    #[serde(default)]
    pub accepted_connections: u32,
}

/// A deterministic draw in [0, 1) for `seed` and `n` (splitmix64).
fn noise(seed: u64, n: u64) -> f64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A seed for a host from its key, so each host has its own noise.
pub fn seed_of(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// How busy a host of `profile` is at `at`, from 0 (idle) to 1 (flat out),
/// before noise.
fn level(profile: &Profile, at: Timestamp) -> f64 {
    // China keeps UTC+8 all year.
    let local = at.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)));
    let hour = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
    let weekday = local.weekday().to_monday_one_offset() <= 5;
    let office = weekday && (8.5..17.5).contains(&hour);
    match profile {
        Profile::Busy => 0.6,
        Profile::Diurnal if office => 0.55,
        Profile::Diurnal => 0.06,
        Profile::Periodic { months } => {
            let in_season = u8::try_from(local.month()).is_ok_and(|m| months.contains(&m));
            match (in_season, office) {
                (true, true) => 0.7,
                (true, false) => 0.25,
                (false, _) => 0.03,
            }
        }
        Profile::Idle => 0.05,
        Profile::Zombie => 0.004,
    }
}

/// The reading of a host of `profile` (with its `seed`) at `at`: the same
/// inputs give the same reading, and readings a minute apart differ.
pub fn sample(profile: &Profile, seed: u64, at: Timestamp) -> GuestSample {
    let minute = (at.as_second() / 60) as u64;
    // Eight independent draws a minute, numbered 0 to 7.
    let draw = |n: u64| noise(seed, minute.wrapping_mul(8).wrapping_add(n));
    let jitter = |n: u64, spread: f64| 1.0 + spread * (2.0 * draw(n) - 1.0);
    let l = level(profile, at);
    // An idle or zombie host's few bytes a second are its agent, NTP and
    // DNS: a few MB a day. Everything else moves with its load.
    let (net, disk) = match profile {
        Profile::Zombie => (40.0, 30.0),
        Profile::Idle => (30.0, 60.0),
        _ => (2_000.0 + 6_000_000.0 * l, 1_000.0 + 4_000_000.0 * l),
    };
    let sessions = match profile {
        Profile::Zombie => 0,
        Profile::Idle => u32::from(noise(seed, minute / 240) < 0.1),
        _ => (l * 12.0 * jitter(7, 0.5)).round() as u32,
    };
    // Callers of its services: none for a zombie, now and then for an idle
    // host, with the load for the rest.
    let accepted = match profile {
        Profile::Zombie => 0,
        Profile::Idle => u32::from(draw(0) < 0.05),
        _ => (l * 60.0 * jitter(0, 0.5)).round() as u32,
    };
    GuestSample {
        cpu_pct: (100.0 * l * jitter(1, 0.3)).clamp(0.0, 100.0),
        memory_pct: (30.0 + 50.0 * l * jitter(2, 0.1)).clamp(0.0, 100.0),
        disk_read_bps: disk * jitter(3, 0.5),
        disk_write_bps: 0.6 * disk * jitter(4, 0.5),
        net_rx_bps: net * jitter(5, 0.4),
        net_tx_bps: 0.4 * net * jitter(6, 0.4),
        logged_in_sessions: sessions,
        accepted_connections: accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The mean CPU of a host over a day, one reading every five minutes.
    fn daily_cpu(profile: &Profile, day: &str) -> f64 {
        let start = at(&format!("{day}T00:00:00+08:00"));
        let n = 288;
        (0..n)
            .map(|i| sample(profile, 7, start + jiff::SignedDuration::from_mins(5 * i)).cpu_pct)
            .sum::<f64>()
            / n as f64
    }

    #[test]
    fn the_same_host_at_the_same_minute_reads_the_same() {
        let t = at("2026-11-26T10:00:00+08:00");
        assert_eq!(sample(&Profile::Busy, 1, t), sample(&Profile::Busy, 1, t));
        assert_ne!(sample(&Profile::Busy, 1, t), sample(&Profile::Busy, 2, t));
    }

    #[test]
    fn an_office_system_is_busy_on_a_weekday_morning_and_quiet_at_night() {
        let p = Profile::Diurnal;
        assert!(sample(&p, 1, at("2026-11-26T10:00:00+08:00")).cpu_pct > 30.0);
        assert!(sample(&p, 1, at("2026-11-26T03:00:00+08:00")).cpu_pct < 10.0);
        assert!(sample(&p, 1, at("2026-11-28T10:00:00+08:00")).cpu_pct < 10.0, "a Saturday");
    }

    #[test]
    fn a_periodic_system_is_busy_in_its_season_and_nearly_idle_outside_it() {
        let p = Profile::Periodic { months: vec![7, 8] };
        assert!(daily_cpu(&p, "2026-07-15") > 20.0);
        assert!(daily_cpu(&p, "2026-11-26") < 5.0);
    }

    #[test]
    fn a_zombie_uses_almost_no_cpu_nobody_logs_in_and_nobody_connects() {
        let start = at("2026-11-01T00:00:00+08:00");
        for i in 0..(30 * 24) {
            let s = sample(&Profile::Zombie, 9, start + jiff::SignedDuration::from_hours(i));
            assert!(s.cpu_pct < 2.0, "{s:?}");
            assert_eq!(s.logged_in_sessions, 0);
            assert_eq!(s.accepted_connections, 0, "nobody calls on its services");
            assert!(s.net_rx_bps < 1_000.0);
        }
        let busy = sample(&Profile::Busy, 9, start);
        assert!(busy.accepted_connections > 0, "{busy:?}");
    }

    #[test]
    fn an_idle_host_stays_under_ten_per_cent_cpu_on_most_days_as_low_utilisation_rules_expect() {
        for day in ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"] {
            assert!(daily_cpu(&Profile::Idle, day) < 10.0);
        }
        assert!(daily_cpu(&Profile::Busy, "2026-11-26") > 40.0);
    }
}
