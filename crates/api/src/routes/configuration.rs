//! `/v1/configurations/validate` and `/v1/price`: the configuration and pricing engines over the
//! compiled catalog version in force (or a named one). Both compute; neither changes anything.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use cpq_configuration::{validate, ConfigItem, Context, Validation};
use cpq_core::{Error, FieldError, Role};
use cpq_pricing::{price as price_items, PriceItem, PricingContext};
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{Caller, JsonBody};
use crate::problem::{ApiError, Problem};
use crate::routes::catalog::instant_for;
use crate::state::AppState;

const USERS: &[Role] = &[Role::Sales, Role::CatalogManager, Role::Approver];

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

async fn version_for(
    state: &AppState,
    caller: &Caller,
    named: Option<Uuid>,
    date: NaiveDate,
) -> Result<Uuid, Error> {
    match named {
        Some(v) => Ok(v),
        None => {
            state
                .catalogs
                .active(&state.db, &caller.0.tenant, instant_for(date))
                .await
        }
    }
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
    caller.0.require_any(USERS)?;
    let b = body.value;
    let ctx = b.context.unwrap_or(ValidationContext {
        market: None,
        channel: None,
        segment: None,
        date: None,
    });
    let date = ctx.date.unwrap_or_else(|| Utc::now().date_naive());
    let version = version_for(&state, &caller, b.catalog_version, date).await?;
    let catalog = state
        .catalogs
        .compiled(&state.db, &caller.0.tenant, version)
        .await?;
    let context = Context {
        market: ctx.market,
        channel: ctx.channel,
        segment: ctx.segment,
        date,
    };
    let result: Validation = validate(&catalog, &context, &b.configuration);
    metrics::counter!("configuration_rules_evaluated_total")
        .increment(result.rules_evaluated as u64);
    let mut json = serde_json::to_value(&result).map_err(Error::internal)?;
    json["catalog_version"] = serde_json::json!(version);
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

impl PriceRequestContext {
    fn resolve(self) -> PricingContext {
        PricingContext {
            market: self.market,
            channel: self.channel,
            segment: self.segment,
            currency: self.currency,
            date: self.date.unwrap_or_else(|| Utc::now().date_naive()),
            customer: self.customer,
        }
    }
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
    caller.0.require_any(USERS)?;
    let b = body.value;
    if b.items.is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "items",
            "required",
            "at least one item is needed",
        )])
        .into());
    }
    let pricing_context = b.context.resolve();
    let version = version_for(&state, &caller, b.catalog_version, pricing_context.date).await?;
    let catalog = state
        .catalogs
        .compiled(&state.db, &caller.0.tenant, version)
        .await?;
    let context = Context {
        market: Some(pricing_context.market.clone()),
        channel: Some(pricing_context.channel.clone()),
        segment: Some(pricing_context.segment.clone()),
        date: pricing_context.date,
    };
    let mut errors = Vec::new();
    let mut items = Vec::with_capacity(b.items.len());
    for (i, line) in b.items.into_iter().enumerate() {
        let v = validate(&catalog, &context, &line.configuration);
        for x in &v.violations {
            let at = if x.path.is_empty() {
                format!("items[{i}].configuration")
            } else {
                format!("items[{i}].configuration.{}", x.path)
            };
            errors.push(FieldError::new(at, &x.rule, x.message.clone()));
        }
        items.push(PriceItem {
            line_id: line.line_id,
            configured: v.configuration,
            manual_discount_percent: line.manual_discount_percent,
        });
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    let snapshot = price_items(&catalog, &pricing_context, &items).map_err(|e| {
        Error::validation(vec![FieldError::new(e.field(), e.code(), e.to_string())])
    })?;
    let mut json = serde_json::to_value(&snapshot).map_err(Error::internal)?;
    json["catalog_version"] = serde_json::json!(version);
    Ok(axum::Json(json).into_response())
}
