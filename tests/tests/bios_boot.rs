//! Boots through rx86's BIOS: our boot-sector guest from a floppy (`--fda`, INT 13h CHS), a hard
//! disk (`--hda`, INT 13h extensions) and a CD (`--cdrom`, El Torito floppy emulation), Debian's GRUB and ISOLINUX ISOs from `--cdrom` (El Torito),
//! an MBR disk with SYSLINUX from `--hda`, and the GRUB ISO under SeaBIOS (`--bios`); plus
//! `--snapshot`, which must keep the image file bit-for-bit unchanged.
//!
//! The media come from `rx86_tests::boot_media` (the boot-sector images are built from
//! `tests/guests/boot-floppy/`, the Debian media by `tests/fixtures/make-boot-media.sh`); each was
//! first verified on QEMU by that module's own tests. A test skips, saying why, when the media
//! cannot be made (no network for the Debian packages) or when this rx86 build lacks a BIOS boot
//! option.

use rx86_tests::boot_media::{
    bios_run_args, boot_image, check_boot_sector_console, check_linux_boot, debian_boot_media, missing_bios_options,
    read_sector, run_with_keys, run_with_keys_until, scratch_copy, BootSectorDisk, DebianBootMedia,
    BOOT_SECTOR_PASS_STATUS, GRUB_ENTRY_2, SECTOR_SIZE,
};
use rx86_tests::rx86_bin::{hardware_kvm, kvm_unavailable, run_rx86_with_limit, rx86_binary, stderr_of, stdout_of};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// The boot-sector guest needs a few thousand BIOS calls' worth of instructions.
const BOOT_SECTOR_LIMIT: Duration = Duration::from_secs(120);
/// Booting Linux takes minutes of CPU on either software tier (see linux_boot.rs), the loader more.
const LINUX_LIMIT: Duration = Duration::from_secs(1500);
/// Under KVM a loader and Linux boot in seconds.
const KVM_LINUX_LIMIT: Duration = Duration::from_secs(180);
/// Guest RAM for the Linux boots.
const LINUX_RAM: &str = "256M";

/// True (after printing why) when this rx86 lacks a BIOS boot option, so the test must skip.
fn skip_without_bios_options() -> bool {
    match missing_bios_options(rx86_tests::boot_media::BIOS_BOOT_OPTIONS) {
        Some(why) => {
            println!("SKIP: {why} (the built-in BIOS and its CLI are not in this build)");
            true
        }
        None => false,
    }
}

fn media_or_skip() -> Option<DebianBootMedia> {
    match debian_boot_media() {
        Ok(media) => Some(media),
        Err(why) => {
            println!("SKIP: Debian boot media unavailable: {why}");
            None
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 fixture path")
}

fn run(args: &[String], limit: Duration) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_rx86_with_limit(&args, limit).unwrap_or_else(|| panic!("rx86 {} did not finish in {limit:?}", args.join(" ")))
}

fn context(out: &Output) -> String {
    format!("exit {:?}\n--- serial\n{}\n--- stderr\n{}", out.status, stdout_of(out), stderr_of(out))
}

/// Runs the boot-sector guest of `disk` from a scratch copy of its image (`--snapshot` when
/// `snapshot`) and checks its console and exit status; returns the copy, which the caller removes.
fn run_boot_sector(accel: &str, disk: BootSectorDisk, snapshot: bool) -> std::path::PathBuf {
    let image = boot_image(disk).expect("build the boot-sector image");
    let copy = scratch_copy(&image, &format!("bios-{accel}")).unwrap();
    let (drive_option, boot) = match disk {
        BootSectorDisk::Floppy => ("--fda", "a"),
        BootSectorDisk::HardDisk => ("--hda", "c"),
        BootSectorDisk::CdFloppy => ("--cdrom", "d"),
    };
    let mut extra = vec![drive_option, path_str(&copy), "--boot", boot, "--debug-exit", "-m", "32M"];
    if snapshot {
        extra.push("--snapshot");
    }
    let out = run(&bios_run_args(accel, &extra), BOOT_SECTOR_LIMIT);
    if let Err(what) = check_boot_sector_console(&stdout_of(&out), disk) {
        panic!("{what}:\n{}", context(&out));
    }
    assert_eq!(out.status.code(), Some(BOOT_SECTOR_PASS_STATUS), "{}", context(&out));
    copy
}

/// Without `--snapshot` the guest's INT 13h write of its own boot sector reaches the image file.
fn boot_sector_boots(accel: &str, disk: BootSectorDisk) {
    if skip_without_bios_options() {
        return;
    }
    let copy = run_boot_sector(accel, disk, false);
    let written = disk.written_lba().map(|lba| (lba, read_sector(&copy, lba).unwrap()));
    let boot_sector = read_sector(&copy, 0).unwrap();
    fs::remove_file(&copy).unwrap();
    if let Some((lba, written)) = written {
        assert_eq!(written, boot_sector, "sector {lba} of the file holds what the guest wrote");
    }
}

#[test]
fn floppy_boot_sector_prints_and_reads_with_int13_chs() {
    boot_sector_boots("interp", BootSectorDisk::Floppy);
}

#[test]
fn hard_disk_boot_sector_reads_with_int13_extensions() {
    boot_sector_boots("interp", BootSectorDisk::HardDisk);
}

/// El Torito floppy emulation: the BIOS serves INT 13h for drive 00h from the CD's floppy image.
#[test]
fn cd_floppy_emulation_boot_sector_reads_with_int13_chs() {
    boot_sector_boots("interp", BootSectorDisk::CdFloppy);
}

/// The BIOS and the boot sector run in real mode, which every KVM runs (nested
/// paravirtual kvm_pvm included), so this needs only a usable /dev/kvm.
#[test]
fn floppy_boot_sector_on_kvm() {
    if let Some(why) = kvm_unavailable() {
        println!("SKIP: {why}");
        return;
    }
    boot_sector_boots("kvm", BootSectorDisk::Floppy);
}

/// With `--snapshot` the guest still reads back what it wrote, and the file is unchanged.
#[test]
fn snapshot_keeps_the_image_file_unchanged() {
    if skip_without_bios_options() {
        return;
    }
    for disk in [BootSectorDisk::Floppy, BootSectorDisk::HardDisk] {
        let copy = run_boot_sector("interp", disk, true);
        let after = fs::read(&copy).unwrap();
        fs::remove_file(&copy).unwrap();
        let original = fs::read(boot_image(disk).unwrap()).unwrap();
        assert!(after == original, "{disk:?}: --snapshot let a write reach the image file");
        let written_at = disk.written_lba().expect("a writable disk") as usize * SECTOR_SIZE;
        assert_ne!(after[written_at..written_at + SECTOR_SIZE], after[..SECTOR_SIZE], "{disk:?}");
    }
}

/// Boots Linux from a Debian medium and checks the loader entry that ran.
fn linux_boots(accel: &str, drive: &[&str], entry: &str, limit: Duration) {
    let mut extra = vec!["-m", LINUX_RAM];
    extra.extend_from_slice(drive);
    let out = run(&bios_run_args(accel, &extra), limit);
    if let Err(what) = check_linux_boot(&stdout_of(&out), entry) {
        panic!("{what}:\n{}", context(&out));
    }
    assert!(out.status.success(), "{}", context(&out));
}

#[test]
fn grub_iso_boots_linux_from_cdrom() {
    if skip_without_bios_options() {
        return;
    }
    let Some(media) = media_or_skip() else { return };
    linux_boots("jit", &["--cdrom", path_str(&media.grub_iso), "--boot", "d"], "grub-1", LINUX_LIMIT);
}

/// ISOLINUX loads the kernel and initramfs through the same El Torito path as GRUB (whose
/// test boots to /init): the run stops once the kernel has started and shows ISOLINUX's
/// command line, which saves a third full Linux boot in CI.
#[test]
fn isolinux_iso_starts_linux_from_cdrom() {
    if skip_without_bios_options() {
        return;
    }
    let Some(media) = media_or_skip() else { return };
    let args = bios_run_args("interp", &["-m", LINUX_RAM, "--cdrom", path_str(&media.isolinux_iso), "--boot", "d"]);
    let run =
        run_with_keys_until(Command::new(rx86_binary()).args(&args), "", b"", Some("rx86.entry=isolinux"), LINUX_LIMIT)
            .expect("spawn rx86");
    let context = format!("exit {:?}\n--- serial\n{}\n--- stderr\n{}", run.status, run.stdout, run.stderr);
    assert!(run.stdout.contains("Loading /initrd.gz...ok"), "ISOLINUX loaded the initramfs:\n{context}");
    let kernel = run.stdout.find("Command line: ").map(|at| &run.stdout[at..]).unwrap_or_else(|| panic!("{context}"));
    assert!(kernel.lines().next().unwrap_or("").contains("rx86.entry=isolinux"), "{context}");
}

#[test]
fn mbr_disk_with_syslinux_boots_linux_from_hda() {
    if skip_without_bios_options() {
        return;
    }
    let Some(media) = media_or_skip() else { return };
    let disk = scratch_copy(&media.disk_img, "bios-mbr").unwrap();
    linux_boots("jit", &["--hda", path_str(&disk), "--boot", "c"], "syslinux-disk", LINUX_LIMIT);
    fs::remove_file(&disk).unwrap();
}

/// Debian's SeaBIOS as the firmware (`--bios`): it finds QEMU's fw_cfg, sizes RAM from the CMOS,
/// boots the CD, and GRUB's menu, driven by keys on the serial console (`v` moves down, Enter
/// boots), starts its second entry; the kernel finds the ACPI tables SeaBIOS placed in the F
/// segment with rx86's table loader script, runs /init and powers off through them. About five
/// minutes on the interpreter (most of it GRUB loading the kernel through SeaBIOS's INT 13h); run
/// on the JIT tier, as are the GRUB and SYSLINUX boots (ISOLINUX and the boot sectors stay on
/// the interpreter).
#[test]
fn grub_iso_boots_linux_under_seabios_with_its_menu_driven_by_serial_keys() {
    if skip_without_bios_options() {
        return;
    }
    let Some(media) = media_or_skip() else { return };
    let drive =
        ["-m", LINUX_RAM, "--bios", path_str(&media.seabios), "--cdrom", path_str(&media.grub_iso), "--boot", "d"];
    let args = bios_run_args("jit", &drive);
    let run =
        run_with_keys(Command::new(rx86_binary()).args(&args), GRUB_ENTRY_2, b"v\r", LINUX_LIMIT).expect("spawn rx86");
    let context = format!("exit {:?}\n--- serial\n{}\n--- stderr\n{}", run.status, run.stdout, run.stderr);
    // SeaBIOS logs to port 0x402, which rx86 sends to standard error.
    assert!(run.stderr.contains("SeaBIOS (version"), "SeaBIOS ran:\n{context}");
    assert!(run.stderr.contains("Found QEMU fw_cfg"), "SeaBIOS found fw_cfg:\n{context}");
    assert!(run.stderr.contains("RamSize: 0x10000000 [cmos]"), "256 MiB from the CMOS:\n{context}");
    assert!(run.stderr.contains("DVD/CD [ata1-0: RX86 CD-ROM"), "SeaBIOS found the ATAPI drive:\n{context}");
    assert!(run.stderr.contains("Booting from DVD/CD"), "SeaBIOS boots the CD:\n{context}");
    assert!(run.stdout.contains("GNU GRUB"), "GRUB's menu on the serial console:\n{context}");
    if let Err(what) = check_linux_boot(&run.stdout, "grub-2") {
        panic!("{what}:\n{context}");
    }
    // The RSDP is where SeaBIOS's table loader put it (rx86 places its own at 0xE0000).
    assert!(run.stdout.contains("ACPI: RSDP 0x00000000000F"), "the RSDP in the F segment:\n{context}");
    assert!(run.stdout.contains("ACPI: FACP") && run.stdout.contains("RX86PC"), "rx86's tables:\n{context}");
    assert_eq!(run.status.and_then(|s| s.code()), Some(0), "power-off ends the run:\n{context}");
}

#[test]
fn a_bios_image_of_the_wrong_size_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("rx86-bad-bios-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let rom = dir.join("odd.bin");
    fs::write(&rom, vec![0u8; 100_000]).unwrap();
    let out = run(&bios_run_args("interp", &["--bios", path_str(&rom), "--kernel", path_str(&rom)]), BOOT_SECTOR_LIMIT);
    let err = stderr_of(&out);
    assert!(!out.status.success());
    assert!(err.contains("100000 bytes is not a BIOS image size"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grub_iso_boots_linux_from_cdrom_on_kvm() {
    if !hardware_kvm() {
        println!("SKIP: {}", kvm_unavailable().unwrap_or_else(|| "the host's KVM is nested paravirtual".into()));
        return;
    }
    if skip_without_bios_options() {
        return;
    }
    let Some(media) = media_or_skip() else { return };
    linux_boots("kvm", &["--cdrom", path_str(&media.grub_iso), "--boot", "d"], "grub-1", KVM_LINUX_LIMIT);
}

/// A missing image or a disk image that is not a whole number of sectors is a clear error naming
/// the file, never a panic or a boot.
#[test]
fn bad_images_are_clear_errors() {
    if skip_without_bios_options() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rx86-bios-bad-images-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.img");
    let odd = dir.join("odd.img");
    fs::write(&odd, vec![0u8; 1000]).unwrap();
    let cases = [("--fda", &missing), ("--hda", &missing), ("--cdrom", &missing), ("--hda", &odd), ("--fda", &odd)];
    for (option, image) in cases {
        let out = run(&bios_run_args("interp", &[option, path_str(image)]), BOOT_SECTOR_LIMIT);
        let stderr = stderr_of(&out);
        assert!(!out.status.success(), "{option} {}: {}", image.display(), context(&out));
        assert!(!stderr.contains("panicked"), "{option} {}: {}", image.display(), context(&out));
        let name = image.file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains(name), "the error names {name}: {}", context(&out));
    }
    fs::remove_dir_all(&dir).unwrap();
}
