//! Cinder v3 calls: volumes, growing them, deleting them.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::KEY_METADATA;
use super::client::{Client, Service};
use super::nova::Link;
use crate::DriverError;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Volume {
    pub id: String,
    /// Cinder lets a volume have no name.
    #[serde(default)]
    pub name: Option<String>,
    /// GiB.
    pub size: u64,
    pub status: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

impl Volume {
    pub fn key(&self) -> Option<&str> {
        self.metadata.get(KEY_METADATA).map(String::as_str)
    }

    pub fn attached_to(&self, server_id: &str) -> bool {
        self.attachments.iter().any(|a| a.server_id == server_id)
    }

    /// Settled and usable, attached or not.
    pub fn ready(&self) -> bool {
        self.status == "available" || self.status == "in-use"
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Attachment {
    pub server_id: String,
}

#[derive(Deserialize)]
struct VolumePage {
    volumes: Vec<Volume>,
    #[serde(default)]
    volumes_links: Vec<Link>,
}

#[derive(Deserialize)]
struct OneVolume {
    volume: Volume,
}

/// Every volume the project has, following Cinder's pages.
pub(crate) async fn volumes(client: &Client) -> Result<Vec<Volume>, DriverError> {
    let mut all: Vec<Volume> = Vec::new();
    loop {
        let marker = all.last().map(|v| v.id.clone());
        let query: Vec<(&str, &str)> = marker.as_deref().map(|m| vec![("marker", m)]).unwrap_or_default();
        let page: VolumePage = client.fetch(Service::Volume, "/volumes/detail", &query).await?;
        let more = page.volumes_links.iter().any(|l| l.rel == "next") && !page.volumes.is_empty();
        all.extend(page.volumes);
        if !more {
            return Ok(all);
        }
    }
}

pub(crate) async fn volume(client: &Client, id: &str) -> Result<Option<Volume>, DriverError> {
    match client.fetch::<OneVolume>(Service::Volume, &format!("/volumes/{id}"), &[]).await {
        Ok(v) => Ok(Some(v.volume)),
        Err(DriverError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Asks for a volume carrying the key; returns it as first answered.
pub(crate) async fn create(
    client: &Client,
    name: &str,
    key: &str,
    size_gib: u32,
    volume_type: Option<&str>,
) -> Result<Volume, DriverError> {
    let mut volume = json!({"size": size_gib, "name": name, "metadata": {KEY_METADATA: key}});
    if let Some(t) = volume_type {
        volume["volume_type"] = json!(t);
    }
    let body = json!({ "volume": volume });
    let answer = client.call(Service::Volume, Method::POST, "/volumes", &[], Some(&body)).await?;
    let created: OneVolume = client.read("POST /volumes", answer.unwrap_or(Value::Null))?;
    Ok(created.volume)
}

pub(crate) async fn extend(client: &Client, id: &str, new_size: u64) -> Result<(), DriverError> {
    let body = json!({"os-extend": {"new_size": new_size}});
    client.call(Service::Volume, Method::POST, &format!("/volumes/{id}/action"), &[], Some(&body)).await?;
    Ok(())
}

/// Deletes the volume; one already gone counts as deleted.
pub(crate) async fn delete(client: &Client, id: &str) -> Result<(), DriverError> {
    match client.call(Service::Volume, Method::DELETE, &format!("/volumes/{id}"), &[], None).await {
        Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Polls the volume until `done`; a volume in an `error` state ends it. A
/// volume the scheduler could not place is `error` too, so that is read as
/// no room.
pub(crate) async fn wait(
    client: &Client,
    id: &str,
    goal: &str,
    done: impl Fn(&Volume) -> bool,
) -> Result<Volume, DriverError> {
    let mut deadline = client.deadline(format!("{}: volume {id} becoming {goal}", client.platform));
    loop {
        let Some(v) = volume(client, id).await? else {
            return Err(DriverError::NotFound(format!("{}: volume {id} vanished", client.platform)));
        };
        if done(&v) {
            return Ok(v);
        }
        if v.status == "error" {
            return Err(DriverError::NoCapacity(format!(
                "{}: volume {id} of {} GiB ended in error (no backend had room for it)",
                client.platform, v.size
            )));
        }
        if v.status.starts_with("error") {
            return Err(DriverError::Unavailable(format!(
                "{}: volume {id} is in {} waiting for {goal}",
                client.platform, v.status
            )));
        }
        deadline.pause(&v.status).await?;
    }
}

pub(crate) async fn wait_gone(client: &Client, id: &str) -> Result<(), DriverError> {
    let mut deadline = client.deadline(format!("{}: volume {id} being deleted", client.platform));
    loop {
        match volume(client, id).await? {
            None => return Ok(()),
            Some(v) => deadline.pause(&v.status).await?,
        }
    }
}
