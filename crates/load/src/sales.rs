//! Profile `interactive-sales` (seed part 055, section 4.1): sales reps working quotes by hand.
//!
//! Each goose user is one rep with its own customer account (created once, at start). One
//! iteration is one quote, in eleven steps, each its own goose transaction and request name so
//! that the report gives per-step percentiles (ids in URLs never split a step's figures):
//!
//! | step | request |
//! | --- | --- |
//! | `1 search catalog` | `GET /v1/catalog/offerings?q=internet&market=DE` |
//! | `2 validate configuration` | `POST /v1/configurations/validate` (BIZ-INTERNET 500 Mbit/s, gold) |
//! | `3 create quote` | `POST /v1/quotes` |
//! | `4 add item` | `POST /v1/quotes/{id}/items` (CLOUD-BACKUP 5TB, 5 % off) |
//! | `5 price` | `POST /v1/quotes/{id}/price` |
//! | `6 modify: add line` | `POST /v1/quotes/{id}/items` (BIZ-INTERNET 500 Mbit/s, gold): price stale |
//! | `6b more lines` | only with `--order-lines N` above 1: N - 1 more BIZ-INTERNET lines, one `POST /v1/quotes/{id}/items` each, so that the order converted in step 11 has N lines (decomposition of a 10-item order: `--order-lines 10`) |
//! | `7 modify: remove line` | `DELETE /v1/quotes/{id}/items/{line_no}` (the backup line) |
//! | `8 re-price` | `POST /v1/quotes/{id}/price` |
//! | `9 submit` | `POST /v1/quotes/{id}/submit`: `submitted` (approval-free under the default policy) |
//! | `10 accept` | `POST /v1/quotes/{id}/accept`: `accepted` |
//! | `11 convert` | `POST /v1/quotes/{id}/convert`: the order, decomposed into its plan (the internet line's three tasks and the two order tasks), its fulfillment process started |
//!
//! Changes send `If-Match` with the version the previous answer returned. A non-2xx answer is a
//! failure, and so is a 2xx answer that says the wrong thing (an invalid configuration, a
//! quote that did not reach `priced` or `submitted`). After a failure the rest of that quote's
//! steps fail without a request ("skipped"), and the next iteration starts a new quote.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use goose::goose::{GooseResponse, TransactionError};
use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use serde_json::{json, Value};

pub const SCENARIO: &str = "interactive-sales";

const ACCOUNT: &str = "0 create account (on start)";
const SEARCH: &str = "1 search catalog";
const VALIDATE: &str = "2 validate configuration";
const CREATE: &str = "3 create quote";
const ADD_ITEM: &str = "4 add item";
const PRICE: &str = "5 price";
const MODIFY_ADD: &str = "6 modify: add line";
const MORE_LINES: &str = "6b more lines";
const MODIFY_REMOVE: &str = "7 modify: remove line";
const REPRICE: &str = "8 re-price";
const SUBMIT: &str = "9 submit";
const ACCEPT: &str = "10 accept";
const CONVERT: &str = "11 convert";

/// Each step's method and route template as the API's `http_request_duration_seconds` labels
/// them (two steps may share a route).
pub const ROUTES: &[(&str, &str, &str)] = &[
    (ACCOUNT, "POST", "/v1/customer-accounts"),
    (SEARCH, "GET", "/v1/catalog/offerings"),
    (VALIDATE, "POST", "/v1/configurations/validate"),
    (CREATE, "POST", "/v1/quotes"),
    (ADD_ITEM, "POST", "/v1/quotes/{id}/items"),
    (PRICE, "POST", "/v1/quotes/{id}/price"),
    (MODIFY_ADD, "POST", "/v1/quotes/{id}/items"),
    (MORE_LINES, "POST", "/v1/quotes/{id}/items"),
    (MODIFY_REMOVE, "DELETE", "/v1/quotes/{id}/items/{line_no}"),
    (REPRICE, "POST", "/v1/quotes/{id}/price"),
    (SUBMIT, "POST", "/v1/quotes/{id}/submit"),
    (ACCEPT, "POST", "/v1/quotes/{id}/accept"),
    (CONVERT, "POST", "/v1/quotes/{id}/convert"),
];

/// What every rep shares: the tokens to pick from and a run id that keeps account references
/// unique across runs.
pub struct Setup {
    pub tokens: Vec<String>,
    pub run_id: String,
    /// How many lines each quote has when it is submitted and converted (1: the internet line
    /// of step 6 only).
    pub order_lines: u16,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

/// A rep's session: its token, its account and the quote it is working on.
#[derive(Clone)]
struct Rep {
    token: Arc<str>,
    account: String,
    quote: Option<OpenQuote>,
}

#[derive(Clone)]
struct OpenQuote {
    id: String,
    version: i64,
    backup_line: i64,
}

/// The scenario, its steps in order. `think` is the pause after each step (min, max).
pub fn scenario(setup: Setup, think: (Duration, Duration)) -> Result<Scenario, GooseError> {
    let more_lines = setup.order_lines > 1;
    install(setup, SCENARIO)?;
    let mut s = scenario!(SCENARIO)
        .register_transaction(transaction!(open_account).set_name(ACCOUNT).set_on_start());
    let mut steps = vec![
        transaction!(search_catalog).set_name(SEARCH),
        transaction!(validate_configuration).set_name(VALIDATE),
        transaction!(create_quote).set_name(CREATE),
        transaction!(add_item).set_name(ADD_ITEM),
        transaction!(price).set_name(PRICE),
        transaction!(modify_add_line).set_name(MODIFY_ADD),
    ];
    if more_lines {
        steps.push(transaction!(add_more_lines).set_name(MORE_LINES));
    }
    steps.extend([
        transaction!(modify_remove_line).set_name(MODIFY_REMOVE),
        transaction!(reprice).set_name(REPRICE),
        transaction!(submit).set_name(SUBMIT),
        transaction!(accept).set_name(ACCEPT),
        transaction!(convert).set_name(CONVERT),
    ]);
    for (i, step) in steps.into_iter().enumerate() {
        s = s.register_transaction(step.set_sequence(i + 1));
    }
    if think.1 > Duration::ZERO {
        s = s.set_wait_time(think.0, think.1)?;
    }
    Ok(s)
}

/// Makes `setup` what every user of the process shares (once per process).
pub(crate) fn install(setup: Setup, profile: &str) -> Result<(), GooseError> {
    SETUP.set(setup).map_err(|_| GooseError::InvalidOption {
        option: "profile".into(),
        value: profile.into(),
        detail: "the profile is set up once per process".into(),
    })
}

/// The run id of this process's setup.
pub(crate) fn run_id() -> &'static str {
    SETUP.get().map(|s| s.run_id.as_str()).unwrap_or("run")
}

/// One answer: goose's record of the request (to mark it failed after the fact) and the body.
pub(crate) struct Answer {
    pub(crate) request: GooseRequestMetric,
    pub(crate) body: Value,
}

/// Marks `request` failed (counted under its step, logged with `tag`) and returns the error
/// that ends the transaction.
fn fail(
    user: &mut GooseUser,
    tag: &str,
    request: &mut GooseRequestMetric,
    body: Option<&str>,
) -> Box<TransactionError> {
    match user.set_failure(tag, request, None, body) {
        Err(e) => e,
        Ok(()) => Box::new(TransactionError::Custom(tag.to_owned())),
    }
}

fn error(detail: String) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(detail))
}

fn rep(user: &GooseUser) -> Result<&Rep, Box<TransactionError>> {
    user.get_session_data::<Rep>()
        .ok_or_else(|| error("no session: the account was not created at start".into()))
}

/// The open quote, or the error that skips a step whose quote an earlier step did not leave.
fn open_quote(user: &GooseUser, step: &str) -> Result<OpenQuote, Box<TransactionError>> {
    rep(user)?.quote.clone().ok_or_else(|| {
        error(format!(
            "{step}: skipped, no open quote (an earlier step failed)"
        ))
    })
}

fn set_quote(user: &mut GooseUser, quote: Option<OpenQuote>) {
    if let Some(r) = user.get_session_data_mut::<Rep>() {
        r.quote = quote;
    }
}

/// Sends one request under the step's name with the rep's token (and `If-Match` when given);
/// a non-2xx answer or a body that is not JSON is a failure.
async fn call(
    user: &mut GooseUser,
    step: &str,
    method: GooseMethod,
    path: &str,
    if_match: Option<i64>,
    body: Option<&Value>,
) -> Result<Answer, Box<TransactionError>> {
    let if_match = if_match.map(|v| ("If-Match", format!("\"{v}\"")));
    call_with(user, step, method, path, if_match.as_slice(), body).await
}

/// [`call`] with any request headers.
pub(crate) async fn call_with(
    user: &mut GooseUser,
    step: &str,
    method: GooseMethod,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&Value>,
) -> Result<Answer, Box<TransactionError>> {
    let token = match user.get_session_data::<Rep>() {
        Some(r) => r.token.clone(),
        None => first_token(user)?,
    };
    let mut builder = user
        .get_request_builder(&method, path)?
        .bearer_auth(&*token);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    if let Some(b) = body {
        builder = builder.json(b);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(step)
        .set_request_builder(builder)
        .build();
    let GooseResponse {
        mut request,
        response,
    } = user.request(request).await?;
    let response = response.map_err(|e| Box::new(TransactionError::Reqwest(e)))?;
    let status = response.status();
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => {
            return Err(fail(
                user,
                &format!("{step}: body: {e}"),
                &mut request,
                None,
            ))
        }
    };
    if !status.is_success() {
        let tag = format!("{step}: HTTP {status}");
        return Err(fail(user, &tag, &mut request, Some(&text)));
    }
    match serde_json::from_str(&text) {
        Ok(body) => Ok(Answer { request, body }),
        Err(e) => Err(fail(
            user,
            &format!("{step}: not JSON: {e}"),
            &mut request,
            Some(&text),
        )),
    }
}

/// The token of a user without a session yet (the start step): users share the tokens round
/// robin.
fn first_token(user: &GooseUser) -> Result<Arc<str>, Box<TransactionError>> {
    let setup = SETUP
        .get()
        .ok_or_else(|| error("cpq-load was not set up".into()))?;
    if setup.tokens.is_empty() {
        return Err(error("no token".into()));
    }
    Ok(Arc::from(
        setup.tokens[user.weighted_users_index % setup.tokens.len()].as_str(),
    ))
}

/// The quote's new version from a change's answer, or a failure.
fn next_version(
    user: &mut GooseUser,
    step: &str,
    answer: &mut Answer,
) -> Result<i64, Box<TransactionError>> {
    match answer.body["version"].as_i64() {
        Some(v) => Ok(v),
        None => {
            let body = answer.body.to_string();
            Err(fail(
                user,
                &format!("{step}: no version in the answer"),
                &mut answer.request,
                Some(&body),
            ))
        }
    }
}

/// Fails the step (and drops the quote) unless the answer's `field` is `expected`.
fn expect(
    user: &mut GooseUser,
    step: &str,
    answer: &mut Answer,
    field: &str,
    expected: &Value,
) -> Result<(), Box<TransactionError>> {
    if &answer.body[field] == expected {
        return Ok(());
    }
    set_quote(user, None);
    let tag = format!(
        "{step}: {field} is {}, expected {expected}",
        answer.body[field]
    );
    let body = answer.body.to_string();
    Err(fail(user, &tag, &mut answer.request, Some(&body)))
}

async fn open_account(user: &mut GooseUser) -> TransactionResult {
    let token = first_token(user)?;
    let run = run_id();
    let body = json!({
        "name": format!("Load Co {}", user.weighted_users_index + 1),
        "external_ref": format!("LOAD-{run}-{}", user.weighted_users_index + 1),
        "segment": "enterprise",
        "market": "DE",
        "currency": "EUR",
    });
    let mut a = call(
        user,
        ACCOUNT,
        GooseMethod::Post,
        "/v1/customer-accounts",
        None,
        Some(&body),
    )
    .await?;
    let Some(account) = a.body["id"].as_str().map(str::to_owned) else {
        let body = a.body.to_string();
        return Err(fail(user, "account: no id", &mut a.request, Some(&body)));
    };
    user.set_session_data(Rep {
        token,
        account,
        quote: None,
    });
    Ok(())
}

async fn search_catalog(user: &mut GooseUser) -> TransactionResult {
    let path = "/v1/catalog/offerings?q=internet&market=DE";
    let mut a = call(user, SEARCH, GooseMethod::Get, path, None, None).await?;
    if a.body["items"].as_array().is_none_or(Vec::is_empty) {
        let body = a.body.to_string();
        return Err(fail(
            user,
            "search: no offering found",
            &mut a.request,
            Some(&body),
        ));
    }
    Ok(())
}

async fn validate_configuration(user: &mut GooseUser) -> TransactionResult {
    let body = json!({
        "context": { "market": "DE", "channel": "direct", "segment": "enterprise" },
        "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500", "sla": "gold" } },
    });
    let path = "/v1/configurations/validate";
    let mut a = call(user, VALIDATE, GooseMethod::Post, path, None, Some(&body)).await?;
    expect(user, VALIDATE, &mut a, "valid", &json!(true))
}

async fn create_quote(user: &mut GooseUser) -> TransactionResult {
    set_quote(user, None);
    let account = rep(user)?.account.clone();
    let body = json!({ "customer_account_id": account });
    let mut a = call(
        user,
        CREATE,
        GooseMethod::Post,
        "/v1/quotes",
        None,
        Some(&body),
    )
    .await?;
    let version = next_version(user, CREATE, &mut a)?;
    let Some(id) = a.body["id"].as_str().map(str::to_owned) else {
        let body = a.body.to_string();
        return Err(fail(
            user,
            "create quote: no id",
            &mut a.request,
            Some(&body),
        ));
    };
    set_quote(
        user,
        Some(OpenQuote {
            id,
            version,
            backup_line: 0,
        }),
    );
    Ok(())
}

/// A change of the open quote: sends it, takes the new version, checks `status`.
async fn change(
    user: &mut GooseUser,
    step: &str,
    method: GooseMethod,
    suffix: &str,
    body: Option<&Value>,
    status: &str,
) -> Result<(OpenQuote, Answer), Box<TransactionError>> {
    let mut quote = open_quote(user, step)?;
    // Whatever happens next, the quote's version is only known again from a good answer.
    set_quote(user, None);
    let path = format!("/v1/quotes/{}{suffix}", quote.id);
    let mut a = call(user, step, method, &path, Some(quote.version), body).await?;
    quote.version = next_version(user, step, &mut a)?;
    expect(user, step, &mut a, "status", &json!(status))?;
    Ok((quote, a))
}

async fn add_item(user: &mut GooseUser) -> TransactionResult {
    let body = json!({
        "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } },
        "manual_discount_percent": "5",
    });
    let (mut quote, mut a) = change(
        user,
        ADD_ITEM,
        GooseMethod::Post,
        "/items",
        Some(&body),
        "draft",
    )
    .await?;
    match a.body["items"]
        .as_array()
        .and_then(|items| items.last())
        .and_then(|item| item["line_no"].as_i64())
    {
        Some(line) => quote.backup_line = line,
        None => {
            let body = a.body.to_string();
            return Err(fail(user, "add item: no line", &mut a.request, Some(&body)));
        }
    }
    set_quote(user, Some(quote));
    Ok(())
}

async fn price(user: &mut GooseUser) -> TransactionResult {
    let (quote, _) = change(
        user,
        PRICE,
        GooseMethod::Post,
        "/price",
        Some(&json!({})),
        "priced",
    )
    .await?;
    set_quote(user, Some(quote));
    Ok(())
}

async fn modify_add_line(user: &mut GooseUser) -> TransactionResult {
    let body = json!({
        "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500", "sla": "gold" } },
    });
    let (quote, mut a) = change(
        user,
        MODIFY_ADD,
        GooseMethod::Post,
        "/items",
        Some(&body),
        "draft",
    )
    .await?;
    expect(user, MODIFY_ADD, &mut a, "price_stale", &json!(true))?;
    set_quote(user, Some(quote));
    Ok(())
}

/// Lines 2 to N of the order (`--order-lines N`), one request each.
async fn add_more_lines(user: &mut GooseUser) -> TransactionResult {
    let more = SETUP.get().map_or(0, |s| s.order_lines.saturating_sub(1));
    let body = json!({
        "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500", "sla": "gold" } },
    });
    for _ in 0..more {
        let (quote, _) = change(
            user,
            MORE_LINES,
            GooseMethod::Post,
            "/items",
            Some(&body),
            "draft",
        )
        .await?;
        set_quote(user, Some(quote));
    }
    Ok(())
}

async fn modify_remove_line(user: &mut GooseUser) -> TransactionResult {
    let line = open_quote(user, MODIFY_REMOVE)?.backup_line;
    let (quote, _) = change(
        user,
        MODIFY_REMOVE,
        GooseMethod::Delete,
        &format!("/items/{line}"),
        None,
        "draft",
    )
    .await?;
    set_quote(user, Some(quote));
    Ok(())
}

async fn reprice(user: &mut GooseUser) -> TransactionResult {
    let (quote, _) = change(
        user,
        REPRICE,
        GooseMethod::Post,
        "/price",
        Some(&json!({})),
        "priced",
    )
    .await?;
    set_quote(user, Some(quote));
    Ok(())
}

async fn submit(user: &mut GooseUser) -> TransactionResult {
    let (quote, _) = change(
        user,
        SUBMIT,
        GooseMethod::Post,
        "/submit",
        Some(&json!({})),
        "submitted",
    )
    .await?;
    set_quote(user, Some(quote));
    Ok(())
}

async fn accept(user: &mut GooseUser) -> TransactionResult {
    let (quote, _) = change(
        user,
        ACCEPT,
        GooseMethod::Post,
        "/accept",
        Some(&json!({})),
        "accepted",
    )
    .await?;
    set_quote(user, Some(quote));
    Ok(())
}

async fn convert(user: &mut GooseUser) -> TransactionResult {
    // The order is the end of this quote's story: the next iteration starts a new quote.
    let quote = open_quote(user, CONVERT)?;
    set_quote(user, None);
    let path = format!("/v1/quotes/{}/convert", quote.id);
    let mut a = call(
        user,
        CONVERT,
        GooseMethod::Post,
        &path,
        Some(quote.version),
        Some(&json!({})),
    )
    .await?;
    expect(user, CONVERT, &mut a, "status", &json!("in-fulfillment"))?;
    Ok(())
}
