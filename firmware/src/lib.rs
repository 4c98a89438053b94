//! rx86 firmware: the memory layout and E820 map, ACPI tables, and the direct kernel
//! loaders (Linux boot protocol for bzImage, Multiboot 1 for ELF32 and a.out-kludge
//! kernels).
//!
//! The board builds a [`layout::MemoryLayout`], maps its regions, calls
//! [`acpi::build_acpi_tables`] and then [`load_kernel`], and starts the CPU in the
//! returned [`LoadedKernel::entry`] state.
#![warn(missing_docs)]

pub mod acpi;
pub mod bios;
pub mod elf;
pub mod error;
pub mod layout;
pub mod linux;
pub mod linux_setup;
pub mod lowmem;
pub mod multiboot;

pub use error::LoadError;
pub use layout::MemoryLayout;
pub use linux::LinuxEntry;

use rx86_core::entry::EntryState;
use rx86_core::phys::{PhysError, PhysMemory};

/// A Multiboot module: its bytes and its own command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module<'a> {
    /// The module's contents.
    pub bytes: &'a [u8],
    /// The string the kernel sees for it.
    pub cmdline: &'a str,
}

/// Choices that do not come from the kernel file.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Which Linux entry point to use (ignored for Multiboot).
    pub linux_entry: LinuxEntry,
    /// Multiboot modules after the initrd (ignored for Linux).
    pub modules: &'a [Module<'a>],
    /// Tell Linux an 80x25 VGA text console is present (boot_params.screen_info).
    pub vga_text_console: bool,
    /// Start Multiboot kernels that require video mode information without it.
    pub multiboot_ignore_video: bool,
}

/// What kind of kernel was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// A bzImage through the Linux boot protocol, at the given entry.
    Linux(LinuxEntry),
    /// A Multiboot 1 kernel.
    Multiboot,
}

/// A loaded kernel, ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The CPU state to start in.
    pub entry: EntryState,
    /// What was loaded.
    pub kind: KernelKind,
    /// One line for the log: format, addresses, sizes.
    pub summary: String,
}

/// Loads a kernel into guest memory: a bzImage ("HdrS" at 0x202) through the Linux boot
/// protocol, else a Multiboot kernel. For Multiboot, `initrd` becomes the first module
/// (with an empty command line), followed by `options.modules`. `rsdp` is the address
/// [`acpi::build_acpi_tables`] returned, if the board has ACPI.
pub fn load_kernel(
    mem: &PhysMemory,
    layout: &MemoryLayout,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    rsdp: Option<u64>,
    options: &LoadOptions<'_>,
) -> Result<LoadedKernel, LoadError> {
    let loaded = if linux::is_bzimage(kernel) {
        linux::load_bzimage(mem, layout, kernel, initrd, cmdline, rsdp, options)?
    } else if let Some(header) = multiboot::find_header(kernel)? {
        let modules: Vec<Module<'_>> = initrd
            .map(|bytes| Module { bytes, cmdline: "" })
            .into_iter()
            .chain(options.modules.iter().copied())
            .collect();
        multiboot::load_multiboot(mem, layout, kernel, &header, cmdline, &modules, options.multiboot_ignore_video)?
    } else {
        return Err(LoadError::NotAKernel(describe_unknown(kernel)));
    };
    log::info!("{}", loaded.summary);
    Ok(loaded)
}

/// Names what a file that is not a loadable kernel looks like.
fn describe_unknown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    if elf::is_elf(bytes) {
        let hint = if elf::is_elf64(bytes) { " (a vmlinux? boot arch/x86/boot/bzImage instead)" } else { "" };
        return format!("{} without a Multiboot header{hint}", elf::describe(bytes));
    }
    let known: [(&[u8], &str); 6] = [
        (b"\x1F\x8B", "gzip-compressed data"),
        (b"\xFD7zXZ\x00", "xz-compressed data"),
        (b"\x28\xB5\x2F\xFD", "zstd-compressed data"),
        (b"070701", "a cpio archive (an initramfs?)"),
        (b"MZ", "a PE/COFF executable without a Linux boot header"),
        (b"#!", "a script"),
    ];
    if let Some((_, what)) = known.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return (*what).into();
    }
    if bytes.len() >= 512 && bytes[510..512] == [0x55, 0xAA] {
        return "a boot sector (a disk image? use it as a disk, not as a kernel)".into();
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{} bytes of unknown data starting {}", bytes.len(), head.join(" "))
}

/// Writes `len` zero bytes at `addr` (bss), in bounded chunks.
fn write_zeros(mem: &PhysMemory, mut addr: u64, mut len: u64) -> Result<(), PhysError> {
    const CHUNK: u64 = 64 << 10;
    let zeros = vec![0u8; CHUNK.min(len) as usize];
    while len > 0 {
        let n = CHUNK.min(len);
        mem.dma_write(addr, &zeros[..n as usize])?;
        addr += n;
        len -= n;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rx86_core::entry::EntryMode;
    use rx86_core::memory::GuestRam;
    use std::sync::Arc;

    /// Guest memory of `ram` bytes mapped as the board maps it.
    pub(crate) fn machine(ram: u64) -> (PhysMemory, MemoryLayout) {
        let layout = MemoryLayout::new(ram).unwrap();
        let mut mem = PhysMemory::new(Arc::new(GuestRam::new(ram).unwrap()));
        for r in layout.regions().unwrap() {
            mem.add_region(r).unwrap();
        }
        (mem, layout)
    }

    fn load(kernel: &[u8], initrd: Option<&[u8]>, options: &LoadOptions<'_>) -> Result<LoadedKernel, LoadError> {
        let (mem, layout) = machine(64 << 20);
        load_kernel(&mem, &layout, kernel, initrd, "quiet", None, options)
    }

    #[test]
    fn detects_bzimage_first() {
        // A bzImage that also carries a Multiboot header is loaded as Linux.
        let mut f = linux::tests::bzimage(0x020F, 0x1000);
        f[0x800..0x80C].copy_from_slice(&multiboot::tests::header(0, None));
        let k = load(&f, None, &LoadOptions { linux_entry: LinuxEntry::Long64, ..Default::default() }).unwrap();
        assert_eq!(k.kind, KernelKind::Linux(LinuxEntry::Long64));
        assert_eq!(k.entry.mode, EntryMode::Long64);
    }

    #[test]
    fn multiboot_gets_initrd_as_first_module() {
        let extra = [Module { bytes: b"second", cmdline: "two" }];
        let (mem, layout) = machine(64 << 20);
        let options = LoadOptions { modules: &extra, ..Default::default() };
        let k =
            load_kernel(&mem, &layout, &multiboot::tests::elf_kernel(), Some(b"first"), "", None, &options).unwrap();
        assert_eq!(k.kind, KernelKind::Multiboot);
        let mut b = [0u8; 4];
        let info = k.entry.gpr[rx86_core::entry::gpr::RBX];
        mem.dma_read(info + 20, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 2);
        mem.dma_read(info + 24, &mut b).unwrap();
        let mods = u64::from(u32::from_le_bytes(b));
        mem.dma_read(mods, &mut b).unwrap();
        let mut first = [0u8; 5];
        mem.dma_read(u64::from(u32::from_le_bytes(b)), &mut first).unwrap();
        assert_eq!(&first, b"first");
    }

    #[test]
    fn non_kernels_are_named() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "an empty file"),
            (b"\x1F\x8B\x08\x00", "gzip"),
            (b"070701000000", "cpio"),
            (b"MZ\x90\x00", "PE/COFF"),
            (b"\x01\x02\x03", "3 bytes of unknown data starting 01 02 03"),
            (&[0u8; 16], "16 bytes of unknown data"),
        ];
        for (bytes, what) in cases {
            let e = load(bytes, None, &LoadOptions::default()).unwrap_err().to_string();
            assert!(e.starts_with("not a bzImage or Multiboot kernel: found"), "{e}");
            assert!(e.contains(what), "{e} should mention {what}");
        }
        let mut vmlinux = elf::tests::build_elf32(0, &[(0x10_0000, 0x10_0000, b"x", 1)]);
        vmlinux[4] = 2;
        vmlinux[18] = 62;
        let e = load(&vmlinux, None, &LoadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("64-bit ELF x86-64 executable without a Multiboot header"), "{e}");
        let mut boot_sector = vec![0u8; 512];
        boot_sector[510] = 0x55;
        boot_sector[511] = 0xAA;
        assert!(load(&boot_sector, None, &LoadOptions::default()).unwrap_err().to_string().contains("boot sector"));
    }

    /// A tiny deterministic generator (xorshift) for mutation tests.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn truncated_and_mutated_kernels_give_errors_not_panics() {
        let (mem, layout) = machine(16 << 20);
        let options = LoadOptions::default();
        let seeds = [linux::tests::bzimage(0x020F, 0x400), multiboot::tests::elf_kernel(), {
            let mut f = multiboot::tests::header(1 << 16, Some([0x10_0000, 0x10_0000, 0, 0x10_4000, 0x10_0000]));
            f.resize(0x200, 0x90);
            f
        }];
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for seed in &seeds {
            for len in 0..seed.len() {
                let _ = load_kernel(&mem, &layout, &seed[..len], Some(b"rd"), "", None, &options);
            }
            for _ in 0..3000 {
                let mut f = seed.clone();
                for _ in 0..1 + xorshift(&mut rng) % 4 {
                    let at = (xorshift(&mut rng) % f.len() as u64) as usize;
                    f[at] = xorshift(&mut rng) as u8;
                }
                let _ = load_kernel(&mem, &layout, &f, Some(b"rd"), "x", Some(0xE_0000), &options);
            }
        }
        for len in [0usize, 1, 100, 4096, 9000] {
            let f: Vec<u8> = (0..len).map(|_| xorshift(&mut rng) as u8).collect();
            assert!(load_kernel(&mem, &layout, &f, None, "", None, &options).is_err());
        }
    }

    #[test]
    fn zero_fill_covers_chunk_boundaries() {
        let (mem, _) = machine(4 << 20);
        mem.dma_write(0x10_0000, &vec![0xFF; 0x3_0000]).unwrap();
        write_zeros(&mem, 0x10_0001, 0x2_0000).unwrap();
        let mut b = vec![0u8; 0x3_0000];
        mem.dma_read(0x10_0000, &mut b).unwrap();
        assert_eq!(b[0], 0xFF);
        assert!(b[1..0x2_0001].iter().all(|&x| x == 0));
        assert_eq!(b[0x2_0001], 0xFF);
    }
}
