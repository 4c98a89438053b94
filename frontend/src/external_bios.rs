//! `--bios FILE`: an external firmware image (SeaBIOS and the like) instead of the built-in
//! BIOS. As on a PC, the image sits read-only just below 4 GiB, where the CPU's reset vector
//! (F000:FFF0 with CS base FFFF0000) points, and its last 128 KiB also appear at
//! 0xE0000-0xFFFFF for real-mode code.
//!
//! That low copy is the ROM side of the shadow region: at power-on the PAM registers are
//! clear, so 0xE0000-0xFFFFF reads the image. Firmware then turns shadow RAM on through the
//! i440FX PAM registers, copies itself down, and write-protects the copy, and the address map
//! follows (`rx86_core::shadow`).
//!
//! The firmware learns about the machine as it does on QEMU: from QEMU's fw_cfg device
//! ([`fw_cfg`]: RAM size, CPU count, the ACPI tables with their loader script) and from the
//! CMOS (memory sizes, and the `--boot` order in QEMU's boot-order bytes, [`boot_order_cmos`]).

use crate::error::RunError;
use rx86_core::memory::GuestRam;
use rx86_core::phys::{PhysMemory, Region, RegionKind};
use rx86_core::shadow::SHADOW_BASE;
use rx86_devices::fw_cfg::FwCfg;
use rx86_devices::ide::SharedDmaMemory;
use rx86_firmware::acpi::{build_acpi_blobs, LOADER_FILE, RSDP_FILE, TABLES_FILE};
use rx86_firmware::bios::BootDevice;
use rx86_firmware::layout::MemoryLayout;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Smallest image: one 64 KiB segment.
pub const MIN_ROM_BYTES: usize = 64 << 10;
/// Largest image: the 16 MiB the chipset decodes below 4 GiB.
pub const MAX_ROM_BYTES: usize = 16 << 20;
/// The part of the image that also appears below 1 MiB.
const LOW_ALIAS_BYTES: usize = 128 << 10;
/// Where the low alias ends.
const ONE_MIB: u64 = 1 << 20;

/// Reads the image at `path` and checks its size: a multiple of 64 KiB from 64 KiB to 16 MiB.
pub fn read_rom(path: &Path) -> Result<Vec<u8>, RunError> {
    let rom =
        std::fs::read(path).map_err(|source| RunError::ReadFile { what: "BIOS image", path: path.into(), source })?;
    check_size(rom.len()).map_err(|why| RunError::Firmware(format!("--bios {}: {why}", path.display())))?;
    Ok(rom)
}

fn check_size(len: usize) -> Result<(), String> {
    if !(MIN_ROM_BYTES..=MAX_ROM_BYTES).contains(&len) || !len.is_multiple_of(MIN_ROM_BYTES) {
        return Err(format!(
            "{len} bytes is not a BIOS image size (a multiple of 64 KiB from 64 KiB to 16 MiB, e.g. SeaBIOS's 128 KiB \
             bios.bin)"
        ));
    }
    Ok(())
}

/// Maps `rom` just below 4 GiB (read-only).
pub fn map_high(memory: &mut PhysMemory, rom: &[u8]) -> Result<(), RunError> {
    let data = GuestRam::new(rom.len() as u64).map_err(|e| RunError::Memory(e.to_string()))?;
    data.write(0, rom).map_err(|e| RunError::Memory(e.to_string()))?;
    let region = Region {
        base: (1u64 << 32) - rom.len() as u64,
        len: rom.len() as u64,
        kind: RegionKind::Rom { data: Arc::new(data) },
        name: "BIOS image".into(),
    };
    memory.add_region(region).map_err(|e| RunError::Board(e.to_string()))
}

/// Puts the image's last 128 KiB below 1 MiB: on the shadow region's ROM side, which
/// 0xE0000-0xFFFFF reads at power-on, and in the RAM beneath it.
pub fn fill_low_alias(memory: &PhysMemory, rom: &[u8]) -> Result<(), RunError> {
    let low = &rom[rom.len().saturating_sub(LOW_ALIAS_BYTES)..];
    let at = ONE_MIB - low.len() as u64;
    let shadow_rom = memory.shadow_rom().ok_or_else(|| RunError::Board("no shadow RAM".into()))?;
    shadow_rom.write(at - SHADOW_BASE, low).map_err(|e| RunError::Memory(e.to_string()))?;
    memory.ram().write(at, low).map_err(|e| RunError::Memory(e.to_string()))
}

/// The VGA BIOS for the board's VGA (QEMU's `-vga std`) that Debian's `seabios` package installs
/// beside `bios.bin`, as QEMU loads it from its data folder.
pub const VGA_BIOS_FILE: &str = "vgabios-stdvga.bin";

/// Where Debian's packages install [`VGA_BIOS_FILE`]: `seabios`, then `qemu-system-data`.
const SYSTEM_VGA_BIOS_DIRS: [&str; 2] = ["/usr/share/seabios", "/usr/share/qemu"];

/// The VGA BIOS the VGA offers as its PCI expansion ROM: [`VGA_BIOS_FILE`] beside the firmware
/// image `bios`, else where Debian installs it. `None` (logged) when there is none; the
/// firmware then has no video services, and its output and a boot loader's go to the serial
/// port.
pub fn find_vga_bios(bios: &Path) -> Option<Vec<u8>> {
    let beside = bios.parent().unwrap_or(Path::new(".")).to_path_buf();
    vga_bios_in(std::iter::once(beside).chain(SYSTEM_VGA_BIOS_DIRS.iter().map(PathBuf::from)))
}

/// The first readable [`VGA_BIOS_FILE`] in `dirs`.
fn vga_bios_in(dirs: impl IntoIterator<Item = PathBuf>) -> Option<Vec<u8>> {
    let mut tried = Vec::new();
    for dir in dirs {
        let path = dir.join(VGA_BIOS_FILE);
        match std::fs::read(&path) {
            Ok(image) => {
                log::info!("VGA BIOS: {} ({} bytes) as the VGA's expansion ROM", path.display(), image.len());
                return Some(image);
            }
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    log::warn!("no VGA BIOS ({}): the firmware will show nothing on the VGA screen", tried.join("; "));
    None
}

/// CPUs the machine has.
const CPUS: u16 = 1;
/// `etc/boot-fail-wait`: milliseconds SeaBIOS waits before it retries when nothing boots.
const BOOT_FAIL_WAIT_MS: u32 = 5000;

/// The fw_cfg device for `layout`'s RAM, with DMA through `memory`: signature and ID, RAM size
/// and CPU count, `etc/boot-fail-wait`, and the ACPI tables (`etc/acpi/tables`,
/// `etc/acpi/rsdp`, `etc/table-loader`).
pub fn fw_cfg(memory: SharedDmaMemory, layout: &MemoryLayout) -> Result<FwCfg, RunError> {
    let mut fw_cfg = FwCfg::new(Some(memory));
    fw_cfg.set_pc_items(layout.ram_bytes(), CPUS);
    let acpi = build_acpi_blobs(layout, u32::from(CPUS)).map_err(|e| RunError::Board(format!("ACPI tables: {e}")))?;
    let files = [
        (TABLES_FILE, acpi.tables),
        (RSDP_FILE, acpi.rsdp),
        (LOADER_FILE, acpi.loader),
        ("etc/boot-fail-wait", BOOT_FAIL_WAIT_MS.to_le_bytes().to_vec()),
    ];
    for (name, data) in files {
        fw_cfg.add_file(name, data).map_err(|e| RunError::Board(e.to_string()))?;
    }
    Ok(fw_cfg)
}

/// CMOS registers of QEMU's boot order, which SeaBIOS reads on QEMU: 0x3D holds the first
/// device (bits 0-3) and the second (bits 4-7), 0x38 the third (bits 4-7).
pub const CMOS_BOOT_ORDER_LOW: u8 = 0x3d;
/// See [`CMOS_BOOT_ORDER_LOW`].
pub const CMOS_BOOT_ORDER_HIGH: u8 = 0x38;

/// The values of [`CMOS_BOOT_ORDER_LOW`] and [`CMOS_BOOT_ORDER_HIGH`] for `order` (the first
/// three devices; codes 1 floppy, 2 hard disk, 3 CD-ROM).
pub fn boot_order_cmos(order: &[BootDevice]) -> (u8, u8) {
    let code = |d: &BootDevice| match d {
        BootDevice::Floppy => 1u8,
        BootDevice::HardDisk => 2,
        BootDevice::Cdrom => 3,
    };
    let codes: Vec<u8> = order.iter().take(3).map(code).chain(std::iter::repeat(0)).take(3).collect();
    (codes[0] | codes[1] << 4, codes[2] << 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_order_nibbles_follow_qemu() {
        // QEMU's -boot dca: CD, hard disk, floppy.
        let order = [BootDevice::Cdrom, BootDevice::HardDisk, BootDevice::Floppy];
        assert_eq!(boot_order_cmos(&order), (0x23, 0x10));
        assert_eq!(boot_order_cmos(&[BootDevice::Floppy]), (0x01, 0x00));
    }

    #[test]
    fn fw_cfg_holds_the_acpi_files_and_ram_size() {
        let ram = Arc::new(GuestRam::new(64 << 20).unwrap());
        let memory: SharedDmaMemory = Arc::new(PhysMemory::new(ram));
        let layout = MemoryLayout::new(64 << 20).unwrap();
        let fw_cfg = fw_cfg(memory, &layout).unwrap();
        let loader = fw_cfg.file(LOADER_FILE).unwrap();
        assert_eq!(loader.len() % 128, 0);
        assert_eq!(&fw_cfg.file(RSDP_FILE).unwrap()[..8], b"RSD PTR ");
        assert_eq!(&fw_cfg.file(TABLES_FILE).unwrap()[..4], b"FACS");
    }

    #[test]
    fn the_vga_bios_is_the_first_one_found() {
        let root = std::env::temp_dir().join(format!("rx86-vga-bios-{}", std::process::id()));
        let (empty, first, second) = (root.join("empty"), root.join("first"), root.join("second"));
        for (dir, content) in [(&first, b"one"), (&second, b"two")] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(VGA_BIOS_FILE), content).unwrap();
        }
        assert_eq!(vga_bios_in([empty.clone(), second.clone(), first.clone()]), Some(b"two".to_vec()));
        assert_eq!(vga_bios_in([empty]), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn image_sizes() {
        for ok in [64 << 10, 128 << 10, 256 << 10, 16 << 20] {
            assert!(check_size(ok).is_ok(), "{ok}");
        }
        for bad in [0, 512, (64 << 10) - 1, (128 << 10) + 512, 32 << 20] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_image_ends_at_4_gib_and_its_last_128_kib_at_1_mib() {
        let layout = MemoryLayout::new(2 << 20).unwrap();
        let mut memory = PhysMemory::new(Arc::new(GuestRam::new(2 << 20).unwrap()));
        for region in layout.regions().unwrap() {
            memory.add_region(region).unwrap();
        }
        let shadow = memory.shadow().unwrap().clone();
        for segment in 0..rx86_core::shadow::SEGMENT_COUNT {
            shadow.set(segment, 0);
        }
        let rom: Vec<u8> = (0..256 << 10).map(|i: usize| (i / 1024) as u8).collect();
        map_high(&mut memory, &rom).unwrap();
        fill_low_alias(&memory, &rom).unwrap();
        let mut b = [0u8; 1];
        memory.write(0xf_0000, &[0xee]);
        memory.read(0xf_0000, &mut b);
        assert_eq!(b[0], rom[rom.len() - (64 << 10)], "shadow RAM off: the ROM side, read-only");
        shadow.set(12, rx86_core::shadow::enable::READ_WRITE);
        memory.read(0xf_0010, &mut b);
        assert_eq!(b[0], rom[rom.len() - (64 << 10)], "the RAM beneath holds the image too");
        memory.read(0xffff_fff0, &mut b);
        assert_eq!(b[0], rom[rom.len() - 16], "the reset vector is the image's 16th byte from the end");
        memory.read(0xfffc_0000, &mut b);
        assert_eq!(b[0], rom[0]);
        memory.read(0xe_0000, &mut b);
        assert_eq!(b[0], rom[rom.len() - (128 << 10)]);
        memory.write(0xffff_fff0, &[0x55]);
        memory.read(0xffff_fff0, &mut b);
        assert_eq!(b[0], rom[rom.len() - 16], "the high copy is read-only");
    }
}
