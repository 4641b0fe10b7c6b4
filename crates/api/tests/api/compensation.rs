//! Compensation over HTTP (issue 16), on a Modeler-style file
//! (`tests/fixtures/order-compensation.bpmn`): when the carrier refuses, the compensation end
//! event refunds the payment and then releases each reserved line (a multi-instance task, one
//! handler per completed instance), one at a time, latest first; an order that ships compensates
//! nothing.

use serde_json::json;

use crate::process_run::{assert_completed_cleanly, job_trail, Run};

fn file() -> String {
    std::fs::read_to_string(
        cpq_testkit::repo_root().join("crates/api/tests/fixtures/order-compensation.bpmn"),
    )
    .unwrap()
}

#[tokio::test]
async fn a_refused_shipment_refunds_the_payment_then_releases_every_reserved_line() {
    let run = Run::deploy(&file()).await;
    let order = run
        .start("orderCompensation", json!({ "lines": ["A", "B"] }))
        .await;
    for line in ["A", "B"] {
        let reserve = run.job("comp-reserve").await;
        assert_eq!(reserve["variables"]["line"], line);
        run.complete(&reserve, json!({})).await;
    }
    let charge = run.job("comp-charge").await;
    run.complete(&charge, json!({ "paymentId": "pay-1" })).await;
    let ship = run.job("comp-ship").await;
    run.throw_error(&ship, "CARRIER_REFUSED", "no slot", json!({}))
        .await;

    assert!(
        run.jobs("comp-release").await.is_empty(),
        "one handler at a time: the refund first"
    );
    let refund = run.job("comp-refund").await;
    assert_eq!(refund["variables"]["paymentId"], "pay-1");
    run.complete(&refund, json!({})).await;
    for _ in 0..2 {
        let release = run.job("comp-release").await;
        run.complete(&release, json!({})).await;
    }
    let detail = run.instance(&order).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "comp-reserve@Task_reserve: completed",
            "comp-reserve@Task_reserve: completed",
            "comp-charge@Task_charge: completed",
            "comp-ship@Task_ship: error-thrown",
            "comp-refund@Task_refund: completed",
            "comp-release@Task_release: completed",
            "comp-release@Task_release: completed",
        ]
    );
}

#[tokio::test]
async fn a_shipped_order_compensates_nothing() {
    let run = Run::deploy(&file()).await;
    let order = run
        .start("orderCompensation", json!({ "lines": ["A"] }))
        .await;
    let done = run
        .drive(
            &order,
            &["comp-reserve", "comp-charge", "comp-ship"],
            |_, _| json!({}),
        )
        .await;
    assert_eq!(done, ["comp-reserve", "comp-charge", "comp-ship"]);
    assert!(run.jobs("comp-refund").await.is_empty());
    assert!(run.jobs("comp-release").await.is_empty());
    assert_completed_cleanly(&run.instance(&order).await);
}
