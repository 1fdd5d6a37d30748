//! The generated fleet: hosts with the ways district systems are really
//! used — busy all day, busy in office hours on Beijing working days
//! (statutory calendar, make-up workdays and holidays included), busy in a
//! declared season, idle, and zombies — read every 5 minutes, each value
//! noisy and rounded to hundredths as the agent sends it.
//!
//! Everything is a pure function of (seed, host, day): any host's day can be
//! produced on its own, in any order, so the rollups, the raw store and the
//! OpenMetrics text for Prometheus are fed the very same readings without
//! holding the fleet in memory.

use anyhow::Context;
use jiff::ToSpan;
use jiff::civil::Date;
use yunzhi_domain::calendar::Calendar;
use yunzhi_domain::monitoring::Reading;

/// Readings per host and day: one every 5 minutes.
pub const READINGS_PER_DAY: usize = 288;
/// Seconds between two readings, and so the time each reading stands for.
pub const INTERVAL_SECS: i64 = 300;
/// Beijing is 8 hours east of UTC, all year.
pub const BEIJING_OFFSET_SECS: i32 = 8 * 3600;

/// A declared periodic load (Art. 8): busy in these months, quiet outside.
#[derive(Debug, PartialEq, Eq)]
pub struct Season {
    pub description: &'static str,
    pub months: &'static [u8],
}

/// The seasons the generated district declares.
pub const SEASONS: [Season; 2] = [
    Season { description: "流感疫苗接种季：10—11月", months: &[10, 11] },
    Season { description: "汛期：6—9月", months: &[6, 7, 8, 9] },
];

/// How a host is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Serves all day, a little more in the daytime.
    Busy,
    /// Used in office hours (08:30–17:30, lunch quieter) on working days.
    Office,
    /// Used in office hours in the months of `SEASONS[i]`, near idle outside.
    Seasonal(usize),
    /// Runs, logs and is polled, but nobody uses it.
    Idle,
    /// Does nothing at all, and nobody logs in.
    Zombie,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Busy => "busy",
            Profile::Office => "office hours",
            Profile::Seasonal(_) => "seasonal",
            Profile::Idle => "idle",
            Profile::Zombie => "zombie",
        }
    }
}

/// One host's character: its profile and the levels it works at.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub profile: Profile,
    /// CPU percent when at work.
    pub cpu_work: f64,
    /// CPU percent when nothing is asked of it.
    pub cpu_rest: f64,
    /// Memory percent, before the day's drift and the working hours' extra.
    pub memory: f64,
    /// Disk bytes per second (read + written) at work.
    pub disk_bps: f64,
    /// Network bytes per second (received + sent) at work.
    pub net_bps: f64,
    /// Interactive sessions while people work on it.
    pub sessions: u32,
    pub listening: u32,
}

/// The generated fleet: `hosts` hosts over `days` days from `first`.
#[derive(Debug, Clone)]
pub struct Fleet {
    seed: u64,
    hosts: usize,
    first: Date,
    days: Vec<DayInfo>,
}

#[derive(Debug, Clone, Copy)]
struct DayInfo {
    date: Date,
    working: bool,
    /// Epoch milliseconds of the day's Beijing midnight.
    start_ms: i64,
}

impl Fleet {
    /// The fleet of `hosts` hosts whose last day is `last`, `days` days long.
    /// Fails when the statutory calendar does not know one of the years.
    pub fn new(seed: u64, hosts: usize, last: Date, days: usize) -> anyhow::Result<Fleet> {
        let calendar = Calendar::new(Calendar::shipped().map_err(|e| anyhow::anyhow!("{e:?}"))?);
        let first = last.checked_sub(i64::try_from(days)?.saturating_sub(1).days())?;
        let days = first
            .series(1.day())
            .take(days)
            .map(|date| -> anyhow::Result<DayInfo> {
                let working = calendar.is_working_day(date).map_err(|e| {
                    anyhow::anyhow!(
                        "the statutory calendar does not know {} (it ships {}); ask for fewer days",
                        e.year,
                        calendar.years().map(|y| y.year.to_string()).collect::<Vec<_>>().join(", ")
                    )
                })?;
                let start_ms = yunzhi_rawstore::Day::from(date).start_ms(BEIJING_OFFSET_SECS);
                Ok(DayInfo { date, working, start_ms })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .context("the fleet's days")?;
        Ok(Fleet { seed, hosts, first, days })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn hosts(&self) -> usize {
        self.hosts
    }

    pub fn days(&self) -> usize {
        self.days.len()
    }

    pub fn first_day(&self) -> Date {
        self.first
    }

    pub fn last_day(&self) -> Date {
        self.days.last().map_or(self.first, |d| d.date)
    }

    /// The date of day `d` (0 is the first).
    pub fn date(&self, d: usize) -> Date {
        self.days[d].date
    }

    /// The first host with `profile`, if the fleet has one.
    pub fn first_of(&self, profile: Profile) -> Option<usize> {
        (0..self.hosts).find(|h| self.host(*h).profile == profile)
    }

    /// Host `h`'s character.
    pub fn host(&self, h: usize) -> Host {
        let mut r = Rng::keyed(self.seed, 1, h as u64, 0);
        let pick = r.uniform();
        let profile = if pick < 0.12 {
            Profile::Busy
        } else if pick < 0.58 {
            Profile::Office
        } else if pick < 0.68 {
            Profile::Seasonal(usize::from(r.uniform() < 0.5))
        } else if pick < 0.88 {
            Profile::Idle
        } else {
            Profile::Zombie
        };
        let listening = 8 + (r.uniform() * 30.0) as u32;
        match profile {
            Profile::Busy => Host {
                profile,
                cpu_work: r.between(30.0, 75.0),
                cpu_rest: 0.0,
                memory: r.between(50.0, 80.0),
                disk_bps: r.log_between(2e5, 3e6),
                net_bps: r.log_between(2e5, 8e6),
                sessions: 1,
                listening,
            },
            Profile::Office => Host {
                profile,
                cpu_work: r.between(6.0, 60.0),
                cpu_rest: r.between(1.5, 5.0),
                memory: r.between(25.0, 60.0),
                disk_bps: r.log_between(3e4, 8e5),
                net_bps: r.log_between(2e4, 2e6),
                sessions: 1 + (r.uniform() * 3.0) as u32,
                listening,
            },
            Profile::Seasonal(_) => Host {
                profile,
                cpu_work: r.between(25.0, 70.0),
                cpu_rest: r.between(1.0, 4.0),
                memory: r.between(30.0, 60.0),
                disk_bps: r.log_between(3e4, 8e5),
                net_bps: r.log_between(2e4, 2e6),
                sessions: 1,
                listening,
            },
            // Quiet, but alive: logs and cron on the disk, monitoring on the wire.
            Profile::Idle => Host {
                profile,
                cpu_work: 0.0,
                cpu_rest: r.between(2.5, 7.0),
                memory: r.between(15.0, 45.0),
                disk_bps: r.log_between(200.0, 2000.0),
                net_bps: r.between(20.0, 55.0),
                sessions: 0,
                listening,
            },
            Profile::Zombie => Host {
                profile,
                cpu_work: 0.0,
                cpu_rest: r.between(0.2, 0.9),
                memory: r.between(8.0, 30.0),
                disk_bps: r.between(10.0, 60.0),
                net_bps: r.between(30.0, 150.0),
                sessions: 0,
                listening,
            },
        }
    }

    /// Host `h`'s readings on day `d`, appended to `out`: one every 5
    /// minutes from the day's Beijing midnight.
    pub fn readings(&self, h: usize, d: usize, out: &mut Vec<Reading>) {
        self.readings_of(&self.host(h), h, d, out)
    }

    /// [`Fleet::readings`] for a host whose character the caller already has.
    pub fn readings_of(&self, host: &Host, h: usize, d: usize, out: &mut Vec<Reading>) {
        let day = self.days[d];
        let mut r = Rng::keyed(self.seed, 2, h as u64, d as u64);
        let in_season = match host.profile {
            Profile::Seasonal(i) => SEASONS[i].months.contains(&(day.date.month() as u8)),
            _ => false,
        };
        // Memory drifts a little from day to day.
        let memory = host.memory + r.between(-2.0, 2.0);
        out.reserve(READINGS_PER_DAY);
        for i in 0..READINGS_PER_DAY {
            let minute = i * 5;
            let office = day.working && (510..1050).contains(&minute);
            let lunch = (720..780).contains(&minute);
            let (level, at_work) = match host.profile {
                Profile::Busy => {
                    (host.cpu_work * if (480..1200).contains(&minute) { 1.1 } else { 0.85 }, true)
                }
                Profile::Office if office => (host.cpu_work * if lunch { 0.6 } else { 1.0 }, true),
                Profile::Seasonal(_) if in_season && office => (host.cpu_work, true),
                // The public uses a seasonal service in the evening too.
                Profile::Seasonal(_) if in_season => (host.cpu_work * 0.35, false),
                _ => (host.cpu_rest, false),
            };
            let cpu = match host.profile {
                Profile::Zombie => (level * (1.0 + 0.3 * r.normal())).clamp(0.05, 1.95),
                _ => {
                    let spike = if r.uniform() < 0.01 { level * 1.5 + 5.0 } else { 0.0 };
                    (level * (1.0 + 0.15 * r.normal()) + spike).clamp(0.0, 100.0)
                }
            };
            // How much of its working traffic the host moves right now.
            let activity = match host.profile {
                Profile::Idle | Profile::Zombie => 1.0,
                _ if host.cpu_work > 0.0 => (level / host.cpu_work).min(1.2),
                _ => 1.0,
            };
            let spread = if matches!(host.profile, Profile::Idle | Profile::Zombie) { 0.3 } else { 0.5 };
            let disk = host.disk_bps * activity * (spread * r.normal()).exp();
            let net = host.net_bps * activity * (spread * r.normal()).exp();
            let memory = (memory + if at_work { 8.0 } else { 0.0 } + 0.3 * r.normal()).clamp(1.0, 99.0);
            let sessions = match host.profile {
                Profile::Busy if office => 1,
                Profile::Office if office => host.sessions,
                Profile::Seasonal(_) if in_season && office => host.sessions,
                _ => 0,
            };
            // Callers of its services: none for a zombie, a stray one every
            // few hours for an idle host, with the traffic for the rest.
            // Drawn from no new random numbers, so the fleet's other readings
            // stay those of earlier runs.
            let accepted = match host.profile {
                Profile::Zombie => 0,
                Profile::Idle => u32::from(i % 50 == 17),
                _ => (net / 4000.0).round() as u32,
            };
            out.push(Reading {
                at: timestamp(day.start_ms + i as i64 * INTERVAL_SECS * 1000),
                cpu_pct: hundredths(cpu),
                memory_pct: hundredths(memory),
                disk_read_bps: hundredths(disk * 0.4),
                disk_write_bps: hundredths(disk * 0.6),
                net_rx_bps: hundredths(net * 0.6),
                net_tx_bps: hundredths(net * 0.4),
                sessions,
                listening: host.listening,
                accepted: Some(accepted),
            });
        }
    }
}

fn timestamp(ms: i64) -> jiff::Timestamp {
    // Days between 2023 and 2026: always within jiff's range.
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// What the agent sends: hundredths.
pub fn hundredths(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A small, fast generator (wyrand's step), seeded per purpose, host and
/// day so that any host's day is reproducible on its own.
struct Rng(u64);

impl Rng {
    fn keyed(seed: u64, purpose: u64, a: u64, b: u64) -> Rng {
        let mut r = Rng(seed ^ purpose.wrapping_mul(0xd6e8_feb8_6659_fd93));
        r.0 ^= r.next() ^ a.wrapping_mul(0x9fb2_1c65_1e98_df25);
        r.0 ^= r.next() ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform on a log scale: as many hosts move kilobytes as megabytes.
    fn log_between(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.uniform()).exp()
    }

    /// About standard normal (three uniforms summed and rescaled): cheap,
    /// and bounded, so no reading is absurd.
    fn normal(&mut self) -> f64 {
        (self.uniform() + self.uniform() + self.uniform() - 1.5) * 2.0
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use yunzhi_domain::monitoring::Rollup;

    use super::*;

    fn fleet() -> Fleet {
        // 2026-09-28 (Mon) to 2026-10-04 (Sun): National Day week.
        Fleet::new(7, 200, date(2026, 10, 4), 7).expect("a fleet")
    }

    fn day_rollup(f: &Fleet, h: usize, d: usize) -> Rollup {
        let mut readings = Vec::new();
        f.readings(h, d, &mut readings);
        let mut r = Rollup::default();
        for reading in &readings {
            r.add(reading, INTERVAL_SECS as f64);
        }
        r
    }

    #[test]
    fn the_same_seed_gives_the_same_readings_and_another_seed_others() {
        let (a, b) = (fleet(), fleet());
        let other = Fleet::new(8, 200, date(2026, 10, 4), 7).expect("a fleet");
        let (mut ra, mut rb, mut ro) = (Vec::new(), Vec::new(), Vec::new());
        for h in [0, 17, 199] {
            a.readings(h, 3, &mut ra);
            b.readings(h, 3, &mut rb);
            other.readings(h, 3, &mut ro);
        }
        assert_eq!(ra, rb);
        assert_ne!(ra, ro);
        assert_eq!(ra.len(), 3 * READINGS_PER_DAY);
    }

    #[test]
    fn readings_are_every_five_minutes_from_beijing_midnight_in_hundredths() {
        let f = fleet();
        let mut out = Vec::new();
        f.readings(5, 0, &mut out);
        let midnight: jiff::Timestamp = "2026-09-27T16:00:00Z".parse().expect("ts");
        assert_eq!(out[0].at, midnight);
        assert_eq!(out[287].at, midnight + jiff::SignedDuration::from_mins(287 * 5));
        for r in &out {
            for v in [r.cpu_pct, r.memory_pct, r.disk_read_bps, r.net_tx_bps] {
                assert_eq!(hundredths(v), v, "{v} is not in hundredths");
            }
        }
    }

    #[test]
    fn a_zombie_stays_below_two_percent_cpu_p95_and_a_busy_host_far_above_ten() {
        let f = fleet();
        let zombie = f.first_of(Profile::Zombie).expect("a zombie among 200 hosts");
        let busy = f.first_of(Profile::Busy).expect("a busy host among 200 hosts");
        for d in 0..f.days() {
            let z = day_rollup(&f, zombie, d);
            assert!(z.cpu_quantile(0.95) < 2.0, "zombie p95 {}", z.cpu_quantile(0.95));
            assert!(z.net_bytes < 20.0 * 1024.0 * 1024.0 && z.disk_bytes < 10.0 * 1024.0 * 1024.0);
            assert_eq!(z.sessions_max, 0);
            let b = day_rollup(&f, busy, d);
            assert!(b.cpu_quantile(0.95) > 10.0, "busy p95 {}", b.cpu_quantile(0.95));
        }
    }

    #[test]
    fn an_office_hours_host_works_on_a_working_monday_and_rests_on_national_day() {
        let f = fleet();
        let office =
            (0..f.hosts()).find(|h| f.host(*h).profile == Profile::Office && f.host(*h).cpu_work > 30.0);
        let office = office.expect("a well-used office host among 200");
        let monday = day_rollup(&f, office, 0); // 2026-09-28, a working day
        let holiday = day_rollup(&f, office, 3); // 2026-10-01, National Day
        assert!(monday.cpu_avg() > 2.0 * holiday.cpu_avg(), "{} vs {}", monday.cpu_avg(), holiday.cpu_avg());
        assert!(monday.sessions_max > 0 && holiday.sessions_max == 0);
    }

    #[test]
    fn every_profile_is_present_in_a_district_sized_fleet() {
        let f = fleet();
        for p in [Profile::Busy, Profile::Office, Profile::Seasonal(0), Profile::Seasonal(1), Profile::Idle] {
            assert!(f.first_of(p).is_some(), "no {p:?}");
        }
    }

    #[test]
    fn a_year_the_calendar_does_not_know_is_refused() {
        assert!(Fleet::new(1, 1, date(2030, 1, 10), 3).is_err());
    }
}
