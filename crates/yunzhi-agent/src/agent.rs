//! The agent's life: enrol if need be, then sample, spool and deliver, once
//! or every interval.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use crate::client::{Client, Delivery, EnrollError};
use crate::digest::sm3_hex;
use crate::host::HostRoot;
use crate::log::{error, info, warning};
use crate::readings::{Snapshot, sample_since};
use crate::report::{Batch, EnrollRequest, Sample};
use crate::spool::Spool;
use crate::state::{Credential, StateDir, StateError};
use crate::time::rfc3339;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
const DEFAULT_INTERVAL_SECS: u64 = 60;
/// In `--once` the rates need two reads; a second apart is enough to see
/// whether anything moves and short enough for cron and tests.
const ONCE_WINDOW: Duration = Duration::from_secs(1);

pub struct Options {
    pub server: String,
    pub enroll: Option<String>,
    pub state_dir: PathBuf,
    pub interval_secs: Option<u64>,
    pub once: bool,
    pub host_root: PathBuf,
}

/// How the process ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything sampled so far is with the server.
    Delivered,
    /// `--once` could not deliver; the batches wait in the spool for the next
    /// run (EX_TEMPFAIL, so cron can tell this from a real failure).
    Kept,
    Failed,
    /// No usable credential: not enrolled, the code was refused, or the
    /// credential was revoked. Restarting cannot help until someone enrols
    /// the host with a new code (EX_CONFIG, which the systemd unit does not
    /// restart on).
    NeedsEnrolment,
}

/// A failure that stops the agent, in words for the operator.
#[derive(Debug)]
pub struct Fatal {
    message: String,
    exit: Exit,
}

fn fatal(message: impl Into<String>) -> Fatal {
    Fatal { message: message.into(), exit: Exit::Failed }
}

fn needs_enrolment(message: impl Into<String>) -> Fatal {
    Fatal { message: message.into(), exit: Exit::NeedsEnrolment }
}

impl From<StateError> for Fatal {
    fn from(e: StateError) -> Self {
        fatal(e.to_string())
    }
}

pub fn run(options: Options) -> Exit {
    match start(options) {
        Ok(exit) => exit,
        Err(Fatal { message, exit }) => {
            error!("{message}");
            exit
        }
    }
}

fn start(options: Options) -> Result<Exit, Fatal> {
    let server = options.server.trim_end_matches('/');
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        return Err(fatal(format!("--server must be an http:// or https:// URL, not {server:?}")));
    }
    if server.starts_with("http://") {
        warning!("--server is plain http: the host credential travels unencrypted");
    }
    // Once, at start: the file behind a running process does not change
    // without a restart that this would see.
    let exe = Path::new("/proc/self/exe");
    let binary_sm3 = sm3_hex(exe).map_err(|e| fatal(format!("cannot digest {}: {e}", exe.display())))?;
    let host = HostRoot::new(&options.host_root);
    let state = StateDir::open(&options.state_dir)?;
    let client = Client::new(server);
    let credential = credential_for(&state, &client, &host, options.enroll.as_deref(), &binary_sm3)?;
    let interval = options.interval_secs.or(credential.interval_secs).unwrap_or(DEFAULT_INTERVAL_SECS).max(1);
    let spool = state.spool()?;
    let agent = Agent { host, spool, state, client, credential, binary_sm3 };
    if options.once { agent.once() } else { agent.forever(Duration::from_secs(interval)) }
}

/// The stored credential, or a new one for an enrolment code. A code given
/// to an enrolled agent is ignored, so a script may always pass it.
fn credential_for(
    state: &StateDir,
    client: &Client,
    host: &HostRoot,
    code: Option<&str>,
    binary_sm3: &str,
) -> Result<Credential, Fatal> {
    if let Some(credential) = state.credential()? {
        if code.is_some() {
            info!("already enrolled as resource {}; the enrolment code was not used", credential.resource_id);
        }
        return Ok(credential);
    }
    let Some(code) = code else {
        let why = if state.was_revoked() {
            "the server revoked this host's credential"
        } else {
            "this host is not enrolled yet"
        };
        return Err(needs_enrolment(format!(
            "{why}: run once with --enroll CODE, a code from POST /api/v1/resources/{{id}}/enrollment \
             (state directory {})",
            state.path().display()
        )));
    };
    let hostname = host.hostname().map_err(|e| fatal(e.to_string()))?;
    let machine_id = host.machine_id();
    let request = EnrollRequest {
        code,
        hostname: &hostname,
        machine_id: machine_id.as_deref(),
        version: VERSION,
        binary_sm3,
    };
    let answer = client.enroll(&request).map_err(|e| match e {
        EnrollError::Refused { .. } => needs_enrolment(e.to_string()),
        EnrollError::Unreachable(_) | EnrollError::Garbled(_) => fatal(e.to_string()),
    })?;
    let credential = Credential {
        resource_id: answer.resource_id,
        credential: answer.credential,
        interval_secs: answer.interval_secs,
    };
    state.save_credential(&credential)?;
    state.forget_revoked();
    info!("enrolled as resource {}", credential.resource_id);
    Ok(credential)
}

struct Agent {
    host: HostRoot,
    state: StateDir,
    spool: Spool,
    client: Client,
    credential: Credential,
    binary_sm3: String,
}

/// What a delivery round left behind.
#[derive(Debug)]
enum Flushed {
    All,
    Deferred(Option<Duration>),
    Revoked,
}

impl Agent {
    fn once(&self) -> Result<Exit, Fatal> {
        let samples = match Snapshot::take(&self.host) {
            Ok(mut before) => {
                sleep(ONCE_WINDOW);
                self.sample(&mut before)
            }
            Err(e) => {
                warning!("{e}; sending a heartbeat without samples");
                vec![]
            }
        };
        self.enqueue(samples)?;
        Ok(match self.flush()? {
            Flushed::All => Exit::Delivered,
            Flushed::Deferred(_) => {
                let waiting = self.spool.pending()?.len();
                info!("{waiting} batch(es) wait in the spool for the next run");
                Exit::Kept
            }
            Flushed::Revoked => Exit::NeedsEnrolment,
        })
    }

    fn forever(&self, interval: Duration) -> Result<Exit, Fatal> {
        info!("reporting every {} s as resource {}", interval.as_secs(), self.credential.resource_id);
        let mut before = Snapshot::take(&self.host).map_err(|e| warning!("{e}")).ok();
        let mut next_tick = Instant::now() + interval;
        let mut not_before = Instant::now();
        loop {
            sleep(next_tick.saturating_duration_since(Instant::now()));
            next_tick += interval;
            if next_tick < Instant::now() {
                // Suspended or stalled: resume the rhythm instead of catching up.
                next_tick = Instant::now() + interval;
            }
            let samples = match before.as_mut() {
                Some(snapshot) => self.sample(snapshot),
                None => {
                    before = Snapshot::take(&self.host).map_err(|e| warning!("{e}")).ok();
                    vec![]
                }
            };
            if let Err(e) = self.enqueue(samples) {
                error!("{e}; this interval's sample is lost");
            }
            if Instant::now() < not_before {
                continue;
            }
            match self.flush() {
                Ok(Flushed::All | Flushed::Deferred(None)) => {}
                Ok(Flushed::Deferred(Some(wait))) => {
                    // Spread the fleet out: every agent was told the same wait.
                    not_before = Instant::now() + wait + jitter(wait.min(interval));
                }
                Ok(Flushed::Revoked) => return Ok(Exit::NeedsEnrolment),
                Err(e) => error!("{e}"),
            }
        }
    }

    /// One sample, or none (a heartbeat) when the host could not be read.
    fn sample(&self, before: &mut Snapshot) -> Vec<Sample> {
        match sample_since(&self.host, before) {
            Ok(sample) => vec![sample],
            Err(e) => {
                warning!("{e}; sending a heartbeat without samples");
                vec![]
            }
        }
    }

    /// Gives the samples the next sequence and writes them to the spool
    /// before any attempt to send, so the sequence is never handed out twice.
    fn enqueue(&self, samples: Vec<Sample>) -> Result<(), StateError> {
        let mut counters = self.state.counters()?;
        // A crash between spooling and saving the counters must not reuse a
        // sequence that a spooled batch already has.
        if let Some(last) = self.spool.pending()?.last() {
            counters.next_sequence = counters.next_sequence.max(last.sequence + 1);
        }
        let boot_id = self.host.boot_id().unwrap_or_else(|e| {
            warning!("{e}");
            String::new()
        });
        let batch = Batch {
            sequence: counters.next_sequence,
            boot_id,
            version: VERSION.to_owned(),
            binary_sm3: self.binary_sm3.clone(),
            sent_at: rfc3339(SystemTime::now()),
            samples,
            dropped_batches: (counters.dropped_batches > 0).then_some(counters.dropped_batches),
        };
        let lost = self.spool.push(&batch)?;
        if lost > 0 {
            warning!("the spool is full: dropped the {lost} oldest batch(es)");
        }
        counters.next_sequence += 1;
        counters.dropped_batches = lost;
        self.state.save_counters(&counters)
    }

    /// Sends the spooled batches in sequence order, stopping at the first
    /// that cannot be delivered now: the order is the server's guarantee.
    fn flush(&self) -> Result<Flushed, StateError> {
        for entry in self.spool.pending()? {
            let mut batch = match self.spool.load(&entry) {
                Ok(batch) => batch,
                Err(e) => {
                    error!("{e}; dropping that batch");
                    self.spool.remove(&entry)?;
                    self.count_lost(1)?;
                    continue;
                }
            };
            batch.sent_at = rfc3339(SystemTime::now());
            match self.client.report(&self.credential.credential, &batch) {
                Delivery::Accepted { next_sequence } => {
                    self.spool.remove(&entry)?;
                    if let Some(next) = next_sequence {
                        self.adopt_next_sequence(next)?;
                    }
                }
                Delivery::AlreadyHad => {
                    info!("the server already had batch {}", batch.sequence);
                    self.spool.remove(&entry)?;
                }
                Delivery::Later(wait) => {
                    let wait_text = wait.map_or("no wait given".to_owned(), |w| format!("{} s", w.as_secs()));
                    warning!("the server asks to try later ({wait_text}); batch {} kept", batch.sequence);
                    return Ok(Flushed::Deferred(wait));
                }
                Delivery::Unreachable(e) => {
                    warning!("{e}; batch {} kept", batch.sequence);
                    return Ok(Flushed::Deferred(None));
                }
                Delivery::Revoked(explanation) => {
                    error!(
                        "the server refused this host's credential (resource {}): {explanation}; \
                         the credential is revoked, so the agent stops; enrol again with a new code",
                        self.credential.resource_id
                    );
                    self.state.mark_revoked()?;
                    return Ok(Flushed::Revoked);
                }
                Delivery::Rejected { status, explanation } => {
                    error!(
                        "the server rejected batch {} (HTTP {status}): {explanation}; dropping it",
                        batch.sequence
                    );
                    self.spool.remove(&entry)?;
                    self.count_lost(1)?;
                }
            }
        }
        Ok(Flushed::All)
    }

    fn count_lost(&self, n: u64) -> Result<(), StateError> {
        let mut counters = self.state.counters()?;
        counters.dropped_batches += n;
        self.state.save_counters(&counters)
    }

    /// The server knows best which sequence it expects: after a state
    /// directory was restored from a backup, ours would be behind and every
    /// new batch would look like one it already had.
    fn adopt_next_sequence(&self, next: u64) -> Result<(), StateError> {
        let mut counters = self.state.counters()?;
        if next > counters.next_sequence {
            counters.next_sequence = next;
            self.state.save_counters(&counters)?;
        }
        Ok(())
    }
}

/// A random wait below `max`; none where the system has no randomness to give.
fn jitter(max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    getrandom::u64().map(|r| Duration::from_millis(r % max_ms)).unwrap_or(Duration::ZERO)
}
