#![no_main]
libfuzzer_sys::fuzz_target!(
    init: cpq_fuzz::panics::install_quiet_hook(),
    |data: &[u8]| cpq_fuzz::panics::no_escape(|| cpq_fuzz::decision::dmn_parse(data))
);
