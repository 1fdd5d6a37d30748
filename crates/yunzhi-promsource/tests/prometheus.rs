//! `PromSource` against a real Prometheus (Debian's 2.42) backfilled with
//! three hosts over three Beijing days: a busy one, an idle one, a zombie.
//!
//! Tolerances: the generated samples sit exactly on the evaluation grid, so
//! every `rate` window and every `increase([1d])` window of Prometheus 2.x
//! (closed at both ends) starts and ends on a sample and no extrapolation
//! happens; the figures then agree to floating-point rounding, and the
//! percentages are held to 1e-6 points. The byte counts get 1e-6 relative
//! too; on Prometheus 3.x or VictoriaMetrics the half-open windows leave the
//! first sample out and extrapolate the first step of the day from the
//! day's average rate, which would move a byte count by at most one step's
//! deviation from the average, about 0.1 % here.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::{DAYS, Expected, Host, RATE_WINDOW, T_END, expected, hosts, openmetrics, start};
use yunzhi_domain::efficiency::DailyStats;
use yunzhi_promsource::{Error, HostKey, PromSource, PromSourceConfig};

fn config() -> PromSourceConfig {
    // The generated series are sampled every 5 minutes; a rate needs two
    // samples, so the window is two steps (the 5-minute default is for
    // node_exporter scraped every minute).
    PromSourceConfig {
        rate_window_secs: RATE_WINDOW as u32,
        timeout: Duration::from_secs(30),
        ..Default::default()
    }
}

fn key(h: &Host) -> HostKey {
    match h.resource_id {
        Some(id) => HostKey::Resource(id.to_owned()),
        None => HostKey::Instance(h.instance.to_owned()),
    }
}

fn day_end(day: jiff::civil::Date, offset_hours: i64) -> i64 {
    let midnight = day.tomorrow().expect("tomorrow").to_datetime(jiff::civil::Time::midnight());
    midnight.to_zoned(jiff::tz::TimeZone::UTC).expect("zoned").timestamp().as_second() - offset_hours * 3600
}

fn assert_close(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!((got - want).abs() <= tolerance, "{what}: got {got}, want {want} (tolerance {tolerance})");
}

fn assert_day(host: &HostKey, got: &DailyStats, want: &Expected) {
    let at = format!("{host} on {}", got.day);
    assert_eq!(got.samples, want.samples, "{at}: samples");
    assert_close(&format!("{at}: cpu_avg"), got.cpu_avg, want.cpu_avg, 1e-6);
    assert_close(&format!("{at}: cpu_max"), got.cpu_max, want.cpu_max, 1e-6);
    assert_close(&format!("{at}: cpu_p95"), got.cpu_p95, want.cpu_p95, 1e-6);
    assert_close(&format!("{at}: memory_avg"), got.memory_avg, want.memory_avg, 1e-6);
    assert_close(&format!("{at}: net_bytes"), got.net_bytes, want.net_bytes, want.net_bytes * 1e-6);
    assert_close(&format!("{at}: disk_bytes"), got.disk_bytes, want.disk_bytes, want.disk_bytes * 1e-6);
    assert_eq!(got.sessions_max, want.sessions_max, "{at}: sessions_max");
    assert_eq!(got.accepted.map(|n| n as f64), want.accepted.map(f64::round), "{at}: accepted");
}

fn assert_all(
    stats: &HashMap<HostKey, Vec<DailyStats>>,
    hosts: &[Host],
    days: &[jiff::civil::Date],
    offset: i64,
) {
    assert_eq!(stats.len(), hosts.len(), "one entry per host: {:?}", stats.keys());
    for h in hosts {
        let k = key(h);
        let got = stats.get(&k).unwrap_or_else(|| panic!("{k} missing from {:?}", stats.keys()));
        assert_eq!(got.iter().map(|d| d.day).collect::<Vec<_>>(), days, "{k}: the days asked for, in order");
        for d in got {
            assert_day(&k, d, &expected(h, day_end(d.day, offset)));
        }
    }
}

#[tokio::test]
async fn daily_stats_match_the_figures_computed_from_the_backfilled_series() {
    let hosts = hosts();
    let prometheus = start(&openmetrics(&hosts)).await;
    let source = PromSource::new(&prometheus.url, config()).expect("source");

    let started = Instant::now();
    let stats = source.daily_stats(DAYS[0], DAYS[2], 8).await.expect("daily stats");
    println!("daily_stats: 3 hosts x 3 days in {:?} (10 query_range requests)", started.elapsed());

    assert_all(&stats, &hosts, &DAYS, 8);
    // The shapes the rules look for: the busy host is busy, the zombie quiet.
    let busy = &stats[&HostKey::Resource("vm-busy".into())];
    assert!(busy.iter().all(|d| d.cpu_avg > 10.0 && d.sessions_max == 3));
    let zombie = &stats[&HostKey::Resource("vm-zombie".into())];
    assert!(zombie.iter().all(|d| d.cpu_p95 < 2.0 && d.net_bytes < 1e6 && d.disk_bytes < 1e6));
}

#[tokio::test]
async fn days_end_at_local_midnight_of_the_offset_asked_for() {
    let hosts = hosts();
    let prometheus = start(&openmetrics(&hosts)).await;
    let source = PromSource::new(&prometheus.url, config()).expect("source");

    // The busy host's level changes at Beijing midnight (20 %, 80 %, 50 %),
    // so a day cut at any other instant mixes two levels.
    let beijing = source.daily_stats(DAYS[1], DAYS[1], 8).await.expect("beijing");
    let busy = &beijing[&HostKey::Resource("vm-busy".into())][0];
    assert_eq!(busy.day, DAYS[1]);
    let level_only: f64 = 100.0 * (0.80 + 0.80 / 2.0) / 2.0;
    assert!(busy.cpu_avg > level_only, "3 March (Beijing) is the 80 % day: {}", busy.cpu_avg);

    // UTC days over the same data: 2 March UTC is 08:00 2 March to 08:00
    // 3 March Beijing, two-thirds at the 20 % level and one third at 80 %.
    let utc_days = [DAYS[0], DAYS[1]];
    let utc = source.daily_stats(utc_days[0], utc_days[1], 0).await.expect("utc");
    assert_all(&utc, &hosts, &utc_days, 0);
    let utc_busy = &utc[&HostKey::Resource("vm-busy".into())];
    assert!((utc_busy[1].cpu_avg - busy.cpu_avg).abs() > 5.0, "UTC and Beijing days differ");
}

#[tokio::test]
async fn the_fleet_cpu_p95_is_one_query_matching_the_samples() {
    let hosts = hosts();
    let prometheus = start(&openmetrics(&hosts)).await;
    let source = PromSource::new(&prometheus.url, config()).expect("source");

    let started = Instant::now();
    let p95 = source.fleet_cpu_p95(DAYS[2], 3, 8).await.expect("fleet p95");
    println!("fleet_cpu_p95: 3 hosts x 3 days in {:?} (one instant query)", started.elapsed());

    assert_eq!(p95.len(), hosts.len());
    let end = day_end(DAYS[2], 8);
    for h in &hosts {
        let points = support::cpu_points(h, end - 3 * 86_400, end);
        assert_eq!(points.len(), 3 * 288);
        assert_close(&format!("{} p95", key(h)), p95[&key(h)], support::prom_quantile(0.95, &points), 1e-6);
    }
}

#[tokio::test]
async fn a_day_outside_the_data_has_no_samples_rather_than_zero_use() {
    let hosts = hosts();
    let prometheus = start(&openmetrics(&hosts)).await;
    let source = PromSource::new(&prometheus.url, config()).expect("source");

    let next = DAYS[2].tomorrow().expect("tomorrow");
    let stats = source.daily_stats(DAYS[2], next, 8).await.expect("daily stats");
    for days in stats.values() {
        assert_eq!(days.len(), 2);
        assert!(days[0].samples > 0);
        assert_eq!(days[1].samples, 0, "{:?}", days[1]);
    }
}

#[tokio::test]
async fn prometheus_error_text_reaches_the_caller() {
    let prometheus = start(&openmetrics(&hosts())).await;
    let source = PromSource::new(&prometheus.url, config()).expect("source");

    match source.query("rate(node_cpu_seconds_total[5m]", support::T_END).await {
        Err(Error::Api { error_type, message }) => {
            assert_eq!(error_type, "bad_data");
            assert!(message.contains("unclosed") || message.contains("parse error"), "{message}");
        }
        other => panic!("expected Prometheus' parse error, got {other:?}"),
    }
}

#[tokio::test]
async fn each_host_is_last_seen_at_its_newest_scrape_to_the_minute_lately_and_the_hour_before() {
    let hosts = hosts();
    let prometheus = start(&openmetrics(&hosts)).await;
    let source = PromSource::new(&prometheus.url, config()).expect("source");
    let day: i64 = 86_400;
    let lookback = 30 * 86_400;

    // Ten minutes after the last scrape, beyond the store's 5-minute
    // look-back: the recent query still dates it exactly.
    let seen = source.last_seen(T_END + 600, lookback).await.expect("last seen");
    assert_eq!(seen.len(), hosts.len(), "{seen:?}");
    for h in &hosts {
        assert_eq!(seen[&key(h)], T_END, "{}", key(h));
    }
    // Five hours later only the hourly query sees it; the data ends on the hour.
    let seen = source.last_seen(T_END + 5 * 3600 + 1234, lookback).await.expect("last seen");
    assert!(hosts.iter().all(|h| seen[&key(h)] == T_END), "{seen:?}");
    // Asked in the middle of the data, the newest scrape before the instant.
    let seen = source.last_seen(T_END - day - 30, lookback).await.expect("last seen");
    assert!(hosts.iter().all(|h| seen[&key(h)] == T_END - day - 300), "{seen:?}");
    // Beyond the look-back nothing is seen.
    let seen = source.last_seen(T_END + 40 * day, lookback).await.expect("last seen");
    assert!(seen.is_empty(), "{seen:?}");
}
