//! What can go wrong when asking a Prometheus-compatible store, worded so that
//! an operator reading the log knows which side to look at: our
//! configuration, the network, or the store.

use std::time::Duration;

/// Everything [`crate::PromSource`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot produce a correct query; caught at
    /// construction so a bad site configuration fails at start-up, not at
    /// the first hourly analysis.
    #[error("invalid Prometheus source configuration: {0}")]
    Config(String),

    /// Nothing answers at the address: wrong URL, store down, firewall.
    #[error("the Prometheus-compatible store at {url} cannot be reached (is it running?): {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// No answer within the configured timeout, either because the client
    /// gave up or because the store aborted the query (HTTP 503, `timeout`).
    #[error("the Prometheus-compatible store at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },

    /// The store answered `"status": "error"`; `error_type` is Prometheus'
    /// `errorType` (`bad_data`, `execution`, `timeout`, ...), `message` its
    /// `error` text, kept verbatim because it names the faulty part of the
    /// query.
    #[error("the Prometheus-compatible store refused the query ({error_type}): {message}")]
    Api { error_type: String, message: String },

    /// The store answered with warnings (a Thanos store or a remote-read
    /// endpoint that did not answer, for instance). The data may be partial,
    /// and a day with partial data would look idle, so by default this is an
    /// error; see [`crate::PromSourceConfig::accept_warnings`].
    #[error("the Prometheus-compatible store answered with warnings, so the data may be partial: {}", .0.join("; "))]
    Warnings(Vec<String>),

    /// An answer that is not the Prometheus API's JSON: a proxy's HTML error
    /// page, a different service on that port.
    #[error("the answer from {url} (HTTP {status}) is not a Prometheus API response: {detail}")]
    Protocol { url: String, status: u16, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
