//! Replays the kept fuzz corpus and the fixed crashes (`fuzz/corpus/{dmn_parse,dmn_feel}`,
//! `fuzz/regressions/...`) through the same harness the fuzz targets run
//! (`fuzz/harness/decision.rs`): every file must be read, refused or evaluated, with no panic
//! escaping `cpq-decision` and no stack overflow, in the normal (debug) test build. How to fuzz:
//! docs/fuzzing.md.

#[path = "../../../fuzz/harness/decision.rs"]
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
        // The engine's own panics are caught inside cpq-decision; one reaching here is a bug.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data))).is_err() {
            panic!("{target}: {} panicked", path.display());
        }
    }
}

#[test]
fn dmn_corpus_is_read_or_refused_without_panicking() {
    replay("dmn_parse", harness::dmn_parse);
}

#[test]
fn dmn_feel_corpus_is_parsed_and_evaluated_or_refused_without_panicking() {
    let variables = harness::feel_variables();
    replay("dmn_feel", |data| harness::dmn_feel(data, &variables));
}
