//! The CPU test guests of `tests/guests/cpu-*` (built from source with the host gcc/ld) run on
//! the software CPU: every result line they print on COM1 must be `ok`, the last one
//! `done: ok`, and they must leave through isa-debug-exit with 0 (process status 1).
//!
//! Each guest covers one area of the architecture: mode switches, paging formats, exceptions,
//! hardware task switches, virtual-8086 mode, fast system calls.

use rx86_tests::guests::{build_elf32_guest, guest_sources_root};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of, stdout_of};
use std::time::Duration;

/// Exit status of rx86 when the guest wrote 0 to isa-debug-exit: (0 << 1) | 1.
const GUEST_SUCCESS_STATUS: i32 = 1;
/// Far more than any guest needs on the interpreter; a hang fails the test instead of CI.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Builds `tests/guests/cpu-<name>`, runs it under `--accel interp` and checks its report.
fn run_guest(name: &str) {
    let dir = guest_sources_root().join(format!("cpu-{name}"));
    let elf = build_elf32_guest(&format!("cpu-{name}"), &dir).expect("build the guest");
    let elf = elf.to_str().expect("UTF-8 guest path");
    let args = ["run", "--accel", "interp", "--kernel", elf, "--debug-exit", "-m", "64M"];
    let out = run_rx86_with_limit(&args, RUN_LIMIT).unwrap_or_else(|| panic!("cpu-{name} did not finish"));
    let stdout = stdout_of(&out).replace('\r', "");
    let context = format!("cpu-{name} output:\n{stdout}\nstderr:\n{}", stderr_of(&out));
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(": ")).collect();
    assert!(lines.len() > 1, "no result lines; {context}");
    for line in &lines {
        assert!(line.ends_with(": ok"), "failed check `{line}`; {context}");
    }
    assert_eq!(lines.last().copied(), Some("done: ok"), "{context}");
    assert_eq!(out.status.code(), Some(GUEST_SUCCESS_STATUS), "{context}");
}

#[test]
fn cpu_modes_guest_passes() {
    run_guest("modes");
}

#[test]
fn cpu_exceptions_guest_passes() {
    run_guest("exceptions");
}

#[test]
fn cpu_paging_guest_passes() {
    run_guest("paging");
}

#[test]
fn cpu_syscall_guest_passes() {
    run_guest("syscall");
}

#[test]
fn cpu_tasks_guest_passes() {
    run_guest("tasks");
}

#[test]
fn cpu_v86_guest_passes() {
    run_guest("v86");
}
