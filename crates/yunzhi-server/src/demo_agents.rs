//! The demo district's monitoring agents: every simulated host is enrolled
//! with a host credential and reports its guest's readings (from the
//! simulator's utilisation profiles) every minute through the agents' own
//! report path (`api::agents::accept_report`: credential, sequence,
//! identity and readings checked, then the ingest queue). On the first
//! start 45 days of history are backfilled straight into the ingest queue —
//! older, and longer, than an agent's report may be — so that a fresh
//! `serve --demo` shows findings of every kind within a minute. A few hosts misbehave on
//! purpose: the marriage registry's hosts never got an agent, a family
//! doctor host fell silent (story 6), a town grid platform host runs an
//! altered agent, and a virtual machine nobody registered runs on the x86
//! platform.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sm3::{Digest, Sm3};
use tokio::sync::watch;
use yunzhi_domain::monitoring::Reading;
use yunzhi_domain::platform::DriverKind;
use yunzhi_drivers::simulator::guest::GuestSample;
use yunzhi_drivers::{ResourceKind, ResourceSpec};
use yunzhi_store::{AuditCtx, Enrolment, ResourceRecord};

use crate::ingest::Batch;
use crate::state::AppState;

/// The agent build the demo's agents claim to be.
pub const DEMO_AGENT_VERSION: &str = "0.1.0";

/// The SM3 digest of the demo's released agent build; the demo server
/// lists it as the only released one.
pub fn demo_agent_digest() -> String {
    data_encoding::HEXLOWER.encode(&Sm3::digest(b"yunzhi-agent 0.1.0 demo build"))
}

const SEEDED: &str = "demo_agents_seeded";
/// The demo agents' host credentials, sealed (`SecretBox`), so that a
/// restarted demo's agents go on reporting as the same agents.
const CREDENTIALS: &str = "demo_agent_credentials";
const HISTORY_DAYS: i64 = 45;
const STEP: SignedDuration = SignedDuration::from_mins(5);
const NO_AGENT: &str = "婚姻登记系统";
const SILENT: &str = "家庭医生签约服务系统";
const ALTERED: &str = "镇级网格化管理平台";

/// A demo host's agent: its host, how it behaves, its credential and the
/// number of its next batch.
struct Agent {
    host: ResourceRecord,
    behaviour: Behaviour,
    credential: String,
    sequence: i64,
}

/// How a demo host's agent behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Reports,
    Silent,
    Altered,
}

impl Behaviour {
    /// The digest this host's agent reports: the released build's, or an
    /// altered one's.
    fn digest(self) -> String {
        match self {
            Behaviour::Altered => {
                data_encoding::HEXLOWER.encode(&Sm3::digest(b"a rebuilt agent nobody released"))
            }
            _ => demo_agent_digest(),
        }
    }
}

fn reading(at: Timestamp, s: &GuestSample) -> Reading {
    Reading {
        at,
        cpu_pct: s.cpu_pct,
        memory_pct: s.memory_pct,
        disk_read_bps: s.disk_read_bps,
        disk_write_bps: s.disk_write_bps,
        net_rx_bps: s.net_rx_bps,
        net_tx_bps: s.net_tx_bps,
        sessions: s.logged_in_sessions,
        listening: 6,
        accepted: Some(s.accepted_connections),
    }
}

/// Starts the demo's agents; they stop with the server.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let prepared = tokio::select! {
            p = prepare(&state) => p,
            _ = stop.changed() => return,
        };
        let mut agents = match prepared {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "the demo's agents could not start");
                return;
            }
        };
        loop {
            if let Err(e) = report_now(&state, &mut agents).await {
                tracing::warn!(error = %e, "a demo agent report failed; the next minute tries again");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Whether the demo's agents have yet to write their history (a demo's
/// first start). A scheduled analysis pass waits for it: run now, it would
/// find every host's agent missing, tell the office so, and take it back a
/// minute later. The demo's agents run the pass themselves when done.
pub async fn history_pending(state: &AppState) -> anyhow::Result<bool> {
    Ok(state.settings.demo && state.settings.demo_agents && state.store.setting(SEEDED).await?.is_none())
}

/// The demo hosts with agents, enrolled (and their history written) once;
/// a host added since is enrolled at the next start.
async fn prepare(state: &AppState) -> anyhow::Result<Vec<Agent>> {
    let mut hosts = Vec::new();
    let mut seen_silent = false;
    let mut seen_altered = false;
    for live in state.store.live_hosts().await?.iter() {
        let host = live.resource.clone();
        let Some(pid) = host.platform_id else { continue };
        if state.drivers.simulator(pid).await.is_none() {
            continue;
        }
        let behaviour = match live.system_name.as_str() {
            NO_AGENT => continue,
            SILENT if !seen_silent => {
                seen_silent = true;
                Behaviour::Silent
            }
            ALTERED if !seen_altered => {
                seen_altered = true;
                Behaviour::Altered
            }
            _ => Behaviour::Reports,
        };
        hosts.push((host, behaviour));
    }
    let mut credentials = credentials(state).await?;
    let mut enrolled = false;
    for (host, behaviour) in &hosts {
        if let std::collections::btree_map::Entry::Vacant(e) = credentials.entry(host.id) {
            e.insert(enroll(state, host, *behaviour).await?);
            enrolled = true;
        }
    }
    if enrolled {
        let sealed = state.secrets.seal(&serde_json::to_vec(&credentials)?, CREDENTIALS)?;
        let mut tx = state.store.begin().await?;
        tx.set_setting(CREDENTIALS, &sealed).await?;
        tx.commit().await?;
    }
    if state.store.setting(SEEDED).await?.is_none() {
        seed(state, &hosts).await?;
    }
    let mut agents = Vec::with_capacity(hosts.len());
    for (host, behaviour) in hosts {
        let credential = credentials.remove(&host.id).unwrap_or_default();
        let last = state.store.agent(host.id).await?.map_or(0, |a| a.last_sequence);
        agents.push(Agent { host, behaviour, credential, sequence: last + 1 });
    }
    Ok(agents)
}

/// The demo agents' credentials by host id, as last sealed; none when
/// they cannot be opened (the data folder's key was replaced), and then
/// every agent is enrolled afresh.
async fn credentials(state: &AppState) -> anyhow::Result<std::collections::BTreeMap<i64, String>> {
    let Some(sealed) = state.store.setting(CREDENTIALS).await? else { return Ok(Default::default()) };
    let opened =
        state.secrets.open(&sealed, CREDENTIALS).and_then(|plain| Ok(serde_json::from_slice(&plain)?));
    Ok(opened.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the demo agents' credentials could not be opened; they are enrolled afresh");
        Default::default()
    }))
}

/// Enrols a demo host's agent, as `yunzhi-agent --enroll` would; its credential.
async fn enroll(state: &AppState, host: &ResourceRecord, behaviour: Behaviour) -> anyhow::Result<String> {
    let credential = crate::auth::new_token()?;
    let digest = behaviour.digest();
    let ctx = AuditCtx::system("demo-agents", state.now());
    let mut tx = state.store.begin().await?;
    let e = Enrolment {
        resource_id: host.id,
        credential_digest: &crate::auth::token_digest(&credential),
        hostname: &host.name,
        machine_id: None,
        version: DEMO_AGENT_VERSION,
        binary_sm3: &digest,
    };
    tx.enroll_agent(&ctx, host.unit_id.0, &e).await?;
    tx.commit().await?;
    Ok(credential)
}

/// Writes the enrolled agents' history, adds the orphan and runs the
/// analysis: the first start's work.
async fn seed(state: &AppState, hosts: &[(ResourceRecord, Behaviour)]) -> anyhow::Result<()> {
    let now = state.now();
    // History: a reading every five minutes for 45 days, a day per report.
    let start = now - SignedDuration::from_hours(24 * HISTORY_DAYS);
    for (host, behaviour) in hosts {
        let Some(pid) = host.platform_id else { continue };
        let Some(sim) = state.drivers.simulator(pid).await else { continue };
        let key = crate::worker::resource_key(host.id);
        // The silent host's agent stopped three hours ago.
        let until = if *behaviour == Behaviour::Silent { now - SignedDuration::from_hours(3) } else { now };
        // A fortnight a report: few transactions, however many readings.
        let mut day_start = start;
        while day_start < until {
            let day_end = (day_start + SignedDuration::from_hours(24 * 15)).min(until);
            let mut readings = Vec::new();
            let mut at = day_start;
            while at < day_end {
                if let Some(s) = sim.guest_sample(&key, at).await {
                    readings.push(reading(at, &s));
                }
                at += STEP;
            }
            // Reported as it happened: received at its last reading.
            let sent = readings.last().map(|r| r.at).unwrap_or(now);
            backfill(state, host, *behaviour, readings, sent).await?;
            day_start = day_end;
        }
    }
    orphan(state).await?;
    let mut tx = state.store.begin().await?;
    tx.set_setting(SEEDED, &now.to_string()).await?;
    tx.commit().await?;
    crate::worker::analysis::enqueue_analysis(state, None).await?;
    tracing::info!(hosts = hosts.len(), "the demo's agents are enrolled and their history written");
    Ok(())
}

/// A virtual machine somebody made by hand on the x86 platform, which the
/// inventory pass reports as an orphan.
async fn orphan(state: &AppState) -> anyhow::Result<()> {
    for p in state.store.platforms_all().await? {
        if p.driver != DriverKind::Simulator || p.arch != yunzhi_domain::system::Arch::X86_64 {
            continue;
        }
        if let Some(sim) = state.drivers.simulator(p.id).await {
            let spec = ResourceSpec {
                key: String::new(),
                name: "test-vm-zhang".into(),
                kind: ResourceKind::Host,
                vcpu: 4,
                memory_gib: 8,
                storage_gib: 100,
                image: None,
            };
            sim.adopt(
                &ResourceSpec { key: "hand-made:test-vm-zhang".into(), ..spec },
                yunzhi_drivers::RemoteState::Active,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            // A pass now, whatever this period's pass already saw.
            let now = state.now();
            let mut tx = state.store.begin().await?;
            let job = yunzhi_store::NewJob {
                kind: "reconcile".into(),
                dedup_key: None,
                payload: serde_json::json!({"platform_id": p.id.0}),
                run_at: now,
                max_attempts: 3,
            };
            tx.enqueue_job(&job, now).await?;
            tx.commit().await?;
            state.worker.notify_one();
            return Ok(());
        }
    }
    Ok(())
}

/// Writes a stretch of a host's history into the ingest queue as its agent
/// would have reported it at the time (no batch number: a backfill).
async fn backfill(
    state: &AppState,
    host: &ResourceRecord,
    behaviour: Behaviour,
    readings: Vec<Reading>,
    now: Timestamp,
) -> anyhow::Result<()> {
    if readings.is_empty() {
        return Ok(());
    }
    let binary_sm3 = behaviour.digest();
    let batch = Batch {
        resource_id: host.id,
        sequence: None,
        boot_id: None,
        version: Some(DEMO_AGENT_VERSION.into()),
        binary_sm3: Some(binary_sm3),
        sent_at: now,
        received_at: now,
        dropped_batches: 0,
        readings,
        source: "agent",
    };
    state.ingest.submit_and_wait(batch).await?;
    Ok(())
}

/// This minute's report of every reporting host's agent, through the
/// agents' report path.
async fn report_now(state: &AppState, agents: &mut [Agent]) -> anyhow::Result<()> {
    let now = state.now();
    for agent in agents.iter_mut() {
        if agent.behaviour == Behaviour::Silent {
            continue;
        }
        let Some(pid) = agent.host.platform_id else { continue };
        let Some(sim) = state.drivers.simulator(pid).await else { continue };
        // A suspended or reclaimed host's guest says nothing.
        let Some(s) = sim.guest_sample(&crate::worker::resource_key(agent.host.id), now).await else {
            continue;
        };
        let input = crate::api::agents::ReportInput {
            sequence: agent.sequence,
            boot_id: Some(format!("demo-{}", agent.host.id)),
            version: DEMO_AGENT_VERSION.into(),
            binary_sm3: agent.behaviour.digest(),
            sent_at: now,
            samples: vec![reading(now, &s)],
            dropped_batches: 0,
        };
        crate::api::agents::accept_report(state, &agent.credential, input)
            .await
            .map_err(|e| anyhow::anyhow!("host {}: {e}", agent.host.id))?;
        agent.sequence += 1;
    }
    Ok(())
}
