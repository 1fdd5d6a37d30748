//! Capacity from Placement: every resource provider's inventory of VCPU,
//! MEMORY_MB and DISK_GB, as (total - reserved) * allocation_ratio, and
//! what is allocated against it.
//!
//! DISK_GB is the hypervisors' local disk; Cinder's pools are not in it.
//! Placement is admin-only by default, so the platform's account needs a
//! role that may read it (a reader role in the system scope, or admin).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::client::{Client, Service};
use crate::{CapacityReport, DriverError};

#[derive(Deserialize)]
struct Providers {
    resource_providers: Vec<Provider>,
}

#[derive(Deserialize)]
struct Provider {
    uuid: String,
}

#[derive(Deserialize)]
struct Inventories {
    inventories: BTreeMap<String, Inventory>,
}

#[derive(Deserialize)]
struct Inventory {
    total: u64,
    #[serde(default)]
    reserved: u64,
    #[serde(default = "one")]
    allocation_ratio: f64,
}

fn one() -> f64 {
    1.0
}

impl Inventory {
    fn allocatable(&self) -> u64 {
        // Floors: a fraction of a vCPU cannot be handed out.
        (self.total.saturating_sub(self.reserved) as f64 * self.allocation_ratio).floor() as u64
    }
}

#[derive(Deserialize)]
struct Usages {
    usages: BTreeMap<String, u64>,
}

pub(crate) async fn capacity(client: &Client) -> Result<CapacityReport, DriverError> {
    let Providers { resource_providers } =
        client.fetch(Service::Placement, "/resource_providers", &[]).await?;
    let (mut vcpu, mut memory_mb, mut disk_gb) = (0u64, 0u64, 0u64);
    let (mut used_vcpu, mut used_memory_mb, mut used_disk_gb) = (0u64, 0u64, 0u64);
    for p in &resource_providers {
        let inv: Inventories = client
            .fetch(Service::Placement, &format!("/resource_providers/{}/inventories", p.uuid), &[])
            .await?;
        let used: Usages =
            client.fetch(Service::Placement, &format!("/resource_providers/{}/usages", p.uuid), &[]).await?;
        let cap = |class: &str| inv.inventories.get(class).map_or(0, Inventory::allocatable);
        let use_of = |class: &str| used.usages.get(class).copied().unwrap_or(0);
        vcpu += cap("VCPU");
        memory_mb += cap("MEMORY_MB");
        disk_gb += cap("DISK_GB");
        used_vcpu += use_of("VCPU");
        used_memory_mb += use_of("MEMORY_MB");
        used_disk_gb += use_of("DISK_GB");
    }
    // What can be had rounds down, what is taken rounds up: never promise
    // memory that is not there.
    Ok(CapacityReport {
        vcpu,
        memory_gib: memory_mb / 1024,
        storage_gib: disk_gb,
        used_vcpu,
        used_memory_gib: memory_mb_to_gib_up(used_memory_mb),
        used_storage_gib: used_disk_gb,
    })
}

fn memory_mb_to_gib_up(mb: u64) -> u64 {
    mb.div_ceil(1024)
}
