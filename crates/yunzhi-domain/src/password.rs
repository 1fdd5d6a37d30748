//! The password policy: long enough, mixed enough, not the username.
//!
//! MLPS level 3 asks for passwords of complexity that are changed and
//! locked out after repeated failures; lockout lives with the accounts.

use crate::invalid::{FieldError, Invalid};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;
pub const MIN_CLASSES: usize = 3;

/// Checks a new password for `username`.
pub fn check(field: &str, password: &str, username: &str) -> Result<(), Invalid> {
    let len = password.chars().count();
    let err = |code, detail: String| Err(FieldError::new(field, code, detail).into());
    if len < MIN_LENGTH {
        return err("password_too_short", format!("{field} must have at least {MIN_LENGTH} characters"));
    }
    if len > MAX_LENGTH {
        return err("password_too_long", format!("{field} must have at most {MAX_LENGTH} characters"));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .into_iter()
    .filter(|x| *x)
    .count();
    if classes < MIN_CLASSES {
        return err(
            "password_too_simple",
            format!(
                "{field} must mix at least {MIN_CLASSES} of: lower-case letters, capitals, digits, symbols"
            ),
        );
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return err("password_contains_username", format!("{field} must not contain the username"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_mixed_password_is_accepted() {
        assert!(check("password", "Qingpu-Cloud-2026", "wang").is_ok());
    }

    #[test]
    fn a_short_password_is_refused() {
        assert_eq!(check("password", "Ab1!", "wang").unwrap_err().first().code, "password_too_short");
    }

    #[test]
    fn a_password_of_one_kind_of_character_is_refused() {
        assert_eq!(
            check("password", "abcdefghijklmn", "wang").unwrap_err().first().code,
            "password_too_simple"
        );
    }

    #[test]
    fn a_password_containing_the_username_is_refused() {
        assert_eq!(
            check("password", "Wang-2026-pass", "wang").unwrap_err().first().code,
            "password_contains_username"
        );
    }
}
