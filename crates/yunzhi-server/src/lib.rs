//! Yunzhi's HTTP server: the JSON API, authentication, RBAC and tenancy.
//!
//! [`start`] opens the store, migrates, seeds, binds and serves; [`app`]
//! builds the router alone, for callers that bring their own listener.

pub mod api;
pub mod auth;
pub mod console;
pub mod courier;
pub mod demo_agents;
pub mod drivers;
pub mod error;
pub mod extract;
pub mod failpoint;
pub mod idempotent;
pub mod ingest;
pub mod metrics;
pub mod raw;
pub mod releases;
pub mod remote_write;
pub mod request_id;
pub mod scheduler;
pub mod secrets;
pub mod seed;
pub mod state;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use yunzhi_domain::clock::{Clock, ShiftableClock};
use yunzhi_store::Store;

use crate::error::ApiError;
pub use crate::state::{AppState, Settings};

/// Everything `yunzhi serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub settings: Settings,
    /// The demo accounts' password (demo mode only).
    pub demo_password: String,
    /// The key that seals secrets at rest (see `secrets`).
    pub secret_key: [u8; 16],
    /// Where simulated platforms keep their inventory; `None` keeps it in memory.
    pub simulator_dir: Option<std::path::PathBuf>,
    /// Where raw readings are kept (see `yunzhi_rawstore`); `None` keeps
    /// only the hourly and daily rollups.
    pub raw_dir: Option<std::path::PathBuf>,
    /// Where the efficiency analysis keeps its checkpoint, so that a
    /// restart does not read every host's days again; `None` keeps none.
    pub analysis_dir: Option<std::path::PathBuf>,
    /// Where notifications also go: a webhook, and e-mail through SMTP.
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
}

impl ServerConfig {
    fn channels(&self) -> anyhow::Result<courier::Channels> {
        let webhook = self
            .webhook_url
            .as_deref()
            .map(|u| courier::Webhook::new(u, self.webhook_secret.clone()))
            .transpose()?;
        let smtp = match (&self.smtp_url, &self.smtp_from) {
            (Some(url), Some(from)) => Some(courier::Smtp::new(url, from)?),
            (Some(_), None) => anyhow::bail!("an SMTP server needs a sender address (YUNZHI_SMTP_FROM)"),
            _ => None,
        };
        Ok(courier::Channels { webhook, smtp })
    }
}

/// The whole application as a router.
pub fn app(state: AppState) -> Router {
    let limit = state.settings.body_limit;
    api::router(state.settings.demo)
        .merge(console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn(request_id::layer))
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a handler panicked")).into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A path nothing serves: a problem document under the API, a page in the
/// console's language elsewhere.
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> axum::response::Response {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/api" || path == "/metrics" || path == "/healthz" {
        ApiError::NotFound.into_response()
    } else {
        let lang =
            console::cookie(&headers, console::i18n::COOKIE).and_then(|v| console::i18n::Lang::parse(&v));
        console::view::error_page_in(console::i18n::Tr::new(lang.unwrap_or_default()), &ApiError::NotFound)
    }
}

/// Opens and migrates the store and seeds what a start needs.
pub async fn prepare(config: &ServerConfig, clock: &ShiftableClock) -> anyhow::Result<Store> {
    let store = Store::open_and_migrate(&config.database_url).await?;
    seed::defaults(&store, clock.now()).await?;
    if config.settings.demo && seed::demo_district(&store, clock.now(), &config.demo_password).await? {
        tracing::info!("demo district ready");
    }
    if !config.settings.demo && store.user_count().await? == 0 {
        tracing::warn!(
            "no accounts yet: create the first system administrator with \
             `yunzhi admin create-user --username admin --display-name 系统管理员 --role sys_admin`"
        );
    }
    Ok(store)
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_background: tokio::sync::watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, finishes what is in flight, closes the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await??;
        let _ = self.stop_background.send(true);
        for b in self.background {
            let _ = b.await;
        }
        self.state.store.close().await;
        Ok(())
    }

    /// Serves until the task ends (Ctrl-C or SIGTERM when started by [`serve_forever`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
    }
}

/// Prepares the store and starts serving on `config.listen` (port 0 picks one).
pub async fn start(config: ServerConfig, clock: Arc<ShiftableClock>) -> anyhow::Result<Running> {
    courier::install_tls();
    let store = prepare(&config, &clock).await?;
    let mut state = AppState::new(store, clock, config.settings.clone());
    state.channels = Arc::new(config.channels()?);
    state.secrets = Arc::new(secrets::SecretBox::new(config.secret_key));
    state.drivers =
        Arc::new(drivers::Drivers::new(config.simulator_dir.clone(), config.settings.simulator_faults));
    if let Some(dir) = &config.raw_dir {
        let raw_config = yunzhi_rawstore::Config {
            retention_days: config.settings.raw_retention_days,
            ..yunzhi_rawstore::Config::default()
        };
        let dir = dir.clone();
        // Opening replays the log of readings not yet sealed into day files.
        let raw =
            tokio::task::spawn_blocking(move || yunzhi_rawstore::RawStore::open(&dir, raw_config)).await??;
        state.raw = Some(Arc::new(raw));
    }
    state.analysis_dir = config.analysis_dir.clone();
    if config.settings.demo {
        // The demo's resources were handed over in the seed; the simulated
        // platforms make them too, so their inventories agree with Yunzhi's.
        seed::place_on_simulators(&state).await?;
    }
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = app(state.clone());
    let (stop_background, stop) = tokio::sync::watch::channel(false);
    let mut background = vec![
        worker::spawn(state.clone(), stop.clone()),
        scheduler::spawn(state.clone(), stop.clone()),
        ingest::spawn(state.clone(), stop.clone()),
        remote_write::spawn(state.clone(), stop.clone()),
        raw::spawn(state.clone(), stop.clone()),
    ];
    if state.channels.any() {
        background.push(courier::spawn(state.clone(), stop.clone()));
    }
    if config.settings.demo && config.settings.demo_agents {
        background.push(demo_agents::spawn(state.clone(), stop.clone()));
    }
    let task = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(Running { addr, state, shutdown: tx, task, stop_background, background })
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve_forever(config: ServerConfig) -> anyhow::Result<()> {
    let running = start(config, Arc::new(ShiftableClock::new())).await?;
    tracing::info!(addr = %running.addr, "yunzhi is listening");
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
