//! A guest writes to an IDE disk: Debian's stock kernel loads its own ata_piix and
//! sd_mod drivers from the initramfs (`rx86.disktest` in the init), writes a marker to
//! sector 1 of the first disk through rx86's PIIX3 IDE controller, syncs, reads it back
//! and powers off. The bytes must then be in the image file.

use rx86_tests::fixtures::{linux_amd64, INIT_END_MARKER};
use rx86_tests::rx86_bin::{run_rx86_with_limit, stderr_of, stdout_of};
use std::time::Duration;

const MARKER: &[u8] = b"RX86-DISK-MARKER-0123456789";
const LIMIT: Duration = Duration::from_secs(1200);

#[test]
fn linux_writes_through_ide_into_the_image_file() {
    let fixture = match linux_amd64() {
        Ok(f) => f,
        Err(why) => {
            println!("SKIP: {why}");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("rx86-linux-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("disk.img");
    std::fs::write(&image, vec![0u8; 8 << 20]).unwrap();
    let args = [
        "run",
        "--accel",
        "interp",
        "-m",
        "256M",
        "--kernel",
        fixture.bzimage.to_str().unwrap(),
        "--initrd",
        fixture.initrd.to_str().unwrap(),
        "--append",
        "console=ttyS0 panic=-1 rx86.disktest",
        "--hda",
        image.to_str().unwrap(),
        "--serial",
        "stdio",
        "--no-reboot",
    ];
    let out = run_rx86_with_limit(&args, LIMIT).unwrap_or_else(|| panic!("rx86 did not finish in {LIMIT:?}"));
    let console = stdout_of(&out);
    let context = format!("exit {:?}\n--- console\n{console}\n--- stderr\n{}", out.status, stderr_of(&out));
    assert!(out.status.success(), "{context}");
    assert!(console.contains(INIT_END_MARKER), "{context}");
    assert!(!console.contains("RX86-DISK-INSMOD-FAILED"), "{context}");
    assert!(console.contains("ata1.00: ATA-"), "the kernel found the IDE disk:\n{context}");
    let marker = std::str::from_utf8(MARKER).unwrap();
    assert!(console.contains(&format!("{marker}\nRX86-DISK-DONE")), "read back through the disk:\n{context}");
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[512..512 + MARKER.len()], MARKER, "the marker reached sector 1 of the image file");
    assert!(bytes[..512].iter().all(|&b| b == 0), "sector 0 untouched");
    std::fs::remove_dir_all(&dir).unwrap();
}
