//! Exact time on the interpreter, on the whole board: what a guest sees does not depend on
//! where the interpreter's blocks end, and firmware that waits for timer interrupts while
//! polling a flag beside its own code (Debian's iPXE) gets them on the virtual clock.

use rx86::config::{CharBackend, MachineConfig};
use rx86::machine::{Machine, Outcome};
use rx86::rtc_option::parse_rtc;
use rx86_tests::fixtures::ipxe_iso;
use rx86_tests::guests::{multiboot64_test_kernel, multiboot_test_kernel};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs a Multiboot kernel to power-off with blocks of at most `max_block` instructions
/// (`None`: the default); returns its serial output and the instructions retired.
fn run_kernel(kernel: &Path, max_block: Option<usize>) -> (String, u64) {
    run_kernel_with(kernel, "hello world", max_block, None)
}

/// `run_kernel` with the command line `append`, and 2^`icount_shift` ns per instruction.
fn run_kernel_with(kernel: &Path, append: &str, max_block: Option<usize>, icount_shift: Option<u32>) -> (String, u64) {
    let dir = tempfile_dir();
    let serial = dir.join(format!("serial-{}-{}.txt", max_block.unwrap_or(0), icount_shift.unwrap_or(0)));
    let config = MachineConfig {
        ram_bytes: 256 << 20,
        kernel: Some(kernel.to_path_buf()),
        append: append.into(),
        serial: vec![CharBackend::File(serial.clone())],
        no_reboot: true,
        max_block,
        icount_shift,
        // A fixed RTC start, so the kernel's RTC line is the same in every run.
        rtc: parse_rtc("base=2024-01-01T00:00:00").expect("an RTC base"),
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(config).expect("build the machine");
    let outcome = machine.run().expect("run the kernel");
    assert_eq!(outcome, Outcome::PowerOff);
    let retired = machine.instructions_retired().expect("the interpreter counts instructions");
    drop(machine);
    (std::fs::read_to_string(&serial).expect("serial output"), retired)
}

/// A fresh directory for this test process's files.
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rx86-exact-time-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

#[test]
fn block_lengths_change_neither_output_nor_instruction_counts() {
    // The test kernels program the PIT, the RTC, the local APIC timer and read the ACPI PM
    // timer, printing tick counts and timer readings: any dependence of time on block
    // boundaries shows in their output or in the instructions retired.
    for kernel in [multiboot_test_kernel(), multiboot64_test_kernel()] {
        let kernel = kernel.expect("build the test kernel");
        let reference = run_kernel(&kernel, None);
        assert!(reference.0.contains("done: ok"), "{}", reference.0);
        for max_block in [1, 3, 7] {
            let run = run_kernel(&kernel, Some(max_block));
            assert_eq!(run, reference, "{} with blocks of at most {max_block}", kernel.display());
        }
    }
}

#[test]
fn timer_interrupts_arrive_on_time_while_the_cpu_polls_beside_its_code() {
    // The kernel's opt-in step counts the PIT (1 kHz) and the RTC's periodic interrupt
    // (1024 Hz) over 1000 PIT ticks while busy-polling a counter inside its own code.
    // With --icount shift=2 (4 ns per instruction) the busy-polled second of guest time
    // takes a quarter of the instructions, and the timers keep their rates.
    for kernel in [multiboot_test_kernel(), multiboot64_test_kernel()] {
        let kernel = kernel.expect("build the test kernel");
        let (serial, retired) = run_kernel_with(&kernel, "timer-rates", None, None);
        assert_due_timer_rates(&serial);
        let (slow, slow_retired) = run_kernel_with(&kernel, "timer-rates", None, Some(2));
        assert_due_timer_rates(&slow);
        assert!(slow_retired * 2 < retired, "{slow_retired} instructions at 4 ns, {retired} at 1 ns");
    }
}

/// The kernel's `timer-rates` line shows the PIT's and the RTC's due counts.
fn assert_due_timer_rates(serial: &str) {
    let line = serial.lines().find(|l| l.starts_with("timer-rates:")).unwrap_or_else(|| panic!("{serial}"));
    assert!(line.starts_with("timer-rates: ok pit=1000 rtc=102"), "{line}\n{serial}");
}

#[test]
fn ipxe_reaches_its_banner_on_the_virtual_clock() {
    let iso = match ipxe_iso() {
        Ok(iso) => iso,
        Err(e) => {
            eprintln!("SKIP: no iPXE image: {e}");
            return;
        }
    };
    let screen = tempfile_dir().join("ipxe-screen.txt");
    let (iso, screen_arg) = (iso.to_string_lossy().into_owned(), screen.to_string_lossy().into_owned());
    // iPXE samples entropy by waiting for the RTC's periodic interrupt while polling a flag
    // on its code page; the banner follows about 0.4 s of guest time later.
    let args = [
        "run",
        "--cdrom",
        &iso,
        "-m",
        "128M",
        "--serial",
        "none",
        "--stop-at",
        "@Network Boot Firmware",
        "--text-dump",
        &screen_arg,
        "--stats",
    ];
    let out = run_rx86_with_limit(&args, Duration::from_secs(600)).expect("iPXE did not reach its banner in 600 s");
    let text = std::fs::read_to_string(&screen).unwrap_or_default();
    assert!(out.status.success(), "{}\n{text}", stderr_of(&out));
    assert!(text.contains("iPXE") && text.contains("Open Source Network Boot Firmware"), "{text}");
    eprintln!("{}", stderr_of(&out).lines().filter(|l| l.starts_with("rx86 stats")).collect::<String>());
}
