//! Accounts: usernames and the checked shape of a new account.

use serde::Deserialize;

use crate::ids::UnitId;
use crate::invalid::{Checker, FieldError, Invalid};
use crate::password;
use crate::role::{Role, RoleSet};
use crate::text;

/// 3 to 32 characters, lower-case letters, digits, `_`, `.` and `-`,
/// starting with a letter: safe in URLs, logs and audit records.
pub fn parse_username(field: &str, raw: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !(3..=32).contains(&name.len()) || !ok_chars || !ok_start {
        return Err(FieldError::new(
            field,
            "username_format",
            format!(
                "{field} must be 3 to 32 lower-case letters, digits, `_`, `.` or `-`, starting with a letter"
            ),
        )
        .into());
    }
    Ok(name.to_owned())
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub unit_id: Option<i64>,
    /// Where e-mail notices go, when the server sends e-mail.
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub roles: RoleSet,
    pub unit_id: Option<UnitId>,
    pub email: Option<String>,
}

impl NewUser {
    pub fn parse(input: &UserInput) -> Result<NewUser, Invalid> {
        let mut c = Checker::new();
        let username = c.take(parse_username("username", &input.username));
        let display_name = c.take(text::bounded("display_name", &input.display_name, 1, 64));
        let email = c.take(crate::unit::parse_email("email", input.email.as_deref())).flatten();
        if let Some(u) = &username {
            c.take(password::check("password", &input.password, u));
        }
        let mut roles = Vec::new();
        for (i, r) in input.roles.iter().enumerate() {
            if let Some(role) = c.take(Role::parse(&format!("roles[{i}]"), r)) {
                roles.push(role);
            }
        }
        let role_set = if c.is_clean() {
            c.take(RoleSet::parse("roles", &roles, input.unit_id.is_some()))
        } else {
            None
        };
        c.finish()?;
        match (username, display_name, role_set) {
            (Some(username), Some(display_name), Some(roles)) => Ok(NewUser {
                username,
                display_name,
                password: input.password.clone(),
                roles,
                unit_id: input.unit_id.map(UnitId),
                email,
            }),
            _ => Err(Invalid::one(FieldError::new("", "invalid", "invalid account"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_case_and_start_with_a_letter() {
        assert!(parse_username("u", "unit1_admin").is_ok());
        assert!(parse_username("u", "Admin").is_err());
        assert!(parse_username("u", "1abc").is_err());
        assert!(parse_username("u", "ab").is_err());
    }

    #[test]
    fn an_account_with_a_weak_password_and_mixed_roles_reports_both() {
        let input = UserInput {
            username: "li".into(),
            display_name: "李".into(),
            password: "x".into(),
            roles: vec!["office".into(), "nobody".into()],
            unit_id: None,
            email: None,
        };
        let codes: Vec<_> = NewUser::parse(&input).unwrap_err().0.into_iter().map(|e| e.code).collect();
        assert_eq!(codes, ["username_format", "unknown_role"]);
    }
}
