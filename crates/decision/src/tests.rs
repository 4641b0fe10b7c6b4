//! Unit tests: decision tables with the UNIQUE, FIRST and COLLECT/SUM hit policies, a literal
//! expression, JSON in and out, and refusals that name what is wrong.

use super::*;
use serde_json::json;

fn table(hit_policy: &str, aggregation: &str, rules: &[(&str, &str, &str)]) -> String {
    let rules: String = rules
        .iter()
        .map(|(segment, value, out)| {
            format!(
                r#"<rule><inputEntry><text>{segment}</text></inputEntry><inputEntry><text>{value}</text></inputEntry><outputEntry><text>{out}</text></outputEntry></rule>"#
            )
        })
        .collect();
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="discounts" name="Discounts" namespace="http://cpq/discounts">
  <decision id="discount" name="Discount">
    <variable name="Discount" typeRef="number"/>
    <informationRequirement><requiredInput href="#segment"/></informationRequirement>
    <informationRequirement><requiredInput href="#orderValue"/></informationRequirement>
    <decisionTable hitPolicy="{hit_policy}" {aggregation}>
      <input label="Segment"><inputExpression typeRef="string"><text>Segment</text></inputExpression></input>
      <input label="Order value"><inputExpression typeRef="number"><text>Order value</text></inputExpression></input>
      <output name="discount" typeRef="number"/>
      {rules}
    </decisionTable>
  </decision>
  <inputData id="segment" name="Segment"><variable name="Segment" typeRef="string"/></inputData>
  <inputData id="orderValue" name="Order value"><variable name="Order value" typeRef="number"/></inputData>
</definitions>"##
    )
}

fn discounts(hit_policy: &str, aggregation: &str) -> DecisionModel {
    let xml = table(
        hit_policy,
        aggregation,
        &[
            (r#""enterprise""#, "&gt;= 10000", "0.15"),
            (r#""enterprise""#, "&lt; 10000", "0.1"),
            (r#""small-business""#, "-", "0.05"),
            ("-", "&gt;= 50000", "0.02"),
        ],
    );
    match DecisionModel::parse(&xml) {
        Ok(model) => model,
        Err(e) => panic!("model refused: {e}"),
    }
}

fn eval(model: &DecisionModel, input: serde_json::Value) -> serde_json::Value {
    match model.evaluate("discount", &input) {
        Ok(v) => v,
        Err(e) => panic!("evaluation failed: {e}"),
    }
}

#[test]
fn lists_decisions_by_id_and_name() {
    let model = discounts("UNIQUE", "");
    assert_eq!(model.name(), "Discounts");
    assert_eq!(
        model.decisions(),
        &[DecisionInfo {
            id: "discount".into(),
            name: "Discount".into(),
            kind: DecisionKind::Decision,
            version_tag: None,
        }]
    );
}

#[test]
fn unique_hit_policy_matches_one_rule_by_id_or_name() {
    let model = discounts("UNIQUE", "");
    let input = json!({"Segment": "enterprise", "Order value": 12000});
    assert_eq!(eval(&model, input.clone()), json!(0.15));
    assert_eq!(model.evaluate("Discount", &input), Ok(json!(0.15)));
    let small = json!({"Segment": "enterprise", "Order value": 500});
    assert_eq!(eval(&model, small), json!(0.1));
    // Two rules match (enterprise >= 10000 and any >= 50000): UNIQUE yields null.
    let overlap = json!({"Segment": "enterprise", "Order value": 60000});
    assert_eq!(eval(&model, overlap), json!(null));
    // No rule matches.
    let none = json!({"Segment": "consumer", "Order value": 10});
    assert_eq!(eval(&model, none), json!(null));
}

#[test]
fn first_hit_policy_takes_the_first_match_in_rule_order() {
    let model = discounts("FIRST", "");
    let overlap = json!({"Segment": "enterprise", "Order value": 60000});
    assert_eq!(eval(&model, overlap), json!(0.15));
    let only_last = json!({"Segment": "consumer", "Order value": 60000});
    assert_eq!(eval(&model, only_last), json!(0.02));
}

#[test]
fn collect_sum_adds_every_matching_output_exactly() {
    let model = discounts("COLLECT", r#"aggregation="SUM""#);
    let overlap = json!({"Segment": "enterprise", "Order value": 60000});
    // 0.15 + 0.02 in decimal arithmetic, not 0.16999999999999998.
    assert_eq!(eval(&model, overlap), json!(0.17));
    let input = vec![
        (
            "Segment".to_string(),
            DecisionValue::String("small-business".into()),
        ),
        (
            "Order value".to_string(),
            DecisionValue::Number("50000".into()),
        ),
    ];
    assert_eq!(
        model.evaluate_value("discount", &input),
        Ok(DecisionValue::Number("0.07".into()))
    );
}

const LITERAL: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="terms" name="Terms" namespace="http://cpq/terms">
  <decision id="renewal" name="Renewal date">
    <variable name="Renewal date" typeRef="date"/>
    <informationRequirement><requiredInput href="#start"/></informationRequirement>
    <informationRequirement><requiredInput href="#months"/></informationRequirement>
    <literalExpression><text>date(Start) + duration("P" + string(Months) + "M")</text></literalExpression>
  </decision>
  <decision id="total" name="Total">
    <variable name="Total" typeRef="number"/>
    <literalExpression><text>1/3 * 3 + 0.1 + 0.2</text></literalExpression>
  </decision>
  <inputData id="start" name="Start"><variable name="Start" typeRef="string"/></inputData>
  <inputData id="months" name="Months"><variable name="Months" typeRef="number"/></inputData>
</definitions>"##;

#[test]
fn literal_expression_returns_dates_as_iso_strings_and_exact_decimals() {
    let model = match DecisionModel::parse(LITERAL) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let input = json!({"Start": "2026-12-05", "Months": 14});
    assert_eq!(model.evaluate("renewal", &input), Ok(json!("2028-02-05")));
    let total = model.evaluate("total", &json!({}));
    assert_eq!(total, Ok(json!(1.3)));
}

#[test]
fn refusals_name_what_is_wrong_and_never_panic() {
    let bad_xml = DecisionModel::parse("<definitions");
    assert!(
        matches!(bad_xml, Err(DecisionError::Model { .. })),
        "{bad_xml:?}"
    );
    let not_dmn = DecisionModel::parse("<html/>");
    assert!(
        matches!(not_dmn, Err(DecisionError::Model { .. })),
        "{not_dmn:?}"
    );
    let model = discounts("UNIQUE", "");
    assert_eq!(
        model.evaluate("nope", &json!({})),
        Err(DecisionError::UnknownDecision {
            name: "nope".into()
        })
    );
    let wrong = model.evaluate("discount", &json!([1]));
    assert!(
        matches!(wrong, Err(DecisionError::Input { .. })),
        "{wrong:?}"
    );
    // Every prefix of a valid model is refused or read, never a panic.
    let xml = table("UNIQUE", "", &[("-", "-", "1")]);
    for end in (0..xml.len()).filter(|i| xml.is_char_boundary(*i)) {
        let _ = DecisionModel::parse(&xml[..end]);
    }
}

#[test]
fn feel_expression_evaluates_conditions_against_json() {
    let condition = match FeelExpression::parse(
        "order value > 1000 and segment in [\"a\",\"b\"]",
        &["order value", "segment"],
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let vars = json!({"order value": 1500, "segment": "b"});
    assert_eq!(condition.evaluate(&vars), Ok(json!(true)));
    let vars = json!({"order value": 15, "segment": "b"});
    assert_eq!(condition.evaluate(&vars), Ok(json!(false)));
    let bad = FeelExpression::parse("1 +", &[]);
    assert!(
        matches!(bad, Err(DecisionError::Expression { .. })),
        "{bad:?}"
    );
}

#[test]
fn external_functions_are_refused_with_their_element() {
    let java = LITERAL.replace(
        "1/3 * 3 + 0.1 + 0.2",
        r#"{ max: function(a, b) external { java: { class: "java.lang.Math", method signature: "max(double, double)" } }, r: max(1, 2) }.r"#,
    );
    assert_eq!(
        DecisionModel::parse(&java).map(|_| ()),
        Err(DecisionError::Model {
            message: "decision 'total': external (Java or PMML) functions are not supported".into()
        })
    );
}

#[test]
fn expressions_too_deep_for_the_engine_are_refused_not_crashed() {
    // Each of these, unchecked, overflows the engine's stack (an abort no catch_unwind stops).
    let depth = 100_000;
    let shapes = [
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth)),
        format!("{}1{}", "{a:".repeat(depth), "}".repeat(depth)),
        format!("{}1", "- ".repeat(depth)),
        format!("{}1{}", "not(".repeat(depth), ")".repeat(depth)),
        format!(
            "{}1{}",
            "if true then ".repeat(depth),
            " else 0".repeat(depth)
        ),
        format!("1{}", " + 1".repeat(depth)),
        format!("1{}", " and true".repeat(depth)),
    ];
    for text in &shapes {
        let refused = FeelExpression::parse(text, &[]);
        assert!(
            matches!(&refused, Err(DecisionError::Expression { message, .. }) if message.contains("too deep") || message.contains("too many")),
            "{:?}",
            refused.map(|_| ())
        );
    }
    // Strings do not count: brackets and operators inside a literal are text.
    let quoted = format!("\"{}\" != null", "(+".repeat(1000));
    assert!(FeelExpression::parse(&quoted, &[]).is_ok());

    let nested = LITERAL.replace("1/3 * 3 + 0.1 + 0.2", &shapes[5]);
    let refused = DecisionModel::parse(&nested);
    assert!(
        matches!(&refused, Err(DecisionError::Model { message }) if message.starts_with("decision 'total': FEEL expression has too many operators")),
        "{refused:?}"
    );
    let deep_xml = format!(
        "<definitions xmlns=\"https://www.omg.org/spec/DMN/20191111/MODEL/\">{}{}</definitions>",
        "<context>".repeat(10_000),
        "</context>".repeat(10_000)
    );
    assert!(matches!(
        DecisionModel::parse(&deep_xml),
        Err(DecisionError::Model { .. })
    ));

    // JSON parsed by serde_json is at most 128 deep; deeper than our 64 is refused.
    let mut input = json!(1);
    for _ in 0..100 {
        input = json!([input]);
    }
    let model = discounts("UNIQUE", "");
    let refused = model.evaluate("discount", &json!({ "Segment": input }));
    assert!(
        matches!(refused, Err(DecisionError::Input { .. })),
        "{refused:?}"
    );
}

#[test]
fn a_bad_feel_expression_is_refused_naming_its_decision() {
    let bad = LITERAL.replace("1/3 * 3 + 0.1 + 0.2", "1 + * 2 (");
    match DecisionModel::parse(&bad) {
        Err(DecisionError::Model { message }) => {
            assert!(message.starts_with("decision 'total': "), "{message}")
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn one_model_evaluates_on_several_threads_at_once() {
    let model = discounts("FIRST", "");
    let answers: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = [500, 12000, 60000]
            .into_iter()
            .map(|value| {
                let model = &model;
                scope.spawn(move || {
                    eval(
                        model,
                        json!({"Segment": "enterprise", "Order value": value}),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(json!("thread panicked")))
            .collect()
    });
    assert_eq!(answers, vec![json!(0.1), json!(0.15), json!(0.15)]);
}

#[test]
fn numbers_become_json_numbers_only_when_exact() {
    let cases = [
        ("10 ** 30", json!(1e30)),
        ("1 / 10 ** 12", json!(1e-12)),
        ("-0.5", json!(-0.5)),
        // Trailing zeros are scale, not value: 100.00 is the JSON number 100.
        ("100.00", json!(100)),
        ("decimal(1, 2)", json!(1)),
        // No f64 holds these: the exact decimal text instead.
        ("1/3", json!("0.3333333333333333333333333333333333")),
        (
            "0.1 + 0.2 + 0.0000000000000000000001",
            json!("0.3000000000000000000001"),
        ),
    ];
    for (text, expected) in cases {
        let value = FeelExpression::parse(text, &[]).and_then(|e| e.evaluate(&json!({})));
        assert_eq!(value, Ok(expected), "{text}");
    }
}

#[test]
fn recursion_is_refused_because_the_engine_cannot_bound_it() {
    let feel = LITERAL.replace(
        "1/3 * 3 + 0.1 + 0.2",
        "{ count down: function(n) if n = 0 then 0 else count down(n - 1), r: count down(3) }.r",
    );
    match DecisionModel::parse(&feel) {
        Err(DecisionError::Model { message }) => assert_eq!(
            message,
            "decision 'total': recursive function 'count down' is not supported (the engine has no call-depth limit)"
        ),
        other => panic!("not refused: {other:?}"),
    }
    let bkm = r##"<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="r" name="R" namespace="http://cpq/r">
  <businessKnowledgeModel id="fact" name="factorial">
    <encapsulatedLogic><formalParameter name="n" typeRef="number"/>
      <literalExpression><text>if n &lt;= 1 then 1 else n * factorial(n - 1)</text></literalExpression>
    </encapsulatedLogic>
  </businessKnowledgeModel>
</definitions>"##;
    match DecisionModel::parse(bkm) {
        Err(DecisionError::Model { message }) => assert_eq!(
            message,
            "businessKnowledgeModel 'fact': recursive invocation of 'factorial' is not supported (the engine has no call-depth limit)"
        ),
        other => panic!("not refused: {other:?}"),
    }
    // A longer name that ends with another function's name is not a call of it.
    assert!(!limits::calls("single encode to hex(n)", "to hex"));
    assert!(limits::calls("then to hex(n)", "to hex"));
    assert!(limits::calls("1 + to hex (n)", "to hex"));
}

#[test]
fn strict_evaluation_reports_a_hit_policy_violation_and_keeps_a_plain_null() {
    let model = discounts("UNIQUE", "");
    let overlap = json!({"Segment": "enterprise", "Order value": 60000});
    match model.evaluate_strict("discount", &overlap) {
        Err(DecisionError::Evaluation { decision, message }) => {
            assert_eq!(decision, "discount");
            assert_eq!(message, "multiple rules match in unique hit policy");
        }
        other => panic!("not refused: {other:?}"),
    }
    // No rule matches: null, as Camunda answers, not an error.
    let none = json!({"Segment": "consumer", "Order value": 10});
    assert_eq!(model.evaluate_strict("discount", &none), Ok(json!(null)));
    let one = json!({"Segment": "enterprise", "Order value": 500});
    assert_eq!(model.evaluate_strict("discount", &one), Ok(json!(0.1)));
}

#[test]
fn the_requirement_graph_lists_required_decisions_before_their_dependants() {
    let xml = r##"<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="drg" name="DRG" namespace="http://cpq/drg">
  <decision id="c" name="C"><informationRequirement><requiredDecision href="#a"/></informationRequirement>
    <informationRequirement><requiredDecision href="#b"/></informationRequirement>
    <literalExpression><text>A + B</text></literalExpression></decision>
  <decision id="b" name="B"><informationRequirement><requiredDecision href="#a"/></informationRequirement>
    <literalExpression><text>A * 2</text></literalExpression></decision>
  <decision id="a" name="A"><literalExpression><text>1</text></literalExpression></decision>
</definitions>"##;
    let model = match DecisionModel::parse(xml) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    assert!(is_dmn(xml));
    assert!(!is_dmn(
        "<definitions xmlns=\"http://www.omg.org/spec/BPMN/20100524/MODEL\"/>"
    ));
    assert!(!is_dmn("not xml"));
    assert_eq!(model.id(), "drg");
    assert_eq!(model.required_decisions("c"), ["a", "b"]);
    assert_eq!(model.requirement_graph("c"), ["a", "b", "c"]);
    assert_eq!(model.requirement_graph("a"), ["a"]);
    assert_eq!(model.evaluate_strict("c", &json!({})), Ok(json!(3)));
}

#[test]
fn reads_each_decisions_zeebe_version_tag() {
    let xml = table("UNIQUE", "", &[("-", "-", "0")])
        .replace(
            "<definitions ",
            r#"<definitions xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" "#,
        )
        .replace(
            r#"<decision id="discount" name="Discount">"#,
            r#"<decision id="discount" name="Discount"><extensionElements><zeebe:versionTag value=" v2 "/></extensionElements>"#,
        );
    let model = DecisionModel::parse(&xml).expect("model with a version tag");
    assert_eq!(model.decisions()[0].version_tag.as_deref(), Some("v2"));
    // A versionTag in another namespace is not Camunda's.
    let other = xml.replace("http://camunda.org/schema/zeebe/1.0", "urn:other");
    let model = DecisionModel::parse(&other).expect("model");
    assert_eq!(model.decisions()[0].version_tag, None);
}
