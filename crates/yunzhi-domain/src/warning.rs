//! Warnings (警告) and what follows them (Art. 14): a confirmed finding
//! becomes a warning to the unit with a deadline in working days; the unit
//! rectifies or explains; the office accepts an explanation or confirms a
//! rectification; at the deadline the rule is checked again; a unit that
//! did neither gets a suspension proposal (the Big Data Center) that the
//! office approves, and its resources come back once it has rectified.

use serde::{Deserialize, Serialize};

use crate::invalid::FieldError;
use crate::role::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningState {
    /// Waiting for the unit's answer, until the deadline.
    Open,
    /// The unit answered; the office decides (or the deadline's check does).
    Answered,
    /// The deadline passed without a satisfying answer.
    Overdue,
    /// The Big Data Center proposes suspension; the office decides.
    SuspensionProposed,
    /// The system's hosts are suspended until the rectification is confirmed.
    Suspended,
    /// Settled: rectified, or explained to the office's satisfaction.
    Closed,
}

impl WarningState {
    pub const ALL: [WarningState; 6] = [
        WarningState::Open,
        WarningState::Answered,
        WarningState::Overdue,
        WarningState::SuspensionProposed,
        WarningState::Suspended,
        WarningState::Closed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            WarningState::Open => "open",
            WarningState::Answered => "answered",
            WarningState::Overdue => "overdue",
            WarningState::SuspensionProposed => "suspension_proposed",
            WarningState::Suspended => "suspended",
            WarningState::Closed => "closed",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<WarningState, FieldError> {
        WarningState::ALL.into_iter().find(|s| s.code() == raw).ok_or_else(|| {
            let all: Vec<_> = WarningState::ALL.iter().map(|s| s.code()).collect();
            FieldError::new(field, "unknown_state", format!("{field} must be one of {}", all.join(", ")))
        })
    }
}

/// The unit's answer to a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Done: resources freed, the system put to use, the agent back.
    Rectified,
    /// Not a fault: e.g. a declared seasonal peak, with evidence.
    Explained,
}

impl Answer {
    pub fn code(self) -> &'static str {
        match self {
            Answer::Rectified => "rectified",
            Answer::Explained => "explained",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Answer, FieldError> {
        match raw {
            "rectified" => Ok(Answer::Rectified),
            "explained" => Ok(Answer::Explained),
            _ => Err(FieldError::new(
                field,
                "unknown_answer",
                format!("{field} must be rectified or explained"),
            )),
        }
    }
}

/// What someone (or the deadline) does to a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The unit answers (unit_admin).
    Answer(Answer),
    /// The office accepts the unit's explanation.
    AcceptExplanation,
    /// The office does not accept it: the unit must still act.
    RejectExplanation,
    /// The office confirms the rectification (and, if suspended, the
    /// resources come back).
    ConfirmRectification,
    /// The deadline passed; `rule_holds` says whether the rule still finds
    /// what it found.
    DeadlinePassed { rule_holds: bool },
    /// The Big Data Center proposes suspension (cloud_admin).
    ProposeSuspension,
    /// The office approves the suspension.
    ApproveSuspension,
    /// The office turns the proposal down: the warning stays overdue.
    RejectSuspension,
}

impl Step {
    /// The code of a decision step, as the API names it.
    pub fn parse_decision(field: &str, raw: &str) -> Result<Step, FieldError> {
        Ok(match raw {
            "accept_explanation" => Step::AcceptExplanation,
            "reject_explanation" => Step::RejectExplanation,
            "confirm_rectification" => Step::ConfirmRectification,
            "propose_suspension" => Step::ProposeSuspension,
            "approve_suspension" => Step::ApproveSuspension,
            "reject_suspension" => Step::RejectSuspension,
            _ => {
                return Err(FieldError::new(
                    field,
                    "unknown_action",
                    format!(
                        "{field} must be accept_explanation, reject_explanation, confirm_rectification, \
                         propose_suspension, approve_suspension or reject_suspension"
                    ),
                ));
            }
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            Step::Answer(Answer::Rectified) => "answer_rectified",
            Step::Answer(Answer::Explained) => "answer_explained",
            Step::AcceptExplanation => "accept_explanation",
            Step::RejectExplanation => "reject_explanation",
            Step::ConfirmRectification => "confirm_rectification",
            Step::DeadlinePassed { .. } => "deadline_passed",
            Step::ProposeSuspension => "propose_suspension",
            Step::ApproveSuspension => "approve_suspension",
            Step::RejectSuspension => "reject_suspension",
        }
    }

    /// Who takes this step (`None`: the platform itself, at the deadline).
    pub fn role(self) -> Option<Role> {
        match self {
            Step::Answer(_) => Some(Role::UnitAdmin),
            Step::ProposeSuspension => Some(Role::CloudAdmin),
            Step::DeadlinePassed { .. } => None,
            _ => Some(Role::Office),
        }
    }
}

/// Whether the rule behind a warning still finds what it found, at the
/// deadline's check: the latest analysis pass (at `latest_pass`) saw its
/// finding again. Judged by the latest pass, not by a span of time, so that
/// a pass that failed or has not yet run since the clock moved (the demo's
/// clock, a server down over a weekend) never reads as a rectification;
/// with no pass on record there is no sign of one either.
pub fn rule_still_holds(finding_last_seen: jiff::Timestamp, latest_pass: Option<jiff::Timestamp>) -> bool {
    latest_pass.is_none_or(|pass| finding_last_seen >= pass)
}

/// Where `step` takes a warning in `state` whose last answer was `answer`,
/// or why it cannot be taken now (409 `wrong_state`, citing Art. 14).
pub fn next(state: WarningState, answer: Option<Answer>, step: Step) -> Result<WarningState, FieldError> {
    use WarningState as S;
    let to = match (state, step) {
        (S::Open | S::Overdue | S::Answered, Step::Answer(_)) => Some(S::Answered),
        // Once suspended, the unit's word "rectified" waits for the office.
        (S::Suspended, Step::Answer(Answer::Rectified)) => Some(S::Suspended),
        (S::Answered, Step::AcceptExplanation) if answer == Some(Answer::Explained) => Some(S::Closed),
        (S::Answered, Step::RejectExplanation) if answer == Some(Answer::Explained) => Some(S::Open),
        (S::Answered | S::Suspended, Step::ConfirmRectification) if answer == Some(Answer::Rectified) => {
            Some(S::Closed)
        }
        // Art. 14 suspends a unit that refuses to rectify (拒不整改): a unit
        // that put things right without writing back has not refused.
        (S::Open, Step::DeadlinePassed { rule_holds }) => {
            Some(if rule_holds { S::Overdue } else { S::Closed })
        }
        // A rectification the check confirms needs nobody; one it does not is overdue.
        (S::Answered, Step::DeadlinePassed { rule_holds }) if answer == Some(Answer::Rectified) => {
            Some(if rule_holds { S::Overdue } else { S::Closed })
        }
        (S::Overdue, Step::ProposeSuspension) => Some(S::SuspensionProposed),
        (S::SuspensionProposed, Step::ApproveSuspension) => Some(S::Suspended),
        (S::SuspensionProposed, Step::RejectSuspension) => Some(S::Overdue),
        _ => None,
    };
    to.ok_or_else(|| {
        FieldError::new(
            "action",
            "wrong_state",
            format!(
                "a warning that is {}{} cannot take the step {} (Art. 14)",
                state.code(),
                answer.map(|a| format!(" (answered {})", a.code())).unwrap_or_default(),
                step.code()
            ),
        )
        .article(14)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use WarningState as S;

    #[test]
    fn a_unit_that_neither_answers_nor_rectifies_is_suspended_with_the_offices_approval() {
        let s = next(S::Open, None, Step::DeadlinePassed { rule_holds: true }).unwrap();
        assert_eq!(s, S::Overdue);
        let s = next(s, None, Step::ProposeSuspension).unwrap();
        let s = next(s, None, Step::ApproveSuspension).unwrap();
        assert_eq!(s, S::Suspended);
        let s = next(s, Some(Answer::Rectified), Step::Answer(Answer::Rectified)).unwrap();
        assert_eq!(next(s, Some(Answer::Rectified), Step::ConfirmRectification).unwrap(), S::Closed);
    }

    #[test]
    fn an_unanswered_warning_whose_rule_no_longer_holds_at_the_deadline_closes_and_one_whose_rule_holds_is_overdue()
     {
        assert_eq!(next(S::Open, None, Step::DeadlinePassed { rule_holds: false }).unwrap(), S::Closed);
        assert_eq!(next(S::Open, None, Step::DeadlinePassed { rule_holds: true }).unwrap(), S::Overdue);
    }

    #[test]
    fn a_rectification_the_deadlines_check_confirms_closes_the_warning_and_one_it_refutes_is_overdue() {
        let a = Some(Answer::Rectified);
        assert_eq!(next(S::Answered, a, Step::DeadlinePassed { rule_holds: false }).unwrap(), S::Closed);
        assert_eq!(next(S::Answered, a, Step::DeadlinePassed { rule_holds: true }).unwrap(), S::Overdue);
    }

    #[test]
    fn an_explanation_waits_for_the_office_which_accepts_or_rejects_it() {
        let e = Some(Answer::Explained);
        assert!(next(S::Answered, e, Step::DeadlinePassed { rule_holds: true }).is_err());
        assert_eq!(next(S::Answered, e, Step::AcceptExplanation).unwrap(), S::Closed);
        assert_eq!(next(S::Answered, e, Step::RejectExplanation).unwrap(), S::Open);
    }

    #[test]
    fn suspension_is_proposed_only_for_an_overdue_warning_citing_article_14() {
        let e = next(S::Open, None, Step::ProposeSuspension).unwrap_err();
        assert_eq!((e.code, e.article), ("wrong_state", Some(14)));
        assert!(next(S::Closed, None, Step::Answer(Answer::Rectified)).is_err());
    }

    #[test]
    fn a_finding_the_latest_analysis_saw_still_holds_and_one_it_did_not_see_does_not() {
        let pass: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        assert!(rule_still_holds(pass, Some(pass)));
        assert!(!rule_still_holds(pass - jiff::SignedDuration::from_hours(1), Some(pass)));
        assert!(rule_still_holds(pass - jiff::SignedDuration::from_hours(48), None), "no pass on record");
    }

    #[test]
    fn each_step_belongs_to_its_role() {
        assert_eq!(Step::Answer(Answer::Explained).role(), Some(Role::UnitAdmin));
        assert_eq!(Step::ProposeSuspension.role(), Some(Role::CloudAdmin));
        assert_eq!(Step::ApproveSuspension.role(), Some(Role::Office));
        assert_eq!(Step::DeadlinePassed { rule_holds: true }.role(), None);
    }
}
