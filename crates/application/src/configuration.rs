//! The configuration and pricing engines over a compiled catalog version (the one in force on the
//! request's date, or a named one): validating one configuration, pricing a cart without a quote.
//! Both compute and change nothing.
//!
//! Neither needs a transaction: they read only the catalog cache, which loads a version it does
//! not hold in a transaction of its own. So besides being [`Operation`]s (for a caller that has a
//! transaction anyway) they are [`Computation`]s, which [`compute`] runs without one: a warm
//! request sends no SQL at all.

use std::future::Future;

use chrono::NaiveDate;
use cpq_configuration::{validate, ConfigItem, Context, Validation};
use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_pricing::{price, PriceItem, PriceSnapshot, PricingContext};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::catalog::{day_meant, version_meant};
use crate::{Call, Operation, Services};

const USERS: &[Role] = &[Role::Sales, Role::CatalogManager, Role::Approver];

/// An operation that reads nothing but the catalog cache.
pub trait Computation: Operation {
    fn compute(
        self,
        services: &Services,
        call: &Call,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send;
}

/// Runs a computation for the caller, without a transaction.
pub async fn compute<C: Computation>(
    services: &Services,
    call: &Call,
    computation: C,
) -> Result<C::Output, Error> {
    call.principal.require_any(C::ROLES)?;
    computation.compute(services, call).await
}

/// Where a configuration is validated; `None` leaves that dimension unchecked.
#[derive(Debug, Clone, Default)]
pub struct ValidationScope {
    pub market: Option<String>,
    pub channel: Option<String>,
    pub segment: Option<String>,
    /// Default: the call's day.
    pub date: Option<NaiveDate>,
}

/// Validates one configuration: defaults applied and every violation (a valid answer either way).
pub struct ValidateConfiguration {
    pub scope: ValidationScope,
    /// Default: the version in force on the scope's date.
    pub catalog_version: Option<Uuid>,
    pub configuration: ConfigItem,
}

/// The validation and the version it was made in.
pub struct Validated {
    pub catalog_version: Uuid,
    pub validation: Validation,
}

impl Computation for ValidateConfiguration {
    async fn compute(self, services: &Services, call: &Call) -> Result<Validated, Error> {
        let date = day_meant(self.scope.date, call);
        let version = version_meant(services, call, self.catalog_version, date).await?;
        let catalog = services
            .catalogs
            .compiled(&services.db, &call.principal.tenant, version)
            .await?;
        let context = Context {
            market: self.scope.market,
            channel: self.scope.channel,
            segment: self.scope.segment,
            date,
        };
        let validation = validate(&catalog, &context, &self.configuration);
        metrics::counter!("configuration_rules_evaluated_total")
            .increment(validation.rules_evaluated as u64);
        Ok(Validated {
            catalog_version: version,
            validation,
        })
    }
}

impl Operation for ValidateConfiguration {
    type Output = Validated;
    const ROLES: &'static [Role] = USERS;

    async fn run(self, services: &Services, _: &mut Tx, call: &Call) -> Result<Validated, Error> {
        self.compute(services, call).await
    }
}

/// One line of a cart.
pub struct CartLine {
    /// Unique within the cart; lines come back in this order.
    pub line_id: String,
    pub configuration: ConfigItem,
    /// Percent off the whole line.
    pub manual_discount_percent: Option<Decimal>,
}

/// Prices a cart without a quote: every configuration is validated first (each violation of every
/// line reported, under `items[i].configuration`), then priced into a hashed snapshot.
pub struct PriceCart {
    pub market: String,
    pub channel: String,
    pub segment: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Default: the call's day; also picks the version in force then.
    pub date: Option<NaiveDate>,
    /// Customer attributes promotions may require.
    pub customer: Map<String, Value>,
    pub catalog_version: Option<Uuid>,
    pub lines: Vec<CartLine>,
}

/// The price snapshot and the version it was priced in.
pub struct Priced {
    pub catalog_version: Uuid,
    pub snapshot: PriceSnapshot,
}

impl Computation for PriceCart {
    async fn compute(self, services: &Services, call: &Call) -> Result<Priced, Error> {
        if self.lines.is_empty() {
            return Err(Error::validation(vec![FieldError::new(
                "items",
                "required",
                "at least one item is needed",
            )]));
        }
        let pricing = PricingContext {
            market: self.market,
            channel: self.channel,
            segment: self.segment,
            currency: self.currency,
            date: day_meant(self.date, call),
            customer: self.customer,
        };
        let version = version_meant(services, call, self.catalog_version, pricing.date).await?;
        let catalog = services
            .catalogs
            .compiled(&services.db, &call.principal.tenant, version)
            .await?;
        let context = Context {
            market: Some(pricing.market.clone()),
            channel: Some(pricing.channel.clone()),
            segment: Some(pricing.segment.clone()),
            date: pricing.date,
        };
        let mut errors = Vec::new();
        let mut items = Vec::with_capacity(self.lines.len());
        for (i, line) in self.lines.into_iter().enumerate() {
            let v = validate(&catalog, &context, &line.configuration);
            let field = format!("items[{i}].configuration");
            errors.extend(
                v.violations
                    .iter()
                    .map(|x| FieldError::new(x.field(&field), &x.rule, x.message.clone())),
            );
            items.push(PriceItem {
                line_id: line.line_id,
                configured: v.configuration,
                manual_discount_percent: line.manual_discount_percent,
            });
        }
        if !errors.is_empty() {
            return Err(Error::validation(errors));
        }
        let snapshot = price(&catalog, &pricing, &items).map_err(|e| {
            Error::validation(vec![FieldError::new(e.field(), e.code(), e.to_string())])
        })?;
        Ok(Priced {
            catalog_version: version,
            snapshot,
        })
    }
}

impl Operation for PriceCart {
    type Output = Priced;
    const ROLES: &'static [Role] = USERS;

    async fn run(self, services: &Services, _: &mut Tx, call: &Call) -> Result<Priced, Error> {
        self.compute(services, call).await
    }
}
