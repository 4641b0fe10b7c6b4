//! The `process_instance_history` table: what each command did to an instance, appended in the
//! transaction that applied it. Never updated.

use chrono::{DateTime, Utc};
use cpq_core::Error;
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use uuid::Uuid;

use crate::runtime::{Command, Effect};

pub(super) async fn record_history(
    tx: &mut Tx,
    tenant: &str,
    instance: Uuid,
    command: &Command,
    effects: &[Effect],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "process_instance_history_insert",
        sqlx::query("INSERT INTO process_instance_history (tenant_id, process_instance_id, command, effects, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(tenant)
            .bind(instance)
            .bind(serde_json::to_value(command).map_err(Error::internal)?)
            .bind(serde_json::to_value(effects).map_err(Error::internal)?)
            .bind(at)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
