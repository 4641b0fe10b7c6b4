//! Replays the kept fuzz corpus and the fixed crashes (`fuzz/corpus/{bpmn_read,feel_parse_eval}`,
//! `fuzz/regressions/...`) through the same harness the fuzz targets run
//! (`fuzz/harness/workflow.rs`): every file must be read, refused or evaluated without a panic or
//! a stack overflow, in the normal (debug) test build. How to fuzz: docs/fuzzing.md.

#[path = "../../../fuzz/harness/workflow.rs"]
mod harness;

use std::path::{Path, PathBuf};

/// Every file under `fuzz/corpus/<target>` and `fuzz/regressions/<target>`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut found = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        found.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file()),
        );
    }
    found.sort();
    found
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(
        files.len() > 10,
        "fuzz corpus of {target} missing: {} files",
        files.len()
    );
    for path in &files {
        let Ok(data) = std::fs::read(path) else {
            panic!("cannot read {}", path.display())
        };
        // Named in the output, so a failure points at its file.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data))).is_err() {
            panic!("{target}: {} panicked", path.display());
        }
    }
}

#[test]
fn bpmn_corpus_is_read_or_refused_without_panicking() {
    replay("bpmn_read", harness::bpmn_read);
}

#[test]
fn feel_corpus_is_parsed_and_evaluated_or_refused_without_panicking() {
    let variables = harness::feel_variables();
    replay("feel_parse_eval", |data| {
        harness::feel_parse_eval(data, &variables)
    });
}

#[test]
fn bpmn_nesting_limit_is_64_elements() {
    let file = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/bpmn_read")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let depth_error = |xml: &str| {
        matches!(cpq_workflow::bpmn::read(xml),
            Err(cpq_workflow::bpmn::DeployError::Xml(m)) if m.contains("nested more than 64 deep"))
    };
    // 61 embedded subprocesses, each with its start event: 64 elements deep, read in full.
    assert!(cpq_workflow::bpmn::read(&file("nested-subprocesses-at-the-limit")).is_ok());
    assert!(depth_error(&file("nested-subprocesses-past-the-limit")));
    assert!(depth_error(&file("stack-overflow-nested-subprocesses")));
    assert!(depth_error(&file(
        "stack-overflow-nested-extension-elements"
    )));
}
