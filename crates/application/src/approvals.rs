//! Approval tasks: the worklist, decisions, the policy.
