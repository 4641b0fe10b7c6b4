//! Built-in defaults: the first layer. Everything that has a sensible value everywhere is here;
//! what differs per environment (endpoints, credentials, trust) is left to the environment's file
//! or its variables, and is reported missing when absent.

pub const DEFAULTS: &str = r#"
[http]
bind = "127.0.0.1:8080"
request_timeout_ms = 10000
body_limit_bytes = 1048576
default_page_size = 50
max_page_size = 200
idempotency_retention_hours = 24

[database]
host = "127.0.0.1"
port = 5432
name = "cpq"
max_connections = 16
acquire_timeout_ms = 3000
statement_timeout_ms = 5000
tls = "disable"

[redis]
url = "redis://127.0.0.1:6379/0"
connect_timeout_ms = 500
command_timeout_ms = 250

[auth]
clock_skew_secs = 30
dev_key_id = "cpq-dev-1"

[log]
level = "info"
format = "json"
"#;
