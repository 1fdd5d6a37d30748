//! The driver of each cloud platform, made from its record in the database
//! (driver, endpoint, settings, sealed credentials) and kept until the
//! record changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;
use yunzhi_domain::ids::PlatformId;
use yunzhi_domain::invalid::{FieldError, Invalid};
use yunzhi_domain::platform::DriverKind;
use yunzhi_drivers::CloudDriver;
use yunzhi_drivers::simulator::{Faults, Pool, Simulator};
use yunzhi_store::PlatformRecord;

use crate::state::AppState;

/// A driver and the `updated_at` of the platform record it was made from.
type Made = (i64, Arc<dyn CloudDriver>);

pub struct Drivers {
    /// Where simulated platforms keep their inventory (`None`: in memory).
    dir: Option<PathBuf>,
    /// Faults the simulated platforms inject (none, outside tests and drills).
    faults: Faults,
    /// Each platform's driver, with the `updated_at` of the record it was made from.
    made: Mutex<HashMap<i64, Made>>,
    /// The simulated platforms again, as simulators: the demo plays their
    /// guests' side through them.
    simulators: Mutex<HashMap<i64, Arc<Simulator>>>,
}

/// The context the credentials of platform `name` are sealed under, so a
/// sealed value copied to another platform's row does not open.
pub fn credentials_context(name: &str) -> String {
    format!("platform-credentials:{name}")
}

impl Drivers {
    pub fn new(dir: Option<PathBuf>, faults: Faults) -> Drivers {
        Drivers { dir, faults, made: Mutex::new(HashMap::new()), simulators: Mutex::new(HashMap::new()) }
    }

    /// The driver of `platform`, made anew when its record changed.
    /// `credentials` are the opened credentials, if it has any.
    pub async fn for_platform(
        &self,
        platform: &PlatformRecord,
        credentials: Option<serde_json::Value>,
    ) -> anyhow::Result<Arc<dyn CloudDriver>> {
        let version = platform.updated_at.0.as_millisecond();
        let mut made = self.made.lock().await;
        if let Some((v, d)) = made.get(&platform.id.0)
            && *v == version
        {
            return Ok(d.clone());
        }
        let driver = self.make(platform, credentials).await?;
        made.insert(platform.id.0, (version, driver.clone()));
        Ok(driver)
    }

    /// The simulator behind simulated platform `id`, once its driver was made.
    pub async fn simulator(&self, id: PlatformId) -> Option<Arc<Simulator>> {
        self.simulators.lock().await.get(&id.0).cloned()
    }

    async fn make(
        &self,
        platform: &PlatformRecord,
        credentials: Option<serde_json::Value>,
    ) -> anyhow::Result<Arc<dyn CloudDriver>> {
        let name = format!("p{}", platform.id);
        Ok(match platform.driver {
            DriverKind::Simulator => {
                let a = platform.allocatable;
                let pool = Pool {
                    vcpu: u64::from(a.vcpu),
                    memory_gib: u64::from(a.memory_gib),
                    storage_gib: u64::from(a.storage_gib),
                };
                let file = match &self.dir {
                    Some(dir) => {
                        std::fs::create_dir_all(dir)?;
                        Some(dir.join(format!("platform-{}.json", platform.id)))
                    }
                    None => None,
                };
                let sim = Arc::new(Simulator::open(&name, pool, self.faults, file.as_deref())?);
                self.simulators.lock().await.insert(platform.id.0, sim.clone());
                sim
            }
            DriverKind::Openstack => {
                let (config, credentials) = openstack_settings(platform, credentials)
                    .map_err(|e| anyhow::anyhow!("platform {} is misconfigured: {e}", platform.id))?;
                Arc::new(
                    yunzhi_drivers::openstack::OpenStack::new(&name, config, credentials)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                )
            }
            DriverKind::Libvirt => libvirt(&name, platform)?,
        })
    }
}

/// The settings of an OpenStack platform: its `config`, with the endpoint
/// as Keystone's address, and its credentials.
fn openstack_settings(
    platform: &PlatformRecord,
    credentials: Option<serde_json::Value>,
) -> Result<
    (yunzhi_drivers::openstack::OpenStackConfig, yunzhi_drivers::openstack::OpenStackCredentials),
    Invalid,
> {
    let mut config = platform.config.clone().unwrap_or_else(|| serde_json::json!({}));
    if let (Some(obj), Some(endpoint)) = (config.as_object_mut(), &platform.endpoint) {
        obj.insert("auth_url".into(), serde_json::json!(endpoint));
    }
    let config = serde_json::from_value(config)
        .map_err(|e| FieldError::new("config", "invalid_config", format!("config: {e}")))?;
    let credentials = serde_json::from_value(credentials.unwrap_or(serde_json::Value::Null))
        .map_err(|e| FieldError::new("credentials", "invalid_credentials", format!("credentials: {e}")))?;
    Ok((config, credentials))
}

/// The settings of a libvirt platform: its `config`, with the endpoint as
/// the connection URI and the platform's architecture.
#[cfg(feature = "libvirt")]
fn libvirt_settings(platform: &PlatformRecord) -> Result<yunzhi_drivers::libvirt::LibvirtConfig, Invalid> {
    let mut config = platform.config.clone().unwrap_or_else(|| serde_json::json!({}));
    if let Some(obj) = config.as_object_mut() {
        if let Some(endpoint) = &platform.endpoint {
            obj.insert("uri".into(), serde_json::json!(endpoint));
        }
        obj.insert("arch".into(), serde_json::json!(platform.arch.code()));
    }
    serde_json::from_value(config)
        .map_err(|e| FieldError::new("config", "invalid_config", format!("config: {e}")).into())
}

#[cfg(feature = "libvirt")]
fn libvirt(name: &str, platform: &PlatformRecord) -> anyhow::Result<Arc<dyn CloudDriver>> {
    let config = libvirt_settings(platform)
        .map_err(|e| anyhow::anyhow!("platform {} is misconfigured: {e}", platform.id))?;
    Ok(Arc::new(yunzhi_drivers::libvirt::Libvirt::new(name, config).map_err(|e| anyhow::anyhow!("{e}"))?))
}

#[cfg(not(feature = "libvirt"))]
fn libvirt(_: &str, platform: &PlatformRecord) -> anyhow::Result<Arc<dyn CloudDriver>> {
    anyhow::bail!(
        "platform {} uses libvirt, but this server was built without the libvirt driver \
         (cargo build --release --features libvirt)",
        platform.id
    )
}

/// Checks a new or changed platform's settings before they are stored, so
/// a typo is a 422 naming the field, not a failing job later.
pub fn check_settings(
    platform: &PlatformRecord,
    credentials: Option<serde_json::Value>,
) -> Result<(), Invalid> {
    match platform.driver {
        DriverKind::Simulator => Ok(()),
        DriverKind::Openstack => {
            let (config, credentials) = openstack_settings(platform, credentials)?;
            // The driver's own checks (an interface it knows, an http(s)
            // address, a project for password sign-in), without a call.
            yunzhi_drivers::openstack::OpenStack::new("check", config, credentials)
                .map(drop)
                .map_err(|e| FieldError::new("config", "invalid_config", e.to_string()).into())
        }
        #[cfg(feature = "libvirt")]
        DriverKind::Libvirt => libvirt_settings(platform).map(drop),
        #[cfg(not(feature = "libvirt"))]
        DriverKind::Libvirt => Ok(()),
    }
}

impl AppState {
    /// The driver of platform `id`, with its credentials opened.
    pub async fn driver(&self, id: PlatformId) -> anyhow::Result<Arc<dyn CloudDriver>> {
        let platform = self
            .store
            .platform(&crate::seed::internal_platform_reader(), id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("platform {id} is gone"))?;
        let credentials = match self.store.platform_credentials(id).await? {
            Some(sealed) => {
                let plain = self.secrets.open(&sealed, &credentials_context(&platform.name))?;
                Some(serde_json::from_slice(&plain)?)
            }
            None => None,
        };
        self.drivers.for_platform(&platform, credentials).await
    }
}
