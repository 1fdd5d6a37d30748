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
//! Requests are read in place ([`wire`]), never built into owned messages.

pub mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use yunzhi_domain::monitoring::Reading;

pub use wire::Series;

/// `prometheus.WriteRequest` (remote-write 1.0), for senders and tests that
/// build requests; the server reads them with [`wire`]. Metadata (3) is left out.
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

/// The protobuf bytes of a request body, or why it cannot be read.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(body).map_err(|e| format!("not snappy (block format): {e}"))?;
    if len > MAX_DECODED {
        return Err(format!("the request inflates to {len} bytes; at most {MAX_DECODED} are taken"));
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(|e| format!("not snappy: {e}"))
}

/// Checks that a body reads as a whole `WriteRequest`; the samples it holds.
pub fn check(body: &[u8]) -> Result<usize, String> {
    let raw = decompress(body)?;
    wire::for_each_series(&raw, |_| {}).map_err(|e| format!("not a remote-write WriteRequest: {e}"))
}

/// Decodes a body into an owned message (for tools and tests).
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = decompress(body)?;
    prost::Message::decode(raw.as_slice()).map_err(|e| format!("not a remote-write WriteRequest: {e}"))
}

/// What a host's series said about one scrape time.
#[derive(Debug, Default, Clone, Copy)]
struct Parts {
    cpu_busy: f64,
    cpu_total: f64,
    memory_available: Option<f64>,
    memory_total: Option<f64>,
    net_rx: f64,
    net_tx: f64,
    disk_read: f64,
    disk_write: f64,
    /// TCP connections accepted since the previous scrape, once known.
    accepted: Option<f64>,
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
    Accepted,
}

fn role_of(s: &Series<'_>) -> Option<Role> {
    Some(match s.label("__name__")? {
        "node_cpu_seconds_total" => match s.label("mode") {
            Some("idle" | "iowait") => Role::CpuIdle,
            _ => Role::CpuBusy,
        },
        "node_memory_MemAvailable_bytes" => Role::MemAvailable,
        "node_memory_MemTotal_bytes" => Role::MemTotal,
        "node_network_receive_bytes_total" if s.label("device") != Some("lo") => Role::NetRx,
        "node_network_transmit_bytes_total" if s.label("device") != Some("lo") => Role::NetTx,
        "node_disk_read_bytes_total" => Role::DiskRead,
        "node_disk_written_bytes_total" => Role::DiskWrite,
        // The netstat collector's copy of the kernel's TCP PassiveOpens.
        "node_netstat_Tcp_PassiveOpens" => Role::Accepted,
        _ => return None,
    })
}

/// Maps keyed by values that are already hashes (or small ids mixed by
/// [`mix`]) need no second hashing.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = mix(self.0, u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix(self.0, v);
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = mix(self.0, v as u64);
    }
}

type Fast<K, V> = HashMap<K, V, BuildHasherDefault<Prehashed>>;

/// One multiply-rotate round (the constant is 2⁶⁴ / φ): cheap, and spreads
/// every input bit over the word, which is all a table needs.
fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn mix_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    // The length keeps "ab" + "" apart from "a" + "b".
    mix(mix(h, u64::from_le_bytes(tail)), bytes.len() as u64)
}

/// A series' identity: its host and its labels but the host's own. Labels
/// are combined by addition, so their order does not matter. 64 bits: two
/// of a site's series (thousands per host) share a key with a chance of
/// about one in a billion per ten million series.
fn series_key(resource: i64, s: &Series<'_>) -> u64 {
    let mut sum = 0u64;
    for (name, value) in s.labels {
        if matches!(*name, b"instance" | b"job" | b"yunzhi_resource_id") {
            continue;
        }
        sum = sum.wrapping_add(mix_bytes(mix_bytes(0x5eed, name), value));
    }
    mix(sum, resource as u64)
}

/// What feeding a request did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Samples not placed: their host is unknown.
    pub unplaced: usize,
    /// The newest sample time in the request (ms); 0 when it held none.
    pub newest: i64,
}

/// Turns remote-write series into host readings, in order.
#[derive(Default)]
pub struct Assembler {
    /// The last value of every counter, by its series' key, and when.
    last: Fast<u64, (i64, f64)>,
    /// Moments not yet complete, by host and scrape time (ms).
    pending: Fast<(i64, i64), Parts>,
    /// The pending moments in the order they first arrived (arrival times
    /// only grow), so that the settled ones are taken from the front
    /// rather than found by a scan of every pending moment.
    arrivals: VecDeque<(i64, (i64, i64))>,
    /// How many pending moments each scrape time has: the oldest is the
    /// first key.
    pending_times: std::collections::BTreeMap<i64, usize>,
    /// The newest scrape time seen.
    newest: i64,
}

impl Assembler {
    /// Feeds one request (its protobuf bytes, read through [`check`] when
    /// it arrived), arrived at `arrived` (ms on the caller's clock). `host`
    /// maps a series to its resource (`yunzhi_resource_id`, else `instance`).
    pub fn feed(
        &mut self,
        request: &[u8],
        arrived: i64,
        host: impl Fn(&Series<'_>) -> Option<i64>,
    ) -> Result<Fed, String> {
        let mut fed = Fed::default();
        wire::for_each_checked_series(request, |s| {
            fed.newest = s.samples.iter().map(|(t, _)| *t).fold(fed.newest, i64::max);
            let Some(role) = role_of(&s) else { return };
            let Some(resource) = host(&s) else {
                fed.unplaced += s.samples.len();
                return;
            };
            let key = series_key(resource, &s);
            for &(timestamp, value) in s.samples {
                if value.is_finite() {
                    self.add(resource, key, role, timestamp, value, arrived);
                }
            }
        })?;
        Ok(fed)
    }

    fn add(&mut self, resource: i64, key: u64, role: Role, timestamp: i64, value: f64, arrived: i64) {
        self.newest = self.newest.max(timestamp);
        let parts = match self.pending.entry((resource, timestamp)) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => {
                self.arrivals.push_back((arrived, (resource, timestamp)));
                *self.pending_times.entry(timestamp).or_default() += 1;
                new.insert(Parts::default())
            }
        };
        match role {
            Role::MemAvailable => parts.memory_available = Some(value),
            Role::MemTotal => parts.memory_total = Some(value),
            counter => {
                let base = self.last.entry(key).or_insert((timestamp, value));
                let (t0, v0) = *base;
                if timestamp <= t0 {
                    // The first sample, or an older or repeated one: the newest stays the base.
                    return;
                }
                *base = (timestamp, value);
                // A counter that went down was reset: it counted from zero.
                let delta = if value >= v0 { value - v0 } else { value };
                let secs = (timestamp - t0) as f64 / 1000.0;
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
                    Role::Accepted => *parts.accepted.get_or_insert(0.0) += delta,
                    Role::MemAvailable | Role::MemTotal => {}
                }
            }
        }
    }

    /// The readings of every moment that can no longer grow: whose first
    /// sample arrived at or before `settled` (the caller's clock), by host
    /// then time. The shards of a sender deliver one moment's series close
    /// together in time, even when the moment itself is old (a sender
    /// catching up), so a moment that has waited a while has all it will
    /// get. Moments without CPU time are dropped (the first scrape after a
    /// start only sets the counters' base).
    pub fn emit(&mut self, settled: i64) -> Vec<(i64, Reading)> {
        let mut ready: Vec<(i64, i64)> = Vec::new();
        while let Some(&(arrived, key)) = self.arrivals.front() {
            if arrived > settled {
                break;
            }
            self.arrivals.pop_front();
            ready.push(key);
        }
        ready.sort_unstable();
        let mut out = Vec::with_capacity(ready.len());
        for key in ready {
            let Some(p) = self.pending.remove(&key) else { continue };
            if let Some(n) = self.pending_times.get_mut(&key.1) {
                *n -= 1;
                if *n == 0 {
                    self.pending_times.remove(&key.1);
                }
            }
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
                    accepted: p.accepted.map(|n| n.round().clamp(0.0, f64::from(u32::MAX)) as u32),
                },
            ));
        }
        out
    }

    /// How many pending moments arrived at or before `settled`, and when
    /// the first of them arrived.
    pub fn settled(&self, settled: i64) -> (usize, Option<i64>) {
        let n = self.arrivals.partition_point(|(arrived, _)| *arrived <= settled);
        (n, self.arrivals.front().map(|(arrived, _)| *arrived).filter(|_| n > 0))
    }

    /// The newest scrape time all of whose readings were emitted.
    pub fn emitted_up_to(&self) -> i64 {
        self.pending_times.first_key_value().map_or(self.newest, |(ts, _)| ts - 1)
    }
}

/// The hosts a series can be about: every live host's id, and the ids by
/// the names an `instance` label carries.
#[derive(Debug, Default, Clone)]
pub struct Hosts {
    pub by_name: HashMap<String, i64>,
    pub ids: HashSet<i64>,
}

/// The resource a series is about: its `yunzhi_resource_id` label, else the
/// host part of its `instance` looked up by name; `None` when that is no
/// host Yunzhi knows (a typo in a sender's relabelling must not reach the
/// store, where it would fail the whole group it is written with).
pub fn host_of(s: &Series<'_>, hosts: &Hosts) -> Option<i64> {
    if let Some(id) = s.label("yunzhi_resource_id") {
        return id.parse().ok().filter(|id| hosts.ids.contains(id));
    }
    let instance = s.label("instance")?;
    let host = instance.rsplit_once(':').map_or(instance, |(h, _)| h);
    hosts.by_name.get(host).copied()
}

/// The inbox's doorbell and how many requests it holds, so that a sender
/// is asked to wait once the inbox holds the configured backlog rather
/// than filling the disk while the writer is behind.
#[derive(Debug, Default)]
pub struct Inbox {
    bell: tokio::sync::Notify,
    held: AtomicUsize,
}

impl Inbox {
    /// A request was kept: count it and wake the reader.
    pub fn ring(&self, metrics: &crate::metrics::Metrics) {
        let held = self.held.fetch_add(1, Ordering::Relaxed) + 1;
        metrics.inbox.set(held as i64);
        self.bell.notify_one();
    }

    /// Requests kept and not yet turned into readings (counted again from
    /// the database whenever entries are forgotten, so a request kept
    /// between a count and its ring is off by one only until the next).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    async fn counted(&self, state: &crate::state::AppState) -> anyhow::Result<()> {
        let n = state.store.inbox_len().await?.max(0);
        self.held.store(n as usize, Ordering::Relaxed);
        state.metrics.inbox.set(n);
        Ok(())
    }
}

/// Turns the inbox into readings, in order, for as long as the server runs.
/// An inbox entry is forgotten only once every moment it held was emitted
/// and stored; after a crash the remaining entries are fed again (the
/// readings already stored are skipped by the writer).
pub fn spawn(
    state: crate::state::AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut p = Processor::default();
        if let Err(e) = state.remote_write.counted(&state).await {
            tracing::error!(error = %e, "the remote-write inbox could not be counted");
        }
        let clock = tokio::time::Instant::now();
        let settle = state.settings.remote_write_idle;
        loop {
            let now = tokio::time::Instant::now().duration_since(clock).as_millis() as i64;
            let settled = now - settle.as_millis() as i64;
            // Settled moments wait as long again to be stored together:
            // see `gathered`.
            let gather = settle.as_millis() as i64;
            match p.step(&state, now, settled, gather).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "remote-write readings could not be stored; trying again")
                }
            }
            tokio::select! {
                _ = state.remote_write.bell.notified() => {}
                _ = tokio::time::sleep((settle / 2).clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(5))) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Readings worth storing at once whatever their age: a writer's group.
const GATHER_READINGS: usize = 20_000;

/// Whether the `ready` settled moments, the first of which arrived at
/// `first`, are stored now: once the first has waited `gather` past
/// settling, or once they fill a writer's group. The writer's cost is per
/// host and group more than per reading (each host's agent record and
/// rollup rows are read and written once per group), so moments that
/// settle one by one — a sender whose requests trickle in, a busy server
/// answering slowly — would otherwise be stored a scrape at a time, each
/// host's rows rewritten for every scrape. Nothing acknowledged waits at
/// risk: the requests are already in the durable inbox.
fn gathered(ready: usize, first: Option<i64>, settled: i64, gather: i64) -> bool {
    ready >= GATHER_READINGS || first.is_some_and(|at| at <= settled - gather)
}

/// Failed attempts to store readings together before they are stored one
/// host at a time, so that one host the store refuses (removed since the
/// hosts were read) cannot hold back everyone else's.
const TRIES_TOGETHER: u32 = 3;

/// How long the hosts' names are trusted before they are read again (a
/// series of a host Yunzhi does not know also has them read again, at
/// most this often).
const HOSTS_FRESH_MS: i64 = 10_000;

/// The inbox's reader: the assembler and what it has been fed.
#[derive(Default)]
struct Processor {
    asm: Assembler,
    /// Entries fed, with the newest scrape time each held, oldest first.
    fed: VecDeque<(i64, i64)>,
    last_fed: i64,
    hosts: Hosts,
    /// When `by_host` was read (processor clock, ms); `None` before the first time.
    hosts_read_at: Option<i64>,
    /// Readings emitted but not yet stored: tried again before anything
    /// else, and the inbox entries they came from are kept until they are.
    unstored: Vec<crate::ingest::Batch>,
    /// Failed attempts to store `unstored`.
    tries: u32,
}

impl Processor {
    /// Feeds what is new in the inbox (arrived at `arrival` on the
    /// processor's clock), stores the moments settled by `settled`, forgets
    /// what is done. `Ok(true)` when there may be more to read at once.
    async fn step(
        &mut self,
        state: &crate::state::AppState,
        arrival: i64,
        settled: i64,
        gather: i64,
    ) -> anyhow::Result<bool> {
        const PAGE: i64 = 200;
        self.store(state).await?;
        let entries = state.store.inbox_after(self.last_fed, PAGE).await?;
        let more = entries.len() as i64 >= PAGE;
        if !entries.is_empty() {
            if self.hosts_read_at.is_none_or(|at| arrival - at >= HOSTS_FRESH_MS) {
                self.hosts = known_hosts(state).await?;
                self.hosts_read_at = Some(arrival);
            }
            let mut unplaced = 0;
            for e in &entries {
                let hosts = &self.hosts;
                let asm = &mut self.asm;
                match decompress(&e.body).and_then(|raw| asm.feed(&raw, arrival, |s| host_of(s, hosts))) {
                    Ok(fed) => {
                        unplaced += fed.unplaced;
                        self.fed.push_back((e.id, fed.newest));
                    }
                    // Checked on arrival; a body that no longer reads is skipped, not retried forever.
                    Err(why) => {
                        tracing::error!(entry = e.id, %why, "an inbox entry cannot be read; skipped");
                        self.fed.push_back((e.id, 0));
                    }
                }
                self.last_fed = e.id;
            }
            if unplaced > 0 {
                state.metrics.unplaced.inc_by(unplaced as u64);
                tracing::warn!(
                    samples = unplaced,
                    "remote-write samples for hosts Yunzhi does not know were left out"
                );
                // A host added since the names were read: read them again soon.
                self.hosts_read_at = self.hosts_read_at.map(|at| at.min(arrival - HOSTS_FRESH_MS / 2));
            }
        }
        let (ready, first) = self.asm.settled(settled);
        if gathered(ready, first, settled, gather) {
            let now = state.now();
            let mut batches: Vec<crate::ingest::Batch> = Vec::new();
            for (resource, r) in self.asm.emit(settled) {
                match batches.last_mut() {
                    Some(b) if b.resource_id == resource => b.readings.push(r),
                    _ => batches.push(batch(resource, vec![r], now)),
                }
            }
            self.unstored = batches;
            self.store(state).await?;
        }
        let upto = self.asm.emitted_up_to();
        let mut done = None;
        while let Some(&(id, newest)) = self.fed.front() {
            if newest > upto {
                break;
            }
            done = Some(id);
            self.fed.pop_front();
        }
        if let Some(id) = done {
            let mut tx = state.store.begin().await?;
            tx.inbox_done(id).await?;
            tx.commit().await?;
            state.remote_write.counted(state).await?;
        }
        Ok(more)
    }

    /// Stores the readings emitted and not yet stored. After a few failed
    /// attempts together, one host at a time: a host the store refuses on
    /// its own is left out (logged and counted) once another host's
    /// readings were stored, which shows the store itself is working; when
    /// none can be stored, all are kept for the next attempt.
    async fn store(&mut self, state: &crate::state::AppState) -> anyhow::Result<()> {
        if self.unstored.is_empty() {
            return Ok(());
        }
        if self.tries < TRIES_TOGETHER {
            return match state.ingest.submit_all(self.unstored.clone()).await {
                Ok(_) => {
                    self.unstored.clear();
                    self.tries = 0;
                    Ok(())
                }
                Err(e) => {
                    self.tries += 1;
                    Err(e)
                }
            };
        }
        let mut refused = Vec::new();
        let mut stored_any = false;
        let mut last_error = None;
        for b in std::mem::take(&mut self.unstored) {
            match state.ingest.submit_and_wait(b.clone()).await {
                Ok(_) => stored_any = true,
                Err(e) => {
                    last_error = Some(e);
                    refused.push(b);
                }
            }
        }
        match last_error {
            None => {}
            Some(e) if !stored_any => {
                self.unstored = refused;
                return Err(e);
            }
            Some(e) => {
                for b in &refused {
                    state.metrics.unplaced.inc_by(b.readings.len() as u64);
                    tracing::error!(resource = b.resource_id, readings = b.readings.len(), error = %e,
                        "remote-write readings the store refuses for this host were left out");
                }
            }
        }
        self.tries = 0;
        Ok(())
    }
}

/// The hosts remote-write series can name.
async fn known_hosts(state: &crate::state::AppState) -> anyhow::Result<Hosts> {
    let by_name = hosts_by_name(state).await?;
    let ids = state
        .store
        .live_hosts()
        .await?
        .iter()
        .map(|h| h.resource.id)
        .chain(by_name.values().copied())
        .collect();
    Ok(Hosts { by_name, ids })
}

/// Hosts by the name a Prometheus `instance` label carries: the agent's
/// hostname, or the resource's own name.
pub(crate) async fn hosts_by_name(state: &crate::state::AppState) -> anyhow::Result<HashMap<String, i64>> {
    let mut by = HashMap::new();
    for live in state.store.live_hosts().await?.iter() {
        by.insert(live.resource.name.clone(), live.resource.id);
    }
    for a in state.store.agents_all().await? {
        if let Some(h) = a.hostname {
            by.insert(h, a.resource_id);
        }
    }
    Ok(by)
}

/// A host's readings from remote-write, as the ingest writer takes them.
fn batch(resource: i64, readings: Vec<Reading>, now: Timestamp) -> crate::ingest::Batch {
    crate::ingest::Batch {
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
    }
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

    fn bytes(req: &WriteRequest) -> Vec<u8> {
        prost::Message::encode_to_vec(req)
    }

    fn hosts() -> Hosts {
        Hosts { by_name: HashMap::from([("web-01".to_owned(), 7)]), ids: HashSet::from([7]) }
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
        assert_eq!(a.feed(&bytes(&req), 0, |s| host_of(s, &hosts())).unwrap().unplaced, 0);
        let out = a.emit(0);
        assert_eq!(out.len(), 1, "the first scrape only sets the counters' base: {out:?}");
        let (resource, r) = out[0];
        assert_eq!(resource, 7);
        assert!((r.cpu_pct - 37.5).abs() < 1e-9, "{r:?}");
        assert!((r.memory_pct - 25.0).abs() < 1e-9);
        assert!((r.net_rx_bps - 1000.0).abs() < 1e-9, "loopback left out: {r:?}");
        assert_eq!(r.accepted, None, "a sender without the netstat collector does not say");
    }

    #[test]
    fn connections_accepted_are_the_growth_of_node_exporters_passive_opens_between_scrapes() {
        let mut a = Assembler::default();
        let cpu = |mode: &str, v: [f64; 3]| {
            series(
                "node_cpu_seconds_total",
                &[("cpu", "0"), ("mode", mode)],
                &[(T0, v[0]), (T0 + MIN, v[1]), (T0 + 2 * MIN, v[2])],
            )
        };
        let opens = series(
            "node_netstat_Tcp_PassiveOpens",
            &[],
            &[(T0, 4_000.0), (T0 + MIN, 4_017.0), (T0 + 2 * MIN, 4_017.0)],
        );
        let req = WriteRequest {
            timeseries: vec![cpu("user", [0.0, 6.0, 9.0]), cpu("idle", [0.0, 54.0, 111.0]), opens],
        };
        a.feed(&bytes(&req), 0, |s| host_of(s, &hosts())).unwrap();
        let accepted: Vec<Option<u32>> = a.emit(0).iter().map(|(_, r)| r.accepted).collect();
        assert_eq!(accepted, [Some(17), Some(0)], "a minute with callers, then one without");
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
        a.feed(&bytes(&WriteRequest { timeseries: vec![busy] }), 0, |s| host_of(s, &hosts())).unwrap();
        a.feed(&bytes(&WriteRequest { timeseries: vec![idle] }), 5, |s| host_of(s, &hosts())).unwrap();
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
        a.feed(&bytes(&WriteRequest { timeseries: vec![busy] }), 1_000, |s| host_of(s, &hosts())).unwrap();
        // Arrived at 1 s: not settled at 0.5 s, settled at 1 s.
        assert!(a.emit(500).is_empty());
        let out = a.emit(1_000);
        let times: Vec<_> = out.iter().map(|(_, r)| r.at.as_millisecond()).collect();
        assert_eq!(times, [T0 + MIN, T0 + 2 * MIN]);
    }

    #[test]
    fn settled_moments_are_stored_together_once_the_first_has_waited_to_gather_the_rest() {
        let mut a = Assembler::default();
        let cpu = |t: i64| {
            series("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")], &[(T0 + t * MIN, t as f64)])
        };
        for (arrived, scrape) in [(1_000, 0), (2_000, 1), (3_000, 2)] {
            let req = WriteRequest { timeseries: vec![cpu(scrape)] };
            a.feed(&bytes(&req), arrived, |s| host_of(s, &hosts())).unwrap();
        }
        assert_eq!(a.settled(500), (0, None));
        assert!(!gathered(0, None, 500, 1_000), "nothing settled, nothing to store");
        // Settled at 2.5 s: the first two moments, the first since 1 s.
        let (ready, first) = a.settled(2_500);
        assert_eq!((ready, first), (2, Some(1_000)));
        assert!(!gathered(ready, first, 2_500, 2_000), "the first has waited 1.5 s of 2");
        assert!(gathered(ready, first, 3_000, 2_000), "the first has waited 2 s");
        assert!(gathered(GATHER_READINGS, first, 1_000, 60_000), "a writer's group is stored at once");
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
        a.feed(&bytes(&WriteRequest { timeseries: vec![busy, idle] }), 0, |s| host_of(s, &hosts())).unwrap();
        let out = a.emit(0);
        assert!((out[0].1.cpu_pct - 10.0).abs() < 1e-9, "{out:?}");
        let mut stranger = series("node_cpu_seconds_total", &[("mode", "user")], &[(T0, 1.0)]);
        stranger.labels[1].value = "db-99:9100".into();
        let fed = a
            .feed(&bytes(&WriteRequest { timeseries: vec![stranger] }), 0, |s| host_of(s, &hosts()))
            .unwrap();
        assert_eq!(fed, Fed { unplaced: 1, newest: T0 });
    }

    #[test]
    fn a_body_that_is_not_snappy_protobuf_is_refused_with_the_reason() {
        assert!(decode(b"plain text").unwrap_err().contains("snappy"));
        let req = WriteRequest { timeseries: vec![series("up", &[], &[(T0, 1.0)])] };
        let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(&req)).unwrap();
        assert_eq!(decode(&body).unwrap(), req);
        assert_eq!(check(&body), Ok(1));
        assert!(
            check(&snap::raw::Encoder::new().compress_vec(&[0x0b]).unwrap())
                .unwrap_err()
                .contains("WriteRequest")
        );
    }

    fn as_bytes<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
        pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect()
    }

    #[test]
    fn a_series_is_the_same_series_whatever_the_order_of_its_labels() {
        let pairs =
            [("__name__", "node_cpu_seconds_total"), ("cpu", "0"), ("mode", "user"), ("instance", "a:1")];
        let mut reversed = pairs;
        reversed.reverse();
        let one = Series { labels: &as_bytes(&pairs), samples: &[] };
        let other = Series { labels: &as_bytes(&reversed), samples: &[] };
        assert_eq!(series_key(7, &one), series_key(7, &other));
        // Another host, or another CPU, is another series; the instance is the host's, not the series'.
        assert_ne!(series_key(7, &one), series_key(8, &one));
        let cpu1 =
            [("__name__", "node_cpu_seconds_total"), ("cpu", "1"), ("mode", "user"), ("instance", "a:1")];
        assert_ne!(series_key(7, &one), series_key(7, &Series { labels: &as_bytes(&cpu1), samples: &[] }));
        let moved =
            [("__name__", "node_cpu_seconds_total"), ("cpu", "0"), ("mode", "user"), ("instance", "b:1")];
        assert_eq!(series_key(7, &one), series_key(7, &Series { labels: &as_bytes(&moved), samples: &[] }));
        // Name and value boundaries count: cpu="01" is not cp="u01".
        let a = [("cpu", "01")];
        let b = [("cp", "u01")];
        assert_ne!(
            series_key(7, &Series { labels: &as_bytes(&a), samples: &[] }),
            series_key(7, &Series { labels: &as_bytes(&b), samples: &[] })
        );
    }
}
