//! The ingest path: reports are checked by their handlers, then queued to
//! one writer that applies them in groups, each group in one transaction
//! (the agents' records and the hourly and daily rollups), and answers
//! every report of the group once that transaction is committed. A report
//! is acknowledged only once it is durable; a full queue answers 503 with
//! `Retry-After` rather than taking what it cannot keep.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};
use yunzhi_domain::clock::{At, district_date};
use yunzhi_domain::monitoring::{Reading, Rollup, span_of};
use yunzhi_store::{AgentRecord, Span};

use crate::state::AppState;

/// Reports waiting for the writer; beyond this, senders are asked to wait.
const QUEUE: usize = 4096;
/// Reports applied in one transaction at most.
const GROUP: usize = 512;
/// Readings applied in one transaction at most (a group closes once it
/// holds this many): a backlog of long reports — an agent resending days of
/// spool, the demo's history — must not hold the single SQLite writer for
/// so long that approvals and jobs time out waiting for it.
const GROUP_READINGS: usize = 20_000;
/// How long a reading stands for when its host's previous one is unknown,
/// and at most (a longer gap is silence, not a long busy minute).
const INTERVAL: SignedDuration = SignedDuration::from_mins(1);
const MAX_SPAN: SignedDuration = SignedDuration::from_mins(5);

/// One report, checked, from an agent or a remote-write sender.
#[derive(Debug, Clone)]
pub struct Batch {
    pub resource_id: i64,
    /// The agent's batch number; `None` for senders without one (remote-write).
    pub sequence: Option<i64>,
    pub boot_id: Option<String>,
    /// The agent's version and binary digest; `None` from senders that are
    /// not Yunzhi agents (remote-write), which are not judged on them.
    pub version: Option<String>,
    pub binary_sm3: Option<String>,
    pub sent_at: Timestamp,
    pub received_at: Timestamp,
    pub dropped_batches: i64,
    pub readings: Vec<Reading>,
    /// `agent` or `remote_write`, for the server's own metrics.
    pub source: &'static str,
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Readings kept (a resent batch, or readings the server already has, add nothing).
    pub accepted: usize,
    pub next_sequence: i64,
    /// The whole batch had been received before.
    pub duplicate: bool,
}

struct Pending {
    batch: Batch,
    done: oneshot::Sender<Result<Applied, String>>,
}

pub struct Ingest {
    queue: mpsc::Sender<Pending>,
    waiting: Mutex<Option<mpsc::Receiver<Pending>>>,
}

/// Why a report was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Busy {
    /// The queue is full: try again after a moment.
    Full,
    /// The writer stopped (the server is shutting down).
    Closed,
}

impl Default for Ingest {
    fn default() -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        Ingest { queue, waiting: Mutex::new(Some(rx)) }
    }
}

impl Ingest {
    /// Queues a report; its outcome arrives once it is durable.
    pub fn submit(&self, batch: Batch) -> Result<oneshot::Receiver<Result<Applied, String>>, Busy> {
        let (done, rx) = oneshot::channel();
        self.queue.try_send(Pending { batch, done }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Busy::Full,
            mpsc::error::TrySendError::Closed(_) => Busy::Closed,
        })?;
        Ok(rx)
    }
}

impl Ingest {
    /// Queues a report the server made itself (the demo's agents, the
    /// remote-write inbox), waiting for room rather than refusing it, and
    /// returns once it is stored.
    pub async fn submit_and_wait(&self, batch: Batch) -> anyhow::Result<Applied> {
        let mut applied = self.submit_all(vec![batch]).await?;
        applied.pop().ok_or_else(|| anyhow::anyhow!("the ingest writer answered nothing"))
    }

    /// Queues many reports the server made itself, all at once so that the
    /// writer stores them in a few groups, waiting for room when the queue
    /// is full; returns once every one is stored, with their outcomes in order.
    pub async fn submit_all(&self, batches: Vec<Batch>) -> anyhow::Result<Vec<Applied>> {
        type Outcome = Result<Result<Applied, String>, oneshot::error::RecvError>;
        let outcome = |o: Outcome| -> anyhow::Result<Applied> {
            o.map_err(|_| anyhow::anyhow!("the ingest writer stopped"))?.map_err(|e| anyhow::anyhow!(e))
        };
        let mut waiting = std::collections::VecDeque::new();
        let mut applied = Vec::with_capacity(batches.len());
        for mut batch in batches {
            loop {
                let (done, rx) = oneshot::channel();
                match self.queue.try_send(Pending { batch, done }) {
                    Ok(()) => {
                        waiting.push_back(rx);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Full(p)) => {
                        batch = p.batch;
                        // Room comes as the writer answers: wait for our oldest.
                        match waiting.pop_front() {
                            Some(rx) => applied.push(outcome(rx.await)?),
                            None => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => anyhow::bail!("the ingest writer stopped"),
                }
            }
        }
        for rx in waiting {
            applied.push(outcome(rx.await)?);
        }
        Ok(applied)
    }
}

/// Starts the writer; it stops when `stop` turns true, after applying what it holds.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let rx = state.ingest.waiting.lock().ok().and_then(|mut w| w.take());
    tokio::spawn(async move {
        let Some(mut rx) = rx else {
            tracing::error!("the ingest writer was started twice; this one stops");
            return;
        };
        loop {
            let first = tokio::select! {
                p = rx.recv() => p,
                _ = stop.changed() => None,
            };
            let Some(first) = first else { return };
            let mut readings = first.batch.readings.len();
            let mut group = vec![first];
            while group.len() < GROUP && readings < GROUP_READINGS {
                match rx.try_recv() {
                    Ok(p) => {
                        readings += p.batch.readings.len();
                        group.push(p);
                    }
                    Err(_) => break,
                }
            }
            let start = Instant::now();
            let batches: Vec<&Batch> = group.iter().map(|p| &p.batch).collect();
            let outcome = apply(&state, &batches).await;
            state.metrics.ingest_batch.observe(start.elapsed().as_secs_f64());
            match outcome {
                Ok(applied) => {
                    for (p, a) in group.into_iter().zip(applied) {
                        state.metrics.ingested(p.batch.source, a.accepted as u64);
                        let _ = p.done.send(Ok(a));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, reports = group.len(), "could not store a group of reports; none is acknowledged");
                    for p in group {
                        let _ = p.done.send(Err(e.to_string()));
                    }
                }
            }
        }
    })
}

/// The start of the hour `at` falls in, in epoch milliseconds.
fn hour_of(at: Timestamp) -> i64 {
    let ms = at.as_millisecond();
    ms - ms.rem_euclid(3_600_000)
}

/// A reading as the raw store keeps it.
pub fn raw_row(resource_id: i64, r: &Reading) -> yunzhi_rawstore::Row {
    yunzhi_rawstore::Row {
        resource_id,
        at_ms: r.at.as_millisecond(),
        cpu_pct: r.cpu_pct as f32,
        memory_pct: r.memory_pct as f32,
        disk_read_bps: r.disk_read_bps as f32,
        disk_write_bps: r.disk_write_bps as f32,
        net_rx_bps: r.net_rx_bps as f32,
        net_tx_bps: r.net_tx_bps as f32,
        sessions: r.sessions.min(u32::from(u16::MAX)) as u16,
        listening: r.listening.min(u32::from(u16::MAX)) as u16,
        accepted: r.accepted,
    }
}

/// Applies a group of reports in one transaction, in a fixed handful of
/// statements however many reports the group holds: the agents' records
/// are read (and locked) together, the rollups the readings fall in are
/// read together, merged in memory and written back together. The raw
/// readings reach the raw store's log before the transaction commits, so
/// an acknowledged reading is in both; a reading logged by a group whose
/// commit then failed comes again with the sender's retry and is kept once
/// (the raw store keeps the last of equal readings when it seals a day).
async fn apply(state: &AppState, batches: &[&Batch]) -> anyhow::Result<Vec<Applied>> {
    let mut ids: Vec<i64> = batches.iter().map(|b| b.resource_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut tx = state.store.begin().await?;
    let mut agents: HashMap<i64, AgentRecord> =
        tx.agents_for_update(&ids).await?.into_iter().map(|a| (a.resource_id, a)).collect();
    let mut touched: Vec<i64> = Vec::new();
    let mut hourly: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    let mut daily: BTreeMap<(i64, String), Rollup> = BTreeMap::new();
    let mut raw = Vec::new();
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let agent = match agents.entry(b.resource_id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            // A sender without enrolment (remote-write) gets the host's
            // record on its first reading: it keeps what was received.
            std::collections::hash_map::Entry::Vacant(new) if b.sequence.is_none() => {
                new.insert(tx.feed_record(b.resource_id, b.received_at).await?)
            }
            std::collections::hash_map::Entry::Vacant(_) => {
                anyhow::bail!("resource {} has no agent", b.resource_id)
            }
        };
        // Times are kept to the millisecond; compare them so.
        let mut readings = b.readings.clone();
        for r in &mut readings {
            r.at = Timestamp::from_millisecond(r.at.as_millisecond()).unwrap_or(r.at);
        }
        readings.sort_by_key(|r| r.at);
        let last_sample = agent.last_sample_at.map(|a| a.0);
        let newest = readings.last().map(|r| r.at);
        let newer = match (newest, last_sample) {
            (Some(n), Some(l)) => n > l,
            (Some(_), None) => true,
            (None, _) => false,
        };
        // A batch number already seen: a resend (nothing new in it), or an
        // agent that started counting again (new readings) — reinstalled,
        // its state lost, or replaced: noted for the tampering rule.
        let (duplicate, reset) = match b.sequence {
            Some(s) if s <= agent.last_sequence => (!newer, newer),
            _ => (false, false),
        };
        if duplicate {
            out.push(Applied { accepted: 0, next_sequence: agent.last_sequence + 1, duplicate: true });
            continue;
        }
        let mut previous = last_sample;
        let mut accepted = 0;
        for r in &readings {
            if previous.is_some_and(|p| r.at <= p) {
                continue; // already have it
            }
            let seconds = span_of(previous, r.at, INTERVAL, MAX_SPAN);
            hourly.entry((b.resource_id, hour_of(r.at))).or_default().add(r, seconds);
            daily.entry((b.resource_id, district_date(r.at).to_string())).or_default().add(r, seconds);
            raw.push(raw_row(b.resource_id, r));
            previous = Some(r.at);
            accepted += 1;
        }
        let sequence = b.sequence.unwrap_or(agent.last_sequence);
        agent.last_sequence = sequence;
        if b.boot_id.is_some() {
            agent.boot_id = b.boot_id.clone();
        }
        // Senders that are not Yunzhi agents claim no build: what is recorded stays.
        if b.version.is_some() {
            agent.version = b.version.clone();
        }
        if b.binary_sm3.is_some() {
            agent.binary_sm3 = b.binary_sm3.clone();
        }
        agent.last_report_at = Some(At(b.received_at));
        agent.last_sample_at = previous.map(At);
        agent.sequence_resets += i64::from(reset);
        agent.last_clock_skew_ms = Some(b.sent_at.duration_since(b.received_at).as_millis() as i64);
        agent.dropped_batches += b.dropped_batches;
        touched.push(b.resource_id);
        out.push(Applied { accepted, next_sequence: sequence + 1, duplicate: false });
    }
    touched.sort_unstable();
    touched.dedup();
    let changed: Vec<AgentRecord> = touched.iter().filter_map(|id| agents.get(id).cloned()).collect();
    tx.update_agents(&changed).await?;
    let hourly: Vec<(i64, String, Rollup)> =
        hourly.into_iter().map(|((id, hour), r)| (id, hour.to_string(), r)).collect();
    merge_rollups(&mut tx, Span::Hour, hourly).await?;
    merge_rollups(&mut tx, Span::Day, daily.into_iter().map(|((id, day), r)| (id, day, r)).collect()).await?;
    if let Some(store) = state.raw.clone()
        && !raw.is_empty()
    {
        tokio::task::spawn_blocking(move || store.append(&raw)).await??;
    }
    tx.commit().await?;
    Ok(out)
}

/// Adds fresh rollups to what is stored for the same host and span.
async fn merge_rollups(
    tx: &mut yunzhi_store::Tx,
    span: Span,
    mut fresh: Vec<(i64, String, Rollup)>,
) -> anyhow::Result<()> {
    let wanted: Vec<(i64, String)> = fresh.iter().map(|(id, key, _)| (*id, key.clone())).collect();
    let mut stored: HashMap<(i64, String), Rollup> =
        tx.rollups(span, &wanted).await?.into_iter().map(|(id, key, r)| ((id, key), r)).collect();
    for (id, key, r) in &mut fresh {
        if let Some(mut merged) = stored.remove(&(*id, key.clone())) {
            merged.merge(r);
            *r = merged;
        }
    }
    tx.put_rollups(span, &fresh).await?;
    Ok(())
}

/// How long a sender told to wait should wait.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);
