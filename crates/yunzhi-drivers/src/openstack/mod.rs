//! The OpenStack driver: hosts are Nova servers (with a Cinder data volume
//! when they ask for storage), volumes are Cinder volumes, capacity comes
//! from Placement. Managed services are not offered on OpenStack platforms.
//!
//! Every server and volume Yunzhi makes carries its key in the metadata
//! entry `yunzhi_key`; that, not the name (which the cloud's own console
//! may change), is how a retried call finds what an earlier one made. A
//! host's data volume carries the host's key. Servers without the entry are
//! listed with an empty key so reconciliation can report them as orphans.

mod cinder;
mod client;
mod keystone;
mod nova;
mod placement;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::cinder::Volume;
use self::client::Client;
use self::nova::Server;
use crate::{
    CapacityReport, CloudDriver, DriverError, DriverFuture, Remote, RemoteState, ResourceKind, ResourceSpec,
};

/// The metadata entry (on servers and volumes) holding the Yunzhi key.
pub const KEY_METADATA: &str = "yunzhi_key";

/// Where the cloud is and what to build with; kept in plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenStackConfig {
    /// Keystone, with or without the trailing `/v3`.
    pub auth_url: String,
    pub region: String,
    /// Which catalog endpoints to call: public, internal or admin.
    #[serde(default = "default_interface")]
    pub interface: String,
    /// The project to scope a password token to; application credentials
    /// carry their own project.
    #[serde(default)]
    pub project_name: Option<String>,
    #[serde(default = "default_domain")]
    pub project_domain: String,
    #[serde(default = "default_domain")]
    pub user_domain: String,
    /// The Neutron network servers are attached to.
    pub network_id: String,
    /// The Glance image id servers boot from, unless the spec names one.
    pub image_id: String,
    /// The Cinder volume type; the cloud's default when absent.
    #[serde(default)]
    pub volume_type: Option<String>,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// How long to wait for a server or volume to settle (build, resize,
    /// delete) before answering `Unavailable`.
    #[serde(default = "default_wait_timeout")]
    pub wait_timeout_secs: u64,
}

fn default_interface() -> String {
    "public".into()
}

fn default_domain() -> String {
    "Default".into()
}

fn default_request_timeout() -> u64 {
    30
}

fn default_wait_timeout() -> u64 {
    600
}

/// How to prove who we are; stored sealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpenStackCredentials {
    Password { username: String, password: String },
    ApplicationCredential { id: String, secret: String },
}

/// Secrets stay out of logs.
impl std::fmt::Debug for OpenStackCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenStackCredentials::Password { username, .. } => {
                f.debug_struct("Password").field("username", username).finish_non_exhaustive()
            }
            OpenStackCredentials::ApplicationCredential { id, .. } => {
                f.debug_struct("ApplicationCredential").field("id", id).finish_non_exhaustive()
            }
        }
    }
}

pub struct OpenStack {
    client: Client,
    config: OpenStackConfig,
}

/// A key's resources: its servers (one, unless something went wrong) and
/// its volumes.
struct Found {
    servers: Vec<Server>,
    volumes: Vec<Volume>,
}

impl OpenStack {
    /// A driver for the platform `name`. Checks the configuration; does not
    /// call the cloud (the first call authenticates).
    pub fn new(
        name: &str,
        config: OpenStackConfig,
        credentials: OpenStackCredentials,
    ) -> Result<OpenStack, DriverError> {
        let bad = |what: String| DriverError::Rejected(format!("{name}: {what}"));
        if !["public", "internal", "admin"].contains(&config.interface.as_str()) {
            return Err(bad(format!(
                "interface must be public, internal or admin, not {:?}",
                config.interface
            )));
        }
        if !(config.auth_url.starts_with("http://") || config.auth_url.starts_with("https://")) {
            return Err(bad(format!("auth_url must be an http(s) URL, not {:?}", config.auth_url)));
        }
        for (field, value) in
            [("region", &config.region), ("network_id", &config.network_id), ("image_id", &config.image_id)]
        {
            if value.trim().is_empty() {
                return Err(bad(format!("{field} is empty")));
            }
        }
        if matches!(credentials, OpenStackCredentials::Password { .. })
            && config.project_name.as_deref().is_none_or(|p| p.trim().is_empty())
        {
            return Err(bad("password authentication needs project_name to scope the token to".into()));
        }
        // reqwest's rustls wants a process-wide provider; the server
        // installs ring at start, this covers anything else (tests, tools).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.request_timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(config.request_timeout_secs.clamp(1, 10)))
            .build()
            .map_err(|e| bad(format!("cannot make an HTTP client: {e}")))?;
        let client = Client::new(
            name,
            http,
            keystone::tokens_url(&config.auth_url),
            keystone::auth_body(&config, &credentials),
            config.region.clone(),
            config.interface.clone(),
            Duration::from_secs(config.wait_timeout_secs),
        );
        Ok(OpenStack { client, config })
    }

    fn platform(&self) -> &str {
        &self.client.platform
    }

    async fn find(&self, key: &str) -> Result<Found, DriverError> {
        let servers = nova::servers(&self.client).await?;
        let volumes = cinder::volumes(&self.client).await?;
        Ok(Found {
            servers: servers.into_iter().filter(|s| s.key() == Some(key)).collect(),
            volumes: volumes.into_iter().filter(|v| v.key() == Some(key)).collect(),
        })
    }

    fn not_found(&self, key: &str) -> DriverError {
        DriverError::NotFound(format!("{}: nothing carries the key {key}", self.platform()))
    }

    async fn create_host(&self, spec: &ResourceSpec) -> Result<Remote, DriverError> {
        let found = self.find(&spec.key).await?;
        let mut server = None;
        for s in found.servers {
            if s.status == "ERROR" {
                // A failed build is of no use; it goes, and we build anew.
                nova::delete(&self.client, &s.id).await?;
            } else if server.is_none() {
                server = Some(s);
            }
        }
        let server = match server {
            Some(s) => s,
            None => {
                let flavor = nova::fitting_flavor(&self.client, spec.vcpu, spec.memory_gib).await?;
                let new = nova::NewServer {
                    name: &spec.name,
                    key: &spec.key,
                    flavor_id: &flavor.id,
                    image_id: spec.image.as_deref().unwrap_or(&self.config.image_id),
                    network_id: &self.config.network_id,
                };
                let id = nova::create(&self.client, &new).await?;
                match nova::wait(&self.client, &id, "ACTIVE", settled).await {
                    Ok(s) => s,
                    Err(e) => {
                        // A server that failed to build is removed, so the
                        // retry starts clean; the error says why it failed.
                        if matches!(e, DriverError::NoCapacity(_) | DriverError::Unavailable(_)) {
                            let _ = nova::delete(&self.client, &id).await;
                        }
                        return Err(e);
                    }
                }
            }
        };
        let server = if settled(&server) {
            server
        } else {
            nova::wait(&self.client, &server.id, "ACTIVE", settled).await?
        };
        let mut volumes = found.volumes;
        if spec.storage_gib > 0 && volumes.is_empty() {
            let name = format!("{}-data", spec.name);
            volumes.push(self.new_volume(&name, &spec.key, spec.storage_gib).await?);
        }
        for v in &mut volumes {
            if !v.attached_to(&server.id) {
                *v = self.attach(&server.id, v).await?;
            }
        }
        Ok(host_remote(&server, &volumes))
    }

    /// Makes a volume and waits until it can be used.
    async fn new_volume(&self, name: &str, key: &str, size_gib: u32) -> Result<Volume, DriverError> {
        let v = cinder::create(&self.client, name, key, size_gib, self.config.volume_type.as_deref()).await?;
        match cinder::wait(&self.client, &v.id, "available", Volume::ready).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if matches!(e, DriverError::NoCapacity(_)) {
                    let _ = cinder::delete(&self.client, &v.id).await;
                }
                Err(e)
            }
        }
    }

    async fn attach(&self, server_id: &str, v: &Volume) -> Result<Volume, DriverError> {
        let v = cinder::wait(&self.client, &v.id, "available", Volume::ready).await?;
        if !v.attached_to(server_id) {
            nova::attach(&self.client, server_id, &v.id).await?;
        }
        cinder::wait(&self.client, &v.id, "in-use", |v| v.status == "in-use").await
    }

    async fn create_volume(&self, spec: &ResourceSpec) -> Result<Remote, DriverError> {
        let found = self.find(&spec.key).await?;
        if let Some(v) = found.volumes.first() {
            let v = cinder::wait(&self.client, &v.id, "available", Volume::ready).await?;
            return Ok(volume_remote(&v));
        }
        if spec.storage_gib == 0 {
            return Err(DriverError::Rejected(format!(
                "{}: a volume of 0 GiB for {}",
                self.platform(),
                spec.key
            )));
        }
        let v = self.new_volume(&spec.name, &spec.key, spec.storage_gib).await?;
        Ok(volume_remote(&v))
    }

    async fn resize_host(
        &self,
        server: Server,
        volumes: Vec<Volume>,
        vcpu: u32,
        memory_gib: u32,
        storage_gib: u32,
    ) -> Result<Remote, DriverError> {
        let current: u64 = volumes.iter().map(|v| v.size).sum();
        if u64::from(storage_gib) < current {
            return Err(self.no_shrink(server.key().unwrap_or_default(), current, storage_gib));
        }
        let flavor = nova::fitting_flavor(&self.client, vcpu, memory_gib).await?;
        let mut server = server;
        // An earlier resize whose confirmation was lost is finished first.
        if server.status == "VERIFY_RESIZE" {
            nova::action(&self.client, &server.id, "confirmResize", Value::Null).await?;
            server = nova::wait(&self.client, &server.id, "resized", settled).await?;
        }
        if !server.has_flavor(&flavor) {
            nova::action(&self.client, &server.id, "resize", json!({"flavorRef": flavor.id})).await?;
            let resized = nova::wait(&self.client, &server.id, "VERIFY_RESIZE", |s| {
                s.status == "VERIFY_RESIZE" || (settled(s) && s.has_flavor(&flavor))
            })
            .await?;
            if resized.status == "VERIFY_RESIZE" {
                nova::action(&self.client, &server.id, "confirmResize", Value::Null).await?;
            }
            server = nova::wait(&self.client, &server.id, "resized", settled).await?;
        }
        let mut volumes = volumes;
        let key = server.key().unwrap_or_default().to_owned();
        if u64::from(storage_gib) > current {
            match volumes.first_mut() {
                Some(v) => {
                    let new_size = v.size + (u64::from(storage_gib) - current);
                    *v = self.extend(v, new_size).await?;
                }
                None => {
                    let name = format!("{}-data", server.name);
                    let v = self.new_volume(&name, &key, storage_gib).await?;
                    volumes.push(self.attach(&server.id, &v).await?);
                }
            }
        }
        Ok(host_remote(&server, &volumes))
    }

    async fn extend(&self, v: &Volume, new_size: u64) -> Result<Volume, DriverError> {
        if new_size > v.size {
            cinder::extend(&self.client, &v.id, new_size).await?;
        }
        cinder::wait(&self.client, &v.id, "extended", |x| x.size >= new_size && x.ready()).await
    }

    fn no_shrink(&self, key: &str, current: u64, asked: u32) -> DriverError {
        DriverError::Rejected(format!(
            "{}: {key} has {current} GiB of volumes and a volume cannot shrink to {asked} GiB",
            self.platform()
        ))
    }

    /// Stops or starts the key's server; a volume has no power state, so
    /// for a volume this is a no-op.
    async fn power(&self, key: &str, on: bool) -> Result<Remote, DriverError> {
        let found = self.find(key).await?;
        let Some(server) = found.servers.into_iter().next() else {
            return found.volumes.first().map(volume_remote).ok_or_else(|| self.not_found(key));
        };
        let (goal, action) = if on { ("ACTIVE", "os-start") } else { ("SHUTOFF", "os-stop") };
        if server.status != goal {
            match nova::action(&self.client, &server.id, action, Value::Null).await {
                Ok(()) => {}
                // 409: a stop and a start crossed; the wait below decides.
                Err(DriverError::Rejected(m)) if m.contains("409") => {}
                Err(e) => return Err(e),
            }
        }
        let server = nova::wait(&self.client, &server.id, goal, |s| s.status == goal).await?;
        Ok(host_remote(&server, &found.volumes))
    }
}

/// A server no longer in the middle of something.
fn settled(s: &Server) -> bool {
    s.status == "ACTIVE" || s.status == "SHUTOFF"
}

fn state_of(status: &str) -> RemoteState {
    match status {
        "SHUTOFF" | "SUSPENDED" | "PAUSED" | "SHELVED" | "SHELVED_OFFLOADED" => RemoteState::Stopped,
        _ => RemoteState::Active,
    }
}

/// A host as Yunzhi sees it: the flavor's vCPU and memory (rounded up to
/// GiB), its data volumes' GiB (the flavor's root disk is not counted).
fn host_remote(s: &Server, volumes: &[Volume]) -> Remote {
    Remote {
        remote_id: s.id.clone(),
        key: s.key().unwrap_or_default().to_owned(),
        name: s.name.clone(),
        kind: ResourceKind::Host,
        state: state_of(&s.status),
        vcpu: s.flavor.vcpus,
        memory_gib: u32::try_from(s.flavor.ram.div_ceil(1024)).unwrap_or(u32::MAX),
        storage_gib: u32::try_from(volumes.iter().map(|v| v.size).sum::<u64>()).unwrap_or(u32::MAX),
    }
}

fn volume_remote(v: &Volume) -> Remote {
    Remote {
        remote_id: v.id.clone(),
        key: v.key().unwrap_or_default().to_owned(),
        name: v.name.clone().unwrap_or_default(),
        kind: ResourceKind::Volume,
        state: RemoteState::Active,
        vcpu: 0,
        memory_gib: 0,
        storage_gib: u32::try_from(v.size).unwrap_or(u32::MAX),
    }
}

impl CloudDriver for OpenStack {
    fn create<'a>(&'a self, spec: &'a ResourceSpec) -> DriverFuture<'a, Remote> {
        Box::pin(async move {
            match spec.kind {
                ResourceKind::Host => self.create_host(spec).await,
                ResourceKind::Volume => self.create_volume(spec).await,
                ResourceKind::Service => Err(DriverError::Rejected(format!(
                    "{}: OpenStack platforms do not provide managed services in Yunzhi ({} asked for one)",
                    self.platform(),
                    spec.key
                ))),
            }
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Option<Remote>> {
        Box::pin(async move {
            let found = self.find(key).await?;
            Ok(match found.servers.first() {
                Some(s) => Some(host_remote(s, &found.volumes)),
                None => found.volumes.first().map(volume_remote),
            })
        })
    }

    fn resize<'a>(
        &'a self,
        key: &'a str,
        vcpu: u32,
        memory_gib: u32,
        storage_gib: u32,
    ) -> DriverFuture<'a, Remote> {
        Box::pin(async move {
            let found = self.find(key).await?;
            if let Some(server) = found.servers.into_iter().next() {
                return self.resize_host(server, found.volumes, vcpu, memory_gib, storage_gib).await;
            }
            let Some(v) = found.volumes.first() else {
                return Err(self.not_found(key));
            };
            if u64::from(storage_gib) < v.size {
                return Err(self.no_shrink(key, v.size, storage_gib));
            }
            Ok(volume_remote(&self.extend(v, u64::from(storage_gib)).await?))
        })
    }

    fn suspend<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote> {
        Box::pin(self.power(key, false))
    }

    fn resume<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote> {
        Box::pin(self.power(key, true))
    }

    fn delete<'a>(&'a self, key: &'a str) -> DriverFuture<'a, ()> {
        Box::pin(async move {
            let found = self.find(key).await?;
            for s in &found.servers {
                nova::delete(&self.client, &s.id).await?;
                nova::wait_gone(&self.client, &s.id).await?;
            }
            for v in &found.volumes {
                // Nova detaches a deleted server's volumes; Cinder refuses to
                // delete one until that is done, and while it is deleting.
                let waited = cinder::wait(&self.client, &v.id, "detached", |x| {
                    x.status == "available" || x.status == "deleting"
                })
                .await;
                match waited {
                    Ok(x) if x.status == "deleting" => {}
                    // An errored volume (read as no room) can be deleted too.
                    Ok(_) | Err(DriverError::NoCapacity(_)) => cinder::delete(&self.client, &v.id).await?,
                    Err(DriverError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            for v in &found.volumes {
                cinder::wait_gone(&self.client, &v.id).await?;
            }
            Ok(())
        })
    }

    fn list(&self) -> DriverFuture<'_, Vec<Remote>> {
        Box::pin(async move {
            let servers = nova::servers(&self.client).await?;
            let volumes = cinder::volumes(&self.client).await?;
            let mut out = Vec::with_capacity(servers.len());
            for s in &servers {
                // Servers without a key are listed too, key empty: orphans
                // for reconciliation to report.
                let theirs: Vec<Volume> = match s.key() {
                    Some(key) => volumes.iter().filter(|v| v.key() == Some(key)).cloned().collect(),
                    None => Vec::new(),
                };
                out.push(host_remote(s, &theirs));
            }
            // Keyed volumes of no server are volumes in their own right;
            // key-less volumes (boot disks and the like) are not listed.
            for v in &volumes {
                if let Some(key) = v.key()
                    && !servers.iter().any(|s| s.key() == Some(key))
                {
                    out.push(volume_remote(v));
                }
            }
            Ok(out)
        })
    }

    fn capacity(&self) -> DriverFuture<'_, CapacityReport> {
        Box::pin(placement::capacity(&self.client))
    }
}
