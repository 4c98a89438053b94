//! libFuzzer target: `rx86_tests::fuzzing::net::nat_tcp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::net::nat_tcp(data));
