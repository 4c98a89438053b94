//! libFuzzer target: `rx86_tests::fuzzing::net::virtio_net`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx86_tests::fuzzing::net::virtio_net(data));
