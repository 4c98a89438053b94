//! Why a kernel could not be loaded. Every message is one line naming what was wrong.

use rx86_core::phys::PhysError;
use thiserror::Error;

/// Errors from the kernel loaders.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file is neither a bzImage nor a Multiboot kernel.
    #[error("not a bzImage or Multiboot kernel: found {0}")]
    NotAKernel(String),
    /// The file ends before a structure its header describes.
    #[error("{what} is truncated: the file has {len} bytes but {need} are needed")]
    Truncated {
        /// What is cut short.
        what: &'static str,
        /// Bytes present.
        len: u64,
        /// Bytes required.
        need: u64,
    },
    /// The Linux boot protocol is older than the loader takes (2.06 entered directly, 2.02
    /// through the real-mode setup).
    #[error(
        "Linux boot protocol {}.{:02} is too old: rx86 starts 2.06 and later directly and 2.02-2.05 through their \
         real-mode setup; boot an older kernel from a disk image with its boot loader",
        .0 >> 8,
        .0 & 0xFF
    )]
    ProtocolTooOld(u16),
    /// A header field holds an impossible value.
    #[error("invalid kernel header: {0}")]
    BadHeader(String),
    /// A zImage (loaded below 1 MiB) instead of a bzImage.
    #[error(
        "kernel is a zImage (loaded below 1 MiB, LOADED_HIGH clear), which --kernel does not load; build a \
         bzImage (make bzImage) or boot it from a disk image with its boot loader"
    )]
    ZImage,
    /// The direct loader was given an image without a 32-bit entry (code32_start 0).
    #[error("kernel has no 32-bit entry point (code32_start is 0): it boots only through its real-mode setup code under the BIOS")]
    No32BitEntry,
    /// The real-mode setup code leaves no room for its heap and stack in its 64 KiB segment.
    #[error("kernel's real-mode setup of {0} bytes leaves no room for its heap and stack (at most {max} bytes)", max = crate::linux_setup::MAX_SETUP_BYTES)]
    SetupTooBig(u64),
    /// A 64-bit entry was requested but the kernel has none.
    #[error("kernel has no 64-bit entry point (boot protocol {}.{:02}, XLF_KERNEL_64 clear); use the 32-bit entry", .0 >> 8, .0 & 0xFF)]
    No64BitEntry(u16),
    /// A non-relocatable kernel must run where RAM cannot hold it.
    #[error("kernel is not relocatable and must run at {start:#x}..{end:#x}, beyond usable RAM ending at {limit:#x}")]
    NotRelocatable {
        /// Where the kernel insists on running.
        start: u64,
        /// End of the memory it needs there.
        end: u64,
        /// End of usable low RAM.
        limit: u64,
    },
    /// The kernel (with its decompression space) does not fit in RAM.
    #[error("kernel needs memory up to {need_end:#x} but usable RAM below 4 GiB ends at {limit:#x} (give the guest at least {min_ram_mib} MiB)")]
    KernelTooBig {
        /// End of the memory the kernel needs.
        need_end: u64,
        /// End of usable low RAM.
        limit: u64,
        /// Smallest RAM size (MiB) whose layout would hold it.
        min_ram_mib: u64,
    },
    /// No room for the initrd between the kernel and its highest allowed address.
    #[error("initrd of {size} bytes does not fit below {limit:#x} (above the kernel, which ends at {floor:#x})")]
    InitrdTooBig {
        /// The initrd's size.
        size: u64,
        /// The highest end address allowed.
        limit: u64,
        /// The lowest start address allowed.
        floor: u64,
    },
    /// The command line exceeds the kernel's limit.
    #[error("kernel command line of {len} bytes exceeds the limit of {max} bytes")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The largest length accepted.
        max: u64,
    },
    /// A command line holds a NUL byte, which would silently cut it short.
    #[error("command line {0:?} contains a NUL byte")]
    CmdlineNul(String),
    /// The Multiboot header's checksum does not match.
    #[error("Multiboot header at file offset {0:#x} has a bad checksum")]
    MultibootChecksum(usize),
    /// The kernel requires video mode information, which rx86 does not supply.
    #[error("Multiboot kernel requires video mode information (header flag bit 2), which rx86 does not provide")]
    MultibootVideo,
    /// The kernel requires features this loader does not know.
    #[error("Multiboot kernel requires unknown features (header flags {0:#06x} in the required range 0-15)")]
    MultibootUnknownFlags(u32),
    /// A 64-bit ELF file with a Multiboot 1 header.
    #[error("64-bit ELF Multiboot kernel: Multiboot 1 loads ELF32 or a.out-kludge images only")]
    Elf64,
    /// The ELF file is malformed or not an x86 executable.
    #[error("invalid ELF kernel: {0}")]
    BadElf(String),
    /// The Multiboot a.out kludge addresses are inconsistent.
    #[error("invalid Multiboot load addresses: {0}")]
    BadAoutKludge(String),
    /// Something would be placed outside usable RAM.
    #[error("{what} at {start:#x}..{end:#x} does not lie in usable RAM")]
    OutsideRam {
        /// What was being placed.
        what: String,
        /// Its first byte.
        start: u64,
        /// Its end (exclusive).
        end: u64,
    },
    /// Two things would occupy the same memory.
    #[error("{what} at {start:#x}..{end:#x} overlaps {other}")]
    Overlap {
        /// What was being placed.
        what: String,
        /// Its first byte.
        start: u64,
        /// Its end (exclusive).
        end: u64,
        /// What it collides with.
        other: String,
    },
    /// A Multiboot module does not fit above the kernel.
    #[error("Multiboot module {index} of {size} bytes does not fit below {limit:#x}")]
    ModuleTooBig {
        /// Index in the module list.
        index: usize,
        /// Its size.
        size: u64,
        /// End of usable low RAM.
        limit: u64,
    },
    /// Guest memory rejected a write (the address map lacks RAM there).
    #[error("writing the kernel into guest memory failed: {0}")]
    Memory(#[from] PhysError),
}
