//! Who may do what, as capabilities.
//!
//! A privileged operation in the store takes a handle (`AuditReader`,
//! `AccountAdmin`, …) that only these methods can make, so code that never
//! proved the permission cannot even call it. Every read of unit-scoped data
//! takes a [`Scope`], which the store ANDs into its `WHERE` clause: another
//! unit's object is then indistinguishable from a missing one (Art. 19).

use crate::ids::{UnitId, UserId};
use crate::role::{Role, RoleSet};

/// A signed-in person, as the server knows them after authentication.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: UserId,
    pub username: String,
    pub roles: RoleSet,
    pub unit_id: Option<UnitId>,
}

/// Which units' data a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every unit's: the Big Data Center, the office, the administrators.
    AllUnits,
    /// One unit's only: unit staff.
    Unit(UnitId),
}

impl Scope {
    pub fn admits(self, unit: UnitId) -> bool {
        match self {
            Scope::AllUnits => true,
            Scope::Unit(own) => own == unit,
        }
    }

    /// The unit to filter by, or `None` for all.
    pub fn unit(self) -> Option<UnitId> {
        match self {
            Scope::AllUnits => None,
            Scope::Unit(u) => Some(u),
        }
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name {
            scope: Scope,
        }

        impl $name {
            /// The units this permission reaches.
            pub fn scope(&self) -> Scope {
                self.scope
            }
        }
    };
}

handle!(
    /// May read units, information systems and the catalog within its scope.
    Reader
);
handle!(
    /// May read the audit log (audit_admin alone).
    AuditReader
);
handle!(
    /// May create and manage accounts within its scope: sys_admin for all,
    /// a unit_admin for the staff of its own unit.
    AccountAdmin
);
handle!(
    /// May register and edit units (sys_admin: organisational master data).
    UnitRegistrar
);
handle!(
    /// May edit units within its scope: sys_admin any unit, a unit_admin its
    /// own unit's contacts.
    UnitEditor
);
handle!(
    /// May register and edit information systems within its scope: unit
    /// staff for their own unit, the cloud resource admin for any.
    SystemRegistrar
);
handle!(
    /// May approve a system's registration and change an approved quota
    /// (the Big Data Center's cloud resource admin).
    SystemReviewer
);
handle!(
    /// May edit the service catalog and the cloud platforms (cloud_admin).
    CloudOperator
);
handle!(
    /// May see the cloud platforms, their capacity and usage.
    PlatformReader
);
handle!(
    /// May file requests for its own unit's systems (unit staff).
    Requester
);
handle!(
    /// May decide requests at the steps its roles hold (approvers, office).
    Decider
);
handle!(
    /// May load and edit the working-day calendar (sys_admin: a setting).
    CalendarEditor
);
handle!(
    /// May move the demo clock (sys_admin, demo mode only).
    ClockSetter
);
handle!(
    /// May issue a host's one-time agent enrolment code: the cloud resource
    /// admin for any host, a unit_admin for its own unit's.
    AgentEnroller
);
handle!(
    /// May review findings into warnings, and decide explanations and
    /// suspensions (the office, Art. 14).
    FindingReviewer
);
handle!(
    /// May answer warnings within its scope (a unit_admin, its own unit's).
    WarningResponder
);
handle!(
    /// May issue and revoke tokens for Prometheus remote-write senders
    /// (sys_admin: a setting of the platform).
    IngestTokenAdmin
);
handle!(
    /// May change the efficiency rules' thresholds and the analysis' data
    /// source (sys_admin: settings of the platform).
    EfficiencySettingsAdmin
);
handle!(
    /// May propose a suspension for a warning not acted on (the Big Data
    /// Center's cloud resource admin, Art. 14).
    SuspensionProposer
);

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(role)
    }

    fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// Unit staff see their unit, everyone else all units.
    fn natural_scope(&self) -> Option<Scope> {
        if self.roles.is_unit_staff() { self.unit_id.map(Scope::Unit) } else { Some(Scope::AllUnits) }
    }

    /// Everyone but the audit admin reads units, systems and the catalog.
    /// The audit admin's job is the log, and the log alone.
    pub fn reader(&self) -> Option<Reader> {
        if self.has(Role::AuditAdmin) {
            return None;
        }
        self.natural_scope().map(|scope| Reader { scope })
    }

    pub fn audit_reader(&self) -> Option<AuditReader> {
        self.has(Role::AuditAdmin).then_some(AuditReader { scope: Scope::AllUnits })
    }

    pub fn account_admin(&self) -> Option<AccountAdmin> {
        if self.has(Role::SysAdmin) {
            return Some(AccountAdmin { scope: Scope::AllUnits });
        }
        if self.has(Role::UnitAdmin) {
            return self.unit_id.map(|u| AccountAdmin { scope: Scope::Unit(u) });
        }
        None
    }

    pub fn unit_registrar(&self) -> Option<UnitRegistrar> {
        self.has(Role::SysAdmin).then_some(UnitRegistrar { scope: Scope::AllUnits })
    }

    pub fn unit_editor(&self) -> Option<UnitEditor> {
        if self.has(Role::SysAdmin) {
            return Some(UnitEditor { scope: Scope::AllUnits });
        }
        if self.has(Role::UnitAdmin) {
            return self.unit_id.map(|u| UnitEditor { scope: Scope::Unit(u) });
        }
        None
    }

    pub fn system_registrar(&self) -> Option<SystemRegistrar> {
        if self.has(Role::CloudAdmin) {
            return Some(SystemRegistrar { scope: Scope::AllUnits });
        }
        if self.has_any(&[Role::UnitUser, Role::UnitAdmin]) {
            return self.unit_id.map(|u| SystemRegistrar { scope: Scope::Unit(u) });
        }
        None
    }

    pub fn system_reviewer(&self) -> Option<SystemReviewer> {
        self.has(Role::CloudAdmin).then_some(SystemReviewer { scope: Scope::AllUnits })
    }

    pub fn cloud_operator(&self) -> Option<CloudOperator> {
        self.has(Role::CloudAdmin).then_some(CloudOperator { scope: Scope::AllUnits })
    }

    pub fn agent_enroller(&self) -> Option<AgentEnroller> {
        if self.has(Role::CloudAdmin) {
            return Some(AgentEnroller { scope: Scope::AllUnits });
        }
        if self.has(Role::UnitAdmin) {
            return self.unit_id.map(|u| AgentEnroller { scope: Scope::Unit(u) });
        }
        None
    }

    pub fn finding_reviewer(&self) -> Option<FindingReviewer> {
        self.has(Role::Office).then_some(FindingReviewer { scope: Scope::AllUnits })
    }

    pub fn warning_responder(&self) -> Option<WarningResponder> {
        if self.has(Role::UnitAdmin) {
            return self.unit_id.map(|u| WarningResponder { scope: Scope::Unit(u) });
        }
        None
    }

    pub fn ingest_token_admin(&self) -> Option<IngestTokenAdmin> {
        self.has(Role::SysAdmin).then_some(IngestTokenAdmin { scope: Scope::AllUnits })
    }

    pub fn efficiency_settings_admin(&self) -> Option<EfficiencySettingsAdmin> {
        self.has(Role::SysAdmin).then_some(EfficiencySettingsAdmin { scope: Scope::AllUnits })
    }

    pub fn suspension_proposer(&self) -> Option<SuspensionProposer> {
        self.has(Role::CloudAdmin).then_some(SuspensionProposer { scope: Scope::AllUnits })
    }

    pub fn platform_reader(&self) -> Option<PlatformReader> {
        self.has_any(&[Role::CloudAdmin, Role::InfraChief, Role::BdcLeader, Role::Office, Role::SysAdmin])
            .then_some(PlatformReader { scope: Scope::AllUnits })
    }

    pub fn requester(&self) -> Option<Requester> {
        if self.has_any(&[Role::UnitUser, Role::UnitAdmin]) {
            return self.unit_id.map(|u| Requester { scope: Scope::Unit(u) });
        }
        None
    }

    pub fn decider(&self) -> Option<Decider> {
        self.has_any(&[Role::CloudAdmin, Role::InfraChief, Role::BdcLeader, Role::Office])
            .then_some(Decider { scope: Scope::AllUnits })
    }

    pub fn calendar_editor(&self) -> Option<CalendarEditor> {
        self.has(Role::SysAdmin).then_some(CalendarEditor { scope: Scope::AllUnits })
    }

    /// Only in demo mode, and only the system administrator.
    pub fn clock_setter(&self, demo_mode: bool) -> Option<ClockSetter> {
        (demo_mode && self.has(Role::SysAdmin)).then_some(ClockSetter { scope: Scope::AllUnits })
    }
}

impl UnitEditor {
    /// Renaming a unit is organisational master data: the sys_admin's.
    pub fn may_rename(&self) -> bool {
        self.scope == Scope::AllUnits
    }
}

impl AccountAdmin {
    /// Whether this administrator may give an account these roles in this
    /// unit: a unit admin only makes staff of its own unit.
    pub fn may_grant(&self, roles: &RoleSet, unit: Option<UnitId>) -> bool {
        match self.scope {
            Scope::AllUnits => true,
            Scope::Unit(own) => unit == Some(own) && roles.is_unit_staff(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, unit: Option<i64>) -> Actor {
        Actor {
            user_id: UserId(1),
            username: "t".into(),
            roles: RoleSet::from_stored(vec![role]),
            unit_id: unit.map(UnitId),
        }
    }

    #[test]
    fn unit_staff_read_only_their_own_unit() {
        let r = actor(Role::UnitUser, Some(7)).reader().unwrap();
        assert!(r.scope().admits(UnitId(7)));
        assert!(!r.scope().admits(UnitId(8)));
    }

    #[test]
    fn the_audit_admin_reads_the_log_and_nothing_else() {
        let a = actor(Role::AuditAdmin, None);
        assert!(a.audit_reader().is_some());
        assert!(a.reader().is_none());
        assert!(a.account_admin().is_none());
        assert!(a.unit_registrar().is_none());
    }

    #[test]
    fn no_one_but_the_audit_admin_reads_the_log() {
        for role in Role::ALL.into_iter().filter(|r| *r != Role::AuditAdmin) {
            let unit = role.is_unit_role().then_some(1);
            assert!(actor(role, unit).audit_reader().is_none(), "{role}");
        }
    }

    #[test]
    fn the_sys_admin_manages_accounts_but_the_sec_admin_does_not() {
        assert!(actor(Role::SysAdmin, None).account_admin().is_some());
        assert!(actor(Role::SecAdmin, None).account_admin().is_none());
    }

    #[test]
    fn a_unit_admin_may_create_only_staff_of_its_own_unit() {
        let admin = actor(Role::UnitAdmin, Some(3)).account_admin().unwrap();
        let staff = RoleSet::from_stored(vec![Role::UnitUser]);
        assert!(admin.may_grant(&staff, Some(UnitId(3))));
        assert!(!admin.may_grant(&staff, Some(UnitId(4))));
        assert!(!admin.may_grant(&RoleSet::from_stored(vec![Role::CloudAdmin]), None));
    }

    #[test]
    fn a_unit_admin_edits_its_own_units_contacts_but_does_not_rename_it() {
        let e = actor(Role::UnitAdmin, Some(3)).unit_editor().unwrap();
        assert_eq!(e.scope(), Scope::Unit(UnitId(3)));
        assert!(!e.may_rename());
        assert!(actor(Role::SysAdmin, None).unit_editor().unwrap().may_rename());
        assert!(actor(Role::UnitUser, Some(3)).unit_editor().is_none());
    }

    #[test]
    fn the_demo_clock_moves_only_in_demo_mode() {
        let s = actor(Role::SysAdmin, None);
        assert!(s.clock_setter(true).is_some());
        assert!(s.clock_setter(false).is_none());
    }
}
