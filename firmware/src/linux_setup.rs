//! Booting a Linux boot-protocol image through its own real-mode setup code, under the
//! built-in BIOS, as a boot loader does and as QEMU does for every `-kernel`
//! (Documentation/arch/x86/boot.rst: "Loading the rest of the kernel", "Running the
//! kernel"). rx86 enters ordinary bzImages directly at their 32-bit entry ([`crate::linux`]);
//! this path is for images without one (`code32_start` 0, such as iPXE's `ipxe.lkrn`), whose
//! setup code needs the BIOS, and for bzImages of protocols 2.02-2.05, whose headers lack
//! what the direct entry relies on (cmdline_size, reliable relocation) but whose setup code
//! starts them as a boot loader would.
//!
//! The layout is boot.rst's suggestion for protocol 2.02 and later, with X = 0x10000 (QEMU's
//! choice):
//!
//! ```text
//! 0x10000-0x1FFFF  boot sector and setup code (X), then the setup heap and stack
//! 0x20000-0x2FFFF  command line (X + 0x10000)
//! 0x100000-        the protected-mode part ("loaded high")
//! ```
//!
//! The loader writes the images and fills the setup header in place; the BIOS then boots as
//! usual and its INT 19h, instead of a boot sector, enters the setup at X/16 + 0x20 : 0 with
//! DS = ES = FS = GS = SS = X/16 and SP at the top of the segment ([`RealModeSetup`]).

use crate::error::LoadError;
use crate::layout::{MemoryLayout, EXTENDED_START};
use crate::linux::{
    is_bzimage, place_initrd, put32, u32_at, Placement, SetupHeader, CAN_USE_HEAP, CMD_LINE_PTR, CODE32_START,
    HEAP_END_PTR, LOADER_TYPE_UNDEFINED, LOADFLAGS, MIN_PROTOCOL, MIN_SETUP_PROTOCOL, RAMDISK_IMAGE, RAMDISK_SIZE,
    TYPE_OF_LOADER,
};
use crate::lowmem::{CMDLINE_ADDR, CMDLINE_AREA_BYTES};
use rx86_core::phys::PhysMemory;

/// Where the boot sector and setup code go (X).
pub const SETUP_ADDR: u64 = 0x1_0000;
/// The setup's segment.
const SETUP_SEGMENT: u16 = (SETUP_ADDR >> 4) as u16;
/// Setup code, heap and stack share one 64 KiB segment; the command line follows it.
const SEGMENT_BYTES: u64 = 0x1_0000;
/// heap_end_ptr: the heap may reach the command line (the value is relative to X + 0x200).
const HEAP_END: u16 = (SEGMENT_BYTES - 0x200) as u16;
/// The stack pointer at entry: the top of the segment, as QEMU leaves it.
const STACK_POINTER: u16 = (SEGMENT_BYTES - 0x10) as u16;
/// Largest boot sector plus setup that leaves the setup code a heap and stack of 8 KiB.
pub const MAX_SETUP_BYTES: u64 = SEGMENT_BYTES - 0x2000;
/// The setup's entry is 0x200 bytes in: its segment is X/16 + 0x20, offset 0.
const ENTRY_SEGMENT_OFFSET: u16 = 0x20;

/// How the BIOS enters a kernel's real-mode setup: at `entry_segment`:0000 with DS, ES, FS,
/// GS and SS at `data_segment`, SP at `stack_pointer`, interrupts off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealModeSetup {
    /// DS, ES, FS, GS and SS: the segment of the boot sector (X / 16).
    pub data_segment: u16,
    /// CS (IP is 0): X / 16 + 0x20.
    pub entry_segment: u16,
    /// SP.
    pub stack_pointer: u16,
}

/// True when `bytes` is a Linux boot-protocol image that its real-mode setup code must
/// start: one without a 32-bit entry point (`code32_start` 0), or a bzImage of protocol
/// 2.02-2.05.
pub fn needs_real_mode_setup(bytes: &[u8]) -> bool {
    let old = SetupHeader::version_of(bytes).is_some_and(|v| (MIN_SETUP_PROTOCOL..MIN_PROTOCOL).contains(&v));
    is_bzimage(bytes) && bytes.len() >= CODE32_START + 4 && (u32_at(bytes, CODE32_START) == 0 || old)
}

/// Loads `bytes` for its real-mode setup: boot sector and setup at [`SETUP_ADDR`], the
/// protected-mode part at 1 MiB, the initrd as high as the header allows and the command
/// line at X + 0x10000, with the setup header filled in as boot.rst asks of a boot loader.
/// Returns how to enter it and a line for the log.
pub fn load(
    mem: &PhysMemory,
    layout: &MemoryLayout,
    bytes: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
) -> Result<(RealModeSetup, String), LoadError> {
    let hdr = SetupHeader::parse_for_setup(bytes)?;
    let setup_len = hdr.kernel_offset;
    if setup_len > MAX_SETUP_BYTES {
        return Err(LoadError::SetupTooBig(setup_len));
    }
    let max_cmdline = hdr.cmdline_size.min(CMDLINE_AREA_BYTES - 1);
    if cmdline.len() as u64 > max_cmdline {
        return Err(LoadError::CmdlineTooLong { len: cmdline.len(), max: max_cmdline });
    }
    if cmdline.contains('\0') {
        return Err(LoadError::CmdlineNul(cmdline.into()));
    }
    let image = &bytes[setup_len as usize..];
    let limit = layout.usable_low_end();
    let image_end = EXTENDED_START + image.len() as u64;
    let run_end = image_end.max(EXTENDED_START.saturating_add(hdr.init_size));
    if run_end > limit {
        return Err(LoadError::KernelTooBig {
            need_end: run_end,
            limit,
            min_ram_mib: run_end.saturating_add(crate::layout::ACPI_AREA_BYTES).div_ceil(1 << 20),
        });
    }
    let kernel = Placement { load: EXTENDED_START, image_end, run_start: EXTENDED_START, run_end };
    let initrd = match initrd.filter(|rd| !rd.is_empty()) {
        Some(rd) => Some((place_initrd(&hdr, rd.len() as u64, &kernel, limit)?, rd)),
        None => None,
    };

    let mut setup = bytes[..setup_len as usize].to_vec();
    setup[TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    setup[LOADFLAGS] |= CAN_USE_HEAP;
    setup[HEAP_END_PTR..HEAP_END_PTR + 2].copy_from_slice(&HEAP_END.to_le_bytes());
    put32(&mut setup, CMD_LINE_PTR, CMDLINE_ADDR);
    if let Some((addr, rd)) = initrd {
        put32(&mut setup, RAMDISK_IMAGE, addr);
        put32(&mut setup, RAMDISK_SIZE, rd.len() as u64);
    }
    mem.dma_write(SETUP_ADDR, &setup)?;
    mem.dma_write(EXTENDED_START, image)?;
    if let Some((addr, rd)) = initrd {
        mem.dma_write(addr, rd)?;
    }
    let mut cmd = cmdline.as_bytes().to_vec();
    cmd.push(0);
    mem.dma_write(CMDLINE_ADDR, &cmd)?;

    let entry = RealModeSetup {
        data_segment: SETUP_SEGMENT,
        entry_segment: SETUP_SEGMENT + ENTRY_SEGMENT_OFFSET,
        stack_pointer: STACK_POINTER,
    };
    let mut summary = format!(
        "Linux boot protocol {} image ({}): {setup_len} bytes of real-mode setup at {SETUP_ADDR:#x} \
         (entered by the BIOS at {:04x}:0000), {} bytes at {EXTENDED_START:#x}",
        hdr.version_string(),
        if hdr.version < MIN_PROTOCOL { "older than 2.06" } else { "no 32-bit entry" },
        entry.entry_segment,
        image.len()
    );
    if let Some((addr, rd)) = initrd {
        summary += &format!("; initrd {} bytes at {addr:#x}", rd.len());
    }
    summary += &format!("; cmdline {} bytes", cmdline.len());
    Ok((entry, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::tests::bzimage;
    use crate::linux::u16_at;
    use crate::tests::machine;

    /// A synthetic image like `ipxe.lkrn`: protocol 2.07, code32_start 0.
    fn lkrn(kernel_len: usize) -> Vec<u8> {
        let mut f = bzimage(0x0207, kernel_len);
        f[CODE32_START..CODE32_START + 4].fill(0);
        f
    }

    fn read(mem: &PhysMemory, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        mem.dma_read(addr, &mut b).unwrap();
        b
    }

    #[test]
    fn only_images_without_a_32_bit_entry_or_of_old_protocols_need_their_setup() {
        assert!(needs_real_mode_setup(&lkrn(0x100)));
        assert!(!needs_real_mode_setup(&bzimage(0x020F, 0x100)));
        assert!(!needs_real_mode_setup(&bzimage(0x0206, 0x100)));
        assert!(needs_real_mode_setup(&bzimage(0x0205, 0x100)));
        assert!(needs_real_mode_setup(&bzimage(0x0202, 0x100)));
        assert!(!needs_real_mode_setup(&bzimage(0x0201, 0x100)), "too old for any path: refused by the loader");
        assert!(!needs_real_mode_setup(b"not a kernel"));
        assert!(!needs_real_mode_setup(&lkrn(0x100)[..CODE32_START + 2]));
    }

    #[test]
    fn setup_header_and_images_are_placed_as_boot_rst_suggests() {
        let f = lkrn(0x3000);
        let (mem, layout) = machine(64 << 20);
        let (entry, summary) = load(&mem, &layout, &f, Some(b"initrd"), "autoboot").unwrap();
        assert_eq!(entry, RealModeSetup { data_segment: 0x1000, entry_segment: 0x1020, stack_pointer: 0xFFF0 });
        let setup = read(&mem, SETUP_ADDR, 0x800);
        assert_eq!(&setup[0x202..0x206], b"HdrS");
        assert_eq!(setup[TYPE_OF_LOADER], 0xFF);
        assert_eq!(setup[LOADFLAGS] & CAN_USE_HEAP, CAN_USE_HEAP);
        assert_eq!(u16_at(&setup, HEAP_END_PTR), 0xFE00);
        assert_eq!(u32_at(&setup, CMD_LINE_PTR), CMDLINE_ADDR);
        assert_eq!(u32_at(&setup, CODE32_START), 0, "left as the image has it");
        assert_eq!(read(&mem, CMDLINE_ADDR, 9), b"autoboot\0");
        assert_eq!(read(&mem, EXTENDED_START, 0x3000), f[0x800..]);
        let rd = u32_at(&setup, RAMDISK_IMAGE);
        assert_eq!(u32_at(&setup, RAMDISK_SIZE), 6);
        assert_eq!(read(&mem, rd, 6), b"initrd");
        assert!(rd >= 0x100_0000, "above the image and its init_size");
        assert_eq!(rd % 4096, 0);
        assert!(summary.contains("2.07") && summary.contains("1020:0000"), "{summary}");
    }

    /// Protocols 2.02-2.04 lack cmdline_size (255 bytes then), initrd_addr_max (2.03) and
    /// the relocation fields (2.05): the defaults of boot.rst apply, whatever the bytes hold.
    #[test]
    fn old_protocols_load_with_boot_rst_defaults() {
        let (mem, layout) = machine(64 << 20);
        let mut f = bzimage(0x0202, 0x3000);
        // What later protocols would read as initrd_addr_max: garbage in a 2.02 header.
        f[0x22C..0x230].copy_from_slice(&0x1000u32.to_le_bytes());
        let (entry, summary) = load(&mem, &layout, &f, Some(b"initrd"), &"c".repeat(255)).unwrap();
        assert_eq!(entry.entry_segment, 0x1020);
        assert!(summary.contains("2.02 image (older than 2.06)"), "{summary}");
        let rd = u32_at(&read(&mem, SETUP_ADDR, 0x800), RAMDISK_IMAGE);
        assert!(rd > 0x1000, "initrd_addr_max of a 2.02 header is not read");
        assert!(matches!(
            load(&mem, &layout, &f, None, &"c".repeat(256)),
            Err(LoadError::CmdlineTooLong { max: 255, .. })
        ));
        let old = bzimage(0x0201, 0x3000);
        let e = load(&mem, &layout, &old, None, "").unwrap_err();
        assert!(matches!(e, LoadError::ProtocolTooOld(0x0201)), "{e:?}");
        assert!(e.to_string().contains("2.02-2.05 through their real-mode setup"), "{e}");
        let mut zimage = bzimage(0x0204, 0x3000);
        zimage[LOADFLAGS] = 0;
        let e = load(&mem, &layout, &zimage, None, "").unwrap_err();
        assert!(matches!(e, LoadError::ZImage) && e.to_string().contains("make bzImage"), "{e}");
    }

    #[test]
    fn bad_images_are_refused() {
        let (mem, layout) = machine(8 << 20);
        let mut big_setup = lkrn(0x100);
        big_setup[crate::linux::SETUP_SECTS] = 200;
        big_setup.resize(201 * 512 + 0x100, 0);
        assert!(matches!(load(&mem, &layout, &big_setup, None, ""), Err(LoadError::SetupTooBig(_))));
        let huge = lkrn(0x80_0000);
        assert!(matches!(load(&mem, &layout, &huge, None, ""), Err(LoadError::KernelTooBig { .. })));
        assert!(matches!(load(&mem, &layout, &lkrn(0x100), None, "a\0b"), Err(LoadError::CmdlineNul(_))));
        assert!(matches!(
            load(&mem, &layout, &lkrn(0x100), None, &"x".repeat(4096)),
            Err(LoadError::CmdlineTooLong { .. })
        ));
        // The direct loader names what is wrong instead of entering address 0.
        let options = crate::LoadOptions::default();
        let direct = crate::load_kernel(&mem, &layout, &lkrn(0x100), None, "", None, &options);
        assert!(matches!(direct, Err(LoadError::No32BitEntry)), "{direct:?}");
    }
}
