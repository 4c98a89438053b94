//! A guest that triple-faults on purpose (`tests/guests/triple-fault`): under `--no-reboot`
//! rx86 stops with status 3 and explains the chain of exceptions.

use rx86_tests::gdb::{gdb_unavailable, run_gdb, StubProcess};
use rx86_tests::guests::{build_elf32_guest, guest_sources_root};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use std::time::Duration;

/// Builds (or finds) the guest.
fn kernel() -> std::path::PathBuf {
    build_elf32_guest("triple-fault", &guest_sources_root().join("triple-fault")).expect("build the guest")
}

#[test]
fn triple_fault_diagnosis_explains_the_chain() {
    let kernel = kernel();
    let out = run_rx86_with_limit(
        &["run", "--kernel", kernel.to_str().unwrap(), "--no-reboot", "--serial", "none"],
        Duration::from_secs(60),
    )
    .expect("rx86 stops");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for want in [
        // The chain, where it happened and in which mode.
        "triple fault: exception chain [0x0e -> 0x0d -> 0x08 -> 0x0d] at ",
        "(32-bit protected mode, CPL 0)",
        // The page fault: error code in words, CR2, the walk that stopped.
        "1. #PF (page fault), error code 0x2 (the page is not present; a write; in supervisor mode), CR2=0xdead0000",
        "page walk of 0xdead0000 (32-bit paging",
        "PDE @0x",
        "(NOT PRESENT)",
        "delivering it needs IDT entry 14: beyond the IDT limit (IDTR base=0x0 limit=0x0)",
        "2. #GP (general protection), error code 0x73 (IDT entry 14, raised while delivering an event)",
        "3. #DF (double fault)",
        "raised while delivering #DF: the CPU shuts down",
        // What to do about it.
        "What to check:",
        "does not reach vectors 14, 13, 8: load an IDT with LIDT",
        "linear 0xdead0000 is not mapped (its PDE is not present)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn under_gdb_a_triple_fault_stops_at_the_faulting_instruction() {
    if let Some(why) = gdb_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let kernel = kernel();
    let stub = StubProcess::start(&["--kernel", kernel.to_str().unwrap(), "--no-reboot", "--serial", "none"]);
    let limit = Duration::from_secs(60);
    let out = run_gdb(&kernel, &stub.address, &["continue", "info symbol $pc", "p/x $cr2", "continue"], limit);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let (status, _, stderr) = stub.finish(limit);
    for want in ["received signal SIGSEGV", "bad_write in section .text", "= 0xdead0000", "exited with code 03"] {
        assert!(text.contains(want), "missing {want:?} in gdb output:\n{text}");
    }
    assert!(stderr.contains("What to check:"), "the diagnosis is printed: {stderr}");
    assert_eq!(status, Some(3));
}

#[test]
fn a_triple_fault_at_every_boot_is_diagnosed_once_then_counted() {
    // Without --no-reboot the machine resets after each triple fault and the guest faults
    // again at once; the diagnosis is printed for the first one only.
    let kernel = kernel();
    let out = run_rx86_with_limit(
        &["run", "--kernel", kernel.to_str().unwrap(), "--serial", "none", "--stop-at", "20us"],
        Duration::from_secs(120),
    )
    .expect("rx86 stops at the --stop-at time");
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("exception chain").count(), 1, "one diagnosis:\n{err}");
    assert!(err.contains("guest triple fault again after a reset: 2 so far"), "{err}");
    assert!(err.lines().count() < 60, "no flood:\n{err}");
}
