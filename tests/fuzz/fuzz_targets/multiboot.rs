//! libFuzzer target: `rx86_tests::fuzzing::parsers::multiboot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::parsers::multiboot(data));
