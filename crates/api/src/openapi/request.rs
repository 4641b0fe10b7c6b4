//! Request schemas as the server reads them: the catalog document (every element, unknown keys
//! refused), configurations, and the constraints the server enforces beyond the Rust types
//! (non-blank text, lengths, enums, formats, ranges), each named by schema and property.

use serde_json::{json, Value};

/// Text with something other than whitespace in it (and no NUL).
pub const NON_BLANK: &str = r"^[^\x00]*[^\s\x00][^\x00]*$";
/// Any text the server can store: no NUL (PostgreSQL refuses it; the API answers 400).
pub const NO_NUL: &str = r"^[^\x00]*$";
/// A decimal as `rust_decimal` reads it from a string: sign, up to 28 integer digits, fraction.
pub const DECIMAL: &str = r"^[+-]?[0-9]{1,28}(\.[0-9]+)?$";
/// A tenant id: 1-63 of a-z, 0-9 and '-', not starting with '-'.
pub const TENANT: &str = r"^[a-z0-9][a-z0-9-]{0,62}$";

const I32: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);
const U32: (i64, i64) = (0, u32::MAX as i64);

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn text() -> Value {
    json!({ "type": "string" })
}

fn nullable(mut schema: Value) -> Value {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        schema["type"] = json!([t, "null"]);
        schema
    } else {
        json!({ "oneOf": [{ "type": "null" }, schema] })
    }
}

fn int((min, max): (i64, i64)) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

fn decimal() -> Value {
    json!({ "type": "string", "pattern": DECIMAL })
}

fn date() -> Value {
    json!({ "type": "string", "format": "date" })
}

fn strings() -> Value {
    json!({ "type": "array", "items": text() })
}

fn array_of(name: &str) -> Value {
    json!({ "type": "array", "items": reference(name) })
}

/// An object with these properties, these required, nothing else.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

/// Every ISO 4217 code the server knows.
fn currencies() -> Vec<String> {
    let mut codes = Vec::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b, c]).unwrap_or_default();
                if cpq_core::Currency::parse(&code).is_some() {
                    codes.push(code);
                }
            }
        }
    }
    codes
}

fn characteristic() -> Value {
    let common = |kind: &str, extra: Value, required: &[&str]| {
        let mut props = json!({
            "code": text(),
            "name": nullable(text()),
            "kind": { "type": "string", "const": kind },
            "required": { "type": "boolean" },
            "default": reference("JsonValue"),
        });
        if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        let mut req = vec!["code", "kind"];
        req.extend_from_slice(required);
        object(props, &req)
    };
    json!({
        "description": "A characteristic of an offering; its `kind` says which values it takes",
        "oneOf": [
            common("enum", json!({ "values": strings() }), &["values"]),
            common("number", json!({ "min": nullable(decimal()), "max": nullable(decimal()), "step": nullable(decimal()) }), &[]),
            common("text", json!({ "pattern": nullable(text()), "max_length": nullable(json!({ "type": "integer", "minimum": 0 })) }), &[]),
            common("boolean", json!({}), &[]),
        ]
    })
}

/// The catalog document and its elements, and a configuration as a client sends it.
fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("CatalogDocument", {
            let mut d = object(
                json!({
                    "offerings": array_of("CatalogOffering"),
                    "rules": array_of("CatalogRule"),
                    "price_lists": array_of("CatalogPriceList"),
                    "promotions": array_of("CatalogPromotion"),
                    "tax_rates": array_of("CatalogTaxRate"),
                    "technical": array_of("CatalogTechnicalMapping"),
                    "order_tasks": array_of("CatalogTask"),
                }),
                &[],
            );
            d["description"] =
                json!("A whole catalog version: every collection, every element, no other keys");
            d
        }),
        (
            "CatalogOffering",
            object(
                json!({
                    "code": text(), "name": text(), "description": nullable(text()),
                    "kind": { "type": "string", "enum": ["simple", "configurable", "bundle"] },
                    "markets": strings(), "channels": strings(), "segments": strings(),
                    "effective_from": nullable(date()), "effective_to": nullable(date()),
                    "sellable": { "type": "boolean" },
                    "characteristics": array_of("CatalogCharacteristic"),
                    "components": array_of("CatalogComponent"),
                }),
                &["code", "name", "kind"],
            ),
        ),
        ("CatalogCharacteristic", characteristic()),
        (
            "CatalogComponent",
            object(
                json!({
                    "offering": text(), "min": int(U32), "max": int(U32), "default_included": { "type": "boolean" },
                }),
                &["offering", "max"],
            ),
        ),
        (
            "CatalogRule",
            object(
                json!({
                    "code": text(), "offering": text(),
                    "kind": { "type": "string", "enum": ["requires", "excludes", "constraint", "default"] },
                    "message": text(), "when": nullable(text()), "then": nullable(text()), "component": nullable(text()),
                    "set": nullable(object(json!({ "characteristic": text(), "value": reference("JsonValue") }), &["characteristic", "value"])),
                }),
                &["code", "offering", "kind", "message"],
            ),
        ),
        (
            "CatalogPriceList",
            object(
                json!({
                    "code": text(), "name": nullable(text()), "currency": text(),
                    "market": nullable(text()), "channel": nullable(text()), "segment": nullable(text()),
                    "effective_from": nullable(date()), "effective_to": nullable(date()),
                    "priority": int(I32), "complete": { "type": "boolean" },
                    "entries": array_of("CatalogPriceEntry"),
                }),
                &["code", "currency"],
            ),
        ),
        (
            "CatalogPriceEntry",
            object(
                json!({
                    "offering": text(), "one_time": decimal(), "recurring": decimal(),
                    "tiers": { "type": "array", "items": object(json!({ "min_quantity": int(U32), "one_time": decimal(), "recurring": decimal() }), &["min_quantity", "one_time", "recurring"]) },
                    "surcharges": { "type": "array", "items": object(json!({ "characteristic": text(), "value": text(), "one_time": decimal(), "recurring": decimal() }), &["characteristic", "value"]) },
                    "in_bundle": { "type": "array", "items": object(json!({ "bundle": text(), "one_time": decimal(), "recurring": decimal() }), &["bundle", "one_time", "recurring"]) },
                }),
                &["offering"],
            ),
        ),
        (
            "CatalogPromotion",
            object(
                json!({
                    "code": text(), "name": text(), "priority": int(I32), "stacking_group": text(),
                    "stackable": { "type": "boolean" }, "exclusive": { "type": "boolean" },
                    "eligibility": object(json!({
                        "markets": strings(), "channels": strings(), "segments": strings(), "offerings": strings(),
                        "from": nullable(date()), "to": nullable(date()), "customer": { "type": "object" },
                    }), &[]),
                    "effect": object(json!({
                        "kind": { "type": "string", "enum": ["percent", "amount", "override"] },
                        "value": decimal(),
                        "applies_to": { "type": "string", "enum": ["one_time", "recurring", "both"] },
                    }), &["kind", "value", "applies_to"]),
                }),
                &["code", "name", "stacking_group", "effect"],
            ),
        ),
        (
            "CatalogTaxRate",
            object(
                json!({ "market": text(), "rate": decimal() }),
                &["market", "rate"],
            ),
        ),
        (
            "CatalogTechnicalMapping",
            object(
                json!({
                    "offering": text(),
                    "items": { "type": "array", "items": object(json!({
                        "code": text(), "spec": text(),
                        "tasks": array_of("CatalogTask"),
                    }), &["code", "spec", "tasks"]) },
                }),
                &["offering", "items"],
            ),
        ),
        ("CatalogTask", {
            let mut t = object(
                json!({
                    "code": text(), "job_type": text(),
                    "system": { "type": ["string", "null"], "description": format!("One of {} (checked at publish, as every reference)", cpq_catalog::document::SYSTEMS.join(", ")) },
                    "depends_on": strings(), "after_all": strings(),
                }),
                &["code", "job_type"],
            );
            t["description"] = json!("A fulfillment task: `depends_on` names tasks of the same item (of an order task: other order tasks), `after_all` `item/task` pairs of every item of the order (`*`: every item task, order tasks only)");
            t
        }),
        (
            "JsonValue",
            json!({
                "description": "Any JSON value whose strings and keys hold no NUL",
                "anyOf": [
                    { "type": ["null", "boolean", "number"] },
                    { "type": "string", "pattern": NO_NUL },
                    { "type": "array", "items": reference("JsonValue") },
                    { "type": "object", "propertyNames": { "pattern": NO_NUL }, "additionalProperties": reference("JsonValue") },
                ]
            }),
        ),
        (
            "PolicyRuleInput",
            json!({
                "type": "object",
                "properties": {
                    "code": text(), "level": text(),
                    "condition": { "oneOf": [
                        { "type": "object",
                          "properties": {
                              "when": { "type": "string", "enum": ["line_discount_above", "overall_discount_above", "deal_size_above", "margin_below"] },
                              "value": { "anyOf": [decimal(), { "type": "number", "minimum": -7.9e28, "maximum": 7.9e28 }] } },
                          "required": ["when", "value"] },
                        { "type": "object",
                          "properties": { "when": { "type": "string", "const": "non_standard_terms" }, "value": { "type": "null" } },
                          "required": ["when"] },
                    ] },
                },
                "required": ["code", "level", "condition"],
            }),
        ),
        (
            "PolicyTimersInput",
            json!({
                "type": "object",
                "description": "ISO 8601 durations from when a level's task is created (e.g. P1D, PT4H)",
                "properties": { "reminder_after": text(), "escalate_after": text(), "escalation_group": text() },
                "required": ["reminder_after", "escalate_after", "escalation_group"],
            }),
        ),
        (
            "VersionRule",
            json!({
                "type": "object",
                "properties": {
                    "tenant": nullable(text()), "product_line": nullable(text()), "release_flag": nullable(text()),
                    "version": int(I32), "priority": int(I32),
                },
                "required": ["version", "priority"],
            }),
        ),
        (
            "CommentedDecision",
            object(
                json!({
                    "comment": { "type": "string", "pattern": NON_BLANK, "description": "Why: it tells the quote's owner what to change" },
                }),
                &["comment"],
            ),
        ),
        ("ConfigurationItem", {
            let mut c = object(
                json!({
                    "offering": text(),
                    "quantity": int(U32),
                    "characteristics": { "type": "object", "description": "Characteristic code → value (string, decimal string or boolean, by its kind)" },
                    "components": array_of("ConfigurationItem"),
                }),
                &["offering"],
            );
            c["description"] = json!("One node of a configuration: an offering, its quantity (default 1), characteristic values and components");
            c
        }),
    ]
}

pub fn add_schemas(doc: &mut Value) {
    let Some(components) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in schemas() {
        components.insert(name.to_owned(), schema);
    }
}

/// `PUT|DELETE /v1/catalog/versions/{id}/{collection}/{key}` as one path per collection, each
/// with its element's schema: what the server accepts depends on the collection.
pub fn split_catalog_elements(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(generic) = paths.remove("/v1/catalog/versions/{id}/{collection}/{key}") else {
        return;
    };
    for (collection, element, key) in [
        ("offerings", "CatalogOffering", "code"),
        ("rules", "CatalogRule", "code"),
        ("price-lists", "CatalogPriceList", "code"),
        ("promotions", "CatalogPromotion", "code"),
        ("tax-rates", "CatalogTaxRate", "market"),
        ("technical", "CatalogTechnicalMapping", "offering"),
        ("order-tasks", "CatalogTask", "code"),
    ] {
        let mut item = generic.clone();
        for method in ["put", "delete"] {
            let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                let id = format!("{id}_{}", collection.replace('-', "_"));
                op.insert("operationId".into(), json!(id));
            }
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                params.retain(|p| p["name"] != "collection");
                for p in params.iter_mut() {
                    if p["name"] == "key" {
                        p["description"] =
                            json!(format!("The element's `{key}`; a put's body has the same"));
                    }
                }
            }
            if method == "put" {
                op.insert(
                    "requestBody".into(),
                    json!({ "required": true, "content": { "application/json": { "schema": reference(element) } } }),
                );
            }
        }
        paths.insert(
            format!("/v1/catalog/versions/{{id}}/{collection}/{{key}}"),
            item,
        );
    }
}

/// Replaces `schema.properties.property` (keeping its description).
fn set(doc: &mut Value, schema: &str, property: &str, mut value: Value) {
    let Some(p) = doc.pointer_mut(&format!(
        "/components/schemas/{schema}/properties/{property}"
    )) else {
        return;
    };
    if let (Some(d), Some(v)) = (p.get("description").cloned(), value.as_object_mut()) {
        v.entry("description").or_insert(d);
    }
    *p = value;
}

fn set_schema(doc: &mut Value, schema: &str, key: &str, value: Value) {
    if let Some(s) = doc
        .pointer_mut(&format!("/components/schemas/{schema}"))
        .and_then(Value::as_object_mut)
    {
        s.insert(key.to_owned(), value);
    }
}

/// Text that is not blank, has no control characters once trimmed, at most `max` characters.
fn name_text(max: usize) -> Value {
    json!({
        "type": "string",
        "maxLength": max,
        "pattern": r"^\s*[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*\s*$",
    })
}

fn non_blank() -> Value {
    json!({ "type": "string", "pattern": NON_BLANK })
}

/// The constraints the server enforces beyond the Rust types.
pub fn constrain(doc: &mut Value) {
    let currency = json!({ "type": "string", "enum": currencies() });
    let segment = json!({ "type": "string", "enum": ["consumer", "small-business", "enterprise", "public-sector"] });
    let market = json!({ "type": "string", "pattern": "^[A-Z][A-Z0-9-]{1,15}$" });
    let external_ref = json!({ "type": ["string", "null"], "pattern": "^[A-Za-z0-9._:-]{1,64}$" });

    // Statuses and kinds the answers carry, from their tables' CHECK constraints.
    let one_of = |values: &[&str]| json!({ "type": "string", "enum": values });
    set(
        doc,
        "CustomerAccountView",
        "status",
        one_of(&["active", "closed"]),
    );
    set(doc, "CustomerAccountView", "segment", segment.clone());
    set(
        doc,
        "CatalogVersionView",
        "status",
        one_of(&["draft", "published", "retired"]),
    );
    set(doc, "Incident", "status", one_of(&["open", "resolved"]));
    set(
        doc,
        "InstanceIncident",
        "status",
        one_of(&["open", "resolved"]),
    );
    set(
        doc,
        "UserTask",
        "status",
        one_of(&["created", "completed", "cancelled"]),
    );
    set(
        doc,
        "InstanceJob",
        "status",
        one_of(&[
            "activatable",
            "activated",
            "completed",
            "failed",
            "error-thrown",
            "cancelled",
        ]),
    );
    set(
        doc,
        "OfferingHit",
        "kind",
        one_of(&["simple", "configurable", "bundle"]),
    );

    // Customer accounts.
    set(doc, "CreateCustomerAccount", "name", name_text(200));
    set(doc, "CreateCustomerAccount", "segment", segment.clone());
    set(doc, "CreateCustomerAccount", "market", market.clone());
    set(doc, "CreateCustomerAccount", "currency", currency.clone());
    set(
        doc,
        "CreateCustomerAccount",
        "external_ref",
        external_ref.clone(),
    );
    set(
        doc,
        "UpdateCustomerAccount",
        "name",
        nullable(name_text(200)),
    );
    set(doc, "UpdateCustomerAccount", "segment", nullable(segment));
    set(doc, "UpdateCustomerAccount", "market", nullable(market));
    set(
        doc,
        "UpdateCustomerAccount",
        "currency",
        nullable(currency.clone()),
    );
    set(doc, "UpdateCustomerAccount", "external_ref", external_ref);
    // A patch changes something: a field with a value, or external_ref (null removes it).
    set_schema(
        doc,
        "UpdateCustomerAccount",
        "anyOf",
        json!([
            { "required": ["name"], "properties": { "name": { "type": "string" } } },
            { "required": ["segment"], "properties": { "segment": { "type": "string" } } },
            { "required": ["market"], "properties": { "market": { "type": "string" } } },
            { "required": ["currency"], "properties": { "currency": { "type": "string" } } },
            { "required": ["external_ref"] },
        ]),
    );
    set(doc, "CloseCustomerAccount", "reason", name_text(500));

    // Catalog.
    set(
        doc,
        "CreateCatalogVersion",
        "label",
        json!({ "type": "string", "maxLength": 64, "pattern": NON_BLANK }),
    );
    set(
        doc,
        "CreateCatalogVersion",
        "document",
        reference("CatalogDocument"),
    );

    // Configuration and pricing.
    set(
        doc,
        "ValidateConfiguration",
        "configuration",
        reference("ConfigurationItem"),
    );
    set(
        doc,
        "PriceLine",
        "configuration",
        reference("ConfigurationItem"),
    );
    set(
        doc,
        "AddItem",
        "configuration",
        reference("ConfigurationItem"),
    );
    let discount = json!({ "type": ["string", "null"], "pattern": r"^\+?(100(\.0*)?|[0-9]{1,2}(\.[0-9]*)?)$", "description": "Percent off the whole line, 0 to 100, as a decimal string" });
    set(
        doc,
        "PriceLine",
        "manual_discount_percent",
        discount.clone(),
    );
    set(doc, "AddItem", "manual_discount_percent", discount);
    set(doc, "PriceRequestContext", "currency", currency);
    if let Some(items) = doc.pointer_mut("/components/schemas/PriceRequest/properties/items") {
        items["minItems"] = json!(1);
    }

    // Quotes and approvals.
    set(doc, "CancelQuote", "reason", non_blank());
    set(
        doc,
        "PutPolicy",
        "levels",
        json!({ "type": "array", "minItems": 1, "uniqueItems": true, "items": non_blank() }),
    );

    set(doc, "PutPolicy", "rules", array_of("PolicyRuleInput"));
    set(doc, "PutPolicy", "timers", reference("PolicyTimersInput"));

    // Workflow.
    set(doc, "Routing", "rules", array_of("VersionRule"));
    set(
        doc,
        "ActivateJobs",
        "max_jobs",
        json!({ "type": "integer", "minimum": 1, "maximum": 200 }),
    );
    set(
        doc,
        "ActivateJobs",
        "timeout_ms",
        json!({ "type": "integer", "minimum": 100, "maximum": 3_600_000 }),
    );
    set(
        doc,
        "ActivateJobs",
        "request_timeout_ms",
        json!({ "type": "integer", "minimum": 0, "maximum": 60_000 }),
    );
    set(
        doc,
        "FailJob",
        "retry_back_off_ms",
        json!({ "type": "integer", "minimum": 0, "maximum": 604_800_000_u64 }),
    );
    set(
        doc,
        "PublishMessage",
        "time_to_live_ms",
        json!({ "type": "integer", "minimum": 0, "maximum": 315_360_000_000_u64 }),
    );
    set(doc, "ActivateJobs", "job_type", non_blank());
    set(doc, "ActivateJobs", "worker", non_blank());
    set(
        doc,
        "ActivateJobs",
        "tenant_ids",
        json!({ "oneOf": [
            { "type": "null" },
            { "type": "array", "minItems": 1, "maxItems": 100, "items": { "type": "string", "pattern": TENANT } },
            { "type": "array", "minItems": 1, "maxItems": 1, "items": { "type": "string", "const": "*" },
              "description": "Every tenant: needs the all-tenants grant, and stands alone" },
        ] }),
    );
    set(
        doc,
        "FailJob",
        "retries",
        json!({ "type": "integer", "minimum": 0, "maximum": I32.1 }),
    );
    set(doc, "Repair", "reason", non_blank());
    set(doc, "PublishMessage", "name", non_blank());
    set(
        doc,
        "PublishMessage",
        "correlation_key",
        json!({ "type": "string", "minLength": 1 }),
    );
    set(
        doc,
        "PublishMessage",
        "message_id",
        json!({ "type": ["string", "null"], "pattern": NON_BLANK }),
    );
    set(
        doc,
        "WorkerGroupHeartbeat",
        "job_types",
        json!({ "type": "array", "items": non_blank() }),
    );
    set(doc, "WorkerGroupHeartbeat", "worker_version", non_blank());
}

/// Marks every string a request can carry as NUL-free, and free-form JSON as [`JsonValue`]s:
/// walks the request bodies and the query and path parameters, through the schemas they name.
pub fn nul_free(doc: &mut Value) {
    let mut roots = Vec::new();
    let mut visited = std::collections::BTreeSet::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                    for p in params.iter_mut().filter(|p| p["in"] != "header") {
                        if let Some(schema) = p.get_mut("schema") {
                            mark(schema, &mut roots);
                        }
                    }
                }
                if let Some(content) = op
                    .pointer_mut("/requestBody/content")
                    .and_then(Value::as_object_mut)
                {
                    for media in content.values_mut() {
                        if let Some(schema) = media.get_mut("schema") {
                            mark(schema, &mut roots);
                        }
                    }
                }
            }
        }
    }
    while let Some(name) = roots.pop() {
        if name == "JsonValue" || !visited.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            mark(schema, &mut roots);
        }
    }
}

/// One schema: strings get [`NO_NUL`], free-form objects and any-value schemas become JSON
/// without NUL; named schemas are queued.
fn mark(schema: &mut Value, refs: &mut Vec<String>) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.is_empty() {
        *schema = reference("JsonValue");
        return;
    }
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        if let Some(name) = r.strip_prefix("#/components/schemas/") {
            refs.push(name.to_owned());
        }
        return;
    }
    let types: Vec<String> = match obj.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let plain_string = types.iter().any(|t| t == "string")
        && !obj.contains_key("enum")
        && !obj.contains_key("const")
        && !obj.contains_key("format");
    if plain_string {
        match obj.get("pattern").and_then(Value::as_str) {
            None => {
                obj.insert("pattern".into(), json!(NO_NUL));
            }
            Some(r"\S") => {
                obj.insert("pattern".into(), json!(NON_BLANK));
            }
            Some(_) => {}
        }
    }
    // Objects that take keys beyond their properties (free-form, or a type that ignores unknown
    // keys): those keys and their values are JSON without NUL too.
    let object_like = types.iter().any(|t| t == "object") || obj.contains_key("properties");
    if object_like
        && obj
            .get("additionalProperties")
            .is_none_or(|a| a == &Value::Bool(true))
    {
        obj.insert("propertyNames".into(), json!({ "pattern": NO_NUL }));
        obj.insert("additionalProperties".into(), reference("JsonValue"));
    }
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for p in props.values_mut() {
            mark(p, refs);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get_mut(key).filter(|v| v.is_object()) {
            mark(sub, refs);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
            for sub in list.iter_mut() {
                mark(sub, refs);
            }
        }
    }
}
