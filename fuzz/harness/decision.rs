//! Fuzz harness of the DMN readers (cpq-decision over dsntk): a DMN file, and a FEEL expression
//! on its own. Shared by the fuzz targets and `crates/decision/tests/fuzz_corpus.rs`.
//! `cpq-decision` promises no panic escapes it, whatever the input.

use cpq_decision::{DecisionModel, FeelExpression};

/// Invocables evaluated per accepted model (the first ones, in file order by kind).
const EVALUATED: usize = 3;

/// `dmn_parse`: bytes as UTF-8 through `DecisionModel::parse`; the first invocables of an
/// accepted model are evaluated with an empty input.
pub fn dmn_parse(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = DecisionModel::parse(xml) else {
        return;
    };
    let empty = serde_json::json!({});
    for d in model.decisions().iter().take(EVALUATED) {
        let _ = model.evaluate(&d.id, &empty);
    }
}

/// Names the FEEL inputs may use (names with spaces must be known to the parser).
pub const FEEL_NAMES: [&str; 6] = ["a", "b", "s", "items", "order", "Monthly Salary"];

/// The variables a FEEL input is evaluated against.
pub fn feel_variables() -> serde_json::Value {
    serde_json::json!({
        "a": 1,
        "b": 2.5,
        "s": "text",
        "items": [1, 2, 3, "x", null, {"k": 1}],
        "order": {"id": "O-1", "total": 1234.5, "lines": [{"sku": "A", "qty": 2}]},
        "Monthly Salary": 10000
    })
}

/// `dmn_feel`: bytes as UTF-8 through `FeelExpression::parse`, evaluated against
/// [`feel_variables`].
pub fn dmn_feel(data: &[u8], variables: &serde_json::Value) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = FeelExpression::parse(text, &FEEL_NAMES) {
        let _ = expr.evaluate(variables);
    }
}
