//! The driver of each cloud platform, made once and kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;
use yunzhi_domain::platform::DriverKind;
use yunzhi_drivers::CloudDriver;
use yunzhi_drivers::simulator::{Faults, Pool, Simulator};
use yunzhi_store::PlatformRecord;

pub struct Drivers {
    /// Where simulated platforms keep their inventory (`None`: in memory).
    dir: Option<PathBuf>,
    /// Faults the simulated platforms inject (none, outside tests and drills).
    faults: Faults,
    made: Mutex<HashMap<i64, Arc<dyn CloudDriver>>>,
}

impl Drivers {
    pub fn new(dir: Option<PathBuf>, faults: Faults) -> Drivers {
        Drivers { dir, faults, made: Mutex::new(HashMap::new()) }
    }

    /// The driver of `platform`.
    pub async fn for_platform(&self, platform: &PlatformRecord) -> anyhow::Result<Arc<dyn CloudDriver>> {
        let mut made = self.made.lock().await;
        if let Some(d) = made.get(&platform.id.0) {
            return Ok(d.clone());
        }
        let driver: Arc<dyn CloudDriver> = match platform.driver {
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
                let name = format!("p{}", platform.id);
                Arc::new(Simulator::open(&name, pool, self.faults, file.as_deref())?)
            }
            other => anyhow::bail!("the {} driver is not available yet", other.code()),
        };
        made.insert(platform.id.0, driver.clone());
        Ok(driver)
    }
}
