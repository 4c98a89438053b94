//! Linux boot-protocol images older than the direct loader takes: a bzImage of protocol
//! 2.02-2.05 starts through its own real-mode setup code under the built-in BIOS (as a boot
//! loader, or QEMU, starts it); a zImage and protocols before 2.02 are refused with one line
//! that says what to do.
//!
//! The images are synthetic: a boot sector, a setup header, and setup code that reads the
//! command line through the header's `cmd_line_ptr` and reports its first byte through
//! isa-debug-exit, so the exit status shows that the BIOS entered the setup with the header
//! filled in as boot.rst asks.

use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use std::time::Duration;

/// The setup code, at file offset 0x26C (the header's jump lands there; DS is the setup's
/// segment): ES = the command line's segment, AL = its first byte, out to port 0x501.
const SETUP_CODE: &[u8] = &[
    0xA1, 0x2A, 0x02, // mov ax, [0x22A]      cmd_line_ptr, high word
    0xC1, 0xE0, 0x0C, // shl ax, 12
    0x8B, 0x1E, 0x28, 0x02, // mov bx, [0x228] cmd_line_ptr, low word
    0xC1, 0xEB, 0x04, // shr bx, 4
    0x01, 0xD8, // add ax, bx
    0x8E, 0xC0, // mov es, ax
    0x26, 0xA0, 0x00, 0x00, // mov al, es:[0]
    0xB4, 0x00, // mov ah, 0
    0xBA, 0x01, 0x05, // mov dx, 0x501
    0xEF, // out dx, ax
    0xFA, 0xF4, // cli; hlt
];

/// A protocol-`version` image: one setup sector and 16 bytes of "protected-mode code".
fn image(version: u16, loadflags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 1024 + 16];
    f[0x1F1] = 1; // setup_sects
    f[0x1F4] = 1; // syssize: one 16-byte paragraph
    f[0x1FE..0x200].copy_from_slice(&[0x55, 0xAA]);
    f[0x200..0x202].copy_from_slice(&[0xEB, 0x6A]); // jmp 0x26C
    f[0x202..0x206].copy_from_slice(b"HdrS");
    f[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    f[0x211] = loadflags;
    f[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes()); // code32_start
    f[0x26C..0x26C + SETUP_CODE.len()].copy_from_slice(SETUP_CODE);
    f
}

fn run(name: &str, bytes: &[u8]) -> (Option<i32>, String) {
    let path = std::env::temp_dir().join(format!("rx86-old-kernel-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let args =
        ["run", "--kernel", path.to_str().unwrap(), "--append", "A old kernel", "--debug-exit", "--serial", "none"];
    let out = run_rx86_with_limit(&args, Duration::from_secs(60)).expect("rx86 ends");
    std::fs::remove_file(&path).unwrap();
    (out.status.code(), stderr_of(&out))
}

#[test]
fn protocols_2_02_to_2_05_start_through_their_setup_code() {
    for version in [0x0202, 0x0205] {
        let (status, err) = run(&format!("{version:x}"), &image(version, 1));
        // 'A' (0x41) through isa-debug-exit: (0x41 << 1) | 1.
        assert_eq!(status, Some(0x83), "protocol {version:#06x}: {err}");
    }
}

#[test]
fn zimages_and_protocols_before_2_02_are_refused_with_advice() {
    let (status, err) = run("zimage", &image(0x0204, 0));
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("is a zImage") && err.contains("make bzImage"), "{err}");
    let (status, err) = run("201", &image(0x0201, 1));
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("Linux boot protocol 2.01 is too old") && err.contains("boot loader"), "{err}");
}
