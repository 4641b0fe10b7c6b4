//! Messages: the `message` buffer, the `message_subscription` table of instances waiting for
//! one, and `message_publication` (message ids kept for deduplication). Publishing correlates,
//! starts an instance by a message start event, or buffers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::{create_instance, process_instance, step, Scope};
use crate::bpmn::Process;
use crate::runtime::Command;

/// What happened to a published message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Publication {
    /// It met an open subscription of this instance at once.
    Correlated { process_instance_id: Uuid },
    /// No subscription was open; it waits for one until it expires.
    Buffered { message_key: Uuid },
    /// No subscription was open, and the latest version of a process starts with this message:
    /// a new instance.
    StartedInstance { process_instance_id: Uuid },
    /// No subscription was open and its time to live is zero: dropped, as in Zeebe.
    Dropped,
}

/// The longest time to live a message may have: ten years. Its id is kept as long (see
/// [`publish_message`]), and its expiry must be a representable instant.
pub const MAX_MESSAGE_TTL: Duration = Duration::from_secs(10 * 365 * 86_400);

#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub tenant: &'a TenantId,
    pub name: &'a str,
    pub correlation_key: &'a str,
    /// At most [`MAX_MESSAGE_TTL`].
    pub time_to_live: Duration,
    /// Deduplicates, as in Zeebe: a message with the same name and id is refused (409) while an
    /// earlier one's time to live lasts, whether that one was buffered, correlated at once or
    /// started an instance.
    pub message_id: Option<&'a str>,
    pub variables: Map<String, Value>,
    pub at: DateTime<Utc>,
}

/// `at` plus `ttl`, refused (naming the API's field) when it is over [`MAX_MESSAGE_TTL`].
fn message_expiry(at: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>, Error> {
    let refused = || {
        Error::validation(vec![cpq_core::FieldError::new(
            "time_to_live_ms",
            "out-of-range",
            format!(
                "time_to_live_ms is 0 to {} (ten years)",
                MAX_MESSAGE_TTL.as_millis()
            ),
        )])
    };
    if ttl > MAX_MESSAGE_TTL {
        return Err(refused());
    }
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .ok_or_else(refused)
}

/// Records `m`'s id for its time to live; a conflict when a live record holds it.
async fn claim_message_id(
    tx: &mut Tx,
    m: &Message<'_>,
    id: &str,
    key: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), Error> {
    let claimed: Option<Uuid> = if m.time_to_live.is_zero() {
        // Kept for no time at all: nothing to record, but a live earlier one still refuses it.
        None
    } else {
        timed(
            "message_publication_claim",
            sqlx::query_scalar(
                "INSERT INTO message_publication (tenant_id, message_name, message_id, message_key, published_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, message_name, message_id) DO UPDATE \
                 SET message_key = EXCLUDED.message_key, published_at = EXCLUDED.published_at, expires_at = EXCLUDED.expires_at \
                 WHERE message_publication.expires_at <= EXCLUDED.published_at RETURNING message_key",
            )
            .bind(m.tenant.as_str())
            .bind(m.name)
            .bind(id)
            .bind(key)
            .bind(m.at)
            .bind(expires_at)
            .fetch_optional(&mut **tx),
        )
        .await
        .map_err(db_error)?
    };
    if claimed.is_some() {
        return Ok(());
    }
    let live: Option<DateTime<Utc>> = timed(
        "message_publication_live",
        sqlx::query_scalar(
            "SELECT expires_at FROM message_publication WHERE tenant_id = $1 AND message_name = $2 AND message_id = $3 \
             AND expires_at > $4",
        )
        .bind(m.tenant.as_str())
        .bind(m.name)
        .bind(id)
        .bind(m.at)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    match live {
        Some(until) => Err(Error::conflict(format!(
            "a message \"{}\" with message_id \"{id}\" was already published; the id is taken until {} (that message's time to live)",
            m.name,
            until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ))),
        None => Ok(()),
    }
}

/// Publishes a message in the caller's transaction: correlated to the oldest open subscription
/// with its name and correlation key, else it starts an instance of a process with that message
/// start event, else it is buffered for its time to live (dropped when that is zero).
pub async fn publish_message(tx: &mut Tx, m: &Message<'_>) -> Result<Publication, Error> {
    let expires_at = message_expiry(m.at, m.time_to_live)?;
    correlation_lock(tx, m.tenant.as_str(), &[(m.name, m.correlation_key)]).await?;
    let key = Uuid::now_v7();
    if let Some(id) = m.message_id {
        claim_message_id(tx, m, id, key, expires_at).await?;
    }
    let subscription: Option<(Uuid, Uuid, i64, String)> = timed(
        "message_subscription_match",
        sqlx::query_as(
            "SELECT message_subscription_id, process_instance_id, element_key, catch_id FROM message_subscription \
             WHERE tenant_id = $1 AND message_name = $2 AND correlation_key = $3 ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(m.tenant.as_str())
        .bind(m.name)
        .bind(m.correlation_key)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    if let Some((subscription, instance, element_key, catch_id)) = subscription {
        timed(
            "message_subscription_delete",
            sqlx::query("DELETE FROM message_subscription WHERE message_subscription_id = $1")
                .bind(subscription)
                .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        step(
            tx,
            instance,
            Command::CorrelateMessage {
                element: element_key as u64,
                catch_id,
                variables: m.variables.clone(),
            },
            None,
            m.at,
        )
        .await?;
        return Ok(Publication::Correlated {
            process_instance_id: instance,
        });
    }
    if let Some(started) = start_by_message(tx, m).await? {
        return Ok(Publication::StartedInstance {
            process_instance_id: started,
        });
    }
    if m.time_to_live.is_zero() {
        return Ok(Publication::Dropped);
    }
    timed(
        "message_insert",
        sqlx::query(
            "INSERT INTO message (message_key, tenant_id, message_name, correlation_key, message_id, variables, published_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key)
        .bind(m.tenant.as_str())
        .bind(m.name)
        .bind(m.correlation_key)
        .bind(m.message_id)
        .bind(Value::Object(m.variables.clone()))
        .bind(m.at)
        .bind(expires_at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(Publication::Buffered { message_key: key })
}

/// Deletes up to `limit` expired messages and up to `limit` expired message-id records, across
/// tenants (what the worker's timer scan runs). Returns how many rows went.
pub async fn purge_expired_messages(pool: &PgPool, limit: i32) -> Result<i32, Error> {
    timed(
        "message_purge_expired",
        sqlx::query_scalar("SELECT message_purge_expired($1)")
            .bind(limit)
            .fetch_one(pool),
    )
    .await
    .map_err(db_error)
}

/// Starts an instance of the latest version of the first process (by id) whose message start
/// event has the message's name; `None` when no process starts with it.
async fn start_by_message(tx: &mut Tx, m: &Message<'_>) -> Result<Option<Uuid>, Error> {
    let candidates: Vec<(Uuid, String, i32, Value)> = timed(
        "process_definition_latest_all",
        sqlx::query_as(
            "SELECT * FROM (SELECT DISTINCT ON (bpmn_process_id) process_definition_id, bpmn_process_id, version, model \
             FROM process_definition ORDER BY bpmn_process_id, version DESC) latest \
             WHERE model @> jsonb_build_object('elements', jsonb_build_array(jsonb_build_object('kind', \
                   jsonb_build_object('start_event', jsonb_build_object('trigger', jsonb_build_object('message', \
                   jsonb_build_object('name', $1::text))))))) \
             ORDER BY bpmn_process_id",
        )
        .bind(m.name)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    for (definition_id, bpmn_process_id, version, model) in candidates {
        let process: Process = serde_json::from_value(model)
            .map_err(|e| Error::internal(format!("stored process model: {e}")))?;
        let start = process.elements.iter().find(|e| {
            e.parent.is_none() && matches!(&e.kind, crate::bpmn::ElementKind::StartEvent { trigger: crate::bpmn::Trigger::Message { name, .. } } if name == m.name)
        });
        let Some(start) = start else { continue };
        if started_by_key_active(tx, m.tenant.as_str(), &bpmn_process_id, m.correlation_key).await?
        {
            continue;
        }
        let command = Command::StartByMessage {
            start_event: start.id.clone(),
            variables: m.variables.clone(),
        };
        let id = create_instance(
            tx,
            m.tenant.as_str(),
            definition_id,
            &bpmn_process_id,
            version,
            &process,
            command,
            m.at,
        )
        .await?;
        process_instance::set_message_correlation_key(tx, id, m.correlation_key).await?;
        return Ok(Some(id));
    }
    Ok(None)
}

/// Whether an instance of `bpmn_process_id` started by a message with this correlation key is
/// still active (Zeebe starts at most one at a time per key).
async fn started_by_key_active(
    tx: &mut Tx,
    tenant: &str,
    bpmn_process_id: &str,
    correlation_key: &str,
) -> Result<bool, Error> {
    timed(
        "process_instance_message_start_active",
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM process_instance WHERE tenant_id = $1 AND bpmn_process_id = $2 \
             AND message_correlation_key = $3 AND status = 'active')",
        )
        .bind(tenant)
        .bind(bpmn_process_id)
        .bind(correlation_key)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// An instance a message started (with `correlation_key`) has ended: the oldest message still
/// buffered for one of its process's message start events with that key starts the next one.
pub(super) async fn start_next_by_message(
    tx: &mut Tx,
    tenant: &str,
    process: &Process,
    correlation_key: &str,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>, Error> {
    let names: Vec<&str> = process
        .elements
        .iter()
        .filter_map(|e| match &e.kind {
            crate::bpmn::ElementKind::StartEvent {
                trigger: crate::bpmn::Trigger::Message { name, .. },
            } if e.parent.is_none() => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let buffered: Option<(Uuid, String, Value)> = timed(
        "message_take_for_start",
        sqlx::query_as(
            "UPDATE message SET correlated_at = $4 WHERE message_key = (SELECT message_key FROM message \
             WHERE tenant_id = $1 AND message_name = ANY($2) AND correlation_key = $3 AND correlated_at IS NULL \
             AND expires_at > $4 ORDER BY published_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING message_key, message_name, variables",
        )
        .bind(tenant)
        .bind(&names)
        .bind(correlation_key)
        .bind(at)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let Some((_, name, variables)) = buffered else {
        return Ok(None);
    };
    let tenant = TenantId::parse(tenant).map_err(|e| Error::internal(e.detail))?;
    let m = Message {
        tenant: &tenant,
        name: &name,
        correlation_key,
        time_to_live: Duration::ZERO,
        message_id: None,
        variables: variables.as_object().cloned().unwrap_or_default(),
        at,
    };
    Box::pin(start_by_message(tx, &m)).await
}

/// Serialises, per (tenant, message name, correlation key), a publication with the opening of a
/// subscription for it: each takes this transaction-scoped lock first, so that the one that
/// comes second sees what the first wrote (a message published while a subscription opens
/// would otherwise be buffered unseen by the subscription, and wait forever). Locks are taken in
/// key order, so that two transactions locking several never deadlock.
async fn correlation_lock(tx: &mut Tx, tenant: &str, pairs: &[(&str, &str)]) -> Result<(), Error> {
    let keys: Vec<String> = pairs
        .iter()
        .map(|(name, key)| format!("{tenant}\u{1f}{name}\u{1f}{key}"))
        .collect();
    timed(
        "message_correlation_lock",
        sqlx::query(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 7401))) FROM \
             (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS s",
        )
        .bind(&keys)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A subscription a [`crate::runtime::Effect::OpenSubscription`] asks for.
pub(super) struct NewSubscription<'a> {
    pub element: u64,
    pub catch_id: &'a str,
    pub message_name: &'a str,
    pub correlation_key: &'a str,
}

/// Opens the subscriptions one command's effects ask for, each unless a buffered message already
/// matches it: then that message is taken and its correlation is a command that follows at once.
/// At most four statements whatever their number: the correlation lock ([`correlation_lock`]),
/// the buffered messages matching any of them, marking those taken, and inserting the rest.
pub(super) async fn subscription_open_many(
    tx: &mut Tx,
    scope: &Scope<'_>,
    subscriptions: &[NewSubscription<'_>],
) -> Result<Vec<Command>, Error> {
    if subscriptions.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<(&str, &str)> = subscriptions
        .iter()
        .map(|s| (s.message_name, s.correlation_key))
        .collect();
    correlation_lock(tx, scope.tenant, &pairs).await?;
    let names: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let keys: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    let buffered: Vec<(Uuid, String, String, Value)> = timed(
        "message_take_buffered",
        sqlx::query_as(
            "SELECT message_key, message_name, correlation_key, variables FROM message WHERE tenant_id = $1 \
             AND (message_name, correlation_key) IN (SELECT * FROM unnest($2::text[], $3::text[])) \
             AND correlated_at IS NULL AND expires_at > $4 ORDER BY published_at FOR UPDATE SKIP LOCKED",
        )
        .bind(scope.tenant)
        .bind(&names)
        .bind(&keys)
        .bind(scope.at)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    // Each subscription takes the oldest buffered message of its name and key not taken yet.
    let mut available = buffered;
    let mut taken = Vec::new();
    let mut follow_ups = Vec::new();
    let mut open = Vec::new();
    for s in subscriptions {
        let found = available
            .iter()
            .position(|(_, n, k, _)| n == s.message_name && k == s.correlation_key);
        match found {
            Some(i) => {
                let (key, _, _, variables) = available.remove(i);
                taken.push(key);
                follow_ups.push(Command::CorrelateMessage {
                    element: s.element,
                    catch_id: s.catch_id.to_owned(),
                    variables: variables.as_object().cloned().unwrap_or_default(),
                });
            }
            None => open.push(s),
        }
    }
    if !taken.is_empty() {
        timed(
            "message_mark_correlated",
            sqlx::query("UPDATE message SET correlated_at = $2 WHERE message_key = ANY($1)")
                .bind(&taken)
                .bind(scope.at)
                .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
    }
    if !open.is_empty() {
        let ids: Vec<Uuid> = open.iter().map(|_| Uuid::now_v7()).collect();
        let elements: Vec<i64> = open.iter().map(|s| s.element as i64).collect();
        let catches: Vec<&str> = open.iter().map(|s| s.catch_id).collect();
        let names: Vec<&str> = open.iter().map(|s| s.message_name).collect();
        let keys: Vec<&str> = open.iter().map(|s| s.correlation_key).collect();
        timed(
            "message_subscription_insert",
            sqlx::query(
                "INSERT INTO message_subscription (message_subscription_id, tenant_id, process_instance_id, element_key, catch_id, \
                 message_name, correlation_key, created_at) \
                 SELECT s.id, $1, $2, s.element_key, s.catch_id, s.message_name, s.correlation_key, $3 \
                 FROM unnest($4::uuid[], $5::bigint[], $6::text[], $7::text[], $8::text[]) \
                 AS s (id, element_key, catch_id, message_name, correlation_key)",
            )
            .bind(scope.tenant)
            .bind(scope.instance)
            .bind(scope.at)
            .bind(&ids)
            .bind(&elements)
            .bind(&catches)
            .bind(&names)
            .bind(&keys)
            .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
    }
    Ok(follow_ups)
}

/// Closes the subscriptions of the elements that ended otherwise, in one statement.
pub(super) async fn subscription_delete_for_elements(
    tx: &mut Tx,
    instance: Uuid,
    elements: &[i64],
) -> Result<(), Error> {
    timed(
        "message_subscription_delete_for_elements",
        sqlx::query(
            "DELETE FROM message_subscription WHERE process_instance_id = $1 AND element_key = ANY($2)",
        )
        .bind(instance)
        .bind(elements)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
