//! What a deployable knows of its Kafka cluster, and how librdkafka's own errors reach its log.
//!
//! [`KafkaHealth`] is one per process, shared by every client the process makes through a
//! [`KafkaContext`]. A probe ([`watch`]) asks the cluster for a topic's metadata every few seconds
//! (every second while it does not answer, and at once when a client reports a connection
//! error): the probe's verdict is what `/health/ready` reports and what the log says, in one line
//! when Kafka stops answering ("Kafka is unreachable at ...", with librdkafka's last reason), a
//! reminder a minute while it stays so, and one line when it answers again.
//!
//! librdkafka reports a broker it cannot reach on every reconnection attempt, from every client
//! (`AllBrokersDown`, `BrokerTransportFailure`, `FAIL ... Connection refused`, request
//! timeouts): several lines a second. Those are held back (counted, the last one kept as the
//! outage's reason) while Kafka is unreachable or not reached yet; once it answers, any line of
//! librdkafka's is logged at most once a minute per kind, with how many like it were held back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cpq_config::KafkaConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::{watch as signal, Notify};

use crate::kafka::client_config;

/// How long a probe waits for the cluster's answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Between probes while Kafka answers (a client's connection error brings the next one forward).
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Between probes while it does not.
const PROBE_EVERY_DOWN: Duration = Duration::from_secs(1);
/// At most one line per kind of librdkafka line this often, and the outage reminder.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What this process knows of Kafka: reachable, unreachable (since when, why), or not asked yet.
/// Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct KafkaHealth(Arc<Inner>);

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    bootstrap_servers: String,
    /// `None` until the first probe finished.
    reachable: Option<bool>,
    /// When the current outage began.
    down_since: Option<Instant>,
    /// librdkafka's (or the probe's) last word on why the cluster cannot be reached.
    last_error: Option<String>,
    /// Failed probes in a row: one slow answer from a cluster that answered is not an outage.
    failures: u32,
    /// Lines held back during the current outage, and when it was last reminded of.
    held_back: u64,
    reminded: Option<Instant>,
    /// Per kind of librdkafka line: when one was last logged, and how many were held back since.
    limited: HashMap<String, (Instant, u64)>,
}

impl std::fmt::Debug for KafkaHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaHealth")
            .field("status", &self.status())
            .finish()
    }
}

impl KafkaHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Ok` while the last probe was answered; otherwise why not, for `/health/ready`.
    pub fn status(&self) -> Result<(), String> {
        let s = self.state();
        let servers = &s.bootstrap_servers;
        let why = s
            .last_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        match (s.reachable, s.down_since) {
            (Some(true), _) => Ok(()),
            (None, _) => Err(format!("kafka has not answered yet ({servers}){why}")),
            (Some(false), since) => Err(format!(
                "kafka is unreachable ({servers}) for {} s{why}",
                since.map(|t| t.elapsed().as_secs()).unwrap_or(0)
            )),
        }
    }

    /// True while the probe finds Kafka unreachable (not before the first probe).
    pub fn is_down(&self) -> bool {
        self.state().reachable == Some(false)
    }

    /// The probe's cluster answered.
    pub fn answered(&self) {
        let mut s = self.state();
        match (s.reachable, s.down_since) {
            (Some(false), Some(since)) => tracing::info!(
                bootstrap_servers = %s.bootstrap_servers,
                outage_s = since.elapsed().as_secs(),
                held_back = s.held_back,
                "Kafka answers again; ready"
            ),
            (None, _) => {
                tracing::info!(bootstrap_servers = %s.bootstrap_servers, "Kafka answers; ready")
            }
            _ => {}
        }
        s.reachable = Some(true);
        s.down_since = None;
        s.last_error = None;
        s.failures = 0;
        s.held_back = 0;
        s.reminded = None;
    }

    /// The probe's cluster did not answer (`error`).
    pub fn unanswered(&self, error: &str) {
        let mut s = self.state();
        s.failures += 1;
        if s.last_error.is_none() {
            s.last_error = Some(error.to_owned());
        }
        match s.reachable {
            Some(true) if s.failures < 2 => {}
            Some(false) => {
                if s.reminded.is_none_or(|r| r.elapsed() >= LOG_EVERY) {
                    s.reminded = Some(Instant::now());
                    tracing::warn!(
                        bootstrap_servers = %s.bootstrap_servers,
                        outage_s = s.down_since.map(|t| t.elapsed().as_secs()).unwrap_or(0),
                        held_back = s.held_back,
                        reason = s.last_error.as_deref().unwrap_or(error),
                        "Kafka is still unreachable; not ready"
                    );
                    s.held_back = 0;
                }
            }
            _ => {
                s.reachable = Some(false);
                s.down_since = Some(Instant::now());
                s.reminded = Some(Instant::now());
                tracing::warn!(
                    bootstrap_servers = %s.bootstrap_servers,
                    reason = s.last_error.as_deref().unwrap_or(error),
                    held_back = s.held_back,
                    "Kafka is unreachable: events wait (in the outbox, or behind the committed \
                     offsets) and are carried once it answers; /health/ready answers 503 until \
                     then; retrying, its clients' repeated connection errors held back"
                );
                s.held_back = 0;
            }
        }
    }

    /// Resolves when a client reported a connection error (the probe then looks at once).
    async fn woken(&self) {
        self.0.wake.notified().await
    }

    /// A line or error of librdkafka's, `kind` saying which (the facility or the error code).
    /// `connection`: it reports a broker that cannot be reached.
    fn librdkafka(&self, level: tracing::Level, kind: &str, connection: bool, line: &str) {
        let mut s = self.state();
        if connection {
            s.last_error = Some(line.to_owned());
            if s.reachable == Some(true) {
                self.0.wake.notify_one();
            }
        }
        // Held back while Kafka is unreachable, and connection errors until it first answered:
        // the probe's one line says it (with the last of them as the reason).
        if s.reachable == Some(false) || (connection && s.reachable.is_none()) {
            s.held_back += 1;
            return;
        }
        let now = Instant::now();
        let held_back = match s.limited.get_mut(kind) {
            Some((last, count)) if now.duration_since(*last) < LOG_EVERY => {
                *count += 1;
                return;
            }
            Some((last, count)) => {
                *last = now;
                std::mem::take(count)
            }
            None => {
                s.limited.insert(kind.to_owned(), (now, 0));
                0
            }
        };
        drop(s);
        if level == tracing::Level::ERROR {
            tracing::error!(target: "librdkafka", kind, held_back, "librdkafka: {line}");
        } else if level == tracing::Level::WARN {
            tracing::warn!(target: "librdkafka", kind, held_back, "librdkafka: {line}");
        } else {
            tracing::info!(target: "librdkafka", kind, held_back, "librdkafka: {line}");
        }
    }
}

/// Whether `code` says a broker could not be reached (rather than what a request asked for).
pub fn is_connection_error(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::TimedOutQueue
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
    )
}

/// [`is_connection_error`] for a client's error.
pub fn is_connection(e: &KafkaError) -> bool {
    e.rdkafka_error_code().is_some_and(is_connection_error)
}

/// librdkafka's facilities for lines about a broker connection that failed or timed out.
fn is_connection_facility(fac: &str) -> bool {
    matches!(
        fac,
        "FAIL" | "REQTMOUT" | "BROKERFAIL" | "CONNECT" | "TIMEOUT"
    )
}

/// The context of every Kafka client a deployable makes: librdkafka's lines and errors go
/// through its [`KafkaHealth`].
#[derive(Clone, Default)]
pub struct KafkaContext {
    pub health: KafkaHealth,
}

impl KafkaContext {
    pub fn new(health: KafkaHealth) -> KafkaContext {
        KafkaContext { health }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let level = match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::Level::ERROR,
            RDKafkaLogLevel::Warning => tracing::Level::WARN,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::Level::INFO,
            // RDKAFKA_DEBUG's lines: all of them, as asked.
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "librdkafka: {fac} {log_message}");
                return;
            }
        };
        self.health.librdkafka(
            level,
            fac,
            is_connection_facility(fac),
            &format!("{fac} {log_message}"),
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = error
            .rdkafka_error_code()
            .map(|c| format!("{c:?}"))
            .unwrap_or_else(|| "error".into());
        self.health.librdkafka(
            tracing::Level::ERROR,
            &kind,
            is_connection(&error),
            &format!("{error}: {reason}"),
        );
    }
}

impl ConsumerContext for KafkaContext {}

/// Probes the cluster of `k` for `health` until `stop` turns true: `topic`'s metadata (any topic
/// of ours: it proves a broker answers requests, not only that a port is open), every
/// [`PROBE_EVERY`] while it answers and every [`PROBE_EVERY_DOWN`] while it does not.
pub fn watch(
    k: &KafkaConfig,
    health: KafkaHealth,
    topic: String,
    mut stop: signal::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, KafkaError> {
    health.state().bootstrap_servers = k.bootstrap_servers.clone();
    let admin: AdminClient<KafkaContext> =
        client_config(k, "health").create_with_context(KafkaContext::new(health.clone()))?;
    let admin = Arc::new(admin);
    Ok(tokio::spawn(async move {
        loop {
            let (a, t) = (admin.clone(), topic.clone());
            // On the blocking pool: the request blocks up to PROBE_TIMEOUT.
            let probe = tokio::task::spawn_blocking(move || {
                a.inner()
                    .fetch_metadata(Some(&t), PROBE_TIMEOUT)
                    .map(|_| ())
            });
            let answer = tokio::select! {
                a = probe => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            match answer {
                Ok(Ok(())) => health.answered(),
                Ok(Err(e)) => health.unanswered(&e.to_string()),
                Err(_) => {}
            }
            let down = health.is_down();
            let wait = tokio::time::sleep(if down { PROBE_EVERY_DOWN } else { PROBE_EVERY });
            tokio::select! {
                _ = wait => {}
                _ = health.woken(), if !down => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }))
}
