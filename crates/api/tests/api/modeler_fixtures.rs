//! The other five shared Camunda Modeler fixtures (issue 16) run to their end over HTTP, worked
//! as their own applications work them: jobs through the job API (completed, failed and retried,
//! or ending in a BPMN error), messages published, native user tasks completed by a person,
//! timers left to fire. Each test runs the model's usual path and its other branches, each in
//! its own instance, and asserts the jobs that ran in order, the variables at the end, and that
//! no incident was raised. Where the engine departs from Zeebe, the Zeebe behaviour is asserted
//! in a test of its own (named for it) after the fixture's main test.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::process_run::{
    active_elements, assert_completed_cleanly, commands, fixture, job_trail, Reply, Run,
};

/// The job type Zeebe gives a user task without `zeebe:userTask` (a job-based user task).
const USER_TASK_JOB: &str = "io.camunda.zeebe:userTask";

// ---------------------------------------------------------------------------------------------
// c8ex--payment_process.bpmn: customer credit first, the credit card for the rest; an expired
// card is an error caught on the charge, a person checks the payment data and either resolves it
// (the card is charged again) or the payment fails.

/// Starts a payment that no credit covers and whose card charge fails as expired (the error
/// boundary event takes it to the clerk's check); the instance.
async fn start_with_an_expired_card(run: &Run, variables: Value) -> String {
    let instance = run.start("paymentProcess", variables).await;
    let credit = run.job("customerCreditHandling").await;
    run.complete(
        &credit,
        json!({ "customerCredit": 0.0, "remainingAmount": 100.0 }),
    )
    .await;
    let charge = run.job("creditCardCharging").await;
    run.throw_error(
        &charge,
        "creditCardError",
        "card expired",
        json!({ "errorMessage": "Credit card expired 05/23" }),
    )
    .await;
    instance
}

#[tokio::test]
async fn the_payment_fixture_charges_the_card_for_what_credit_leaves_open_and_checks_payment_data_after_a_card_error(
) {
    let run = Run::deploy(&fixture("c8ex--payment_process.bpmn")).await;

    // Credit covers part of it: the card is charged the remaining amount.
    let partly = run
        .start(
            "paymentProcess",
            json!({ "customerId": "cust-7", "orderTotal": 190.0, "expiryDate": "10/29" }),
        )
        .await;
    let credit = run.job("customerCreditHandling").await;
    assert_eq!(credit["element_id"], "ChargeCustomerCreditTask");
    assert_eq!(credit["variables"]["customerId"], "cust-7", "{credit}");
    assert_eq!(credit["variables"]["orderTotal"].as_f64(), Some(190.0));
    run.complete(
        &credit,
        json!({ "customerCredit": 100.0, "remainingAmount": 90.0 }),
    )
    .await;
    let charge = run.job("creditCardCharging").await;
    assert_eq!(
        charge["variables"]["openAmount"].as_f64(),
        Some(90.0),
        "the input mapping openAmount = remainingAmount: {charge}"
    );
    assert_eq!(charge["variables"]["expiryDate"], "10/29");
    run.complete(&charge, json!({})).await;
    let detail = run.instance(&partly).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "customerCreditHandling@ChargeCustomerCreditTask: completed",
            "creditCardCharging@ChargeCreditCardTask: completed"
        ]
    );
    assert_eq!(detail["variables"]["remainingAmount"].as_f64(), Some(90.0));
    assert!(
        detail["variables"].get("openAmount").is_none(),
        "an input mapping is local to its task: {detail}"
    );

    // Credit covers it all: no card payment (the "yes" flow through the throw event).
    let covered = run
        .start(
            "paymentProcess",
            json!({ "customerId": "cust-8", "orderTotal": 50.0 }),
        )
        .await;
    let credit = run.job("customerCreditHandling").await;
    run.complete(
        &credit,
        json!({ "customerCredit": 50.0, "remainingAmount": 0.0 }),
    )
    .await;
    let detail = run.instance(&covered).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        ["customerCreditHandling@ChargeCustomerCreditTask: completed"],
        "no credit card charge"
    );
    assert_eq!(detail["variables"]["remainingAmount"].as_f64(), Some(0.0));

    // An expired card: the error boundary maps the worker's errorMessage, a clerk fixes the
    // expiry date and the card is charged again.
    let mut variables = json!({ "customerId": "cust-9", "orderTotal": 100.0, "cardNumber": "1234 5678",
                                "cvc": "123", "expiryDate": "05/23" });
    let resolved = start_with_an_expired_card(&run, variables.clone()).await;
    let task = run
        .complete_user_task(
            &resolved,
            "clerk-ann",
            json!({ "errorResolved": true, "expiryDate": "05/27" }),
        )
        .await;
    assert_eq!(task["element_id"], "CheckPaymentDataTask", "{task}");
    assert_eq!(task["name"], "Check payment data");
    assert_eq!(
        task["variables"]["creditCardErrorMessage"], "Credit card expired 05/23",
        "the boundary event's output mapping: {task}"
    );
    let again = run.job("creditCardCharging").await;
    assert_eq!(again["variables"]["expiryDate"], "05/27", "{again}");
    assert_eq!(again["variables"]["openAmount"].as_f64(), Some(100.0));
    run.complete(&again, json!({})).await;
    let detail = run.instance(&resolved).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "customerCreditHandling@ChargeCustomerCreditTask: completed",
            "creditCardCharging@ChargeCreditCardTask: error-thrown",
            "creditCardCharging@ChargeCreditCardTask: completed"
        ]
    );
    assert_eq!(
        detail["variables"]["creditCardErrorMessage"],
        "Credit card expired 05/23"
    );
    assert_eq!(detail["variables"]["errorResolved"], true);
    assert_eq!(detail["variables"]["expiryDate"], "05/27");
    assert!(
        detail["variables"].get("errorMessage").is_none(),
        "the error's variables stay local to a catch event with output mappings: {detail}"
    );

    // An expired card nobody can fix: the payment fails.
    variables["customerId"] = json!("cust-10");
    let failed = start_with_an_expired_card(&run, variables).await;
    run.complete_user_task(&failed, "clerk-ann", json!({ "errorResolved": false }))
        .await;
    let detail = run.instance(&failed).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "customerCreditHandling@ChargeCustomerCreditTask: completed",
            "creditCardCharging@ChargeCreditCardTask: error-thrown"
        ],
        "not charged again"
    );
    assert_eq!(detail["variables"]["errorResolved"], false);
    assert!(run.jobs("creditCardCharging").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// c8ex--migratedProcess.bpmn: a send task starts the old (Camunda 7) process, three tasks run,
// and the old process's completion message (correlated by callbackId) ends it, whether it comes
// after the catch event is reached or before (buffered).

const MIGRATED_TASKS: &[&str] = &["startOldProcess", "firstTask", "sharedTask", "anotherTask"];

fn migrated_worker(callback: &'static str) -> impl FnMut(&str, &Value) -> Value {
    move |t: &str, vars: &Value| match t {
        "startOldProcess" => json!({ "callbackId": callback }),
        "firstTask" => json!({ "someText": "Hello" }),
        "sharedTask" => {
            assert_eq!(vars["someText"], "Hello", "{vars}");
            json!({ "someOtherText": "Hello, world" })
        }
        _ => {
            assert_eq!(vars["someOtherText"], "Hello, world", "{vars}");
            json!({ "lastText": "Hello, world!" })
        }
    }
}

#[tokio::test]
async fn the_migrated_process_fixture_runs_its_tasks_and_ends_on_the_old_process_message_early_or_late(
) {
    let run = Run::deploy(&fixture("c8ex--migratedProcess.bpmn")).await;

    // The message comes once the instance waits for it.
    let late = run.start("MigratedProcessProcess", json!({})).await;
    let done = run.work(MIGRATED_TASKS, migrated_worker("cb-1")).await;
    assert_eq!(done, MIGRATED_TASKS);
    let waiting = run.instance(&late).await;
    assert_eq!(waiting["status"], "active", "{waiting}");
    assert_eq!(
        active_elements(&waiting),
        ["OldProcessIsDoneEvent"],
        "waits for the message"
    );
    assert_eq!(
        run.publish("oldProcessComplete", "cb-other", 0, json!({}))
            .await["outcome"],
        "dropped",
        "another callback's message is not this instance's"
    );
    let published = run
        .publish("oldProcessComplete", "cb-1", 3_600_000, json!({}))
        .await;
    assert_eq!(published["outcome"], "correlated", "{published}");
    assert_eq!(published["process_instance_id"], late.as_str());
    let detail = run.instance(&late).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "startOldProcess@StartOldProcessTask: completed",
            "firstTask@FirstTaskTask: completed",
            "sharedTask@SharedTaskTask: completed",
            "anotherTask@AnotherTaskTask: completed"
        ]
    );
    assert_eq!(detail["variables"]["callbackId"], "cb-1");
    assert_eq!(detail["variables"]["lastText"], "Hello, world!");

    // The old process is done first: its message waits (time to live) for the catch event.
    let early = run.start("MigratedProcessProcess", json!({})).await;
    let mut worker = migrated_worker("cb-2");
    assert_eq!(
        run.work(&MIGRATED_TASKS[..1], &mut worker).await,
        ["startOldProcess"]
    );
    let published = run
        .publish("oldProcessComplete", "cb-2", 3_600_000, json!({}))
        .await;
    assert_eq!(published["outcome"], "buffered", "{published}");
    assert_eq!(run.instance(&early).await["status"], "active");
    assert_eq!(
        run.work(&MIGRATED_TASKS[1..], &mut worker).await,
        ["firstTask", "sharedTask", "anotherTask"]
    );
    let detail = run.instance(&early).await;
    assert_completed_cleanly(&detail);
    assert_eq!(job_trail(&detail).len(), 4, "{detail}");
    assert_eq!(detail["variables"]["callbackId"], "cb-2");
    assert_eq!(
        count(
            &run.app,
            "SELECT count(*) FROM message WHERE correlation_key = 'cb-2' AND correlated_at IS NOT NULL"
        )
        .await,
        1,
        "the buffered message was taken"
    );
}

// ---------------------------------------------------------------------------------------------
// c8ex--twitter.bpmn: the boss reviews a tweet (a job-based user task); approved, it is
// published, else the author is told; a duplicate (an error on publishing) goes back to the
// author and then to review again.

fn review_of(tweet: &str) -> Value {
    json!({ "tweet": tweet, "author": "bernd", "boss": "zeebot" })
}

#[tokio::test]
async fn the_twitter_fixture_publishes_an_approved_tweet_rejects_another_and_sends_a_duplicate_back_for_review(
) {
    let run = Run::deploy(&fixture("c8ex--twitter.bpmn")).await;

    // Approved and published.
    let approved = run
        .start(
            "TwitterDemoProcess",
            review_of("Camunda 8 runs this tweet review"),
        )
        .await;
    let review = run.job(USER_TASK_JOB).await;
    assert_eq!(review["element_id"], "user_task_review_tweet", "{review}");
    assert_eq!(
        review["variables"]["tweet"],
        "Camunda 8 runs this tweet review"
    );
    run.complete(&review, json!({ "approved": true })).await;
    let publish = run.job("publish-tweet").await;
    run.complete(&publish, json!({ "tweetId": "1001" })).await;
    let detail = run.instance(&approved).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "io.camunda.zeebe:userTask@user_task_review_tweet: completed",
            "publish-tweet@service_task_publish_on_twitter: completed"
        ]
    );
    assert_eq!(detail["variables"]["approved"], true);
    assert_eq!(detail["variables"]["tweetId"], "1001");

    // Rejected: the author is told, nothing is published.
    let rejected = run
        .start("TwitterDemoProcess", review_of("Tweets are for the weak"))
        .await;
    let review = run.job(USER_TASK_JOB).await;
    run.complete(&review, json!({ "approved": false })).await;
    let rejection = run.job("send-rejection").await;
    assert_eq!(rejection["variables"]["author"], "bernd");
    run.complete(&rejection, json!({})).await;
    let detail = run.instance(&rejected).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "io.camunda.zeebe:userTask@user_task_review_tweet: completed",
            "send-rejection@service_task_send_rejection_notification: completed"
        ]
    );
    assert_eq!(detail["variables"]["approved"], false);

    // A duplicate: Twitter refuses it, the author rewrites it, the boss reviews it again.
    let duplicate = run
        .start("TwitterDemoProcess", review_of("Hello world"))
        .await;
    let review = run.job(USER_TASK_JOB).await;
    run.complete(&review, json!({ "approved": true })).await;
    let publish = run.job("publish-tweet").await;
    run.throw_error(
        &publish,
        "duplicateMessage",
        "Status is a duplicate",
        json!({}),
    )
    .await;
    let handle = run.job(USER_TASK_JOB).await;
    assert_eq!(
        handle["element_id"], "user_task_handle_duplicate",
        "{handle}"
    );
    run.complete(&handle, json!({ "tweet": "Hello world, again" }))
        .await;
    let review = run.job(USER_TASK_JOB).await;
    assert_eq!(review["element_id"], "user_task_review_tweet", "{review}");
    assert_eq!(review["variables"]["tweet"], "Hello world, again");
    run.complete(&review, json!({ "approved": true })).await;
    let publish = run.job("publish-tweet").await;
    run.complete(&publish, json!({ "tweetId": "1002" })).await;
    let detail = run.instance(&duplicate).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "io.camunda.zeebe:userTask@user_task_review_tweet: completed",
            "publish-tweet@service_task_publish_on_twitter: error-thrown",
            "io.camunda.zeebe:userTask@user_task_handle_duplicate: completed",
            "io.camunda.zeebe:userTask@user_task_review_tweet: completed",
            "publish-tweet@service_task_publish_on_twitter: completed"
        ]
    );
    assert_eq!(detail["variables"]["tweet"], "Hello world, again");
    assert_eq!(detail["variables"]["tweetId"], "1002");
}

/// Zeebe gives a job-based user task's job its assignment as custom headers (the assignee
/// expression's value under `io.camunda.zeebe:assignee`), which is how Tasklist or a custom task
/// list learns whose task it is; the twitter model assigns the review to `=boss` and the
/// duplicate to `=author`.
#[tokio::test]
async fn the_twitter_fixture_s_job_based_user_tasks_carry_their_assignee_as_zeebe_does() {
    let run = Run::deploy(&fixture("c8ex--twitter.bpmn")).await;
    let instance = run
        .start("TwitterDemoProcess", review_of("Hello world"))
        .await;
    let review = run.job(USER_TASK_JOB).await;
    assert_eq!(
        review["custom_headers"]["io.camunda.zeebe:assignee"], "zeebot",
        "{review}"
    );
    run.complete(&review, json!({ "approved": true })).await;
    let publish = run.job("publish-tweet").await;
    run.throw_error(
        &publish,
        "duplicateMessage",
        "Status is a duplicate",
        json!({}),
    )
    .await;
    let handle = run.job(USER_TASK_JOB).await;
    assert_eq!(
        handle["custom_headers"]["io.camunda.zeebe:assignee"], "bernd",
        "{handle}"
    );
    run.complete(&handle, json!({})).await;
    let review = run.job(USER_TASK_JOB).await;
    run.complete(&review, json!({ "approved": false })).await;
    let rejection = run.job("send-rejection").await;
    run.complete(&rejection, json!({})).await;
    assert_completed_cleanly(&run.instance(&instance).await);
}

// ---------------------------------------------------------------------------------------------
// flowing-retail--payment.bpmn: started by the RetrievePaymentCommand message (correlated by
// the trace id); the customer credit is deducted, an event emitted, and the payment-complete
// gateway always takes the "payment received" end (its other flow is `=false`, so the credit
// card charge, its error boundary and the 7-day timer are never reached).

fn retrieve_payment(trace: &str, amount: f64) -> Value {
    json!({ "amount": amount, "remainingAmount": amount, "refId": format!("order-{trace}"),
            "correlationId": format!("corr-{trace}"), "traceId": trace })
}

/// Works one payment instance to its end, asserting what each job sees.
async fn receive_payment(run: &Run, instance: &str, trace: &str) -> Vec<String> {
    run.drive(
        instance,
        &["noop", "emitEvent", "paymentReceived"],
        |t, vars| {
            assert_eq!(vars["traceId"], trace, "{t}: {vars}");
            if t == "paymentReceived" {
                assert_eq!(vars["refId"], format!("order-{trace}"), "{vars}");
                assert_eq!(vars["correlationId"], format!("corr-{trace}"), "{vars}");
            }
            json!({})
        },
    )
    .await
}

#[tokio::test]
async fn the_flowing_retail_payment_fixture_starts_by_message_and_ends_with_payment_received() {
    let run = Run::deploy(&fixture("flowing-retail--payment.bpmn")).await;
    let started = run
        .publish(
            "RetrievePaymentCommand",
            "trace-1",
            3_600_000,
            retrieve_payment("trace-1", 49.9),
        )
        .await;
    assert_eq!(started["outcome"], "started_instance", "{started}");
    let instance = started["process_instance_id"].as_str().unwrap().to_owned();

    // The throw event's job carries its headers.
    let deduct = run.job("noop").await;
    assert_eq!(deduct["element_id"], "Task_0e2306u", "{deduct}");
    run.complete(&deduct, json!({})).await;
    let emit = run.job("emitEvent").await;
    assert_eq!(emit["element_id"], "CustomerCreditUsedEvent");
    assert_eq!(
        emit["custom_headers"],
        json!({ "eventName": "CustomerCreditUsed" })
    );
    run.complete(&emit, json!({})).await;
    let done = receive_payment(&run, &instance, "trace-1").await;
    assert_eq!(done, ["paymentReceived"]);

    let detail = run.instance(&instance).await;
    assert_completed_cleanly(&detail);
    assert_eq!(detail["bpmn_process_id"], "payment");
    assert_eq!(
        job_trail(&detail),
        [
            "noop@Task_0e2306u: completed",
            "emitEvent@CustomerCreditUsedEvent: completed",
            "paymentReceived@EndEvent_0769is9: completed"
        ],
        "the `=false` flow to the credit card charge is never taken"
    );
    assert_eq!(detail["variables"]["refId"], "order-trace-1");
    assert_eq!(detail["variables"]["remainingAmount"].as_f64(), Some(49.9));
    assert_eq!(
        count(&run.app, "SELECT count(*) FROM timer").await,
        0,
        "the 7-day timer was never armed"
    );

    // Another order's command starts another payment.
    let second = run
        .publish(
            "RetrievePaymentCommand",
            "trace-2",
            3_600_000,
            retrieve_payment("trace-2", 10.0),
        )
        .await;
    assert_eq!(second["outcome"], "started_instance", "{second}");
    let other = second["process_instance_id"].as_str().unwrap().to_owned();
    assert_ne!(other, instance);
    assert_eq!(
        receive_payment(&run, &other, "trace-2").await,
        ["noop", "emitEvent", "paymentReceived"]
    );
    assert_completed_cleanly(&run.instance(&other).await);
}

/// Zeebe starts at most one instance per correlation key from a message start event: a second
/// RetrievePaymentCommand with the same trace id (a redelivered command) while that payment runs
/// starts nothing and is buffered; once the payment ends, the buffered command starts the next.
#[tokio::test]
async fn the_flowing_retail_payment_fixture_starts_one_payment_per_trace_id_at_a_time_as_zeebe_does(
) {
    let run = Run::deploy(&fixture("flowing-retail--payment.bpmn")).await;
    let first = run
        .publish(
            "RetrievePaymentCommand",
            "trace-9",
            3_600_000,
            retrieve_payment("trace-9", 20.0),
        )
        .await;
    assert_eq!(first["outcome"], "started_instance", "{first}");
    let instance = first["process_instance_id"].as_str().unwrap().to_owned();
    let again = run
        .publish(
            "RetrievePaymentCommand",
            "trace-9",
            3_600_000,
            retrieve_payment("trace-9", 20.0),
        )
        .await;
    assert_eq!(
        again["outcome"], "buffered",
        "an instance started by this correlation key is active: {again}"
    );
    let payments = "SELECT count(*) FROM process_instance WHERE bpmn_process_id = 'payment'";
    assert_eq!(count(&run.app, payments).await, 1);
    receive_payment(&run, &instance, "trace-9").await;
    assert_completed_cleanly(&run.instance(&instance).await);
    assert_eq!(
        count(&run.app, payments).await,
        2,
        "the buffered command starts the next payment once the first ended"
    );
}

// ---------------------------------------------------------------------------------------------
// ticket-booking--ticket-booking.bpmn: seats are reserved (or not: an error ends the booking),
// payment is requested and its confirmation awaited for 30 seconds (a message correlated by the
// payment request id, or the timer cancels the booking), then the ticket is generated (with
// retries).

#[tokio::test]
async fn the_ticket_booking_fixture_books_a_ticket_and_cancels_without_seats_or_without_payment() {
    let run = Run::deploy(&fixture("ticket-booking--ticket-booking.bpmn")).await;

    // Booked: seats, payment confirmed within 30 seconds, ticket generated on the second try.
    let booked = run
        .start(
            "ticket-booking",
            json!({ "bookingReferenceId": "booking-1" }),
        )
        .await;
    let reserve = run.job("reserve-seats").await;
    assert_eq!(reserve["variables"]["bookingReferenceId"], "booking-1");
    run.complete(&reserve, json!({ "reservationId": "reservation-1" }))
        .await;
    let payment = run.job("retrieve-payment").await;
    run.complete(&payment, json!({ "paymentRequestId": "payment-request-1" }))
        .await;
    assert_eq!(
        active_elements(&run.instance(&booked).await),
        ["Activity_0h19mxb"],
        "waits for the payment"
    );
    assert_eq!(
        count(
            &run.app,
            &format!(
                "SELECT count(*) FROM timer WHERE process_instance_id = '{booked}' AND event_id = 'Event_1ywtp2y' \
                 AND due_at BETWEEN now() + interval '20 seconds' AND now() + interval '31 seconds'"
            )
        )
        .await,
        1,
        "the receive task waits 30 seconds"
    );
    let confirmed = run
        .publish(
            "msg-payment-received",
            "payment-request-1",
            0,
            json!({ "paymentConfirmationId": "confirmation-1" }),
        )
        .await;
    assert_eq!(confirmed["outcome"], "correlated", "{confirmed}");
    assert_eq!(confirmed["process_instance_id"], booked.as_str());
    assert_eq!(
        count(&run.app, "SELECT count(*) FROM timer").await,
        0,
        "the timer went with the receive task"
    );
    let ticket = run.job("generate-ticket").await;
    assert_eq!(ticket["retries"], 3, "retries=\"3\" on the task: {ticket}");
    assert_eq!(
        ticket["variables"]["paymentConfirmationId"],
        "confirmation-1"
    );
    run.fail(&ticket, 2, "ticket service unavailable").await;
    let retried = run.job("generate-ticket").await;
    assert_eq!(retried["job_id"], ticket["job_id"], "the same job, again");
    assert_eq!(retried["retries"], 2);
    run.complete(&retried, json!({ "ticketId": "ticket-1" }))
        .await;
    let detail = run.instance(&booked).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        [
            "reserve-seats@Activity_1g89uec: completed",
            "retrieve-payment@Activity_0lox1kf: completed",
            "generate-ticket@Activity_0etdda4: completed"
        ]
    );
    for (name, value) in [
        ("reservationId", "reservation-1"),
        ("paymentConfirmationId", "confirmation-1"),
        ("ticketId", "ticket-1"),
    ] {
        assert_eq!(detail["variables"][name], value, "{detail}");
    }

    // No seats: the error boundary cancels the booking before any payment.
    let no_seats = run
        .start(
            "ticket-booking",
            json!({ "bookingReferenceId": "booking-2", "simulateBookingFailure": "seats" }),
        )
        .await;
    let done = run
        .drive(&no_seats, &["reserve-seats", "retrieve-payment"], |_, _| {
            Reply::Throw {
                code: "ErrorSeatsNotAvailable",
                message: "no seats left",
                variables: json!({}),
            }
        })
        .await;
    assert_eq!(done, ["reserve-seats!ErrorSeatsNotAvailable"]);
    let detail = run.instance(&no_seats).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        job_trail(&detail),
        ["reserve-seats@Activity_1g89uec: error-thrown"]
    );

    // No payment within 30 seconds: the timer cancels the booking; a late confirmation finds
    // nobody waiting.
    let unpaid = run
        .start(
            "ticket-booking",
            json!({ "bookingReferenceId": "booking-3" }),
        )
        .await;
    let done = run
        .drive(
            &unpaid,
            &["reserve-seats", "retrieve-payment", "generate-ticket"],
            |t, _| match t {
                "reserve-seats" => json!({ "reservationId": "reservation-3" }),
                "retrieve-payment" => json!({ "paymentRequestId": "payment-request-3" }),
                _ => panic!("no ticket without payment"),
            },
        )
        .await;
    assert_eq!(done, ["reserve-seats", "retrieve-payment"]);
    let detail = run.instance(&unpaid).await;
    assert_completed_cleanly(&detail);
    assert_eq!(
        commands(&detail),
        [
            "start",
            "complete_job",
            "complete_job",
            "timer_fired:Event_1ywtp2y"
        ],
        "{detail}"
    );
    assert_eq!(job_trail(&detail).len(), 2, "{detail}");
    let late = run
        .publish(
            "msg-payment-received",
            "payment-request-3",
            0,
            json!({ "paymentConfirmationId": "confirmation-3" }),
        )
        .await;
    assert_eq!(late["outcome"], "dropped", "{late}");
    assert!(run.instance(&unpaid).await["variables"]
        .get("paymentConfirmationId")
        .is_none());
}
