//! Configuration for every deployable.
//!
//! Layers, later wins: built-in defaults ([`defaults::DEFAULTS`]) → `config/<env>.toml` →
//! environment variables `CPQ_<SECTION>__<KEY>` (for example `CPQ_DATABASE__APP_PASSWORD`). The
//! environment is chosen by `CPQ_ENV` (or a binary's `--env`) and must be one of
//! [`Environment`]'s names. [`load`] reads and merges the layers, then validates everything and
//! reports every problem at once. Secrets are [`Secret`]s: `Debug`, `Display` and serialization
//! (`--dump-config`) show `[redacted]`.

mod defaults;
mod layers;
mod model;
mod secret;
mod validate;

pub use layers::{load, ConfigError, Sources, ENV_PREFIX};
pub use model::{
    AuthConfig, CallbacksConfig, Config, DatabaseConfig, Environment, ExternalSystem, HttpConfig,
    JobHandlerKind, JobTypeConfig, JwksSource, KafkaConfig, KafkaSecurity, LogConfig, LogFormat,
    RedisConfig, SystemHandlerConfig, TlsMode, WorkerConfig, FULFILLMENT_INTERNAL_JOB_TYPES,
};
pub use secret::Secret;
