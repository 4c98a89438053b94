//! libFuzzer target: `rx86_tests::fuzzing::parsers::el_torito`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::parsers::el_torito(data));
