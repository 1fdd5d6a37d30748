//! One authenticated call to an OpenStack service: the token (renewed when
//! due and once on a 401), the catalog endpoint, the microversion headers,
//! and OpenStack's answers turned into `DriverError`s that say whether to
//! try again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use tokio::sync::Mutex;

use super::keystone::{self, Session};
use crate::DriverError;

/// The microversions asked for on every call. Without them each service
/// answers in its oldest shapes, which change under us as clouds upgrade.
///
/// - compute 2.60 (Queens): the server embeds its flavor (vcpus, ram; from
///   2.47), so sizes are read without a flavor lookup, and `networks` is
///   required (2.37) so a server never lands on a network by chance. Queens
///   is the oldest release still common in district clouds.
/// - volume 3.42 (Pike): the lowest that extends a volume while attached
///   (`in-use`), which growing a host's data disk needs.
/// - placement 1.14 (Queens): providers report their root and parent, so
///   nested providers (each with its own inventory) are visible; their
///   inventories are summed, never counted twice.
pub(crate) const COMPUTE_MICROVERSION: &str = "2.60";
pub(crate) const VOLUME_MICROVERSION: &str = "3.42";
pub(crate) const PLACEMENT_MICROVERSION: &str = "1.14";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Compute,
    Volume,
    Placement,
}

impl Service {
    /// Catalog types, preferred first: Cinder is `block-storage` in newer
    /// catalogs and `volumev3` in older ones.
    pub fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Compute => &["compute"],
            Service::Volume => &["block-storage", "volumev3"],
            Service::Placement => &["placement"],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Service::Compute => "compute (Nova)",
            Service::Volume => "block storage (Cinder v3)",
            Service::Placement => "placement",
        }
    }

    fn headers(self) -> Vec<(&'static str, String)> {
        match self {
            // Nova took the generic header from 2.27; the old one too keeps
            // proxies that only pass the old one working.
            Service::Compute => vec![
                ("OpenStack-API-Version", format!("compute {COMPUTE_MICROVERSION}")),
                ("X-OpenStack-Nova-API-Version", COMPUTE_MICROVERSION.to_owned()),
            ],
            Service::Volume => vec![("OpenStack-API-Version", format!("volume {VOLUME_MICROVERSION}"))],
            Service::Placement => {
                vec![("OpenStack-API-Version", format!("placement {PLACEMENT_MICROVERSION}"))]
            }
        }
    }
}

pub(crate) struct Client {
    pub platform: String,
    http: reqwest::Client,
    tokens_url: String,
    auth_body: Value,
    region: String,
    interface: String,
    wait_timeout: Duration,
    session: Mutex<Option<Arc<Session>>>,
}

impl Client {
    pub fn new(
        platform: &str,
        http: reqwest::Client,
        tokens_url: String,
        auth_body: Value,
        region: String,
        interface: String,
        wait_timeout: Duration,
    ) -> Client {
        Client {
            platform: platform.to_owned(),
            http,
            tokens_url,
            auth_body,
            region,
            interface,
            wait_timeout,
            session: Mutex::new(None),
        }
    }

    /// The current token, or a new one when there is none or it is due.
    /// Callers queue on the lock, so a renewal is asked for once.
    async fn session(&self) -> Result<Arc<Session>, DriverError> {
        let mut current = self.session.lock().await;
        if let Some(s) = current.as_ref()
            && Instant::now() < s.renew_at
        {
            return Ok(s.clone());
        }
        let fresh = Arc::new(
            keystone::authenticate(&self.http, &self.platform, &self.tokens_url, &self.auth_body).await?,
        );
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops `token` if it is still the current one (another call may have
    /// renewed it already).
    async fn forget(&self, token: &str) {
        let mut current = self.session.lock().await;
        if current.as_ref().is_some_and(|s| s.token == token) {
            *current = None;
        }
    }

    /// Calls `service` at `path` (from its catalog endpoint) and returns the
    /// JSON answer, `None` for an empty one. A 404 is `NotFound`.
    pub async fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, DriverError> {
        let mut renewed = false;
        loop {
            let session = self.session().await?;
            let base = session.endpoint(&self.platform, service, &self.region, &self.interface)?;
            let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| {
                DriverError::Rejected(format!(
                    "{}: bad {} URL {base}{path}: {e}",
                    self.platform,
                    service.label()
                ))
            })?;
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let what = format!("{} {method} {}", self.platform, url.path());
            let mut request =
                self.http.request(method.clone(), url).header("X-Auth-Token", session.token.as_str());
            for (name, value) in service.headers() {
                request = request.header(name, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| DriverError::Unavailable(format!("{what}: no answer: {e}")))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // Revoked, or expired early: one new token, then give up.
                renewed = true;
                self.forget(&session.token).await;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| DriverError::Unavailable(format!("{what}: the answer broke off: {e}")))?;
            if !status.is_success() {
                return Err(classify(&what, status, &read_error(&bytes)));
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                DriverError::Unavailable(format!("{what}: answered {status} with unreadable JSON: {e}"))
            });
        }
    }

    /// A call whose answer must be read as `T`.
    pub async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, DriverError> {
        let value = self.call(service, Method::GET, path, query, None).await?.unwrap_or(Value::Null);
        self.read(&format!("GET {path}"), value)
    }

    pub fn read<T: serde::de::DeserializeOwned>(&self, what: &str, value: Value) -> Result<T, DriverError> {
        serde_json::from_value(value).map_err(|e| {
            DriverError::Unavailable(format!(
                "{}: {what} answered in an unexpected shape: {e}",
                self.platform
            ))
        })
    }

    /// A bounded wait for something the platform does in the background.
    pub fn deadline(&self, what: String) -> Deadline {
        Deadline { until: Instant::now() + self.wait_timeout, delay: Duration::from_millis(500), what }
    }
}

/// Polling with growing pauses until a deadline. The first check comes
/// before any pause: a platform that is quick is not made to wait.
pub(crate) struct Deadline {
    until: Instant,
    delay: Duration,
    what: String,
}

impl Deadline {
    /// Sleeps before the next check, or fails (transiently: the work may
    /// still finish, and a retry will find it by its key) when time is up.
    pub async fn pause(&mut self, seen: &str) -> Result<(), DriverError> {
        if Instant::now() >= self.until {
            return Err(DriverError::Unavailable(format!(
                "{} did not happen in time (last seen: {seen})",
                self.what
            )));
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
        Ok(())
    }
}

/// OpenStack's error answers, by status.
fn classify(what: &str, status: StatusCode, message: &str) -> DriverError {
    let text = format!("{what} answered {status}: {message}");
    let quota = message.to_ascii_lowercase().contains("quota");
    match status.as_u16() {
        404 => DriverError::NotFound(text),
        // Over quota: Nova says 403 (413 before 2.1), Cinder 413.
        413 => DriverError::NoCapacity(text),
        403 if quota => DriverError::NoCapacity(text),
        429 | 500..=599 => DriverError::Unavailable(text),
        _ => DriverError::Rejected(text),
    }
}

/// The message out of an error body: Nova and Cinder's
/// `{"badRequest": {"message": ..}}`, Keystone's `{"error": {"message": ..}}`
/// and Placement's `{"errors": [{"detail": ..}]}`; else the text itself.
pub(crate) fn read_error(bytes: &[u8]) -> String {
    let text = || {
        let t = String::from_utf8_lossy(bytes);
        let t = t.trim();
        if t.is_empty() { "(no body)".to_owned() } else { t.chars().take(300).collect() }
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return text();
    };
    if let Some(first) = body.get("errors").and_then(|e| e.get(0)) {
        let found = first.get("detail").or_else(|| first.get("title")).and_then(Value::as_str);
        return found.map_or_else(text, str::to_owned);
    }
    body.values().find_map(|v| v.get("message").and_then(Value::as_str)).map_or_else(text, str::to_owned)
}
