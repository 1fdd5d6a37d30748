//! Using units (使用单位): the government agencies that use the cloud.

use serde::{Deserialize, Serialize};

use crate::invalid::{Checker, FieldError, Invalid};
use crate::text;

/// A unified social credit code (统一社会信用代码, GB 32100-2015): 18
/// characters from a 31-letter alphabet, the last a check character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CreditCode(String);

/// The code's alphabet: digits and the capitals without I, O, S, V, Z.
const CODE_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CODE_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

impl CreditCode {
    pub fn parse(field: &str, raw: &str) -> Result<CreditCode, Invalid> {
        let code = raw.trim().to_ascii_uppercase();
        let bad = |rule, detail: String| Err(FieldError::new(field, rule, detail).into());
        if code.chars().count() != 18 {
            return bad(
                "credit_code_length",
                format!("{field} must have 18 characters (GB 32100-2015), it has {}", code.chars().count()),
            );
        }
        let values: Option<Vec<u32>> =
            code.bytes().map(|b| CODE_ALPHABET.iter().position(|a| *a == b).map(|p| p as u32)).collect();
        let Some(values) = values else {
            return bad(
                "credit_code_character",
                format!("{field} may contain only digits and capital letters other than I, O, S, V and Z"),
            );
        };
        if values[17] != Self::check_value(&values[..17]) {
            return bad(
                "credit_code_checksum",
                format!(
                    "{field}: the check character does not match; please check the code for a typing error"
                ),
            );
        }
        Ok(CreditCode(code))
    }

    /// The check character for the first 17 characters' values.
    fn check_value(values: &[u32]) -> u32 {
        let sum: u32 = values.iter().zip(CODE_WEIGHTS).map(|(v, w)| v * w).sum();
        (31 - sum % 31) % 31
    }

    /// Completes a 17-character prefix with its check character. For seeding
    /// demo data and for tests; `None` when the prefix is not 17 code characters.
    pub fn with_check_character(prefix: &str) -> Option<String> {
        let values: Option<Vec<u32>> =
            prefix.bytes().map(|b| CODE_ALPHABET.iter().position(|a| *a == b).map(|p| p as u32)).collect();
        let values = values.filter(|v| v.len() == 17)?;
        let check = CODE_ALPHABET[Self::check_value(&values) as usize] as char;
        Some(format!("{prefix}{check}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person to call at a unit about its systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    pub name: String,
    pub phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A contact as a client sent it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub name: String,
    pub phone: String,
    #[serde(default)]
    pub email: Option<String>,
}

impl Contact {
    pub fn parse(input: &ContactInput) -> Result<Contact, Invalid> {
        let mut c = Checker::new();
        let name = c.take(text::bounded("name", &input.name, 1, 32));
        let phone = c.take(parse_phone("phone", &input.phone));
        let email = c.take(parse_email("email", input.email.as_deref()));
        c.finish()?;
        Ok(Contact {
            name: name.unwrap_or_default(),
            phone: phone.unwrap_or_default(),
            email: email.flatten(),
        })
    }
}

fn parse_phone(field: &str, raw: &str) -> Result<String, Invalid> {
    let phone = raw.trim();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone.chars().all(|c| c.is_ascii_digit() || "+- ()".contains(c));
    if !allowed || !(5..=20).contains(&digits) {
        return Err(FieldError::new(
            field,
            "phone_format",
            format!("{field} must be a telephone number of 5 to 20 digits, e.g. 021-59730000 or 13800000000"),
        )
        .into());
    }
    Ok(phone.to_owned())
}

/// An optional e-mail address: blank is none.
pub fn parse_email(field: &str, raw: Option<&str>) -> Result<Option<String>, Invalid> {
    match text::optional(field, raw, 128)? {
        Some(e) if !looks_like_email(&e) => {
            Err(FieldError::new(field, "email_format", format!("{field} must look like name@example.gov.cn"))
                .into())
        }
        other => Ok(other),
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !s.contains(' ')
        }
        None => false,
    }
}

/// A unit as a client asks to register it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitInput {
    pub name: String,
    pub credit_code: String,
    #[serde(default)]
    pub contacts: Vec<ContactInput>,
}

/// A checked unit, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUnit {
    pub name: String,
    pub credit_code: CreditCode,
    pub contacts: Vec<Contact>,
}

pub const MAX_CONTACTS: usize = 5;

fn parse_contacts(c: &mut Checker, input: &[ContactInput]) -> Vec<Contact> {
    if input.len() > MAX_CONTACTS {
        c.push(FieldError::new(
            "contacts",
            "too_many",
            format!("contacts may list at most {MAX_CONTACTS} people"),
        ));
    }
    let mut contacts = Vec::new();
    for (i, contact) in input.iter().enumerate() {
        if let Some(ok) = c.take(Contact::parse(contact).map_err(|e| e.nested(&format!("contacts[{i}]")))) {
            contacts.push(ok);
        }
    }
    contacts
}

impl NewUnit {
    pub fn parse(input: &UnitInput) -> Result<NewUnit, Invalid> {
        let mut c = Checker::new();
        let name = c.take(text::bounded("name", &input.name, 2, 64));
        let credit_code = c.take(CreditCode::parse("credit_code", &input.credit_code));
        let contacts = parse_contacts(&mut c, &input.contacts);
        c.finish()?;
        Ok(NewUnit {
            name: name.unwrap_or_default(),
            credit_code: credit_code
                .ok_or_else(|| Invalid::one(FieldError::new("credit_code", "required", "")))?,
            contacts,
        })
    }
}

/// A change to a unit: its name (units are renamed in reorganisations) and
/// its contacts. The credit code is the unit's identity and does not change.
#[derive(Debug, Clone, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitPatchInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub contacts: Option<Vec<ContactInput>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitPatch {
    pub name: Option<String>,
    pub contacts: Option<Vec<Contact>>,
}

impl UnitPatch {
    pub fn parse(input: &UnitPatchInput) -> Result<UnitPatch, Invalid> {
        let mut c = Checker::new();
        let name = input.name.as_deref().and_then(|n| c.take(text::bounded("name", n, 2, 64)));
        let contacts = input.contacts.as_deref().map(|list| parse_contacts(&mut c, list));
        c.finish()?;
        if name.is_none() && contacts.is_none() {
            return Err(FieldError::new("", "empty_patch", "the request changes nothing").into());
        }
        Ok(UnitPatch { name, contacts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credit_code_with_the_right_check_character_is_accepted() {
        let code = CreditCode::with_check_character("11310118002469871").unwrap();
        assert_eq!(CreditCode::parse("credit_code", &code).unwrap().as_str(), code);
    }

    #[test]
    fn a_published_credit_code_validates() {
        // The code printed on a real business licence (a well-known company's).
        assert!(CreditCode::parse("c", "91350100M000100Y43").is_ok());
    }

    #[test]
    fn a_credit_code_with_one_typo_is_refused_by_its_checksum() {
        let code = CreditCode::with_check_character("11310118002469871").unwrap();
        let mut typo = code.clone().into_bytes();
        typo[5] = if typo[5] == b'1' { b'2' } else { b'1' };
        let e = CreditCode::parse("credit_code", std::str::from_utf8(&typo).unwrap()).unwrap_err();
        assert_eq!(e.first().code, "credit_code_checksum");
    }

    #[test]
    fn a_credit_code_with_letters_outside_its_alphabet_is_refused() {
        let e = CreditCode::parse("credit_code", "11310118002469871O").unwrap_err();
        assert_eq!(e.first().code, "credit_code_character");
    }

    #[test]
    fn a_short_credit_code_is_refused_with_its_length() {
        let e = CreditCode::parse("credit_code", "1131011800").unwrap_err();
        assert_eq!(e.first().code, "credit_code_length");
        assert!(e.first().detail.contains("10"));
    }

    #[test]
    fn every_bad_field_of_a_unit_is_reported_at_once() {
        let input = UnitInput {
            name: "".into(),
            credit_code: "x".into(),
            contacts: vec![ContactInput {
                name: "王".into(),
                phone: "abc".into(),
                email: Some("nope".into()),
            }],
        };
        let fields: Vec<_> = NewUnit::parse(&input).unwrap_err().0.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "credit_code", "contacts[0].phone", "contacts[0].email"]);
    }
}
