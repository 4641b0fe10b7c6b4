//! Deployed process definitions as instances need them: the routing that picks a version on
//! start and the parsed model of a version, cached because a deployed definition never changes.
//! Deploying them is [`crate::deployment`]'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cpq_core::Error;
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use uuid::Uuid;

use crate::bpmn::Process;
use crate::routing::VersionRule;

/// The deployed versions of a process (with their definition ids, in the same order) and its
/// routing rules, in one statement: routing changes at any time, so it is read on every start.
pub(super) async fn start_routing(
    tx: &mut Tx,
    bpmn_process_id: &str,
) -> Result<(Vec<i32>, Vec<Uuid>, Vec<VersionRule>), Error> {
    let (versions, ids, rules): (Vec<i32>, Vec<Uuid>, Value) = timed(
        "process_routing_fetch",
        sqlx::query_as(
            "SELECT coalesce(array_agg(d.version ORDER BY d.version), '{}'), \
             coalesce(array_agg(d.process_definition_id ORDER BY d.version), '{}'), \
             (SELECT coalesce(jsonb_agg(jsonb_build_object('tenant', r.target_tenant, 'product_line', r.product_line, \
             'release_flag', r.release_flag, 'version', r.version, 'priority', r.priority)), '[]') \
             FROM process_version_rule r WHERE r.bpmn_process_id = $1) \
             FROM process_definition d WHERE d.bpmn_process_id = $1",
        )
        .bind(bpmn_process_id)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let rules = serde_json::from_value(rules)
        .map_err(|e| Error::internal(format!("stored routing rules: {e}")))?;
    Ok((versions, ids, rules))
}

/// Parsed process models by definition id. A deployed definition never changes (a changed
/// process is a new version with a new id), so its model is read from PostgreSQL once per
/// process; ids are UUIDs, so databases never share an entry.
static MODELS: OnceLock<Mutex<HashMap<Uuid, Arc<Process>>>> = OnceLock::new();

/// The model of a deployed definition, from [`MODELS`] or else PostgreSQL.
pub(super) async fn definition_model(
    tx: &mut Tx,
    definition_id: Uuid,
) -> Result<Arc<Process>, Error> {
    let models = MODELS.get_or_init(Mutex::default);
    if let Some(p) = models
        .lock()
        .ok()
        .and_then(|m| m.get(&definition_id).cloned())
    {
        return Ok(p);
    }
    let model: Value = timed(
        "process_definition_fetch_model",
        sqlx::query_scalar("SELECT model FROM process_definition WHERE process_definition_id = $1")
            .bind(definition_id)
            .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let process: Arc<Process> = Arc::new(
        serde_json::from_value(model)
            .map_err(|e| Error::internal(format!("stored process model: {e}")))?,
    );
    if let Ok(mut m) = models.lock() {
        m.insert(definition_id, process.clone());
    }
    Ok(process)
}

/// The version a call activity of `caller` starts: the latest of `bpmn_process_id`, or with
/// binding `deployment` the one deployed from the same file as the caller's version.
pub(super) async fn called_definition(
    tx: &mut Tx,
    caller: Uuid,
    bpmn_process_id: &str,
    binding: &str,
    version_tag: Option<&str>,
) -> Result<Option<(Uuid, i32)>, Error> {
    timed(
        "process_definition_fetch_called",
        sqlx::query_as(
            "SELECT d.process_definition_id, d.version FROM process_definition d WHERE d.bpmn_process_id = $1 \
             AND ($3 <> 'deployment' OR d.deployment_id = (SELECT c.deployment_id FROM process_instance pi \
             JOIN process_definition c USING (process_definition_id) WHERE pi.process_instance_id = $2)) \
             AND ($3 <> 'versionTag' OR d.model ->> 'version_tag' = $4) \
             ORDER BY d.version DESC LIMIT 1",
        )
        .bind(bpmn_process_id)
        .bind(caller)
        .bind(binding)
        .bind(version_tag)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}
