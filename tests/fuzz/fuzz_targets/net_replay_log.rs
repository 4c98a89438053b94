//! libFuzzer target: `rx86_tests::fuzzing::parsers::net_replay_log`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::parsers::net_replay_log(data));
