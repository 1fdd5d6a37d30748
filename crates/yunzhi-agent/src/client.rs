//! The two calls the agent makes, and what each answer means for the batch
//! in hand. HTTP status handling lives here so the run loop sees outcomes,
//! not status codes.

use std::time::Duration;

use ureq::Agent;
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};

use crate::report::{Batch, EnrollRequest, EnrollResponse, Problem, ReportResponse};

/// An answer larger than this is not one of ours.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

pub struct Client {
    agent: Agent,
    server: String,
}

/// Why enrolment did not give a credential.
#[derive(Debug)]
pub enum EnrollError {
    /// 401 `invalid_enrollment_code` and other refusals: the server's words.
    Refused {
        status: u16,
        explanation: String,
    },
    Unreachable(String),
    /// A 201 whose body is not the contract's.
    Garbled(String),
}

impl std::fmt::Display for EnrollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrollError::Refused { status, explanation } => {
                write!(f, "the server refused the enrolment (HTTP {status}): {explanation}")
            }
            EnrollError::Unreachable(e) => write!(f, "cannot reach the server to enrol: {e}"),
            EnrollError::Garbled(e) => write!(f, "the server's enrolment answer is not understood: {e}"),
        }
    }
}

/// What became of one attempt to deliver a batch.
#[derive(Debug, PartialEq)]
pub enum Delivery {
    /// 202: the server took the batch; it may say which sequence it expects next.
    Accepted { next_sequence: Option<u64> },
    /// 200 with nothing accepted: the server had this batch already.
    AlreadyHad,
    /// 429 or 503: keep the batch, try again no sooner than this.
    Later(Option<Duration>),
    /// Network trouble or a server error: keep the batch.
    Unreachable(String),
    /// 401: the credential was revoked. Retrying cannot help.
    Revoked(String),
    /// Another 4xx: the server will never take this batch.
    Rejected { status: u16, explanation: String },
}

impl Client {
    pub fn new(server: &str) -> Self {
        let config = Agent::config_builder()
            // Statuses are outcomes here, not errors.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(30)))
            .user_agent(concat!("yunzhi-agent/", env!("CARGO_PKG_VERSION")))
            // The host's trust store: government clouds sign with their own CA.
            .tls_config(TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).build())
            .build();
        Client { agent: config.new_agent(), server: server.trim_end_matches('/').to_owned() }
    }

    pub fn enroll(&self, request: &EnrollRequest<'_>) -> Result<EnrollResponse, EnrollError> {
        let url = format!("{}/api/v1/agent/enroll", self.server);
        let body = serde_json::to_vec(request).map_err(|e| EnrollError::Garbled(e.to_string()))?;
        let mut response = self
            .agent
            .post(&url)
            .content_type("application/json")
            .send(&body[..])
            .map_err(|e| EnrollError::Unreachable(format!("POST {url}: {e}")))?;
        let status = response.status().as_u16();
        let text = read_body(&mut response);
        if (200..300).contains(&status) {
            serde_json::from_str(&text).map_err(|e| EnrollError::Garbled(e.to_string()))
        } else {
            Err(EnrollError::Refused { status, explanation: explain(status, &text) })
        }
    }

    pub fn report(&self, credential: &str, batch: &Batch) -> Delivery {
        let url = format!("{}/api/v1/agent/report", self.server);
        let body = match serde_json::to_vec(batch) {
            Ok(body) => body,
            Err(e) => return Delivery::Rejected { status: 0, explanation: format!("cannot encode: {e}") },
        };
        let sent = self
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {credential}"))
            .content_type("application/json")
            .send(&body[..]);
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return Delivery::Unreachable(format!("POST {url}: {e}")),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let text = read_body(&mut response);
        match status {
            200 | 202 => match serde_json::from_str::<ReportResponse>(&text) {
                Ok(r) if status == 200 && r.accepted == 0 => Delivery::AlreadyHad,
                Ok(r) => Delivery::Accepted { next_sequence: r.next_sequence },
                // The server said yes; an odd body does not make it a no.
                Err(_) => Delivery::Accepted { next_sequence: None },
            },
            201 | 204 => Delivery::Accepted { next_sequence: None },
            401 => Delivery::Revoked(explain(status, &text)),
            429 | 503 => Delivery::Later(retry_after),
            408 => Delivery::Unreachable("the server timed out reading the report (HTTP 408)".into()),
            400..=499 => Delivery::Rejected { status, explanation: explain(status, &text) },
            _ => Delivery::Unreachable(format!("HTTP {status}: {}", explain(status, &text))),
        }
    }
}

fn read_body(response: &mut Response<ureq::Body>) -> String {
    response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string().unwrap_or_default()
}

/// `Retry-After` in seconds; the HTTP-date form is not used by our server and
/// is treated as absent.
fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The problem document's detail, or the raw body for a server that did not
/// send one (a proxy's error page, say).
fn explain(status: u16, body: &str) -> String {
    match serde_json::from_str::<Problem>(body) {
        Ok(problem) => problem.explanation(),
        Err(_) if body.trim().is_empty() => format!("HTTP {status} with no explanation"),
        Err(_) => body.chars().take(200).collect(),
    }
}
