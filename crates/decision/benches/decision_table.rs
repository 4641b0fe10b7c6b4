//! Decision evaluation cost: a 20-rule decision table (discount by customer segment and order
//! value, UNIQUE hit policy) evaluated once per iteration from JSON to JSON, and one FEEL gateway
//! condition. Run with `cargo bench -p cpq-decision --bench decision_table`.

use cpq_decision::{DecisionModel, FeelExpression};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::hint::black_box;

const SEGMENTS: [&str; 4] = ["consumer", "small-business", "enterprise", "public-sector"];
const BANDS: [&str; 5] = [
    "&lt; 1000",
    "[1000..5000)",
    "[5000..20000)",
    "[20000..100000)",
    "&gt;= 100000",
];

fn discount_table() -> String {
    let mut rules = String::new();
    for (s, segment) in SEGMENTS.iter().enumerate() {
        for (b, band) in BANDS.iter().enumerate() {
            let discount = format!("0.{:02}", s * 2 + b * 3);
            rules.push_str(&format!(
                r#"<rule id="r{s}{b}"><inputEntry><text>"{segment}"</text></inputEntry><inputEntry><text>{band}</text></inputEntry><outputEntry><text>{discount}</text></outputEntry></rule>"#
            ));
        }
    }
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="Discounts" namespace="http://cpq/bench">
  <decision id="discount" name="Discount">
    <variable name="Discount" typeRef="number"/>
    <informationRequirement><requiredInput href="#segment"/></informationRequirement>
    <informationRequirement><requiredInput href="#orderValue"/></informationRequirement>
    <decisionTable hitPolicy="UNIQUE">
      <input><inputExpression typeRef="string"><text>segment</text></inputExpression></input>
      <input><inputExpression typeRef="number"><text>order value</text></inputExpression></input>
      <output name="discount" typeRef="number"/>
      {rules}
    </decisionTable>
  </decision>
  <inputData id="segment" name="segment"><variable name="segment" typeRef="string"/></inputData>
  <inputData id="orderValue" name="order value"><variable name="order value" typeRef="number"/></inputData>
</definitions>"##
    )
}

fn benches(c: &mut Criterion) {
    let model = match DecisionModel::parse(&discount_table()) {
        Ok(m) => m,
        Err(e) => panic!("bench model refused: {e}"),
    };
    // The last rule (public-sector, >= 100000): every rule is tested before the answer.
    let input = json!({"segment": "public-sector", "order value": 250000});
    match model.evaluate("discount", &input) {
        Ok(v) if v == json!(0.18) => {}
        other => panic!("unexpected discount: {other:?}"),
    }
    c.bench_function("decision_table_20_rules", |b| {
        b.iter(|| model.evaluate(black_box("discount"), black_box(&input)))
    });

    let condition = match FeelExpression::parse(
        r#"order value >= 10000 and segment in ["enterprise", "public-sector"]"#,
        &["order value", "segment"],
    ) {
        Ok(c) => c,
        Err(e) => panic!("bench condition refused: {e}"),
    };
    let variables = json!({"segment": "enterprise", "order value": 12500});
    match condition.evaluate(&variables) {
        Ok(serde_json::Value::Bool(true)) => {}
        other => panic!("unexpected condition result: {other:?}"),
    }
    c.bench_function("feel_condition", |b| {
        b.iter(|| condition.evaluate(black_box(&variables)))
    });
}

criterion_group!(decision, benches);
criterion_main!(decision);
