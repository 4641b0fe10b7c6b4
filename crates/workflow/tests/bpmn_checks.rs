#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reader's deploy-time checks, as Zeebe 8 makes them: each refused file lists every problem
//! with the element id, its type and the attribute; files Zeebe deploys are read.

use cpq_workflow::bpmn::{read, DeployError, ElementKind};

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">"#;

fn file(body: &str) -> String {
    format!("{HEAD}\n{body}\n</bpmn:definitions>")
}

/// One executable process `p` with `inner` between a start event `s` and an end event `e`
/// (`inner` supplies its own flows from `s` and to `e`).
fn process(inner: &str) -> String {
    file(&format!(
        r#"<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s" />
  {inner}
  <bpmn:endEvent id="e" />
</bpmn:process>"#
    ))
}

fn problems(xml: &str) -> Vec<String> {
    match read(xml) {
        Err(DeployError::Invalid(p)) => p,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

const TASK: &str = r#"<bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="work" /></bpmn:extensionElements></bpmn:serviceTask>"#;

// ---- 1. every FEEL expression parses, each bad one is named --------------------------------

#[test]
fn good_expressions_everywhere_deploy() {
    let xml = process(
        r#"<bpmn:serviceTask id="t">
    <bpmn:extensionElements>
      <zeebe:taskDefinition type="=&quot;work_&quot; + kind" retries="=2 + 1" />
      <zeebe:ioMapping>
        <zeebe:input source="=order.total" target="total" />
        <zeebe:input source="static text" target="note" />
        <zeebe:output source="=result" target="order.result" />
      </zeebe:ioMapping>
    </bpmn:extensionElements>
    <bpmn:multiInstanceLoopCharacteristics>
      <bpmn:extensionElements>
        <zeebe:loopCharacteristics inputCollection="=items" inputElement="item" outputCollection="results" outputElement="=item.price" />
      </bpmn:extensionElements>
    </bpmn:multiInstanceLoopCharacteristics>
  </bpmn:serviceTask>
  <bpmn:exclusiveGateway id="g" default="f3" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
  <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="g" />
  <bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="e" />
  <bpmn:sequenceFlow id="f4" sourceRef="g" targetRef="e"><bpmn:conditionExpression>=total &gt; 100</bpmn:conditionExpression></bpmn:sequenceFlow>"#,
    );
    let defs = read(&xml).unwrap();
    assert_eq!(defs.processes[0].id, "p");
}

#[test]
fn every_bad_expression_is_listed_with_element_type_and_attribute() {
    let xml = file(
        r#"<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s" />
  <bpmn:serviceTask id="t">
    <bpmn:extensionElements>
      <zeebe:taskDefinition type="=a &amp; b" retries="=(" />
      <zeebe:ioMapping>
        <zeebe:input source="=1 +" target="x" />
        <zeebe:output source="=)" target="y" />
      </zeebe:ioMapping>
    </bpmn:extensionElements>
    <bpmn:multiInstanceLoopCharacteristics>
      <bpmn:extensionElements>
        <zeebe:loopCharacteristics inputCollection="=[1," outputCollection="out" outputElement="=}" />
      </bpmn:extensionElements>
    </bpmn:multiInstanceLoopCharacteristics>
  </bpmn:serviceTask>
  <bpmn:intermediateCatchEvent id="wait">
    <bpmn:timerEventDefinition><bpmn:timeDuration>=duration(</bpmn:timeDuration></bpmn:timerEventDefinition>
  </bpmn:intermediateCatchEvent>
  <bpmn:receiveTask id="r" messageRef="m" />
  <bpmn:endEvent id="e" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
  <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="wait" />
  <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="r" />
  <bpmn:sequenceFlow id="f4" sourceRef="r" targetRef="e"><bpmn:conditionExpression>=a &lt;</bpmn:conditionExpression></bpmn:sequenceFlow>
</bpmn:process>
<bpmn:message id="m" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=order id +" /></bpmn:extensionElements></bpmn:message>"#,
    );
    let found = problems(&xml);
    let expected = [
        "t (serviceTask) zeebe:taskDefinition type: failed to parse expression '=a & b'",
        "t (serviceTask) zeebe:taskDefinition retries: failed to parse expression '=('",
        "t (serviceTask) zeebe:input source: failed to parse expression '=1 +'",
        "t (serviceTask) zeebe:output source: failed to parse expression '=)'",
        "t (serviceTask) zeebe:loopCharacteristics inputCollection: failed to parse expression '=[1,'",
        "t (serviceTask) zeebe:loopCharacteristics outputElement: failed to parse expression '=}'",
        "wait (intermediateCatchEvent) timeDuration: failed to parse expression '=duration('",
        "f4 (sequenceFlow) conditionExpression: failed to parse expression '=a <'",
        "m (message) zeebe:subscription correlationKey: failed to parse expression '=order id +'",
    ];
    for prefix in expected {
        assert!(
            found.iter().any(|p| p.starts_with(prefix)),
            "{prefix}\nnot in:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
    // The parse error itself follows the expression.
    assert!(found.iter().all(|p| p.len() > p.find("': ").unwrap() + 3));
}

#[test]
fn the_refusal_lists_the_expressions_as_the_api_reports_them() {
    let xml = process(
        r#"<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="e"><bpmn:conditionExpression>=(</bpmn:conditionExpression></bpmn:sequenceFlow>"#,
    );
    let message = read(&xml).unwrap_err().to_string();
    assert!(
        message.starts_with(
            "invalid process: f1 (sequenceFlow) conditionExpression: failed to parse expression '=('"
        ),
        "{message}"
    );
}

#[test]
fn mapping_targets_must_be_variable_paths() {
    let xml = process(
        r#"<bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="work" /><zeebe:ioMapping><zeebe:input source="=1" target="a ? b" /><zeebe:output source="=1" target="" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
  <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />"#,
    );
    let found = problems(&xml);
    assert_eq!(
        found,
        [
            "t (serviceTask) zeebe:input target: Expected path expression 'a ? b' but doesn't match the pattern '[a-zA-Z_][a-zA-Z0-9_]*(\\.[a-zA-Z_][a-zA-Z0-9_]*)*'.",
            "t (serviceTask) zeebe:output target: Expected path expression but not found.",
        ]
    );
}

// ---- 2. static values where Zeebe wants an expression ---------------------------------------

#[test]
fn a_static_condition_is_refused_naming_the_flow() {
    let xml = process(
        r#"<bpmn:exclusiveGateway id="g" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g" />
  <bpmn:sequenceFlow id="approved" sourceRef="g" targetRef="e"><bpmn:conditionExpression>order == true</bpmn:conditionExpression></bpmn:sequenceFlow>"#,
    );
    assert_eq!(
        problems(&xml),
        ["approved (sequenceFlow) conditionExpression: Expected expression but found static value 'order == true'. An expression must start with '=' (e.g. '=order == true')."]
    );
}

#[test]
fn static_output_sources_collections_and_correlation_keys_are_refused() {
    let xml = file(
        r#"<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s" />
  <bpmn:serviceTask id="t">
    <bpmn:extensionElements>
      <zeebe:taskDefinition type="work" retries="5" />
      <zeebe:ioMapping><zeebe:input source="kept as text" target="x" /><zeebe:output source="x" target="y" /></zeebe:ioMapping>
    </bpmn:extensionElements>
    <bpmn:multiInstanceLoopCharacteristics>
      <bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="items" /></bpmn:extensionElements>
    </bpmn:multiInstanceLoopCharacteristics>
  </bpmn:serviceTask>
  <bpmn:receiveTask id="r" messageRef="m" />
  <bpmn:endEvent id="e" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
  <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="r" />
  <bpmn:sequenceFlow id="f3" sourceRef="r" targetRef="e" />
</bpmn:process>
<bpmn:message id="m" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="orderId" /></bpmn:extensionElements></bpmn:message>"#,
    );
    let found = problems(&xml);
    let starts: Vec<&str> = found
        .iter()
        .map(|p| {
            &p[..p
                .find(": Expected expression but found static value")
                .unwrap()]
        })
        .collect();
    assert_eq!(
        starts,
        [
            "t (serviceTask) zeebe:output source",
            "t (serviceTask) zeebe:loopCharacteristics inputCollection",
            "m (message) zeebe:subscription correlationKey",
        ]
    );
}

// ---- 3. a process needs an id ---------------------------------------------------------------

#[test]
fn an_executable_process_without_id_is_refused_naming_it() {
    let xml = file(
        r#"<bpmn:process name="Order intake" isExecutable="true">
  <bpmn:startEvent id="s" /><bpmn:endEvent id="e" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="e" />
</bpmn:process>"#,
    );
    assert_eq!(
        problems(&xml),
        ["process #1 (name \"Order intake\") has no id: an executable process needs one"]
    );
}

// ---- 4. embedded subprocess: exactly one none start event -----------------------------------

fn subprocess(inner: &str) -> String {
    process(&format!(
        r#"<bpmn:subProcess id="sub">
    {inner}
    <bpmn:endEvent id="sub_e" />
  </bpmn:subProcess>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="sub" />
  <bpmn:sequenceFlow id="f2" sourceRef="sub" targetRef="e" />"#
    ))
}

#[test]
fn a_subprocess_with_one_none_start_event_deploys() {
    let xml = subprocess(
        r#"<bpmn:startEvent id="sub_s" /><bpmn:sequenceFlow id="sf" sourceRef="sub_s" targetRef="sub_e" />"#,
    );
    let defs = read(&xml).unwrap();
    assert!(defs.processes[0]
        .elements
        .iter()
        .any(|e| e.id == "sub_s" && e.parent.as_deref() == Some("sub")));
}

#[test]
fn a_subprocess_without_or_with_two_or_a_timer_start_event_is_refused_naming_it() {
    let none = subprocess("");
    assert_eq!(
        problems(&none),
        ["sub (subProcess): Must have exactly one none start event, found 0 start event(s) of which 0 none"]
    );
    let two = subprocess(r#"<bpmn:startEvent id="a" /><bpmn:startEvent id="b" />"#);
    assert_eq!(
        problems(&two),
        ["sub (subProcess): Must have exactly one none start event, found 2 start event(s) of which 2 none"]
    );
    let timer = subprocess(
        r#"<bpmn:startEvent id="a"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>"#,
    );
    assert_eq!(
        problems(&timer),
        ["sub (subProcess): Must have exactly one none start event, found 1 start event(s) of which 0 none"]
    );
}

// ---- 5. elements that do not execute are ignored --------------------------------------------

#[test]
fn data_objects_stores_annotations_groups_and_categories_are_ignored() {
    let xml = file(
        r#"<bpmn:category id="cat"><bpmn:categoryValue id="cv" value="Billing" /></bpmn:category>
<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s" />
  <bpmn:serviceTask id="t">
    <bpmn:extensionElements><zeebe:taskDefinition type="work" /></bpmn:extensionElements>
    <bpmn:dataInputAssociation id="di"><bpmn:sourceRef>dor</bpmn:sourceRef><bpmn:targetRef>t</bpmn:targetRef></bpmn:dataInputAssociation>
    <bpmn:dataOutputAssociation id="do"><bpmn:targetRef>dsr</bpmn:targetRef></bpmn:dataOutputAssociation>
  </bpmn:serviceTask>
  <bpmn:endEvent id="e" />
  <bpmn:dataObject id="obj" />
  <bpmn:dataObjectReference id="dor" dataObjectRef="obj" />
  <bpmn:dataStoreReference id="dsr" />
  <bpmn:textAnnotation id="note"><bpmn:text>why</bpmn:text></bpmn:textAnnotation>
  <bpmn:association id="as" sourceRef="t" targetRef="note" />
  <bpmn:group id="grp" categoryValueRef="cv" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
  <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />
</bpmn:process>"#,
    );
    let defs = read(&xml).unwrap();
    let ids: Vec<&str> = defs.processes[0]
        .elements
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ids, ["s", "t", "e"]);
}

#[test]
fn a_collaboration_deploys_its_executable_process_and_ignores_the_other_pool() {
    let xml = file(&format!(
        r#"<bpmn:collaboration id="c">
  <bpmn:participant id="customer" name="Customer" processRef="ext" />
  <bpmn:participant id="shop" name="Shop" processRef="p" />
  <bpmn:messageFlow id="mf" sourceRef="customer" targetRef="shop" />
</bpmn:collaboration>
<bpmn:process id="ext" isExecutable="false">
  <bpmn:task id="think" />
  <bpmn:callActivity id="phone" />
  <bpmn:startEvent id="x"><bpmn:signalEventDefinition /></bpmn:startEvent>
  <bpmn:sequenceFlow id="xf" sourceRef="think" targetRef="nowhere" />
</bpmn:process>
<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s" />
  {TASK}
  <bpmn:endEvent id="e" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
  <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />
</bpmn:process>"#
    ));
    let defs = read(&xml).unwrap();
    let executable: Vec<&str> = defs
        .processes
        .iter()
        .filter(|p| p.executable)
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(executable, ["p"]);
}

#[test]
fn unsupported_elements_in_the_executable_process_are_still_refused() {
    let xml = process(
        r#"<bpmn:dataObject id="obj" /><bpmn:complexGateway id="cx" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="cx" />
  <bpmn:sequenceFlow id="f2" sourceRef="cx" targetRef="e" />"#,
    );
    assert_eq!(
        read(&xml).unwrap_err(),
        DeployError::Unsupported(vec![("cx".into(), "complexGateway".into())])
    );
}

#[test]
fn execution_listeners_are_read_with_their_job_types_and_a_bad_one_is_named() {
    let xml = process(
        r#"<bpmn:serviceTask id="ship"><bpmn:extensionElements><zeebe:taskDefinition type="ship" /><zeebe:executionListeners><zeebe:executionListener eventType="start" type="audit" /><zeebe:executionListener eventType="end" type="notify" retries="5" /></zeebe:executionListeners></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ship" />
  <bpmn:sequenceFlow id="f2" sourceRef="ship" targetRef="e" />"#,
    );
    let defs = read(&xml).unwrap();
    let p = &defs.processes[0];
    assert_eq!(p.element("ship").unwrap().listeners.len(), 2);
    assert_eq!(
        p.job_types(),
        ["audit", "notify", "ship"],
        "recorded at deploy"
    );

    let bad = process(
        r#"<bpmn:serviceTask id="ship"><bpmn:extensionElements><zeebe:taskDefinition type="ship" /><zeebe:executionListeners><zeebe:executionListener eventType="cancel" type="audit" /><zeebe:executionListener eventType="start" /></zeebe:executionListeners></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ship" />
  <bpmn:sequenceFlow id="f2" sourceRef="ship" targetRef="e" />"#,
    );
    assert_eq!(
        problems(&bad),
        [
            "ship (serviceTask): execution listener eventType 'cancel' is not start or end",
            "ship (serviceTask): an execution listener needs a job type",
        ]
    );
}

#[test]
fn only_non_executable_pools_deploy_nothing() {
    let xml = file(
        r#"<bpmn:process id="ext" isExecutable="false"><bpmn:task id="think" /></bpmn:process>"#,
    );
    assert_eq!(problems(&xml), ["the file holds no executable process"]);
}

// ---- 6. Camunda 7 models ----------------------------------------------------------------------

#[test]
fn a_camunda_7_model_is_refused_with_one_message_saying_so() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="t" camunda:class="com.example.Charge" />
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;
    let found = problems(xml);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("Camunda 7 model"), "{}", found[0]);
    assert!(found[0].contains("zeebe:"), "{}", found[0]);
    assert!(!found[0].contains("taskDefinition"), "{}", found[0]);
}

#[test]
fn stray_camunda_7_attributes_in_a_zeebe_model_are_ignored() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="p" isExecutable="true" camunda:versionTag="1">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="charge" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;
    let defs = read(xml).unwrap();
    assert!(matches!(
        defs.processes[0].element("t").unwrap().kind,
        ElementKind::ServiceTask { .. }
    ));
}

// ---- no input crashes the reader --------------------------------------------------------------

fn fixture_texts() -> Vec<(String, String)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/bpmn-modeler");
    let mut texts: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("bpmn"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    texts.sort();
    assert_eq!(texts.len(), 7);
    texts
}

/// Every fixture cut at every 61st character, and with each expression-bearing attribute's
/// text garbled: `read` answers (Ok or Err), it never panics.
#[test]
fn truncated_and_garbled_fixtures_never_panic() {
    let mut runs = 0;
    for (name, text) in fixture_texts() {
        for (cut, _) in text.char_indices().step_by(61) {
            let _ = read(&text[..cut]);
            runs += 1;
        }
        for (from, to) in [
            ("=", "=("),
            ("=", "=[1,"),
            ("=", ""),
            ("\"", ""),
            ("id=\"", "idx=\""),
            ("isExecutable=\"true\"", "isExecutable=\"false\""),
            ("zeebe/1.0", "zeebe/9.9"),
            ("<bpmn:startEvent", "<bpmn:task"),
            ("</bpmn:subProcess>", ""),
        ] {
            let mut at = 0;
            while let Some(i) = text[at..].find(from) {
                let pos = at + i;
                let garbled = format!("{}{to}{}", &text[..pos], &text[pos + from.len()..]);
                let _ = read(&garbled);
                runs += 1;
                at = pos + from.len();
                if runs % 7 == 0 {
                    at += 200.min(text.len() - at);
                }
            }
        }
        assert!(runs > 0, "{name}");
    }
    assert!(runs > 1000, "only {runs} variants read");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Random splices of fixture text (a range deleted and arbitrary text inserted) never panic.
    #[test]
    fn spliced_fixtures_never_panic(
        file in 0usize..7,
        start in 0.0f64..1.0,
        len in 0usize..400,
        insert in "[<>=\"/a-z:. ]{0,20}",
    ) {
        static TEXTS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
        let text = &TEXTS.get_or_init(fixture_texts)[file].1;
        let mut from = (start * text.len() as f64) as usize;
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        let mut to = (from + len).min(text.len());
        while !text.is_char_boundary(to) {
            to += 1;
        }
        let spliced = format!("{}{insert}{}", &text[..from], &text[to..]);
        let _ = read(&spliced);
    }
}

#[test]
fn static_timers_are_checked_at_deploy() {
    let timer = |id: &str, def: &str| {
        format!(
            r#"<bpmn:intermediateCatchEvent id="{id}"><bpmn:timerEventDefinition>{def}</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"#
        )
    };
    let good = process(&format!(
        r#"{}{}{}
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="a" />
  <bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="b" />
  <bpmn:sequenceFlow id="f3" sourceRef="b" targetRef="c" />
  <bpmn:sequenceFlow id="f4" sourceRef="c" targetRef="e" />"#,
        timer("a", "<bpmn:timeDuration>PT15M</bpmn:timeDuration>"),
        timer("b", "<bpmn:timeDate>2026-12-24T18:00:00Z</bpmn:timeDate>"),
        timer("c", "<bpmn:timeCycle>=\"R3/PT10M\"</bpmn:timeCycle>"),
    ));
    read(&good).unwrap();
    let bad = good
        .replace("PT15M", "15 minutes")
        .replace("2026-12-24T18:00:00Z", "Christmas")
        .replace("=\"R3/PT10M\"", "every 10 minutes");
    let found = problems(&bad);
    let starts: Vec<&str> = found
        .iter()
        .map(|p| &p[..p.find(": Expected static value to be").unwrap()])
        .collect();
    assert_eq!(
        starts,
        [
            "a (intermediateCatchEvent) timeDuration",
            "b (intermediateCatchEvent) timeDate",
            "c (intermediateCatchEvent) timeCycle",
        ]
    );
}

/// The platform's own processes pass every deploy-time check.
#[test]
fn the_repository_processes_pass_the_checks() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../processes");
    let mut read_files = 0;
    for path in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        if path.extension().and_then(|e| e.to_str()) == Some("bpmn") {
            let xml = std::fs::read_to_string(&path).unwrap();
            read(&xml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            read_files += 1;
        }
    }
    assert!(read_files >= 2);
}

// ---- event subprocesses ---------------------------------------------------------------------

#[test]
fn event_subprocesses_are_checked_like_zeebe_does() {
    let xml = file(
        r#"<bpmn:error id="Err" errorCode="E1" />
<bpmn:message id="M" name="m" />
<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s" />
  <bpmn:endEvent id="e" />
  <bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" />
  <bpmn:subProcess id="flowing" triggeredByEvent="true">
    <bpmn:startEvent id="fs"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>
    <bpmn:endEvent id="fe" /><bpmn:sequenceFlow id="ff" sourceRef="fs" targetRef="fe" />
  </bpmn:subProcess>
  <bpmn:sequenceFlow id="into" sourceRef="s" targetRef="flowing" />
  <bpmn:subProcess id="soft" triggeredByEvent="true">
    <bpmn:startEvent id="softStart" isInterrupting="false"><bpmn:errorEventDefinition errorRef="Err" /></bpmn:startEvent>
    <bpmn:endEvent id="se" /><bpmn:sequenceFlow id="sf" sourceRef="softStart" targetRef="se" />
  </bpmn:subProcess>
  <bpmn:subProcess id="keyless" triggeredByEvent="true">
    <bpmn:startEvent id="ks"><bpmn:messageEventDefinition messageRef="M" /></bpmn:startEvent>
    <bpmn:endEvent id="ke" /><bpmn:sequenceFlow id="kf" sourceRef="ks" targetRef="ke" />
  </bpmn:subProcess>
</bpmn:process>"#,
    );
    let p = problems(&xml);
    let expected = [
        "flowing (subProcess): An event subprocess must not have incoming or outgoing sequence flows",
        "softStart (startEvent): An error start event of an event subprocess must be interrupting",
        "ks (startEvent): A message start event of an event subprocess needs a correlation key (zeebe:subscription)",
    ];
    for e in expected {
        assert!(p.iter().any(|x| x == e), "{e} not in {p:#?}");
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");

    // A none start event in an event subprocess is refused by element.
    let none = process(
        r#"<bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" />
  <bpmn:subProcess id="esp" triggeredByEvent="true"><bpmn:startEvent id="plain" /><bpmn:endEvent id="ee" /><bpmn:sequenceFlow id="ef" sourceRef="plain" targetRef="ee" /></bpmn:subProcess>"#,
    );
    assert_eq!(
        read(&none).unwrap_err(),
        DeployError::Unsupported(vec![(
            "plain".into(),
            "startEvent without an event definition".into()
        )])
    );
}

// ---- compensation ---------------------------------------------------------------------------

#[test]
fn compensation_handlers_are_linked_by_association_and_checked_like_zeebe_does() {
    let good = process(
        r#"<bpmn:serviceTask id="charge"><bpmn:extensionElements><zeebe:taskDefinition type="charge" /></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:boundaryEvent id="chargeComp" attachedToRef="charge"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
  <bpmn:serviceTask id="refund" isForCompensation="true"><bpmn:extensionElements><zeebe:taskDefinition type="refund" /></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:association id="a1" sourceRef="chargeComp" targetRef="refund" />
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="charge" />
  <bpmn:sequenceFlow id="f2" sourceRef="charge" targetRef="e" />"#,
    );
    let defs = read(&good).unwrap();
    assert_eq!(
        defs.processes[0]
            .compensation_handlers
            .get("charge")
            .map(String::as_str),
        Some("refund")
    );

    let bad = process(
        r#"<bpmn:serviceTask id="charge"><bpmn:extensionElements><zeebe:taskDefinition type="charge" /></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:boundaryEvent id="lonely" attachedToRef="charge"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
  <bpmn:boundaryEvent id="wrong" attachedToRef="charge"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
  <bpmn:serviceTask id="plain"><bpmn:extensionElements><zeebe:taskDefinition type="plain" /></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:association id="a1" sourceRef="wrong" targetRef="plain" />
  <bpmn:serviceTask id="flowing" isForCompensation="true"><bpmn:extensionElements><zeebe:taskDefinition type="x" /></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:intermediateThrowEvent id="undo"><bpmn:compensateEventDefinition activityRef="nowhere" /></bpmn:intermediateThrowEvent>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="charge" />
  <bpmn:sequenceFlow id="f2" sourceRef="charge" targetRef="undo" />
  <bpmn:sequenceFlow id="f3" sourceRef="undo" targetRef="flowing" />
  <bpmn:sequenceFlow id="f4" sourceRef="flowing" targetRef="e" />
  <bpmn:sequenceFlow id="f5" sourceRef="plain" targetRef="e" />"#,
    );
    let p = problems(&bad);
    let expected = [
        "lonely (boundaryEvent): A compensation boundary event must have an association to a compensation handler",
        "wrong (boundaryEvent): The compensation handler 'plain' must be an activity with isForCompensation=\"true\"",
        "flowing (serviceTask): A compensation handler must not have incoming or outgoing sequence flows",
        "undo (intermediateThrowEvent): The compensation activityRef 'nowhere' is not an activity of the process",
    ];
    for e in expected {
        assert!(p.iter().any(|x| x == e), "{e} not in {p:#?}");
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");
}

#[test]
fn a_version_tag_binding_needs_a_version_tag_and_the_process_tag_is_read() {
    let xml = process(
        r#"<bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="other" bindingType="versionTag" /></bpmn:extensionElements></bpmn:callActivity>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call" />
  <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e" />"#,
    );
    assert_eq!(
        problems(&xml),
        ["call (callActivity) zeebe:calledElement versionTag: binding type versionTag needs a versionTag"]
    );
    let tagged = file(
        r#"<bpmn:process id="t" isExecutable="true"><bpmn:extensionElements><zeebe:versionTag value="2026.12" /></bpmn:extensionElements>
  <bpmn:startEvent id="s" /><bpmn:endEvent id="e" /><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" /></bpmn:process>"#,
    );
    assert_eq!(
        read(&tagged).unwrap().processes[0].version_tag.as_deref(),
        Some("2026.12")
    );
}

#[test]
fn a_called_decision_binding_is_latest_deployment_or_a_version_tag_with_its_tag() {
    let task = |attributes: &str| {
        process(&format!(
            r#"<bpmn:businessRuleTask id="rule"><bpmn:extensionElements><zeebe:calledDecision decisionId="tier" resultVariable="r" {attributes} /></bpmn:extensionElements></bpmn:businessRuleTask>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="rule" />
  <bpmn:sequenceFlow id="f2" sourceRef="rule" targetRef="e" />"#
        ))
    };
    assert_eq!(
        problems(&task(r#"bindingType="versionTag""#)),
        ["rule (businessRuleTask) zeebe:calledDecision versionTag: binding type versionTag needs a versionTag"]
    );
    assert_eq!(
        problems(&task(r#"bindingType="newest""#)),
        ["rule (businessRuleTask) zeebe:calledDecision bindingType: 'newest' is not one of latest, deployment, versionTag"]
    );
    for fine in [
        "",
        r#"bindingType="deployment""#,
        r#"bindingType="versionTag" versionTag="v1""#,
    ] {
        assert!(read(&task(fine)).is_ok(), "{fine}: {:?}", read(&task(fine)));
    }
}

#[test]
fn a_process_signal_start_name_expression_is_evaluated_at_deploy_without_variables() {
    let start = |name: &str| {
        file(&format!(
            r#"<bpmn:signal id="Sig" name="{name}" />
<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s"><bpmn:signalEventDefinition signalRef="Sig" /></bpmn:startEvent>
  <bpmn:endEvent id="e" />
  <bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" />
</bpmn:process>"#
        ))
    };
    let read_name = |xml: &str| match &read(xml).unwrap().processes[0].elements[0].kind {
        ElementKind::StartEvent {
            trigger: cpq_workflow::bpmn::Trigger::Signal { name },
        } => name.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        read_name(&start(r#"=&quot;order-&quot; + &quot;cancelled&quot;"#)),
        "order-cancelled"
    );
    assert_eq!(read_name(&start("cancelled")), "cancelled");
    assert_eq!(
        problems(&start("=signalName")),
        ["s (startEvent): the signal name '=signalName' of a process's start event must give a name at deploy, without variables: it gave null, not a name"]
    );
    let p = problems(&start("=1 +"));
    assert!(
        p.iter()
            .any(|m| m.starts_with("s (startEvent): the signal name '=1 +'")),
        "{p:?}"
    );
}
