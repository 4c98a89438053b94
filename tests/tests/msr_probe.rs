//! A guest probing an MSR the CPU lacks (Linux's `rdmsr_safe`) gets the #GP the SDM
//! specifies, and the user's terminal stays quiet: the probe is logged at debug level only.

use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of};
use std::time::Duration;

/// A boot sector (loaded at 0000:7C00) that points vector 13 at a handler skipping the
/// 2-byte faulting instruction, reads MSR 0xDEADBEEF, then writes 0 to isa-debug-exit.
const BOOT_SECTOR: [u8; 43] = [
    0xfa, // cli
    0x31, 0xc0, // xor ax,ax
    0x8e, 0xd8, // mov ds,ax
    0xc7, 0x06, 0x34, 0x00, 0x22, 0x7c, // mov word [13*4],handler (0x7c22)
    0xc7, 0x06, 0x36, 0x00, 0x00, 0x00, // mov word [13*4+2],0
    0x66, 0xb9, 0xef, 0xbe, 0xad, 0xde, // mov ecx,0xdeadbeef
    0x0f, 0x32, // rdmsr: #GP(0)
    0xba, 0x01, 0x05, // mov dx,0x501
    0x30, 0xc0, // xor al,al
    0xee, // out dx,al: exit status (0 << 1) | 1
    0xf4, 0xeb, 0xfd, // hlt; jmp $-1
    // handler (0x7c22): skip the faulting instruction
    0x55, // push bp
    0x89, 0xe5, // mov bp,sp
    0x83, 0x46, 0x02, 0x02, // add word [bp+2],2
    0x5d, // pop bp
    0xcf, // iret
];

#[test]
fn an_unknown_msr_probe_faults_quietly() {
    let path = std::env::temp_dir().join(format!("rx86-msr-probe-{}.img", std::process::id()));
    let mut image = vec![0u8; 1_474_560];
    image[..BOOT_SECTOR.len()].copy_from_slice(&BOOT_SECTOR);
    image[510..512].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(&path, image).unwrap();
    let args =
        ["run", "--fda", path.to_str().unwrap(), "--boot", "a", "--snapshot", "--serial", "none", "--debug-exit"];
    let out = run_rx86_with_limit(&args, Duration::from_secs(60)).expect("rx86 ends");
    std::fs::remove_file(&path).unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "the guest went on after the #GP to its debug exit: {err}");
    assert!(!err.contains("WARN") && !err.contains("MSR"), "nothing on the terminal: {err}");
}
