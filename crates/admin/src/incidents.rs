//! `cpq-admin incidents list|resolve`: the incident repair of `GET /v1/incidents` and
//! `POST /v1/incidents/{id}/resolution`, through the same application operations, as an
//! operator of the tenant named.

use anyhow::Context;
use clap::Subcommand;
use cpq_application::workflow::incidents::{ListIncidents, ResolveIncident};
use cpq_config::Config;
use cpq_core::{TenantGrant, TenantId};
use uuid::Uuid;

#[derive(Subcommand)]
pub enum IncidentsWhat {
    /// The tenant's incidents, one JSON object per line (open ones unless --all).
    List {
        #[arg(long)]
        tenant: String,
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Give an incident's job retries again (audited with the reason).
    Resolve {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: Uuid,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
        /// Retries the job gets (default 1).
        #[arg(long)]
        retries: Option<i32>,
    },
}

fn tenant(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).map_err(|e| anyhow::anyhow!("--tenant: {}", e.detail))
}

pub async fn incidents(what: IncidentsWhat, config: &Config) -> anyhow::Result<()> {
    let services = crate::services(config)?;
    let result = match what {
        IncidentsWhat::List {
            tenant: t,
            all,
            limit,
        } => {
            let call = crate::operator_call(tenant(&t)?, TenantGrant::Own);
            let list = ListIncidents {
                open_only: !all,
                after: None,
                limit,
            };
            cpq_application::query(&services, &call, list)
                .await
                .context("listing incidents")
                .and_then(|rows| {
                    for r in rows {
                        println!("{}", serde_json::to_string(&r)?);
                    }
                    Ok(())
                })
        }
        IncidentsWhat::Resolve {
            tenant: t,
            id,
            reason,
            retries,
        } => {
            let call = crate::operator_call(tenant(&t)?, TenantGrant::Own);
            let resolve = ResolveIncident {
                id,
                reason,
                retries,
            };
            cpq_application::execute(&services, &call, resolve)
                .await
                .with_context(|| format!("resolving incident {id}"))
                .map(|retries| println!("incident {id} resolved: its job has {retries} retries"))
        }
    };
    services.db.close().await;
    result
}
