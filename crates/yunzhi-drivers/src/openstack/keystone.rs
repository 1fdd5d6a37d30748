//! Keystone v3: a project-scoped token, and the service catalog that comes
//! with it.
//!
//! The token is kept until shortly before its `expires_at`. Its lifetime is
//! measured on Keystone's own clock (from `issued_at` to `expires_at`) and
//! counted down on ours, so a skewed clock here does not make a dead token
//! look fresh.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{Service, read_error};
use super::{OpenStackConfig, OpenStackCredentials};
use crate::DriverError;

/// A token is renewed this long before it expires: a create with its waits
/// can take minutes, and one that loses its token half-way costs a 401 and a
/// retry. keystoneauth uses the same margin.
const RENEW_MARGIN: Duration = Duration::from_secs(120);

/// A token and where the services are.
#[derive(Debug)]
pub(crate) struct Session {
    pub token: String,
    pub renew_at: Instant,
    catalog: Vec<CatalogEntry>,
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    token: Token,
}

#[derive(Debug, Deserialize)]
struct Token {
    expires_at: jiff::Timestamp,
    issued_at: Option<jiff::Timestamp>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
}

#[derive(Debug, Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Deserialize)]
struct Endpoint {
    interface: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}

/// The identity request body, by the kind of credential.
pub(crate) fn auth_body(config: &OpenStackConfig, credentials: &OpenStackCredentials) -> Value {
    match credentials {
        OpenStackCredentials::Password { username, password } => json!({"auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {
                    "name": username,
                    "domain": {"name": config.user_domain},
                    "password": password,
                }},
            },
            "scope": {"project": {
                "name": config.project_name.as_deref().unwrap_or_default(),
                "domain": {"name": config.project_domain},
            }},
        }}),
        // An application credential is bound to its project: asking for a
        // scope is an error in Keystone.
        OpenStackCredentials::ApplicationCredential { id, secret } => json!({"auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret},
            },
        }}),
    }
}

/// `…/v3/auth/tokens` whether `auth_url` names the version or not.
pub(crate) fn tokens_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") { format!("{base}/auth/tokens") } else { format!("{base}/v3/auth/tokens") }
}

/// Asks Keystone for a token.
pub(crate) async fn authenticate(
    http: &reqwest::Client,
    platform: &str,
    url: &str,
    body: &Value,
) -> Result<Session, DriverError> {
    let unavailable = |e: reqwest::Error| {
        DriverError::Unavailable(format!("{platform}: Keystone at {url} did not answer: {e}"))
    };
    let response = http.post(url).json(body).send().await.map_err(unavailable)?;
    let status = response.status();
    let token = response.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.bytes().await.map_err(unavailable)?;
    if !status.is_success() {
        let message = read_error(&bytes);
        let what = format!("{platform}: Keystone refused a token ({status}): {message}");
        return Err(match status.as_u16() {
            // Wrong credentials or a disabled user: retrying will not help.
            400 | 401 | 403 | 404 => DriverError::Rejected(what),
            _ => DriverError::Unavailable(what),
        });
    }
    let Some(token) = token else {
        return Err(DriverError::Unavailable(format!(
            "{platform}: Keystone answered {status} without an X-Subject-Token header"
        )));
    };
    let body: TokenBody = serde_json::from_slice(&bytes).map_err(|e| {
        DriverError::Unavailable(format!("{platform}: Keystone's token body is unreadable: {e}"))
    })?;
    let issued = body.token.issued_at.unwrap_or_else(jiff::Timestamp::now);
    let lifetime = body.token.expires_at.duration_since(issued);
    let lifetime = Duration::try_from(lifetime).unwrap_or(Duration::ZERO);
    Ok(Session {
        token,
        renew_at: Instant::now() + lifetime.saturating_sub(RENEW_MARGIN),
        catalog: body.token.catalog,
    })
}

impl Session {
    /// The endpoint of `service` for a region and interface, without a
    /// trailing slash.
    pub fn endpoint(
        &self,
        platform: &str,
        service: Service,
        region: &str,
        interface: &str,
    ) -> Result<String, DriverError> {
        let entries: Vec<&CatalogEntry> = service
            .catalog_types()
            .iter()
            .flat_map(|t| self.catalog.iter().filter(move |e| e.kind == *t))
            .collect();
        let found = entries.iter().flat_map(|e| &e.endpoints).find(|ep| {
            ep.interface == interface
                && (ep.region.as_deref() == Some(region) || ep.region_id.as_deref() == Some(region))
        });
        if let Some(ep) = found {
            return Ok(ep.url.trim_end_matches('/').to_owned());
        }
        let offered: Vec<String> = entries
            .iter()
            .flat_map(|e| &e.endpoints)
            .map(|ep| {
                format!(
                    "{}/{}",
                    ep.region.as_deref().or(ep.region_id.as_deref()).unwrap_or("?"),
                    ep.interface
                )
            })
            .collect();
        Err(DriverError::Rejected(if offered.is_empty() {
            format!(
                "{platform}: the service catalog has no {} service (looked for type {})",
                service.label(),
                service.catalog_types().join(" or ")
            )
        } else {
            format!(
                "{platform}: the service catalog has no {} endpoint in region {region} at interface \
                 {interface}; it offers {}",
                service.label(),
                offered.join(", ")
            )
        }))
    }
}
