//! `/v1/configurations/validate` and `/v1/price`: the configuration and pricing engines over the
//! compiled catalog version in force (or a named one). Both compute; neither changes anything.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use cpq_application::configuration::{
    self as engines, compute, CartLine, Computation, PriceCart, ValidationScope,
};
use cpq_application::Call;
use cpq_configuration::ConfigItem;
use cpq_core::Error;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{Caller, JsonBody};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Runs an engine for the caller. Like a query, but without a transaction: the engines read only
/// the catalog cache, so a warm request sends no SQL.
async fn run<C: Computation>(
    state: &AppState,
    caller: &Caller,
    computation: C,
) -> Result<C::Output, ApiError> {
    let call = Call::new(caller.0.clone(), String::new(), None);
    Ok(compute(&state.services, &call, computation).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationContext {
    pub market: Option<String>,
    pub channel: Option<String>,
    pub segment: Option<String>,
    /// Default: today.
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfiguration {
    #[serde(default)]
    pub context: Option<ValidationContext>,
    /// Default: the version in force on the context's date.
    pub catalog_version: Option<Uuid>,
    /// `{offering, quantity, characteristics: {code: value}, components: [...]}`.
    #[schema(value_type = Object)]
    pub configuration: ConfigItem,
}

/// Returns the configuration with defaults applied and every violation (200 whether or not it is
/// valid: the violations are the answer).
#[utoipa::path(post, path = "/v1/configurations/validate", tag = "configuration", security(("bearer" = [])),
    request_body = ValidateConfiguration,
    responses((status = 200, description = "valid, configuration, violations, rules_evaluated"), (status = 404, body = Problem), (status = 409, description = "no version in force", body = Problem)))]
pub async fn validate_configuration(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<ValidateConfiguration>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let scope = b
        .context
        .map_or_else(ValidationScope::default, |c| ValidationScope {
            market: c.market,
            channel: c.channel,
            segment: c.segment,
            date: c.date,
        });
    let validate = engines::ValidateConfiguration {
        scope,
        catalog_version: b.catalog_version,
        configuration: b.configuration,
    };
    let validated = run(&state, &caller, validate).await?;
    let mut json = serde_json::to_value(&validated.validation).map_err(Error::internal)?;
    json["catalog_version"] = serde_json::json!(validated.catalog_version);
    Ok(axum::Json(json).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceLine {
    /// Unique within the request; lines come back in this order.
    pub line_id: String,
    #[schema(value_type = Object)]
    pub configuration: ConfigItem,
    /// Percent off the whole line, as a decimal string.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub manual_discount_percent: Option<Decimal>,
}

/// Where and when the cart is priced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRequestContext {
    pub market: String,
    pub channel: String,
    pub segment: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// Default: today (as for validation); also picks the version in force then.
    pub date: Option<NaiveDate>,
    /// Customer attributes promotions may require, e.g. `{"new_customer": true}`.
    #[serde(default)]
    pub customer: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRequest {
    pub context: PriceRequestContext,
    pub catalog_version: Option<Uuid>,
    pub items: Vec<PriceLine>,
}

/// Prices a cart without a quote: every configuration is validated first (422 with each
/// violation when any is invalid), then priced into a hashed snapshot.
#[utoipa::path(post, path = "/v1/price", tag = "configuration", security(("bearer" = [])),
    request_body = PriceRequest,
    responses((status = 200, description = "The price snapshot"), (status = 422, description = "invalid configuration or unpriceable line", body = Problem)))]
pub async fn price(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<PriceRequest>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let lines = b.items.into_iter().map(|l| CartLine {
        line_id: l.line_id,
        configuration: l.configuration,
        manual_discount_percent: l.manual_discount_percent,
    });
    let cart = PriceCart {
        market: b.context.market,
        channel: b.context.channel,
        segment: b.context.segment,
        currency: b.context.currency,
        date: b.context.date,
        customer: b.context.customer,
        catalog_version: b.catalog_version,
        lines: lines.collect(),
    };
    let priced = run(&state, &caller, cart).await?;
    let mut json = serde_json::to_value(&priced.snapshot).map_err(Error::internal)?;
    json["catalog_version"] = serde_json::json!(priced.catalog_version);
    Ok(axum::Json(json).into_response())
}
