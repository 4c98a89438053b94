//! The fuzz targets (`rx86_tests::fuzzing`, also built for libFuzzer in `tests/fuzz/`) over a
//! fixed set of inputs in every test run: pseudo-random programs and byte strings, and
//! mutations of valid inputs (a Multiboot test kernel, a boot catalog, a qcow2 header, a
//! network replay log). A
//! panic anywhere fails the test and names the input's seed; reproduce with that seed.
//! `RX86_FUZZ_SCALE=N` runs N times as many inputs (a longer sweep by hand).

use rx86_tests::fuzzing::{board, cpu, net, parsers, tiers, Xorshift};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `target` on each input `make(seed)` builds, and reports the seeds that panicked.
fn run(name: &str, seeds: std::ops::Range<u64>, make: impl Fn(&mut Xorshift) -> Vec<u8>, target: fn(&[u8])) {
    let scale = std::env::var("RX86_FUZZ_SCALE").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(1).max(1);
    let mut failed = Vec::new();
    for seed in seeds.start..seeds.end * scale {
        let input = make(&mut Xorshift::new(seed));
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "{name}: inputs from seeds {failed:?} panicked");
}

#[test]
fn board_programs() {
    run(
        "board",
        1..400,
        |r| {
            let n = 64 + (r.next_u64() % 2048) as usize;
            r.bytes(n)
        },
        board::board_ops,
    );
}

#[test]
fn cpu_code() {
    run(
        "cpu",
        1..300,
        |r| {
            let n = 1 + (r.next_u64() % 4096) as usize;
            r.bytes(n)
        },
        cpu::cpu_code,
    );
}

/// Six inputs: each runs three times (the interpreter, the JIT with and without the
/// checker), and random code that rewrites the code it runs through compiles a unit per
/// instruction (input 7: 50,000 units, a minute); the differential and conformance tests
/// run the JIT on many more programs.
#[test]
fn code_on_both_tiers() {
    run(
        "tiers",
        1..7,
        |r| {
            let n = 1 + (r.next_u64() % 512) as usize;
            r.bytes(n)
        },
        tiers::tiers_code,
    );
}

#[test]
fn kernels() {
    let kernel = std::fs::read(rx86_tests::guests::multiboot_test_kernel().expect("build the Multiboot test kernel"))
        .expect("read it");
    run("multiboot", 1..300, |r| r.mutate(&kernel, 200), parsers::multiboot);
    run(
        "bzimage",
        1..300,
        |r| {
            // A setup header at 0x1f1 ("HdrS" at 0x202), the rest random.
            let mut b = r.bytes(0x4000);
            b[0x202..0x206].copy_from_slice(b"HdrS");
            b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
            b
        },
        parsers::bzimage,
    );
}

#[test]
fn boot_catalogs_qcow2_headers_and_options() {
    let mut catalog = vec![0u8; 64];
    catalog[0] = 1;
    catalog[0x1e..0x20].copy_from_slice(&[0x55, 0xaa]);
    catalog[0x20] = 0x88;
    run("el_torito", 1..500, |r| r.mutate(&catalog, 8), parsers::el_torito);
    let mut qcow = vec![0u8; 4096];
    qcow[..4].copy_from_slice(b"QFI\xfb");
    qcow[7] = 3;
    qcow[23] = 9;
    run("qcow2", 1..200, |r| r.mutate(&qcow, 40), parsers::qcow2);
    // A replay log: the pcap header (nanosecond magic, Ethernet), then two 60-byte frames.
    let mut log = Vec::new();
    for field in [0xa1b2_3c4du32, 0x0004_0002, 0, 0, 65_535, 1] {
        log.extend(field.to_le_bytes());
    }
    for (seconds, nanos) in [(1u32, 5u32), (1, 900)] {
        for field in [seconds, nanos, 60, 60] {
            log.extend(field.to_le_bytes());
        }
        log.extend([0x5au8; 60]);
    }
    run("net_replay_log", 1..500, |r| r.mutate(&log, 40), parsers::net_replay_log);
    run(
        "cli_specs",
        1..2000,
        |r| {
            let n = (r.next_u64() % 80) as usize;
            r.bytes(n)
        },
        parsers::cli_specs,
    );
}

#[test]
fn network_card_and_nat() {
    run(
        "e1000",
        1..400,
        |r| {
            let n = 64 + (r.next_u64() % 4096) as usize;
            r.bytes(n)
        },
        net::e1000,
    );
    run(
        "virtio_net",
        1..400,
        |r| {
            let n = 64 + (r.next_u64() % 4096) as usize;
            r.bytes(n)
        },
        net::virtio_net,
    );
    run(
        "ne2000",
        1..400,
        |r| {
            let n = 64 + (r.next_u64() % 4096) as usize;
            r.bytes(n)
        },
        net::ne2000,
    );
    run(
        "nat_packets",
        1..400,
        |r| {
            let n = 16 + (r.next_u64() % 4096) as usize;
            r.bytes(n)
        },
        net::nat_packets,
    );
    run(
        "nat_tcp",
        1..200,
        |r| {
            let n = 16 + (r.next_u64() % 2048) as usize;
            r.bytes(n)
        },
        net::nat_tcp,
    );
}
