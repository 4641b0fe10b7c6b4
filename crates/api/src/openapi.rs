//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at `/openapi.json`
//! and checked in at `openapi/openapi.json` (a test keeps the two equal).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub mod schemas;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CPQ and order management platform API",
        description = "Configure, price, quote and order. Errors are RFC 9457 problem documents \
            (application/problem+json) with a stable `type` per kind. Every POST command accepts \
            `Idempotency-Key`; changes to versioned resources need `If-Match`.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "customer-accounts", description = "Who quotes and orders are for"),
        (name = "catalog", description = "Catalog versions: author, publish, activate, search"),
        (name = "configuration", description = "Validate configurations and price carts"),
        (name = "workflow", description = "BPMN deployments and worker groups"),
        (name = "quotes", description = "Quotes: create, lines, price, submit, accept, revise, cancel, convert"),
        (name = "approvals", description = "Approval tasks and the approval policy"),
        (name = "orders", description = "Orders converted from quotes"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
