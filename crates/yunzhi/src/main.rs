//! `yunzhi`: the server, the demo district, and the administrator's chores.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use yunzhi_domain::access::Actor;
use yunzhi_domain::ids::{UnitId, UserId};
use yunzhi_domain::password;
use yunzhi_domain::role::{Role, RoleSet};
use yunzhi_domain::user::{NewUser, UserInput};
use yunzhi_server::seed::DEFAULT_DEMO_PASSWORD;

/// mimalloc rather than the C library's allocator: see the workspace's
/// `Cargo.toml` and docs/performance.md for why and by how much.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use yunzhi_server::{ServerConfig, Settings, auth};
use yunzhi_store::{AuditCtx, Store};

#[derive(Parser)]
#[command(
    name = "yunzhi",
    version,
    about = "Yunzhi (云治): the district e-government cloud management platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// The data folder; the embedded SQLite database lives here.
    #[arg(long, default_value = "yunzhi-data", env = "YUNZHI_DATA")]
    data: PathBuf,
    /// A PostgreSQL URL (postgres://user@host/db) instead of the embedded SQLite.
    #[arg(long, env = "YUNZHI_DATABASE_URL")]
    database: Option<String>,
}

impl StoreArgs {
    /// The key sealing secrets at rest: `YUNZHI_SECRET_KEY`, else the data folder's key file.
    fn secret_key(&self) -> anyhow::Result<[u8; 16]> {
        yunzhi_server::secrets::SecretBox::load_or_create(&self.data)
    }
}

impl StoreArgs {
    fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data)
            .with_context(|| format!("creating the data folder {}", self.data.display()))?;
        Ok(format!("sqlite://{}", self.data.join("yunzhi.db").display()))
    }
}

/// Where notifications also go, beyond the in-app inbox.
#[derive(Args, Clone, Default)]
struct ChannelArgs {
    /// POST every notification as JSON to this URL.
    #[arg(long, env = "YUNZHI_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Sign webhook bodies: `X-Yunzhi-Signature: hmac-sm3=<hex>`.
    #[arg(long, env = "YUNZHI_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Send e-mail through this SMTP server: smtp://user:pass@host:587?tls=required, smtps://host, smtp://relay:25.
    #[arg(long, env = "YUNZHI_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of those e-mails, e.g. "区云管平台 <yunzhi@qingpu.gov.cn>".
    #[arg(long, env = "YUNZHI_SMTP_FROM")]
    smtp_from: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Seeds and serves the demo district (demo accounts, movable clock).
        #[arg(long)]
        demo: bool,
        #[arg(long, default_value = "127.0.0.1:8080", env = "YUNZHI_LISTEN")]
        listen: SocketAddr,
        #[command(flatten)]
        limits: Limits,
        #[command(flatten)]
        channels: ChannelArgs,
    },
    /// Runs the demo district: `serve --demo` with its own data folder.
    Demo {
        #[arg(long, default_value = "yunzhi-demo")]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080", env = "YUNZHI_LISTEN")]
        listen: SocketAddr,
    },
    /// Prints the SM3 digest of each agent binary given, one line each, in
    /// the form `serve --agent-releases` reads.
    AgentDigest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Prints the OpenAPI document of the HTTP API.
    Openapi,
    /// Brings the database schema up to date and exits.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Measures the performance figures on a generated fleet, side by side
    /// with Prometheus from Debian (`prometheus`, `promtool`) on the same data.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
    /// Administrator's chores on the database, as the machine's operator.
    Admin {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        chore: Chore,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Remote-write over HTTP to `yunzhi serve` and to Prometheus's receiver:
    /// samples per server CPU-second, end to end to durable storage.
    Ingest(yunzhi_bench::ingest::Args),
    /// The fleet analysis from rollups and from raw storage, the same
    /// question in PromQL, bytes per sample, and memory.
    Fleet(yunzhi_bench::fleet::Args),
}

#[derive(Subcommand)]
enum Chore {
    /// Creates an account; prints the second-factor enrolment URI when the role needs one.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        /// A role: unit_user, unit_admin, cloud_admin, infra_chief, bdc_leader, office, sys_admin, sec_admin, audit_admin.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long)]
        unit_id: Option<i64>,
        /// Where e-mail notices go.
        #[arg(long)]
        email: Option<String>,
        /// The password; read from standard input when not given.
        #[arg(long, env = "YUNZHI_NEW_PASSWORD")]
        password: Option<String>,
    },
    /// Sets a new password and ends the account's sessions.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long, env = "YUNZHI_NEW_PASSWORD")]
        password: Option<String>,
    },
    /// Lifts a lockout.
    Unlock {
        #[arg(long)]
        username: String,
    },
    /// Walks the audit chain and names the first broken record.
    AuditVerify,
    /// The statutory working-day calendar.
    Calendar {
        #[command(subcommand)]
        action: CalendarChore,
    },
}

#[derive(Subcommand)]
enum CalendarChore {
    /// Lists the years the calendar knows.
    List,
    /// Loads one or more years from a JSON file in the shipped format:
    /// `{"years": [{"year": 2027, "source": "…", "holidays": [...], "workdays": [...]}]}`.
    Import { file: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The log goes to stderr: stdout carries what a command prints for its
    // user (the demo's sign-in table, a benchmark's figures).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { store, demo, listen, limits, channels } => {
            let key = store.secret_key()?;
            serve(store.url()?, key, &store.data, demo, listen, limits, channels).await
        }
        Command::Bench { which } => {
            let figures = match which {
                Bench::Ingest(args) => yunzhi_bench::ingest::run(&args).await?,
                Bench::Fleet(args) => yunzhi_bench::fleet::run(&args).await?,
            };
            println!();
            for f in figures {
                println!("{}", f.line());
            }
            Ok(())
        }
        Command::Demo { data, listen } => {
            let store = StoreArgs { data, database: None };
            serve(
                store.url()?,
                store.secret_key()?,
                &store.data,
                true,
                listen,
                Limits::parse_from(["demo"]),
                ChannelArgs::default(),
            )
            .await
        }
        Command::AgentDigest { files } => {
            for f in files {
                let digest = yunzhi_server::releases::digest_of_file(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                println!("{digest}  {}", f.display());
            }
            Ok(())
        }
        Command::Openapi => {
            println!("{}", yunzhi_server::api::openapi::document_json()?);
            Ok(())
        }
        Command::Migrate { store } => {
            let s = Store::open(&store.url()?).await?;
            let ran = s.migrate().await?;
            println!("{ran} migration(s) applied; the schema is up to date");
            Ok(())
        }
        Command::Admin { store, chore } => admin(&store.url()?, store.secret_key()?, chore).await,
    }
}

/// The configurable limits of `serve`.
#[derive(Parser, Clone)]
struct Limits {
    /// Minutes an account stays locked after 5 failed sign-ins.
    #[arg(long = "lockout-minutes", default_value_t = 15)]
    lockout: i64,
    /// Minutes without use after which a session expires.
    #[arg(long = "session-idle-minutes", default_value_t = 30)]
    idle: i64,
    /// Share of its quota an expansion may take a system to (Art. 10: 120 %).
    #[arg(long = "expansion-limit-percent", default_value_t = 120)]
    expansion: u32,
    /// Days after expiry before suspended temporary resources are reclaimed (Art. 12).
    #[arg(long = "temporary-grace-days", default_value_t = 14)]
    grace: i64,
    /// Seconds a running job stays its worker's without renewal; a job
    /// whose server died is taken over after this long.
    #[arg(long = "job-lease-seconds", default_value_t = 30)]
    job_lease: i64,
    /// Minutes between two inventory passes over each platform.
    #[arg(long = "reconcile-minutes", default_value_t = 10)]
    reconcile: i64,
    /// Days of raw monitoring readings kept in the data folder's `raw/`
    /// (the hourly and daily rollups are kept longer, in the database).
    #[arg(long = "raw-retention-days", default_value_t = 35)]
    raw_retention: u32,
    /// Days of hourly and daily rollups kept in the database (at least 400).
    #[arg(long = "rollup-retention-days", default_value_t = yunzhi_domain::monitoring::MIN_ROLLUP_DAYS)]
    rollup_retention: u32,
    /// Seconds a remote-write moment waits for the rest of its series
    /// (Prometheus sends a host's series through several shards).
    #[arg(long = "remote-write-idle-seconds", default_value_t = 30)]
    remote_write_idle: u64,
    /// Remote-write requests kept but not yet turned into readings beyond
    /// which senders are asked to wait (503 with Retry-After).
    #[arg(long = "remote-write-backlog", default_value_t = 10_000)]
    remote_write_backlog: usize,
    /// Working days a warning gives a unit to rectify or explain (Art. 14).
    #[arg(long = "rectification-days", default_value_t = 10)]
    rectification_days: i64,
    /// The released agent builds: a file with one SM3 digest a line, as
    /// `yunzhi agent-digest` prints. An agent reporting another digest is
    /// found tampered with; without this file digests are not checked.
    #[arg(long = "agent-releases", env = "YUNZHI_AGENT_RELEASES")]
    agent_releases: Option<PathBuf>,
}

async fn serve(
    url: String,
    secret_key: [u8; 16],
    data: &std::path::Path,
    demo: bool,
    listen: SocketAddr,
    limits: Limits,
    channels: ChannelArgs,
) -> anyhow::Result<()> {
    if !(1..=1440).contains(&limits.lockout) || !(1..=1440).contains(&limits.idle) {
        bail!("--lockout-minutes and --session-idle-minutes must be between 1 and 1440");
    }
    if !(100..=200).contains(&limits.expansion) {
        bail!("--expansion-limit-percent must be between 100 and 200 (the regulation's is 120)");
    }
    if !(0..=365).contains(&limits.grace) {
        bail!("--temporary-grace-days must be between 0 and 365");
    }
    if !(1..=3600).contains(&limits.job_lease) {
        bail!("--job-lease-seconds must be between 1 and 3600");
    }
    if !(1..=1440).contains(&limits.reconcile) {
        bail!("--reconcile-minutes must be between 1 and 1440");
    }
    if !(2..=3660).contains(&limits.raw_retention) {
        bail!("--raw-retention-days must be between 2 and 3660");
    }
    if !(1..=3600).contains(&limits.remote_write_idle) {
        bail!("--remote-write-idle-seconds must be between 1 and 3600");
    }
    let min_rollups = yunzhi_domain::monitoring::MIN_ROLLUP_DAYS;
    if !(min_rollups..=3660).contains(&limits.rollup_retention) {
        bail!(
            "--rollup-retention-days must be between {min_rollups} and 3660 (the long-term rules look back up to 400 days)"
        );
    }
    if !(1..=1_000_000).contains(&limits.remote_write_backlog) {
        bail!("--remote-write-backlog must be between 1 and 1000000 requests");
    }
    if !(1..=60).contains(&limits.rectification_days) {
        bail!("--rectification-days must be between 1 and 60 working days");
    }
    let mut agent_digests = match &limits.agent_releases {
        Some(file) => yunzhi_server::releases::load(file)?,
        None => Vec::new(),
    };
    // The demo's agent build is one of those released.
    if demo {
        agent_digests.push(yunzhi_server::demo_agents::demo_agent_digest());
    }
    let demo_password =
        std::env::var("YUNZHI_DEMO_PASSWORD").unwrap_or_else(|_| DEFAULT_DEMO_PASSWORD.to_owned());
    if demo {
        password::check("YUNZHI_DEMO_PASSWORD", &demo_password, "")
            .map_err(|e| anyhow::anyhow!("YUNZHI_DEMO_PASSWORD: {e}"))?;
        println!(
            "Demo district: sign in as cloud_admin, infra_chief, bdc_leader, office, sys_admin, sec_admin,"
        );
        println!(
            "audit_admin, unit1_user, unit1_admin, unit2_user or unit2_admin with the password {demo_password}"
        );
        println!(
            "(demo accounts need no second factor in demo mode). Open http://{listen}/healthz to check."
        );
    }
    let sla =
        yunzhi_domain::request::SlaPolicy { expansion_limit_percent: limits.expansion, ..Default::default() };
    let settings = Settings {
        demo,
        lockout_duration: jiff::SignedDuration::from_mins(limits.lockout),
        session_idle: jiff::SignedDuration::from_mins(limits.idle),
        sla,
        temporary_grace_days: limits.grace,
        // The demo's simulated platforms answer as real ones do: a call
        // takes a moment, a host's creation a little longer.
        simulator_faults: yunzhi_drivers::simulator::Faults {
            latency: if demo { std::time::Duration::from_millis(100) } else { std::time::Duration::ZERO },
            ..Default::default()
        },
        // The demo's simulated hosts report as agents would.
        demo_agents: demo,
        agent_digests,
        rectification_days: limits.rectification_days,
        job_lease: jiff::SignedDuration::from_secs(limits.job_lease),
        reconcile_every: jiff::SignedDuration::from_mins(limits.reconcile),
        raw_retention_days: limits.raw_retention,
        rollup_retention_days: limits.rollup_retention,
        remote_write_idle: std::time::Duration::from_secs(limits.remote_write_idle),
        remote_write_backlog: limits.remote_write_backlog,
        ..Settings::default()
    };
    yunzhi_server::serve_forever(ServerConfig {
        listen,
        database_url: url,
        settings,
        demo_password,
        secret_key,
        simulator_dir: Some(data.join("simulator")),
        raw_dir: Some(data.join("raw")),
        analysis_dir: Some(data.join("analysis")),
        webhook_url: channels.webhook_url,
        webhook_secret: channels.webhook_secret,
        smtp_url: channels.smtp_url,
        smtp_from: channels.smtp_from,
    })
    .await
}

fn read_password(given: Option<String>) -> anyhow::Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    eprintln!("password:");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn operator() -> Actor {
    Actor {
        user_id: UserId(0),
        username: "cli".into(),
        roles: RoleSet::from_stored(vec![Role::SysAdmin]),
        unit_id: None,
    }
}

fn cli_ctx() -> AuditCtx {
    let who = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    AuditCtx {
        actor_id: None,
        actor: format!("cli:{who}"),
        roles: "sys_admin".into(),
        source: Some("local".into()),
        at: jiff::Timestamp::now(),
    }
}

async fn admin(url: &str, secret_key: [u8; 16], chore: Chore) -> anyhow::Result<()> {
    let store = Store::open_and_migrate(url).await?;
    // What the server seeds at start (catalog, shipped calendar years), so
    // that chores on a database the server has not opened yet see them.
    yunzhi_server::seed::defaults(&store, jiff::Timestamp::now()).await?;
    let accounts = operator().account_admin().context("the operator manages accounts")?;
    match chore {
        Chore::CreateUser { username, display_name, roles, unit_id, email, password } => {
            let input = UserInput {
                username,
                display_name,
                password: read_password(password)?,
                roles,
                unit_id,
                email,
            };
            let new = NewUser::parse(&input).map_err(|e| {
                anyhow::anyhow!(
                    e.0.iter().map(|f| format!("{}: {}", f.field, f.detail)).collect::<Vec<_>>().join("\n")
                )
            })?;
            if let Some(unit) = new.unit_id {
                let all = operator().reader().context("the operator reads units")?;
                if store.unit(all.scope(), UnitId(unit.0)).await?.is_none() {
                    bail!("there is no unit {}", unit.0);
                }
            }
            let hash = auth::hash_password(&new.password)?;
            let secret =
                if new.roles.requires_second_factor() { Some(auth::new_totp_secret()?) } else { None };
            let mut tx = store.begin().await?;
            let sealer = yunzhi_server::secrets::SecretBox::new(secret_key);
            let sealed = secret
                .as_deref()
                .map(|s| sealer.seal(s.as_bytes(), &format!("totp:{}", new.username)))
                .transpose()?;
            let user = tx.create_user(&accounts, &cli_ctx(), &new, &hash, sealed.as_deref(), false).await?;
            tx.commit().await?;
            println!("created account {} (id {})", user.username, user.id);
            if let Some(s) = secret {
                println!("second factor: add this to an authenticator app (shown once):");
                println!("{}", auth::totp_uri(&s, &user.username));
            }
        }
        Chore::ResetPassword { username, password } => {
            let pw = read_password(password)?;
            password::check("password", &pw, &username).map_err(|e| anyhow::anyhow!("{e}"))?;
            let hash = auth::hash_password(&pw)?;
            let mut tx = store.begin().await?;
            let user = tx
                .user_by_username(&username)
                .await?
                .with_context(|| format!("there is no account {username}"))?;
            tx.set_password(&accounts, &cli_ctx(), user.id, &hash).await?;
            tx.commit().await?;
            println!("password of {username} set; its sessions have ended");
        }
        Chore::Unlock { username } => {
            let mut tx = store.begin().await?;
            let user = tx
                .user_by_username(&username)
                .await?
                .with_context(|| format!("there is no account {username}"))?;
            tx.unlock_user(&accounts, &cli_ctx(), user.id).await?;
            tx.commit().await?;
            println!("{username} unlocked");
        }
        Chore::Calendar { action: CalendarChore::List } => {
            for y in store.calendar().await?.years() {
                println!(
                    "{}  {} holidays, {} make-up working days  ({})",
                    y.year,
                    y.holidays.len(),
                    y.workdays.len(),
                    y.source
                );
            }
        }
        Chore::Calendar { action: CalendarChore::Import { file } } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let years = yunzhi_domain::calendar::parse_file(&text).map_err(|e| {
                anyhow::anyhow!(
                    e.0.iter().map(|f| format!("{}: {}", f.field, f.detail)).collect::<Vec<_>>().join("\n")
                )
            })?;
            let editor = operator().calendar_editor().context("the operator edits the calendar")?;
            let mut tx = store.begin().await?;
            for y in &years {
                let changed = tx.put_calendar_year(&editor, &cli_ctx(), y).await?;
                println!("{}: {}", y.year, if changed { "loaded" } else { "unchanged" });
            }
            tx.commit().await?;
        }
        Chore::AuditVerify => {
            let report = store.audit_verify_local().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.ok {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
