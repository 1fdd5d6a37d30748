//! The wire contract with the server: what the agent sends and what it
//! expects back. Field names are the API's; change them only with it.

use serde::{Deserialize, Serialize};

/// `POST /api/v1/agent/enroll`
#[derive(Debug, Serialize)]
pub struct EnrollRequest<'a> {
    pub code: &'a str,
    pub hostname: &'a str,
    pub machine_id: Option<&'a str>,
    pub version: &'a str,
    pub binary_sm3: &'a str,
}

/// The 201 answer to an enrolment.
#[derive(Debug, Deserialize)]
pub struct EnrollResponse {
    pub resource_id: u64,
    pub credential: String,
    #[serde(default)]
    pub interval_secs: Option<u64>,
}

/// `POST /api/v1/agent/report`: one batch, also stored as is in the spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub sequence: u64,
    /// The boot the samples were taken in, which for a spooled batch need not
    /// be the current one.
    pub boot_id: String,
    pub version: String,
    pub binary_sm3: String,
    /// Stamped again at every attempt, so the server can see both how late a
    /// batch arrived and how far the host's clock is off.
    pub sent_at: String,
    pub samples: Vec<Sample>,
    /// Batches lost since the previous batch because the spool was full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_batches: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: String,
    pub cpu_pct: f64,
    pub memory_pct: f64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    pub sessions: u32,
    pub listening: u32,
    /// TCP connections accepted since the previous sample; left out where
    /// the host keeps no count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u32>,
}

/// The 200/202 answer to a report.
#[derive(Debug, Deserialize)]
pub struct ReportResponse {
    pub accepted: u64,
    #[serde(default)]
    pub next_sequence: Option<u64>,
}

/// An RFC 9457 problem document, as the server answers errors.
#[derive(Debug, Default, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

impl Problem {
    /// The most specific text the server gave, for a person to read.
    pub fn explanation(&self) -> String {
        match (&self.detail, &self.title, &self.code) {
            (Some(d), _, _) => d.clone(),
            (None, Some(t), _) => t.clone(),
            (None, None, Some(c)) => c.clone(),
            (None, None, None) => "no explanation given".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_batches_is_sent_only_when_something_was_dropped() {
        let mut batch = Batch {
            sequence: 1,
            boot_id: "b".into(),
            version: "0.1.0".into(),
            binary_sm3: "00".into(),
            sent_at: "1970-01-01T00:00:00.000Z".into(),
            samples: vec![],
            dropped_batches: None,
        };
        assert!(!serde_json::to_string(&batch).expect("json").contains("dropped_batches"));
        batch.dropped_batches = Some(3);
        assert!(serde_json::to_string(&batch).expect("json").contains("\"dropped_batches\":3"));
    }
}
