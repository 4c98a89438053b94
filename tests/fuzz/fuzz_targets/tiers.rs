//! libFuzzer target: `rx86_tests::fuzzing::tiers::tiers_code`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::tiers::tiers_code(data));
