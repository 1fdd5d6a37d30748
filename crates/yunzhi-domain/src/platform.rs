//! Cloud platforms (云平台, Art. 5): the district's several underlying clouds,
//! x86 and ARM, managed as one.

use serde::{Deserialize, Serialize};

use crate::invalid::{Checker, FieldError, Invalid};
use crate::system::Arch;
use crate::text;

/// Which driver talks to a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverKind {
    /// The built-in simulator: demos and tests.
    Simulator,
    /// OpenStack (Keystone v3, Nova, Cinder).
    Openstack,
    /// libvirt.
    Libvirt,
}

impl DriverKind {
    pub fn code(self) -> &'static str {
        match self {
            DriverKind::Simulator => "simulator",
            DriverKind::Openstack => "openstack",
            DriverKind::Libvirt => "libvirt",
        }
    }

    /// Whether platforms of this driver make resources of `kind`. OpenStack
    /// (Nova, Cinder) and libvirt platforms make hosts and block volumes;
    /// managed services (object and file storage, databases, load balancers,
    /// addresses, security services) come from the platforms whose
    /// driver offers them, today the simulator's.
    pub fn provides(self, kind: crate::catalog::CatalogKind) -> bool {
        use crate::catalog::CatalogKind as K;
        match self {
            DriverKind::Simulator => true,
            DriverKind::Openstack | DriverKind::Libvirt => matches!(kind, K::CloudHost | K::BlockStorage),
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<DriverKind, Invalid> {
        match raw {
            "simulator" => Ok(DriverKind::Simulator),
            "openstack" => Ok(DriverKind::Openstack),
            "libvirt" => Ok(DriverKind::Libvirt),
            _ => Err(FieldError::new(
                field,
                "unknown_driver",
                format!("{field} must be simulator, openstack or libvirt"),
            )
            .into()),
        }
    }
}

/// Whether new resources may be placed on a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformState {
    Enabled,
    /// Keeps what it has, takes nothing new.
    Draining,
    Disabled,
}

impl PlatformState {
    pub fn code(self) -> &'static str {
        match self {
            PlatformState::Enabled => "enabled",
            PlatformState::Draining => "draining",
            PlatformState::Disabled => "disabled",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<PlatformState, Invalid> {
        match raw {
            "enabled" => Ok(PlatformState::Enabled),
            "draining" => Ok(PlatformState::Draining),
            "disabled" => Ok(PlatformState::Disabled),
            _ => Err(FieldError::new(
                field,
                "unknown_state",
                format!("{field} must be enabled, draining or disabled"),
            )
            .into()),
        }
    }
}

/// Physical capacity of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Capacity {
    pub vcpu: u32,
    pub memory_gib: u32,
    pub storage_gib: u32,
}

/// How far a platform may promise more than it has.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overcommit {
    pub cpu: f64,
    pub memory: f64,
}

impl Default for Overcommit {
    fn default() -> Self {
        Overcommit { cpu: 1.0, memory: 1.0 }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformInput {
    pub name: String,
    pub arch: String,
    pub driver: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    pub capacity: CapacityInput,
    #[serde(default)]
    pub overcommit: Option<Overcommit>,
    /// The driver's settings (region, network, image, storage pool ...),
    /// kept in plain text: no secrets here.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// How the driver signs in (e.g. `{"type": "application_credential",
    /// "id", "secret"}`): sealed at rest, never shown again.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityInput {
    pub vcpu: i64,
    pub memory_gib: i64,
    pub storage_gib: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPlatform {
    pub name: String,
    pub arch: Arch,
    pub driver: DriverKind,
    pub endpoint: Option<String>,
    pub capacity: Capacity,
    pub overcommit: Overcommit,
    pub config: Option<serde_json::Value>,
}

impl NewPlatform {
    pub fn parse(input: &PlatformInput) -> Result<NewPlatform, Invalid> {
        let mut c = Checker::new();
        let name = c.take(text::bounded("name", &input.name, 2, 64));
        let arch = c.take(Arch::parse("arch", &input.arch));
        let driver = c.take(DriverKind::parse("driver", &input.driver));
        let endpoint = c.take(text::optional("endpoint", input.endpoint.as_deref(), 256)).flatten();
        if input.config.as_ref().is_some_and(|c| !c.is_object()) {
            c.push(FieldError::new("config", "not_an_object", "config must be a JSON object"));
        }
        if input.credentials.as_ref().is_some_and(|c| !c.is_object()) {
            c.push(FieldError::new("credentials", "not_an_object", "credentials must be a JSON object"));
        }
        if driver == Some(DriverKind::Openstack) && input.credentials.is_none() {
            c.push(FieldError::new(
                "credentials",
                "required",
                "credentials are required for an OpenStack platform (password or application credential)",
            ));
        }
        if driver.is_some_and(|d| d != DriverKind::Simulator) && endpoint.is_none() {
            c.push(FieldError::new(
                "endpoint",
                "required",
                "endpoint is required for an OpenStack or libvirt platform",
            ));
        }
        let mut cap = [0u32; 3];
        for (i, (name, v)) in [
            ("vcpu", input.capacity.vcpu),
            ("memory_gib", input.capacity.memory_gib),
            ("storage_gib", input.capacity.storage_gib),
        ]
        .into_iter()
        .enumerate()
        {
            match u32::try_from(v) {
                Ok(v) if v > 0 => cap[i] = v,
                _ => c.push(FieldError::new(
                    format!("capacity.{name}"),
                    "out_of_range",
                    format!("capacity.{name} must be a positive whole number"),
                )),
            }
        }
        let overcommit = input.overcommit.unwrap_or_default();
        if !(1.0..=16.0).contains(&overcommit.cpu) {
            c.push(FieldError::new(
                "overcommit.cpu",
                "out_of_range",
                "overcommit.cpu must be between 1.0 and 16.0",
            ));
        }
        if !(1.0..=2.0).contains(&overcommit.memory) {
            c.push(FieldError::new(
                "overcommit.memory",
                "out_of_range",
                "overcommit.memory must be between 1.0 and 2.0",
            ));
        }
        c.finish()?;
        Ok(NewPlatform {
            name: name.unwrap_or_default(),
            arch: arch.unwrap_or(Arch::X86_64),
            driver: driver.unwrap_or(DriverKind::Simulator),
            endpoint,
            capacity: Capacity { vcpu: cap[0], memory_gib: cap[1], storage_gib: cap[2] },
            overcommit,
            config: input.config.clone(),
        })
    }
}

impl Capacity {
    /// What may be allocated once overcommit is applied.
    pub fn allocatable(self, overcommit: Overcommit) -> Capacity {
        Capacity {
            vcpu: (f64::from(self.vcpu) * overcommit.cpu).floor() as u32,
            memory_gib: (f64::from(self.memory_gib) * overcommit.memory).floor() as u32,
            storage_gib: self.storage_gib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_overcommit_multiplies_what_can_be_allocated() {
        let cap = Capacity { vcpu: 100, memory_gib: 400, storage_gib: 1000 };
        let a = cap.allocatable(Overcommit { cpu: 4.0, memory: 1.5 });
        assert_eq!((a.vcpu, a.memory_gib, a.storage_gib), (400, 600, 1000));
    }

    #[test]
    fn openstack_and_libvirt_make_hosts_and_volumes_but_not_managed_services() {
        use crate::catalog::CatalogKind;
        for d in [DriverKind::Openstack, DriverKind::Libvirt] {
            assert!(d.provides(CatalogKind::CloudHost) && d.provides(CatalogKind::BlockStorage));
            assert!(!d.provides(CatalogKind::Database) && !d.provides(CatalogKind::ObjectStorage));
        }
        assert!(CatalogKind::ALL.iter().all(|k| DriverKind::Simulator.provides(*k)));
    }

    #[test]
    fn a_real_platform_needs_an_endpoint_and_sane_overcommit() {
        let input = PlatformInput {
            name: "OpenStack 一区".into(),
            arch: "x86_64".into(),
            driver: "openstack".into(),
            endpoint: None,
            capacity: CapacityInput { vcpu: 0, memory_gib: 1, storage_gib: 1 },
            overcommit: Some(Overcommit { cpu: 40.0, memory: 1.0 }),
            config: Some(serde_json::json!(["region"])),
            credentials: None,
        };
        let fields: Vec<_> = NewPlatform::parse(&input).unwrap_err().0.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["config", "credentials", "endpoint", "capacity.vcpu", "overcommit.cpu"]);
    }
}
