//! Schemas of what the API sends whose Rust types live in crates without `utoipa` (quotes,
//! orders, tasks, pricing, workflow). Each mirrors the serialized form of its type exactly; the
//! contract test checks real responses against them.

use utoipa::ToSchema;

/// A quote's status.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum QuoteStatus {
    Draft,
    Priced,
    Submitted,
    ApprovalPending,
    Approved,
    Rejected,
    Accepted,
    Converted,
    Expired,
    Cancelled,
    Revised,
}
