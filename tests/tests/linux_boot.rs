//! Debian's stock kernel with the busybox initramfs boots to /init, runs its commands
//! and powers off; the output proves the timer and serial interrupts went through
//! rx86's interrupt controllers and that the kernel used rx86's ACPI tables.

use rx86_tests::fixtures::{linux_amd64, INIT_END_MARKER, INIT_START_MARKER};
use rx86_tests::rx86_bin::{hardware_kvm, kvm_unavailable, run_rx86_with_limit, stderr_of, stdout_of};
use std::time::Duration;

/// The interrupt count of the /proc/interrupts line whose description ends with `what`.
fn interrupt_count(console: &str, what: &str) -> Option<u64> {
    console
        .lines()
        .find(|l| l.trim_end().ends_with(what))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn check_linux_console(console: &str) {
    let start = console.find(INIT_START_MARKER).unwrap_or_else(|| panic!("no start marker:\n{console}"));
    let end = console.find(INIT_END_MARKER).unwrap_or_else(|| panic!("no end marker:\n{console}"));
    assert!(start < end);
    let init = &console[start..end];
    assert!(init.contains("Linux") && init.contains("x86_64"), "uname -a output missing:\n{init}");
    let timer = interrupt_count(init, "IO-APIC   2-edge      timer")
        .or_else(|| interrupt_count(init, "2-edge      timer"))
        .unwrap_or_else(|| panic!("no IO-APIC timer line in /proc/interrupts:\n{init}"));
    assert!(timer > 0, "no timer interrupts through the IOAPIC:\n{init}");
    let serial = interrupt_count(init, "4-edge      ttyS0").unwrap_or_else(|| panic!("no ttyS0 line:\n{init}"));
    assert!(serial > 0, "no serial interrupts:\n{init}");
    assert!(init.contains("ACPI: RSDP 0x00000000000E0000"), "kernel did not use rx86's RSDP:\n{init}");
    assert!(init.contains("RX86"), "rx86's ACPI OEM id missing from dmesg:\n{init}");
    assert!(console.contains("reboot: Power down"), "no power-off:\n{console}");
}

fn boot(accel: &str, limit: Duration) {
    let fixture = match linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP: Debian Linux fixture unavailable: {why}");
            return;
        }
    };
    let (k, i) = (fixture.bzimage.to_str().unwrap(), fixture.initrd.to_str().unwrap());
    let args = ["run", "--accel", accel, "-m", "512M", "--kernel", k, "--initrd", i];
    let args = [&args[..], &["--append", "console=ttyS0 panic=-1", "--no-reboot"]].concat();
    let out =
        run_rx86_with_limit(&args, limit).unwrap_or_else(|| panic!("rx86 --accel {accel} did not finish in {limit:?}"));
    let console = stdout_of(&out);
    assert!(out.status.success(), "rx86 exited {:?}: {}\n{console}", out.status, stderr_of(&out));
    check_linux_console(&console);
}

#[test]
fn debian_amd64_boots_on_kvm() {
    if let Some(why) = kvm_unavailable() {
        println!("SKIP: {why}");
        return;
    }
    if !hardware_kvm() {
        println!("SKIP: this host's KVM is nested paravirtual (kvm_pvm), which cannot run an unmodified Linux kernel");
        return;
    }
    boot("kvm", Duration::from_secs(120));
}

#[test]
fn console_checks_reject_missing_evidence() {
    let good = "RX86-INIT-START\nLinux rx86 6.1.0 x86_64 GNU/Linux\n  0:  0  IO-APIC   2-edge      timer\n";
    let result = std::panic::catch_unwind(|| check_linux_console(good));
    assert!(result.is_err(), "a console with no timer interrupts must fail the check");
    assert_eq!(interrupt_count("  4:        17   IO-APIC   4-edge      ttyS0", "4-edge      ttyS0"), Some(17));
}
