//! The connection to Redis. Redis only accelerates: when it is unreachable the API keeps serving
//! from PostgreSQL, reports `redis_up 0` in `/metrics` and "degraded" in readiness, and
//! reconnects by itself.

use std::time::{Duration, Instant};

use cpq_config::RedisConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::IntoConnectionInfo;

#[derive(Clone)]
pub struct RedisLink {
    conn: ConnectionManager,
    deadline: Duration,
    target: String,
}

impl RedisLink {
    /// Prepares the connection without connecting: a service starts while Redis is down.
    pub fn new(config: &RedisConfig) -> Result<RedisLink, redis::RedisError> {
        let mut info = config.url.as_str().into_connection_info()?;
        if let Some(password) = &config.password {
            let settings = info
                .redis_settings()
                .clone()
                .set_password(password.expose());
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info)?;
        let connect = Duration::from_millis(config.connect_timeout_ms);
        let command = Duration::from_millis(config.command_timeout_ms);
        let manager = ConnectionManager::new_lazy_with_config(
            client,
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect))
                .set_response_timeout(Some(command))
                .set_number_of_retries(1),
        )?;
        Ok(RedisLink {
            conn: manager,
            deadline: connect + command,
            target: format!(
                "{}:{}",
                config.url.host_str().unwrap_or("?"),
                config.url.port().unwrap_or(6379)
            ),
        })
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Round trip of a PING, bounded by the connect and command timeouts. Updates `redis_up`.
    pub async fn ping(&self) -> Result<Duration, String> {
        let start = Instant::now();
        let mut conn = self.conn.clone();
        let result = tokio::time::timeout(self.deadline, async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await;
        let outcome = match result {
            Ok(Ok(_)) => Ok(start.elapsed()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.deadline.as_millis())),
        };
        metrics::gauge!("redis_up").set(if outcome.is_ok() { 1.0 } else { 0.0 });
        outcome
    }

    /// Reads a value; `Err` when Redis cannot answer in time (callers fall back to PostgreSQL).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let mut conn = self.conn.clone();
        let key = key.to_owned();
        let result = tokio::time::timeout(self.deadline, async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Vec<u8>>>(&mut conn)
                .await
        })
        .await;
        self.outcome(result)
    }

    /// Writes a value with a time to live; errors only count, nobody waits on them twice.
    pub async fn set(&self, key: &str, value: &[u8], ttl_secs: u64) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let (key, value) = (key.to_owned(), value.to_vec());
        let result = tokio::time::timeout(self.deadline, async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("EX")
                .arg(ttl_secs)
                .query_async::<()>(&mut conn)
                .await
        })
        .await;
        self.outcome(result)
    }

    /// Deletes keys.
    pub async fn delete(&self, key: &str) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let key = key.to_owned();
        let result = tokio::time::timeout(self.deadline, async move {
            redis::cmd("DEL")
                .arg(key)
                .query_async::<()>(&mut conn)
                .await
        })
        .await;
        self.outcome(result)
    }

    fn outcome<T>(
        &self,
        result: Result<Result<T, redis::RedisError>, tokio::time::error::Elapsed>,
    ) -> Result<T, String> {
        let outcome = match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.deadline.as_millis())),
        };
        metrics::gauge!("redis_up").set(if outcome.is_ok() { 1.0 } else { 0.0 });
        outcome
    }
}
