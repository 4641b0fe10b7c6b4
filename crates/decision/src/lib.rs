//! DMN decisions for the platform: reads a `.dmn` file (DMN 1.1 to 1.5, as Camunda Modeler
//! writes it), lists its decisions and evaluates one of them against JSON input, returning JSON.
//! Decision tables with every hit policy, literal expressions, boxed expressions, business
//! knowledge models, decision services and requirement graphs all evaluate.
//!
//! What this crate owns: the boundary between the platform and the DMN engine. Nothing outside
//! it names an engine type; values cross as [`DecisionValue`] or `serde_json::Value`, failures as
//! [`DecisionError`]. It does no I/O, reads no clock and never panics on any input: the engine is
//! third-party code, so every call into it runs under `catch_unwind` and a panic becomes an error.
//! A stack overflow is not a panic: it aborts the process. So input deep enough to overflow
//! dsntk's recursive parser and evaluator (brackets, operator chains, XML nesting, nested input
//! values) is refused first (`limits`), and so is recursion, which dsntk cannot bound (it has no
//! call-depth limit): a business knowledge model or decision service that invokes itself, by
//! name or through a cycle of knowledge requirements, a FEEL context function that calls
//! itself, and a function applied to itself (`g(g, n)`, how a function passed as an argument
//! recurses). Still open: recursion the reader cannot see (a function passed under another name
//! and calling back through it) can still overflow at run time.
//!
//! Why the engine is Decision Toolkit (`dsntk`, MIT OR Apache-2.0) rather than our own: it
//! passes 3,374 of the 3,390 official DMN TCK cases (Camunda's own engine 2,854), it is
//! maintained, pure Rust with no `unsafe` in our path, and we only take its library crates
//! (model reader, model evaluator, FEEL parser and evaluator), not its CLI or server. Writing a
//! full FEEL and DMN engine of that conformance would be months of work; the TCK runner in
//! `tests/tck.rs` holds dsntk to its figure on every test run.

mod gaps;
/// Limits on FEEL text against dsntk's recursion, also applied by the workflow engine's FEEL.
pub mod limits;
mod value;

use dsntk_feel::context::FeelContext;
use dsntk_feel::values::Value;
use dsntk_feel::FeelScope;
use dsntk_model::{DmnElement, NamedElement};
use dsntk_model_evaluator::ModelEvaluator;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

pub use value::DecisionValue;

/// What went wrong, with the element or input it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The file is not a DMN model the engine accepts (XML, schema or model rules).
    #[error("DMN model refused: {message}")]
    Model { message: String },
    /// No decision, business knowledge model or decision service with that id or name.
    #[error("no decision, business knowledge model or decision service with id or name '{name}' in the model")]
    UnknownDecision { name: String },
    /// The input could not be turned into FEEL values.
    #[error("invalid input for '{decision}': {message}")]
    Input { decision: String, message: String },
    /// The evaluation failed (the engine panicked, or the result has no JSON form).
    #[error("evaluation of '{decision}' failed: {message}")]
    Evaluation { decision: String, message: String },
    /// A FEEL expression that does not parse.
    #[error("FEEL expression '{expression}' does not parse: {message}")]
    Expression { expression: String, message: String },
    /// The evaluation meets a limit of the engine where FEEL defines an answer (see `gaps`):
    /// reported rather than answered wrongly.
    #[error("evaluation of '{decision}' is not supported: {message}")]
    Unsupported { decision: String, message: String },
}

/// Kind of invocable element in a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Decision,
    BusinessKnowledgeModel,
    DecisionService,
}

/// One invocable element of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionInfo {
    pub id: String,
    pub name: String,
    pub kind: DecisionKind,
    /// Camunda's `zeebe:versionTag` on the element (`<extensionElements><zeebe:versionTag
    /// value=".."/>`), what a business rule task with binding type `versionTag` asks for.
    pub version_tag: Option<String>,
}

/// A parsed, checked DMN model ready to evaluate. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct DecisionModel {
    evaluator: Arc<ModelEvaluator>,
    namespace: String,
    name: String,
    id: String,
    invocables: Vec<DecisionInfo>,
    /// Each decision's directly required decisions, by id.
    requirements: Vec<(String, Vec<String>)>,
    /// Per invocable id: the first engine gap in its own FEEL text (see `gaps`), and the ids
    /// it requires or invokes.
    gaps: std::collections::BTreeMap<String, (Option<String>, Vec<String>)>,
}

impl std::fmt::Debug for DecisionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionModel")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("invocables", &self.invocables)
            .finish()
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the DMN engine panicked".to_string())
}

impl DecisionModel {
    /// Reads one DMN file.
    pub fn parse(xml: &str) -> Result<Self, DecisionError> {
        Self::parse_with_imports(xml, &[])
    }

    /// Reads a DMN file together with the DMN files it imports (matched by namespace).
    pub fn parse_with_imports(xml: &str, imports: &[&str]) -> Result<Self, DecisionError> {
        let run = || -> Result<Self, DecisionError> {
            let refused = |e: dsntk_common::DsntkError| {
                let message = e.to_string();
                let owner = std::iter::once(&xml)
                    .chain(imports)
                    .find_map(|file| owner_of_text_in(file, &message));
                DecisionError::Model {
                    message: match owner {
                        Some((tag, id)) => format!("{tag} '{id}': {message}"),
                        None => message,
                    },
                }
            };
            for file in std::iter::once(&xml).chain(imports) {
                check_model_text(file)?;
            }
            let main = dsntk_model::parse(&feel_type_names(xml)).map_err(refused)?;
            let mut all = vec![main];
            for import in imports {
                all.push(dsntk_model::parse(&feel_type_names(import)).map_err(refused)?);
            }
            let main = &all[0];
            let mut invocables = Vec::new();
            for d in main.decisions() {
                invocables.push(info(d.id(), d.name(), DecisionKind::Decision));
            }
            for b in main.business_knowledge_models() {
                invocables.push(info(b.id(), b.name(), DecisionKind::BusinessKnowledgeModel));
            }
            for s in main.decision_services() {
                invocables.push(info(s.id(), s.name(), DecisionKind::DecisionService));
            }
            let tags = version_tags(xml);
            for i in &mut invocables {
                i.version_tag = tags.get(&i.id).cloned();
            }
            let (namespace, name) = (main.namespace().to_string(), main.name().to_string());
            let evaluator = ModelEvaluator::new(&all).map_err(refused)?;
            let (id, requirements) = definitions_and_requirements(xml);
            Ok(Self {
                evaluator,
                namespace,
                name,
                id,
                invocables,
                requirements,
                gaps: text_gaps(xml),
            })
        };
        catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|p| {
            Err(DecisionError::Model {
                message: panic_message(p),
            })
        })
    }

    /// The model's name (the `name` of `<definitions>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Decisions, business knowledge models and decision services, in file order by kind.
    pub fn decisions(&self) -> &[DecisionInfo] {
        &self.invocables
    }

    fn resolve(&self, id_or_name: &str) -> Result<&DecisionInfo, DecisionError> {
        self.invocables
            .iter()
            .find(|d| d.id == id_or_name)
            .or_else(|| self.invocables.iter().find(|d| d.name == id_or_name))
            .ok_or_else(|| DecisionError::UnknownDecision {
                name: id_or_name.to_string(),
            })
    }

    /// Evaluates a decision (or business knowledge model or decision service) by id or name.
    /// `input` is a JSON object whose keys are the model's input data names.
    pub fn evaluate(
        &self,
        decision_id_or_name: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, DecisionError> {
        let input = json_input(decision_id_or_name, input)?;
        Ok(self.evaluate_value(decision_id_or_name, &input)?.to_json())
    }

    /// Evaluates with typed input values (dates, durations and exact numbers as such).
    pub fn evaluate_value(
        &self,
        decision_id_or_name: &str,
        input: &[(String, DecisionValue)],
    ) -> Result<DecisionValue, DecisionError> {
        self.evaluate_engine(decision_id_or_name, input, false)
    }

    fn evaluate_engine(
        &self,
        decision_id_or_name: &str,
        input: &[(String, DecisionValue)],
        strict: bool,
    ) -> Result<DecisionValue, DecisionError> {
        let target = self.resolve(decision_id_or_name)?;
        let decision = decision_id_or_name.to_string();
        if let Some(message) = self.text_gap(&target.id) {
            return Err(DecisionError::Unsupported { decision, message });
        }
        if let Some((name, _)) = input
            .iter()
            .find(|(_, v)| v.depth() > limits::MAX_VALUE_DEPTH)
        {
            return Err(DecisionError::Input {
                decision,
                message: format!(
                    "input '{name}' is nested more than {} deep",
                    limits::MAX_VALUE_DEPTH
                ),
            });
        }
        let run = || {
            let ctx = value::context_to_engine(input).map_err(|message| DecisionError::Input {
                decision: decision.clone(),
                message,
            })?;
            Ok(self
                .evaluator
                .evaluate_invocable(&self.namespace, &self.name, &target.name, &ctx))
        };
        let result = catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|p| {
            Err(DecisionError::Evaluation {
                decision: decision.clone(),
                message: panic_message(p),
            })
        })?;
        if let Some(message) = match &result {
            Value::Null(Some(message)) => gaps::null_gap(message),
            _ => None,
        } {
            return Err(DecisionError::Unsupported { decision, message });
        }
        if strict {
            // The engine reports a hit policy violation (several rules match a UNIQUE table,
            // ANY rules disagree) as a null carrying an `err_` message; strict callers get it
            // as the error it is, as Camunda does. A table no rule matches is a plain null.
            if let Value::Null(Some(message)) = &result {
                if message.starts_with("err_") {
                    return Err(DecisionError::Evaluation {
                        decision,
                        message: message.trim_start_matches("err_").replace('_', " "),
                    });
                }
            }
        }
        DecisionValue::from_engine(&result)
            .map_err(|message| DecisionError::Evaluation { decision, message })
    }

    /// Like [`DecisionModel::evaluate`], but a hit policy violation (several rules match a
    /// UNIQUE table, matching rules of an ANY table disagree) is an error, not a null: what a
    /// platform caller (an API client, a business rule task) should see.
    pub fn evaluate_strict(
        &self,
        decision_id_or_name: &str,
        input: &serde_json::Value,
    ) -> Result<serde_json::Value, DecisionError> {
        let input = json_input(decision_id_or_name, input)?;
        Ok(self
            .evaluate_engine(decision_id_or_name, &input, true)?
            .to_json())
    }

    /// The first engine gap in the FEEL text of `id` or of anything it requires or invokes,
    /// directly or not.
    fn text_gap(&self, id: &str) -> Option<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            if !seen.insert(next) {
                continue;
            }
            if let Some((gap, needs)) = self.gaps.get(next) {
                if gap.is_some() {
                    return gap.clone();
                }
                stack.extend(needs.iter().map(String::as_str));
            }
        }
        None
    }

    /// The model's id (the `id` of `<definitions>`; empty when it has none).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The ids of the decisions `decision_id` requires directly (its `requiredDecision`s), in
    /// file order; empty for an unknown id.
    pub fn required_decisions(&self, decision_id: &str) -> &[String] {
        self.requirements
            .iter()
            .find(|(id, _)| id == decision_id)
            .map(|(_, r)| r.as_slice())
            .unwrap_or_default()
    }

    /// `decision_id` and every decision it requires, directly or not, each once, required
    /// decisions before the decisions that need them (the order they evaluate in).
    pub fn requirement_graph(&self, decision_id: &str) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        // Iterative post-order walk (a model's graph has no cycles; `seen` bounds it anyway).
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![(decision_id.to_string(), false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                if !order.contains(&id) {
                    order.push(id);
                }
                continue;
            }
            if !seen.insert(id.clone()) {
                continue;
            }
            stack.push((id.clone(), true));
            for r in self.required_decisions(&id).iter().rev() {
                stack.push((r.clone(), false));
            }
        }
        order
    }
}

/// dsntk 0.3.0 resolves the DMN 1.1 type names (`dateTime`, `dayTimeDuration`,
/// `yearMonthDuration`) in a `typeRef` but not their FEEL names, which DMN 1.2 and later files
/// use; a value of such a type then becomes null. The two spellings mean the same type, so the
/// FEEL names are rewritten to the ones dsntk reads (TCK 0036 depends on it).
fn feel_type_names(xml: &str) -> std::borrow::Cow<'_, str> {
    const NAMES: [(&str, &str); 3] = [
        ("date and time", "dateTime"),
        ("days and time duration", "dayTimeDuration"),
        ("years and months duration", "yearMonthDuration"),
    ];
    if !NAMES.iter().any(|(feel, _)| xml.contains(feel)) {
        return std::borrow::Cow::Borrowed(xml);
    }
    let mut out = xml.to_string();
    for (feel, legacy) in NAMES {
        out = out
            .replace(
                &format!("typeRef=\"{feel}\""),
                &format!("typeRef=\"{legacy}\""),
            )
            .replace(&format!("typeRef>{feel}</"), &format!("typeRef>{legacy}</"));
    }
    std::borrow::Cow::Owned(out)
}

/// Per decision, business knowledge model and decision service: the first engine gap in its
/// FEEL text, and the ids it requires or invokes (from the `href`s inside it).
fn text_gaps(xml: &str) -> std::collections::BTreeMap<String, (Option<String>, Vec<String>)> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Default::default();
    };
    doc.descendants()
        .filter(|n| {
            matches!(
                n.tag_name().name(),
                "decision" | "businessKnowledgeModel" | "decisionService"
            )
        })
        .filter_map(|n| {
            let id = n.attribute("id")?.to_string();
            let gap = n
                .descendants()
                .filter(|t| t.has_tag_name("text"))
                .filter_map(|t| t.text())
                .find_map(gaps::text_gap);
            let needs = n
                .descendants()
                .filter_map(|r| r.attribute("href"))
                .map(|h| h.rsplit('#').next().unwrap_or(h).to_string())
                .collect();
            Some((id, (gap, needs)))
        })
        .collect()
}

/// dsntk's FEEL errors quote the expression but not its element: finds the element (type and
/// id) that owns the quoted text, so the refusal names it.
fn owner_of_text_in(xml: &str, message: &str) -> Option<(String, String)> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let text = doc.descendants().find(|n| {
        n.has_tag_name("text")
            && n.text()
                .map(str::trim)
                .is_some_and(|t| t.len() >= 3 && message.contains(t))
    })?;
    let owner = text.ancestors().find(|n| {
        n.attribute("id").is_some()
            && matches!(
                n.tag_name().name(),
                "decision" | "businessKnowledgeModel" | "decisionService" | "inputData"
            )
    })?;
    Some((
        owner.tag_name().name().to_string(),
        owner.attribute("id").unwrap_or("").to_string(),
    ))
}

/// Refuses what dsntk must not see: external (Java or PMML) functions, since dsntk evaluates a
/// Java one by an HTTP call to a local RPC server (127.0.0.1:22023), which a tenant's model must
/// never be able to trigger; and nesting deep enough to overflow its stack (see `limits`).
fn check_model_text(xml: &str) -> Result<(), DecisionError> {
    // Not XML: dsntk's own reader reports it.
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Ok(());
    };
    for node in doc.descendants().filter(|n| n.is_element()) {
        let kind = node.attribute("kind").unwrap_or("");
        let external_kind = node.tag_name().name() == "functionDefinition"
            && (kind.eq_ignore_ascii_case("java") || kind.eq_ignore_ascii_case("pmml"));
        let text = (node.tag_name().name() == "text")
            .then(|| node.text())
            .flatten();
        let problem = if external_kind || text.is_some_and(has_external_function) {
            Some("external (Java or PMML) functions are not supported".to_string())
        } else if node.ancestors().count() > limits::MAX_XML_DEPTH {
            Some(format!(
                "elements nested more than {} deep",
                limits::MAX_XML_DEPTH
            ))
        } else if let Some(f) = text.and_then(limits::recursive_context_function) {
            Some(format!(
                "recursive function '{f}' is not supported (the engine has no call-depth limit)"
            ))
        } else if let Some(f) = text.and_then(limits::self_application) {
            Some(format!(
                "function '{f}' applied to itself is not supported (recursion; the engine has no call-depth limit)"
            ))
        } else {
            text.and_then(|t| limits::check_feel(t).err())
        };
        if let Some(problem) = problem {
            let owner = node
                .ancestors()
                .find(|n| n.attribute("id").is_some())
                .map(|n| (n.tag_name().name(), n.attribute("id").unwrap_or("")))
                .unwrap_or(("definitions", ""));
            return Err(DecisionError::Model {
                message: format!("{} '{}': {problem}", owner.0, owner.1),
            });
        }
    }
    check_recursion(&doc)
}

/// Refuses business knowledge models and decision services that invoke themselves, directly
/// (by name in their own FEEL) or through a cycle of knowledge requirements: dsntk has no limit
/// on call depth, so a recursion that does not end (or meets an input it did not expect)
/// overflows the stack and aborts the process.
fn check_recursion(doc: &roxmltree::Document) -> Result<(), DecisionError> {
    let invocables: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("businessKnowledgeModel") || n.has_tag_name("decisionService"))
        .collect();
    let requires = |node: &roxmltree::Node| -> Vec<String> {
        node.descendants()
            .filter(|n| n.has_tag_name("requiredKnowledge") || n.has_tag_name("requiredDecision"))
            .filter_map(|n| n.attribute("href"))
            .map(|h| h.rsplit('#').next().unwrap_or(h).to_string())
            .collect()
    };
    let graph: std::collections::BTreeMap<&str, Vec<String>> = invocables
        .iter()
        .map(|n| (n.attribute("id").unwrap_or(""), requires(n)))
        .collect();
    for node in &invocables {
        let id = node.attribute("id").unwrap_or("");
        let name = node.attribute("name").unwrap_or("");
        let self_call = node
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .any(|t| limits::calls(t, name));
        // Depth-first walk of the requirements, looking for a way back to `id`.
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<&str> = graph
            .get(id)
            .map(|r| r.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut cycle = false;
        while let Some(next) = stack.pop() {
            if next == id {
                cycle = true;
                break;
            }
            if seen.insert(next) {
                if let Some(more) = graph.get(next) {
                    stack.extend(more.iter().map(String::as_str));
                }
            }
        }
        if self_call || cycle {
            return Err(DecisionError::Model {
                message: format!(
                    "{} '{id}': recursive invocation of '{name}' is not supported (the engine has no call-depth limit)",
                    node.tag_name().name()
                ),
            });
        }
    }
    Ok(())
}

/// FEEL `function(..) external {..}`: the keyword after a parameter list's `)`.
fn has_external_function(feel: &str) -> bool {
    feel.match_indices(')').any(|(i, _)| {
        let rest = feel[i + 1..].trim_start();
        rest.strip_prefix("external")
            .is_some_and(|r| r.trim_start().starts_with('{'))
    })
}

fn json_input(
    decision: &str,
    input: &serde_json::Value,
) -> Result<Vec<(String, DecisionValue)>, DecisionError> {
    match DecisionValue::from_json(input) {
        DecisionValue::Context(entries) => Ok(entries),
        DecisionValue::Null => Ok(Vec::new()),
        _ => Err(DecisionError::Input {
            decision: decision.to_string(),
            message: "the input must be a JSON object".to_string(),
        }),
    }
}

/// True when `xml`'s root element is a DMN `<definitions>` (any DMN version's namespace,
/// `https://www.omg.org/spec/DMN/...` or the older `http://` form): how a deployment tells a
/// `.dmn` file from BPMN. Anything that is not XML is not DMN.
pub fn is_dmn(xml: &str) -> bool {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return false;
    };
    let root = doc.root_element();
    root.tag_name().name() == "definitions"
        && root.tag_name().namespace().is_some_and(|ns| {
            ns.starts_with("https://www.omg.org/spec/DMN/")
                || ns.starts_with("http://www.omg.org/spec/DMN/")
        })
}

/// The `<definitions>` id and each decision's required decisions (by id), from the XML.
fn definitions_and_requirements(xml: &str) -> (String, Vec<(String, Vec<String>)>) {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return (String::new(), Vec::new());
    };
    let id = doc.root_element().attribute("id").unwrap_or("").to_string();
    let requirements = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("decision"))
        .map(|d| {
            let required = d
                .children()
                .filter(|n| n.has_tag_name("informationRequirement"))
                .flat_map(|n| n.children())
                .filter(|n| n.has_tag_name("requiredDecision"))
                .filter_map(|n| n.attribute("href"))
                .map(|h| h.rsplit('#').next().unwrap_or(h).to_string())
                .collect();
            (d.attribute("id").unwrap_or("").to_string(), required)
        })
        .collect();
    (id, requirements)
}

fn info(id: &str, name: &str, kind: DecisionKind) -> DecisionInfo {
    DecisionInfo {
        id: id.to_string(),
        name: name.to_string(),
        kind,
        version_tag: None,
    }
}

/// Each element's `zeebe:versionTag` value, by element id (Camunda's namespace,
/// `http://camunda.org/schema/zeebe/1.0`).
fn version_tags(xml: &str) -> std::collections::HashMap<String, String> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Default::default();
    };
    doc.root_element()
        .children()
        .filter_map(|element| {
            let tag = element
                .children()
                .filter(|n| n.has_tag_name("extensionElements"))
                .flat_map(|n| n.children())
                .find(|n| {
                    n.tag_name().name() == "versionTag"
                        && n.tag_name().namespace() == Some("http://camunda.org/schema/zeebe/1.0")
                })?
                .attribute("value")?
                .trim();
            let id = element.attribute("id")?;
            (!tag.is_empty()).then(|| (id.to_string(), tag.to_string()))
        })
        .collect()
}

/// A FEEL expression parsed once and evaluated many times (a gateway condition, a job type).
pub struct FeelExpression {
    text: String,
    evaluator: dsntk_feel::Evaluator,
}

impl std::fmt::Debug for FeelExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeelExpression")
            .field("text", &self.text)
            .finish()
    }
}

impl FeelExpression {
    /// Parses a FEEL expression; `names` are the variable names it may use (FEEL needs them to
    /// read names with spaces).
    pub fn parse(text: &str, names: &[&str]) -> Result<Self, DecisionError> {
        if let Err(message) = limits::check_feel(text) {
            return Err(DecisionError::Expression {
                expression: text.to_string(),
                message,
            });
        }
        let run = || {
            let scope = FeelScope::default();
            let mut ctx = FeelContext::default();
            for name in names {
                ctx.set_entry(&(*name).into(), Value::Null(None));
            }
            scope.push(ctx);
            dsntk_feel_parser::parse_expression(&scope, text, false)
                .map(|node| dsntk_feel_evaluator::prepare(&node))
                .map_err(|e| e.to_string())
        };
        let evaluator = catch_unwind(AssertUnwindSafe(run))
            .unwrap_or_else(|p| Err(panic_message(p)))
            .map_err(|message| DecisionError::Expression {
                expression: text.to_string(),
                message,
            })?;
        Ok(Self {
            text: text.to_string(),
            evaluator,
        })
    }

    /// Evaluates against JSON variables (an object).
    pub fn evaluate(
        &self,
        variables: &serde_json::Value,
    ) -> Result<serde_json::Value, DecisionError> {
        let failed = |message: String| DecisionError::Evaluation {
            decision: self.text.clone(),
            message,
        };
        let entries = match DecisionValue::from_json(variables) {
            DecisionValue::Context(entries) => entries,
            _ => Vec::new(),
        };
        let ctx = value::context_to_engine(&entries).map_err(failed)?;
        let run = || {
            let scope = FeelScope::default();
            scope.push(ctx);
            (self.evaluator)(&scope)
        };
        let result = catch_unwind(AssertUnwindSafe(run)).map_err(|p| failed(panic_message(p)))?;
        Ok(DecisionValue::from_engine(&result)
            .map_err(failed)?
            .to_json())
    }
}

#[cfg(test)]
mod tests;
