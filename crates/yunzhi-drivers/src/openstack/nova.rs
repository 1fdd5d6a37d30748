//! Nova calls: flavors, servers and their actions, volume attachments.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::KEY_METADATA;
use super::client::{Client, Service};
use crate::DriverError;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    /// MiB.
    pub ram: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Server {
    pub id: String,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub flavor: EmbeddedFlavor,
    #[serde(default)]
    pub fault: Option<Fault>,
}

impl Server {
    pub fn key(&self) -> Option<&str> {
        self.metadata.get(KEY_METADATA).map(String::as_str)
    }

    pub fn fault_message(&self) -> &str {
        self.fault.as_ref().map_or("no fault recorded", |f| f.message.as_str())
    }

    pub fn has_flavor(&self, flavor: &Flavor) -> bool {
        self.flavor
            .original_name
            .as_deref()
            .map_or(self.flavor.vcpus == flavor.vcpus && self.flavor.ram == flavor.ram, |name| {
                name == flavor.name
            })
    }
}

/// The flavor as a server embeds it from 2.47: sizes, not an id.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EmbeddedFlavor {
    pub vcpus: u32,
    pub ram: u64,
    #[serde(default)]
    pub original_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Fault {
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct Flavors {
    flavors: Vec<Flavor>,
}

#[derive(Deserialize)]
struct ServerPage {
    servers: Vec<Server>,
    #[serde(default)]
    servers_links: Vec<Link>,
}

#[derive(Deserialize)]
pub(crate) struct Link {
    pub rel: String,
}

#[derive(Deserialize)]
struct OneServer {
    server: Server,
}

#[derive(Deserialize)]
struct Created {
    server: CreatedServer,
}

#[derive(Deserialize)]
struct CreatedServer {
    id: String,
}

/// The smallest flavor with at least `vcpu` and `memory_gib`: fewest vCPUs
/// first, then least memory, so nothing is paid for that was not asked.
pub(crate) async fn fitting_flavor(
    client: &Client,
    vcpu: u32,
    memory_gib: u32,
) -> Result<Flavor, DriverError> {
    let Flavors { flavors } = client.fetch(Service::Compute, "/flavors/detail", &[]).await?;
    let memory_mib = u64::from(memory_gib) * 1024;
    let fitting = flavors
        .iter()
        .filter(|f| f.vcpus >= vcpu && f.ram >= memory_mib)
        .min_by(|a, b| (a.vcpus, a.ram, &a.name).cmp(&(b.vcpus, b.ram, &b.name)));
    if let Some(f) = fitting {
        return Ok(f.clone());
    }
    let largest =
        flavors.iter().max_by_key(|f| (f.vcpus, f.ram)).map_or("it has no flavors at all".to_owned(), |f| {
            format!("the largest is {} with {} vCPU and {} MiB", f.name, f.vcpus, f.ram)
        });
    Err(DriverError::Rejected(format!(
        "{}: no flavor has at least {vcpu} vCPU and {memory_gib} GiB memory ({largest})",
        client.platform
    )))
}

/// Every server the project has, following Nova's pages.
pub(crate) async fn servers(client: &Client) -> Result<Vec<Server>, DriverError> {
    let mut all: Vec<Server> = Vec::new();
    loop {
        let marker = all.last().map(|s| s.id.clone());
        let query: Vec<(&str, &str)> = marker.as_deref().map(|m| vec![("marker", m)]).unwrap_or_default();
        let page: ServerPage = client.fetch(Service::Compute, "/servers/detail", &query).await?;
        let more = page.servers_links.iter().any(|l| l.rel == "next") && !page.servers.is_empty();
        all.extend(page.servers);
        if !more {
            return Ok(all);
        }
    }
}

/// The server by id; `None` once it is gone.
pub(crate) async fn server(client: &Client, id: &str) -> Result<Option<Server>, DriverError> {
    match client.fetch::<OneServer>(Service::Compute, &format!("/servers/{id}"), &[]).await {
        Ok(s) => Ok(Some(s.server)),
        Err(DriverError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) struct NewServer<'a> {
    pub name: &'a str,
    pub key: &'a str,
    pub flavor_id: &'a str,
    pub image_id: &'a str,
    pub network_id: &'a str,
}

/// Asks for a server; returns its id.
pub(crate) async fn create(client: &Client, new: &NewServer<'_>) -> Result<String, DriverError> {
    let body = json!({"server": {
        "name": new.name,
        "flavorRef": new.flavor_id,
        "imageRef": new.image_id,
        "networks": [{"uuid": new.network_id}],
        "metadata": {KEY_METADATA: new.key},
    }});
    let answer = client.call(Service::Compute, Method::POST, "/servers", &[], Some(&body)).await?;
    let created: Created = client.read("POST /servers", answer.unwrap_or(Value::Null))?;
    Ok(created.server.id)
}

/// A server action (`os-stop`, `resize`...); `args` is its value.
pub(crate) async fn action(client: &Client, id: &str, name: &str, args: Value) -> Result<(), DriverError> {
    let body = json!({ name: args });
    client.call(Service::Compute, Method::POST, &format!("/servers/{id}/action"), &[], Some(&body)).await?;
    Ok(())
}

/// Deletes the server; one already gone counts as deleted.
pub(crate) async fn delete(client: &Client, id: &str) -> Result<(), DriverError> {
    match client.call(Service::Compute, Method::DELETE, &format!("/servers/{id}"), &[], None).await {
        Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) async fn attach(client: &Client, server_id: &str, volume_id: &str) -> Result<(), DriverError> {
    let body = json!({"volumeAttachment": {"volumeId": volume_id}});
    let path = format!("/servers/{server_id}/os-volume_attachments");
    client.call(Service::Compute, Method::POST, &path, &[], Some(&body)).await?;
    Ok(())
}

/// Polls the server until `done` says so. A server in ERROR ends the wait:
/// `NoCapacity` when the scheduler found no host, else `Unavailable` (a
/// build that failed may well succeed on another try).
pub(crate) async fn wait(
    client: &Client,
    id: &str,
    goal: &str,
    done: impl Fn(&Server) -> bool,
) -> Result<Server, DriverError> {
    let mut deadline = client.deadline(format!("{}: server {id} becoming {goal}", client.platform));
    loop {
        let Some(s) = server(client, id).await? else {
            return Err(DriverError::NotFound(format!("{}: server {id} vanished", client.platform)));
        };
        if done(&s) {
            return Ok(s);
        }
        if s.status == "ERROR" {
            return Err(error_state(client, &s));
        }
        deadline.pause(&s.status).await?;
    }
}

pub(crate) fn error_state(client: &Client, s: &Server) -> DriverError {
    let message = s.fault_message();
    let text = format!("{}: server {} is in ERROR: {message}", client.platform, s.id);
    if message.to_ascii_lowercase().contains("no valid host") {
        DriverError::NoCapacity(text)
    } else {
        DriverError::Unavailable(text)
    }
}

/// Polls until the server is gone.
pub(crate) async fn wait_gone(client: &Client, id: &str) -> Result<(), DriverError> {
    let mut deadline = client.deadline(format!("{}: server {id} being deleted", client.platform));
    loop {
        match server(client, id).await? {
            None => return Ok(()),
            Some(s) => deadline.pause(&s.status).await?,
        }
    }
}
