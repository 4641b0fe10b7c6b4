//! The `signal_subscription` table, and broadcasting a signal in a tenant: every subscription of
//! its name (catch events, boundary events, event subprocess starts) is triggered, and every
//! process whose latest version has a signal start event of the name starts, as in Zeebe.
//!
//! A signal thrown by an instance is broadcast after that instance's command is written (the
//! instance may catch its own signal); signals thrown by what a broadcast triggers are broadcast
//! in turn, at most [`MAX_CASCADE`] in one call, so that two processes signalling each other
//! forever end in a conflict rather than a transaction that never ends.

use chrono::{DateTime, Utc};
use cpq_core::Error;
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{create_instance_in, step_collect, Definition, Scope};
use crate::bpmn::{ElementKind, Process, Trigger};
use crate::runtime::Command;

/// The most signals one broadcast may lead to, itself included.
pub const MAX_CASCADE: usize = 100;

/// A signal thrown in a tenant, to broadcast.
#[derive(Debug, Clone)]
pub(super) struct Signal {
    pub tenant: String,
    pub name: String,
    pub variables: Map<String, Value>,
}

/// What a broadcast did, the signals it led to included.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Broadcast {
    /// Subscriptions triggered (catch events, boundary events, event subprocess starts).
    pub triggered: usize,
    /// Instances started by a signal start event.
    pub started_instances: Vec<Uuid>,
    /// Signals broadcast, the first included.
    pub signals: usize,
}

/// A subscription a [`crate::runtime::Effect::OpenSignalSubscription`] asks for.
pub(super) async fn subscription_insert(
    tx: &mut Tx,
    scope: &Scope<'_>,
    element: u64,
    catch_id: &str,
    signal_name: &str,
) -> Result<(), Error> {
    timed(
        "signal_subscription_insert",
        sqlx::query(
            "INSERT INTO signal_subscription (signal_subscription_id, tenant_id, process_instance_id, \
             element_key, catch_id, signal_name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(scope.tenant)
        .bind(scope.instance)
        .bind(element as i64)
        .bind(catch_id)
        .bind(signal_name)
        .bind(scope.at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn subscription_delete_for_elements(
    tx: &mut Tx,
    instance: Uuid,
    elements: &[i64],
) -> Result<(), Error> {
    timed(
        "signal_subscription_delete_for_elements",
        sqlx::query(
            "DELETE FROM signal_subscription WHERE process_instance_id = $1 AND element_key = ANY($2)",
        )
        .bind(instance)
        .bind(elements)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Broadcasts signal `name` in `tenant` (`POST /v1/signals`): what it and the signals it led to
/// did.
pub async fn broadcast_signal(
    tx: &mut Tx,
    tenant: &str,
    name: &str,
    variables: Map<String, Value>,
    at: DateTime<Utc>,
) -> Result<Broadcast, Error> {
    let signal = Signal {
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        variables,
    };
    broadcast(tx, vec![signal], at).await
}

/// Broadcasts `signals` and what they lead to, in order. A conflict when the cascade goes past
/// [`MAX_CASCADE`] signals (nothing of it is kept: the caller's transaction fails).
pub(super) async fn broadcast(
    tx: &mut Tx,
    signals: Vec<Signal>,
    at: DateTime<Utc>,
) -> Result<Broadcast, Error> {
    let mut queue = std::collections::VecDeque::from(signals);
    let mut outcome = Broadcast::default();
    while let Some(signal) = queue.pop_front() {
        outcome.signals += 1;
        if outcome.signals > MAX_CASCADE {
            return Err(Error::conflict(format!(
                "signal '{}' is one of more than {MAX_CASCADE} signals one broadcast led to: \
                 processes that signal each other in a loop?",
                signal.name
            )));
        }
        // The subscriptions open now; those a trigger opens (a non-interrupting start waits
        // again) wait for the next broadcast.
        let waiting: Vec<(Uuid,)> = timed(
            "signal_subscription_match",
            sqlx::query_as(
                "SELECT signal_subscription_id FROM signal_subscription \
                 WHERE tenant_id = $1 AND signal_name = $2 ORDER BY created_at, signal_subscription_id",
            )
            .bind(&signal.tenant)
            .bind(&signal.name)
            .fetch_all(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        for (subscription,) in waiting {
            // Gone when an earlier trigger of this broadcast ended its element.
            let taken: Option<(Uuid, i64, String)> = timed(
                "signal_subscription_take",
                sqlx::query_as(
                    "DELETE FROM signal_subscription WHERE signal_subscription_id = $1 \
                     RETURNING process_instance_id, element_key, catch_id",
                )
                .bind(subscription)
                .fetch_optional(&mut **tx),
            )
            .await
            .map_err(db_error)?;
            let Some((instance, element, catch_id)) = taken else {
                continue;
            };
            let command = Command::TriggerSignal {
                element: element as u64,
                catch_id,
                variables: signal.variables.clone(),
            };
            let (_, more) = Box::pin(step_collect(tx, None, instance, command, None, at)).await?;
            outcome.triggered += 1;
            queue.extend(more);
        }
        for (definition_id, bpmn_process_id, version, process, start) in
            signal_starts(tx, &signal.name).await?
        {
            let definition = Definition {
                id: definition_id,
                bpmn_process_id: &bpmn_process_id,
                version,
                process: &process,
            };
            let command = Command::StartBySignal {
                start_event: start,
                variables: signal.variables.clone(),
            };
            let (id, notify) = Box::pin(create_instance_in(
                tx,
                &signal.tenant,
                &definition,
                command,
                None,
                at,
            ))
            .await?;
            outcome.started_instances.push(id);
            queue.extend(notify.signals);
        }
    }
    Ok(outcome)
}

/// The latest version of every process with a signal start event named `name`, with that
/// event's id.
async fn signal_starts(
    tx: &mut Tx,
    name: &str,
) -> Result<Vec<(Uuid, String, i32, Process, String)>, Error> {
    let candidates: Vec<(Uuid, String, i32, Value)> = timed(
        "process_definition_latest_signal_start",
        sqlx::query_as(
            "SELECT * FROM (SELECT DISTINCT ON (bpmn_process_id) process_definition_id, bpmn_process_id, version, model \
             FROM process_definition ORDER BY bpmn_process_id, version DESC) latest \
             WHERE model @> jsonb_build_object('elements', jsonb_build_array(jsonb_build_object('kind', \
                   jsonb_build_object('start_event', jsonb_build_object('trigger', jsonb_build_object('signal', \
                   jsonb_build_object('name', $1::text))))))) \
             ORDER BY bpmn_process_id",
        )
        .bind(name)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let mut out = Vec::new();
    for (definition_id, bpmn_process_id, version, model) in candidates {
        let process: Process = serde_json::from_value(model)
            .map_err(|e| Error::internal(format!("stored process model: {e}")))?;
        let start = process.elements.iter().find(|e| {
            e.parent.is_none()
                && matches!(&e.kind, ElementKind::StartEvent { trigger: Trigger::Signal { name: n } } if n == name)
        });
        if let Some(start) = start {
            let id = start.id.clone();
            out.push((definition_id, bpmn_process_id, version, process, id));
        }
    }
    Ok(out)
}
