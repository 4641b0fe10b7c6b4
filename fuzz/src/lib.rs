//! What each fuzz target does with one input. The same files are compiled into the stable
//! replay tests (`crates/workflow/tests/fuzz_corpus.rs`, `crates/decision/tests/fuzz_corpus.rs`),
//! so the corpus is replayed through exactly the code the fuzzer ran.

#[path = "../harness/workflow.rs"]
pub mod workflow;

#[path = "../harness/decision.rs"]
pub mod decision;

/// cpq-decision and the workflow FEEL (both over dsntk) catch the engine's panics
/// (`catch_unwind`) and turn them into errors: that is their contract. libFuzzer's panic hook
/// aborts on every panic, caught or not, so every target replaces it: a caught panic is reported
/// once per source location (a finding about dsntk, not a crash); a panic that escapes to the
/// target is still a crash (the target aborts).
pub mod panics {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    thread_local! {
        static LAST: RefCell<String> = const { RefCell::new(String::new()) };
    }
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

    pub fn install_quiet_hook() {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let text = format!("panic at {at}: {info}");
            if SEEN.lock().map(|mut s| s.insert(at)).unwrap_or(false) {
                eprintln!("caught engine panic (first at this location): {text}");
            }
            LAST.with(|l| *l.borrow_mut() = text);
        }));
    }

    /// Runs `f`; a panic escaping it aborts the process after printing the panic.
    pub fn no_escape(f: impl FnOnce()) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
            LAST.with(|l| eprintln!("panic escaped to the caller: {}", l.borrow()));
            std::process::abort();
        }
    }
}
