//! Conversion of an accepted quote into exactly one order: the order from the snapshot, the
//! fulfillment process started with it, 409 naming the order for any second conversion (64 at
//! once included), the original response for a retry with the same key, and the snapshot check.

use reqwest::StatusCode;
use serde_json::json;

use crate::approvals::{command, priced_quote, sales_platform};
use crate::helpers::*;

/// An accepted, approval-free quote: (id, version).
async fn accepted_quote(app: &crate::support::TestApp, sales: &str) -> (String, i64) {
    let (id, v) = priced_quote(app, sales, "5").await;
    let submitted = command(app, sales, &format!("/v1/quotes/{id}/submit"), v, json!({})).await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    let accepted = command(
        app,
        sales,
        &format!("/v1/quotes/{id}/accept"),
        v + 1,
        json!({}),
    )
    .await;
    assert_eq!(accepted.body["status"], "accepted", "{}", accepted.body);
    (id, v + 2)
}

async fn convert(
    app: &crate::support::TestApp,
    sales: &str,
    id: &str,
    version: i64,
    key: &str,
) -> Answer {
    let req = app
        .client
        .post(app.url(&format!("/v1/quotes/{id}/convert")))
        .bearer_for(sales)
        .header("If-Match", format!("\"{version}\""))
        .header("Idempotency-Key", key)
        .json(&json!({}));
    Answer::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn an_accepted_quote_becomes_one_order_with_its_fulfillment_started() {
    let (app, sales) = sales_platform().await;
    let (draft, v) = priced_quote(&app, &sales, "5").await;
    let refused = convert(&app, &sales, &draft, v, "early").await;
    refused.assert_problem(409, "conflict");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("allowed"),
        "{}",
        refused.body
    );

    let (id, v) = accepted_quote(&app, &sales).await;
    let quote = get(&app, &sales, &format!("/v1/quotes/{id}")).await;
    let order = convert(&app, &sales, &id, v, "convert-1").await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let order_id = order.body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(
        order.header("location"),
        Some(format!("/v1/orders/{order_id}").as_str())
    );
    assert_eq!(order.body["snapshot_hash"], quote.body["snapshot_hash"]);
    assert_eq!(order.body["totals"], quote.body["price_snapshot"]["totals"]);
    assert_eq!(order.body["items"][0]["offering_code"], "CLOUD-BACKUP");
    assert_eq!(
        order.body["items"][0]["price"],
        quote.body["price_snapshot"]["lines"][0]
    );
    let instance = order.body["fulfillment_instance_id"].as_str().unwrap();
    assert_eq!(count(&app, &format!("SELECT count(*) FROM process_instance WHERE process_instance_id = '{instance}' AND bpmn_process_id = 'order-fulfillment' AND status = 'active'")).await, 1);
    let converted = get(&app, &sales, &format!("/v1/quotes/{id}")).await;
    assert_eq!(
        (
            converted.body["status"].as_str(),
            converted.body["order_id"].as_str()
        ),
        (Some("converted"), Some(order_id.as_str()))
    );
    assert_eq!(
        get(&app, &sales, &format!("/v1/orders/{order_id}"))
            .await
            .body,
        order.body
    );

    // A retry with the same key gets the original response; a new key gets 409 naming the order.
    let replay = convert(&app, &sales, &id, v, "convert-1").await;
    assert_eq!(
        (replay.status, &replay.body),
        (StatusCode::CREATED, &order.body)
    );
    let again = convert(&app, &sales, &id, v, "convert-2").await;
    again.assert_problem(409, "conflict");
    assert_eq!(again.body["existing"], format!("/v1/orders/{order_id}"));
    assert_eq!(count(&app, "SELECT count(*) FROM sales_order").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_event WHERE event_type IN ('quote.converted', 'order.created')").await, 2);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_record WHERE action = 'order.create'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn sixty_four_concurrent_conversions_with_different_keys_make_exactly_one_order() {
    let (app, sales) = sales_platform().await;
    let (id, v) = accepted_quote(&app, &sales).await;
    let attempts = (0..64).map(|i| {
        let (app, sales, id) = (&app, sales.clone(), id.clone());
        async move { convert(app, &sales, &id, v, &format!("race-{i}")).await }
    });
    let answers = futures::future::join_all(attempts).await;
    let created: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let order_id = created[0].body["order_id"].as_str().unwrap();
    for a in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        a.assert_problem(409, "conflict");
        assert_eq!(
            a.body["existing"],
            format!("/v1/orders/{order_id}"),
            "{}",
            a.body
        );
    }
    assert_eq!(count(&app, "SELECT count(*) FROM sales_order").await, 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM process_instance WHERE bpmn_process_id = 'order-fulfillment'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_event WHERE event_type = 'order.created'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_snapshot_that_no_longer_matches_its_hash_is_not_converted() {
    let (app, sales) = sales_platform().await;
    let (id, v) = accepted_quote(&app, &sales).await;
    // Tamper with the stored snapshot behind the application's back.
    let owner = app.db.owner_pool().await;
    sqlx::query("UPDATE quote SET price_snapshot = jsonb_set(price_snapshot, '{totals,one_time,net}', '\"0.01\"') WHERE quote_id = $1::uuid").bind(&id).execute(&owner).await.unwrap();
    owner.close().await;
    let refused = convert(&app, &sales, &id, v, "tampered").await;
    refused.assert_problem(409, "conflict");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("no longer matches its hash"),
        "{}",
        refused.body
    );
    assert_eq!(count(&app, "SELECT count(*) FROM sales_order").await, 0);
    assert_eq!(
        get(&app, &sales, &format!("/v1/quotes/{id}")).await.body["status"],
        "accepted"
    );
}
