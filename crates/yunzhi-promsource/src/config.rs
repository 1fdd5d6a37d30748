//! How to reach a Prometheus-compatible store and how its series are
//! labelled at a site.

use std::time::Duration;

use crate::error::{Error, Result};

/// Site-specific settings of a [`crate::PromSource`].
#[derive(Debug, Clone, PartialEq)]
pub struct PromSourceConfig {
    /// The resolution, in seconds, at which the CPU series is sampled inside
    /// a day (the subquery step). Default 300. It must divide an hour, so
    /// that the sampling points fall on every day boundary of a whole-hour
    /// time zone.
    pub step_secs: u32,
    /// The window of `rate()` over the CPU counters, in seconds. Default 300.
    /// It must hold at least two scrapes: with node_exporter scraped every
    /// minute the default is right; with a 5-minute scrape it needs 600.
    pub rate_window_secs: u32,
    /// The label that carries Yunzhi's resource id, set by relabelling at the
    /// site. Default `yunzhi_resource_id`.
    pub resource_label: String,
    /// The label naming the scraped host, used when the resource label is
    /// absent. Default `instance`.
    pub instance_label: String,
    /// How long one query may take, sent to the store too so that it stops
    /// working when we stop waiting. Default 60 s.
    pub timeout: Duration,
    /// Whether an answer with warnings (possibly partial data) is used.
    /// Default false: partial data makes busy hosts look idle, and the
    /// analysis accuses units of waste on these numbers.
    pub accept_warnings: bool,
}

impl Default for PromSourceConfig {
    fn default() -> Self {
        Self {
            step_secs: 300,
            rate_window_secs: 300,
            resource_label: "yunzhi_resource_id".to_owned(),
            instance_label: "instance".to_owned(),
            timeout: Duration::from_secs(60),
            accept_warnings: false,
        }
    }
}

impl PromSourceConfig {
    /// Checks what would otherwise produce wrong numbers or PromQL injection.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.step_secs == 0 || 3600 % self.step_secs != 0 {
            return Err(Error::Config(format!(
                "step_secs {} must divide 3600, so that samples fall on day boundaries",
                self.step_secs
            )));
        }
        if self.rate_window_secs < self.step_secs {
            return Err(Error::Config(format!(
                "rate_window_secs {} is shorter than step_secs {}: the CPU series would skip time",
                self.rate_window_secs, self.step_secs
            )));
        }
        for (what, name) in
            [("resource_label", &self.resource_label), ("instance_label", &self.instance_label)]
        {
            if !is_label_name(name) {
                return Err(Error::Config(format!("{what} {name:?} is not a Prometheus label name")));
            }
        }
        if self.resource_label == self.instance_label {
            return Err(Error::Config("resource_label and instance_label must differ".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(Error::Config("timeout must be positive".to_owned()));
        }
        Ok(())
    }
}

/// Prometheus' label name syntax, `[a-zA-Z_][a-zA-Z0-9_]*`. The labels are
/// pasted into PromQL, so anything else is refused rather than escaped.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(PromSourceConfig::default().validate().is_ok());
    }

    #[test]
    fn a_step_that_does_not_divide_an_hour_is_refused() {
        let config = PromSourceConfig { step_secs: 420, rate_window_secs: 840, ..Default::default() };
        assert!(matches!(config.validate(), Err(Error::Config(_))));
    }

    #[test]
    fn a_label_that_could_inject_promql_is_refused() {
        let config = PromSourceConfig { resource_label: "a) or vector(1".to_owned(), ..Default::default() };
        assert!(matches!(config.validate(), Err(Error::Config(_))));
        let config = PromSourceConfig { instance_label: "1abc".to_owned(), ..Default::default() };
        assert!(matches!(config.validate(), Err(Error::Config(_))));
    }

    #[test]
    fn a_rate_window_shorter_than_the_step_is_refused() {
        let config = PromSourceConfig { rate_window_secs: 60, ..Default::default() };
        assert!(matches!(config.validate(), Err(Error::Config(_))));
    }
}
