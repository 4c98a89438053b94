//! libFuzzer target: `rx86_tests::fuzzing::board::board_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::board::board_ops(data));
