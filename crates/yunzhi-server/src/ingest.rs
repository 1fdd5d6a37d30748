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
use yunzhi_domain::clock::district_date;
use yunzhi_domain::monitoring::{Reading, Rollup, span_of};
use yunzhi_store::{AgentRecord, AgentUpdate, Span};

use crate::state::AppState;

/// Reports waiting for the writer; beyond this, senders are asked to wait.
const QUEUE: usize = 4096;
/// Reports applied in one transaction at most.
const GROUP: usize = 512;
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
        loop {
            match self.submit(batch.clone()) {
                Ok(done) => {
                    return done
                        .await
                        .map_err(|_| anyhow::anyhow!("the ingest writer stopped"))?
                        .map_err(|e| anyhow::anyhow!(e));
                }
                Err(Busy::Full) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(Busy::Closed) => anyhow::bail!("the ingest writer stopped"),
            }
        }
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
            let mut group = vec![first];
            while group.len() < GROUP {
                match rx.try_recv() {
                    Ok(p) => group.push(p),
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

/// Applies a group of reports in one transaction.
async fn apply(state: &AppState, batches: &[&Batch]) -> anyhow::Result<Vec<Applied>> {
    let mut tx = state.store.begin().await?;
    let mut agents: HashMap<i64, AgentRecord> = HashMap::new();
    let mut hourly: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    let mut daily: BTreeMap<(i64, String), Rollup> = BTreeMap::new();
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let agent = match agents.get(&b.resource_id) {
            Some(a) => a.clone(),
            None => match tx.agent_for_update(b.resource_id).await? {
                Some(a) => a,
                // A sender without enrolment (remote-write) gets the host's
                // record on its first reading: it keeps what was received.
                None if b.sequence.is_none() => tx.feed_record(b.resource_id, b.received_at).await?,
                None => anyhow::bail!("resource {} has no agent", b.resource_id),
            },
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
            previous = Some(r.at);
            accepted += 1;
        }
        let sequence = b.sequence.unwrap_or(agent.last_sequence);
        let update = AgentUpdate {
            last_sequence: sequence,
            boot_id: b.boot_id.clone().or(agent.boot_id.clone()),
            version: b.version.clone(),
            binary_sm3: b.binary_sm3.clone(),
            report_at: b.received_at,
            last_sample_at: previous,
            sequence_reset: reset,
            clock_skew_ms: b.sent_at.duration_since(b.received_at).as_millis() as i64,
            dropped_batches: b.dropped_batches,
        };
        tx.update_agent(b.resource_id, &update).await?;
        let mut after = agent;
        after.last_sequence = sequence;
        after.last_sample_at = previous.map(yunzhi_domain::clock::At);
        agents.insert(b.resource_id, after);
        out.push(Applied { accepted, next_sequence: sequence + 1, duplicate: false });
    }
    for ((resource, hour), fresh) in hourly {
        let key = hour.to_string();
        let mut r = tx.rollup(Span::Hour, resource, &key).await?.unwrap_or_default();
        r.merge(&fresh);
        tx.put_rollup(Span::Hour, resource, &key, &r).await?;
    }
    for ((resource, day), fresh) in daily {
        let mut r = tx.rollup(Span::Day, resource, &day).await?.unwrap_or_default();
        r.merge(&fresh);
        tx.put_rollup(Span::Day, resource, &day, &r).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// How long a sender told to wait should wait.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);
