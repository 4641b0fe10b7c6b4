#![no_main]
use std::sync::OnceLock;

static VARIABLES: OnceLock<serde_json::Map<String, serde_json::Value>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(
    init: cpq_fuzz::panics::install_quiet_hook(),
    |data: &[u8]| {
        let variables = VARIABLES.get_or_init(cpq_fuzz::workflow::feel_variables);
        cpq_fuzz::panics::no_escape(|| cpq_fuzz::workflow::feel_parse_eval(data, variables));
    }
);
