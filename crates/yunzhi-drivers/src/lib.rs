//! Cloud platform drivers (云平台驱动) behind one interface.
//!
//! Every call is idempotent, keyed by the Yunzhi resource key the caller
//! chooses (`yz-r<request>-<n>`), which the platform keeps beside the
//! resource (a name, tag or metadata): a retried `create` finds what the
//! first attempt made instead of making a second one. Failures say whether
//! they are worth retrying. Drivers know nothing of approvals or HTTP.

#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod openstack;
pub mod simulator;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A future a driver returns; boxed so drivers can sit behind `dyn`.
pub type DriverFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DriverError>> + Send + 'a>>;

/// What kind of thing a platform makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A virtual machine: vCPU and memory, with `storage_gib` of data disk.
    #[default]
    Host,
    /// A block storage volume of `storage_gib`.
    Volume,
    /// A managed service (object or file storage, database, load balancer,
    /// address, security service) that only counts against capacity.
    Service,
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSpec {
    /// The idempotency key, kept on the platform side.
    pub key: String,
    /// A readable name for the platform's own console (`s3-r12-ecs-01`).
    pub name: String,
    pub kind: ResourceKind,
    pub vcpu: u32,
    pub memory_gib: u32,
    pub storage_gib: u32,
    pub image: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteState {
    Active,
    Stopped,
}

/// A resource as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// The platform's own id.
    pub remote_id: String,
    pub key: String,
    /// The name the platform shows (a server's or domain's name), so an
    /// orphan can be recognised by the people who made it.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: ResourceKind,
    pub state: RemoteState,
    pub vcpu: u32,
    pub memory_gib: u32,
    pub storage_gib: u32,
}

/// A platform's allocatable capacity and what is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapacityReport {
    pub vcpu: u64,
    pub memory_gib: u64,
    pub storage_gib: u64,
    pub used_vcpu: u64,
    pub used_memory_gib: u64,
    pub used_storage_gib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The platform has no room for it: wait or place elsewhere.
    #[error("no_capacity: {0}")]
    NoCapacity(String),
    /// No resource with this key.
    #[error("not_found: {0}")]
    NotFound(String),
    /// The platform did not answer, or answered with a transient error.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The platform refused the call for good.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl DriverError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DriverError::Unavailable(_) | DriverError::NoCapacity(_))
    }
}

/// One cloud platform.
pub trait CloudDriver: Send + Sync {
    /// Creates the resource, or returns the one already made under `spec.key`.
    fn create<'a>(&'a self, spec: &'a ResourceSpec) -> DriverFuture<'a, Remote>;
    /// The resource under `key`, if the platform has one.
    fn get<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Option<Remote>>;
    /// Changes the size; the same size again is a no-op.
    fn resize<'a>(
        &'a self,
        key: &'a str,
        vcpu: u32,
        memory_gib: u32,
        storage_gib: u32,
    ) -> DriverFuture<'a, Remote>;
    /// Stops it, keeping it; stopping a stopped one is a no-op.
    fn suspend<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote>;
    /// Starts it again; starting a running one is a no-op.
    fn resume<'a>(&'a self, key: &'a str) -> DriverFuture<'a, Remote>;
    /// Deletes it for good; deleting what is gone succeeds.
    fn delete<'a>(&'a self, key: &'a str) -> DriverFuture<'a, ()>;
    /// Everything on the platform, for reconciliation. Resources the
    /// platform has that carry no Yunzhi key (made in its own console) are
    /// listed with an empty `key`, so reconciliation can report them as
    /// orphans.
    fn list(&self) -> DriverFuture<'_, Vec<Remote>>;
    fn capacity(&self) -> DriverFuture<'_, CapacityReport>;
}
