//! Bus-master IDE DMA (SFF-8038i, "Bus Master Programming Interface for IDE ATA
//! Controllers", revision 1.0): the per-channel command, status and PRD table
//! registers, and the walk of a Physical Region Descriptor table in guest memory.

use super::DmaMemory;

/// Bus master IDE command register (offset 0): bit 0 start/stop bus master.
pub const BM_COMMAND_START: u8 = 1 << 0;
/// Bus master IDE command register bit 3: 1 = bus master writes memory (device reads).
pub const BM_COMMAND_WRITE_MEMORY: u8 = 1 << 3;
/// Bus master IDE status register (offset 2) bit 0: bus master IDE active (read-only).
pub const BM_STATUS_ACTIVE: u8 = 1 << 0;
/// Status bit 1: error (write 1 to clear).
pub const BM_STATUS_ERROR: u8 = 1 << 1;
/// Status bit 2: interrupt, set when the drive raises its interrupt (write 1 to clear).
pub const BM_STATUS_INTERRUPT: u8 = 1 << 2;
/// Status bits 5 and 6: drive 0/1 DMA capable (read-write, for the driver's use).
pub const BM_STATUS_DRIVES_CAPABLE: u8 = 0b0110_0000;
/// Bytes of one channel's bus master register block.
pub const BM_REGISTERS_PER_CHANNEL: u64 = 8;
/// PRD entry: end of table in bit 31 of the second dword.
const PRD_END_OF_TABLE: u32 = 1 << 31;
/// A PRD table lies in one 64 KiB region: at most 8192 entries.
const PRD_MAX_ENTRIES: u64 = 8192;

/// Register offsets within a channel's block.
const REG_COMMAND: u64 = 0;
const REG_STATUS: u64 = 2;
const REG_PRD_TABLE: u64 = 4;

/// One channel's bus master registers.
#[derive(Debug, Default, Clone)]
pub struct BusMasterRegs {
    /// Command register.
    pub command: u8,
    /// Status register.
    pub status: u8,
    /// Descriptor Table Pointer register (dword-aligned physical address).
    pub prd_table: u32,
}

/// What a register write asks the channel to do.
#[derive(Debug, PartialEq, Eq)]
pub enum BusMasterAction {
    /// Nothing more.
    None,
    /// The start bit went from 0 to 1.
    Started,
}

impl BusMasterRegs {
    /// Reads `size` bytes at `offset` (0-7).
    pub fn read(&self, offset: u64, size: u8) -> u64 {
        let bytes = [self.command, 0, self.status, 0, 0, 0, 0, 0];
        let mut block = u64::from_le_bytes(bytes);
        block |= u64::from(self.prd_table) << 32;
        (block >> (8 * offset.min(7))) & rx86_core::bus::size_mask(size)
    }

    /// Writes `size` bytes of `value` at `offset` (0-7), byte by byte.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> BusMasterAction {
        let mut action = BusMasterAction::None;
        for i in 0..u64::from(size.min(8)) {
            let at = offset + i;
            let byte = (value >> (8 * i)) as u8;
            match at {
                REG_COMMAND => {
                    let was = self.command & BM_COMMAND_START;
                    self.command = byte & (BM_COMMAND_START | BM_COMMAND_WRITE_MEMORY);
                    if byte & BM_COMMAND_START == 0 {
                        self.status &= !BM_STATUS_ACTIVE;
                    } else if was == 0 {
                        self.status |= BM_STATUS_ACTIVE;
                        action = BusMasterAction::Started;
                    }
                }
                REG_STATUS => {
                    let cleared = byte & (BM_STATUS_ERROR | BM_STATUS_INTERRUPT);
                    self.status =
                        (self.status & !cleared & !BM_STATUS_DRIVES_CAPABLE) | (byte & BM_STATUS_DRIVES_CAPABLE);
                }
                REG_PRD_TABLE..=7 => {
                    let shift = 8 * (at - REG_PRD_TABLE);
                    self.prd_table = (self.prd_table & !(0xff << shift)) | (u32::from(byte) << shift);
                    self.prd_table &= !0b11;
                }
                _ => log::debug!("ide bus master: write {byte:#04x} to reserved register {at}"),
            }
        }
        action
    }
}

/// Why a PRD walk failed.
#[derive(Debug, PartialEq, Eq)]
pub enum PrdError {
    /// A descriptor or buffer is not in guest RAM.
    BadAddress(u64),
    /// No end-of-table mark within 8192 entries.
    Unterminated,
}

/// The scatter-gather list of a PRD table: (physical address, length) regions.
pub struct PrdList {
    regions: Vec<(u64, u32)>,
    /// Region being transferred and offset in it.
    at: usize,
    offset: u32,
}

impl PrdList {
    /// Reads the table at `table` from guest memory.
    pub fn load(memory: &dyn DmaMemory, table: u32) -> Result<Self, PrdError> {
        let mut regions = Vec::new();
        for i in 0..PRD_MAX_ENTRIES {
            let at = u64::from(table) + 8 * i;
            let mut e = [0u8; 8];
            memory.dma_read(at, &mut e).map_err(|_| PrdError::BadAddress(at))?;
            let base = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) & !1;
            let flags = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let count = match flags & 0xfffe {
                0 => 0x1_0000,
                n => n,
            };
            regions.push((u64::from(base), count));
            if flags & PRD_END_OF_TABLE != 0 {
                return Ok(PrdList { regions, at: 0, offset: 0 });
            }
        }
        Err(PrdError::Unterminated)
    }

    /// True when every region has been used.
    pub fn exhausted(&self) -> bool {
        self.at >= self.regions.len()
    }

    /// Walks the next `len` bytes of the list, calling `f(address, range in the chunk)`;
    /// returns false when the list ends first.
    fn walk(
        &mut self,
        len: usize,
        mut f: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), PrdError>,
    ) -> Result<bool, PrdError> {
        let mut done = 0;
        while done < len {
            let Some(&(base, count)) = self.regions.get(self.at) else {
                return Ok(false);
            };
            let take = ((count - self.offset) as usize).min(len - done);
            f(base + u64::from(self.offset), done..done + take)?;
            done += take;
            self.offset += take as u32;
            if self.offset == count {
                self.at += 1;
                self.offset = 0;
            }
        }
        Ok(true)
    }

    /// Copies `data` into the next regions; false when the table is too short.
    pub fn scatter(&mut self, memory: &dyn DmaMemory, data: &[u8]) -> Result<bool, PrdError> {
        self.walk(data.len(), |addr, r| memory.dma_write(addr, &data[r]).map_err(|_| PrdError::BadAddress(addr)))
    }

    /// Fills `data` from the next regions; false when the table is too short.
    pub fn gather(&mut self, memory: &dyn DmaMemory, data: &mut [u8]) -> Result<bool, PrdError> {
        self.walk(data.len(), |addr, r| memory.dma_read(addr, &mut data[r]).map_err(|_| PrdError::BadAddress(addr)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::ram;
    use super::*;

    #[test]
    fn registers() {
        let mut bm = BusMasterRegs::default();
        assert_eq!(bm.write(0, 1, 0xff), BusMasterAction::Started);
        assert_eq!(bm.command, BM_COMMAND_START | BM_COMMAND_WRITE_MEMORY);
        assert_eq!(bm.read(2, 1) as u8 & BM_STATUS_ACTIVE, BM_STATUS_ACTIVE);
        assert_eq!(bm.write(0, 1, 0x09), BusMasterAction::None, "already started");
        bm.status |= BM_STATUS_ERROR | BM_STATUS_INTERRUPT;
        bm.write(2, 1, BM_STATUS_INTERRUPT as u64 | 0x20);
        assert_eq!(bm.status, BM_STATUS_ACTIVE | BM_STATUS_ERROR | 0x20, "write-one-to-clear, capable bits stick");
        bm.write(0, 1, 0);
        assert_eq!(bm.status & BM_STATUS_ACTIVE, 0, "stopping clears active");
        bm.write(4, 4, 0x1234_5677);
        assert_eq!(bm.read(4, 4), 0x1234_5674, "dword aligned");
        bm.write(6, 2, 0xabcd);
        assert_eq!(bm.prd_table, 0xabcd_5674);
        assert_eq!(bm.read(0, 4) >> 16 & 0xff, u64::from(bm.status));
    }

    #[test]
    fn prd_walk_scatters_and_gathers() {
        let mem = ram();
        // Two regions: 6 bytes at 0x2000, 0x10000 bytes (count 0) at 0x10000.
        mem.dma_write(0x1000, &[0x00, 0x20, 0, 0, 6, 0, 0, 0]).unwrap();
        mem.dma_write(0x1008, &[0x00, 0x00, 1, 0, 0, 0, 0, 0x80]).unwrap();
        let mut prd = PrdList::load(mem.as_ref(), 0x1000).unwrap();
        assert!(prd.scatter(mem.as_ref(), &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap());
        let mut b = [0u8; 8];
        mem.dma_read(0x2000, &mut b).unwrap();
        assert_eq!(&b[..7], &[1, 2, 3, 4, 5, 6, 0]);
        mem.dma_read(0x10000, &mut b[..2]).unwrap();
        assert_eq!(&b[..2], &[7, 8]);
        assert!(!prd.scatter(mem.as_ref(), &vec![0; 0x10000]).unwrap(), "table too short");
        let mut prd = PrdList::load(mem.as_ref(), 0x1000).unwrap();
        let mut g = [0u8; 8];
        assert!(prd.gather(mem.as_ref(), &mut g).unwrap());
        assert_eq!(g, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn bad_tables() {
        let mem = ram();
        mem.dma_write(0x1000, &[0x00, 0x00, 0xf0, 0xff, 8, 0, 0, 0x80]).unwrap();
        let mut prd = PrdList::load(mem.as_ref(), 0x1000).unwrap();
        assert_eq!(prd.scatter(mem.as_ref(), &[0; 8]), Err(PrdError::BadAddress(0xfff0_0000)));
        assert!(matches!(PrdList::load(mem.as_ref(), 0xffff_fff0), Err(PrdError::BadAddress(_))));
        let unterminated = PrdList::load(mem.as_ref(), 0x4_0000);
        assert!(matches!(unterminated, Err(PrdError::Unterminated)), "zeroed RAM has no EOT bit");
    }
}
