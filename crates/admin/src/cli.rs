//! The command line: every subcommand and its arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cpq-admin",
    version,
    about = "Operator commands for the CPQ platform"
)]
pub struct Args {
    /// Environment: local, integration, staging or production (default: $CPQ_ENV).
    #[arg(long, global = true)]
    pub env: Option<String>,
    /// Directory holding <env>.toml (default: $CPQ_CONFIG_DIR or ./config).
    #[arg(long, global = true)]
    pub config_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Deploy BPMN and DMN files (or every .dmn, then every .bpmn, of a folder), each file a
    /// deployment of its own, or all together as one with --together. Re-deploying unchanged
    /// files is a no-op.
    DeployBpmn {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// One deployment of every file (all or nothing; a bindingType="deployment" call runs
        /// what was deployed with its process).
        #[arg(long)]
        together: bool,
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
        what: crate::events::TopicsWhat,
    },
    /// Dead letters: list them, or replay a consumer's after a fix.
    DeadLetters {
        #[command(subcommand)]
        what: crate::events::DeadLettersWhat,
    },
    /// Rebuild a projection from its topics with an isolated reader at a bounded rate, compare it
    /// with the live one (rows and content hash), and merge it in only with --swap.
    Replay(crate::events::ReplayArgs),
    /// Workflow incidents of a tenant: list them, or resolve one (the API's repair, same
    /// operation).
    Incidents {
        #[command(subcommand)]
        what: crate::incidents::IncidentsWhat,
    },
    /// Print the effective configuration with secrets redacted.
    DumpConfig,
    /// Validate the configuration and exit.
    CheckConfig,
}

#[derive(Subcommand)]
pub enum SeedWhat {
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
