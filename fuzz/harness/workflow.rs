//! Fuzz harness of the workflow readers: the BPMN reader (with its deploy-time checks) and the
//! engine's FEEL subset. Shared by the fuzz targets and `crates/workflow/tests/fuzz_corpus.rs`.
//! Any panic, overflow or stack overflow in here is a bug of the reader.

use chrono::{TimeZone, Utc};
use cpq_workflow::bpmn;
use cpq_workflow::feel::{Env, Expression};

/// `bpmn_read`: bytes as UTF-8 through `bpmn::read` (which runs the deploy-time checks), then
/// what deployment does next with an accepted model (job types, the model as JSON).
pub fn bpmn_read(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(defs) = bpmn::read(xml) {
        for p in &defs.processes {
            let _ = p.job_types();
            for e in &p.elements {
                let _ = bpmn::element_type(&e.kind);
            }
        }
        let _ = serde_json::to_string(&defs);
    }
}

/// The variables every FEEL input is evaluated against.
pub fn feel_variables() -> serde_json::Map<String, serde_json::Value> {
    let json = serde_json::json!({
        "a": 1,
        "b": 2.5,
        "n": -7,
        "big": 79228162514264337593543950335u128.to_string(),
        "s": "text",
        "t": true,
        "f": false,
        "nil": null,
        "d": "2024-02-29",
        "dt": "2024-02-29T23:59:59+01:00",
        "dur": "P1DT2H",
        "items": [1, 2, 3, "x", null, {"k": 1}],
        "order": {"id": "O-1", "total": 1234.5, "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 0}],
                  "customer": {"id": "C-9", "tier": "gold"}},
        "empty": [],
        "ctx": {}
    });
    match json {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// `feel_parse_eval`: bytes as UTF-8 through `Expression::parse`; a parsed expression is
/// evaluated (and tested as a condition) against [`feel_variables`], the result turned into JSON.
pub fn feel_parse_eval(data: &[u8], variables: &serde_json::Map<String, serde_json::Value>) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expression::parse(source) else {
        return;
    };
    let env = Env {
        variables,
        outer: &[],
        now: Utc
            .with_ymd_and_hms(2025, 6, 30, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    };
    if let Ok(value) = expr.evaluate(&env) {
        let _ = value.to_json();
    }
    let _ = expr.holds(&env);
}
