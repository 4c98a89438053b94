//! libFuzzer target: `rx86_tests::fuzzing::parsers::bzimage`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::parsers::bzimage(data));
