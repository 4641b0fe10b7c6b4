//! `cpq-admin`, the operator's commands, as a library: [`run`] takes a parsed [`cli::Command`]
//! and the loaded configuration; the binary only parses, loads and calls it. Business changes go
//! through the application layer's operations (`cpq_application`), the ones the API runs.
//! Migrations run here and only here, as the schema owner.

pub mod catalogs;
pub mod cli;
pub mod events;
pub mod incidents;
pub mod processes;
pub mod schema;
pub mod tokens;

use std::collections::BTreeSet;

use cpq_application::redis_link::RedisLink;
use cpq_application::{Call, Services};
use cpq_config::Config;
use cpq_core::{Principal, Role, TenantGrant, TenantId};

use crate::cli::Command;

/// What the application's operations reach, for one command.
fn services(config: &Config) -> anyhow::Result<Services> {
    let db = cpq_db::pool::app_pool(&config.database, "cpq-admin");
    let redis = RedisLink::new(&config.redis)?;
    Ok(Services::new(config.environment.as_str(), db, redis))
}

/// `cpq-admin` acting as an operator of `tenant` (with `grant`): the identity its audit records
/// name.
fn operator_call(tenant: TenantId, grant: TenantGrant) -> Call {
    let principal = Principal {
        subject: "cpq-admin".to_owned(),
        tenant,
        roles: BTreeSet::from([Role::Operator]),
        groups: BTreeSet::new(),
        grant,
    };
    let correlation = format!("cpq-admin-{}", uuid::Uuid::now_v7());
    Call::new(principal, correlation, None)
}

/// Runs one subcommand to its end.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate => schema::migrate(&config).await,
        Command::SchemaStatus => schema::status(&config).await,
        Command::Token {
            tenant,
            subject,
            roles,
            groups,
            all_tenants,
            ttl_secs,
        } => tokens::mint(
            &config,
            &tokens::TokenRequest {
                tenant,
                subject,
                roles,
                groups,
                all_tenants,
                ttl_secs,
            },
        ),
        Command::Seed { what } => catalogs::seed(what, &config).await,
        Command::GenerateCatalog {
            offerings,
            characteristics,
            price_lists,
            promotions,
            out,
        } => catalogs::generate(
            cpq_catalog::synthetic::Spec {
                offerings,
                characteristics,
                price_lists,
                promotions,
            },
            out,
        ),
        Command::DeployBpmn {
            paths,
            together,
            release_id,
            source_commit,
            allow_unsupported_job_types,
        } => {
            processes::deploy(
                &config,
                &paths,
                together,
                processes::Options {
                    release_id,
                    source_commit,
                    allow_unsupported_job_types,
                },
            )
            .await
        }
        Command::Topics { what } => events::topics(what, &config).await,
        Command::DeadLetters { what } => events::dead_letters(what, &config).await,
        Command::Replay(args) => events::replay(args, &config).await,
        Command::Incidents { what } => incidents::incidents(what, &config).await,
        Command::DumpConfig => {
            print!("{}", config.dump());
            Ok(())
        }
        Command::CheckConfig => {
            println!("configuration for {} is valid", config.environment.as_str());
            Ok(())
        }
    }
}
