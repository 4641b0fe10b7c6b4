//! The real `cpq-sim` binary on an ephemeral port with an empty database of its own (it migrates
//! it at start-up), killed when dropped; and a callback receiver the test owns.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use cpq_testkit::{KillOnDrop, TestDb};
use serde_json::Value;

pub struct Sim {
    pub base: String,
    pub client: reqwest::Client,
    // Killed before its database is dropped (fields drop in order).
    _child: KillOnDrop,
    pub db: TestDb,
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn read(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    }

    /// The fields named by the problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Sim {
    /// With the test systems file (no latency, no callback delay) and seed 42.
    pub async fn start() -> Sim {
        let db = TestDb::empty().await;
        let c = db.config().database;
        let url = format!(
            "postgres://{}:{}@{}:{}/{}",
            c.owner_user,
            c.owner_password.expose(),
            c.host,
            c.port,
            db.name
        );
        let systems = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fast-systems.toml");
        let mut child = cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-sim"))
            .args(["--listen", "127.0.0.1:0", "--seed", "42"])
            .args([
                "--callback-retry-base-ms",
                "100",
                "--log-level",
                "info,sqlx=warn",
            ])
            .args(["--systems-config", systems])
            .arg("--database-url")
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let child = KillOnDrop(child);
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Reads stderr to its end, so that the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("SIM_TEST_LOG").is_some() {
                    eprintln!("cpq-sim: {line}");
                }
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("cpq-sim did not start; it said:\n{}", seen.join("\n")));
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["message"] == "cpq-sim serving" {
                break v["addr"].as_str().unwrap().to_owned();
            }
            seen.push(line);
        };
        Sim {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _child: child,
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /systems/{system}/requests` with `key` and `body`.
    pub async fn request(&self, system: &str, key: &str, body: &Value) -> Answer {
        Answer::read(
            self.client
                .post(self.url(&format!("/systems/{system}/requests")))
                .header("Idempotency-Key", key)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::read(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        Answer::read(
            self.client
                .put(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        Answer::read(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Changes knobs, which must be accepted.
    pub async fn knobs(&self, system: &str, change: Value) {
        let a = self.put(&format!("/admin/systems/{system}"), &change).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }

    /// Queues forced outcomes, which must be accepted.
    pub async fn force(&self, system: &str, outcome: &str, count: u32) {
        let a = self
            .post(
                &format!("/admin/systems/{system}/force"),
                &serde_json::json!({ "outcome": outcome, "count": count }),
            )
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }

    /// The record of one key (from `GET /admin/executions`).
    pub async fn key(&self, system: &str, key: &str) -> Value {
        let list = self
            .get(&format!("/admin/executions?system={system}&limit=10000"))
            .await;
        assert_eq!(list.status, 200, "{:?}", list.body);
        list.body["executions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["idempotency_key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no record of {system}/{key}: {:?}", list.body))
    }

    /// `GET /admin/stats` for one system.
    pub async fn stats(&self, system: &str) -> Value {
        let s = self.get("/admin/stats").await;
        assert_eq!(s.status, 200, "{:?}", s.body);
        s.body["systems"][system].clone()
    }
}

/// What the receiver got: headers and the raw body of each delivery.
pub type Deliveries = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

#[derive(Clone)]
struct Receiver {
    got: Deliveries,
    failures_left: Arc<AtomicUsize>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got.lock().unwrap().push((headers, body));
    let failing = r
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// A callback receiver on an ephemeral port that answers 500 to its first `fail_first`
/// deliveries and 204 afterwards. Returns its URL and what it got.
pub async fn receiver(fail_first: usize) -> (String, Deliveries) {
    let got: Deliveries = Arc::default();
    let state = Receiver {
        got: got.clone(),
        failures_left: Arc::new(AtomicUsize::new(fail_first)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/callbacks/{system}", post(receive))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/callbacks/provisioning"), got)
}

/// Waits (at most 30 s) until `check` holds.
pub async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
