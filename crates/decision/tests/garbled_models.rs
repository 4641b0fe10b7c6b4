//! Every DMN model of the TCK, truncated and garbled, goes through `DecisionModel::parse` (and,
//! when still accepted, every decision is evaluated with no input): each answer is a value or a
//! `DecisionError` with a message, never a panic escaping to the caller.

use cpq_decision::{DecisionError, DecisionModel};
use std::path::{Path, PathBuf};

fn models() -> Vec<PathBuf> {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/dmn-tck/TestCases");
    let mut found = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("cannot read {}", dir.display())
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "dmn") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn message(e: &DecisionError) -> String {
    e.to_string()
}

/// Deterministic garbling of the FEEL inside `<text>` elements (the XML stays well-formed, so
/// the engine's own reader and evaluator get the damage): swaps neighbouring characters, and
/// drops one, in every `seed + 2`-th expression.
fn garble(xml: &str, seed: usize) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    let mut n = 0usize;
    while let Some(open) = rest.find("<text>") {
        let body_start = open + "<text>".len();
        let Some(close) = rest[body_start..].find("</text>") else {
            break;
        };
        out.push_str(&rest[..body_start]);
        let body = &rest[body_start..body_start + close];
        n += 1;
        if n % (seed + 2) == 0 {
            let mut chars: Vec<char> = body.chars().collect();
            if chars.len() > 2 {
                let i = (n * 7 + seed) % (chars.len() - 1);
                chars.swap(i, i + 1);
                chars.remove((i + seed) % chars.len());
            }
            // Keep the XML well-formed: a damaged entity would be refused by the XML reader.
            out.extend(chars.into_iter().filter(|c| *c != '&' && *c != '<'));
        } else {
            out.push_str(body);
        }
        rest = &rest[body_start + close..];
    }
    out.push_str(rest);
    out
}

#[test]
fn truncated_and_garbled_tck_models_are_refused_or_evaluated_never_panicking() {
    let models = models();
    assert!(models.len() > 100, "TCK models missing: {}", models.len());
    let (mut refused, mut accepted, mut evaluations) = (0usize, 0usize, 0usize);
    for path in &models {
        let Ok(xml) = std::fs::read_to_string(path) else {
            panic!("cannot read {}", path.display())
        };
        let cuts: Vec<usize> = (1..8)
            .map(|k| xml.len() * k / 8)
            .map(|mut i| {
                while !xml.is_char_boundary(i) {
                    i -= 1;
                }
                i
            })
            .collect();
        for cut in cuts {
            // A truncated document is not well-formed XML: always refused, with a message.
            match DecisionModel::parse(&xml[..cut]) {
                Err(e) => {
                    assert!(!message(&e).is_empty());
                    refused += 1;
                }
                Ok(_) => panic!("{} truncated at {cut} was accepted", path.display()),
            }
        }
        for seed in 0..4 {
            match DecisionModel::parse(&garble(&xml, seed)) {
                Err(e) => {
                    assert!(!message(&e).is_empty());
                    refused += 1;
                }
                Ok(model) => {
                    accepted += 1;
                    for decision in model.decisions() {
                        evaluations += 1;
                        if let Err(e) = model.evaluate(&decision.id, &serde_json::json!({})) {
                            assert!(!message(&e).is_empty());
                        }
                    }
                }
            }
        }
    }
    println!("refused {refused}, accepted {accepted} garbled models, {evaluations} evaluations");
}
