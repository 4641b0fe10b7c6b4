//! The quote lifecycle: which action is allowed in which status, and where it leads.
//!
//! ```text
//! draft --price--> priced --submit--> approval-pending --approve(last level)--> approved --accept--> accepted --convert--> converted
//!   ^  <--edit----   |                      |  \--reject--> rejected                ^
//!   |                \--submit (no approval needed)--> submitted ----accept---------+ (approval-free)
//!   +------------------ return-for-revision -+
//! ```
//! An edit after pricing makes the price stale (back to draft). Submitted, approval-pending,
//! approved and rejected quotes can be revised (a new revision, in draft, carrying the items).
//! Every open status can be cancelled or expire. Accepted, converted, expired and cancelled are
//! final for the revision. There is no way to accepted that does not pass through an approval
//! decision: either approved, or submitted because the policy required no approval.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Draft,
    Priced,
    /// Submitted and approval-free: the policy required no approval.
    Submitted,
    ApprovalPending,
    Approved,
    Rejected,
    Accepted,
    Converted,
    Expired,
    Cancelled,
    /// Superseded by a newer revision.
    Revised,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    EditItems,
    Price,
    /// Submit when the approval policy requires no approval.
    SubmitApprovalFree,
    /// Submit when it requires at least one level.
    SubmitForApproval,
    /// An approval that leaves levels to go.
    ApproveLevel,
    /// The approval of the last required level.
    ApproveFinal,
    Reject,
    ReturnForRevision,
    Accept,
    Convert,
    Revise,
    Cancel,
    Expire,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Draft,
        Status::Priced,
        Status::Submitted,
        Status::ApprovalPending,
        Status::Approved,
        Status::Rejected,
        Status::Accepted,
        Status::Converted,
        Status::Expired,
        Status::Cancelled,
        Status::Revised,
    ];

    /// No action applies any more (to this revision).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Converted | Status::Expired | Status::Cancelled | Status::Revised
        )
    }
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::EditItems,
        Action::Price,
        Action::SubmitApprovalFree,
        Action::SubmitForApproval,
        Action::ApproveLevel,
        Action::ApproveFinal,
        Action::Reject,
        Action::ReturnForRevision,
        Action::Accept,
        Action::Convert,
        Action::Revise,
        Action::Cancel,
        Action::Expire,
    ];
}

/// Where `action` leads from `status`, or `None` when it is not allowed there.
pub fn next(status: Status, action: Action) -> Option<Status> {
    use Action as A;
    use Status as S;
    Some(match (status, action) {
        (S::Draft | S::Priced, A::EditItems) => S::Draft,
        (S::Draft | S::Priced, A::Price) => S::Priced,
        (S::Priced, A::SubmitApprovalFree) => S::Submitted,
        (S::Priced, A::SubmitForApproval) => S::ApprovalPending,
        (S::ApprovalPending, A::ApproveLevel) => S::ApprovalPending,
        (S::ApprovalPending, A::ApproveFinal) => S::Approved,
        (S::ApprovalPending, A::Reject) => S::Rejected,
        (S::ApprovalPending, A::ReturnForRevision) => S::Draft,
        (S::Submitted | S::Approved, A::Accept) => S::Accepted,
        (S::Accepted, A::Convert) => S::Converted,
        (S::Submitted | S::ApprovalPending | S::Approved | S::Rejected, A::Revise) => S::Revised,
        (
            S::Draft | S::Priced | S::Submitted | S::ApprovalPending | S::Approved | S::Rejected,
            A::Cancel,
        ) => S::Cancelled,
        (
            S::Draft | S::Priced | S::Submitted | S::ApprovalPending | S::Approved | S::Rejected,
            A::Expire,
        ) => S::Expired,
        _ => return None,
    })
}

/// The actions allowed in `status`, in a stable order.
pub fn allowed(status: Status) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| next(status, *a).is_some())
        .collect()
}

impl Status {
    /// The name the API uses (`approval-pending`).
    pub fn api_name(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Priced => "priced",
            Status::Submitted => "submitted",
            Status::ApprovalPending => "approval-pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Accepted => "accepted",
            Status::Converted => "converted",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Revised => "revised",
        }
    }

    /// What a caller does next with a quote in this status.
    pub fn next_step(self) -> &'static str {
        match self {
            Status::Draft => "price it (POST /v1/quotes/{id}/price), then submit it",
            Status::Priced => "submit it (POST /v1/quotes/{id}/submit), or change its items",
            Status::Submitted => "record the customer's acceptance (POST /v1/quotes/{id}/accept)",
            Status::ApprovalPending => {
                "wait for the approval decision (the approvers' tasks under /v1/approval-tasks)"
            }
            Status::Approved => "record the customer's acceptance (POST /v1/quotes/{id}/accept)",
            Status::Rejected => "revise it (POST /v1/quotes/{id}/revise) or cancel it",
            Status::Accepted => "convert it to an order (POST /v1/quotes/{id}/convert)",
            Status::Converted => "nothing: it is an order now (see its order_id)",
            Status::Expired | Status::Cancelled => {
                "nothing: this quote is closed; create a new quote"
            }
            Status::Revised => "work on its latest revision",
        }
    }
}

impl Action {
    /// The API operation that asks for this action (`submit`, `approve`, `items`, ...). Both kinds
    /// of submission are `submit`, both approvals `approve`; `expire` is the platform's own.
    pub fn api_name(self) -> &'static str {
        match self {
            Action::EditItems => "change items",
            Action::Price => "price",
            Action::SubmitApprovalFree | Action::SubmitForApproval => "submit",
            Action::ApproveLevel | Action::ApproveFinal => "approve",
            Action::Reject => "reject",
            Action::ReturnForRevision => "return",
            Action::Accept => "accept",
            Action::Convert => "convert",
            Action::Revise => "revise",
            Action::Cancel => "cancel",
            Action::Expire => "expire",
        }
    }
}

/// A refused transition, naming the status and what is allowed there (the API's 409), in the
/// API's names, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: Status,
    pub action: Action,
    pub allowed: Vec<Action>,
}

impl Refused {
    /// The allowed actions a caller can ask for, in the API's names, without repeats.
    pub fn allowed_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for a in self.allowed.iter().filter(|a| **a != Action::Expire) {
            if !names.contains(&a.api_name()) {
                names.push(a.api_name());
            }
        }
        names
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.allowed_names();
        write!(
            f,
            "a quote in status {} cannot {}; allowed: {}; next: {}",
            self.status.api_name(),
            self.action.api_name(),
            if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            },
            self.status.next_step()
        )
    }
}

pub fn apply(status: Status, action: Action) -> Result<Status, Refused> {
    next(status, action).ok_or_else(|| Refused {
        status,
        action,
        allowed: allowed(status),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, VecDeque};

    use super::*;
    use proptest::prelude::*;

    /// Statuses reachable from `from` without taking any action in `without`.
    fn reachable(from: Status, without: &[Action]) -> BTreeSet<Status> {
        let mut seen = BTreeSet::from([from]);
        let mut queue = VecDeque::from([from]);
        while let Some(s) = queue.pop_front() {
            for a in Action::ALL.into_iter().filter(|a| !without.contains(a)) {
                if let Some(n) = next(s, a) {
                    if seen.insert(n) {
                        queue.push_back(n);
                    }
                }
            }
        }
        seen
    }

    #[test]
    fn nothing_reaches_accepted_without_an_approval_decision() {
        let without_decision = reachable(
            Status::Draft,
            &[Action::ApproveFinal, Action::SubmitApprovalFree],
        );
        assert!(!without_decision.contains(&Status::Accepted));
        assert!(!without_decision.contains(&Status::Converted));
        assert!(reachable(Status::Draft, &[]).contains(&Status::Converted));
    }

    #[test]
    fn refusals_speak_the_api_names_and_say_what_to_do_next() {
        let r = apply(Status::ApprovalPending, Action::Accept).unwrap_err();
        assert_eq!(
            r.to_string(),
            "a quote in status approval-pending cannot accept; allowed: approve, reject, return, \
             revise, cancel; next: wait for the approval decision (the approvers' tasks under \
             /v1/approval-tasks)"
        );
        // Every status and action name is the API's (kebab-case, as serialised).
        for s in Status::ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json.as_str(), Some(s.api_name()));
        }
    }

    #[test]
    fn a_rejected_quote_is_never_accepted_in_its_revision() {
        assert!(!reachable(Status::Rejected, &[]).contains(&Status::Accepted));
    }

    proptest! {
        #[test]
        fn allowed_actions_are_exactly_those_that_apply(s in prop::sample::select(Status::ALL.to_vec()), a in prop::sample::select(Action::ALL.to_vec())) {
            match apply(s, a) {
                Ok(_) => prop_assert!(allowed(s).contains(&a)),
                Err(r) => {
                    prop_assert!(!r.allowed.contains(&a));
                    prop_assert_eq!(r.allowed, allowed(s));
                }
            }
            if s.is_final() {
                prop_assert!(allowed(s).is_empty());
            }
        }

        #[test]
        fn any_walk_stays_inside_the_lifecycle(actions in prop::collection::vec(prop::sample::select(Action::ALL.to_vec()), 0..30)) {
            let mut s = Status::Draft;
            let mut decided = false;
            for a in actions {
                if let Ok(n) = apply(s, a) {
                    if matches!(a, Action::ApproveFinal | Action::SubmitApprovalFree) { decided = true; }
                    if matches!(a, Action::ReturnForRevision | Action::EditItems) { decided = false; }
                    s = n;
                }
                if s == Status::Accepted { prop_assert!(decided, "accepted without an approval decision"); }
            }
        }
    }
}
