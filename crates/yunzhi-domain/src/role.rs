//! The roles of the regulation and the rules for which roles one account may hold.

use serde::{Deserialize, Serialize};

use crate::invalid::{FieldError, Invalid};

/// Who someone is in the district's cloud (Art. 4, 9, 12, 14, 25), plus the
/// three separated administrators that MLPS level 3 requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 使用单位经办人: files the unit's systems and requests.
    UnitUser,
    /// 使用单位管理员: as a unit user, plus the unit's accounts and warnings.
    UnitAdmin,
    /// 云资源管理员: level-1 approval, provisioning, reclaim, monitoring.
    CloudAdmin,
    /// 基础设施科科长: level-2 approval.
    InfraChief,
    /// 分管领导: level-3 approval.
    BdcLeader,
    /// 区政务服务办公室: temporary resources, warnings, suspensions, evaluations.
    Office,
    /// 系统管理员: accounts and settings.
    SysAdmin,
    /// 安全管理员: security policy and incidents.
    SecAdmin,
    /// 审计管理员: reads the audit log, nothing else.
    AuditAdmin,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::UnitUser,
        Role::UnitAdmin,
        Role::CloudAdmin,
        Role::InfraChief,
        Role::BdcLeader,
        Role::Office,
        Role::SysAdmin,
        Role::SecAdmin,
        Role::AuditAdmin,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::UnitUser => "unit_user",
            Role::UnitAdmin => "unit_admin",
            Role::CloudAdmin => "cloud_admin",
            Role::InfraChief => "infra_chief",
            Role::BdcLeader => "bdc_leader",
            Role::Office => "office",
            Role::SysAdmin => "sys_admin",
            Role::SecAdmin => "sec_admin",
            Role::AuditAdmin => "audit_admin",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Role, Invalid> {
        Role::ALL.into_iter().find(|r| r.code() == raw).ok_or_else(|| {
            let known: Vec<_> = Role::ALL.iter().map(|r| r.code()).collect();
            FieldError::new(
                field,
                "unknown_role",
                format!("{field}: `{raw}` is not a role; roles are {}", known.join(", ")),
            )
            .into()
        })
    }

    /// Staff of a using unit, as opposed to the Big Data Center, the office
    /// and the administrators.
    pub fn is_unit_role(self) -> bool {
        matches!(self, Role::UnitUser | Role::UnitAdmin)
    }

    /// One of the three separated administrators (三权分立).
    pub fn is_separated_admin(self) -> bool {
        matches!(self, Role::SysAdmin | Role::SecAdmin | Role::AuditAdmin)
    }

    /// One of the three approval levels of Art. 9.
    pub fn approval_level(self) -> Option<u8> {
        match self {
            Role::CloudAdmin => Some(1),
            Role::InfraChief => Some(2),
            Role::BdcLeader => Some(3),
            _ => None,
        }
    }

    /// Every role that can change someone else's resources or read across
    /// units signs in with a second factor; unit staff may, but need not.
    pub fn requires_second_factor(self) -> bool {
        !self.is_unit_role()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The roles one account holds, checked against the separation rules:
///
/// * a separated administrator (sys/sec/audit) holds that role alone, so no
///   one both administers and audits;
/// * no one holds two approval levels, so no request is approved twice by
///   one person;
/// * unit roles and Big Data Center roles do not mix, and unit roles need a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    pub fn parse(field: &str, roles: &[Role], unit_given: bool) -> Result<RoleSet, Invalid> {
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let err = |code, detail: String| Err(FieldError::new(field, code, detail).into());
        if roles.is_empty() {
            return err("required", format!("{field} must name at least one role"));
        }
        if roles.len() > 1 && roles.iter().any(|r| r.is_separated_admin()) {
            return err(
                "separation_of_duties",
                format!(
                    "{field}: sys_admin, sec_admin and audit_admin are each held alone (three-admin separation)"
                ),
            );
        }
        if roles.iter().filter(|r| r.approval_level().is_some()).count() > 1 {
            return err(
                "separation_of_duties",
                format!("{field}: one person may hold only one of the three approval levels (Art. 9)"),
            );
        }
        let unit_roles = roles.iter().filter(|r| r.is_unit_role()).count();
        if unit_roles > 0 && unit_roles < roles.len() {
            return err(
                "separation_of_duties",
                format!("{field}: unit roles cannot be combined with Big Data Center or office roles"),
            );
        }
        if unit_roles > 0 && !unit_given {
            return Err(FieldError::new(
                "unit_id",
                "required",
                "unit_id is required for unit_user and unit_admin",
            )
            .into());
        }
        if unit_roles == 0 && unit_given {
            return Err(FieldError::new(
                "unit_id",
                "not_allowed",
                "unit_id is only for unit_user and unit_admin accounts",
            )
            .into());
        }
        Ok(RoleSet(roles))
    }

    /// Roles read back from the store, which only ever held checked sets.
    pub fn from_stored(roles: Vec<Role>) -> RoleSet {
        RoleSet(roles)
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    pub fn as_slice(&self) -> &[Role] {
        &self.0
    }

    pub fn requires_second_factor(&self) -> bool {
        self.0.iter().any(|r| r.requires_second_factor())
    }

    pub fn is_unit_staff(&self) -> bool {
        self.0.iter().all(|r| r.is_unit_role())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_code_parses_back_to_its_role() {
        for role in Role::ALL {
            assert_eq!(Role::parse("role", role.code()).unwrap(), role);
        }
    }

    #[test]
    fn an_unknown_role_is_refused_with_the_list_of_roles() {
        let e = Role::parse("roles[0]", "root").unwrap_err();
        assert_eq!(e.first().code, "unknown_role");
        assert!(e.first().detail.contains("cloud_admin"));
    }

    #[test]
    fn a_separated_admin_cannot_hold_a_second_role() {
        let e = RoleSet::parse("roles", &[Role::SysAdmin, Role::AuditAdmin], false).unwrap_err();
        assert_eq!(e.first().code, "separation_of_duties");
        assert!(RoleSet::parse("roles", &[Role::SecAdmin, Role::Office], false).is_err());
        assert!(RoleSet::parse("roles", &[Role::AuditAdmin], false).is_ok());
    }

    #[test]
    fn one_person_cannot_hold_two_approval_levels() {
        let e = RoleSet::parse("roles", &[Role::CloudAdmin, Role::BdcLeader], false).unwrap_err();
        assert_eq!(e.first().code, "separation_of_duties");
    }

    #[test]
    fn unit_roles_need_a_unit_and_others_must_not_have_one() {
        assert_eq!(RoleSet::parse("roles", &[Role::UnitUser], false).unwrap_err().first().field, "unit_id");
        assert_eq!(RoleSet::parse("roles", &[Role::Office], true).unwrap_err().first().field, "unit_id");
        assert!(RoleSet::parse("roles", &[Role::UnitUser, Role::UnitAdmin], true).is_ok());
    }

    #[test]
    fn unit_roles_do_not_mix_with_big_data_center_roles() {
        assert!(RoleSet::parse("roles", &[Role::UnitAdmin, Role::CloudAdmin], true).is_err());
    }

    #[test]
    fn only_unit_staff_may_sign_in_without_a_second_factor() {
        for role in Role::ALL {
            assert_eq!(role.requires_second_factor(), !role.is_unit_role(), "{role}");
        }
    }
}
