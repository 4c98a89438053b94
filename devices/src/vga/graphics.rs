//! VGA graphics controller (index port 0x3CE, data port 0x3CF): the registers and the
//! data path between the CPU and the four planes — write modes 0-3 with set/reset,
//! rotate, logical function and bit mask, and read modes 0-1 over the latches.
//!
//! Behaviour from the FreeVGA project's "Graphics Registers" and "VGA Memory
//! Organization" pages and the IBM VGA technical reference. Four plane bytes travel
//! packed in a `u32`, plane n in byte n.

/// GR00 Set/Reset Register.
pub const GR_SET_RESET: u8 = 0x00;
/// GR01 Enable Set/Reset Register.
pub const GR_ENABLE_SET_RESET: u8 = 0x01;
/// GR02 Color Compare Register.
pub const GR_COLOR_COMPARE: u8 = 0x02;
/// GR03 Data Rotate Register (bits 0-2 rotate count, bits 3-4 logical operation).
pub const GR_DATA_ROTATE: u8 = 0x03;
/// GR04 Read Map Select Register.
pub const GR_READ_MAP_SELECT: u8 = 0x04;
/// GR05 Graphics Mode Register.
pub const GR_MODE: u8 = 0x05;
/// GR06 Miscellaneous Graphics Register.
pub const GR_MISC: u8 = 0x06;
/// GR07 Color Don't Care Register.
pub const GR_COLOR_DONT_CARE: u8 = 0x07;
/// GR08 Bit Mask Register.
pub const GR_BIT_MASK: u8 = 0x08;
/// Number of graphics controller registers.
const GR_COUNT: usize = 9;
/// The index register decodes four bits.
const GR_INDEX_MASK: u8 = 0b0000_1111;
/// Implemented bits of GR00-GR08.
const GR_WRITABLE: [u8; GR_COUNT] = [0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff];

/// GR03 bits 0-2: Rotate Count.
const GR03_ROTATE_COUNT: u8 = 0b0000_0111;
/// GR05 bits 0-1: Write Mode.
const GR05_WRITE_MODE: u8 = 0b0000_0011;
/// GR05 bit 3: Read Mode.
const GR05_READ_MODE: u8 = 0b0000_1000;
/// GR05 bit 4: Host Odd/Even Memory Read Addressing Enable.
const GR05_HOST_ODD_EVEN: u8 = 0b0001_0000;
/// GR05 bit 5: Shift Register Interleave Mode (CGA 4-colour modes).
const GR05_SHIFT_INTERLEAVE: u8 = 0b0010_0000;
/// GR05 bit 6: 256-Color Shift Mode.
const GR05_SHIFT_256: u8 = 0b0100_0000;
/// GR06 bit 0: Alphanumeric Mode Disable (1 = graphics).
const GR06_GRAPHICS: u8 = 0b0000_0001;
/// GR06 bits 2-3: Memory Map Select.
const GR06_MEMORY_MAP: u8 = 0b0000_1100;

/// Replicates the low byte into all four plane lanes.
const fn broadcast(byte: u8) -> u32 {
    u32::from_le_bytes([byte; 4])
}

/// Expands a 4-bit plane mask into 0x00/0xFF per plane lane.
fn expand_planes(bits: u8) -> u32 {
    (0..4).fold(0, |acc, p| if bits & (1 << p) != 0 { acc | 0xff << (8 * p) } else { acc })
}

/// The part of the CPU address space 0xA0000-0xBFFFF the VGA decodes (GR06 bits 2-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMap {
    /// 0: A0000-BFFFF (128 KiB).
    A0000Len128K,
    /// 1: A0000-AFFFF (64 KiB).
    A0000Len64K,
    /// 2: B0000-B7FFF (32 KiB).
    B0000Len32K,
    /// 3: B8000-BFFFF (32 KiB).
    B8000Len32K,
}

impl MemoryMap {
    /// Offset in the 0xA0000 window where the map starts, and its length.
    pub fn window(self) -> (u64, u64) {
        match self {
            MemoryMap::A0000Len128K => (0, 0x2_0000),
            MemoryMap::A0000Len64K => (0, 0x1_0000),
            MemoryMap::B0000Len32K => (0x1_0000, 0x8000),
            MemoryMap::B8000Len32K => (0x1_8000, 0x8000),
        }
    }
}

/// The graphics controller's index and registers.
#[derive(Debug, Clone, Default)]
pub struct GraphicsController {
    index: u8,
    regs: [u8; GR_COUNT],
}

impl GraphicsController {
    /// The index register.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Writes the index register (four bits decode).
    pub fn write_index(&mut self, value: u8) {
        self.index = value & GR_INDEX_MASK;
    }

    /// Reads the register the index selects; 0 past GR08.
    pub fn read_data(&self) -> u8 {
        self.get(self.index)
    }

    /// Writes the register the index selects through its implemented bits.
    pub fn write_data(&mut self, value: u8) {
        self.set(self.index, value);
    }

    /// Writes register `index` through its implemented bits.
    pub fn set(&mut self, index: u8, value: u8) {
        match self.regs.get_mut(usize::from(index)) {
            Some(reg) => *reg = value & GR_WRITABLE[usize::from(index)],
            None => log::debug!("vga: write {value:#04x} to nonexistent graphics register {index:#x} dropped"),
        }
    }

    /// Register `index` (0 past GR08).
    pub fn get(&self, index: u8) -> u8 {
        self.regs.get(usize::from(index)).copied().unwrap_or(0)
    }

    fn reg(&self, index: u8) -> u8 {
        self.regs[usize::from(index)]
    }

    /// GR06 bits 2-3.
    pub fn memory_map(&self) -> MemoryMap {
        match (self.reg(GR_MISC) & GR06_MEMORY_MAP) >> 2 {
            0 => MemoryMap::A0000Len128K,
            1 => MemoryMap::A0000Len64K,
            2 => MemoryMap::B0000Len32K,
            _ => MemoryMap::B8000Len32K,
        }
    }

    /// GR06 bit 0: graphics (not alphanumeric) mode.
    pub fn graphics_mode(&self) -> bool {
        self.reg(GR_MISC) & GR06_GRAPHICS != 0
    }

    /// GR05 bit 4: CPU reads use odd/even addressing.
    pub fn odd_even_reads(&self) -> bool {
        self.reg(GR_MODE) & GR05_HOST_ODD_EVEN != 0
    }

    /// GR05 bit 6: the shift registers deliver 8-bit pixels (mode 13h).
    pub fn shift_256(&self) -> bool {
        self.reg(GR_MODE) & GR05_SHIFT_256 != 0
    }

    /// GR05 bit 5: CGA-style interleaved 2-bit pixels.
    pub fn shift_interleave(&self) -> bool {
        self.reg(GR_MODE) & GR05_SHIFT_INTERLEAVE != 0
    }

    /// GR04 bits 0-1: the plane read mode 0 returns.
    pub fn read_map(&self) -> u8 {
        self.reg(GR_READ_MAP_SELECT) & 0b11
    }

    /// The four plane bytes a CPU write of `value` produces with the current write
    /// mode, given the latches; and the per-plane-lane bit mask that selects between
    /// that result (1) and the latch (0). The caller applies the map mask.
    pub fn write_planes(&self, value: u8, latches: u32) -> u32 {
        let rotate = u32::from(self.reg(GR_DATA_ROTATE) & GR03_ROTATE_COUNT);
        let rotated = value.rotate_right(rotate);
        let set_reset = expand_planes(self.reg(GR_SET_RESET));
        let mut bit_mask = broadcast(self.reg(GR_BIT_MASK));
        let data = match self.reg(GR_MODE) & GR05_WRITE_MODE {
            0 => {
                let enable = expand_planes(self.reg(GR_ENABLE_SET_RESET));
                (set_reset & enable) | (broadcast(rotated) & !enable)
            }
            1 => return latches,
            2 => expand_planes(value),
            _ => {
                bit_mask &= broadcast(rotated);
                set_reset
            }
        };
        let combined = match (self.reg(GR_DATA_ROTATE) >> 3) & 0b11 {
            0 => data,
            1 => data & latches,
            2 => data | latches,
            _ => data ^ latches,
        };
        (combined & bit_mask) | (latches & !bit_mask)
    }

    /// What a CPU read returns: read mode 0 gives the byte of `plane`; read mode 1
    /// gives 1 bits where every plane not masked by Color Don't Care matches Color
    /// Compare.
    pub fn read_result(&self, latches: u32, plane: u8) -> u8 {
        if self.reg(GR_MODE) & GR05_READ_MODE == 0 {
            return (latches >> (8 * u32::from(plane & 3))) as u8;
        }
        let care = expand_planes(self.reg(GR_COLOR_DONT_CARE));
        let differs = (latches ^ expand_planes(self.reg(GR_COLOR_COMPARE))) & care;
        !differs.to_le_bytes().iter().fold(0, |acc, b| acc | b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATCHES: u32 = 0x8844_2211;

    fn gc(regs: &[(u8, u8)]) -> GraphicsController {
        let mut g = GraphicsController::default();
        g.set(GR_BIT_MASK, 0xff);
        for &(i, v) in regs {
            g.set(i, v);
        }
        g
    }

    #[test]
    fn write_mode_0_plain_and_rotated() {
        assert_eq!(gc(&[]).write_planes(0xa5, LATCHES), 0xa5a5_a5a5);
        assert_eq!(gc(&[(GR_DATA_ROTATE, 4)]).write_planes(0xa5, LATCHES), 0x5a5a_5a5a, "rotate right by 4");
        assert_eq!(gc(&[(GR_DATA_ROTATE, 1)]).write_planes(0x01, LATCHES), 0x8080_8080, "bit 0 wraps to bit 7");
    }

    /// Planes with set/reset enabled take 0x00/0xFF from GR00 instead of CPU data.
    #[test]
    fn write_mode_0_set_reset() {
        let g = gc(&[(GR_SET_RESET, 0b0101), (GR_ENABLE_SET_RESET, 0b0011)]);
        assert_eq!(g.write_planes(0x3c, LATCHES), 0x3c3c_00ff);
    }

    #[test]
    fn write_mode_0_logical_functions_and_bit_mask() {
        assert_eq!(gc(&[(GR_DATA_ROTATE, 1 << 3)]).write_planes(0x0f, LATCHES), 0x0804_0201, "AND");
        assert_eq!(gc(&[(GR_DATA_ROTATE, 2 << 3)]).write_planes(0x0f, LATCHES), 0x8f4f_2f1f, "OR");
        assert_eq!(gc(&[(GR_DATA_ROTATE, 3 << 3)]).write_planes(0x0f, LATCHES), 0x874b_2d1e, "XOR");
        let g = gc(&[(GR_BIT_MASK, 0xf0)]);
        assert_eq!(g.write_planes(0xff, LATCHES), 0xf8f4_f2f1, "masked bits keep the latch");
    }

    #[test]
    fn write_mode_1_copies_latches() {
        let g = gc(&[(GR_MODE, 1), (GR_BIT_MASK, 0)]);
        assert_eq!(g.write_planes(0x00, LATCHES), LATCHES);
    }

    /// Write mode 2: CPU bit n fills plane n; the bit mask still applies.
    #[test]
    fn write_mode_2() {
        let g = gc(&[(GR_MODE, 2), (GR_BIT_MASK, 0x0f)]);
        assert_eq!(g.write_planes(0b1001, LATCHES), 0x8f40_201f);
    }

    /// Write mode 3: set/reset colour through a mask of (rotated CPU data AND GR08).
    #[test]
    fn write_mode_3() {
        let g = gc(&[(GR_MODE, 3), (GR_SET_RESET, 0b0110), (GR_BIT_MASK, 0x3c)]);
        assert_eq!(g.write_planes(0xf0, LATCHES), 0x8874_3201);
    }

    #[test]
    fn read_mode_0_selects_a_plane() {
        let g = gc(&[(GR_READ_MAP_SELECT, 2)]);
        assert_eq!(g.read_result(LATCHES, g.read_map()), 0x44);
        assert_eq!(g.read_result(LATCHES, 3), 0x88);
    }

    /// Read mode 1: bit set where (latch_n XOR compare_n) is 0 for every cared plane.
    #[test]
    fn read_mode_1_colour_compare() {
        // Pixel colours per bit: plane bytes 0x0f, 0x0f, 0x00, 0x00 -> bits 0-3 are colour 3.
        let latches = 0x0000_0f0f;
        let g = gc(&[(GR_MODE, 0x08), (GR_COLOR_COMPARE, 3), (GR_COLOR_DONT_CARE, 0x0f)]);
        assert_eq!(g.read_result(latches, 0), 0x0f);
        let g = gc(&[(GR_MODE, 0x08), (GR_COLOR_COMPARE, 0), (GR_COLOR_DONT_CARE, 0x0f)]);
        assert_eq!(g.read_result(latches, 0), 0xf0);
        let g = gc(&[(GR_MODE, 0x08), (GR_COLOR_COMPARE, 0), (GR_COLOR_DONT_CARE, 0)]);
        assert_eq!(g.read_result(latches, 0), 0xff, "nothing cared about: everything matches");
    }

    #[test]
    fn registers_and_memory_map() {
        let mut g = GraphicsController::default();
        g.write_index(0x16);
        assert_eq!(g.index(), 6);
        g.write_data(0xff);
        assert_eq!(g.read_data(), 0x0f);
        assert_eq!(g.memory_map(), MemoryMap::B8000Len32K);
        assert!(g.graphics_mode());
        g.write_index(0x0c);
        g.write_data(1);
        assert_eq!(g.read_data(), 0);
    }
}
