//! Rebuilding a projection from its topics (`cpq-admin replay`). The topics are read from the
//! beginning by an isolated reader (its own group id, nothing committed, the live consumer group
//! untouched) at a bounded rate, and every event is applied with the projection's own code to the
//! projection's rebuild table. The rebuild is then compared with the live table, by row count and a
//! content hash and row by row, and merged into the live table only when asked:
//!
//! - a dry run does all of this in one transaction that is rolled back: nothing changes;
//! - a merge replaces a live row with its rebuilt row unless the live row has seen a later event
//!   (a higher outbox position: the live consumer kept going while the replay read); live rows
//!   the replay did not produce are reported and kept.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cpq_config::KafkaConfig;
use cpq_db::timed;
use rdkafka::message::Message;
use serde::Serialize;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::envelope::Envelope;
use crate::kafka::{ReadError, ReadToEnd};
use crate::projections::{Category, HandlerError, Projection, Target};

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// At most this many events per second are read and applied.
    pub rate_per_second: u32,
    /// Roll everything back at the end.
    pub dry_run: bool,
    /// Merge the rebuild into the live table (ignored in a dry run).
    pub merge: bool,
    /// Give up when the topics are not read to their end by then.
    pub deadline: Duration,
}

/// A table's row count and the MD5 of its rows in key order (the time a row was written by the
/// export, `exported_at`, is left out: it differs by nature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDigest {
    pub rows: i64,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub consumer: &'static str,
    pub dry_run: bool,
    /// Records read per topic.
    pub read: BTreeMap<String, u64>,
    pub applied: u64,
    /// Events the replay could not apply, with why (the same reasons the consumer would give).
    pub failed: Vec<(Option<Uuid>, HandlerError)>,
    pub live: TableDigest,
    pub rebuild: TableDigest,
    /// Keys whose rows differ between live and rebuild (the first 50).
    pub differing: Vec<String>,
    pub differing_count: i64,
    pub only_live: i64,
    pub only_rebuild: i64,
    /// Rows the merge wrote into the live table (`None`: no merge).
    pub merged: Option<u64>,
    pub seconds: f64,
}

impl ReplayReport {
    /// The rebuild and the live table agree.
    pub fn matches(&self) -> bool {
        self.live == self.rebuild && self.failed.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic}: {source}")]
    Read { topic: String, source: ReadError },
}

/// Replays `projection`'s topics into its rebuild table through `owner` (the schema owner, which
/// the rebuild tables belong to; it sees every tenant).
pub async fn replay(
    owner: &PgPool,
    kafka: &KafkaConfig,
    catalogue: &Catalogue,
    projection: Projection,
    opts: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let live = projection.table(Target::Live);
    let rebuild = projection.table(Target::Rebuild);
    let mut conn = owner.acquire().await?;
    let mut tx = conn.begin().await?;
    timed(
        "projection_rebuild_truncate",
        sqlx::query(&format!("TRUNCATE {rebuild}")).execute(&mut *tx),
    )
    .await?;

    let mut read = BTreeMap::new();
    let mut applied = 0u64;
    let mut failed = Vec::new();
    // An event that failed for a transient reason (a statement that failed for the moment) gets
    // one more try once everything has been read.
    let mut again: Vec<(String, Envelope)> = Vec::new();
    let until = tokio::time::Instant::now() + opts.deadline;
    let pace = Duration::from_secs_f64(1.0 / f64::from(opts.rate_per_second.max(1)));
    let mut next_slot = tokio::time::Instant::now();
    for topic in projection.topics(catalogue) {
        let mut reader = ReadToEnd::open(kafka, &topic)?;
        loop {
            tokio::time::sleep_until(next_slot).await;
            next_slot = next_slot.max(tokio::time::Instant::now() - pace) + pace;
            let m = match reader.next(until).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(source) => {
                    return Err(ReplayError::Read {
                        topic: topic.clone(),
                        source,
                    })
                }
            };
            *read.entry(topic.clone()).or_insert(0) += 1;
            let envelope: Envelope = match serde_json::from_slice(m.payload().unwrap_or_default()) {
                Ok(e) => e,
                Err(e) => {
                    failed.push((
                        None,
                        HandlerError::permanent("malformed-envelope", e.to_string()),
                    ));
                    continue;
                }
            };
            match apply_in_savepoint(&mut tx, projection, &topic, &envelope).await? {
                Ok(()) => applied += 1,
                Err(e) if e.category == Category::Transient => {
                    again.push((topic.clone(), envelope))
                }
                Err(e) => failed.push((Some(envelope.event_id), e)),
            }
        }
    }
    for (topic, envelope) in again {
        match apply_in_savepoint(&mut tx, projection, &topic, &envelope).await? {
            Ok(()) => applied += 1,
            Err(e) => failed.push((Some(envelope.event_id), e)),
        }
    }

    let comparison = compare(&mut tx, projection).await?;
    let merged = if opts.merge && !opts.dry_run {
        Some(merge(&mut tx, projection).await?)
    } else {
        None
    };
    if opts.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    tracing::info!(
        consumer = projection.name(),
        live,
        rebuild,
        applied,
        "replay finished"
    );
    Ok(ReplayReport {
        consumer: projection.name(),
        dry_run: opts.dry_run,
        read,
        applied,
        failed,
        live: comparison.live,
        rebuild: comparison.rebuild,
        differing: comparison.differing,
        differing_count: comparison.differing_count,
        only_live: comparison.only_live,
        only_rebuild: comparison.only_rebuild,
        merged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Applies one event to the rebuild table in a savepoint, so that a failed statement does not
/// end the replay's transaction.
async fn apply_in_savepoint(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    projection: Projection,
    topic: &str,
    e: &Envelope,
) -> Result<Result<(), HandlerError>, sqlx::Error> {
    let mut savepoint = tx.begin().await?;
    match projection
        .apply_to(&mut savepoint, Target::Rebuild, topic, e)
        .await
    {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(Ok(()))
        }
        Err(err) => {
            savepoint.rollback().await?;
            Ok(Err(err))
        }
    }
}

struct Comparison {
    live: TableDigest,
    rebuild: TableDigest,
    differing: Vec<String>,
    differing_count: i64,
    only_live: i64,
    only_rebuild: i64,
}

/// The key and the compared columns of each projection's table.
fn shape(projection: Projection) -> (&'static str, &'static str) {
    match projection {
        Projection::QuoteSearch => (
            "quote_id",
            "quote_id, tenant_id, customer_account_id, status, revision_no, snapshot_hash, order_id, \
             last_event_id, last_event_type, events_applied, updated_at, last_position, latest_position",
        ),
        Projection::AuditExport => (
            "event_id",
            "event_id, tenant_id, topic, event_type, schema_version, aggregate_id, occurred_at, payload",
        ),
    }
}

async fn digest(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    columns: &str,
) -> sqlx::Result<TableDigest> {
    let (rows, hash): (i64, Option<String>) = timed(
        "projection_digest",
        sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(row_text, E'\\n' ORDER BY k)) \
         FROM (SELECT {key} AS k, concat_ws('|', {columns}) AS row_text FROM {table}) t"
        ))
        .fetch_one(&mut *conn),
    )
    .await?;
    Ok(TableDigest {
        rows,
        hash: hash.unwrap_or_else(|| "empty".into()),
    })
}

async fn compare(conn: &mut PgConnection, projection: Projection) -> sqlx::Result<Comparison> {
    let (live, rebuild) = (
        projection.table(Target::Live),
        projection.table(Target::Rebuild),
    );
    let (key, columns) = shape(projection);
    let live_digest = digest(conn, live, key, columns).await?;
    let rebuild_digest = digest(conn, rebuild, key, columns).await?;
    let (differing_count, only_live, only_rebuild): (i64, i64, i64) = timed("projection_compare", sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE l.k IS NOT NULL AND r.k IS NOT NULL), \
                count(*) FILTER (WHERE r.k IS NULL), count(*) FILTER (WHERE l.k IS NULL) \
         FROM (SELECT {key} AS k, concat_ws('|', {columns}) AS t FROM {live}) l \
         FULL JOIN (SELECT {key} AS k, concat_ws('|', {columns}) AS t FROM {rebuild}) r ON l.k = r.k \
         WHERE l.t IS DISTINCT FROM r.t"
    ))
    .fetch_one(&mut *conn))
    .await?;
    let differing: Vec<String> = timed(
        "projection_differing_fetch",
        sqlx::query_scalar(&format!(
        "SELECT l.k::text FROM (SELECT {key} AS k, concat_ws('|', {columns}) AS t FROM {live}) l \
         JOIN (SELECT {key} AS k, concat_ws('|', {columns}) AS t FROM {rebuild}) r ON l.k = r.k \
         WHERE l.t <> r.t ORDER BY l.k LIMIT 50"
    ))
        .fetch_all(&mut *conn),
    )
    .await?;
    Ok(Comparison {
        live: live_digest,
        rebuild: rebuild_digest,
        differing,
        differing_count,
        only_live,
        only_rebuild,
    })
}

/// Writes rebuilt rows into the live table: new ones, and changed ones unless the live row has
/// since seen a later event.
async fn merge(conn: &mut PgConnection, projection: Projection) -> sqlx::Result<u64> {
    let (name, sql) = match projection {
        Projection::QuoteSearch => (
            "quote_search_merge",
            "INSERT INTO quote_search SELECT * FROM quote_search_rebuild \
             ON CONFLICT (quote_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, customer_account_id = EXCLUDED.customer_account_id, \
               status = EXCLUDED.status, revision_no = EXCLUDED.revision_no, snapshot_hash = EXCLUDED.snapshot_hash, \
               order_id = EXCLUDED.order_id, last_event_id = EXCLUDED.last_event_id, last_event_type = EXCLUDED.last_event_type, \
               events_applied = EXCLUDED.events_applied, updated_at = EXCLUDED.updated_at, last_position = EXCLUDED.last_position, \
               latest_position = EXCLUDED.latest_position \
             WHERE quote_search.latest_position <= EXCLUDED.latest_position \
               AND (quote_search.*)::text IS DISTINCT FROM (EXCLUDED.*)::text",
        ),
        // The export is append-only: what is missing is added, nothing is rewritten.
        Projection::AuditExport => (
            "audit_export_merge",
            "INSERT INTO audit_export SELECT * FROM audit_export_rebuild ON CONFLICT (event_id) DO NOTHING",
        ),
    };
    Ok(timed(name, sqlx::query(sql).execute(&mut *conn))
        .await?
        .rows_affected())
}
