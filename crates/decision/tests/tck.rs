//! The official DMN TCK (`../shared/fixtures/dmn-tck/TestCases/`) run against `cpq-decision`.
//!
//! Every folder's model (the test file's `<modelName>`, with the folder's other `.dmn` files as
//! its imports) is read, every `<testCase>` evaluated and each `<resultNode>` compared with the
//! expected value by the TCK's rules: numbers by exact decimal value, strings exactly, dates,
//! times and durations in canonical form, lists item by item, contexts entry by entry by name,
//! `nil` as null (and an `errorResult` expects null, the engine's answer to an error).
//! A case is passed (every result node right), failed (a wrong answer) or not supported (the
//! model or the invocation refused with an error). The test fails when fewer cases pass than
//! `tck-floor.txt` records, when a case fails that `tck-known-failures.txt` does not list, or
//! when that file lists a case that no longer fails (so the list stays exact).
//! Run `cargo test -p cpq-decision --test tck -- --nocapture` for the per-folder table.

use cpq_decision::{DecisionError, DecisionModel, DecisionValue};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[derive(Default, Clone, Copy)]
struct Tally {
    passed: usize,
    /// Of `passed`, how many needed the 1e-8 number tolerance.
    tolerance: usize,
    failed: usize,
    unsupported: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.tolerance += other.tolerance;
        self.failed += other.failed;
        self.unsupported += other.unsupported;
    }
    fn total(&self) -> usize {
        self.passed + self.failed + self.unsupported
    }
}

enum Outcome {
    Passed,
    /// Passed with a number within the TCK's 1e-8 tolerance, not exactly.
    PassedWithinTolerance(String),
    Failed(String),
    Unsupported(String),
}

fn tck_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/dmn-tck/TestCases")
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    entries.sort();
    entries
}

fn read(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// A TCK value (`<value>`, `<component>`s, `<list>` under an inputNode, expected, component or
/// item element).
fn tck_value(node: roxmltree::Node) -> Result<DecisionValue, String> {
    let elements: Vec<roxmltree::Node> = node.children().filter(|n| n.is_element()).collect();
    if let Some(value) = elements.iter().find(|n| n.has_tag_name("value")) {
        return simple_value(*value);
    }
    if let Some(list) = elements.iter().find(|n| n.has_tag_name("list")) {
        if list.attribute((XSI, "nil")) == Some("true") {
            return Ok(DecisionValue::Null);
        }
        let items = list
            .children()
            .filter(|n| n.has_tag_name("item"))
            .map(tck_value)
            .collect::<Result<_, _>>()?;
        return Ok(DecisionValue::List(items));
    }
    let components: Vec<_> = elements
        .iter()
        .filter(|n| n.has_tag_name("component"))
        .collect();
    if !components.is_empty() {
        let mut entries = Vec::new();
        for c in components {
            let name = c.attribute("name").ok_or("component without a name")?;
            let value = if c.attribute((XSI, "nil")) == Some("true") {
                DecisionValue::Null
            } else {
                tck_value(*c)?
            };
            entries.push((name.to_string(), value));
        }
        return Ok(DecisionValue::Context(entries));
    }
    if node.attribute((XSI, "nil")) == Some("true") {
        return Ok(DecisionValue::Null);
    }
    Err(format!("no value in <{}>", node.tag_name().name()))
}

fn simple_value(value: roxmltree::Node) -> Result<DecisionValue, String> {
    if value.attribute((XSI, "nil")) == Some("true") {
        return Ok(DecisionValue::Null);
    }
    // A <value> may itself hold components or a list.
    if value.children().any(|n| n.is_element()) {
        return tck_value(value);
    }
    let text = value.text().unwrap_or("").to_string();
    // An untyped value is outside the TCK's format (the non-compliant folder uses them): we
    // do not guess whether "10" is a number or a string.
    let Some(typ) = value.attribute((XSI, "type")) else {
        return Err(format!("value '{text}' without xsi:type"));
    };
    let typ = typ.rsplit(':').next().unwrap_or(typ);
    Ok(match typ {
        "string" => DecisionValue::String(text),
        "decimal" | "integer" | "double" | "int" | "long" => {
            DecisionValue::Number(text.trim().to_string())
        }
        "boolean" => DecisionValue::Boolean(text.trim() == "true"),
        "date" => DecisionValue::Date(text.trim().to_string()),
        "time" => DecisionValue::Time(text.trim().to_string()),
        "dateTime" => DecisionValue::DateTime(text.trim().to_string()),
        "duration" => DecisionValue::Duration(text.trim().to_string()),
        other => return Err(format!("unknown xsi:type '{other}'")),
    })
}

/// A decimal as (negative, digits without leading/trailing zeros, exponent of the last digit).
fn decimal_key(text: &str) -> Option<(bool, String, i64)> {
    let text = text.trim();
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let trimmed_end = digits.trim_end_matches('0');
    exp += (digits.len() - trimmed_end.len()) as i64;
    let digits = trimmed_end.trim_start_matches('0').to_string();
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, digits, exp))
}

/// A decimal scaled by 10^12 and truncated, when it fits an i128.
fn scaled(key: &(bool, String, i64)) -> Option<i128> {
    let (negative, digits, exp) = key;
    let shift = exp + 12;
    let mut value: i128 = 0;
    let kept = if shift >= 0 {
        digits.len()
    } else {
        digits.len().saturating_sub(usize::try_from(-shift).ok()?)
    };
    for c in digits[..kept].chars() {
        value = value
            .checked_mul(10)?
            .checked_add(i128::from(c.to_digit(10)?))?;
    }
    for _ in 0..shift.max(0) {
        value = value.checked_mul(10)?;
    }
    Some(if *negative { -value } else { value })
}

/// How two numbers compare: exactly equal, within the TCK's tolerance, or different.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    Exact,
    Tolerance,
    Different,
}

/// Numbers: exact decimal equality, or a difference below 1e-8, the tolerance of the TCK's
/// reference runner (`NUMBER_COMPARISON_PRECISION` in dmn-tck's Drools runner): the expected
/// values of `exp`, `log`, `sqrt` and loan formulas were written from `double` arithmetic with
/// 8 to 15 digits, while FEEL numbers carry 34. Every such case is counted and printed apart.
fn same_number(expected: &str, actual: &str) -> Match {
    let (Some(e), Some(a)) = (decimal_key(expected), decimal_key(actual)) else {
        return Match::Different;
    };
    if e == a {
        return Match::Exact;
    }
    match (scaled(&e), scaled(&a)) {
        (Some(e), Some(a)) if (e - a).abs() < 10_000 => Match::Tolerance,
        _ => Match::Different,
    }
}

fn same(expected: &DecisionValue, actual: &DecisionValue) -> Match {
    use DecisionValue as V;
    let all = |mut matches: Vec<Match>| matches.drain(..).max().unwrap_or(Match::Exact);
    match (expected, actual) {
        (V::Number(e), V::Number(a)) => same_number(e, a),
        (V::List(e), V::List(a)) if e.len() == a.len() => {
            all(e.iter().zip(a).map(|(e, a)| same(e, a)).collect())
        }
        (V::Context(e), V::Context(a)) if e.len() == a.len() => {
            let a: BTreeMap<&str, &DecisionValue> =
                a.iter().map(|(k, v)| (k.as_str(), v)).collect();
            all(e
                .iter()
                .map(|(k, ev)| {
                    a.get(k.as_str())
                        .map_or(Match::Different, |av| same(ev, av))
                })
                .collect())
        }
        (V::List(_) | V::Context(_), _) => Match::Different,
        (V::Date(_) | V::Time(_) | V::DateTime(_) | V::Duration(_), _) => {
            match expected.canonical() {
                Ok(canonical) if &canonical == actual => Match::Exact,
                _ => Match::Different,
            }
        }
        _ if expected == actual => Match::Exact,
        _ => Match::Different,
    }
}

fn describe(v: &DecisionValue) -> String {
    format!("{v:?}")
}

struct Folder {
    name: String,
    tally: Tally,
    failures: Vec<(String, String)>,
    tolerance: Vec<(String, String)>,
    unsupported: Vec<(String, String)>,
}

fn run_folder(dir: &Path, label: &str) -> Folder {
    let mut folder = Folder {
        name: label.to_string(),
        tally: Tally::default(),
        failures: Vec::new(),
        tolerance: Vec::new(),
        unsupported: Vec::new(),
    };
    let files = sorted_entries(dir);
    let models: BTreeMap<String, String> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dmn"))
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), read(p))))
        .collect();
    for test_file in files.iter().filter(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("-test-") && n.ends_with(".xml"))
    }) {
        let file_name = test_file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let text = read(test_file);
        let doc = match roxmltree::Document::parse(&text) {
            Ok(d) => d,
            Err(e) => panic!("{}: not XML: {e}", test_file.display()),
        };
        let root = doc.root_element();
        let model_name = root
            .children()
            .find(|n| n.has_tag_name("modelName"))
            .and_then(|n| n.text())
            .unwrap_or("")
            .trim()
            .to_string();
        let model = match models.get(&model_name) {
            Some(main) => {
                let imports: Vec<&str> = models
                    .iter()
                    .filter(|(name, _)| **name != model_name)
                    .map(|(_, xml)| xml.as_str())
                    .collect();
                DecisionModel::parse_with_imports(main, &imports)
            }
            None => Err(DecisionError::Model {
                message: format!("model file '{model_name}' not found"),
            }),
        };
        for case in root.children().filter(|n| n.has_tag_name("testCase")) {
            let case_key = format!(
                "{label}/{file_name}#{}",
                case.attribute("id").unwrap_or("?")
            );
            let outcome = match &model {
                Ok(model) => run_case(model, case),
                Err(e) => Outcome::Unsupported(e.to_string()),
            };
            match outcome {
                Outcome::Passed => folder.tally.passed += 1,
                Outcome::PassedWithinTolerance(how) => {
                    folder.tally.passed += 1;
                    folder.tally.tolerance += 1;
                    folder.tolerance.push((case_key, how));
                }
                Outcome::Failed(why) => {
                    folder.tally.failed += 1;
                    folder.failures.push((case_key, why));
                }
                Outcome::Unsupported(why) => {
                    folder.tally.unsupported += 1;
                    folder.unsupported.push((case_key, why));
                }
            }
        }
    }
    folder
}

fn run_case(model: &DecisionModel, case: roxmltree::Node) -> Outcome {
    let mut input = Vec::new();
    for node in case.children().filter(|n| n.has_tag_name("inputNode")) {
        let name = node.attribute("name").unwrap_or("").to_string();
        match tck_value(node) {
            Ok(v) => input.push((name, v)),
            Err(e) => return Outcome::Unsupported(format!("input '{name}': {e}")),
        }
    }
    let kind = case.attribute("type").unwrap_or("decision");
    let invocable = case.attribute("invocableName");
    let mut wrong = Vec::new();
    let mut close = Vec::new();
    for result in case.children().filter(|n| n.has_tag_name("resultNode")) {
        let name = result.attribute("name").unwrap_or("");
        let expected = match result.children().find(|n| n.has_tag_name("expected")) {
            Some(e) => match tck_value(e) {
                Ok(v) => v,
                Err(e) => return Outcome::Unsupported(format!("expected of '{name}': {e}")),
            },
            None if result.attribute("errorResult") == Some("true") => DecisionValue::Null,
            None => return Outcome::Unsupported(format!("no expected value for '{name}'")),
        };
        let target = match (kind, invocable) {
            ("decision", _) | (_, None) => name,
            (_, Some(invocable)) => invocable,
        };
        let mut actual = match model.evaluate_value(target, &input) {
            Ok(v) => v,
            Err(e) => return Outcome::Unsupported(e.to_string()),
        };
        // A decision service with several output decisions returns a context of them; each
        // result node names one.
        if target != name {
            if let DecisionValue::Context(entries) = &actual {
                if let Some((_, v)) = entries.iter().find(|(k, _)| k == name) {
                    actual = v.clone();
                }
            }
        }
        let how = format!(
            "'{name}': expected {}, got {}",
            describe(&expected),
            describe(&actual)
        );
        match same(&expected, &actual) {
            Match::Exact => {}
            Match::Tolerance => close.push(how),
            Match::Different => wrong.push(how),
        }
    }
    if !wrong.is_empty() {
        Outcome::Failed(wrong.join("; "))
    } else if !close.is_empty() {
        Outcome::PassedWithinTolerance(close.join("; "))
    } else {
        Outcome::Passed
    }
}

fn listed(file: &str) -> BTreeSet<String> {
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn floor() -> usize {
    let text = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tck-floor.txt"));
    let number = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match number.and_then(|n| n.parse().ok()) {
        Some(n) => n,
        None => panic!("tck-floor.txt holds no number"),
    }
}

#[test]
fn dmn_tck() {
    let root = tck_root();
    let mut levels: Vec<(String, Tally)> = Vec::new();
    let mut all = Tally::default();
    let mut failures = Vec::new();
    println!(
        "{:<58} {:>7} {:>7} {:>11}",
        "folder", "passed", "failed", "unsupported"
    );
    for level_dir in sorted_entries(&root).into_iter().filter(|p| p.is_dir()) {
        let level = level_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let mut level_tally = Tally::default();
        for dir in sorted_entries(&level_dir)
            .into_iter()
            .filter(|p| p.is_dir())
        {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            let folder = run_folder(&dir, &format!("{level}/{name}"));
            let t = folder.tally;
            println!(
                "{:<58} {:>7} {:>7} {:>11}",
                folder.name, t.passed, t.failed, t.unsupported
            );
            for (case, why) in &folder.unsupported {
                println!("    not supported {case}: {why}");
            }
            for (case, how) in &folder.tolerance {
                println!("    passed within 1e-8 {case}: {how}");
            }
            level_tally.add(t);
            failures.extend(folder.failures);
        }
        all.add(level_tally);
        levels.push((level, level_tally));
    }
    println!();
    for (level, t) in levels.iter().chain([&("total".to_string(), all)]) {
        println!(
            "{:<58} {:>7} {:>7} {:>11}   of {} ({} of the passed within 1e-8)",
            level,
            t.passed,
            t.failed,
            t.unsupported,
            t.total(),
            t.tolerance
        );
    }
    let known = listed("tck-known-failures.txt");
    let mut unexpected = Vec::new();
    for (case, why) in &failures {
        let mark = if known.contains(case) { "known" } else { "NEW" };
        println!("  failed ({mark}) {case}: {why}");
        if !known.contains(case) {
            unexpected.push(case.clone());
        }
    }
    let failed: BTreeSet<&String> = failures.iter().map(|(case, _)| case).collect();
    let stale: Vec<&String> = known.iter().filter(|k| !failed.contains(k)).collect();
    assert!(
        stale.is_empty(),
        "tck-known-failures.txt lists cases that no longer fail (remove them, raise the floor): {stale:?}"
    );
    assert!(
        all.total() > 3000,
        "the TCK fixtures are missing: {} cases",
        all.total()
    );
    assert!(
        unexpected.is_empty(),
        "{} TCK cases answered wrongly that tck-known-failures.txt does not list: {unexpected:?}",
        unexpected.len()
    );
    let floor = floor();
    assert!(
        all.passed >= floor,
        "{} TCK cases passed, below the floor of {floor} in tck-floor.txt",
        all.passed
    );
}
