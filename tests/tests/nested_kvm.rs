//! rx86's KVM engine on a KVM with hardware virtualization, on hosts that have none: the jobs run
//! in a nested KVM host (Debian's kernel under QEMU's TCG with SVM emulated, its own `kvm_amd`
//! loaded; see `rx86_tests::nested`). One nested run serves every test here:
//! - the Multiboot test kernel, 32- and 64-bit, with every step and board value checked;
//! - Debian's stock amd64 kernel booted directly to its /init and powered off;
//! - the GRUB and ISOLINUX ISOs and the SYSLINUX disk booted through the built-in BIOS to /init
//!   and power-off, and the GRUB ISO through SeaBIOS (`--bios`);
//! - the differential tester's KVM references (real and protected mode) run their sequences.
//!
//! Where this host's own KVM is hardware virtualization, the direct KVM tests
//! (`multiboot_kernel`, `linux_boot`, `bios_boot`) cover the same ground.

use rx86_tests::boot_media::{bios_run_args, check_linux_boot, debian_boot_media};
use rx86_tests::fixtures::{check_linux_console, linux_amd64};
use rx86_tests::guests::kernel_report::KernelReport;
use rx86_tests::guests::{multiboot64_test_kernel, multiboot_test_kernel};
use rx86_tests::nested::{JobResult, NestedError, NestedHost, NestedRun};
use rx86_tests::rx86_bin::rx86_binary;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// How long the nested host may run all its jobs (about 4 minutes here).
const NESTED_LIMIT: Duration = Duration::from_secs(1200);
/// The Multiboot kernel's command line and RAM, as `multiboot_kernel.rs` runs it.
const MULTIBOOT_APPEND: &str = "hello world";
const MULTIBOOT_RAM_MIB: u64 = 256;
/// Multiboot mem_upper: RAM above 1 MiB up to the 128 KiB ACPI area (`firmware/src/layout.rs`).
const MULTIBOOT_MEM_UPPER_KIB: u64 = MULTIBOOT_RAM_MIB * 1024 - 1024 - 128;
/// Sequences per mode of the differential tester's KVM references.
const DIFFERENTIAL_SEQUENCES: u32 = 20_000;

fn s(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Builds the payload and the jobs, and runs them.
fn nested_run() -> Result<NestedRun, NestedError> {
    let scratch = std::env::temp_dir().join(format!("rx86-nested-kvm-{}", std::process::id()));
    let mut host = NestedHost::new(&scratch)?;
    let unavailable = |what: &str, e: String| NestedError::Unavailable(format!("{what}: {e}"));
    let rx86 = host.add_program(&rx86_binary(), "rx86")?;
    let differential = host.add_program(Path::new(env!("CARGO_BIN_EXE_differential")), "differential")?;

    let mb32 = multiboot_test_kernel().map_err(|e| unavailable("32-bit Multiboot kernel", e.to_string()))?;
    let mb64 = multiboot64_test_kernel().map_err(|e| unavailable("64-bit Multiboot kernel", e.to_string()))?;
    let memory = format!("{MULTIBOOT_RAM_MIB}M");
    for (name, kernel) in [("multiboot-32", mb32), ("multiboot-64", mb64)] {
        let kernel = host.add_file(&kernel, &format!("{name}.elf"))?;
        let args = [&rx86, "run", "--accel", "kvm", "--kernel", &kernel, "--append", MULTIBOOT_APPEND];
        host.add_job(name, &s(&[&args[..], &["--debug-exit", "-m", &memory]].concat()));
    }

    let linux = linux_amd64().map_err(|e| unavailable("Linux fixture", e))?;
    let bzimage = host.add_file(&linux.bzimage, "bzImage")?;
    let initrd = host.add_file(&linux.initrd, "initramfs.cpio.gz")?;
    host.add_job(
        "linux",
        &s(&[
            &rx86,
            "run",
            "--accel",
            "kvm",
            "-m",
            "512M",
            "--kernel",
            &bzimage,
            "--initrd",
            &initrd,
            "--append",
            "console=ttyS0 panic=-1",
            "--no-reboot",
        ]),
    );

    let media = debian_boot_media().map_err(|e| unavailable("Debian boot media", e))?;
    let grub = host.add_file(&media.grub_iso, "grub.iso")?;
    let isolinux = host.add_file(&media.isolinux_iso, "isolinux.iso")?;
    let disk = host.add_file(&media.disk_img, "disk.img")?;
    for (name, drive) in [
        ("grub", ["--cdrom", &grub, "--boot", "d"]),
        ("isolinux", ["--cdrom", &isolinux, "--boot", "d"]),
        ("syslinux-disk", ["--hda", &disk, "--boot", "c"]),
    ] {
        let mut args = vec![rx86.clone()];
        args.extend(bios_run_args("kvm", &[&["-m", "512M", "--snapshot"][..], &drive[..]].concat()));
        host.add_job(name, &args);
    }
    let seabios = host.add_file(&media.seabios, "seabios.bin")?;
    let mut args = vec![rx86.clone()];
    args.extend(bios_run_args("kvm", &["-m", "512M", "--bios", &seabios, "--cdrom", &grub, "--boot", "d"]));
    host.add_job("seabios-grub", &args);

    let count = DIFFERENTIAL_SEQUENCES.to_string();
    for mode in ["16", "32"] {
        host.add_job(
            &format!("differential-{mode}"),
            &s(&[&differential, "--mode", mode, "--reference", "kvm", "--count", &count, "--max-divergences", "5"]),
        );
    }
    let run = host.run(NESTED_LIMIT);
    let _ = std::fs::remove_dir_all(&scratch);
    let run = run?;
    println!("nested KVM host: {} jobs in {:.1} s", run.jobs.len(), run.elapsed.as_secs_f64());
    Ok(run)
}

/// The shared nested run; `None` (after printing why) where it cannot be had.
fn nested() -> Option<&'static NestedRun> {
    static RUN: OnceLock<Result<NestedRun, NestedError>> = OnceLock::new();
    match RUN.get_or_init(nested_run) {
        Ok(run) => Some(run),
        Err(NestedError::Unavailable(why)) => {
            println!("SKIP: no nested KVM host: {why}");
            None
        }
        Err(NestedError::Failed(what)) => panic!("{what}"),
    }
}

/// The job `name`, which must have ended with status 0.
fn successful_job<'a>(run: &'a NestedRun, name: &str) -> &'a JobResult {
    let job = run.job(name).unwrap_or_else(|| panic!("no {name} job\n--- console\n{}", run.console));
    assert_eq!(job.status, Some(0), "{name} exited {:?}:\n{}", job.status, job.output);
    job
}

#[test]
fn multiboot_kernels_run_every_step_on_kvm_with_hardware_virtualization() {
    let Some(run) = nested() else { return };
    for (name, mode) in [("multiboot-32", 32), ("multiboot-64", 64)] {
        let job = successful_job(run, name);
        let report = KernelReport::parse(&job.output);
        let checked = report
            .check_every_step_ok(mode, MULTIBOOT_APPEND)
            .and_then(|()| report.check_board_values(MULTIBOOT_MEM_UPPER_KIB));
        if let Err(e) = checked {
            panic!("{name}: {e}\n{}", job.output);
        }
    }
}

#[test]
fn debian_linux_boots_on_kvm_with_hardware_virtualization() {
    let Some(run) = nested() else { return };
    let job = successful_job(run, "linux");
    if let Err(what) = check_linux_console(&job.output, "x86_64") {
        panic!("{what}:\n{}", job.output);
    }
}

/// GRUB and ISOLINUX from `--cdrom`, SYSLINUX from `--hda`, each through the built-in BIOS to
/// /init and power-off.
#[test]
fn boot_media_boot_linux_on_kvm_with_hardware_virtualization() {
    let Some(run) = nested() else { return };
    for (job, entry) in [("grub", "grub-1"), ("isolinux", "isolinux"), ("syslinux-disk", "syslinux-disk")] {
        let job = successful_job(run, job);
        if let Err(what) = check_linux_boot(&job.output, entry) {
            panic!("{entry}: {what}:\n{}", job.output);
        }
    }
}

/// Debian's SeaBIOS (`--bios`) boots the GRUB ISO to /init, and the kernel powers off through the
/// ACPI tables SeaBIOS placed in the F segment with rx86's fw_cfg table loader script.
#[test]
fn seabios_boots_the_grub_iso_on_kvm_with_hardware_virtualization() {
    let Some(run) = nested() else { return };
    let job = successful_job(run, "seabios-grub");
    assert!(job.output.contains("Found QEMU fw_cfg"), "{}", job.output);
    if let Err(what) = check_linux_boot(&job.output, "grub-1") {
        panic!("{what}:\n{}", job.output);
    }
    assert!(job.output.contains("ACPI: RSDP 0x00000000000F"), "the RSDP in the F segment:\n{}", job.output);
}

#[test]
fn differential_kvm_references_run_real_and_protected_mode_sequences() {
    let Some(run) = nested() else { return };
    for mode in ["16", "32"] {
        let job = successful_job(run, &format!("differential-{mode}"));
        let summary = format!("{mode}-bit: {DIFFERENTIAL_SEQUENCES} sequences");
        assert!(job.output.contains(&summary), "{mode}-bit: no {summary:?} line:\n{}", job.output);
        assert!(job.output.contains(", 0 divergences"), "{mode}-bit:\n{}", job.output);
    }
}
