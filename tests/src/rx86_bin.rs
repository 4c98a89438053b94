//! Runs the `rx86` binary the way a user does, for end-to-end tests.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Path of the `rx86` binary of this build, brought up to date once per process
/// (`cargo build` is a quick no-op when it is current), so tests and benchmarks never
/// run a stale binary.
pub fn rx86_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Test executables live in <target>/<profile>/deps; the binary one level up.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target profile dir").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "rx86", "--bin", "rx86"])
            .args(release.then_some("--release"))
            .env("CARGO_TARGET_DIR", profile_dir.parent().expect("target dir"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of rx86 failed");
        profile_dir.join("rx86")
    })
    .clone()
}

/// Runs `rx86` with `args`, no standard input, and returns its output.
pub fn run_rx86(args: &[&str]) -> Output {
    Command::new(rx86_binary()).args(args).stdin(Stdio::null()).output().expect("spawn rx86")
}

/// Standard output as text.
pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Says why KVM tests cannot run here, or `None` when `/dev/kvm` is usable.
pub fn kvm_unavailable() -> Option<String> {
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/kvm is not usable: {e}")),
    }
}

/// True when the host's KVM is hardware virtualization (not nested paravirtual PVM).
pub fn hardware_kvm() -> bool {
    kvm_unavailable().is_none() && rx86_cpu::kvm::hardware_virtualization()
}

/// Runs `rx86` with `args`, killing it after `limit`; `None` when it had to be killed.
pub fn run_rx86_with_limit(args: &[&str], limit: std::time::Duration) -> Option<Output> {
    let child = Command::new(rx86_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rx86");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let _ = waiter.join();
            Some(out.expect("wait for rx86"))
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let _ = waiter.join();
            None
        }
    }
}
