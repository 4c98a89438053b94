//! libFuzzer target: `rx86_tests::fuzzing::net::nat_packets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::net::nat_packets(data));
