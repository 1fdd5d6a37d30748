//! The efficiency rules (Art. 13-14): when a cloud host's use is long-term
//! low (使用率长期较低), when it is a zombie (僵尸系统长期占用资源), and when
//! its monitoring agent is missing, silent or altered (Art. 13: the agent
//! must not be tampered with, blocked or uninstalled).
//!
//! The rules read daily rollups computed elsewhere and the agent's state as
//! the server knows it; they return verdicts with the numbers that led to
//! them, for the office to review before any warning (Art. 14). Thresholds
//! are configuration ([`Rules`]) whose defaults follow the public cloud
//! vendors' published checks.
//!
//! Three things are never called idle: a declared periodic load's
//! off-season (Art. 8: a tax system is quiet outside tax season by design),
//! a day without data (silence is the agent rules' business, not a sign of
//! idleness), and, for the short-term rule, a day the offices are closed (a
//! weekend or statutory holiday in the working-day calendar the deadlines
//! use: an office system quiet on Saturday is the office's rhythm). Such
//! days are left out of the evaluation, and a window with too few days left
//! yields no verdict at all.
//!
//! The analysis runs over every host of the district, so the common path,
//! nothing found, makes one pass over the days and allocates nothing; the
//! evidence is built only for a verdict that fires.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::calendar::Calendar;
use crate::finding::FindingKind;
use crate::invalid::{Checker, FieldError, Invalid};
use crate::system::PeriodicLoad;

/// The longest window any usage rule may look at. Rollups older than a year
/// and a month say nothing about how a host is used today.
pub const MAX_WINDOW_DAYS: u32 = 400;

const MIB: u64 = 1024 * 1024;

/// One host's rollup for one day, as the metrics pipeline computed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyStats {
    pub day: Date,
    /// How many samples the day's figures come from; 0 means no data.
    pub samples: u32,
    /// CPU utilisation in percent (0-100) over the day.
    pub cpu_avg: f64,
    pub cpu_max: f64,
    pub cpu_p95: f64,
    /// Memory utilisation in percent (0-100).
    pub memory_avg: f64,
    /// Bytes received plus sent over the day.
    pub net_bytes: f64,
    /// Bytes read plus written over the day.
    pub disk_bytes: f64,
    /// The most interactive login sessions seen at once during the day.
    pub sessions_max: u32,
    /// TCP connections the host accepted over the day; `None` when its
    /// sender does not count them.
    #[serde(default)]
    pub accepted: Option<u64>,
}

/// The efficiency rules' thresholds. Every threshold named `*_max*` is
/// inclusive: a value equal to it counts as quiet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    pub low_utilization: LowUtilizationRule,
    pub long_term_low: LongTermLowRule,
    pub zombie: ZombieRule,
    pub agent: AgentRule,
}

/// Low utilisation over a short window, counted in quiet days.
///
/// The defaults are AWS Trusted Advisor's "Low Utilization Amazon EC2
/// Instances" check: daily CPU utilisation of 10 % or less and network I/O
/// of 5 MB or less on 4 or more of the last 14 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LowUtilizationRule {
    /// A quiet day's highest daily average CPU, in percent. Default 10
    /// (Trusted Advisor).
    pub cpu_avg_max_pct: f64,
    /// A quiet day's most network bytes (in + out). Default 5 MB = 5 × 1024 ×
    /// 1024 bytes (Trusted Advisor).
    pub net_max_bytes: u64,
    /// How many quiet days make a verdict. Default 4 (Trusted Advisor).
    pub min_days: u32,
    /// How many days, ending yesterday, are looked at. Default 14 (Trusted
    /// Advisor).
    pub window_days: u32,
    /// Whether days the offices are closed (weekends and statutory holidays
    /// of the working-day calendar) may count as quiet days. Default false,
    /// unlike Trusted Advisor, which counts every day: fourteen days hold
    /// four weekend days, so a government office system that nobody uses
    /// on Saturday and Sunday would otherwise be "low utilisation" every
    /// fortnight.
    pub count_rest_days: bool,
}

impl Default for LowUtilizationRule {
    fn default() -> Self {
        Self {
            cpu_avg_max_pct: 10.0,
            net_max_bytes: 5 * MIB,
            min_days: 4,
            window_days: 14,
            count_rest_days: false,
        }
    }
}

/// Long-term low utilisation (Art. 14 (一) 使用率长期较低), on the 95th
/// percentile so that occasional spikes do not hide an oversized host, in
/// the spirit of Azure Advisor's right-sizing, which sizes on P95 CPU.
///
/// The statistic is the 95th percentile (nearest rank) of the daily CPU
/// p95s over the window's evaluated days. Not their maximum: a single
/// month-end batch or patch day in thirty would then veto the finding
/// forever, while the p95 tolerates the busiest 5 % of days, as Azure's P95
/// over the raw samples tolerates the busiest 5 % of the time. Loads that
/// are busy for whole seasons are declared (Art. 8) and left out anyway, and
/// the evidence lists the days above the threshold for the reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LongTermLowRule {
    /// Days, ending yesterday, looked at. Default 30, the short end of the
    /// 30-90 days a long-term judgement wants (Azure Advisor lets the
    /// look-back be 7 to 90 days).
    pub window_days: u32,
    /// The p95 of the daily CPU p95s must stay at or below this, in percent.
    /// Default 20.
    pub cpu_p95_max_pct: f64,
    /// The share of the window that must have evaluable days (data, and not
    /// a declared off-season). Default 0.8: a month with six days of gaps
    /// still speaks, one with half its days missing does not.
    pub min_coverage: f64,
}

impl Default for LongTermLowRule {
    fn default() -> Self {
        Self { window_days: 30, cpu_p95_max_pct: 20.0, min_coverage: 0.8 }
    }
}

/// A zombie: a host that does nothing at all, every evaluated day of the
/// window. The defaults follow Google Cloud's idle VM recommender (CPU and
/// network barely above zero over the observation period): daily CPU p95 at
/// most 2 %, at most 1 MB of network and 10 MB of disk I/O a day, and no
/// login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ZombieRule {
    /// Days, ending yesterday, looked at. Default 30 (long-term, Art. 14 (二)).
    pub window_days: u32,
    /// Highest daily CPU p95, percent. Default 2.
    pub cpu_p95_max_pct: f64,
    /// Most network bytes a day. Default 20 MB: the monitoring agent's own
    /// reports (one a minute, 1–2 MB a day with HTTP and TLS), NTP, DNS and
    /// monitoring polls, nothing served. Google's idle-VM recommender
    /// tolerates far more (2,600 B/s received, about 220 MB a day).
    pub net_max_bytes_per_day: u64,
    /// Most disk bytes read and written a day. Default 10 MB: logs rotating,
    /// nothing stored or queried.
    pub disk_max_bytes_per_day: u64,
    /// Most concurrent login sessions on any day. Default 0: nobody logs in.
    pub sessions: u32,
    /// Most TCP connections the host may accept a day, where its agent
    /// counts them (days without a count are not judged by it). Default
    /// none: the count is shown as evidence but does not decide, because
    /// monitoring that polls every host (Zabbix passive checks, scrapers
    /// without keep-alive) opens connections to zombies too; a district
    /// that knows its polling can set a bound above it.
    pub accepted_max_per_day: Option<u64>,
    /// The share of the window that must have evaluable days. Default 0.8,
    /// as for the long-term rule: "every day" means every day we can see,
    /// and we must see most of them.
    pub min_coverage: f64,
}

impl Default for ZombieRule {
    fn default() -> Self {
        Self {
            window_days: 30,
            cpu_p95_max_pct: 2.0,
            net_max_bytes_per_day: 20 * MIB,
            disk_max_bytes_per_day: 10 * MIB,
            sessions: 0,
            accepted_max_per_day: None,
            min_coverage: 0.8,
        }
    }
}

/// When the monitoring agent (Art. 13) counts as missing, silent or altered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AgentRule {
    /// A running host handed over to its unit this long ago whose agent has
    /// never reported is missing one. Default 24 hours: a working day for
    /// the unit to install it.
    pub missing_after_hours: u32,
    /// An agent that reported before and has not for this long, while the
    /// platform says the host runs, is silent (blocked or removed). Default
    /// 30 minutes: many missed reports, not a network hiccup.
    pub silent_after_minutes: u32,
    /// Clock skew between the agent and the server beyond this is treated as
    /// tampering (replayed or forged reports). Default 300 seconds, the usual
    /// tolerance of signed-request schemes.
    pub max_clock_skew_secs: u32,
}

impl Default for AgentRule {
    fn default() -> Self {
        Self { missing_after_hours: 24, silent_after_minutes: 30, max_clock_skew_secs: 300 }
    }
}

impl Rules {
    /// The thresholds that may be left unset (`null`): a rule does not
    /// judge by an unset one. Named as `rule.field`, as forms and errors
    /// name them.
    pub const OPTIONAL_THRESHOLDS: &'static [&'static str] = &["zombie.accepted_max_per_day"];

    /// Refuses thresholds the rules cannot work with, naming every field.
    pub fn check(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        let lu = &self.low_utilization;
        window(&mut c, "low_utilization.window_days", lu.window_days);
        percent(&mut c, "low_utilization.cpu_avg_max_pct", lu.cpu_avg_max_pct);
        if lu.min_days == 0 {
            c.push(FieldError::new(
                "low_utilization.min_days",
                "out_of_range",
                "low_utilization.min_days must be at least 1",
            ));
        } else if lu.min_days > lu.window_days {
            c.push(FieldError::new(
                "low_utilization.min_days",
                "exceeds_window",
                format!(
                    "low_utilization.min_days ({}) cannot be more than low_utilization.window_days ({})",
                    lu.min_days, lu.window_days
                ),
            ));
        }
        let ltl = &self.long_term_low;
        window(&mut c, "long_term_low.window_days", ltl.window_days);
        percent(&mut c, "long_term_low.cpu_p95_max_pct", ltl.cpu_p95_max_pct);
        coverage(&mut c, "long_term_low.min_coverage", ltl.min_coverage);
        let z = &self.zombie;
        window(&mut c, "zombie.window_days", z.window_days);
        percent(&mut c, "zombie.cpu_p95_max_pct", z.cpu_p95_max_pct);
        coverage(&mut c, "zombie.min_coverage", z.min_coverage);
        let a = &self.agent;
        bounded(&mut c, "agent.missing_after_hours", a.missing_after_hours, 1, 24 * 31);
        bounded(&mut c, "agent.silent_after_minutes", a.silent_after_minutes, 1, 24 * 60 * 7);
        bounded(&mut c, "agent.max_clock_skew_secs", a.max_clock_skew_secs, 1, 24 * 3600);
        c.finish()
    }
}

fn window(c: &mut Checker, field: &str, days: u32) {
    bounded(c, field, days, 1, MAX_WINDOW_DAYS);
}

fn bounded(c: &mut Checker, field: &str, value: u32, min: u32, max: u32) {
    if !(min..=max).contains(&value) {
        c.push(FieldError::new(
            field,
            "out_of_range",
            format!("{field} must be between {min} and {max}, it is {value}"),
        ));
    }
}

fn percent(c: &mut Checker, field: &str, value: f64) {
    if !(0.0..=100.0).contains(&value) {
        c.push(FieldError::new(
            field,
            "out_of_range",
            format!("{field} must be a percentage from 0 to 100, it is {value}"),
        ));
    }
}

fn coverage(c: &mut Checker, field: &str, value: f64) {
    let share = value > 0.0 && value <= 1.0;
    if !share {
        c.push(FieldError::new(
            field,
            "out_of_range",
            format!("{field} must be a share above 0 and at most 1, it is {value}"),
        ));
    }
}

/// The days the offices are closed (weekends and statutory holidays) among
/// the [`MAX_WINDOW_DAYS`] days ending on a given day: what the short-term
/// low-utilisation rule leaves out. Built once per analysis pass from the
/// working-day calendar; a year the calendar does not know falls back to
/// Saturday and Sunday, so that a missing calendar year never stops the
/// analysis (the deadlines, which must be exact, refuse such a year instead).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RestDays {
    start: Date,
    days: DaySet,
}

impl RestDays {
    /// The rest days of the calendar among the window ending on `last`.
    pub fn from_calendar(calendar: &Calendar, last: Date) -> RestDays {
        let start = window_start(last, MAX_WINDOW_DAYS).unwrap_or(last);
        let mut days = DaySet::default();
        for (offset, day) in start.series(1.day()).take(MAX_WINDOW_DAYS as usize).enumerate() {
            let working = calendar.is_working_day(day).unwrap_or_else(|_| !crate::calendar::is_weekend(day));
            if !working {
                days.insert(offset as u32);
            }
        }
        RestDays { start, days }
    }

    /// No rest days at all: every day is a working day.
    pub fn none() -> RestDays {
        RestDays { start: Date::MIN, days: DaySet::default() }
    }

    /// Whether `day` is a rest day; a day outside the window is not.
    pub fn contains(&self, day: Date) -> bool {
        offset_in(self.start, day, MAX_WINDOW_DAYS).is_some_and(|o| self.days.contains(o))
    }
}

/// What a rule found, ready to become a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub kind: FindingKind,
    pub summary_zh: String,
    pub summary_en: String,
    /// The numbers: window, thresholds, values, excluded days.
    pub evidence: Value,
}

/// The usage verdicts of one host, at most one per kind: a zombie, or low
/// utilisation, or nothing.
///
/// Windows end yesterday: `today` is not complete. `days` may come in any
/// order and hold days outside the windows; a day listed twice counts
/// once, as first listed. Rules are expected to have passed
/// [`Rules::check`]; windows out of range are clamped to 1..=400 days
/// rather than panic.
///
/// Both short-term and long-term low utilisation are the same finding kind;
/// when both fire they make one verdict whose evidence holds both, the
/// long-term one (the regulation's 长期较低) first. A zombie is also low
/// utilisation; it is reported as a zombie only.
pub fn usage_verdicts(
    rules: &Rules,
    today: Date,
    days: &[DailyStats],
    periodic: Option<&PeriodicLoad>,
    rest: &RestDays,
) -> Vec<Verdict> {
    let Ok(yesterday) = today.yesterday() else { return Vec::new() };
    let lu = &rules.low_utilization;
    let ltl = &rules.long_term_low;
    let z = &rules.zombie;
    let lu_window = clamp_window(lu.window_days);
    let ltl_window = clamp_window(ltl.window_days);
    let z_window = clamp_window(z.window_days);
    let longest = lu_window.max(ltl_window).max(z_window);
    let Some(start) = window_start(yesterday, longest) else { return Vec::new() };
    let busy = busy_months(periodic);

    let mut seen = DaySet::default();
    // Quiet days can only be evaluated ones, so `min_days` quiet days also
    // mean enough evaluated days.
    let mut lu_quiet = 0u32;
    let (mut ltl_evaluated, mut ltl_above) = (0u32, 0u32);
    let (mut z_evaluated, mut z_active) = (0u32, 0u32);
    for d in days {
        let Some(offset) = offset_in(start, d.day, longest) else { continue };
        if !seen.insert(offset) || d.samples == 0 || !in_season(busy, d.day) {
            continue;
        }
        // Days before yesterday: 0 for yesterday, so each rule's window is
        // the suffix of the longest one.
        let age = longest - 1 - offset;
        if age < lu_window && lu.counts(rest, d.day) {
            lu_quiet += u32::from(lu.is_quiet(d));
        }
        if age < ltl_window {
            ltl_evaluated += 1;
            ltl_above += u32::from(!at_most(d.cpu_p95, ltl.cpu_p95_max_pct));
        }
        if age < z_window {
            z_evaluated += 1;
            z_active += u32::from(!z.is_idle(d));
        }
    }

    let zombie = z_active == 0 && covered(z_evaluated, z_window, z.min_coverage);
    if zombie {
        let window = Window::ending(yesterday, z_window);
        return vec![zombie_verdict(z, &window, days, periodic, busy)];
    }
    let long_term = covered(ltl_evaluated, ltl_window, ltl.min_coverage)
        && ltl_above <= ltl_evaluated.saturating_sub(nearest_rank_95(ltl_evaluated));
    let short_term = lu_quiet >= lu.min_days.max(1);
    if !long_term && !short_term {
        return Vec::new();
    }
    let long_term = long_term.then(|| {
        let window = Window::ending(yesterday, ltl_window);
        long_term_low(ltl, &window, days, periodic, busy)
    });
    let short_term = short_term.then(|| {
        let window = Window::ending(yesterday, lu_window);
        low_utilization(lu, &window, days, periodic, busy, rest)
    });
    vec![low_verdict(long_term, short_term)]
}

impl LowUtilizationRule {
    fn is_quiet(&self, d: &DailyStats) -> bool {
        d.cpu_avg <= self.cpu_avg_max_pct && d.net_bytes <= self.net_max_bytes as f64
    }

    /// Whether a day may count as quiet at all.
    fn counts(&self, rest: &RestDays, day: Date) -> bool {
        self.count_rest_days || !rest.contains(day)
    }
}

impl ZombieRule {
    fn is_idle(&self, d: &DailyStats) -> bool {
        d.cpu_p95 <= self.cpu_p95_max_pct
            && d.net_bytes <= self.net_max_bytes_per_day as f64
            && d.disk_bytes <= self.disk_max_bytes_per_day as f64
            && d.sessions_max <= self.sessions
            && match (self.accepted_max_per_day, d.accepted) {
                (Some(max), Some(n)) => n <= max,
                _ => true,
            }
    }
}

/// `value <= max`, spelled so that a NaN, which is no measurement, is never
/// quiet.
fn at_most(value: f64, max: f64) -> bool {
    value <= max
}

fn clamp_window(days: u32) -> u32 {
    days.clamp(1, MAX_WINDOW_DAYS)
}

fn window_start(last: Date, days: u32) -> Option<Date> {
    last.checked_sub(i64::from(days - 1).days()).ok()
}

/// The day's place in a window of `len` days from `start`, if inside it.
fn offset_in(start: Date, day: Date, len: u32) -> Option<u32> {
    let offset = day.duration_since(start).as_secs().div_euclid(86_400);
    u32::try_from(offset).ok().filter(|o| *o < len)
}

/// Whether enough of the window could be evaluated. The small tolerance
/// keeps 0.8 × 30 from needing 25 days through floating-point rounding.
fn covered(evaluated: u32, window: u32, min_coverage: f64) -> bool {
    evaluated > 0 && f64::from(evaluated) >= min_coverage * f64::from(window) - 1e-9
}

/// The rank (1-based) of the 95th percentile among `n` values, by the
/// nearest-rank method: the smallest value with at least 95 % of the values
/// at or below it.
fn nearest_rank_95(n: u32) -> u32 {
    (n * 95).div_ceil(100).max(1)
}

/// The declared busy months as a bit mask (bit m for month m), or `None`
/// when the load is not periodic.
fn busy_months(periodic: Option<&PeriodicLoad>) -> Option<u16> {
    periodic.map(|p| p.months.iter().filter(|m| (1..=12).contains(*m)).fold(0u16, |acc, m| acc | 1 << m))
}

fn in_season(busy: Option<u16>, day: Date) -> bool {
    busy.is_none_or(|mask| mask & (1 << day.month()) != 0)
}

/// A set of days of a window of at most 400 days, by their offset in it: a
/// bit set on the stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct DaySet([u64; MAX_WINDOW_DAYS.div_ceil(64) as usize]);

impl DaySet {
    fn contains(&self, offset: u32) -> bool {
        self.0.get((offset / 64) as usize).is_some_and(|w| w & (1u64 << (offset % 64)) != 0)
    }

    /// False when the day was already there.
    fn insert(&mut self, offset: u32) -> bool {
        let (word, bit) = ((offset / 64) as usize, 1u64 << (offset % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// Each day of a window with its stats, or why it is not evaluated.
type Walked<'a> = Vec<(Date, Result<&'a DailyStats, &'static str>)>;

struct Window {
    from: Date,
    to: Date,
    days: u32,
}

impl Window {
    /// Only called for windows whose start was already computed once.
    fn ending(to: Date, days: u32) -> Window {
        Window { from: window_start(to, days).unwrap_or(to), to, days }
    }

    fn json(&self) -> Value {
        json!({ "from": self.from.to_string(), "to": self.to.to_string(), "days": self.days })
    }

    /// Each day of the window in order with its stats if it is evaluated,
    /// or the reason it is not.
    fn walk<'a>(&self, days: &'a [DailyStats], busy: Option<u16>) -> Walked<'a> {
        let mut slots: Vec<Option<&DailyStats>> = vec![None; self.days as usize];
        for d in days {
            if let Some(o) = offset_in(self.from, d.day, self.days) {
                slots[o as usize].get_or_insert(d);
            }
        }
        self.from
            .series(1.day())
            .zip(slots)
            .map(|(day, slot)| {
                let seen = match slot {
                    Some(d) if d.samples > 0 && in_season(busy, day) => Ok(d),
                    Some(d) if d.samples > 0 => Err("off_season"),
                    _ if !in_season(busy, day) => Err("off_season"),
                    _ => Err("no_data"),
                };
                (day, seen)
            })
            .collect()
    }
}

/// Evidence shared by the usage rules: the window, the excluded days and
/// why, the declared periodic load.
fn base_evidence(
    window: &Window,
    walked: &Walked<'_>,
    periodic: Option<&PeriodicLoad>,
) -> serde_json::Map<String, Value> {
    let excluded: Vec<Value> = walked
        .iter()
        .filter_map(|(day, r)| r.err().map(|reason| json!({ "day": day.to_string(), "reason": reason })))
        .collect();
    let evaluated = walked.iter().filter(|(_, r)| r.is_ok()).count();
    let mut m = serde_json::Map::new();
    m.insert("window".into(), window.json());
    m.insert("evaluated_days".into(), json!(evaluated));
    m.insert("coverage".into(), json!(evaluated as f64 / f64::from(window.days)));
    m.insert("excluded".into(), Value::Array(excluded));
    if let Some(p) = periodic {
        m.insert("periodic_load".into(), json!({ "description": p.description, "months": p.months }));
    }
    m
}

fn zombie_verdict(
    z: &ZombieRule,
    window: &Window,
    days: &[DailyStats],
    periodic: Option<&PeriodicLoad>,
    busy: Option<u16>,
) -> Verdict {
    let walked = window.walk(days, busy);
    let mut m = base_evidence(window, &walked, periodic);
    let evaluated: Vec<&DailyStats> = walked.iter().filter_map(|(_, r)| r.ok()).collect();
    let peak = |f: fn(&DailyStats) -> f64| evaluated.iter().map(|d| f(d)).fold(0.0, f64::max);
    m.insert("rule".into(), json!("zombie"));
    m.insert(
        "thresholds".into(),
        json!({
            "cpu_p95_max_pct": z.cpu_p95_max_pct,
            "net_max_bytes_per_day": z.net_max_bytes_per_day,
            "disk_max_bytes_per_day": z.disk_max_bytes_per_day,
            "sessions": z.sessions,
            "accepted_max_per_day": z.accepted_max_per_day,
            "min_coverage": z.min_coverage,
        }),
    );
    m.insert(
        "peak".into(),
        json!({
            "cpu_p95": peak(|d| d.cpu_p95),
            "net_bytes": peak(|d| d.net_bytes),
            "disk_bytes": peak(|d| d.disk_bytes),
            "sessions_max": evaluated.iter().map(|d| d.sessions_max).max().unwrap_or(0),
            "accepted": evaluated.iter().filter_map(|d| d.accepted).max(),
        }),
    );
    m.insert(
        "days".into(),
        evaluated
            .iter()
            .map(|d| {
                json!({
                    "day": d.day.to_string(),
                    "cpu_p95": d.cpu_p95,
                    "net_bytes": d.net_bytes,
                    "disk_bytes": d.disk_bytes,
                    "sessions_max": d.sessions_max,
                    "accepted": d.accepted,
                })
            })
            .collect(),
    );
    let n = evaluated.len();
    Verdict {
        kind: FindingKind::Zombie,
        summary_zh: format!(
            "疑似僵尸主机：{}至{}可评估的{n}天里，每天CPU P95不超过{}%，网络流量不超过{}、磁盘读写不超过{}，无人登录",
            window.from,
            window.to,
            num(z.cpu_p95_max_pct),
            mb(z.net_max_bytes_per_day as f64),
            mb(z.disk_max_bytes_per_day as f64),
        ),
        summary_en: format!(
            "Likely a zombie: on each of the {n} evaluable days from {} to {}, CPU p95 stayed at or below \
             {} %, network traffic at or below {}, disk I/O at or below {}, and nobody logged in",
            window.from,
            window.to,
            num(z.cpu_p95_max_pct),
            mb(z.net_max_bytes_per_day as f64),
            mb(z.disk_max_bytes_per_day as f64),
        ),
        evidence: Value::Object(m),
    }
}

/// The long-term rule's evidence and its half of the summary.
struct Part {
    evidence: Value,
    zh: String,
    en: String,
}

fn long_term_low(
    r: &LongTermLowRule,
    window: &Window,
    days: &[DailyStats],
    periodic: Option<&PeriodicLoad>,
    busy: Option<u16>,
) -> Part {
    let walked = window.walk(days, busy);
    let mut m = base_evidence(window, &walked, periodic);
    let evaluated: Vec<&DailyStats> = walked.iter().filter_map(|(_, r)| r.ok()).collect();
    let mut p95s: Vec<f64> = evaluated.iter().map(|d| d.cpu_p95).collect();
    p95s.sort_unstable_by(f64::total_cmp);
    let rank = nearest_rank_95(p95s.len() as u32) as usize;
    let p95 = p95s.get(rank.saturating_sub(1)).copied().unwrap_or(0.0);
    let mean_avg = evaluated.iter().map(|d| d.cpu_avg).sum::<f64>() / evaluated.len().max(1) as f64;
    let above: Vec<Value> = evaluated
        .iter()
        .filter(|d| !at_most(d.cpu_p95, r.cpu_p95_max_pct))
        .map(|d| json!(d.day.to_string()))
        .collect();
    m.insert("rule".into(), json!("long_term_low"));
    m.insert(
        "thresholds".into(),
        json!({ "cpu_p95_max_pct": r.cpu_p95_max_pct, "min_coverage": r.min_coverage }),
    );
    m.insert("statistic".into(), json!("p95_of_daily_cpu_p95_nearest_rank"));
    m.insert("cpu_p95".into(), json!(p95));
    m.insert("cpu_avg_mean".into(), json!(mean_avg));
    m.insert("days_above_threshold".into(), Value::Array(above));
    m.insert(
        "days".into(),
        evaluated
            .iter()
            .map(|d| {
                json!({
                    "day": d.day.to_string(),
                    "cpu_p95": d.cpu_p95,
                    "cpu_avg": d.cpu_avg,
                    "cpu_max": d.cpu_max,
                })
            })
            .collect(),
    );
    let n = evaluated.len();
    Part {
        evidence: Value::Object(m),
        zh: format!(
            "{}至{}可评估的{n}天里，CPU日P95的P95为{}%（阈值{}%），日均CPU平均{}%",
            window.from,
            window.to,
            num(p95),
            num(r.cpu_p95_max_pct),
            num(mean_avg)
        ),
        en: format!(
            "over the {n} evaluable days from {} to {}, the p95 of daily CPU p95 was {} % \
             (threshold {} %), daily average CPU {} % on average",
            window.from,
            window.to,
            num(p95),
            num(r.cpu_p95_max_pct),
            num(mean_avg)
        ),
    }
}

fn low_utilization(
    r: &LowUtilizationRule,
    window: &Window,
    days: &[DailyStats],
    periodic: Option<&PeriodicLoad>,
    busy: Option<u16>,
    rest: &RestDays,
) -> Part {
    let walked = window.walk(days, busy);
    let mut m = base_evidence(window, &walked, periodic);
    let evaluated: Vec<&DailyStats> = walked.iter().filter_map(|(_, r)| r.ok()).collect();
    let qualifies = |d: &DailyStats| r.counts(rest, d.day) && r.is_quiet(d);
    let qualifying = evaluated.iter().filter(|d| qualifies(d)).count();
    let rest_days = evaluated.iter().filter(|d| !r.counts(rest, d.day)).count();
    m.insert("rule".into(), json!("low_utilization"));
    m.insert(
        "thresholds".into(),
        json!({
            "cpu_avg_max_pct": r.cpu_avg_max_pct,
            "net_max_bytes": r.net_max_bytes,
            "min_days": r.min_days,
            "count_rest_days": r.count_rest_days,
        }),
    );
    m.insert("qualifying_days".into(), json!(qualifying));
    m.insert("rest_days_not_counted".into(), json!(rest_days));
    m.insert(
        "days".into(),
        evaluated
            .iter()
            .map(|d| {
                let mut day = json!({
                    "day": d.day.to_string(),
                    "cpu_avg": d.cpu_avg,
                    "net_bytes": d.net_bytes,
                    "qualifies": qualifies(d),
                });
                if !r.counts(rest, d.day) {
                    day["rest_day"] = json!(true);
                }
                day
            })
            .collect(),
    );
    let (zh_day, en_day) = if r.count_rest_days { ("天", "days") } else { ("个工作日", "working days") };
    Part {
        evidence: Value::Object(m),
        zh: format!(
            "{}至{}有{qualifying}{zh_day}日均CPU不超过{}%且网络流量不超过{}（至少{}{zh_day}即为低利用率）",
            window.from,
            window.to,
            num(r.cpu_avg_max_pct),
            mb(r.net_max_bytes as f64),
            r.min_days
        ),
        en: format!(
            "from {} to {}, {qualifying} {en_day} had daily average CPU at or below {} % and network \
             traffic at or below {} ({} such {en_day} make low utilisation)",
            window.from,
            window.to,
            num(r.cpu_avg_max_pct),
            mb(r.net_max_bytes as f64),
            r.min_days
        ),
    }
}

fn low_verdict(long_term: Option<Part>, short_term: Option<Part>) -> Verdict {
    let mut rules = Vec::new();
    let mut m = serde_json::Map::new();
    let (mut zh, mut en) = (Vec::new(), Vec::new());
    for (name, part) in [("long_term_low", long_term), ("low_utilization", short_term)] {
        if let Some(p) = part {
            rules.push(name);
            m.insert(name.into(), p.evidence);
            zh.push(p.zh);
            en.push(p.en);
        }
    }
    m.insert("rules".into(), json!(rules));
    Verdict {
        kind: FindingKind::LowUtilization,
        summary_zh: format!("使用率长期较低：{}", zh.join("；")),
        summary_en: format!("Low utilisation: {}", en.join("; ")),
        evidence: Value::Object(m),
    }
}

/// A number as a person writes it: no trailing `.0`, one decimal otherwise.
fn num(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") }
}

fn mb(bytes: f64) -> String {
    format!("{} MB", num(bytes / MIB as f64))
}

/// What the server knows of one host's monitoring agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// The agent has registered with the server.
    pub enrolled: bool,
    pub last_report_at: Option<Timestamp>,
    /// When the host was handed over to its unit; `None` while it is still
    /// being provisioned.
    pub handed_over_at: Option<Timestamp>,
    /// The cloud platform says the host is running.
    pub running_on_platform: bool,
    /// The SM3 digest of the agent binary, as the agent last reported it.
    pub binary_sm3: Option<String>,
    /// The agent's report sequence started over: reinstalled, its state
    /// wiped, or reports forged.
    pub sequence_reset: bool,
    /// Agent clock minus server clock at the last report, in seconds.
    pub clock_skew_secs: Option<i64>,
}

/// The agent verdicts of one host, at most one per kind. Missing and silent
/// exclude each other (never reported, or reported and stopped); tampering
/// is judged on what the agent last said, whether or not the host runs now.
///
/// `released_digests` are the SM3 digests of the agent builds Yunzhi
/// shipped; an empty list means digests are not checked. An agent that has
/// not reported a digest is not judged on it.
pub fn agent_verdicts(
    rules: &Rules,
    now: Timestamp,
    state: &AgentState,
    released_digests: &[String],
) -> Vec<Verdict> {
    let a = &rules.agent;
    let mut out = Vec::new();
    match (state.last_report_at, state.handed_over_at) {
        (None, Some(handed_over)) if state.running_on_platform => {
            let since = now.duration_since(handed_over);
            if since >= SignedDuration::from_hours(i64::from(a.missing_after_hours)) {
                out.push(agent_missing(a, state, handed_over, since));
            }
        }
        (Some(last), _) if state.running_on_platform => {
            let since = now.duration_since(last);
            if since > SignedDuration::from_mins(i64::from(a.silent_after_minutes)) {
                out.push(agent_silent(a, last, since));
            }
        }
        _ => {}
    }
    if let Some(v) = agent_tampered(a, state, released_digests) {
        out.push(v);
    }
    out
}

fn agent_missing(
    a: &AgentRule,
    state: &AgentState,
    handed_over: Timestamp,
    since: SignedDuration,
) -> Verdict {
    let hours = since.as_secs() / 3600;
    let (zh, en) = if state.enrolled {
        ("监控软件已注册但从未上报", "its monitoring agent enrolled but never reported")
    } else {
        ("未部署监控软件", "no monitoring agent was installed")
    };
    Verdict {
        kind: FindingKind::AgentMissing,
        summary_zh: format!("主机交付{hours}小时后仍{zh}（时限{}小时）", a.missing_after_hours),
        summary_en: format!(
            "{hours} hours after the host was handed over, {en} (limit {} hours)",
            a.missing_after_hours
        ),
        evidence: json!({
            "handed_over_at": handed_over.to_string(),
            "hours_since_handover": hours,
            "missing_after_hours": a.missing_after_hours,
            "enrolled": state.enrolled,
            "last_report_at": null,
            "running_on_platform": true,
        }),
    }
}

fn agent_silent(a: &AgentRule, last: Timestamp, since: SignedDuration) -> Verdict {
    let minutes = since.as_secs() / 60;
    Verdict {
        kind: FindingKind::AgentSilent,
        summary_zh: format!(
            "主机运行中，但监控软件已{minutes}分钟未上报（时限{}分钟），最后上报于{last}",
            a.silent_after_minutes
        ),
        summary_en: format!(
            "The host runs but its monitoring agent has not reported for {minutes} minutes (limit {}), \
             last at {last}",
            a.silent_after_minutes
        ),
        evidence: json!({
            "last_report_at": last.to_string(),
            "minutes_since_last_report": minutes,
            "silent_after_minutes": a.silent_after_minutes,
            "running_on_platform": true,
        }),
    }
}

fn agent_tampered(a: &AgentRule, state: &AgentState, released: &[String]) -> Option<Verdict> {
    let unknown_digest = !released.is_empty()
        && state.binary_sm3.as_ref().is_some_and(|d| !released.iter().any(|r| r.eq_ignore_ascii_case(d)));
    let skewed = state.clock_skew_secs.is_some_and(|s| s.unsigned_abs() > u64::from(a.max_clock_skew_secs));
    let mut reasons = Vec::new();
    let (mut zh, mut en) = (Vec::new(), Vec::new());
    if unknown_digest {
        reasons.push("unknown_digest");
        zh.push("程序摘要不属于任何已发布版本".to_string());
        en.push("its binary's digest matches no released build".to_string());
    }
    if state.sequence_reset {
        reasons.push("sequence_reset");
        zh.push("上报序号被重置".to_string());
        en.push("its report sequence started over".to_string());
    }
    if let (true, Some(skew)) = (skewed, state.clock_skew_secs) {
        reasons.push("clock_skew");
        zh.push(format!("时钟偏差{skew}秒（上限{}秒）", a.max_clock_skew_secs));
        en.push(format!("its clock is off by {skew} s (limit {} s)", a.max_clock_skew_secs));
    }
    if reasons.is_empty() {
        return None;
    }
    Some(Verdict {
        kind: FindingKind::AgentTampered,
        summary_zh: format!("监控软件疑似被篡改：{}", zh.join("；")),
        summary_en: format!("The monitoring agent looks altered: {}", en.join("; ")),
        evidence: json!({
            "reasons": reasons,
            "binary_sm3": state.binary_sm3,
            "released_digests": released,
            "sequence_reset": state.sequence_reset,
            "clock_skew_secs": state.clock_skew_secs,
            "max_clock_skew_secs": a.max_clock_skew_secs,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn every_optional_threshold_is_unset_by_default_and_takes_a_whole_number() {
        let defaults = serde_json::to_value(Rules::default()).unwrap();
        for path in Rules::OPTIONAL_THRESHOLDS {
            let (rule, field) = path.split_once('.').unwrap();
            assert_eq!(defaults[rule][field], Value::Null, "{path} is unset by default");
            let mut set = defaults.clone();
            set[rule][field] = json!(300);
            let back = serde_json::to_value(serde_json::from_value::<Rules>(set.clone()).unwrap()).unwrap();
            assert_eq!(back, set, "{path} keeps a whole number");
        }
    }

    const TODAY: Date = date(2026, 11, 15);

    /// A day that every rule calls quiet: a zombie's day.
    fn dead(day: Date) -> DailyStats {
        DailyStats {
            day,
            samples: 1440,
            cpu_avg: 0.5,
            cpu_max: 1.5,
            cpu_p95: 1.0,
            memory_avg: 20.0,
            net_bytes: 200_000.0,
            disk_bytes: 1_000_000.0,
            sessions_max: 0,
            accepted: None,
        }
    }

    /// A quiet day that is not a zombie's: someone logged in.
    fn quiet(day: Date) -> DailyStats {
        DailyStats { sessions_max: 1, cpu_p95: 8.0, ..dead(day) }
    }

    fn busy(day: Date) -> DailyStats {
        DailyStats {
            cpu_avg: 45.0,
            cpu_max: 95.0,
            cpu_p95: 80.0,
            net_bytes: 2e9,
            disk_bytes: 5e9,
            sessions_max: 3,
            ..dead(day)
        }
    }

    /// The `n` days ending yesterday, oldest first.
    fn last_days(n: i64) -> Vec<Date> {
        (1..=n).rev().map(|i| TODAY.checked_sub(i.days()).unwrap()).collect()
    }

    fn kinds(v: &[Verdict]) -> Vec<FindingKind> {
        v.iter().map(|v| v.kind).collect()
    }

    /// The rules as if the offices never closed.
    fn every_day_counts(
        rules: &Rules,
        today: Date,
        days: &[DailyStats],
        periodic: Option<&PeriodicLoad>,
    ) -> Vec<Verdict> {
        usage_verdicts(rules, today, days, periodic, &RestDays::none())
    }

    fn shipped_calendar() -> Calendar {
        Calendar::new(Calendar::shipped().unwrap())
    }

    /// An office system around National Day 2026: busy on working days,
    /// quiet on every day the offices are closed (1-7 October and Sunday
    /// the 11th; Saturday the 10th is a working day in lieu).
    fn office_system_in_october() -> (Date, Vec<DailyStats>) {
        let today = date(2026, 10, 15);
        let calendar = shipped_calendar();
        let days = (1..=14)
            .map(|d| date(2026, 10, d))
            .map(|d| if calendar.is_working_day(d).unwrap() { busy(d) } else { quiet(d) })
            .collect();
        (today, days)
    }

    /// Busy days for 60 days, with `quiet_days` quiet ones among the last 14.
    fn busy_with_quiet_recent(quiet_days: usize) -> Vec<DailyStats> {
        let mut days: Vec<_> = last_days(60).into_iter().map(busy).collect();
        for d in days.iter_mut().rev().step_by(3).take(quiet_days) {
            *d = quiet(d.day);
        }
        days
    }

    #[test]
    fn an_office_system_quiet_only_while_the_offices_are_closed_is_not_low_utilisation() {
        let (today, days) = office_system_in_october();
        let rest = RestDays::from_calendar(&shipped_calendar(), date(2026, 10, 14));
        assert!(usage_verdicts(&Rules::default(), today, &days, None, &rest).is_empty());
        // Counting every day, as Trusted Advisor does, the eight closed days
        // would make it one.
        let mut rules = Rules::default();
        rules.low_utilization.count_rest_days = true;
        let v = usage_verdicts(&rules, today, &days, None, &rest);
        assert_eq!(kinds(&v), [FindingKind::LowUtilization]);
        assert_eq!(v[0].evidence["low_utilization"]["qualifying_days"], 8);
    }

    #[test]
    fn quiet_working_days_still_count_and_the_evidence_marks_the_rest_days() {
        let (today, mut days) = office_system_in_october();
        // The Saturday worked in lieu and three ordinary working days.
        for d in [10, 8, 9, 12] {
            days[d - 1] = quiet(days[d - 1].day);
        }
        let rest = RestDays::from_calendar(&shipped_calendar(), date(2026, 10, 14));
        let v = usage_verdicts(&Rules::default(), today, &days, None, &rest);
        assert_eq!(kinds(&v), [FindingKind::LowUtilization]);
        let e = &v[0].evidence["low_utilization"];
        assert_eq!(e["qualifying_days"], 4);
        assert_eq!(e["rest_days_not_counted"], 8);
        assert_eq!(
            e["days"][0],
            json!({"day": "2026-10-01", "cpu_avg": 0.5, "net_bytes": 200_000.0, "qualifies": false, "rest_day": true})
        );
        assert_eq!(e["days"][9]["qualifies"], true, "the 10th is worked in lieu");
        assert!(v[0].summary_en.contains("4 working days had"), "{}", v[0].summary_en);
        assert!(v[0].summary_zh.contains("有4个工作日"), "{}", v[0].summary_zh);
    }

    #[test]
    fn a_year_the_calendar_does_not_know_rests_on_saturday_and_sunday() {
        let rest = RestDays::from_calendar(&Calendar::default(), date(2030, 6, 30));
        assert!(rest.contains(date(2030, 6, 29)), "a Saturday");
        assert!(rest.contains(date(2030, 6, 30)), "a Sunday");
        assert!(!rest.contains(date(2030, 6, 28)), "a Friday");
        assert!(!rest.contains(date(2030, 7, 6)), "after the window nothing is a rest day");
        assert!(!RestDays::none().contains(date(2030, 6, 29)));
    }

    #[test]
    fn four_quiet_days_out_of_fourteen_are_low_utilisation_and_three_are_not() {
        let rules = Rules::default();
        let four = every_day_counts(&rules, TODAY, &busy_with_quiet_recent(4), None);
        assert_eq!(kinds(&four), [FindingKind::LowUtilization]);
        let e = &four[0].evidence;
        assert_eq!(e["rules"], json!(["low_utilization"]));
        assert_eq!(e["low_utilization"]["qualifying_days"], 4);
        assert_eq!(
            e["low_utilization"]["window"],
            json!({"from": "2026-11-01", "to": "2026-11-14", "days": 14})
        );
        assert_eq!(e["low_utilization"]["days"].as_array().unwrap().len(), 14);
        assert!(every_day_counts(&rules, TODAY, &busy_with_quiet_recent(3), None).is_empty());
    }

    #[test]
    fn a_day_exactly_at_the_thresholds_counts_as_quiet_and_a_byte_more_does_not() {
        let rules = Rules::default();
        let mut days = busy_with_quiet_recent(4);
        let edge = days.iter_mut().rev().find(|d| d.sessions_max == 1).unwrap();
        edge.cpu_avg = 10.0;
        edge.net_bytes = (5 * MIB) as f64;
        assert_eq!(kinds(&every_day_counts(&rules, TODAY, &days, None)), [FindingKind::LowUtilization]);
        let edge = days.iter_mut().rev().find(|d| d.sessions_max == 1).unwrap();
        edge.net_bytes += 1.0;
        assert!(every_day_counts(&rules, TODAY, &days, None).is_empty());
    }

    #[test]
    fn today_is_not_complete_and_is_not_evaluated() {
        let rules = Rules::default();
        let mut days = busy_with_quiet_recent(3);
        days.push(quiet(TODAY));
        assert!(every_day_counts(&rules, TODAY, &days, None).is_empty());
    }

    #[test]
    fn a_month_of_low_p95_is_long_term_low_utilisation() {
        let rules = Rules::default();
        let days: Vec<_> =
            last_days(30).into_iter().map(|d| DailyStats { cpu_p95: 15.0, ..busy(d) }).collect();
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::LowUtilization]);
        let e = &v[0].evidence["long_term_low"];
        assert_eq!(v[0].evidence["rules"], json!(["long_term_low"]));
        assert_eq!(e["cpu_p95"], 15.0);
        assert_eq!(e["evaluated_days"], 30);
        assert_eq!(e["window"]["from"], "2026-10-16");
        assert!(v[0].summary_zh.starts_with("使用率长期较低"));
    }

    #[test]
    fn one_busy_day_in_thirty_does_not_hide_long_term_low_use_but_two_do() {
        let rules = Rules::default();
        let mut days: Vec<_> =
            last_days(30).into_iter().map(|d| DailyStats { cpu_p95: 15.0, ..busy(d) }).collect();
        days[10].cpu_p95 = 90.0;
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::LowUtilization]);
        assert_eq!(v[0].evidence["long_term_low"]["days_above_threshold"], json!([days[10].day.to_string()]));
        days[20].cpu_p95 = 90.0;
        assert!(every_day_counts(&rules, TODAY, &days, None).is_empty());
    }

    #[test]
    fn a_month_with_too_many_gaps_is_not_judged_long_term() {
        let rules = Rules::default();
        // 24 of 30 days is the 0.8 coverage; 23 is not.
        let days: Vec<_> =
            last_days(30).into_iter().take(24).map(|d| DailyStats { cpu_p95: 15.0, ..busy(d) }).collect();
        assert_eq!(kinds(&every_day_counts(&rules, TODAY, &days, None)), [FindingKind::LowUtilization]);
        assert!(every_day_counts(&rules, TODAY, &days[1..], None).is_empty());
    }

    #[test]
    fn a_host_without_data_is_not_called_idle() {
        let rules = Rules::default();
        assert!(every_day_counts(&rules, TODAY, &[], None).is_empty());
        let no_samples: Vec<_> =
            last_days(60).into_iter().map(|d| DailyStats { samples: 0, ..dead(d) }).collect();
        assert!(every_day_counts(&rules, TODAY, &no_samples, None).is_empty());
    }

    #[test]
    fn days_without_data_are_excluded_and_named_in_the_evidence() {
        let rules = Rules::default();
        let mut days: Vec<_> = last_days(30).into_iter().map(dead).collect();
        days.remove(29); // yesterday missing
        days[0].samples = 0;
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::Zombie]);
        let e = &v[0].evidence;
        assert_eq!(e["evaluated_days"], 28);
        assert_eq!(
            e["excluded"],
            json!([
                {"day": "2026-10-16", "reason": "no_data"},
                {"day": "2026-11-14", "reason": "no_data"},
            ])
        );
    }

    #[test]
    fn a_zombie_is_reported_as_a_zombie_only() {
        let rules = Rules::default();
        let days: Vec<_> = last_days(60).into_iter().map(dead).collect();
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::Zombie]);
        let e = &v[0].evidence;
        assert_eq!(e["rule"], "zombie");
        assert_eq!(e["window"], json!({"from": "2026-10-16", "to": "2026-11-14", "days": 30}));
        assert_eq!(e["peak"]["sessions_max"], 0);
        assert_eq!(e["days"].as_array().unwrap().len(), 30);
        assert_eq!(e["thresholds"]["net_max_bytes_per_day"], 20 * MIB);
    }

    #[test]
    fn a_single_login_in_the_month_makes_a_quiet_host_no_zombie() {
        let rules = Rules::default();
        let mut days: Vec<_> = last_days(30).into_iter().map(dead).collect();
        days[3].sessions_max = 1;
        assert_eq!(kinds(&every_day_counts(&rules, TODAY, &days, None)), [FindingKind::LowUtilization]);
    }

    #[test]
    fn the_connections_a_zombie_accepted_are_its_evidence_but_decide_only_once_a_bound_is_set() {
        let mut rules = Rules::default();
        let mut days: Vec<_> = last_days(30).into_iter().map(dead).collect();
        // A monitoring poll every five minutes, and on one day a real visitor.
        days.iter_mut().for_each(|d| d.accepted = Some(288));
        days[7].accepted = Some(300);
        days[8].accepted = None;
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::Zombie], "no bound: the count only informs");
        let e = &v[0].evidence;
        assert_eq!(e["peak"]["accepted"], 300);
        assert_eq!(e["days"][7]["accepted"], 300);
        assert_eq!(e["days"][8]["accepted"], Value::Null, "a day its agent did not count");
        assert_eq!(e["thresholds"]["accepted_max_per_day"], Value::Null);

        rules.zombie.accepted_max_per_day = Some(288);
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::LowUtilization], "the visitor's day was not dead");
        days[7].accepted = Some(288);
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::Zombie], "at the bound, and an uncounted day, still dead");
        assert_eq!(v[0].evidence["thresholds"]["accepted_max_per_day"], 288);
    }

    #[test]
    fn a_zombie_day_at_the_thresholds_still_counts_as_idle() {
        let rules = Rules::default();
        let mut days: Vec<_> = last_days(30).into_iter().map(dead).collect();
        days[5] = DailyStats {
            cpu_p95: 2.0,
            net_bytes: (20 * MIB) as f64,
            disk_bytes: (10 * MIB) as f64,
            ..days[5].clone()
        };
        assert_eq!(kinds(&every_day_counts(&rules, TODAY, &days, None)), [FindingKind::Zombie]);
        days[5].cpu_p95 = 2.01;
        assert_eq!(kinds(&every_day_counts(&rules, TODAY, &days, None)), [FindingKind::LowUtilization]);
    }

    fn tax_season() -> PeriodicLoad {
        PeriodicLoad { description: "个税汇算".into(), months: vec![3, 4, 5] }
    }

    #[test]
    fn an_off_season_month_of_a_declared_periodic_load_is_not_idleness() {
        let rules = Rules::default();
        // A whole idle autumn, outside the declared busy months.
        let days: Vec<_> = last_days(60).into_iter().map(dead).collect();
        assert!(every_day_counts(&rules, TODAY, &days, Some(&tax_season())).is_empty());
        // The same host is a zombie without the declaration.
        assert_eq!(kinds(&every_day_counts(&rules, TODAY, &days, None)), [FindingKind::Zombie]);
    }

    #[test]
    fn a_periodic_load_idle_in_its_busy_season_is_judged_on_its_season_alone() {
        let rules = Rules::default();
        // Idle from March to mid-June; busy only in March to May.
        let days: Vec<_> = date(2026, 3, 1).series(1.day()).take(107).map(dead).collect();
        let today = date(2026, 6, 20);
        let v = every_day_counts(&rules, today, &days, Some(&tax_season()));
        assert!(v.is_empty(), "the 30-day window has 11 season days, below 0.8; the 14-day one none");
        let today = date(2026, 5, 31);
        let v = every_day_counts(&rules, today, &days, Some(&tax_season()));
        assert_eq!(kinds(&v), [FindingKind::Zombie]);
        let e = &v[0].evidence;
        assert_eq!(e["periodic_load"]["months"], json!([3, 4, 5]));
        assert_eq!(e["excluded"], json!([]));
        let today = date(2026, 6, 5);
        let v = every_day_counts(&rules, today, &days, Some(&tax_season()));
        assert_eq!(kinds(&v), [FindingKind::Zombie]);
        let excluded = v[0].evidence["excluded"].as_array().unwrap().clone();
        assert_eq!(excluded.len(), 4);
        assert_eq!(excluded[0], json!({"day": "2026-06-01", "reason": "off_season"}));
    }

    #[test]
    fn a_day_listed_twice_counts_once() {
        let rules = Rules::default();
        let mut days = busy_with_quiet_recent(3);
        let twice = days.iter().rev().find(|d| d.sessions_max == 1).unwrap().clone();
        days.push(twice);
        assert!(every_day_counts(&rules, TODAY, &days, None).is_empty());
    }

    #[test]
    fn both_low_rules_firing_make_one_verdict_with_both_in_evidence() {
        let rules = Rules::default();
        let days: Vec<_> = last_days(30).into_iter().map(quiet).collect();
        let v = every_day_counts(&rules, TODAY, &days, None);
        assert_eq!(kinds(&v), [FindingKind::LowUtilization]);
        assert_eq!(v[0].evidence["rules"], json!(["long_term_low", "low_utilization"]));
        assert_eq!(v[0].evidence["low_utilization"]["qualifying_days"], 14);
        assert!(v[0].summary_en.contains("14 working days had daily average CPU"), "{}", v[0].summary_en);
    }

    const NOW: Timestamp = Timestamp::constant(1_794_000_000, 0);

    fn ago(d: SignedDuration) -> Timestamp {
        NOW.checked_sub(d).unwrap()
    }

    fn healthy() -> AgentState {
        AgentState {
            enrolled: true,
            last_report_at: Some(ago(SignedDuration::from_mins(1))),
            handed_over_at: Some(ago(SignedDuration::from_hours(24 * 40))),
            running_on_platform: true,
            binary_sm3: Some("ab12".into()),
            sequence_reset: false,
            clock_skew_secs: Some(2),
        }
    }

    fn released() -> Vec<String> {
        vec!["AB12".into(), "cd34".into()]
    }

    #[test]
    fn a_healthy_agent_raises_nothing() {
        assert!(agent_verdicts(&Rules::default(), NOW, &healthy(), &released()).is_empty());
    }

    #[test]
    fn a_host_handed_over_a_day_ago_without_a_report_misses_its_agent_and_one_a_minute_younger_does_not() {
        let rules = Rules::default();
        let mut s = AgentState { enrolled: false, last_report_at: None, binary_sm3: None, ..healthy() };
        s.handed_over_at = Some(ago(SignedDuration::from_hours(24)));
        let v = agent_verdicts(&rules, NOW, &s, &released());
        assert_eq!(kinds(&v), [FindingKind::AgentMissing]);
        assert_eq!(v[0].evidence["hours_since_handover"], 24);
        assert_eq!(v[0].evidence["enrolled"], false);
        s.handed_over_at = Some(ago(SignedDuration::from_hours(24) - SignedDuration::from_mins(1)));
        assert!(agent_verdicts(&rules, NOW, &s, &released()).is_empty());
    }

    #[test]
    fn a_host_not_yet_handed_over_or_not_running_misses_no_agent() {
        let rules = Rules::default();
        let never = AgentState { last_report_at: None, binary_sm3: None, ..healthy() };
        let provisioning = AgentState { handed_over_at: None, ..never.clone() };
        assert!(agent_verdicts(&rules, NOW, &provisioning, &released()).is_empty());
        let stopped = AgentState { running_on_platform: false, ..never };
        assert!(agent_verdicts(&rules, NOW, &stopped, &released()).is_empty());
    }

    #[test]
    fn reports_stopped_for_more_than_thirty_minutes_are_silence_and_thirty_are_not() {
        let rules = Rules::default();
        let mut s = healthy();
        s.last_report_at = Some(ago(SignedDuration::from_mins(30)));
        assert!(agent_verdicts(&rules, NOW, &s, &released()).is_empty());
        s.last_report_at = Some(ago(SignedDuration::from_mins(31)));
        let v = agent_verdicts(&rules, NOW, &s, &released());
        assert_eq!(kinds(&v), [FindingKind::AgentSilent]);
        assert_eq!(v[0].evidence["minutes_since_last_report"], 31);
        assert_eq!(v[0].evidence["silent_after_minutes"], 30);
    }

    #[test]
    fn a_stopped_host_is_not_silent() {
        let s = AgentState {
            running_on_platform: false,
            last_report_at: Some(ago(SignedDuration::from_hours(72))),
            ..healthy()
        };
        assert!(agent_verdicts(&Rules::default(), NOW, &s, &released()).is_empty());
    }

    #[test]
    fn an_unknown_digest_is_tampering() {
        let s = AgentState { binary_sm3: Some("ffff".into()), ..healthy() };
        let v = agent_verdicts(&Rules::default(), NOW, &s, &released());
        assert_eq!(kinds(&v), [FindingKind::AgentTampered]);
        assert_eq!(v[0].evidence["reasons"], json!(["unknown_digest"]));
        assert_eq!(v[0].evidence["binary_sm3"], "ffff");
    }

    #[test]
    fn digests_are_not_checked_when_no_release_is_listed() {
        let s = AgentState { binary_sm3: Some("ffff".into()), ..healthy() };
        assert!(agent_verdicts(&Rules::default(), NOW, &s, &[]).is_empty());
    }

    #[test]
    fn a_sequence_reset_and_a_skewed_clock_are_tampering_in_one_verdict() {
        let rules = Rules::default();
        let s = AgentState { sequence_reset: true, clock_skew_secs: Some(-301), ..healthy() };
        let v = agent_verdicts(&rules, NOW, &s, &released());
        assert_eq!(kinds(&v), [FindingKind::AgentTampered]);
        assert_eq!(v[0].evidence["reasons"], json!(["sequence_reset", "clock_skew"]));
        let at_limit = AgentState { clock_skew_secs: Some(300), ..healthy() };
        assert!(agent_verdicts(&rules, NOW, &at_limit, &released()).is_empty());
    }

    #[test]
    fn a_silent_agent_that_was_altered_before_it_fell_silent_gets_both_verdicts() {
        let s = AgentState {
            last_report_at: Some(ago(SignedDuration::from_hours(2))),
            sequence_reset: true,
            ..healthy()
        };
        let v = agent_verdicts(&Rules::default(), NOW, &s, &released());
        assert_eq!(kinds(&v), [FindingKind::AgentSilent, FindingKind::AgentTampered]);
    }

    #[test]
    fn the_shipped_defaults_pass_their_own_check() {
        Rules::default().check().unwrap();
    }

    #[test]
    fn rules_with_a_minimum_larger_than_their_window_are_refused_naming_the_field() {
        let mut rules = Rules::default();
        rules.low_utilization.min_days = 15;
        let e = rules.check().unwrap_err();
        assert_eq!(e.first().field, "low_utilization.min_days");
        assert_eq!(e.first().code, "exceeds_window");
    }

    #[test]
    fn rules_out_of_range_are_refused_each_with_its_field() {
        let mut rules = Rules::default();
        rules.long_term_low.window_days = 401;
        rules.zombie.cpu_p95_max_pct = 101.0;
        rules.long_term_low.min_coverage = 0.0;
        rules.low_utilization.cpu_avg_max_pct = f64::NAN;
        rules.agent.silent_after_minutes = 0;
        let fields: Vec<_> = rules.check().unwrap_err().0.into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "low_utilization.cpu_avg_max_pct",
                "long_term_low.window_days",
                "long_term_low.min_coverage",
                "zombie.cpu_p95_max_pct",
                "agent.silent_after_minutes",
            ]
        );
    }

    #[test]
    fn a_partial_configuration_takes_the_defaults_for_the_rest() {
        let rules: Rules = serde_json::from_value(json!({"zombie": {"window_days": 60}})).unwrap();
        assert_eq!(rules.zombie.window_days, 60);
        assert_eq!(rules.zombie.cpu_p95_max_pct, 2.0);
        assert_eq!(rules.low_utilization, LowUtilizationRule::default());
        assert!(serde_json::from_value::<Rules>(json!({"zombie": {"windw_days": 60}})).is_err());
    }
}
