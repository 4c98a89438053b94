//! The Multiboot test kernel (`tests/guests/multiboot/`), built from the repo's own sources in its
//! 32-bit (protected mode, no paging) and 64-bit (long mode, 4-level paging) variants, runs on the
//! real `rx86` binary: it programs the PIT and takes its interrupts through the PIC, then through
//! the IOAPIC and local APIC, uses the local APIC timer, reads the RTC, finds the ACPI tables,
//! prints its results on COM1 and powers off through ACPI. Every line is checked; the JIT tier
//! must print what the interpreter prints; under `--accel kvm` the steps the host's KVM cannot
//! run are reported by name.

use rx86_tests::guests::kernel_report::{KernelReport, Verdict, MULTIBOOT_KERNEL_STEPS, TICKS_TO_COUNT};
use rx86_tests::guests::{multiboot64_test_kernel, multiboot_test_kernel};
use rx86_tests::rx86_bin::{hardware_kvm, kvm_unavailable, run_rx86_with_limit, stderr_of, stdout_of};
use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

/// The `--append` text; rx86 passes exactly this as the Multiboot command line.
const APPEND: &str = "hello world";
/// Guest RAM in MiB (`-m 256M`).
const RAM_MIB: u64 = 256;
/// `firmware/src/layout.rs`: `ACPI_AREA_BYTES`, the top of low RAM reserved for the ACPI tables.
const ACPI_AREA_KIB: u64 = 128;
/// Multiboot mem_upper: KiB of usable RAM from 1 MiB up to the ACPI area.
const MEM_UPPER_KIB: u64 = RAM_MIB * 1024 - 1024 - ACPI_AREA_KIB;
/// A run takes seconds (every wait in the kernel is bounded); a hung rx86 fails instead of hanging.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What one run of rx86 printed, parsed.
struct Run {
    output: Output,
    serial: String,
    report: KernelReport,
}

impl Run {
    fn context(&self) -> String {
        format!("exit {:?}\n--- serial\n{}--- stderr\n{}", self.output.status, self.serial, stderr_of(&self.output))
    }

    fn details(&self, step: &str) -> &str {
        self.report.details(step).unwrap_or_else(|e| panic!("{e}\n{}", self.context()))
    }

    /// Every step printed ok, nothing printed FAIL, `done: ok`, the command line echoed and exit 0.
    fn assert_every_step_ok(&self, mode: u32) {
        assert!(self.output.status.success(), "{}", self.context());
        if let Err(e) = self.report.check_every_step_ok(mode, APPEND) {
            panic!("{e}\n{}", self.context());
        }
    }

    /// Values rx86's board defines, the same whichever engine runs the kernel.
    fn assert_board_values(&self) {
        if let Err(e) = self.report.check_board_values(MEM_UPPER_KIB) {
            panic!("{e}\n{}", self.context());
        }
    }

    /// Values only the virtual clock makes exact (the interpreter's default).
    fn assert_virtual_clock_values(&self) {
        for step in ["pit-pic", "ioapic-lapic", "lapic-timer"] {
            if let Err(e) = self.report.check_fields(step, &[&format!("ticks={TICKS_TO_COUNT}")]) {
                panic!("{e}\n{}", self.context());
            }
        }
        // --rtc base=2024-01-01T00:00:00 (a Monday: the MC146818 day of week counts Sunday as 1).
        assert!(self.details("rtc").starts_with("2024-01-01 00:00:00 wday=2 "), "{}", self.context());
        // board.md: the APIC timer counts at 1 GHz of machine clock, so ~1000 MHz against the PM timer.
        assert!(self.details("lapic-timer").ends_with("(bus ~1000MHz)"), "{}", self.context());
    }
}

fn kernel(mode: u32) -> PathBuf {
    match mode {
        32 => multiboot_test_kernel().expect("build the 32-bit multiboot test kernel"),
        64 => multiboot64_test_kernel().expect("build the 64-bit multiboot test kernel"),
        _ => unreachable!("the kernel comes in 32- and 64-bit variants"),
    }
}

fn run_kernel(accel: &str, mode: u32) -> Run {
    let kernel = kernel(mode);
    let memory = format!("{RAM_MIB}M");
    let args = [
        "run",
        "--accel",
        accel,
        "--kernel",
        kernel.to_str().unwrap(),
        "--append",
        APPEND,
        "--debug-exit",
        "-m",
        &memory,
        // A fixed RTC start (the default is the host's time), so two runs print the same.
        "--rtc",
        "base=2024-01-01T00:00:00",
    ];
    let output = run_rx86_with_limit(&args, RUN_LIMIT)
        .unwrap_or_else(|| panic!("rx86 --accel {accel} with the {mode}-bit kernel did not finish in {RUN_LIMIT:?}"));
    let serial = stdout_of(&output);
    let report = KernelReport::parse(&serial);
    Run { output, serial, report }
}

/// The 64-bit kernel's first interpreter run, shared by the tests that need one.
fn interp_run_64() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run_kernel("interp", 64))
}

/// The 32-bit kernel's interpreter run, shared likewise.
fn interp_run_32() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run_kernel("interp", 32))
}

#[test]
fn interp_runs_the_32_bit_kernel_with_every_step_ok() {
    let run = interp_run_32();
    run.assert_every_step_ok(32);
    run.assert_board_values();
    run.assert_virtual_clock_values();
}

#[test]
fn interp_runs_the_64_bit_kernel_with_every_step_ok() {
    let run = interp_run_64();
    run.assert_every_step_ok(64);
    run.assert_board_values();
    run.assert_virtual_clock_values();
}

/// Every step, on the JIT tier, prints what it prints on the interpreter, byte for byte
/// (the timer and clock values included: time is the same instruction count).
#[test]
fn jit_prints_the_interpreters_serial_output_for_both_kernels() {
    for (bits, interp) in [(32, interp_run_32()), (64, interp_run_64())] {
        let jit = run_kernel("jit", bits);
        jit.assert_every_step_ok(bits);
        assert!(
            jit.output.stdout == interp.output.stdout,
            "the {bits}-bit kernel differs between the tiers:\n--- interpreter\n{}--- jit\n{}",
            interp.serial,
            jit.serial
        );
    }
}

#[test]
fn interp_serial_output_of_the_64_bit_kernel_is_deterministic() {
    let first = interp_run_64();
    let second = run_kernel("interp", 64);
    assert!(first.output.status.success() && second.output.status.success(), "{}", second.context());
    assert!(first.report.all_ok(), "{}", first.context());
    assert!(
        first.output.stdout == second.output.stdout,
        "two interpreter runs differ:\n--- first\n{}--- second\n{}",
        first.serial,
        second.serial
    );
}

#[test]
fn kvm_runs_the_64_bit_kernel_with_every_step_ok() {
    if let Some(why) = kvm_unavailable() {
        println!("SKIP: {why}");
        return;
    }
    let run = run_kernel("kvm", 64);
    run.assert_every_step_ok(64);
    run.assert_board_values();
}

/// The steps after the last one printed, which never ran.
fn steps_not_run(report: &KernelReport) -> Vec<&'static str> {
    let printed = MULTIBOOT_KERNEL_STEPS.iter().take_while(|name| report.step(name).is_some()).count();
    MULTIBOOT_KERNEL_STEPS[printed..].to_vec()
}

/// On hardware KVM every step passes. Nested paravirtual KVM (kvm_pvm) cannot emulate IRET (or a
/// software INT) in unpaged protected mode, so the 32-bit kernel stops at its first interrupt
/// return: rx86 must end with its clean engine error, the steps before it must be ok, and the
/// steps that did not run are named.
#[test]
fn kvm_runs_the_32_bit_kernel_or_names_the_steps_the_host_cannot_run() {
    if let Some(why) = kvm_unavailable() {
        println!("SKIP: {why}");
        return;
    }
    let run = run_kernel("kvm", 32);
    if hardware_kvm() || run.output.status.success() {
        run.assert_every_step_ok(32);
        run.assert_board_values();
        return;
    }
    let context = run.context();
    let stderr = stderr_of(&run.output);
    assert_eq!(run.output.status.code(), Some(1), "{context}");
    assert!(!stderr.contains("panicked"), "rx86 panicked instead of reporting the engine error\n{context}");
    let error = stderr.lines().find(|l| l.starts_with("rx86: engine failure: KVM ")).unwrap_or_else(|| {
        panic!("no clean engine error on stderr\n{context}");
    });
    assert_eq!(run.report.mode, Some(32), "{context}");
    assert!(run.report.step("multiboot").is_some(), "the kernel did not start\n{context}");
    assert!(run.report.failures().is_empty(), "{context}");
    assert!(run.report.steps.iter().all(|s| s.verdict == Verdict::Ok), "{context}");
    let not_run = steps_not_run(&run.report);
    assert!(!not_run.is_empty() && run.report.step("done").is_none(), "{context}");
    let ran: Vec<&str> = run.report.steps.iter().map(|s| s.name.as_str()).collect();
    println!("kvm_pvm host: the 32-bit kernel's steps {ran:?} ran ok; steps {not_run:?} did not run: {error}");
}

#[test]
fn steps_not_run_are_the_ones_after_the_last_printed() {
    let report = KernelReport::parse("mode: 32 x\nmultiboot: ok a\ncmdline: b\nacpi: ok c\n");
    assert_eq!(steps_not_run(&report), ["rtc", "pit-pic", "ioapic-lapic", "lapic-timer", "pmtimer", "done"]);
    let all: String = MULTIBOOT_KERNEL_STEPS.iter().map(|s| format!("{s}: ok x\n")).collect();
    assert!(steps_not_run(&KernelReport::parse(&all)).is_empty());
}
