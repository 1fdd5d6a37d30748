//! Findings (发现): what the platform noticed that needs a person's eyes
//! (Art. 13-14): idle and zombie systems from the efficiency analysis,
//! monitoring agents missing, silent or altered, and resources a cloud
//! platform runs that Yunzhi does not know of.

use serde::{Deserialize, Serialize};

use crate::invalid::{FieldError, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    LowUtilization,
    Zombie,
    AgentMissing,
    AgentSilent,
    AgentTampered,
    /// A resource on a platform that Yunzhi did not make, or reclaimed.
    OrphanResource,
    /// Anything else, e.g. a resource Yunzhi believes live that its
    /// platform no longer has (`evidence.problem = "missing_on_platform"`).
    Other,
}

impl FindingKind {
    pub const ALL: [FindingKind; 7] = [
        FindingKind::LowUtilization,
        FindingKind::Zombie,
        FindingKind::AgentMissing,
        FindingKind::AgentSilent,
        FindingKind::AgentTampered,
        FindingKind::OrphanResource,
        FindingKind::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            FindingKind::LowUtilization => "low_utilization",
            FindingKind::Zombie => "zombie",
            FindingKind::AgentMissing => "agent_missing",
            FindingKind::AgentSilent => "agent_silent",
            FindingKind::AgentTampered => "agent_tampered",
            FindingKind::OrphanResource => "orphan_resource",
            FindingKind::Other => "other",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<FindingKind, Invalid> {
        FindingKind::ALL.into_iter().find(|k| k.code() == raw).ok_or_else(|| {
            let all: Vec<_> = FindingKind::ALL.iter().map(|k| k.code()).collect();
            FieldError::new(field, "unknown_kind", format!("{field} must be one of {}", all.join(", ")))
                .into()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Waiting for the office's review.
    Open,
    /// The office agreed; a warning follows (Art. 14).
    Confirmed,
    /// The office found nothing wrong; the same finding is not raised again.
    Dismissed,
    /// What was found is gone (the orphan was removed, the agent reports again).
    Resolved,
}

impl FindingState {
    pub const ALL: [FindingState; 4] =
        [FindingState::Open, FindingState::Confirmed, FindingState::Dismissed, FindingState::Resolved];

    pub fn code(self) -> &'static str {
        match self {
            FindingState::Open => "open",
            FindingState::Confirmed => "confirmed",
            FindingState::Dismissed => "dismissed",
            FindingState::Resolved => "resolved",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<FindingState, Invalid> {
        FindingState::ALL.into_iter().find(|s| s.code() == raw).ok_or_else(|| {
            FieldError::new(
                field,
                "unknown_state",
                format!("{field} must be open, confirmed, dismissed or resolved"),
            )
            .into()
        })
    }

    /// What happens when the same finding is seen again: an open or
    /// confirmed one stays as it is, a dismissed one stays dismissed (the
    /// office said it is fine), a resolved one opens again.
    pub fn seen_again(self) -> FindingState {
        match self {
            FindingState::Resolved => FindingState::Open,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_code() {
        for k in FindingKind::ALL {
            assert_eq!(FindingKind::parse("kind", k.code()).unwrap(), k);
        }
        assert!(FindingKind::parse("kind", "idle").is_err());
    }

    #[test]
    fn a_dismissed_finding_seen_again_stays_dismissed_and_a_resolved_one_opens_again() {
        assert_eq!(FindingState::Dismissed.seen_again(), FindingState::Dismissed);
        assert_eq!(FindingState::Resolved.seen_again(), FindingState::Open);
        assert_eq!(FindingState::Open.seen_again(), FindingState::Open);
    }
}
