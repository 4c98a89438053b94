//! libFuzzer target: `rx86_tests::fuzzing::cpu::cpu_code`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::cpu::cpu_code(data));
