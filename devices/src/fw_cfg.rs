//! QEMU's firmware configuration device (fw_cfg), the x86 I/O-port variant SeaBIOS and Linux use
//! (QEMU `docs/specs/fw_cfg.rst`: "Guest-side Hardware Interface", "Firmware Configuration Items",
//! "Guest-side DMA Interface"; SeaBIOS `src/fw/paravirt.c`).
//!
//! The device holds numbered items (byte blobs). The guest writes an item's 16-bit key to the
//! selector, then reads the item byte by byte from the data port, or moves it in one go with the
//! DMA interface: it writes the guest-physical address of a `FWCfgDmaAccess` structure (big
//! endian: `control`, `length`, `address`) to the 64-bit big-endian DMA address register, and the
//! device performs the select/read/skip/write the structure asks for, then clears its `control`
//! (or leaves [`FW_CFG_DMA_CTL_ERROR`] in it).
//!
//! Items: [`FW_CFG_SIGNATURE`] ("QEMU"), [`FW_CFG_ID`] (feature bits), the file directory
//! [`FW_CFG_FILE_DIR`], and whatever the board sets with [`FwCfg::set_item`] (e.g.
//! [`FW_CFG_RAM_SIZE`], [`FW_CFG_NB_CPUS`], [`FW_CFG_MAX_CPUS`]; [`FwCfg::set_pc_items`] sets those
//! three) or adds by name with [`FwCfg::add_file`] ("etc/e820" from [`e820_file`], "bootorder",
//! "etc/table-loader").
//!
//! SeaBIOS reads the signature, ID, file directory and "etc/e820" on any machine, but the rest
//! (the legacy items, the files, [`FW_CFG_NOGRAPHIC`]) only when PCI 00:00.0 has subsystem vendor
//! 0x1AF4 and subsystem 0x1100 (its `qemu_detect`); with "etc/table-loader" present it moves the
//! ACPI PM base to 0x600.
//!
//! # Board wiring
//!
//! | ports         | what                                                              |
//! |---------------|-------------------------------------------------------------------|
//! | 0x510-0x51B   | one [`FwCfg`], len [`FW_CFG_PORTS_LEN`]                           |
//! | 0x510 (+0)    | selector, 16-bit write ([`SELECTOR_OFFSET`])                      |
//! | 0x511 (+1)    | data, 8-bit read ([`DATA_OFFSET`])                                |
//! | 0x514 (+4)    | DMA address, 8 bytes big endian ([`DMA_ADDRESS_OFFSET`]); a write of the low half (0x518) or of all 8 bytes starts a transfer |
//!
//! DMA reaches guest memory through a [`DmaMemory`] (RAM only, bounds-checked); without one the
//! ID item does not advertise DMA and the DMA register reads all-ones.

use crate::ide::{DmaMemory, SharedDmaMemory};
use rx86_core::bus::{size_mask, BusDevice};
use std::collections::BTreeMap;
use thiserror::Error;

/// First port of the device on a PC.
pub const FW_CFG_PORT_BASE: u16 = 0x510;
/// Ports the device spans (0x510-0x51B).
pub const FW_CFG_PORTS_LEN: u64 = 12;
/// Selector register (16-bit write).
pub const SELECTOR_OFFSET: u64 = 0;
/// Data register (8-bit read).
pub const DATA_OFFSET: u64 = 1;
/// First byte (most significant) of the 64-bit big-endian DMA address register.
pub const DMA_ADDRESS_OFFSET: u64 = 4;
/// Length of the DMA address register.
const DMA_ADDRESS_LEN: u64 = 8;
/// Offset, within the DMA address register, of its least significant half, whose write starts a
/// transfer.
const DMA_ADDRESS_LOW_HALF: u64 = 4;

// Item keys ("Firmware Configuration Items"; the rest from QEMU's fw_cfg_keys.h).
/// "QEMU", the signature.
pub const FW_CFG_SIGNATURE: u16 = 0x0000;
/// Feature bitmap, 32-bit little endian: [`FW_CFG_VERSION`] | [`FW_CFG_VERSION_DMA`].
pub const FW_CFG_ID: u16 = 0x0001;
/// Guest RAM size in bytes, 64-bit little endian.
pub const FW_CFG_RAM_SIZE: u16 = 0x0003;
/// Nonzero (16-bit little endian) when the machine has no display; SeaBIOS then mirrors its
/// screen output to COM1 ("etc/sercon-port").
pub const FW_CFG_NOGRAPHIC: u16 = 0x0004;
/// Number of CPUs started at boot, 16-bit little endian.
pub const FW_CFG_NB_CPUS: u16 = 0x0005;
/// Nonzero (16-bit little endian) to show the firmware's boot menu ("etc/show-boot-menu").
pub const FW_CFG_BOOT_MENU: u16 = 0x000e;
/// Highest possible CPU count (APIC ID limit), 16-bit little endian.
pub const FW_CFG_MAX_CPUS: u16 = 0x000f;
/// The file directory: a big-endian count, then 64-byte entries.
pub const FW_CFG_FILE_DIR: u16 = 0x0019;
/// Key of the first named file; files take consecutive keys in the order they are added.
pub const FW_CFG_FILE_FIRST: u16 = 0x0020;
/// Selector bit 14: the legacy write channel (ignored since QEMU 2.4; the item is the same).
const FW_CFG_WRITE_CHANNEL: u16 = 0x4000;
/// Selector bit 15: architecture-specific item.
pub const FW_CFG_ARCH_LOCAL: u16 = 0x8000;
/// Item index bits of a key; up to 0x4000 generic and 0x4000 architecture-specific items.
const FW_CFG_ENTRY_MASK: u16 = 0x3fff;

/// Name of the file holding the memory map SeaBIOS reads first (before CMOS): [`e820_file`].
pub const FW_CFG_E820_FILE: &str = "etc/e820";
/// [`E820Entry::kind`] of usable RAM.
pub const E820_RAM: u32 = 1;
/// [`E820Entry::kind`] of reserved memory.
pub const E820_RESERVED: u32 = 2;

/// One entry of the "etc/e820" file (SeaBIOS `struct e820_reservation`, QEMU `struct e820_entry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub address: u64,
    /// Length in bytes.
    pub length: u64,
    /// [`E820_RAM`] or [`E820_RESERVED`] (SeaBIOS ignores other kinds here).
    pub kind: u32,
}

/// The contents of "etc/e820": per entry its address, length (little-endian u64) and kind
/// (little-endian u32), packed, 20 bytes each.
pub fn e820_file(entries: &[E820Entry]) -> Vec<u8> {
    let mut file = Vec::with_capacity(entries.len() * 20);
    for e in entries {
        file.extend_from_slice(&e.address.to_le_bytes());
        file.extend_from_slice(&e.length.to_le_bytes());
        file.extend_from_slice(&e.kind.to_le_bytes());
    }
    file
}

/// [`FW_CFG_ID`] bit 0: the traditional selector/data interface, always present.
pub const FW_CFG_VERSION: u32 = 0x01;
/// [`FW_CFG_ID`] bit 1: the DMA interface.
pub const FW_CFG_VERSION_DMA: u32 = 0x02;

/// What the item [`FW_CFG_SIGNATURE`] holds.
pub const FW_CFG_SIGNATURE_BYTES: &[u8; 4] = b"QEMU";
/// What the DMA address register reads as: "QEMU CFG" in big-endian order.
pub const FW_CFG_DMA_SIGNATURE: u64 = 0x5145_4d55_2043_4647;

// FWCfgDmaAccess.control bits ("Guest-side DMA Interface").
/// Bit 0: the transfer failed (the only bit left set at the end of a failed transfer).
pub const FW_CFG_DMA_CTL_ERROR: u32 = 0x01;
/// Bit 1: read `length` bytes of the item into guest memory.
pub const FW_CFG_DMA_CTL_READ: u32 = 0x02;
/// Bit 2: advance the item offset by `length` bytes.
pub const FW_CFG_DMA_CTL_SKIP: u32 = 0x04;
/// Bit 3: select the item whose key is in bits 31-16 first.
pub const FW_CFG_DMA_CTL_SELECT: u32 = 0x08;
/// Bit 4: write `length` bytes of guest memory into the item (writable items only).
pub const FW_CFG_DMA_CTL_WRITE: u32 = 0x10;
/// Size of a `FWCfgDmaAccess` structure: control (4), length (4), address (8).
const DMA_ACCESS_SIZE: usize = 16;

/// Size of one file directory entry: size (4), select (2), reserved (2), name (56).
pub const FW_CFG_FILE_ENTRY_SIZE: usize = 64;
/// Size of a file name field, NUL terminator included.
pub const FW_CFG_MAX_FILE_PATH: usize = 56;
/// Most files the key space holds (keys 0x0020-0x3FFF).
const MAX_FILES: usize = (FW_CFG_ENTRY_MASK - FW_CFG_FILE_FIRST + 1) as usize;
/// Largest piece of a zero fill (a read past an item's end) handed to the DMA memory at once.
const ZERO_FILL_CHUNK: usize = 4096;

/// Why a file could not be added.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FwCfgError {
    /// The name is empty, longer than 55 bytes, or holds a NUL.
    #[error("fw_cfg file name {0:?} must be 1-55 bytes without NUL")]
    BadName(String),
    /// A file of that name exists.
    #[error("fw_cfg file {0:?} already exists")]
    DuplicateName(String),
    /// Every file key (0x0020-0x3FFF) is taken.
    #[error("fw_cfg has no free file key for {0:?}")]
    DirectoryFull(String),
    /// The item is larger than the 32-bit size field of a directory entry.
    #[error("fw_cfg file {0:?} is larger than 4 GiB")]
    TooLarge(String),
}

/// One item: its bytes, and whether DMA writes may change them.
#[derive(Debug, Clone)]
struct Item {
    data: Vec<u8>,
    writable: bool,
}

/// The fw_cfg device: items, the current selection and offset, and the DMA address register.
pub struct FwCfg {
    /// Items by key, bit 14 (write channel) cleared.
    items: BTreeMap<u16, Item>,
    /// Named files in key order: (name, key).
    files: Vec<(String, u16)>,
    /// The selected item's key (bit 14 cleared), or `None` when no item has that key.
    selected: Option<u16>,
    /// Offset of the next data byte in the selected item.
    offset: usize,
    /// The DMA address register as the guest wrote it, most significant byte first.
    dma_address: [u8; 8],
    memory: Option<SharedDmaMemory>,
}

/// The next access a DMA transfer makes, from `FWCfgDmaAccess.control`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DmaOp {
    Read,
    Write,
    Skip,
}

impl FwCfg {
    /// A device holding the signature, the ID (with [`FW_CFG_VERSION_DMA`] when `memory` is
    /// given) and an empty file directory, with [`FW_CFG_SIGNATURE`] selected.
    pub fn new(memory: Option<SharedDmaMemory>) -> Self {
        let id = FW_CFG_VERSION | if memory.is_some() { FW_CFG_VERSION_DMA } else { 0 };
        let mut fw_cfg = FwCfg {
            items: BTreeMap::new(),
            files: Vec::new(),
            selected: Some(FW_CFG_SIGNATURE),
            offset: 0,
            dma_address: [0; 8],
            memory,
        };
        fw_cfg.set_item(FW_CFG_SIGNATURE, FW_CFG_SIGNATURE_BYTES.to_vec());
        fw_cfg.set_item(FW_CFG_ID, id.to_le_bytes().to_vec());
        fw_cfg.set_item(FW_CFG_FILE_DIR, 0u32.to_be_bytes().to_vec());
        fw_cfg
    }

    /// Sets (or replaces) the read-only item `key` (bit 14 is ignored; bit 15 marks an
    /// architecture-specific item). The selection and offset are kept. The file directory
    /// ([`FW_CFG_FILE_DIR`]) belongs to the device: use [`FwCfg::add_file`].
    pub fn set_item(&mut self, key: u16, data: Vec<u8>) {
        let key = key & !FW_CFG_WRITE_CHANNEL;
        if key == FW_CFG_FILE_DIR && self.items.contains_key(&key) {
            log::error!("fw_cfg: set_item of the file directory ignored; add files with add_file");
            return;
        }
        self.items.insert(key, Item { data, writable: false });
    }

    /// Sets the items a PC's firmware reads first: [`FW_CFG_RAM_SIZE`] (`ram_bytes`, 64-bit),
    /// [`FW_CFG_NB_CPUS`] and [`FW_CFG_MAX_CPUS`] (`cpus`, 16-bit), all little endian.
    pub fn set_pc_items(&mut self, ram_bytes: u64, cpus: u16) {
        self.set_item(FW_CFG_RAM_SIZE, ram_bytes.to_le_bytes().to_vec());
        self.set_item(FW_CFG_NB_CPUS, cpus.to_le_bytes().to_vec());
        self.set_item(FW_CFG_MAX_CPUS, cpus.to_le_bytes().to_vec());
    }

    /// Adds the read-only file `name` (e.g. "etc/e820") and lists it in the file directory;
    /// returns its key.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<u16, FwCfgError> {
        self.insert_file(name, data, false)
    }

    /// Adds the file `name` that guest DMA writes may change in place (never resize); returns its
    /// key. [`FwCfg::file`] reads the guest's changes.
    pub fn add_writable_file(&mut self, name: &str, data: Vec<u8>) -> Result<u16, FwCfgError> {
        self.insert_file(name, data, true)
    }

    /// The current contents of the file `name`.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let (_, key) = self.files.iter().find(|(n, _)| n == name)?;
        self.items.get(key).map(|item| item.data.as_slice())
    }

    fn insert_file(&mut self, name: &str, data: Vec<u8>, writable: bool) -> Result<u16, FwCfgError> {
        if name.is_empty() || name.len() >= FW_CFG_MAX_FILE_PATH || name.contains('\0') {
            return Err(FwCfgError::BadName(name.to_string()));
        }
        if self.files.iter().any(|(n, _)| n == name) {
            return Err(FwCfgError::DuplicateName(name.to_string()));
        }
        if self.files.len() >= MAX_FILES {
            return Err(FwCfgError::DirectoryFull(name.to_string()));
        }
        let Ok(size) = u32::try_from(data.len()) else {
            return Err(FwCfgError::TooLarge(name.to_string()));
        };
        let key = FW_CFG_FILE_FIRST + self.files.len() as u16;
        self.items.insert(key, Item { data, writable });
        self.files.push((name.to_string(), key));
        self.append_dir_entry(name, key, size);
        Ok(key)
    }

    /// Appends a file to [`FW_CFG_FILE_DIR`] (a big-endian count, then per file its size (BE u32),
    /// key (BE u16), a reserved u16 and the NUL-padded name) and updates the count. Files never
    /// change size, so entries stay valid.
    fn append_dir_entry(&mut self, name: &str, key: u16, size: u32) {
        let count = self.files.len() as u32;
        let Some(Item { data: dir, .. }) = self.items.get_mut(&FW_CFG_FILE_DIR) else { return };
        dir.splice(..4.min(dir.len()), count.to_be_bytes());
        dir.extend_from_slice(&size.to_be_bytes());
        dir.extend_from_slice(&key.to_be_bytes());
        dir.extend_from_slice(&[0, 0]);
        let mut field = [0u8; FW_CFG_MAX_FILE_PATH];
        field[..name.len()].copy_from_slice(name.as_bytes());
        dir.extend_from_slice(&field);
    }

    /// Selects the item `key` and rewinds to its first byte; an unknown key selects nothing
    /// (reads give zeros).
    fn select(&mut self, key: u16) {
        let key = key & (FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK);
        self.selected = self.items.contains_key(&key).then_some(key);
        if self.selected.is_none() {
            log::debug!("fw_cfg: select of unknown item {key:#06x}");
        }
        self.offset = 0;
    }

    fn selected_item(&self) -> Option<&Item> {
        self.selected.and_then(|key| self.items.get(&key))
    }

    /// The next data byte, or 0 past the end of the item (or with no item selected).
    fn read_data_byte(&mut self) -> u8 {
        let byte = self.selected_item().and_then(|item| item.data.get(self.offset)).copied();
        match byte {
            Some(b) => {
                self.offset += 1;
                b
            }
            None => 0,
        }
    }

    /// Reads of the DMA address register return the "QEMU CFG" signature, byte `i` of the
    /// register being byte `i` of the big-endian value.
    fn read_dma_register(&self, offset: u64, size: u8) -> u64 {
        let signature = FW_CFG_DMA_SIGNATURE.to_be_bytes();
        let mut value = 0u64;
        for i in (0..u64::from(size)).rev() {
            let byte = signature.get((offset + i) as usize).copied().unwrap_or(0);
            value = (value << 8) | u64::from(byte);
        }
        value
    }

    /// Stores a write into the DMA address register (byte order as the port sees it: the first
    /// byte written lands at the lowest offset) and starts a transfer when the low half was
    /// written: a 32-bit write at +4 (0x518) or a 64-bit write at +0.
    fn write_dma_register(&mut self, offset: u64, size: u8, value: u64) {
        let valid = matches!((offset, size), (0, 4) | (DMA_ADDRESS_LOW_HALF, 4) | (0, 8));
        if !valid {
            log::warn!("fw_cfg: ignored {size}-byte write of {value:#x} at DMA register offset {offset}");
            return;
        }
        let bytes = value.to_le_bytes();
        let at = offset as usize;
        self.dma_address[at..at + usize::from(size)].copy_from_slice(&bytes[..usize::from(size)]);
        if offset + u64::from(size) == DMA_ADDRESS_LEN {
            let access = u64::from_be_bytes(self.dma_address);
            // The register reads back as 0 after every operation.
            self.dma_address = [0; 8];
            self.dma_transfer(access);
        }
    }

    /// Performs the transfer the `FWCfgDmaAccess` at guest-physical `access` describes, then
    /// stores the resulting control word (0 or [`FW_CFG_DMA_CTL_ERROR`]) back into it.
    fn dma_transfer(&mut self, access: u64) {
        let Some(memory) = self.memory.clone() else {
            log::warn!("fw_cfg: DMA requested at {access:#x} but the device has no DMA memory");
            return;
        };
        let mut header = [0u8; DMA_ACCESS_SIZE];
        if let Err(e) = memory.dma_read(access, &mut header) {
            log::warn!("fw_cfg: cannot read the DMA access structure at {access:#x}: {e}");
            store_control(memory.as_ref(), access, FW_CFG_DMA_CTL_ERROR);
            return;
        }
        let control = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let mut address = [0u8; 8];
        address.copy_from_slice(&header[8..]);
        let address = u64::from_be_bytes(address);
        if control & FW_CFG_DMA_CTL_SELECT != 0 {
            self.select((control >> 16) as u16);
        }
        let op = if control & FW_CFG_DMA_CTL_READ != 0 {
            Some(DmaOp::Read)
        } else if control & FW_CFG_DMA_CTL_WRITE != 0 {
            Some(DmaOp::Write)
        } else if control & FW_CFG_DMA_CTL_SKIP != 0 {
            Some(DmaOp::Skip)
        } else {
            None
        };
        let result = match op {
            Some(op) => self.dma_move(memory.as_ref(), op, address, length as usize),
            None => 0,
        };
        store_control(memory.as_ref(), access, result);
    }

    /// Moves `length` bytes between the selected item at the current offset and guest memory at
    /// `address`; returns the control word to report.
    fn dma_move(&mut self, memory: &dyn DmaMemory, op: DmaOp, mut address: u64, mut length: usize) -> u32 {
        while length > 0 {
            let key = self.selected;
            let item_data = self.selected_item().map_or(&[][..], |item| item.data.as_slice());
            let rest = item_data.get(self.offset..).unwrap_or_default();
            if rest.is_empty() && op == DmaOp::Skip {
                // Skipping past the end of the item moves nothing.
                return 0;
            }
            let chunk = if rest.is_empty() { length.min(ZERO_FILL_CHUNK) } else { length.min(rest.len()) };
            let Some(end) = address.checked_add(chunk as u64) else {
                log::warn!("fw_cfg: DMA {op:?} of {length} bytes at {address:#x} wraps the address space");
                return FW_CFG_DMA_CTL_ERROR;
            };
            let moved = match op {
                DmaOp::Skip => Ok(()),
                // Past the end of the item (or with none selected) a read gives zeros.
                DmaOp::Read if rest.is_empty() => memory.dma_write(address, &[0u8; ZERO_FILL_CHUNK][..chunk]),
                DmaOp::Read => memory.dma_write(address, &rest[..chunk]),
                DmaOp::Write if rest.is_empty() => {
                    log::warn!("fw_cfg: DMA write of {length} bytes past the end of item {key:?}");
                    return FW_CFG_DMA_CTL_ERROR;
                }
                DmaOp::Write => return self.dma_write_item(memory, address, length, chunk),
            };
            if let Err(e) = moved {
                log::warn!("fw_cfg: DMA {op:?} of item {key:?} at {address:#x}: {e}");
                return FW_CFG_DMA_CTL_ERROR;
            }
            if !rest.is_empty() {
                self.offset += chunk;
            }
            address = end;
            length -= chunk;
        }
        0
    }

    /// A DMA write into the selected item: allowed only for a writable item and only when all
    /// `length` bytes fit (`chunk` is what fits); a refused write changes nothing.
    fn dma_write_item(&mut self, memory: &dyn DmaMemory, address: u64, length: usize, chunk: usize) -> u32 {
        let key = self.selected;
        let offset = self.offset;
        let Some(item) = self.selected.and_then(|k| self.items.get_mut(&k)) else {
            return FW_CFG_DMA_CTL_ERROR;
        };
        if !item.writable || chunk != length {
            log::warn!(
                "fw_cfg: refused DMA write of {length} bytes at offset {offset} of item {key:?} ({} bytes, {})",
                item.data.len(),
                if item.writable { "writable" } else { "read-only" }
            );
            return FW_CFG_DMA_CTL_ERROR;
        }
        let mut incoming = vec![0u8; chunk];
        if let Err(e) = memory.dma_read(address, &mut incoming) {
            log::warn!("fw_cfg: DMA write of item {key:?} from {address:#x}: {e}");
            return FW_CFG_DMA_CTL_ERROR;
        }
        item.data[offset..offset + chunk].copy_from_slice(&incoming);
        self.offset += chunk;
        0
    }
}

/// Writes `control` (big endian) over the control field of the access structure at `access`.
fn store_control(memory: &dyn DmaMemory, access: u64, control: u32) {
    if let Err(e) = memory.dma_write(access, &control.to_be_bytes()) {
        log::warn!("fw_cfg: cannot store the DMA status at {access:#x}: {e}");
    }
}

impl BusDevice for FwCfg {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        match offset {
            // QEMU's combined port answers data reads at the selector port too.
            SELECTOR_OFFSET | DATA_OFFSET => {
                let mut value = 0u64;
                for i in 0..u32::from(size.min(8)) {
                    value |= u64::from(self.read_data_byte()) << (8 * i);
                }
                value
            }
            o if (DMA_ADDRESS_OFFSET..DMA_ADDRESS_OFFSET + DMA_ADDRESS_LEN).contains(&o) && self.memory.is_some() => {
                self.read_dma_register(o - DMA_ADDRESS_OFFSET, size)
            }
            _ => size_mask(size),
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        match (offset, size) {
            (SELECTOR_OFFSET, 2) => self.select(value as u16),
            // Data-port writes are ignored since QEMU 2.4; items change through DMA only.
            (DATA_OFFSET, _) => log::debug!("fw_cfg: ignored data port write {value:#x}"),
            (o, _) if (DMA_ADDRESS_OFFSET..DMA_ADDRESS_OFFSET + DMA_ADDRESS_LEN).contains(&o) => {
                if self.memory.is_some() {
                    self.write_dma_register(o - DMA_ADDRESS_OFFSET, size, value);
                } else {
                    log::warn!("fw_cfg: DMA register write {value:#x} but the device has no DMA memory");
                }
            }
            _ => log::warn!("fw_cfg: ignored {size}-byte write of {value:#x} at offset {offset}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ide::tests_support::ram;
    use rx86_core::phys::PhysMemory;
    use std::sync::Arc;

    /// Size of the RAM `ram()` gives (1 MiB).
    const RAM_END: u64 = 0x10_0000;
    const ACCESS: u64 = 0x1000;
    const BUFFER: u64 = 0x2000;

    fn with_dma() -> (FwCfg, Arc<PhysMemory>) {
        let memory = ram();
        (FwCfg::new(Some(memory.clone())), memory)
    }

    fn select(dev: &mut FwCfg, key: u16) {
        dev.write(SELECTOR_OFFSET, 2, u64::from(key));
    }

    fn read_bytes(dev: &mut FwCfg, n: usize) -> Vec<u8> {
        (0..n).map(|_| dev.read(DATA_OFFSET, 1) as u8).collect()
    }

    /// Lays out a FWCfgDmaAccess at `at`, as SeaBIOS does (every field big endian).
    fn put_access(memory: &PhysMemory, at: u64, control: u32, length: u32, address: u64) {
        let mut access = Vec::new();
        access.extend_from_slice(&control.to_be_bytes());
        access.extend_from_slice(&length.to_be_bytes());
        access.extend_from_slice(&address.to_be_bytes());
        memory.dma_write(at, &access).unwrap();
    }

    /// SeaBIOS: `outl(cpu_to_be32(addr), 0x518)`.
    fn kick_32(dev: &mut FwCfg, at: u32) {
        dev.write(DMA_ADDRESS_OFFSET + DMA_ADDRESS_LOW_HALF, 4, u64::from(at.swap_bytes()));
    }

    fn control_of(memory: &PhysMemory, at: u64) -> u32 {
        let mut b = [0u8; 4];
        memory.dma_read(at, &mut b).unwrap();
        u32::from_be_bytes(b)
    }

    fn guest_bytes(memory: &PhysMemory, at: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        memory.dma_read(at, &mut b).unwrap();
        b
    }

    #[test]
    fn signature_reads_qemu_then_zeros() {
        let mut dev = FwCfg::new(None);
        select(&mut dev, FW_CFG_SIGNATURE);
        assert_eq!(read_bytes(&mut dev, 4), b"QEMU");
        assert_eq!(read_bytes(&mut dev, 3), [0, 0, 0], "past the end of the item");
        // Selecting again rewinds.
        select(&mut dev, FW_CFG_SIGNATURE);
        assert_eq!(read_bytes(&mut dev, 2), b"QE");
        // The combined port also answers data reads at the selector port.
        assert_eq!(dev.read(SELECTOR_OFFSET, 1), u64::from(b'M'));
    }

    #[test]
    fn id_advertises_dma_only_with_dma_memory() {
        let mut dev = FwCfg::new(None);
        select(&mut dev, FW_CFG_ID);
        assert_eq!(read_bytes(&mut dev, 4), FW_CFG_VERSION.to_le_bytes());
        let (mut dev, _) = with_dma();
        select(&mut dev, FW_CFG_ID);
        assert_eq!(read_bytes(&mut dev, 4), (FW_CFG_VERSION | FW_CFG_VERSION_DMA).to_le_bytes());
    }

    #[test]
    fn wide_data_reads_return_consecutive_bytes() {
        let mut dev = FwCfg::new(None);
        select(&mut dev, FW_CFG_SIGNATURE);
        assert_eq!(dev.read(DATA_OFFSET, 4), u64::from(u32::from_le_bytes(*b"QEMU")));
    }

    #[test]
    fn pc_items_are_little_endian() {
        let mut dev = FwCfg::new(None);
        dev.set_pc_items(512 << 20, 2);
        select(&mut dev, FW_CFG_RAM_SIZE);
        assert_eq!(read_bytes(&mut dev, 8), (512u64 << 20).to_le_bytes());
        select(&mut dev, FW_CFG_NB_CPUS);
        assert_eq!(read_bytes(&mut dev, 2), [2, 0]);
        select(&mut dev, FW_CFG_MAX_CPUS);
        assert_eq!(read_bytes(&mut dev, 3), [2, 0, 0]);
    }

    #[test]
    fn write_channel_bit_selects_the_same_item_and_data_writes_are_ignored() {
        let mut dev = FwCfg::new(None);
        select(&mut dev, FW_CFG_SIGNATURE | FW_CFG_WRITE_CHANNEL);
        dev.write(DATA_OFFSET, 1, u64::from(b'X'));
        select(&mut dev, FW_CFG_SIGNATURE);
        assert_eq!(read_bytes(&mut dev, 4), b"QEMU");
    }

    #[test]
    fn unknown_and_arch_keys() {
        let mut dev = FwCfg::new(None);
        select(&mut dev, 0x1234);
        assert_eq!(read_bytes(&mut dev, 4), [0; 4], "no such item");
        dev.set_item(FW_CFG_ARCH_LOCAL | 3, vec![7, 8]);
        select(&mut dev, 3);
        assert_eq!(read_bytes(&mut dev, 1), [0], "generic key 3 is a different item");
        select(&mut dev, FW_CFG_ARCH_LOCAL | 3);
        assert_eq!(read_bytes(&mut dev, 2), [7, 8]);
    }

    /// Reads the file directory through the data port and returns (size, key, name) per entry.
    fn read_dir(dev: &mut FwCfg) -> Vec<(u32, u16, String)> {
        select(dev, FW_CFG_FILE_DIR);
        let count = u32::from_be_bytes(read_bytes(dev, 4).try_into().unwrap());
        (0..count)
            .map(|_| {
                let e = read_bytes(dev, FW_CFG_FILE_ENTRY_SIZE);
                let size = u32::from_be_bytes(e[0..4].try_into().unwrap());
                let key = u16::from_be_bytes([e[4], e[5]]);
                assert_eq!(&e[6..8], [0, 0], "reserved");
                let name = &e[8..];
                let len = name.iter().position(|&b| b == 0).expect("NUL-terminated");
                (size, key, String::from_utf8(name[..len].to_vec()).unwrap())
            })
            .collect()
    }

    #[test]
    fn file_directory_lists_files_with_big_endian_fields() {
        let mut dev = FwCfg::new(None);
        assert_eq!(read_dir(&mut dev), []);
        let e820 = dev.add_file("etc/e820", vec![1; 40]).unwrap();
        let order = dev.add_file("bootorder", b"/pci@i0cf8/ide@1,1/drive@0/disk@0\n".to_vec()).unwrap();
        assert_eq!((e820, order), (FW_CFG_FILE_FIRST, FW_CFG_FILE_FIRST + 1));
        assert_eq!(read_dir(&mut dev), [(40, e820, "etc/e820".to_string()), (34, order, "bootorder".to_string())]);
        select(&mut dev, order);
        assert_eq!(read_bytes(&mut dev, 9), b"/pci@i0cf");
        assert_eq!(dev.file("etc/e820"), Some(&[1u8; 40][..]));
        assert_eq!(dev.file("nope"), None);
    }

    #[test]
    fn the_file_directory_cannot_be_replaced() {
        let mut dev = FwCfg::new(None);
        dev.set_item(FW_CFG_FILE_DIR, vec![1]);
        dev.add_file("etc/e820", vec![0; 20]).unwrap();
        assert_eq!(read_dir(&mut dev), [(20, FW_CFG_FILE_FIRST, "etc/e820".to_string())]);
    }

    #[test]
    fn e820_file_packs_20_byte_little_endian_entries() {
        let entries = [
            E820Entry { address: 0, length: 0x9fc00, kind: E820_RAM },
            E820Entry { address: 0xfffc_0000, length: 0x4_0000, kind: E820_RESERVED },
        ];
        let file = e820_file(&entries);
        assert_eq!(file.len(), 40);
        assert_eq!(file[..20], [0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xfc, 0x09, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(file[20..28], 0xfffc_0000u64.to_le_bytes());
        assert_eq!(file[36..40], [2, 0, 0, 0]);
        let mut dev = FwCfg::new(None);
        let key = dev.add_file(FW_CFG_E820_FILE, file).unwrap();
        assert_eq!(read_dir(&mut dev), [(40, key, "etc/e820".to_string())]);
    }

    #[test]
    fn bad_file_names_are_refused() {
        let mut dev = FwCfg::new(None);
        let longest = "x".repeat(FW_CFG_MAX_FILE_PATH - 1);
        dev.add_file(&longest, vec![]).unwrap();
        let too_long = "x".repeat(FW_CFG_MAX_FILE_PATH);
        assert_eq!(dev.add_file(&too_long, vec![]), Err(FwCfgError::BadName(too_long.clone())));
        assert_eq!(dev.add_file("", vec![]), Err(FwCfgError::BadName(String::new())));
        assert_eq!(dev.add_file("a\0b", vec![]), Err(FwCfgError::BadName("a\0b".into())));
        assert_eq!(dev.add_file(&longest, vec![]), Err(FwCfgError::DuplicateName(longest.clone())));
        assert_eq!(read_dir(&mut dev).len(), 1);
    }

    #[test]
    fn file_keys_run_out_at_0x3fff() {
        let mut dev = FwCfg::new(None);
        for i in 0..MAX_FILES {
            dev.add_file(&format!("f{i}"), vec![]).unwrap();
        }
        assert_eq!(dev.file(&format!("f{}", MAX_FILES - 1)), Some(&[][..]));
        assert_eq!(dev.add_file("one-more", vec![]), Err(FwCfgError::DirectoryFull("one-more".into())));
    }

    #[test]
    fn dma_register_reads_the_qemu_cfg_signature() {
        let (mut dev, _) = with_dma();
        let bytes: Vec<u8> = (0..8).map(|i| dev.read(DMA_ADDRESS_OFFSET + i, 1) as u8).collect();
        assert_eq!(bytes, b"QEMU CFG");
        // inl(0x514) as the CPU sees it: bytes in port order, little-endian packed.
        assert_eq!(dev.read(DMA_ADDRESS_OFFSET, 4), u64::from(u32::from_le_bytes(*b"QEMU")));
        assert_eq!(dev.read(DMA_ADDRESS_OFFSET, 8).swap_bytes(), FW_CFG_DMA_SIGNATURE);
        let mut plain = FwCfg::new(None);
        assert_eq!(plain.read(DMA_ADDRESS_OFFSET, 4), 0xffff_ffff, "no DMA interface");
    }

    #[test]
    fn dma_select_and_read_a_file() {
        let (mut dev, memory) = with_dma();
        let key = dev.add_file("etc/table-loader", (0..=255u8).collect()).unwrap();
        let control = (u32::from(key) << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;
        put_access(&memory, ACCESS, control, 100, BUFFER);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), 0, "done, no error");
        assert_eq!(guest_bytes(&memory, BUFFER, 100), (0..100u8).collect::<Vec<_>>());
        // A read without SELECT continues at the offset; past the end it gives zeros.
        memory.dma_write(BUFFER, &[0xAA; 200]).unwrap();
        put_access(&memory, ACCESS, FW_CFG_DMA_CTL_READ, 200, BUFFER);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), 0);
        let got = guest_bytes(&memory, BUFFER, 200);
        assert_eq!(got[..156], (100..=255u8).collect::<Vec<_>>()[..]);
        assert_eq!(got[156..], [0u8; 44]);
        // The data port continues at the same offset: the end.
        assert_eq!(dev.read(DATA_OFFSET, 1), 0);
    }

    #[test]
    fn dma_skip_advances_the_offset() {
        let (mut dev, memory) = with_dma();
        let control = (u32::from(FW_CFG_SIGNATURE) << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_SKIP;
        put_access(&memory, ACCESS, control, 2, BUFFER);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), 0);
        assert_eq!(read_bytes(&mut dev, 2), b"MU");
        // SELECT alone (no read, skip or write) selects and rewinds.
        put_access(&memory, ACCESS, (u32::from(FW_CFG_SIGNATURE) << 16) | FW_CFG_DMA_CTL_SELECT, 4, BUFFER);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), 0);
        assert_eq!(read_bytes(&mut dev, 1), b"Q");
    }

    #[test]
    fn dma_writes_only_fit_writable_items() {
        let (mut dev, memory) = with_dma();
        let ro = dev.add_file("etc/ro", vec![1, 2, 3, 4]).unwrap();
        let rw = dev.add_writable_file("etc/rw", vec![1, 2, 3, 4]).unwrap();
        memory.dma_write(BUFFER, &[9, 9, 9, 9, 9]).unwrap();
        let write = |key: u16| (u32::from(key) << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_WRITE;

        put_access(&memory, ACCESS, write(ro), 2, BUFFER);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), FW_CFG_DMA_CTL_ERROR, "read-only item");
        assert_eq!(dev.file("etc/ro"), Some(&[1, 2, 3, 4][..]));

        put_access(&memory, ACCESS, write(rw), 5, BUFFER);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), FW_CFG_DMA_CTL_ERROR, "would grow the item");
        assert_eq!(dev.file("etc/rw"), Some(&[1, 2, 3, 4][..]), "a truncated write changes nothing");

        put_access(&memory, ACCESS, write(rw), 2, BUFFER);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), 0);
        put_access(&memory, ACCESS, FW_CFG_DMA_CTL_WRITE, 2, BUFFER + 2);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), 0, "continues at offset 2");
        assert_eq!(dev.file("etc/rw"), Some(&[9, 9, 9, 9][..]));
    }

    #[test]
    fn dma_outside_ram_sets_the_error_bit() {
        let (mut dev, memory) = with_dma();
        let read_sig = (u32::from(FW_CFG_SIGNATURE) << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;
        put_access(&memory, ACCESS, read_sig, 4, RAM_END - 2);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), FW_CFG_DMA_CTL_ERROR, "destination straddles the end of RAM");
        put_access(&memory, ACCESS, read_sig, 8, u64::MAX - 3);
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), FW_CFG_DMA_CTL_ERROR, "destination wraps");
        // An access structure outside RAM: nothing to report into, nothing changes.
        let mut before = guest_bytes(&memory, 0, RAM_END as usize);
        kick_32(&mut dev, RAM_END as u32);
        assert_eq!(guest_bytes(&memory, 0, RAM_END as usize), before);
        // One straddling the end of RAM: unreadable, but its control field is RAM and reports it.
        kick_32(&mut dev, (RAM_END - 8) as u32);
        let at = (RAM_END - 8) as usize;
        before[at..at + 4].copy_from_slice(&FW_CFG_DMA_CTL_ERROR.to_be_bytes());
        assert_eq!(guest_bytes(&memory, 0, RAM_END as usize), before);
    }

    #[test]
    fn dma_address_halves_and_reset_after_each_operation() {
        let (mut dev, memory) = with_dma();
        let read_sig = (u32::from(FW_CFG_SIGNATURE) << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ;
        put_access(&memory, ACCESS, read_sig, 4, BUFFER);
        // High half first (at +4), then the low half (at +8) starts the transfer: 4 GiB + ACCESS
        // is not RAM, so nothing is read.
        dev.write(DMA_ADDRESS_OFFSET, 4, u64::from(1u32.swap_bytes()));
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), read_sig, "the access at 4 GiB + ACCESS was not this one");
        assert_eq!(guest_bytes(&memory, BUFFER, 4), [0; 4]);
        // The register was cleared: a low-half write alone now reaches the structure.
        kick_32(&mut dev, ACCESS as u32);
        assert_eq!(control_of(&memory, ACCESS), 0);
        assert_eq!(guest_bytes(&memory, BUFFER, 4), b"QEMU");
        // One 64-bit big-endian write (MMIO-style) starts a transfer too.
        put_access(&memory, ACCESS, read_sig, 4, BUFFER + 16);
        dev.write(DMA_ADDRESS_OFFSET, 8, ACCESS.swap_bytes());
        assert_eq!(guest_bytes(&memory, BUFFER + 16, 4), b"QEMU");
        // Byte writes never start one.
        put_access(&memory, ACCESS, read_sig, 4, BUFFER + 32);
        for (i, b) in ACCESS.to_be_bytes().iter().enumerate() {
            dev.write(DMA_ADDRESS_OFFSET + i as u64, 1, u64::from(*b));
        }
        assert_eq!(guest_bytes(&memory, BUFFER + 32, 4), [0; 4]);
    }

    #[test]
    fn dma_register_writes_without_dma_memory_do_nothing() {
        let mut dev = FwCfg::new(None);
        kick_32(&mut dev, ACCESS as u32);
        dev.write(DMA_ADDRESS_OFFSET, 8, 0);
        select(&mut dev, FW_CFG_SIGNATURE);
        assert_eq!(read_bytes(&mut dev, 4), b"QEMU");
    }

    /// Random register writes and DMA structures (an xorshift generator, fixed seed): nothing
    /// panics, read-only items never change, and every reported control word is 0 or ERROR.
    #[test]
    fn random_register_traffic_never_panics() {
        let (mut dev, memory) = with_dma();
        dev.set_pc_items(RAM_END, 1);
        dev.add_file("etc/e820", vec![0x5A; 20]).unwrap();
        dev.add_writable_file("etc/rw", vec![0; 8]).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let r = next();
            let offset = r % FW_CFG_PORTS_LEN;
            let size = [1u8, 2, 4, 8][(r >> 8) as usize % 4];
            match (r >> 16) % 4 {
                0 => {
                    dev.read(offset, size);
                }
                1 => dev.write(offset, size, next()),
                _ => {
                    // A structure somewhere in (or just past) RAM with random fields, then a kick.
                    let at = (next() % (RAM_END + 0x100)) & !3;
                    let control = (next() as u32 & 0x001f_001f) | ((next() as u32 & 0x3f) << 16);
                    let length = (next() % 0x3000) as u32;
                    let address = if next() % 8 == 0 { next() } else { next() % (RAM_END + 0x1000) };
                    if at + DMA_ACCESS_SIZE as u64 <= RAM_END {
                        put_access(&memory, at, control, length, address);
                        // Random writes may have left a high half: clear it as a 64-bit guest would.
                        dev.write(DMA_ADDRESS_OFFSET, 4, 0);
                        kick_32(&mut dev, at as u32);
                        let status = control_of(&memory, at);
                        assert!(status == 0 || status == FW_CFG_DMA_CTL_ERROR, "status {status:#x}");
                    } else {
                        kick_32(&mut dev, at as u32);
                    }
                }
            }
        }
        assert_eq!(dev.file("etc/e820"), Some(&[0x5A; 20][..]));
        select(&mut dev, FW_CFG_SIGNATURE);
        assert_eq!(read_bytes(&mut dev, 4), b"QEMU");
    }
}
