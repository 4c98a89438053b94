//! Debian's stock kernels (amd64 and i386) with the busybox initramfs boot to /init, runs its commands
//! and powers off; the output proves the timer and serial interrupts went through
//! rx86's interrupt controllers and that the kernel used rx86's ACPI tables. The amd64
//! boot also writes to an IDE disk with the kernel's own drivers.
//!
//! Each kernel boots twice at once, on the interpreter and on the JIT tier: both runs
//! must print the same console, byte for byte (the kernel's timestamps come from the
//! virtual clock, so any instruction retired differently shows), and retire the same
//! number of instructions. A third amd64 run checks every compiled unit against the
//! interpreter's handlers in lock-step for the first two seconds of guest time.

use rx86_tests::fixtures::{check_linux_console, linux_amd64, linux_i386, LinuxFixture};
use rx86_tests::gdb::{start_kernel_cache, start_kernel_from_console};
use rx86_tests::rx86_bin::{hardware_kvm, kvm_unavailable, run_rx86_with_limit, stderr_of, stdout_of};
use std::time::Duration;

/// Boots the fixture with `console=ttyS0 panic=-1` plus `append`, and `extra` options;
/// returns the console and instruction count after checking the common evidence (`None`
/// when skipped).
fn boot(
    accel: &str,
    fixture: Result<LinuxFixture, String>,
    machine: &str,
    limit: Duration,
    append: &str,
    extra: &[&str],
) -> Option<Boot> {
    let fixture = match fixture {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP: Debian Linux fixture unavailable: {why}");
            return None;
        }
    };
    let (k, i) = (fixture.bzimage.to_str().unwrap(), fixture.initrd.to_str().unwrap());
    let append = format!("console=ttyS0 panic=-1 {append}");
    let args = [
        "run",
        "--accel",
        accel,
        "-m",
        "512M",
        "--kernel",
        k,
        "--initrd",
        i,
        "--append",
        &append,
        "--no-reboot",
        "--stats",
        // A fixed RTC start: the default is the host's time, which the guest sees.
        "--rtc",
        "base=2024-01-01T00:00:00",
    ];
    let args = [&args[..], extra].concat();
    let out =
        run_rx86_with_limit(&args, limit).unwrap_or_else(|| panic!("rx86 --accel {accel} did not finish in {limit:?}"));
    let console = stdout_of(&out);
    assert!(out.status.success(), "rx86 exited {:?}: {}\n{console}", out.status, stderr_of(&out));
    if let Err(what) = check_linux_console(&console, machine) {
        panic!("{what}:\n{console}");
    }
    let retired = retired_of(&stderr_of(&out));
    Some(Boot { console, retired })
}

/// What a boot printed and how many instructions it retired (where the engine counts).
struct Boot {
    console: String,
    retired: Option<u64>,
}

/// The instruction count of `rx86 run --stats`.
fn retired_of(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.starts_with("rx86 stats:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Boots on the interpreter and on the JIT tier at once (each with `extra(tier)`), and
/// checks that both runs are the same; returns the interpreter's console.
fn boot_both_tiers(
    fixture: Result<LinuxFixture, String>,
    machine: &str,
    append: &str,
    extra: impl Fn(&str) -> Vec<String> + Sync,
) -> Option<String> {
    let run = |accel: &str| {
        let extra = extra(accel);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        boot(accel, fixture.clone(), machine, INTERP_LIMIT, append, &extra)
    };
    let (interp, jit) = std::thread::scope(|s| {
        let jit = s.spawn(|| run("jit"));
        (run("interp"), jit.join().expect("the JIT boot"))
    });
    let (interp, jit) = (interp?, jit?);
    if interp.console != jit.console {
        let line = interp.console.lines().zip(jit.console.lines()).position(|(a, b)| a != b);
        panic!(
            "the tiers' consoles differ (first at line {line:?}):\n--- interpreter\n{}\n--- jit\n{}",
            interp.console, jit.console
        );
    }
    assert!(interp.retired.is_some(), "--stats reports the instructions retired");
    assert_eq!(interp.retired, jit.retired, "instructions retired: interpreter, JIT");
    Some(interp.console)
}

/// What the init's `rx86.disktest` writes to sector 1 of the first disk.
const DISK_MARKER: &[u8] = b"RX86-DISK-MARKER-0123456789";

/// The kernel loaded its own ata_piix and sd_mod, found the IDE disk, and the marker
/// it wrote and read back is in the image file.
fn check_disk_write(console: &str, image: &std::path::Path) -> Result<(), String> {
    if console.contains("RX86-DISK-INSMOD-FAILED") {
        return Err("a disk module failed to load".into());
    }
    if !console.contains("ata1.00: ATA-") {
        return Err("the kernel did not find the IDE disk".into());
    }
    let marker = std::str::from_utf8(DISK_MARKER).unwrap();
    // The console ends lines with CR LF (the tty's ONLCR).
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    if !lines.windows(2).any(|w| w == [marker, "RX86-DISK-DONE"]) {
        return Err("the marker was not read back through the disk".into());
    }
    let bytes = std::fs::read(image).map_err(|e| e.to_string())?;
    if bytes.get(512..512 + DISK_MARKER.len()) != Some(DISK_MARKER) {
        return Err("the marker is not in sector 1 of the image file".into());
    }
    if !bytes[..512].iter().all(|&b| b == 0) {
        return Err("sector 0 was written".into());
    }
    Ok(())
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
    boot("kvm", linux_amd64(), "x86_64", Duration::from_secs(120), "", &[]);
}

/// Booting Linux on the interpreter takes minutes of CPU; the limit leaves room for a
/// slow, busy CI machine while still ending a run that hangs.
const INTERP_LIMIT: Duration = Duration::from_secs(1200);

/// The 64-bit boot also exercises the IDE disk: the init loads Debian's ata_piix and
/// sd_mod, writes a marker to the disk through rx86's PIIX3 IDE controller, syncs and
/// reads it back; the bytes must then be in the image file.
#[test]
fn debian_amd64_boots_the_same_on_both_tiers_and_writes_its_ide_disk() {
    let dir = std::env::temp_dir().join(format!("rx86-linux-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = |tier: &str| dir.join(format!("disk-{tier}.img"));
    for tier in ["interp", "jit"] {
        std::fs::write(image(tier), vec![0u8; 8 << 20]).unwrap();
    }
    let fixture = linux_amd64();
    let kernel = fixture.as_ref().ok().map(|f| f.bzimage.clone());
    let hda = |tier: &str| vec!["--hda".to_string(), image(tier).to_str().unwrap().to_string()];
    if let Some(console) = boot_both_tiers(fixture, "x86_64", "rx86.disktest nokaslr", hda) {
        for tier in ["interp", "jit"] {
            if let Err(what) = check_disk_write(&console, &image(tier)) {
                panic!("{tier}: {what}:\n{console}");
            }
        }
        // Leave start_kernel's address for the gdb test on this kernel (linux_gdb.rs).
        if let (Some(address), Some(kernel)) = (start_kernel_from_console(&console), kernel) {
            if let Ok(cache) = start_kernel_cache(&kernel) {
                let _ = std::fs::write(cache, address);
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn debian_i386_boots_the_same_on_both_tiers() {
    boot_both_tiers(linux_i386(), "i686", "", |_| Vec::new());
}

/// The lock-step checker compares every unit the JIT runs with the interpreter's
/// handlers through the first two seconds of guest time (the kernel's decompressor; a
/// checked boot to /init takes about six minutes, too long for every test run).
#[test]
fn jit_lockstep_checker_finds_no_divergence_in_a_linux_boot() {
    let fixture = match linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP: Debian Linux fixture unavailable: {why}");
            return;
        }
    };
    let (k, i) = (fixture.bzimage.to_str().unwrap(), fixture.initrd.to_str().unwrap());
    let args = [
        "run",
        "--accel",
        "jit",
        "--jit-check",
        "-m",
        "512M",
        "--kernel",
        k,
        "--initrd",
        i,
        "--append",
        "console=ttyS0 panic=-1",
        "--no-reboot",
        "--stats",
        "--stop-at",
        "2s",
    ];
    let out = run_rx86_with_limit(&args, INTERP_LIMIT).expect("the checked boot finishes");
    let stderr = stderr_of(&out);
    assert!(!stderr.contains("divergence"), "{stderr}");
    assert!(out.status.success(), "rx86 exited {:?}: {stderr}", out.status);
    let checked = stderr
        .lines()
        .find_map(|l| l.split("lock-step checker: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(checked.is_some_and(|n| n > 1_000_000), "too few unit runs checked: {stderr}");
}

#[test]
fn disk_checks_reject_missing_evidence() {
    let image = std::env::temp_dir().join(format!("rx86-disk-check-{}", std::process::id()));
    std::fs::write(&image, vec![0u8; 2048]).unwrap();
    let read_back = "ata1.00: ATA-6\r\nRX86-DISK-MARKER-0123456789\r\nRX86-DISK-DONE\r\n";
    assert_eq!(check_disk_write(read_back, &image), Err("the marker is not in sector 1 of the image file".into()));
    assert_eq!(check_disk_write("RX86-DISK-DONE", &image), Err("the kernel did not find the IDE disk".into()));
    let not_read_back = "ata1.00: ATA-6\r\nRX86-DISK-MARKER-0123456789-garbled\r\nRX86-DISK-DONE\r\n";
    assert_eq!(check_disk_write(not_read_back, &image), Err("the marker was not read back through the disk".into()));
    std::fs::remove_file(&image).unwrap();
}
