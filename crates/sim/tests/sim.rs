#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Black-box tests of the real `cpq-sim` binary over HTTP: idempotency by key (replay, another
//! body, concurrency, a caller that gives up), injected transient failures, timeouts and business
//! rejections, down and up again, signed callbacks redelivered until accepted, dropped callbacks,
//! the reports, bad input.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, receiver, Sim};

fn body(operation: &str, payload: Value) -> Value {
    json!({ "operation": operation, "payload": payload })
}

#[tokio::test]
async fn a_replayed_key_returns_the_first_answer_and_executes_once() {
    let sim = Sim::start().await;
    let req = body("reserve", json!({"order": "O-1", "items": [1, 2]}));
    let first = sim.request("inventory", "k-1", &req).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert!(!first.replayed());
    assert_eq!(first.body["system"], "inventory");
    assert_eq!(first.body["operation"], "reserve");
    assert!(first.body["result"]["reservation_id"]
        .as_str()
        .unwrap()
        .starts_with("RES-"));

    let again = sim.request("inventory", "k-1", &req).await;
    assert_eq!(again.status, 200);
    assert!(again.replayed());
    assert_eq!(again.body, first.body);
    // The same request with its keys in another order is the same request.
    let reordered: Value =
        serde_json::from_str(r#"{"payload":{"items":[1,2],"order":"O-1"},"operation":"reserve"}"#)
            .unwrap();
    let third = sim.request("inventory", "k-1", &reordered).await;
    assert_eq!(third.body, first.body);

    let record = sim.key("inventory", "k-1").await;
    assert_eq!(record["executions"], 1);
    assert_eq!(record["attempts"], 3);
    assert_eq!(record["request_id"], first.body["request_id"]);
    // The same key on another system is another request.
    let other = sim.request("billing", "k-1", &req).await;
    assert_eq!(other.status, 200);
    assert!(!other.replayed());
    assert_ne!(other.body["request_id"], first.body["request_id"]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_changes_nothing() {
    let sim = Sim::start().await;
    let first = sim
        .request("crm", "k", &body("open-ticket", json!({"customer": "C-1"})))
        .await;
    assert_eq!(first.status, 200);
    let other = sim
        .request("crm", "k", &body("open-ticket", json!({"customer": "C-2"})))
        .await;
    assert_eq!(other.status, 422, "{:?}", other.body);
    assert_eq!(other.body["type"], "urn:cpq:problem:idempotency-key-reused");
    assert_eq!(other.content_type(), "application/problem+json");
    let record = sim.key("crm", "k").await;
    assert_eq!(record["executions"], 1);
    let replay = sim
        .request("crm", "k", &body("open-ticket", json!({"customer": "C-1"})))
        .await;
    assert_eq!(replay.body, first.body);
}

#[tokio::test]
async fn fifty_concurrent_requests_with_one_key_execute_once() {
    let sim = Sim::start().await;
    // A constant latency keeps the first execution in progress while the others arrive.
    sim.knobs(
        "billing",
        json!({"latency_p50_ms": 300, "latency_p95_ms": 300}),
    )
    .await;
    let req = body("activate", json!({"account": "A-1"}));
    let answers =
        futures::future::join_all((0..50).map(|_| sim.request("billing", "one-key", &req))).await;
    let ok: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
    assert!(!ok.is_empty(), "no request succeeded: {answers:?}");
    for a in &answers {
        assert!(a.status == 200 || a.status == 409, "{a:?}");
        if a.status == 409 {
            assert_eq!(a.body["type"], "urn:cpq:problem:request-in-progress");
        }
    }
    for a in &ok {
        assert_eq!(a.body, ok[0].body);
    }
    let record = sim.key("billing", "one-key").await;
    assert_eq!(record["executions"], 1);
    let stats = sim.stats("billing").await;
    assert_eq!(stats["executions"], 1);
    assert_eq!(stats["duplicate_executions"], 0);
}

#[tokio::test]
async fn a_transient_failure_stores_no_answer_and_the_retry_executes_once() {
    let sim = Sim::start().await;
    sim.force("billing", "transient", 1).await;
    let req = body("activate", json!({"account": "A-1"}));
    let failed = sim.request("billing", "t-1", &req).await;
    assert_eq!(failed.status, 500, "{:?}", failed.body);
    assert_eq!(failed.body["type"], "urn:cpq:problem:transient-failure");
    let record = sim.key("billing", "t-1").await;
    assert_eq!(record["executions"], 0);
    assert_eq!(record["status"], "open");

    let retried = sim.request("billing", "t-1", &req).await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert!(!retried.replayed());
    let record = sim.key("billing", "t-1").await;
    assert_eq!(record["executions"], 1);
    assert_eq!(record["transient_failures"], 1);

    // The payload marker transient:2 fails the key's first two attempts, then lets it through.
    let marked = body(
        "activate",
        json!({"account": "A-2", "sim_force": "transient:2"}),
    );
    assert_eq!(sim.request("billing", "t-2", &marked).await.status, 500);
    assert_eq!(sim.request("billing", "t-2", &marked).await.status, 500);
    assert_eq!(sim.request("billing", "t-2", &marked).await.status, 200);
    assert_eq!(sim.request("billing", "t-2", &marked).await.status, 200);
    let record = sim.key("billing", "t-2").await;
    assert_eq!(record["executions"], 1);
    assert_eq!(record["transient_failures"], 2);

    let stats = sim.stats("billing").await;
    assert_eq!(stats["transient_failures_injected"], 3);
    assert_eq!(stats["executions"], 2);
    assert_eq!(stats["duplicate_executions"], 0);
}

#[tokio::test]
async fn a_timeout_executes_once_and_the_retry_gets_the_stored_answer() {
    let sim = Sim::start().await;
    sim.knobs("crm", json!({"timeout_delay_ms": 5000})).await;
    sim.force("crm", "timeout", 1).await;
    let req = body("open-ticket", json!({"customer": "C-1"}));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let err = impatient
        .post(sim.url("/systems/crm/requests"))
        .header("Idempotency-Key", "slow-1")
        .json(&req)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");

    // The system executed and kept its answer: the retry gets it at once.
    let retried = sim.request("crm", "slow-1", &req).await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert!(retried.replayed());
    assert!(retried.body["result"]["ticket_id"].is_string());
    let record = sim.key("crm", "slow-1").await;
    assert_eq!(record["executions"], 1);
    assert_eq!(record["timeouts"], 1);
    assert_eq!(record["request_id"], retried.body["request_id"]);
    assert_eq!(sim.stats("crm").await["timeouts_injected"], 1);
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_cut_the_execution_short() {
    let sim = Sim::start().await;
    // Slow: 10 x 600 ms, well past the caller's 300 ms timeout.
    sim.knobs(
        "inventory",
        json!({"mode": "slow", "latency_p50_ms": 600, "latency_p95_ms": 600}),
    )
    .await;
    let req = body("reserve", json!({"sku": "X"}));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = impatient
        .post(sim.url("/systems/inventory/requests"))
        .header("Idempotency-Key", "gave-up")
        .json(&req)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // While it executes, a retry is told so; once it is done, the retry gets its answer.
    let during = sim.request("inventory", "gave-up", &req).await;
    assert_eq!(during.status, 409, "{:?}", during.body);
    let mut after = during;
    for _ in 0..400 {
        after = sim.request("inventory", "gave-up", &req).await;
        if after.status != 409 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(after.status, 200, "{:?}", after.body);
    assert!(after.replayed());
    assert_eq!(sim.key("inventory", "gave-up").await["executions"], 1);
}

#[tokio::test]
async fn a_permanent_failure_is_stored_and_replayed() {
    let sim = Sim::start().await;
    let req = body(
        "reserve",
        json!({"site": "S-1", "sim_force": "permanent:INVALID_ADDRESS"}),
    );
    let rejected = sim.request("inventory", "p-1", &req).await;
    assert_eq!(rejected.status, 422, "{:?}", rejected.body);
    assert_eq!(rejected.content_type(), "application/problem+json");
    assert_eq!(rejected.body["code"], "INVALID_ADDRESS");
    assert_eq!(rejected.body["status"], 422);
    assert_eq!(
        rejected.body["type"],
        "urn:cpq:problem:business-rule-violated"
    );
    assert!(rejected.body["title"].is_string() && rejected.body["detail"].is_string());

    let replay = sim.request("inventory", "p-1", &req).await;
    assert_eq!(replay.status, 422);
    assert!(replay.replayed());
    assert_eq!(replay.body, rejected.body);
    assert_eq!(sim.key("inventory", "p-1").await["executions"], 1);

    // A random rejection carries one of the system's business codes.
    sim.knobs("billing", json!({"permanent_failure_rate": 1.0}))
        .await;
    let random = sim
        .request("billing", "p-2", &body("activate", json!({})))
        .await;
    assert_eq!(random.status, 422);
    let code = random.body["code"].as_str().unwrap();
    assert!(
        ["CREDIT_CHECK_FAILED", "INVALID_BILLING_ACCOUNT"].contains(&code),
        "{code}"
    );
    assert_eq!(
        sim.stats("inventory").await["permanent_failures_injected"],
        1
    );
    assert_eq!(sim.stats("billing").await["permanent_failures_injected"], 1);
}

#[tokio::test]
async fn down_answers_503_and_stores_nothing_until_it_is_up_again() {
    let sim = Sim::start().await;
    sim.knobs("notification", json!({"mode": "down"})).await;
    assert_eq!(
        sim.get("/admin/systems/notification").await.body["mode"],
        "down"
    );
    let req = body("send", json!({"to": "a@example.com"}));
    let down = sim.request("notification", "n-1", &req).await;
    assert_eq!(down.status, 503, "{:?}", down.body);
    assert_eq!(down.content_type(), "application/problem+json");
    assert!(down.headers.contains_key("retry-after"));
    // Even bad input is answered 503 while down, and nothing is stored.
    let bad = sim.request("notification", "n-2", &json!({})).await;
    assert_eq!(bad.status, 503);
    let list = sim.get("/admin/executions?system=notification").await;
    assert_eq!(list.body["executions"], json!([]));
    assert_eq!(sim.stats("notification").await["requests"], 0);

    sim.knobs("notification", json!({"mode": "up"})).await;
    let up = sim.request("notification", "n-1", &req).await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    assert!(!up.replayed());
    assert!(up.body["result"]["message_id"].is_string());
    assert_eq!(sim.key("notification", "n-1").await["executions"], 1);

    // Slow still answers, with the same semantics.
    sim.knobs("notification", json!({"mode": "slow"})).await;
    assert_eq!(sim.request("notification", "n-3", &req).await.status, 200);
}

#[tokio::test]
async fn an_asynchronous_request_is_called_back_signed_and_redelivered_after_a_500() {
    let sim = Sim::start().await;
    let (url, got) = receiver(1).await;
    let req = json!({
        "operation": "provision-access-line",
        "payload": {"site": "S-1"},
        "callback_url": url,
    });
    let accepted = sim.request("provisioning", "prov-1", &req).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    assert_eq!(accepted.body["status"], "accepted");
    let request_id = accepted.body["request_id"].clone();

    eventually("the callback to be redelivered after the 500", || {
        got.lock().unwrap().len() >= 2
    })
    .await;
    let deliveries = got.lock().unwrap().clone();
    let (headers, raw) = &deliveries[0];
    // Every delivery is the same signed bytes.
    assert_eq!(deliveries[1].1, *raw);
    let signature = headers["x-cpq-signature"].to_str().unwrap();
    assert!(cpq_sim::signature::verify(
        b"sim-secret-provisioning",
        raw,
        signature
    ));
    assert!(!cpq_sim::signature::verify(
        b"another-secret",
        raw,
        signature
    ));
    assert_eq!(headers["x-cpq-system"], "provisioning");
    let cb: Value = serde_json::from_slice(raw).unwrap();
    assert!(uuid::Uuid::parse_str(cb["callback_id"].as_str().unwrap()).is_ok());
    assert_eq!(cb["request_id"], request_id);
    assert_eq!(cb["idempotency_key"], "prov-1");
    assert_eq!(cb["system"], "provisioning");
    assert_eq!(cb["outcome"], "succeeded");
    assert!(cb["result"]["service_id"]
        .as_str()
        .unwrap()
        .starts_with("SVC-"));

    // Delivered once accepted, and not sent again.
    let mut delivered = Value::Null;
    for _ in 0..300 {
        delivered = sim.stats("provisioning").await;
        if delivered["callbacks_delivered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered["callbacks_delivered"], 1, "{delivered:?}");
    assert_eq!(delivered["callbacks_pending"], 0);
    assert_eq!(delivered["callback_delivery_attempts"], 2);

    // A replay of the request answers the stored 202 and owes no second callback.
    let replay = sim.request("provisioning", "prov-1", &req).await;
    assert_eq!(replay.status, 202);
    assert!(replay.replayed());
    assert_eq!(replay.body, accepted.body);
    let callbacks = sim.get("/admin/callbacks?system=provisioning").await;
    assert_eq!(callbacks.body["callbacks"].as_array().unwrap().len(), 1);
    assert_eq!(sim.key("provisioning", "prov-1").await["executions"], 1);
}

#[tokio::test]
async fn a_dropped_callback_is_never_sent_and_a_failed_one_carries_its_code() {
    let sim = Sim::start().await;
    let (url, got) = receiver(0).await;
    let dropped = json!({
        "operation": "provision",
        "payload": {"sim_force": "callback_drop"},
        "callback_url": url,
    });
    assert_eq!(
        sim.request("provisioning", "drop-1", &dropped).await.status,
        202
    );
    let failing = json!({
        "operation": "provision",
        "payload": {"sim_force": "callback_failed:NO_CAPACITY"},
        "callback_url": url,
    });
    let accepted = sim.request("provisioning", "fail-1", &failing).await;
    assert_eq!(accepted.status, 202);

    // Callbacks go out in the order they fell due: once the later one has arrived, the dropped
    // one would have too.
    eventually("the failed callback", || !got.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries = got.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 1, "only the failed callback arrives");
    let cb: Value = serde_json::from_slice(&deliveries[0].1).unwrap();
    assert_eq!(cb["idempotency_key"], "fail-1");
    assert_eq!(cb["outcome"], "failed");
    assert_eq!(cb["error"]["code"], "NO_CAPACITY");
    assert!(cb.get("result").is_none());

    let listed = sim
        .get("/admin/callbacks?system=provisioning&status=dropped")
        .await;
    let listed = listed.body["callbacks"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["attempts"], 0);
    let stats = sim.stats("provisioning").await;
    assert_eq!(stats["callbacks_dropped"], 1);
    assert_eq!(stats["permanent_failures_injected"], 1);
    assert_eq!(stats["executions"], 2);
}

#[tokio::test]
async fn the_reports_count_requests_executions_and_duplicates() {
    let sim = Sim::start().await;
    let req = body("reserve", json!({"n": 1}));
    for key in ["a", "b", "c"] {
        assert_eq!(sim.request("inventory", key, &req).await.status, 200);
    }
    assert_eq!(sim.request("inventory", "a", &req).await.status, 200);
    assert_eq!(sim.request("inventory", "a", &req).await.status, 200);
    sim.force("inventory", "transient", 1).await;
    assert_eq!(sim.request("inventory", "d", &req).await.status, 500);

    let stats = sim.stats("inventory").await;
    assert_eq!(stats["requests"], 6);
    assert_eq!(stats["executions"], 3);
    assert_eq!(stats["distinct_keys"], 4);
    assert_eq!(stats["duplicate_executions"], 0);
    assert_eq!(stats["transient_failures_injected"], 1);
    let all = sim.get("/admin/stats").await;
    assert_eq!(all.body["total"]["executions"], 3);
    assert_eq!(all.body["systems"]["crm"]["requests"], 0);
    let duplicates = sim.get("/admin/executions?duplicates_only=true").await;
    assert_eq!(duplicates.status, 200);
    assert_eq!(duplicates.body["executions"], json!([]));

    // The simulator itself never executes a key twice, so the duplicate is written into its
    // table directly: the reports must show it.
    let pool = sim.db.owner_pool().await;
    sqlx::query("UPDATE sim_request SET executions = 3 WHERE system = 'inventory' AND idempotency_key = 'b'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let duplicates = sim
        .get("/admin/executions?system=inventory&duplicates_only=true")
        .await;
    let rows = duplicates.body["executions"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["idempotency_key"], "b");
    assert_eq!(rows[0]["executions"], 3);
    let stats = sim.stats("inventory").await;
    assert_eq!(stats["duplicate_executions"], 2);
    assert_eq!(stats["keys_executed_more_than_once"], 1);

    // Reset forgets it all and restores the initial knobs.
    sim.knobs("inventory", json!({"mode": "slow"})).await;
    let reset = sim.post("/admin/reset", &json!({})).await;
    assert_eq!(reset.status, 204);
    assert_eq!(sim.stats("inventory").await["requests"], 0);
    assert_eq!(sim.get("/admin/systems/inventory").await.body["mode"], "up");
    assert_eq!(sim.request("inventory", "a", &req).await.status, 200);
    assert_eq!(sim.key("inventory", "a").await["executions"], 1);
}

#[tokio::test]
async fn bad_input_gets_a_problem_naming_the_field_and_stores_nothing() {
    let sim = Sim::start().await;
    let unknown = sim.request("erp", "k", &body("x", json!({}))).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.content_type(), "application/problem+json");
    assert_eq!(unknown.body["type"], "urn:cpq:problem:not-found");

    let no_key = sim
        .client
        .post(sim.url("/systems/inventory/requests"))
        .json(&body("reserve", json!({})))
        .send()
        .await
        .unwrap();
    let no_key = support::Answer::read(no_key).await;
    assert_eq!(no_key.status, 400);
    assert_eq!(no_key.error_fields(), vec!["Idempotency-Key"]);

    let not_json = sim
        .client
        .post(sim.url("/systems/inventory/requests"))
        .header("Idempotency-Key", "k")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(support::Answer::read(not_json).await.status, 400);

    let cases = [
        ("inventory", json!({"payload": {}}), "operation"),
        ("inventory", json!({"operation": "x"}), "payload"),
        (
            "inventory",
            json!({"operation": "x", "payload": {}, "extra": 1}),
            "extra",
        ),
        (
            "provisioning",
            json!({"operation": "x", "payload": {}}),
            "callback_url",
        ),
        (
            "inventory",
            json!({"operation": "x", "payload": {"sim_force": "explode"}}),
            "payload.sim_force",
        ),
        (
            "inventory",
            json!({"operation": "x", "payload": {}, "callback_url": "not a url"}),
            "callback_url",
        ),
    ];
    for (system, bad, field) in cases {
        let a = sim.request(system, "k", &bad).await;
        assert_eq!(a.status, 422, "{bad}: {:?}", a.body);
        assert_eq!(a.body["type"], "urn:cpq:problem:validation-failed");
        assert_eq!(a.error_fields(), vec![field], "{bad}");
    }

    let bad_knobs = sim
        .put(
            "/admin/systems/billing",
            &json!({"transient_failure_rate": 2, "colour": "red"}),
        )
        .await;
    assert_eq!(bad_knobs.status, 422);
    let fields = bad_knobs.error_fields();
    assert!(fields.contains(&"colour".to_owned()), "{fields:?}");
    assert_eq!(
        sim.get("/admin/systems/billing").await.body["transient_failure_rate"],
        0.0
    );
    let bad_force = sim
        .post(
            "/admin/systems/billing/force",
            &json!({"outcome": "explode"}),
        )
        .await;
    assert_eq!(bad_force.status, 422);
    assert_eq!(bad_force.error_fields(), vec!["outcome"]);
    let bad_query = sim.get("/admin/executions?duplicates_only=maybe").await;
    assert_eq!(bad_query.status, 400);
    assert_eq!(bad_query.error_fields(), vec!["duplicates_only"]);

    // Nothing was stored by any of it: the same key is new.
    assert_eq!(sim.get("/admin/stats").await.body["total"]["requests"], 0);
    let first = sim
        .request("inventory", "k", &body("reserve", json!({})))
        .await;
    assert_eq!(first.status, 200);
    assert!(!first.replayed());
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let sim = Sim::start().await;
    assert_eq!(sim.get("/health/live").await.status, 200);
    assert_eq!(sim.get("/health/ready").await.status, 200);
    assert_eq!(
        sim.request("crm", "m-1", &body("open-ticket", json!({})))
            .await
            .status,
        200
    );
    let metrics = sim
        .client
        .get(sim.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sim_requests_total{system=\"crm\",answer=\"executed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sim_system_mode{system=\"provisioning\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds"),
        "{metrics}"
    );
}
