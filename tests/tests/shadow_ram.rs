//! Shadow RAM under the i440FX PAM registers: the guest `tests/guests/boot-shadow/` sets PAM0
//! (0xF0000-0xFFFFF) to each of its four states and checks where reads and writes of the BIOS
//! segment go (82441FX datasheet 3.2.18: RAM, the ROM side, write-only, read-only). It runs
//! under the built-in BIOS, which leaves the segment writable, and under Debian's SeaBIOS,
//! which copies itself into shadow RAM and write-protects it; on the interpreter and on KVM.
//!
//! QEMU treats write-only like off (writes dropped), so the guest's write-only line differs
//! there; rx86 follows the datasheet.

use rx86_tests::boot_media::{boot_sector_floppy, debian_boot_media};
use rx86_tests::gdb::assert_in_order;
use rx86_tests::rx86_bin::{kvm_unavailable, run_rx86_with_limit, stderr_of, stdout_of};
use std::time::Duration;

/// SeaBIOS's POST and the guest take a few seconds of host time; a guest that never exits
/// is stopped here.
const LIMIT: Duration = Duration::from_secs(180);

/// The checks every run must pass, after its first line.
const CHECKS: [&str; 5] = [
    "RX86-SHADOW: read-write ok",
    "RX86-SHADOW: off ok",
    "RX86-SHADOW: write-only ok",
    "RX86-SHADOW: read-only ok",
    "RX86-SHADOW: done",
];

/// Boots the guest from a floppy with `firmware` args on `accel` and checks its report, whose
/// first line is `boot_line` (the state the firmware left).
fn run_guest(tag: &str, accel: &str, firmware: &[&str], boot_line: &str) {
    let image = boot_sector_floppy("boot-shadow", tag).expect("build the shadow guest");
    let mut args = vec!["run", "--accel", accel, "--fda", image.to_str().unwrap(), "--boot", "a", "--snapshot"];
    args.extend(["--serial", "stdio", "--display", "none", "--debug-exit", "0x501"]);
    args.extend(firmware);
    let out = run_rx86_with_limit(&args, LIMIT).expect("the guest exits through isa-debug-exit");
    std::fs::remove_file(&image).unwrap();
    let console = stdout_of(&out);
    assert_eq!(out.status.code(), Some(1), "{console}\n{}", stderr_of(&out));
    let mut expected = vec![boot_line];
    expected.extend(CHECKS);
    assert_in_order(&console, &expected);
    assert!(!console.contains("FAIL"), "{console}");
}

fn seabios() -> String {
    let media = debian_boot_media().expect("Debian boot media (SeaBIOS)");
    media.seabios.to_str().unwrap().to_string()
}

const BUILT_IN: &str = "RX86-SHADOW: boot PAM0=30 writable";
const SEABIOS: &str = "RX86-SHADOW: boot PAM0=10 write-protected";

#[test]
fn the_built_in_bios_leaves_shadow_ram_writable_and_pam0_routes_the_bios_segment() {
    run_guest("builtin-interp", "interp", &[], BUILT_IN);
}

#[test]
fn seabios_write_protects_its_shadow_copy_and_pam0_routes_the_bios_segment() {
    let bios = seabios();
    run_guest("seabios-interp", "interp", &["--bios", &bios], SEABIOS);
}

#[test]
fn kvm_remaps_the_bios_segment_as_pam0_changes() {
    if let Some(why) = kvm_unavailable() {
        println!("SKIP: {why}");
        return;
    }
    run_guest("builtin-kvm", "kvm", &[], BUILT_IN);
    let bios = seabios();
    run_guest("seabios-kvm", "kvm", &["--bios", &bios], SEABIOS);
}
