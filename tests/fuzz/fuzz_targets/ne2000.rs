//! libFuzzer target: `rx86_tests::fuzzing::net::ne2000`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::net::ne2000(data));
