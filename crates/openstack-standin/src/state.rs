//! What the stand-in cloud holds: tokens, flavors, servers, volumes and the
//! hypervisors (resource providers) servers are placed on.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

/// The project every credential of the stand-in is scoped to.
pub const PROJECT_ID: &str = "5e6f7a8b9c0d4e1fa2b3c4d5e6f70812";
pub const PROJECT_NAME: &str = "yunzhi-prod";
pub const USER_ID: &str = "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5";
pub const USERNAME: &str = "yunzhi";
pub const PASSWORD: &str = "s3cret-pass";
pub const APP_CREDENTIAL_ID: &str = "9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a";
pub const APP_CREDENTIAL_SECRET: &str = "app-s3cret";
/// The regions the catalog lists; every service has endpoints in each.
pub const REGIONS: [&str; 2] = ["RegionOne", "RegionTwo"];
pub const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

#[derive(Debug, Clone)]
pub struct Token {
    pub id: String,
    pub expires_at: Timestamp,
    /// Set by `expire_tokens`: the token is refused whatever its expiry says.
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    /// MiB, as Nova counts it.
    pub ram: u64,
    /// GiB of root disk.
    pub disk: u64,
}

/// A server as the stand-in keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    /// Nova's status: ACTIVE, SHUTOFF, VERIFY_RESIZE, ERROR.
    pub status: String,
    pub flavor: Flavor,
    /// The flavor before an unconfirmed resize.
    pub old_flavor: Option<Flavor>,
    /// The power state to return to when a resize is confirmed.
    pub status_before_resize: Option<String>,
    pub image_id: Option<String>,
    pub network_ids: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub volume_ids: Vec<String>,
    /// The resource provider (hypervisor) it is placed on; none in ERROR.
    pub provider: Option<String>,
    /// The fault message of a server in ERROR.
    pub fault: Option<String>,
    pub created: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub id: String,
    pub name: Option<String>,
    pub size: u64,
    /// Cinder's status: available, in-use, error.
    pub status: String,
    pub metadata: BTreeMap<String, String>,
    pub volume_type: Option<String>,
    pub attached_to: Option<String>,
    pub created: Timestamp,
}

/// One resource class's inventory on a provider, as Placement reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Inventory {
    pub total: u64,
    pub reserved: u64,
    pub allocation_ratio: f64,
}

impl Inventory {
    /// What may be allocated: (total - reserved) * allocation_ratio.
    pub fn capacity(&self) -> u64 {
        (self.total.saturating_sub(self.reserved) as f64 * self.allocation_ratio) as u64
    }
}

/// A hypervisor as a Placement resource provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provider {
    pub uuid: String,
    pub name: String,
    pub vcpu: Inventory,
    pub memory_mb: Inventory,
    pub disk_gb: Inventory,
}

#[derive(Debug)]
pub struct Cloud {
    pub tokens: Vec<Token>,
    /// Seconds a new token lives.
    pub token_lifetime_secs: i64,
    pub flavors: Vec<Flavor>,
    pub servers: Vec<Server>,
    pub volumes: Vec<Volume>,
    pub providers: Vec<Provider>,
    /// GiB Cinder can hand out in all.
    pub volume_capacity_gib: u64,
    /// Service types left out of the catalog.
    pub hidden_services: Vec<String>,
    next_id: u64,
}

impl Default for Cloud {
    fn default() -> Cloud {
        let flavor = |id: &str, name: &str, vcpus, ram, disk| Flavor {
            id: id.into(),
            name: name.into(),
            vcpus,
            ram,
            disk,
        };
        let inv = |total, reserved, allocation_ratio| Inventory { total, reserved, allocation_ratio };
        let provider = |n: u32| Provider {
            uuid: format!("4a5b6c7d-0000-4000-8000-00000000000{n}"),
            name: format!("compute-{n}.district.local"),
            vcpu: inv(32, 0, 4.0),
            memory_mb: inv(131_072, 4096, 1.0),
            disk_gb: inv(2000, 100, 1.0),
        };
        Cloud {
            tokens: Vec::new(),
            token_lifetime_secs: 3600,
            // Listed out of size order, as real clouds do.
            flavors: vec![
                flavor("3", "m1.medium", 2, 4096, 40),
                flavor("1", "m1.tiny", 1, 512, 1),
                flavor("5", "m1.xlarge", 8, 16_384, 160),
                flavor("2", "m1.small", 1, 2048, 20),
                flavor("4", "m1.large", 4, 8192, 80),
                flavor("c4m16", "c1.4x16", 4, 16_384, 40),
            ],
            servers: Vec::new(),
            volumes: Vec::new(),
            providers: vec![provider(1), provider(2)],
            volume_capacity_gib: 10_000,
            hidden_services: Vec::new(),
            next_id: 0,
        }
    }
}

impl Cloud {
    /// A fresh UUID-shaped id; deterministic so test failures repeat.
    pub fn new_id(&mut self, prefix: u32) -> String {
        self.next_id += 1;
        format!("{prefix:08x}-{:04x}-4000-8000-{:012x}", self.next_id >> 48, self.next_id)
    }

    pub fn token_valid(&self, id: &str) -> bool {
        let now = Timestamp::now();
        self.tokens.iter().any(|t| t.id == id && !t.revoked && t.expires_at > now)
    }

    /// Sums the flavors of the servers placed on `provider`.
    pub fn usage(&self, provider: &str) -> (u64, u64, u64) {
        self.servers.iter().filter(|s| s.provider.as_deref() == Some(provider)).fold(
            (0, 0, 0),
            |(v, m, d), s| {
                // An unconfirmed resize holds both flavors, as Nova does.
                let (ov, om, od) =
                    s.old_flavor.as_ref().map_or((0, 0, 0), |f| (u64::from(f.vcpus), f.ram, f.disk));
                (v + u64::from(s.flavor.vcpus) + ov, m + s.flavor.ram + om, d + s.flavor.disk + od)
            },
        )
    }

    /// The first provider with room for `flavor`, as the scheduler would pick.
    pub fn place(&self, flavor: &Flavor) -> Option<String> {
        self.providers
            .iter()
            .find(|p| {
                let (v, m, d) = self.usage(&p.uuid);
                v + u64::from(flavor.vcpus) <= p.vcpu.capacity()
                    && m + flavor.ram <= p.memory_mb.capacity()
                    && d + flavor.disk <= p.disk_gb.capacity()
            })
            .map(|p| p.uuid.clone())
    }

    pub fn volume_usage(&self) -> u64 {
        self.volumes.iter().filter(|v| v.status != "error").map(|v| v.size).sum()
    }
}
