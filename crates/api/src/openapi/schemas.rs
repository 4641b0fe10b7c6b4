//! Schemas of what the API sends (and of request parts) whose Rust types live in crates without
//! `utoipa`: quotes, orders, approvals, pricing, configuration, the catalog document, workflow.
//! Each mirrors the serialized form of its type exactly; `crates/api/tests/api/contract.rs`
//! checks real responses against them and schemathesis checks the rest.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A decimal number as a string, e.g. `"12.50"`.
pub type DecimalString = String;

/// A quote's status.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
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

// ---------------------------------------------------------------------------------------------
// Pages of lists (every one: `items` and `next_cursor`, absent on the last page).

macro_rules! page {
    ($name:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` (with the same filters) for the next page; absent on the last.
            pub next_cursor: Option<String>,
        }
    };
}

page!(
    CatalogVersionPage,
    crate::routes::catalog::CatalogVersionView,
    "A page of catalog versions."
);
page!(
    QuoteSummaryPage,
    QuoteSummary,
    "A page of the quote worklist."
);
page!(
    ApprovalTaskPage,
    ApprovalTask,
    "A page of open approval tasks."
);
page!(UserTaskPage, UserTask, "A page of open user tasks.");
page!(
    ProcessInstancePage,
    InstanceSummary,
    "A page of process instances."
);
page!(IncidentPage, Incident, "A page of incidents.");
page!(
    DecisionDefinitionPage,
    DecisionDefinition,
    "A page of deployed decision versions."
);
page!(
    ProcessDefinitionPage,
    ProcessDefinition,
    "A page of deployed process versions."
);

// ---------------------------------------------------------------------------------------------
// Catalog

/// One offering found by search.
#[derive(ToSchema)]
pub struct OfferingHit {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// `simple`, `configurable` or `bundle`.
    pub kind: String,
    pub markets: Vec<String>,
    pub channels: Vec<String>,
    pub segments: Vec<String>,
    pub effective_from: Option<NaiveDate>,
    pub effective_to: Option<NaiveDate>,
    pub sellable: bool,
}

/// A page of offerings of one catalog version.
#[derive(ToSchema)]
pub struct OfferingPage {
    pub items: Vec<OfferingHit>,
    pub next_cursor: Option<String>,
    /// The version searched (the one in force on `date`, or the one named).
    pub catalog_version: Uuid,
}

// ---------------------------------------------------------------------------------------------
// Configuration and pricing

/// Who set a value.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum ValueSource {
    Chosen,
    Rule,
    Default,
    Included,
}

#[derive(ToSchema)]
pub struct ConfiguredValue {
    pub value: Value,
    pub source: ValueSource,
    /// The default rule that set it, when `source` is `rule`.
    pub rule: Option<String>,
}

/// A configuration with defaults applied.
#[derive(ToSchema)]
#[schema(no_recursion)]
pub struct Configured {
    pub offering: String,
    pub quantity: u32,
    pub source: ValueSource,
    pub characteristics: BTreeMap<String, ConfiguredValue>,
    #[schema(no_recursion)]
    pub components: Vec<Configured>,
}

/// One choice a rule read.
#[derive(ToSchema)]
pub struct Choice {
    pub path: String,
    pub characteristic: String,
    pub value: Value,
    pub source: Option<ValueSource>,
}

/// A rule (or built-in check) the configuration breaks, with the choices that led there.
#[derive(ToSchema)]
pub struct Violation {
    pub rule: String,
    pub message: String,
    pub path: String,
    pub chain: Vec<Choice>,
}

/// The answer of validation: valid or not, defaults applied, every violation.
#[derive(ToSchema)]
pub struct ValidationResult {
    pub valid: bool,
    pub configuration: Configured,
    pub violations: Vec<Violation>,
    pub rules_evaluated: u64,
    pub catalog_version: Uuid,
}

/// Amounts of one charge type.
#[derive(ToSchema)]
pub struct ChargeAmounts {
    pub list: DecimalString,
    pub discount: DecimalString,
    pub net: DecimalString,
    pub tax: DecimalString,
    pub gross: DecimalString,
}

#[derive(ToSchema)]
pub struct Adjustment {
    /// `surcharge`, `bundle`, `promotion` or `manual`.
    pub kind: String,
    pub source: String,
    pub offering: String,
    /// `one_time` or `recurring`.
    pub charge: String,
    pub amount: DecimalString,
}

/// Where the money of a node comes from: its entries add up to it.
#[derive(ToSchema)]
#[schema(no_recursion)]
pub struct Explanation {
    pub label: String,
    pub one_time: DecimalString,
    pub recurring: DecimalString,
    #[schema(no_recursion)]
    pub children: Option<Vec<Explanation>>,
}

#[derive(ToSchema)]
pub struct PricedLine {
    pub line_id: String,
    pub offering: String,
    pub quantity: u32,
    pub one_time: ChargeAmounts,
    /// Monthly.
    pub recurring: ChargeAmounts,
    pub adjustments: Vec<Adjustment>,
    pub explanation: Explanation,
}

#[derive(ToSchema)]
pub struct Totals {
    pub one_time: ChargeAmounts,
    pub recurring: ChargeAmounts,
}

/// The context a snapshot was priced in.
#[derive(ToSchema)]
pub struct PricedContext {
    pub market: String,
    pub channel: String,
    pub segment: String,
    pub currency: String,
    pub date: NaiveDate,
    #[schema(value_type = Object)]
    pub customer: Value,
}

/// A hashed price snapshot.
#[derive(ToSchema)]
pub struct PriceSnapshot {
    pub catalog_hash: String,
    pub context: PricedContext,
    pub currency: String,
    pub tax_rate: DecimalString,
    /// In request order.
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
    /// SHA-256 (hex) of the canonical snapshot.
    pub hash: String,
}

/// `POST /v1/price`: the snapshot and the catalog version it was priced from.
#[derive(ToSchema)]
pub struct PriceResult {
    pub catalog_hash: String,
    pub context: PricedContext,
    pub currency: String,
    pub tax_rate: DecimalString,
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
    pub hash: String,
    pub catalog_version: Uuid,
}

// ---------------------------------------------------------------------------------------------
// Quotes, approvals, orders

#[derive(ToSchema)]
pub struct QuoteItem {
    pub line_no: i32,
    #[schema(value_type = Object)]
    pub configuration: Value,
    pub manual_discount_percent: Option<DecimalString>,
}

/// A quote with its current lines and price; also the `ETag` (`version`).
#[derive(ToSchema)]
pub struct Quote {
    pub id: Uuid,
    pub customer_account_id: Uuid,
    pub catalog_version_id: Uuid,
    pub market: String,
    pub channel: String,
    pub segment: String,
    pub currency: String,
    pub valid_until: NaiveDate,
    pub special_terms: Option<String>,
    pub owner: String,
    pub status: QuoteStatus,
    pub revision_no: i32,
    pub price_stale: bool,
    pub snapshot_hash: Option<String>,
    pub price_snapshot: Option<PriceSnapshot>,
    pub approval_decision: Option<ApprovalDecision>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    pub approval_instance_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub items: Vec<QuoteItem>,
    /// Only on `GET /v1/quotes/{id}`: every approval decision, oldest first.
    pub approvals: Option<Vec<ApprovalRecord>>,
}

/// Why the policy asks for a level.
#[derive(ToSchema)]
pub struct ApprovalReason {
    pub level: String,
    pub rule: String,
    pub detail: String,
}

/// What the approval policy decided at submission.
#[derive(ToSchema)]
pub struct ApprovalDecision {
    pub policy_version: i32,
    /// Required levels in order; empty when no approval is needed.
    pub levels: Vec<String>,
    pub reasons: Vec<ApprovalReason>,
}

#[derive(ToSchema)]
pub struct ApprovalRecord {
    pub revision_no: i32,
    pub level: String,
    pub decision: String,
    pub decided_by: String,
    pub comment: Option<String>,
    pub task_id: Uuid,
    pub decided_at: DateTime<Utc>,
}

/// One row of the quote worklist.
#[derive(ToSchema)]
pub struct QuoteSummary {
    pub quote_id: Uuid,
    pub customer_account_id: Uuid,
    pub status: QuoteStatus,
    pub owner: String,
    pub currency: String,
    pub snapshot_hash: Option<String>,
    pub price_stale: bool,
    pub valid_until: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct RevisionSummary {
    pub revision_no: i32,
    pub status: QuoteStatus,
    pub snapshot_hash: Option<String>,
    pub revised_at: DateTime<Utc>,
    pub revised_by: String,
}

/// Superseded revisions, newest first.
#[derive(ToSchema)]
pub struct RevisionList {
    pub items: Vec<RevisionSummary>,
}

/// A superseded revision as it stood.
#[derive(ToSchema)]
pub struct Revision {
    pub revision_no: i32,
    pub status: QuoteStatus,
    #[schema(value_type = Object)]
    pub header: Value,
    #[schema(value_type = Vec<Object>)]
    pub items: Value,
    pub price_snapshot: Option<PriceSnapshot>,
    pub snapshot_hash: Option<String>,
    pub approval_decision: Option<ApprovalDecision>,
    pub revised_at: DateTime<Utc>,
    pub revised_by: String,
}

#[derive(ToSchema)]
pub struct OrderItem {
    pub line_no: i32,
    pub offering_code: String,
    #[schema(value_type = Object)]
    pub configuration: Value,
    /// The line as priced in the quote's snapshot.
    pub price: PricedLine,
}

/// An order, converted from a quote's price snapshot; also the `ETag` (`version`).
#[derive(ToSchema)]
pub struct Order {
    pub order_id: Uuid,
    pub quote_id: Uuid,
    pub quote_revision_no: i32,
    pub customer_account_id: Uuid,
    pub currency: String,
    pub snapshot_hash: String,
    pub totals: Totals,
    pub status: String,
    pub fulfillment_instance_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub items: Vec<OrderItem>,
}

/// A fulfillment task's status: `ready` (waits for nothing) or `pending` when the plan is made.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum FulfillmentTaskStatus {
    Pending,
    Ready,
    Running,
    WaitingCallback,
    Completed,
    Failed,
    Skipped,
    Cancelled,
}

/// An external system a fulfillment task acts on.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum FulfillmentSystem {
    Inventory,
    Provisioning,
    Billing,
    Crm,
    Notification,
}

/// One task of an order's fulfillment plan.
#[derive(ToSchema)]
pub struct FulfillmentTask {
    /// Stable within the order: `L1/access-line/reserve-port` (line, component offerings below
    /// the line's own, fulfillment item, task), `order/notify-customer` for an order task.
    pub key: String,
    /// The task's place in the plan's topological order, from 0.
    pub position: i32,
    /// The order line it serves; null for an order task.
    pub line_no: Option<i32>,
    /// The fulfillment item's code and service or resource spec; null for an order task.
    pub item_code: Option<String>,
    pub spec: Option<String>,
    pub task_code: String,
    pub job_type: String,
    /// Null when the technical catalog names no system for the task.
    pub system: Option<FulfillmentSystem>,
    /// Keys of the tasks that must finish first, in plan order.
    pub depends_on: Vec<String>,
    pub status: FulfillmentTaskStatus,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The last failure as the worker reported it.
    #[schema(value_type = Option<Object>)]
    pub last_error: Option<Value>,
}

/// An order's fulfillment plan (empty for an order converted before decomposition existed).
#[derive(ToSchema)]
pub struct FulfillmentPlan {
    pub order_id: Uuid,
    /// Every task, each after the tasks it depends on.
    pub tasks: Vec<FulfillmentTask>,
}

/// An open approval task with its quote.
#[derive(ToSchema)]
pub struct ApprovalTask {
    pub task_id: Uuid,
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub level: Option<String>,
    pub element_id: String,
    pub name: Option<String>,
    pub escalated: bool,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub quote_owner: String,
    pub customer_account_id: Uuid,
    pub currency: String,
    pub created_at: DateTime<Utc>,
}

#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum Verdict {
    Approved,
    Rejected,
    Returned,
}

/// One approver's decision with the quote's new state.
#[derive(ToSchema)]
pub struct Decided {
    pub task_id: Uuid,
    pub level: String,
    pub decision: Verdict,
    pub quote: Quote,
}

/// What a policy rule looks at (`value`: a decimal string; none for `non_standard_terms`).
#[derive(ToSchema)]
pub struct PolicyCondition {
    pub when: PolicyConditionKind,
    pub value: Option<DecimalString>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PolicyConditionKind {
    LineDiscountAbove,
    OverallDiscountAbove,
    DealSizeAbove,
    MarginBelow,
    NonStandardTerms,
}

#[derive(ToSchema)]
pub struct PolicyRule {
    pub code: String,
    pub level: String,
    pub condition: PolicyCondition,
}

#[derive(ToSchema)]
pub struct PolicyTimers {
    /// ISO 8601 duration.
    pub reminder_after: String,
    pub escalate_after: String,
    pub escalation_group: String,
}

/// A version of the tenant's approval policy (version 0 is the built-in default).
#[derive(ToSchema)]
pub struct ApprovalPolicy {
    pub version: i32,
    pub levels: Vec<String>,
    pub rules: Vec<PolicyRule>,
    pub timers: PolicyTimers,
}

// ---------------------------------------------------------------------------------------------
// Workflow

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum InstanceStatus {
    Active,
    Completed,
    Terminated,
}

#[derive(ToSchema)]
pub struct ProcessDefinition {
    pub process_definition_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
    pub name: Option<String>,
    pub checksum: String,
    pub resource_name: String,
    pub job_types: Vec<String>,
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    pub variable_schema_version: i32,
    pub deployed_at: DateTime<Utc>,
    pub deployed_by: String,
    /// The deployment this version was deployed in, with the files deployed together.
    pub deployment_id: Uuid,
}

#[derive(ToSchema)]
pub struct Deployed {
    pub definition: ProcessDefinition,
    /// False when this deployment was made before: no new version.
    pub created: bool,
}

/// A BPMN file: one entry in `deployments` per executable process (`decisions` empty); a DMN file:
/// one entry in `decisions` per decision (`deployments` empty).
#[derive(ToSchema)]
pub struct Deployments {
    /// The deployment of this file (for a file deployed before, that deployment).
    pub deployment_id: Uuid,
    pub deployments: Vec<Deployed>,
    pub decisions: Vec<DeployedDecision>,
}

/// Several files deployed as one deployment: every process and decision of every file.
#[derive(ToSchema)]
pub struct Deployment {
    /// The key every version of this deployment shares (for files deployed together before,
    /// that deployment's).
    pub deployment_id: Uuid,
    /// False when these files were deployed together before: no new version of anything.
    pub created: bool,
    pub processes: Vec<Deployed>,
    pub decisions: Vec<DeployedDecision>,
}

/// One deployed version of one DMN decision.
#[derive(ToSchema)]
pub struct DecisionDefinition {
    /// The key of this version.
    pub decision_definition_id: Uuid,
    /// The decision's `id` in the DMN file.
    pub decision_id: String,
    pub version: i32,
    pub name: String,
    /// The `<definitions>` (decision requirements graph) the decision belongs to.
    pub decision_requirements_id: String,
    pub decision_requirements_name: String,
    /// SHA-256 of the file (hex).
    pub checksum: String,
    pub resource_name: String,
    pub deployed_at: DateTime<Utc>,
    pub deployed_by: String,
    /// The decision's `zeebe:versionTag` in the file, if any: what business rule tasks with
    /// binding type `versionTag` ask for.
    pub version_tag: Option<String>,
    /// The deployment this version was deployed in, with the files deployed together.
    pub deployment_id: Uuid,
}

#[derive(ToSchema)]
pub struct DeployedDecision {
    pub definition: DecisionDefinition,
    /// False when this exact file was deployed before: no new version.
    pub created: bool,
}

/// One decision evaluated on the way to the result.
#[derive(ToSchema)]
pub struct EvaluatedDecision {
    pub decision_id: String,
    pub decision_name: String,
    /// The deployed version's key and number (deployed from the same file).
    pub decision_definition_id: Option<Uuid>,
    pub version: Option<i32>,
    /// Any JSON value.
    pub output: Value,
}

/// A decision's evaluation (Camunda 8's evaluate-decision response, in snake case).
#[derive(ToSchema)]
pub struct DecisionEvaluation {
    pub decision_definition_id: Uuid,
    pub decision_id: String,
    pub decision_name: String,
    pub version: i32,
    pub decision_requirements_id: String,
    /// The decision's result, any JSON value (`null` when no rule of a table matched).
    pub output: Value,
    /// Required decisions first, the evaluated decision last.
    pub evaluated_decisions: Vec<EvaluatedDecision>,
}

#[derive(ToSchema)]
pub struct WorkerGroup {
    pub group: String,
    pub job_types: Vec<String>,
    pub worker_version: String,
}

#[derive(ToSchema)]
pub struct RoutingReplaced {
    pub bpmn_process_id: String,
    pub rules: u64,
}

/// A job a worker holds until `deadline`.
#[derive(ToSchema)]
pub struct ActivatedJob {
    pub job_id: Uuid,
    pub job_type: String,
    pub tenant: String,
    pub process_instance_id: Uuid,
    pub element_id: String,
    pub retries: i32,
    pub attempt: i32,
    /// The task's custom headers: name → value.
    pub custom_headers: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub variables: Value,
    pub deadline: DateTime<Utc>,
    /// The same for every delivery of the job: for the external calls it makes.
    pub idempotency_key: String,
}

#[derive(ToSchema)]
pub struct ActivatedJobs {
    pub jobs: Vec<ActivatedJob>,
}

#[derive(ToSchema)]
pub struct JobOutcome {
    pub job_id: Uuid,
    pub instance_status: InstanceStatus,
}

#[derive(ToSchema)]
pub struct JobFailed {
    pub job_id: Uuid,
    pub retries: i32,
}

#[derive(ToSchema)]
pub struct StartedInstance {
    pub process_instance_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
}

#[derive(ToSchema)]
pub struct InstanceSummary {
    pub process_instance_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
    pub status: InstanceStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
pub struct InstanceJob {
    pub job_id: Uuid,
    pub element_id: String,
    pub job_type: String,
    pub status: String,
    pub retries: i32,
    pub attempt: i32,
    pub error_message: Option<String>,
}

#[derive(ToSchema)]
pub struct InstanceIncident {
    pub incident_id: Uuid,
    pub element_id: String,
    pub job_id: Option<Uuid>,
    pub message: String,
    pub status: String,
    pub created_at: String,
}

#[derive(ToSchema)]
pub struct HistoryEntry {
    pub at: String,
    #[schema(value_type = Object)]
    pub command: Value,
    pub effects: Value,
}

/// An instance's state, variables, active elements, jobs, incidents and recent history.
#[derive(ToSchema)]
pub struct InstanceDetail {
    pub process_instance_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
    pub status: InstanceStatus,
    pub variables: Option<Value>,
    #[schema(value_type = Vec<Object>)]
    pub active_elements: Value,
    pub jobs: Vec<InstanceJob>,
    pub incidents: Vec<InstanceIncident>,
    /// The last 200 steps, oldest first.
    pub history: Vec<HistoryEntry>,
}

#[derive(ToSchema)]
pub struct InstanceCancelled {
    pub process_instance_id: Uuid,
    pub status: InstanceStatus,
}

#[derive(ToSchema)]
pub struct Incident {
    pub incident_id: Uuid,
    pub process_instance_id: Uuid,
    pub element_id: String,
    pub job_id: Option<Uuid>,
    pub message: String,
    /// `open` or `resolved`.
    pub status: String,
    pub created_at: String,
    pub resolved_at: Option<String>,
}

#[derive(ToSchema)]
pub struct IncidentResolved {
    pub incident_id: Uuid,
    /// `resolved`.
    pub status: String,
    pub retries: i32,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PublicationOutcome {
    Correlated,
    Buffered,
    StartedInstance,
    Dropped,
}

/// What a signal broadcast did, the signals it led to included.
#[derive(ToSchema)]
pub struct SignalBroadcast {
    /// Subscriptions triggered: signal catch events, boundary events, event subprocess starts.
    pub triggered: usize,
    /// Instances started by a signal start event.
    pub started_instances: Vec<Uuid>,
    /// Signals broadcast, this one included.
    pub signals: usize,
}

/// What happened to a published message.
#[derive(ToSchema)]
pub struct Publication {
    pub outcome: PublicationOutcome,
    /// For `correlated` and `started_instance`.
    pub process_instance_id: Option<Uuid>,
    /// For `buffered`.
    pub message_key: Option<Uuid>,
}

#[derive(ToSchema)]
pub struct UserTask {
    pub user_task_id: Uuid,
    pub process_instance_id: Uuid,
    pub element_id: String,
    pub name: Option<String>,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub due_date: Option<String>,
    pub status: String,
    #[schema(value_type = Object)]
    pub variables: Value,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<String>,
}

#[derive(ToSchema)]
pub struct UserTaskCompleted {
    pub user_task_id: Uuid,
    pub instance_status: InstanceStatus,
}
