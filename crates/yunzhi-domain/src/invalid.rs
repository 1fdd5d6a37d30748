//! Refusals of bad input: which field, which rule, which article.

use serde::Serialize;

/// One field that broke one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path as the client sent it, e.g. `quota.vcpu`.
    pub field: String,
    /// A stable machine code for the rule, e.g. `too_long`, `mlps_level_out_of_range`.
    pub code: &'static str,
    /// A sentence for a person.
    pub detail: String,
    /// The article of the regulation the rule comes from, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article: Option<u8>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        Self { field: field.into(), code, detail: detail.into(), article: None }
    }

    pub fn article(mut self, article: u8) -> Self {
        self.article = Some(article);
        self
    }
}

/// Everything wrong with one input, in the order the fields were checked.
/// Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.first().map(|e| e.detail.as_str()).unwrap_or("invalid input"))]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn one(error: FieldError) -> Self {
        Self(vec![error])
    }

    pub fn first(&self) -> &FieldError {
        // An `Invalid` is only built from at least one error.
        &self.0[0]
    }

    /// The same errors with every field path put under `prefix`.
    pub fn nested(self, prefix: &str) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|mut e| {
                    e.field = format!("{prefix}.{}", e.field);
                    e
                })
                .collect(),
        )
    }
}

impl From<FieldError> for Invalid {
    fn from(e: FieldError) -> Self {
        Invalid::one(e)
    }
}

/// Collects field errors while a whole input is checked, so a form can show
/// every problem at once instead of one per round trip.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value when it parsed, remembers the errors when not.
    pub fn take<T>(&mut self, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(Invalid(errors)) => {
                self.errors.extend(errors);
                None
            }
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(())` when nothing was wrong.
    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() { Ok(()) } else { Err(Invalid(self.errors)) }
    }
}
