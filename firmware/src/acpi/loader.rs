//! QEMU's ACPI "linker/loader" script (fw_cfg file `etc/table-loader`), which external firmware
//! such as SeaBIOS runs to place tables it did not build: it allocates each blob in guest
//! memory, adds the address of one blob to pointer fields in another, and fixes checksums.
//!
//! The script is a sequence of 128-byte little-endian commands (QEMU `hw/acpi/bios-linker-
//! loader.c`, SeaBIOS `src/fw/romfile_loader.h`): a 32-bit command number, then its fields.
//! - ALLOCATE (1): file name (56 bytes, NUL-padded), alignment (u32, a power of two), zone (u8:
//!   1 = anywhere below 4 GiB, 2 = the F segment, where an OS scans for the RSDP).
//! - ADD_POINTER (2): destination file, source file, offset (u32) and size (u8: 1, 2, 4 or 8)
//!   of a field in the destination to which the source's address is added.
//! - ADD_CHECKSUM (3): file, offset (u32) of the checksum byte, start (u32) and length (u32) of
//!   the range; the byte is adjusted so that the range sums to zero.

/// Size of one command.
pub const COMMAND_BYTES: usize = 128;
/// Size of a file name field (fw_cfg's file name limit, NUL included).
const FILE_NAME_BYTES: usize = 56;
/// Command numbers.
const COMMAND_ALLOCATE: u32 = 1;
const COMMAND_ADD_POINTER: u32 = 2;
const COMMAND_ADD_CHECKSUM: u32 = 3;

/// Where ALLOCATE places a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Anywhere in memory below 4 GiB.
    High = 1,
    /// The F segment (0xF0000-0xFFFFF).
    FSegment = 2,
}

/// One loader command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Place `file` at an `align`-byte boundary in `zone`.
    Allocate {
        /// The fw_cfg file.
        file: String,
        /// Alignment (a power of two).
        align: u32,
        /// Where.
        zone: Zone,
    },
    /// Add the address of `source` to the `size`-byte field at `offset` in `destination`.
    AddPointer {
        /// The file holding the field.
        destination: String,
        /// The file whose address is added.
        source: String,
        /// Offset of the field.
        offset: u32,
        /// Size of the field in bytes.
        size: u8,
    },
    /// Make bytes `start..start + length` of `file` sum to zero by adjusting the byte at `offset`.
    AddChecksum {
        /// The file.
        file: String,
        /// Offset of the checksum byte.
        offset: u32,
        /// Start of the summed range.
        start: u32,
        /// Length of the summed range.
        length: u32,
    },
}

/// Copies `name` into a NUL-padded file name field.
fn put_name(out: &mut [u8], name: &str) {
    debug_assert!(name.len() < FILE_NAME_BYTES, "fw_cfg file names are shorter than 56 bytes");
    let len = name.len().min(FILE_NAME_BYTES - 1);
    out[..len].copy_from_slice(&name.as_bytes()[..len]);
}

impl Command {
    /// The command's 128 bytes.
    pub fn encode(&self) -> [u8; COMMAND_BYTES] {
        let mut c = [0u8; COMMAND_BYTES];
        let names = 4..4 + FILE_NAME_BYTES;
        match self {
            Command::Allocate { file, align, zone } => {
                c[..4].copy_from_slice(&COMMAND_ALLOCATE.to_le_bytes());
                put_name(&mut c[names], file);
                c[60..64].copy_from_slice(&align.to_le_bytes());
                c[64] = *zone as u8;
            }
            Command::AddPointer { destination, source, offset, size } => {
                c[..4].copy_from_slice(&COMMAND_ADD_POINTER.to_le_bytes());
                put_name(&mut c[names], destination);
                put_name(&mut c[60..60 + FILE_NAME_BYTES], source);
                c[116..120].copy_from_slice(&offset.to_le_bytes());
                c[120] = *size;
            }
            Command::AddChecksum { file, offset, start, length } => {
                c[..4].copy_from_slice(&COMMAND_ADD_CHECKSUM.to_le_bytes());
                put_name(&mut c[names], file);
                c[60..64].copy_from_slice(&offset.to_le_bytes());
                c[64..68].copy_from_slice(&start.to_le_bytes());
                c[68..72].copy_from_slice(&length.to_le_bytes());
            }
        }
        c
    }
}

/// The whole script.
pub fn encode(commands: &[Command]) -> Vec<u8> {
    commands.iter().flat_map(Command::encode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn allocate_layout() {
        let c = Command::Allocate { file: "etc/acpi/rsdp".into(), align: 16, zone: Zone::FSegment }.encode();
        assert_eq!(u32_at(&c, 0), 1);
        assert_eq!(&c[4..18], b"etc/acpi/rsdp\0");
        assert!(c[17..60].iter().all(|&b| b == 0));
        assert_eq!(u32_at(&c, 60), 16);
        assert_eq!(c[64], 2);
        assert!(c[65..].iter().all(|&b| b == 0));
    }

    #[test]
    fn add_pointer_layout() {
        let c = Command::AddPointer {
            destination: "etc/acpi/rsdp".into(),
            source: "etc/acpi/tables".into(),
            offset: 24,
            size: 8,
        }
        .encode();
        assert_eq!(u32_at(&c, 0), 2);
        assert_eq!(&c[4..18], b"etc/acpi/rsdp\0");
        assert_eq!(&c[60..76], b"etc/acpi/tables\0");
        assert_eq!(u32_at(&c, 116), 24);
        assert_eq!(c[120], 8);
    }

    #[test]
    fn add_checksum_layout() {
        let c = Command::AddChecksum { file: "etc/acpi/tables".into(), offset: 73, start: 64, length: 244 }.encode();
        assert_eq!(u32_at(&c, 0), 3);
        assert_eq!(&c[4..20], b"etc/acpi/tables\0");
        assert_eq!((u32_at(&c, 60), u32_at(&c, 64), u32_at(&c, 68)), (73, 64, 244));
        assert_eq!(encode(&[Command::AddChecksum { file: "x".into(), offset: 0, start: 0, length: 1 }]).len(), 128);
    }
}
