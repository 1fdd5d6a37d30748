//! Prometheus remote-write 1.0 (`POST /api/v1/write`): the messages, and
//! how node_exporter's series become host readings.
//!
//! A request is snappy-compressed (block format) protobuf `WriteRequest`.
//! Prometheus splits a host's series over several concurrent shards, so one
//! request rarely holds all of a host's series for a moment: requests are
//! kept durably in an inbox when they arrive (that is what is
//! acknowledged), then fed in order to an [`Assembler`], which turns
//! counters into rates per series and gathers a host's series per scrape
//! time, emitting a reading once no more of that moment can be on its way.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use yunzhi_domain::monitoring::Reading;

/// `prometheus.WriteRequest` (remote-write 1.0); metadata (3) is skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The most a request may inflate to: remote-write batches are small
/// (Prometheus sends at most a few thousand samples at a time).
const MAX_DECODED: usize = 64 * 1024 * 1024;

/// Decodes a request body, or says why it cannot be read.
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let len = snap::raw::decompress_len(body).map_err(|e| format!("not snappy (block format): {e}"))?;
    if len > MAX_DECODED {
        return Err(format!("the request inflates to {len} bytes; at most {MAX_DECODED} are taken"));
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(|e| format!("not snappy: {e}"))?;
    prost::Message::decode(raw.as_slice()).map_err(|e| format!("not a remote-write WriteRequest: {e}"))
}

fn label<'a>(s: &'a TimeSeries, name: &str) -> Option<&'a str> {
    s.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
}

/// What a host's series said about one scrape time.
#[derive(Debug, Default, Clone, Copy)]
struct Parts {
    /// When its first sample arrived (the caller's clock, ms).
    arrived: i64,
    cpu_busy: f64,
    cpu_total: f64,
    memory_available: Option<f64>,
    memory_total: Option<f64>,
    net_rx: f64,
    net_tx: f64,
    disk_read: f64,
    disk_write: f64,
}

/// What a series is for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    CpuBusy,
    CpuIdle,
    MemAvailable,
    MemTotal,
    NetRx,
    NetTx,
    DiskRead,
    DiskWrite,
}

fn role_of(s: &TimeSeries) -> Option<Role> {
    Some(match label(s, "__name__")? {
        "node_cpu_seconds_total" => match label(s, "mode") {
            Some("idle" | "iowait") => Role::CpuIdle,
            _ => Role::CpuBusy,
        },
        "node_memory_MemAvailable_bytes" => Role::MemAvailable,
        "node_memory_MemTotal_bytes" => Role::MemTotal,
        "node_network_receive_bytes_total" if label(s, "device") != Some("lo") => Role::NetRx,
        "node_network_transmit_bytes_total" if label(s, "device") != Some("lo") => Role::NetTx,
        "node_disk_read_bytes_total" => Role::DiskRead,
        "node_disk_written_bytes_total" => Role::DiskWrite,
        _ => return None,
    })
}

/// Turns remote-write series into host readings, in order.
#[derive(Debug, Default)]
pub struct Assembler {
    /// The last value of every counter, by its labels, and when.
    last: HashMap<String, (i64, f64)>,
    /// Moments not yet complete, by host and scrape time (ms).
    pending: BTreeMap<(i64, i64), Parts>,
    /// The newest scrape time seen.
    newest: i64,
}

impl Assembler {
    /// Feeds one request, arrived at `arrived` (ms on the caller's clock).
    /// `host` maps a series' labels to its resource (`yunzhi_resource_id`,
    /// else `instance`). Returns the samples not placed: their host is unknown.
    pub fn feed(
        &mut self,
        req: &WriteRequest,
        arrived: i64,
        host: impl Fn(&TimeSeries) -> Option<i64>,
    ) -> usize {
        let mut unplaced = 0;
        for s in &req.timeseries {
            let Some(role) = role_of(s) else { continue };
            let Some(resource) = host(s) else {
                unplaced += s.samples.len();
                continue;
            };
            let key = series_key(resource, s);
            for sample in &s.samples {
                if !sample.value.is_finite() {
                    continue;
                }
                self.newest = self.newest.max(sample.timestamp);
                let parts = self
                    .pending
                    .entry((resource, sample.timestamp))
                    .or_insert_with(|| Parts { arrived, ..Parts::default() });
                match role {
                    Role::MemAvailable => parts.memory_available = Some(sample.value),
                    Role::MemTotal => parts.memory_total = Some(sample.value),
                    counter => {
                        let previous = self.last.insert(key.clone(), (sample.timestamp, sample.value));
                        let Some((t0, v0)) = previous else { continue };
                        if sample.timestamp <= t0 {
                            // Older or repeated: keep the newest as the base.
                            self.last.insert(key.clone(), (t0, v0));
                            continue;
                        }
                        // A counter that went down was reset: it counted from zero.
                        let delta = if sample.value >= v0 { sample.value - v0 } else { sample.value };
                        let secs = (sample.timestamp - t0) as f64 / 1000.0;
                        match counter {
                            Role::CpuBusy => {
                                parts.cpu_busy += delta;
                                parts.cpu_total += delta;
                            }
                            Role::CpuIdle => parts.cpu_total += delta,
                            Role::NetRx => parts.net_rx += delta / secs,
                            Role::NetTx => parts.net_tx += delta / secs,
                            Role::DiskRead => parts.disk_read += delta / secs,
                            Role::DiskWrite => parts.disk_write += delta / secs,
                            Role::MemAvailable | Role::MemTotal => {}
                        }
                    }
                }
            }
        }
        unplaced
    }

    /// The readings of every moment that can no longer grow: whose first
    /// sample arrived at or before `settled` (the caller's clock). The shards
    /// of a sender deliver one moment's series close together in time, even
    /// when the moment itself is old (a sender catching up), so a moment
    /// that has waited a while has all it will get. Moments without CPU time
    /// are dropped (the first scrape after a start only sets the counters' base).
    pub fn emit(&mut self, settled: i64) -> Vec<(i64, Reading)> {
        let ready: Vec<(i64, i64)> =
            self.pending.iter().filter(|(_, p)| p.arrived <= settled).map(|(k, _)| *k).collect();
        let mut out = Vec::with_capacity(ready.len());
        for key in ready {
            let Some(p) = self.pending.remove(&key) else { continue };
            if p.cpu_total <= 0.0 {
                continue;
            }
            let Ok(at) = Timestamp::from_millisecond(key.1) else { continue };
            let memory_pct = match (p.memory_available, p.memory_total) {
                (Some(a), Some(t)) if t > 0.0 => (100.0 * (1.0 - a / t)).clamp(0.0, 100.0),
                _ => 0.0,
            };
            out.push((
                key.0,
                Reading {
                    at,
                    cpu_pct: (100.0 * p.cpu_busy / p.cpu_total).clamp(0.0, 100.0),
                    memory_pct,
                    disk_read_bps: p.disk_read,
                    disk_write_bps: p.disk_write,
                    net_rx_bps: p.net_rx,
                    net_tx_bps: p.net_tx,
                    sessions: 0,
                    listening: 0,
                },
            ));
        }
        out
    }

    /// The newest scrape time all of whose readings were emitted.
    pub fn emitted_up_to(&self) -> i64 {
        self.pending.keys().map(|(_, ts)| *ts - 1).min().unwrap_or(self.newest)
    }
}

/// A series' identity: its host and its labels but the host's own.
fn series_key(resource: i64, s: &TimeSeries) -> String {
    let mut labels: Vec<_> = s
        .labels
        .iter()
        .filter(|l| l.name != "instance" && l.name != "job" && l.name != "yunzhi_resource_id")
        .map(|l| format!("{}={}", l.name, l.value))
        .collect();
    labels.sort();
    format!("{resource}|{}", labels.join(","))
}

/// The resource a series is about: its `yunzhi_resource_id` label, else the
/// host part of its `instance` looked up in `by_host`.
pub fn host_of(s: &TimeSeries, by_host: &HashMap<String, i64>) -> Option<i64> {
    if let Some(id) = label(s, "yunzhi_resource_id") {
        return id.parse().ok();
    }
    let instance = label(s, "instance")?;
    let host = instance.rsplit_once(':').map_or(instance, |(h, _)| h);
    by_host.get(host).copied()
}

/// Turns the inbox into readings, in order, for as long as the server runs.
/// An inbox entry is marked processed only once every moment it held was
/// emitted and stored; after a crash the unmarked entries are fed again
/// (the readings already stored are skipped by the writer).
pub fn spawn(
    state: crate::state::AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut asm = Assembler::default();
        let mut fed: std::collections::VecDeque<(i64, i64)> = std::collections::VecDeque::new();
        let mut last_fed = 0;
        let clock = tokio::time::Instant::now();
        let settle = state.settings.remote_write_idle;
        loop {
            let elapsed = |at: tokio::time::Instant| at.duration_since(clock).as_millis() as i64;
            let now = elapsed(tokio::time::Instant::now());
            let settled = now - settle.as_millis() as i64;
            match step(&state, &mut asm, &mut fed, &mut last_fed, now, settled).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "remote-write readings could not be stored; trying again")
                }
            }
            tokio::select! {
                _ = state.remote_write.notified() => {}
                _ = tokio::time::sleep((settle / 2).clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(5))) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Hosts by the name a Prometheus `instance` label carries: the agent's
/// hostname, or the resource's own name.
async fn hosts_by_name(state: &crate::state::AppState) -> anyhow::Result<HashMap<String, i64>> {
    let mut by = HashMap::new();
    for live in state.store.live_hosts().await? {
        by.insert(live.resource.name.clone(), live.resource.id);
    }
    for a in state.store.agents_all().await? {
        if let Some(h) = a.hostname {
            by.insert(h, a.resource_id);
        }
    }
    Ok(by)
}

/// Feeds what is new in the inbox (arrived at `arrival` on the
/// processor's clock), stores the moments settled by `settled`, marks what
/// is done. `Ok(true)` when there may be more to read at once.
async fn step(
    state: &crate::state::AppState,
    asm: &mut Assembler,
    fed: &mut std::collections::VecDeque<(i64, i64)>,
    last_fed: &mut i64,
    arrival: i64,
    settled: i64,
) -> anyhow::Result<bool> {
    const PAGE: i64 = 200;
    let entries: Vec<_> = state
        .store
        .inbox_pending(PAGE + fed.len() as i64)
        .await?
        .into_iter()
        .filter(|e| e.id > *last_fed)
        .collect();
    let more = entries.len() as i64 >= PAGE;
    if !entries.is_empty() {
        let by_host = hosts_by_name(state).await?;
        let mut unplaced = 0;
        for e in &entries {
            match decode(&e.body) {
                Ok(req) => {
                    let newest = req.timeseries.iter().flat_map(|s| &s.samples).map(|s| s.timestamp).max();
                    unplaced += asm.feed(&req, arrival, |s| host_of(s, &by_host));
                    fed.push_back((e.id, newest.unwrap_or(0)));
                }
                // Checked on arrival; a body that no longer reads is skipped, not retried forever.
                Err(why) => {
                    tracing::error!(entry = e.id, %why, "an inbox entry cannot be read; skipped");
                    fed.push_back((e.id, 0));
                }
            }
            *last_fed = e.id;
        }
        if unplaced > 0 {
            tracing::warn!(
                samples = unplaced,
                "remote-write samples for hosts Yunzhi does not know were left out"
            );
        }
    }
    let now = state.now();
    let mut per_host: BTreeMap<i64, Vec<Reading>> = BTreeMap::new();
    for (resource, r) in asm.emit(settled) {
        per_host.entry(resource).or_default().push(r);
    }
    for (resource, readings) in per_host {
        store_readings(state, resource, readings, now).await?;
    }
    let upto = asm.emitted_up_to();
    let mut done = None;
    while let Some(&(id, newest)) = fed.front() {
        if newest > upto {
            break;
        }
        done = Some(id);
        fed.pop_front();
    }
    if let Some(id) = done {
        let mut tx = state.store.begin().await?;
        tx.inbox_done(id, now.as_millisecond()).await?;
        tx.inbox_prune((now - jiff::SignedDuration::from_hours(24)).as_millisecond()).await?;
        tx.commit().await?;
    }
    Ok(more)
}

async fn store_readings(
    state: &crate::state::AppState,
    resource: i64,
    readings: Vec<Reading>,
    now: Timestamp,
) -> anyhow::Result<()> {
    let batch = crate::ingest::Batch {
        resource_id: resource,
        sequence: None,
        boot_id: None,
        version: None,
        binary_sm3: None,
        sent_at: now,
        received_at: now,
        dropped_batches: 0,
        readings,
        source: "remote_write",
    };
    state.ingest.submit_and_wait(batch).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series of `name` with extra labels for resource 7, sampled at `points`.
    pub fn series(name: &str, extra: &[(&str, &str)], points: &[(i64, f64)]) -> TimeSeries {
        let mut labels = vec![
            Label { name: "__name__".into(), value: name.into() },
            Label { name: "instance".into(), value: "web-01:9100".into() },
        ];
        labels.extend(extra.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }));
        TimeSeries {
            labels,
            samples: points.iter().map(|(t, v)| Sample { value: *v, timestamp: *t }).collect(),
        }
    }

    fn hosts() -> HashMap<String, i64> {
        HashMap::from([("web-01".to_owned(), 7)])
    }

    const T0: i64 = 1_780_000_000_000;
    const MIN: i64 = 60_000;

    #[test]
    fn cpu_use_is_the_busy_share_of_cpu_seconds_across_a_hosts_cpus_and_modes() {
        let mut a = Assembler::default();
        // Two CPUs over a minute: cpu0 30 s busy, cpu1 15 s busy.
        let req = WriteRequest {
            timeseries: vec![
                series(
                    "node_cpu_seconds_total",
                    &[("cpu", "0"), ("mode", "user")],
                    &[(T0, 100.0), (T0 + MIN, 130.0)],
                ),
                series(
                    "node_cpu_seconds_total",
                    &[("cpu", "0"), ("mode", "idle")],
                    &[(T0, 500.0), (T0 + MIN, 530.0)],
                ),
                series(
                    "node_cpu_seconds_total",
                    &[("cpu", "1"), ("mode", "system")],
                    &[(T0, 10.0), (T0 + MIN, 25.0)],
                ),
                series(
                    "node_cpu_seconds_total",
                    &[("cpu", "1"), ("mode", "idle")],
                    &[(T0, 900.0), (T0 + MIN, 945.0)],
                ),
                series("node_memory_MemTotal_bytes", &[], &[(T0 + MIN, 8e9)]),
                series("node_memory_MemAvailable_bytes", &[], &[(T0 + MIN, 6e9)]),
                series(
                    "node_network_receive_bytes_total",
                    &[("device", "eth0")],
                    &[(T0, 0.0), (T0 + MIN, 60_000.0)],
                ),
                series(
                    "node_network_receive_bytes_total",
                    &[("device", "lo")],
                    &[(T0, 0.0), (T0 + MIN, 9e9)],
                ),
            ],
        };
        assert_eq!(a.feed(&req, 0, |s| host_of(s, &hosts())), 0);
        let out = a.emit(0);
        assert_eq!(out.len(), 1, "the first scrape only sets the counters' base: {out:?}");
        let (resource, r) = out[0];
        assert_eq!(resource, 7);
        assert!((r.cpu_pct - 37.5).abs() < 1e-9, "{r:?}");
        assert!((r.memory_pct - 25.0).abs() < 1e-9);
        assert!((r.net_rx_bps - 1000.0).abs() < 1e-9, "loopback left out: {r:?}");
    }

    #[test]
    fn a_hosts_series_split_over_two_requests_make_one_reading() {
        let mut a = Assembler::default();
        let busy = series(
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "user")],
            &[(T0, 0.0), (T0 + MIN, 30.0)],
        );
        let idle = series(
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "idle")],
            &[(T0, 0.0), (T0 + MIN, 30.0)],
        );
        a.feed(&WriteRequest { timeseries: vec![busy] }, 0, |s| host_of(s, &hosts()));
        a.feed(&WriteRequest { timeseries: vec![idle] }, 5, |s| host_of(s, &hosts()));
        let out = a.emit(10);
        assert_eq!(out.len(), 1);
        assert!((out[0].1.cpu_pct - 50.0).abs() < 1e-9);
    }

    #[test]
    fn a_moment_waits_until_it_has_settled_for_the_other_shards() {
        let mut a = Assembler::default();
        let busy = series(
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "user")],
            &[(T0, 0.0), (T0 + MIN, 30.0), (T0 + 2 * MIN, 40.0)],
        );
        a.feed(&WriteRequest { timeseries: vec![busy] }, 1_000, |s| host_of(s, &hosts()));
        // Arrived at 1 s: not settled at 0.5 s, settled at 1 s.
        assert!(a.emit(500).is_empty());
        let out = a.emit(1_000);
        let times: Vec<_> = out.iter().map(|(_, r)| r.at.as_millisecond()).collect();
        assert_eq!(times, [T0 + MIN, T0 + 2 * MIN]);
    }

    #[test]
    fn a_reset_counter_counts_from_zero_and_unknown_hosts_are_counted_not_guessed() {
        let mut a = Assembler::default();
        let busy = series(
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "user")],
            &[(T0, 1000.0), (T0 + MIN, 6.0)],
        );
        let idle = series(
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "idle")],
            &[(T0, 1000.0), (T0 + MIN, 1054.0)],
        );
        a.feed(&WriteRequest { timeseries: vec![busy, idle] }, 0, |s| host_of(s, &hosts()));
        let out = a.emit(0);
        assert!((out[0].1.cpu_pct - 10.0).abs() < 1e-9, "{out:?}");
        let mut stranger = series("node_cpu_seconds_total", &[("mode", "user")], &[(T0, 1.0)]);
        stranger.labels[1].value = "db-99:9100".into();
        assert_eq!(a.feed(&WriteRequest { timeseries: vec![stranger] }, 0, |s| host_of(s, &hosts())), 1);
    }

    #[test]
    fn a_body_that_is_not_snappy_protobuf_is_refused_with_the_reason() {
        assert!(decode(b"plain text").unwrap_err().contains("snappy"));
        let req = WriteRequest { timeseries: vec![series("up", &[], &[(T0, 1.0)])] };
        let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(&req)).unwrap();
        assert_eq!(decode(&body).unwrap(), req);
    }
}
