//! Workflow: process definitions (deploy, list, version routing), worker groups, process
//! instances (start, list, inspect, cancel), incidents, messages, jobs, user tasks and callbacks
//! from external systems.
//!
//! Each command or query is an [`crate::Operation`] that checks who may run it beyond its roles
//! (a platform credential for what every tenant shares, a worker's tenant grants), validates its
//! input, and calls `cpq_workflow` and the audit trail. Job activation waits for jobs across
//! transactions, so it is a plain function ([`jobs::activate_jobs`]): the API's long poll and
//! `cpq-worker`'s loops both claim through it. Nothing here knows HTTP.

pub mod callbacks;
pub mod decisions;
pub mod definitions;
pub mod incidents;
pub mod instances;
pub mod jobs;
pub mod messages;
pub mod signals;
pub mod user_tasks;
pub mod worker_groups;

use cpq_core::Role;

/// Who deploys and routes process definitions and registers worker groups.
const OPERATORS: &[Role] = &[Role::Operator];
/// Who follows and repairs process instances.
const OPERATIONS: &[Role] = &[Role::Operator, Role::OrderOperations];
