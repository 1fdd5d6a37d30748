//! Cloud resources (云资源) and where they are placed.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogKind, CatalogSpec};
use crate::ids::PlatformId;
use crate::invalid::{FieldError, Invalid};
use crate::platform::{Capacity, DriverKind, PlatformState};
use crate::request::Demand;
use crate::system::Arch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceState {
    Provisioning,
    Active,
    Suspended,
    /// Gone for good (Art. 11).
    Reclaimed,
}

impl ResourceState {
    pub const ALL: [ResourceState; 4] = [
        ResourceState::Provisioning,
        ResourceState::Active,
        ResourceState::Suspended,
        ResourceState::Reclaimed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ResourceState::Provisioning => "provisioning",
            ResourceState::Active => "active",
            ResourceState::Suspended => "suspended",
            ResourceState::Reclaimed => "reclaimed",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<ResourceState, Invalid> {
        ResourceState::ALL.into_iter().find(|s| s.code() == raw).ok_or_else(|| {
            FieldError::new(
                field,
                "unknown_state",
                format!("{field} must be provisioning, active, suspended or reclaimed"),
            )
            .into()
        })
    }

    pub fn is_live(self) -> bool {
        self != ResourceState::Reclaimed
    }
}

/// The resources `quantity` of a catalog item becomes, each with what it
/// takes: hosts, databases and other instances one by one; storage (GiB)
/// and bandwidth (Mbps) as one resource of their quantity.
pub fn pieces(spec: &CatalogSpec, quantity: u32) -> Vec<(Demand, u32)> {
    if spec.kind.counts_gib() || spec.kind == CatalogKind::IpBandwidth {
        vec![(Demand::of(spec, quantity), quantity)]
    } else {
        (0..quantity).map(|_| (Demand::of(spec, 1), 1)).collect()
    }
}

/// Whether a resource of `kind` may be resized from `old` to `new` by the
/// Big Data Center for a system holding `in_use` of its `quota`: hosts and
/// volumes only, disks never shrink (what is on them would be cut), a host
/// keeps at least one vCPU and 1 GiB, and the system stays within the quota
/// it was granted (Art. 8) — more is an expansion, which is approved
/// (Art. 10).
pub fn check_resize(
    kind: CatalogKind,
    quota: &crate::system::Quota,
    in_use: Demand,
    old: Demand,
    new: Demand,
) -> Result<(), Invalid> {
    let mut c = crate::invalid::Checker::new();
    if !matches!(kind, CatalogKind::CloudHost | CatalogKind::BlockStorage) {
        c.push(FieldError::new(
            "action",
            "not_resizable",
            format!("a {} resource is not resized; only cloud hosts and block storage are", kind.code()),
        ));
        return c.finish();
    }
    if new.storage_gib < old.storage_gib {
        c.push(FieldError::new(
            "size.storage_gib",
            "cannot_shrink",
            format!(
                "size.storage_gib cannot go down from {} to {} GiB: a disk is never shrunk",
                old.storage_gib, new.storage_gib
            ),
        ));
    }
    if kind == CatalogKind::CloudHost && (new.vcpu == 0 || new.memory_gib == 0) {
        c.push(FieldError::new(
            "size",
            "out_of_range",
            "a cloud host keeps at least 1 vCPU and 1 GiB of memory",
        ));
    }
    if kind == CatalogKind::BlockStorage && (new.vcpu != 0 || new.memory_gib != 0) {
        c.push(FieldError::new("size", "out_of_range", "block storage has no vCPU or memory"));
    }
    let after = |used: u64, o: u64, n: u64| used.saturating_sub(o) + n;
    let classes = [
        ("vcpu", after(in_use.vcpu, old.vcpu, new.vcpu), u64::from(quota.vcpu)),
        ("memory_gib", after(in_use.memory_gib, old.memory_gib, new.memory_gib), u64::from(quota.memory_gib)),
        (
            "storage_gib",
            after(in_use.storage_gib, old.storage_gib, new.storage_gib),
            u64::from(quota.storage_gib),
        ),
    ];
    for (class, total, limit) in classes {
        if total > limit {
            c.push(
                FieldError::new(
                    format!("size.{class}"),
                    "quota_exceeded",
                    format!(
                        "the system would hold {total} of its quota of {limit} {class} (Art. 8); more than the \
                         quota is an expansion, asked for and approved (Art. 10)"
                    ),
                )
                .article(8),
            );
        }
    }
    c.finish()
}

/// A platform as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlatformLoad {
    pub id: PlatformId,
    pub arch: Arch,
    pub driver: DriverKind,
    pub state: PlatformState,
    /// Capacity times overcommit.
    pub allocatable: Capacity,
    pub used: Demand,
}

impl PlatformLoad {
    fn fits(&self, d: Demand) -> bool {
        self.used.vcpu + d.vcpu <= u64::from(self.allocatable.vcpu)
            && self.used.memory_gib + d.memory_gib <= u64::from(self.allocatable.memory_gib)
            && self.used.storage_gib + d.storage_gib <= u64::from(self.allocatable.storage_gib)
    }

    /// The fullest class after adding `d`, in per mille.
    fn load_after(&self, d: Demand) -> u64 {
        let share = |used: u64, cap: u32| if cap == 0 { 0 } else { (used * 1000) / u64::from(cap) };
        share(self.used.vcpu + d.vcpu, self.allocatable.vcpu)
            .max(share(self.used.memory_gib + d.memory_gib, self.allocatable.memory_gib))
            .max(share(self.used.storage_gib + d.storage_gib, self.allocatable.storage_gib))
    }
}

/// The platform for a `kind` resource taking `demand` of a system on
/// `arch`: an enabled one of that architecture whose driver makes that kind
/// and has room for it, the least loaded afterwards (ties to the lower id,
/// so placement is repeatable). `None` when none has room.
pub fn place(
    arch: Arch,
    kind: CatalogKind,
    demand: Demand,
    platforms: &[PlatformLoad],
) -> Option<PlatformId> {
    platforms
        .iter()
        .filter(|p| {
            p.arch == arch && p.state == PlatformState::Enabled && p.driver.provides(kind) && p.fits(demand)
        })
        .min_by_key(|p| (p.load_after(demand), p.id))
        .map(|p| p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: i64, arch: Arch, vcpu_used: u64) -> PlatformLoad {
        PlatformLoad {
            id: PlatformId(id),
            arch,
            driver: DriverKind::Simulator,
            state: PlatformState::Enabled,
            allocatable: Capacity { vcpu: 100, memory_gib: 400, storage_gib: 10_000 },
            used: Demand { vcpu: vcpu_used, memory_gib: 0, storage_gib: 0 },
        }
    }

    #[test]
    fn an_arm_system_lands_only_on_an_arm_platform() {
        let platforms = [p(1, Arch::X86_64, 0), p(2, Arch::Aarch64, 90)];
        let d = Demand { vcpu: 4, memory_gib: 8, storage_gib: 100 };
        assert_eq!(place(Arch::Aarch64, CatalogKind::CloudHost, d, &platforms), Some(PlatformId(2)));
    }

    #[test]
    fn the_least_loaded_platform_with_room_is_chosen() {
        let platforms = [p(1, Arch::X86_64, 60), p(2, Arch::X86_64, 20)];
        assert_eq!(
            place(Arch::X86_64, CatalogKind::CloudHost, Demand { vcpu: 4, ..Default::default() }, &platforms),
            Some(PlatformId(2))
        );
    }

    #[test]
    fn no_platform_with_room_means_no_placement() {
        let platforms = [p(1, Arch::X86_64, 98)];
        assert_eq!(
            place(Arch::X86_64, CatalogKind::CloudHost, Demand { vcpu: 4, ..Default::default() }, &platforms),
            None
        );
    }

    #[test]
    fn four_hosts_are_four_resources_and_a_terabyte_of_disk_is_one() {
        let catalog = crate::catalog::default_catalog();
        let host = catalog.iter().find(|i| i.code == "ecs.x86.c4m8").unwrap();
        let ssd = catalog.iter().find(|i| i.code == "evs.ssd").unwrap();
        let hosts = pieces(host, 4);
        assert_eq!(hosts.len(), 4);
        assert!(hosts.iter().all(|(d, q)| d.vcpu == 4 && *q == 1));
        assert_eq!(pieces(ssd, 1024), vec![(Demand { vcpu: 0, memory_gib: 0, storage_gib: 1024 }, 1024)]);
    }

    #[test]
    fn a_database_goes_only_to_a_platform_whose_driver_provides_databases() {
        let mut openstack = p(1, Arch::X86_64, 0);
        openstack.driver = DriverKind::Openstack;
        let simulated = p(2, Arch::X86_64, 90);
        let d = Demand { vcpu: 4, memory_gib: 8, storage_gib: 100 };
        assert_eq!(
            place(Arch::X86_64, CatalogKind::Database, d, &[openstack, simulated]),
            Some(PlatformId(2))
        );
        assert_eq!(
            place(Arch::X86_64, CatalogKind::CloudHost, d, &[openstack, simulated]),
            Some(PlatformId(1))
        );
        assert_eq!(place(Arch::X86_64, CatalogKind::Database, d, &[openstack]), None);
    }

    #[test]
    fn a_host_grows_within_its_systems_quota_but_not_beyond_it() {
        let quota = crate::system::Quota { vcpu: 16, memory_gib: 32, storage_gib: 500 };
        let old = Demand { vcpu: 4, memory_gib: 8, storage_gib: 100 };
        let in_use = Demand { vcpu: 12, memory_gib: 24, storage_gib: 300 };
        let fits = Demand { vcpu: 8, memory_gib: 16, storage_gib: 300 };
        assert!(check_resize(CatalogKind::CloudHost, &quota, in_use, old, fits).is_ok());
        let over = Demand { vcpu: 9, memory_gib: 16, storage_gib: 300 };
        let e = check_resize(CatalogKind::CloudHost, &quota, in_use, old, over).unwrap_err().0;
        assert_eq!((e[0].field.as_str(), e[0].code, e[0].article), ("size.vcpu", "quota_exceeded", Some(8)));
    }

    #[test]
    fn a_disk_is_never_shrunk_and_a_database_is_not_resized() {
        let quota = crate::system::Quota { vcpu: 16, memory_gib: 32, storage_gib: 500 };
        let old = Demand { vcpu: 0, memory_gib: 0, storage_gib: 200 };
        let smaller = Demand { vcpu: 0, memory_gib: 0, storage_gib: 100 };
        let e = check_resize(CatalogKind::BlockStorage, &quota, old, old, smaller).unwrap_err().0;
        assert_eq!(e[0].code, "cannot_shrink");
        let e = check_resize(CatalogKind::Database, &quota, old, old, old).unwrap_err().0;
        assert_eq!(e[0].code, "not_resizable");
    }

    #[test]
    fn a_draining_platform_takes_nothing_new() {
        let mut draining = p(1, Arch::X86_64, 0);
        draining.state = PlatformState::Draining;
        assert_eq!(
            place(
                Arch::X86_64,
                CatalogKind::CloudHost,
                Demand { vcpu: 1, ..Default::default() },
                &[draining]
            ),
            None
        );
    }
}
