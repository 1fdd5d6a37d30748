//! Plain text fields: trimmed, bounded, free of control characters.

use crate::invalid::{FieldError, Invalid};

/// Trims `raw` and checks it is between `min` and `max` characters (not bytes:
/// Chinese names are three bytes a character) with no control characters.
pub fn bounded(field: &str, raw: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let value = raw.trim();
    let chars = value.chars().count();
    if chars == 0 && min > 0 {
        return Err(FieldError::new(field, "required", format!("{field} must not be empty")).into());
    }
    if chars < min {
        return Err(FieldError::new(
            field,
            "too_short",
            format!("{field} must have at least {min} characters"),
        )
        .into());
    }
    if chars > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must have at most {max} characters, it has {chars}"),
        )
        .into());
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            "control_character",
            format!("{field} must not contain control characters"),
        )
        .into());
    }
    Ok(value.to_owned())
}

/// Like [`bounded`] but an absent or blank value is `None`.
pub fn optional(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, Invalid> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => bounded(field, v, 1, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_spaces_are_trimmed() {
        assert_eq!(bounded("name", "  教育局 ", 1, 10).unwrap(), "教育局");
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert!(bounded("name", "青浦区教育局", 1, 6).is_ok());
        assert_eq!(bounded("name", "青浦区教育局!", 1, 6).unwrap_err().first().code, "too_long");
    }

    #[test]
    fn a_blank_required_field_is_refused_as_required() {
        assert_eq!(bounded("name", "   ", 1, 6).unwrap_err().first().code, "required");
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(bounded("name", "a\u{0}b", 1, 6).unwrap_err().first().code, "control_character");
    }
}
