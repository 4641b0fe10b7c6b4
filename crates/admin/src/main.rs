//! `cpq-admin`: the operator's commands. Reads and validates configuration, then calls one library
//! entry point per subcommand. Migrations run here and only here, as the schema owner.

mod events;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use cpq_config::{Config, Sources};
use cpq_core::{Role, TenantId};
use cpq_db::migrations::{self, MIGRATOR};

#[derive(Parser)]
#[command(
    name = "cpq-admin",
    version,
    about = "Operator commands for the CPQ platform"
)]
struct Args {
    /// Environment: local, integration, staging or production (default: $CPQ_ENV).
    #[arg(long, global = true)]
    env: Option<String>,
    /// Directory holding <env>.toml (default: $CPQ_CONFIG_DIR or ./config).
    #[arg(long, global = true)]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations as the schema owner. Re-running is a no-op.
    Migrate,
    /// Show the applied and required schema versions and the pending migrations. Read-only.
    SchemaStatus,
    /// Mint a development token (local and integration only).
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// A role: catalog-manager, sales, approver, order-operations, operator, worker. Repeatable.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// A group, such as an approval level (manager, finance, deal-desk). Repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Grant every tenant (`"tenants": ["*"]`): a platform credential. Only with the worker
        /// or operator role.
        #[arg(long)]
        all_tenants: bool,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
    /// Load a catalog as a published, active version. Safe to repeat.
    Seed {
        #[command(subcommand)]
        what: SeedWhat,
    },
    /// Write a synthetic catalog document (for benchmarks and load tests) as JSON.
    GenerateCatalog {
        #[arg(long, default_value_t = 10_000)]
        offerings: usize,
        #[arg(long, default_value_t = 6)]
        characteristics: usize,
        #[arg(long, default_value_t = 4)]
        price_lists: usize,
        #[arg(long, default_value_t = 60)]
        promotions: usize,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Deploy BPMN files (or every .bpmn in a folder). Re-deploying an unchanged file is a no-op.
    DeployBpmn {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        release_id: Option<String>,
        #[arg(long)]
        source_commit: Option<String>,
        /// Deploy although no worker group executes a job type (local and integration only).
        #[arg(long)]
        allow_unsupported_job_types: bool,
    },
    /// The topic catalogue (topics/catalogue.toml) against the cluster in [kafka].
    Topics {
        #[command(subcommand)]
        what: events::TopicsWhat,
    },
    /// Dead letters: list them, or replay a consumer's after a fix.
    DeadLetters {
        #[command(subcommand)]
        what: events::DeadLettersWhat,
    },
    /// Rebuild a projection from its topics with an isolated reader at a bounded rate, compare it
    /// with the live one (rows and content hash), and merge it in only with --swap.
    Replay(events::ReplayArgs),
    /// Print the effective configuration with secrets redacted.
    DumpConfig,
    /// Validate the configuration and exit.
    CheckConfig,
}

#[derive(Subcommand)]
enum SeedWhat {
    /// The demo B2B telecom catalog (catalogs/demo-telecom.json).
    Demo {
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// When it takes effect (RFC 3339); if another version starts then, it starts now.
        #[arg(long, default_value = "2026-01-01T00:00:00Z")]
        effective_from: String,
    },
    /// A catalog document from a file (for example one made by generate-catalog).
    File {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        path: PathBuf,
        #[arg(long, default_value = "catalog")]
        name: String,
        #[arg(long, default_value = "2026-01-01T00:00:00Z")]
        effective_from: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match cpq_config::load(&Sources::from_process(
        args.env.clone(),
        args.config_dir.clone(),
    )) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cpq-admin: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpq-admin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Topics { what } => events::topics(what, &config, &runtime()?)?,
        Command::DeadLetters { what } => events::dead_letters(what, &config, &runtime()?)?,
        Command::Replay(args) => events::replay(args, &config, &runtime()?)?,
        Command::DumpConfig => print!("{}", config.dump()),
        Command::CheckConfig => {
            println!("configuration for {} is valid", config.environment.as_str())
        }
        Command::Token {
            tenant,
            subject,
            roles,
            groups,
            all_tenants,
            ttl_secs,
        } => {
            let signer = cpq_auth::DevSigner::from_config(&config)?;
            let tenant =
                TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {}", e.detail))?;
            let mut parsed = Vec::new();
            for r in &roles {
                match Role::parse(r) {
                    Some(role) => parsed.push(role),
                    None => bail!(
                        "unknown role \"{r}\"; expected one of {}",
                        Role::ALL.map(Role::as_str).join(", ")
                    ),
                }
            }
            if all_tenants
                && !parsed
                    .iter()
                    .any(|r| matches!(r, Role::Worker | Role::Operator))
            {
                bail!("--all-tenants is only honoured with --role worker or --role operator");
            }
            let tenants: &[&str] = if all_tenants {
                &[cpq_auth::ALL_TENANTS]
            } else {
                &[]
            };
            println!(
                "{}",
                signer.mint_with_tenants(
                    &subject,
                    &tenant,
                    &parsed,
                    &groups.iter().map(String::as_str).collect::<Vec<_>>(),
                    tenants,
                    Duration::from_secs(ttl_secs)
                )?
            );
        }
        Command::GenerateCatalog {
            offerings,
            characteristics,
            price_lists,
            promotions,
            out,
        } => {
            let doc = cpq_catalog::synthetic::generate(cpq_catalog::synthetic::Spec {
                offerings,
                characteristics,
                price_lists,
                promotions,
            });
            let text = serde_json::to_string(&doc)?;
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
        }
        Command::Seed { what } => {
            let (tenant, name, doc, from) = match what {
                SeedWhat::Demo {
                    tenant,
                    effective_from,
                } => (
                    tenant,
                    "demo-telecom".to_owned(),
                    serde_json::from_str(cpq_catalog::seed::DEMO_TELECOM)?,
                    effective_from,
                ),
                SeedWhat::File {
                    tenant,
                    path,
                    name,
                    effective_from,
                } => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    (
                        tenant,
                        name,
                        serde_json::from_str(&text).with_context(|| {
                            format!("{} is not a catalog document", path.display())
                        })?,
                        effective_from,
                    )
                }
            };
            let tenant =
                TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {}", e.detail))?;
            let from: chrono::DateTime<chrono::Utc> =
                from.parse().context("--effective-from must be RFC 3339")?;
            runtime()?.block_on(async {
                let pool = cpq_db::pool::app_pool(&config.database, "cpq-admin");
                match cpq_catalog::seed::seed(&pool, &tenant, &name, &doc, from, "cpq-admin").await {
                    Ok(cpq_catalog::seed::Seeded::Loaded { id, label, effective_from }) => println!("loaded catalog {label} ({id}) for tenant {tenant}, active from {effective_from}"),
                    Ok(cpq_catalog::seed::Seeded::AlreadyLoaded { id, label }) => println!("catalog {label} ({id}) is already loaded for tenant {tenant}"),
                    Err(cpq_core::Error::Validation { errors }) => {
                        for e in &errors {
                            eprintln!("  {} [{}] {}", e.field, e.code, e.detail);
                        }
                        bail!("the catalog does not publish: {} problem(s)", errors.len());
                    }
                    Err(e) => bail!("{e}"),
                }
                pool.close().await;
                anyhow::Ok(())
            })?;
        }
        Command::DeployBpmn {
            paths,
            release_id,
            source_commit,
            allow_unsupported_job_types,
        } => {
            if allow_unsupported_job_types && !config.environment.allows_dev_tokens() {
                bail!(
                    "--allow-unsupported-job-types is refused in {}",
                    config.environment.as_str()
                );
            }
            let mut files = Vec::new();
            for p in paths {
                if p.is_dir() {
                    let mut found: Vec<PathBuf> = std::fs::read_dir(&p)?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| f.extension().is_some_and(|x| x == "bpmn"))
                        .collect();
                    found.sort();
                    files.extend(found);
                } else {
                    files.push(p);
                }
            }
            let platform = TenantId::parse("platform").map_err(|e| anyhow::anyhow!(e.detail))?;
            runtime()?.block_on(async {
                let pool = cpq_db::pool::app_pool(&config.database, "cpq-admin");
                let mut failed = 0;
                for file in &files {
                    let xml = std::fs::read_to_string(file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let name = file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let mut tx = cpq_db::tenant::begin(&pool, &platform).await?;
                    let result = cpq_workflow::deployment::deploy(
                        &mut tx,
                        &cpq_workflow::deployment::DeployRequest {
                            resource_name: &name,
                            xml: &xml,
                            release_id: release_id.clone(),
                            source_commit: source_commit.clone(),
                            variable_schema_version: 1,
                            allow_unsupported_job_types,
                            deployed_by: "cpq-admin",
                            at: chrono::Utc::now(),
                        },
                    )
                    .await;
                    match result {
                        Ok(deployed) => {
                            tx.commit().await?;
                            for d in deployed {
                                let what = if d.created { "deployed" } else { "unchanged" };
                                println!(
                                    "{name}: {what} {} version {}",
                                    d.definition.bpmn_process_id, d.definition.version
                                );
                            }
                        }
                        Err(cpq_core::Error::Validation { errors }) => {
                            failed += 1;
                            eprintln!("{name}: refused");
                            for e in errors {
                                eprintln!("  {} [{}] {}", e.field, e.code, e.detail);
                            }
                        }
                        Err(e) => bail!("{name}: {e}"),
                    }
                }
                pool.close().await;
                if failed > 0 {
                    bail!("{failed} file(s) refused");
                }
                anyhow::Ok(())
            })?;
        }
        Command::Migrate => {
            cpq_telemetry::init_tracing(&config.log)?;
            runtime()?.block_on(async {
                let pool = cpq_db::pool::owner_pool(&config.database, "cpq-admin")
                    .await
                    .with_context(|| {
                        format!(
                            "connecting to {}/{} as {}",
                            config.database.host, config.database.name, config.database.owner_user
                        )
                    })?;
                let report = migrations::migrate(&pool).await.context("migrating")?;
                if report.applied.is_empty() {
                    println!(
                        "schema is up to date at version {}",
                        report.after.unwrap_or(0)
                    );
                } else {
                    for (version, description) in &report.applied {
                        println!("applied {version} {description}");
                    }
                    println!(
                        "schema version {} -> {}",
                        report.before.map_or("none".to_owned(), |v| v.to_string()),
                        report.after.unwrap_or(0)
                    );
                }
                pool.close().await;
                anyhow::Ok(())
            })?;
        }
        Command::SchemaStatus => {
            runtime()?.block_on(async {
                let pool = cpq_db::pool::owner_pool(&config.database, "cpq-admin")
                    .await
                    .context("connecting")?;
                let status = migrations::schema_status(&pool).await?;
                println!(
                    "applied: {}",
                    status.applied.map_or("none".to_owned(), |v| v.to_string())
                );
                println!("required by this build: {}", status.required);
                for m in MIGRATOR
                    .iter()
                    .filter(|m| status.applied.is_none_or(|a| m.version > a))
                {
                    println!("pending: {} {}", m.version, m.description);
                }
                match status.incompatibility() {
                    Some(reason) => println!("status: behind: {reason}"),
                    None => println!("status: compatible"),
                }
                pool.close().await;
                anyhow::Ok(())
            })?;
        }
    }
    Ok(())
}
