//! gdb on Debian's stock kernel: `-S` holds it before its first instruction, a hardware
//! breakpoint at `start_kernel` is hit, and `continue` reaches /init. The address of
//! `start_kernel` comes from the guest's own /proc/kallsyms (Debian ships no System.map):
//! from the cache the Linux boot test fills (this file sorts after `linux_boot.rs`, so a full
//! `cargo test` boots the kernel once for both), else from a boot of its own.

use rx86_tests::gdb::{
    assert_in_order, gdb_unavailable, run_gdb_without_symbols, start_kernel_cache, start_kernel_from_console,
    StubProcess,
};
use rx86_tests::rx86_bin::run_rx86_with_limit;
use std::time::Duration;

/// An `/init` that prints the address of `start_kernel` from /proc/kallsyms and powers off.
const KALLSYMS_INIT: &str = "#!/bin/sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
/bin/busybox echo RX86-KALLSYMS
/bin/busybox grep ' start_kernel$' /proc/kallsyms
/bin/busybox poweroff -f
";

/// Debian's stock amd64 kernel under `-S`: gdb stops it before its first instruction, a
/// hardware breakpoint at `start_kernel` (its address read from the guest's own
/// /proc/kallsyms in an earlier boot with `nokaslr`: Debian ships no System.map) is hit with
/// RIP there, and `continue` lets the guest reach /init and power off.
#[test]
fn debian_kernel_stops_at_start_kernel() {
    if let Some(why) = gdb_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let fixture = match rx86_tests::fixtures::linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            eprintln!("skipped: Debian Linux fixture unavailable: {why}");
            return;
        }
    };
    let (k, base_initrd) = (fixture.bzimage.to_str().unwrap(), &fixture.initrd);
    let append = "console=ttyS0 panic=-1 nokaslr";
    let limit = Duration::from_secs(1200);
    let address = start_kernel_address(&fixture.bzimage, base_initrd, append, limit);
    assert!(address.starts_with("ffffffff8"), "nokaslr puts the kernel at ffffffff8...: {address}");

    let i = base_initrd.to_str().unwrap();
    let stub = StubProcess::start(&["-m", "512M", "--kernel", k, "--initrd", i, "--append", append, "--no-reboot"]);
    let out = run_gdb_without_symbols(
        &stub.address,
        &[
            "monitor layout i386:x86-64",
            "unset tdesc filename",
            "info registers rip",
            &format!("hbreak *0x{address}"),
            "continue",
            "info registers rip",
            "delete",
            "continue",
        ],
        limit,
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let (status, stdout, stderr) = stub.finish(limit);
    assert_in_order(
        &text,
        &[
            "rip            0x",
            "Hardware assisted breakpoint 1 at 0x",
            "Breakpoint 1, 0x",
            &format!("rip            0x{address}"),
            "exited normally",
        ],
    );
    assert!(stdout.contains(rx86_tests::fixtures::INIT_START_MARKER), "the guest reached /init:\n{stdout}");
    assert_eq!(status, Some(0), "stderr:\n{stderr}");
}

/// The address of `start_kernel` in `bzimage` booted with `append`: read from the guest's
/// /proc/kallsyms by a boot whose `/init` prints it, then kept in the fixture cache under the
/// kernel's content hash (one boot per kernel, not per test run).
fn start_kernel_address(bzimage: &std::path::Path, initrd: &std::path::Path, append: &str, limit: Duration) -> String {
    let cached = start_kernel_cache(bzimage).expect("read the kernel");
    if let Ok(address) = std::fs::read_to_string(&cached) {
        return address.trim().to_string();
    }
    let with_init = std::env::temp_dir().join(format!("rx86-kallsyms-initrd-{}", std::process::id()));
    rx86_tests::gdb::initrd_with_init(initrd, KALLSYMS_INIT, &with_init).expect("write the initrd");
    let k = bzimage.to_str().unwrap();
    let boot = ["run", "-m", "512M", "--kernel", k, "--initrd", with_init.to_str().unwrap(), "--append", append];
    let first = run_rx86_with_limit(&[&boot[..], &["--no-reboot"]].concat(), limit).expect("the kallsyms boot ends");
    let _ = std::fs::remove_file(&with_init);
    let console = String::from_utf8_lossy(&first.stdout);
    let address = start_kernel_from_console(&console)
        .unwrap_or_else(|| panic!("no start_kernel in the guest's /proc/kallsyms:\n{console}"));
    // Best effort: without the cache the next run boots once more.
    let _ = std::fs::write(&cached, &address);
    address
}
