//! What every handler shares: the store, the clock, the settings, the metrics.

use std::sync::Arc;

use jiff::SignedDuration;
use yunzhi_domain::clock::{Clock, ShiftableClock};
use yunzhi_store::Store;

use crate::metrics::Metrics;

/// Settings of a running server. Defaults follow API.md.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Demo mode: demo accounts may sign in without a second factor, and
    /// the clock may be moved.
    pub demo: bool,
    /// Consecutive failed sign-ins that lock an account.
    pub lockout_threshold: i64,
    pub lockout_duration: SignedDuration,
    /// A session unused this long has expired.
    pub session_idle: SignedDuration,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Deadlines and the expansion limit.
    pub sla: yunzhi_domain::request::SlaPolicy,
    /// Days after expiry before suspended temporary resources are reclaimed (Art. 12).
    pub temporary_grace_days: i64,
    /// Faults the simulated platforms inject: none, except in tests and drills.
    pub simulator_faults: yunzhi_drivers::simulator::Faults,
    /// The first wait before a failed job is tried again; it doubles each time.
    pub job_retry_base: SignedDuration,
    /// How long a running job is its worker's without renewal: a worker
    /// that died gives its job up after this long.
    pub job_lease: SignedDuration,
    /// How often each platform's inventory is reconciled with Yunzhi's.
    pub reconcile_every: SignedDuration,
    /// The efficiency rules and their thresholds (Art. 13-14).
    pub efficiency: yunzhi_domain::efficiency::Rules,
    /// SM3 digests of the released agent builds; an agent reporting another
    /// is tampered with. Empty: digests are not checked.
    pub agent_digests: Vec<String>,
    /// Working days a warning gives a unit to rectify or explain (Art. 14).
    pub rectification_days: i64,
    /// In demo mode, the simulated hosts' agents report (`demo_agents`).
    pub demo_agents: bool,
    /// How long a remote-write moment waits for the rest of its series
    /// (Prometheus sends a host's series through several shards).
    pub remote_write_idle: std::time::Duration,
    /// Remote-write requests the inbox holds before senders are asked to
    /// wait (503 with `Retry-After`; Prometheus and vmagent send again).
    pub remote_write_backlog: usize,
    /// Days of raw readings kept, today included (the rollups are kept longer).
    pub raw_retention_days: u32,
    /// Days of hourly and daily rollups kept, today included; at least
    /// [`yunzhi_domain::monitoring::MIN_ROLLUP_DAYS`].
    pub rollup_retention_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            demo: false,
            lockout_threshold: 5,
            lockout_duration: SignedDuration::from_mins(15),
            session_idle: SignedDuration::from_mins(30),
            body_limit: 1024 * 1024,
            sla: yunzhi_domain::request::SlaPolicy::default(),
            temporary_grace_days: 14,
            simulator_faults: yunzhi_drivers::simulator::Faults::default(),
            job_retry_base: SignedDuration::from_secs(5),
            job_lease: SignedDuration::from_secs(30),
            reconcile_every: SignedDuration::from_mins(10),
            efficiency: yunzhi_domain::efficiency::Rules::default(),
            agent_digests: Vec::new(),
            rectification_days: 10,
            demo_agents: false,
            remote_write_idle: std::time::Duration::from_secs(30),
            remote_write_backlog: 10_000,
            raw_retention_days: 35,
            rollup_retention_days: yunzhi_domain::monitoring::MIN_ROLLUP_DAYS,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<ShiftableClock>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Rung when a job is queued, so the runner picks it up at once.
    pub worker: crate::worker::Doorbell,
    /// Where notifications also go, beyond the inbox.
    pub channels: Arc<crate::courier::Channels>,
    /// Seals and opens secrets kept in the database.
    pub secrets: Arc<crate::secrets::SecretBox>,
    /// The cloud platforms' drivers.
    pub drivers: Arc<crate::drivers::Drivers>,
    /// Where monitoring reports queue for the writer.
    pub ingest: Arc<crate::ingest::Ingest>,
    /// The remote-write inbox's doorbell and length.
    pub remote_write: Arc<crate::remote_write::Inbox>,
    /// This server's raw readings (write-ahead log and daily Parquet files);
    /// `None` when it keeps only the rollups.
    pub raw: Option<Arc<yunzhi_rawstore::RawStore>>,
    /// The fleet's daily statistics as the efficiency analysis last read them.
    pub fleet: Arc<tokio::sync::Mutex<crate::worker::analysis::FleetDays>>,
    /// Where the analysis keeps its checkpoint of those statistics between
    /// runs; `None` reads them from the database on every start.
    pub analysis_dir: Option<std::path::PathBuf>,
    /// Remote-write senders' tokens recently seen.
    pub ingest_tokens: Arc<crate::api::ingest::TokenCache>,
}

impl AppState {
    pub fn new(store: Store, clock: Arc<ShiftableClock>, settings: Settings) -> AppState {
        AppState {
            store,
            clock,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::new()),
            worker: Arc::new(tokio::sync::Notify::new()),
            channels: Arc::new(crate::courier::Channels::default()),
            // Replaced by the configured key at start; a random one is safe
            // for a state that never sees a sealed value.
            secrets: Arc::new(crate::secrets::SecretBox::new(
                crate::auth::random_bytes(16).ok().and_then(|b| b.try_into().ok()).unwrap_or([0; 16]),
            )),
            drivers: Arc::new(crate::drivers::Drivers::new(None, Default::default())),
            ingest: Arc::new(crate::ingest::Ingest::default()),
            remote_write: Arc::default(),
            raw: None,
            fleet: Arc::default(),
            analysis_dir: None,
            ingest_tokens: Arc::default(),
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }
}
