//! VGA sequencer registers (index port 0x3C4, data port 0x3C5).
//!
//! Register layout from the FreeVGA project's "Sequencer Registers" page and the IBM
//! VGA technical reference: SR00-SR04; the index is three bits wide.

/// SR00 Reset Register.
pub const SR_RESET: u8 = 0x00;
/// SR01 Clocking Mode Register.
pub const SR_CLOCKING_MODE: u8 = 0x01;
/// SR02 Map Mask Register (planes a CPU write may change).
pub const SR_MAP_MASK: u8 = 0x02;
/// SR03 Character Map Select Register.
pub const SR_CHARACTER_MAP_SELECT: u8 = 0x03;
/// SR04 Sequencer Memory Mode Register.
pub const SR_MEMORY_MODE: u8 = 0x04;
/// Number of sequencer registers.
const SR_COUNT: usize = 5;
/// The index register decodes three bits.
const SR_INDEX_MASK: u8 = 0b0000_0111;
/// Implemented bits of SR00-SR04 (the rest read as 0).
const SR_WRITABLE: [u8; SR_COUNT] = [0b0000_0011, 0b0011_1101, 0b0000_1111, 0b0011_1111, 0b0000_1110];

/// SR01 bit 0 (8/9 Dot Clocks): 1 = characters are 8 dots wide, 0 = 9 dots.
const SR01_EIGHT_DOT: u8 = 0b0000_0001;
/// SR01 bit 3 (Dot Clock Rate): 1 = dot clock divided by 2 (40-column and 320-pixel modes).
const SR01_DOT_CLOCK_HALF: u8 = 0b0000_1000;
/// SR01 bit 5 (Screen Disable): 1 = display blanked.
const SR01_SCREEN_OFF: u8 = 0b0010_0000;
/// SR04 bit 2 (Odd/Even Host Memory Write Addressing Disable): 0 = odd/even writes.
const SR04_ODD_EVEN_DISABLE: u8 = 0b0000_0100;
/// SR04 bit 3 (Chain 4 Enable): address bits 0-1 select the plane.
const SR04_CHAIN_4: u8 = 0b0000_1000;

/// The sequencer's index and registers.
#[derive(Debug, Clone, Default)]
pub struct Sequencer {
    index: u8,
    regs: [u8; SR_COUNT],
}

impl Sequencer {
    /// The index register.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Writes the index register (three bits decode).
    pub fn write_index(&mut self, value: u8) {
        self.index = value & SR_INDEX_MASK;
    }

    /// Reads the register the index selects; 0 for SR05-SR07, which do not exist.
    pub fn read_data(&self) -> u8 {
        self.regs.get(usize::from(self.index)).copied().unwrap_or(0)
    }

    /// Writes the register the index selects through its implemented bits.
    pub fn write_data(&mut self, value: u8) {
        self.set(self.index, value);
    }

    /// Writes register `index` directly (the data path of [`Self::write_data`]).
    pub fn set(&mut self, index: u8, value: u8) {
        match self.regs.get_mut(usize::from(index)) {
            Some(reg) => *reg = value & SR_WRITABLE[usize::from(index)],
            None => log::debug!("vga: write {value:#04x} to nonexistent sequencer register {index:#x} dropped"),
        }
    }

    /// Register `index` (0 for nonexistent ones).
    pub fn get(&self, index: u8) -> u8 {
        self.regs.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// Character cell width in dots: 8 or 9 (SR01 bit 0).
    pub fn dots_per_char(&self) -> u32 {
        if self.regs[usize::from(SR_CLOCKING_MODE)] & SR01_EIGHT_DOT != 0 {
            8
        } else {
            9
        }
    }

    /// SR01 bit 3: the dot clock is halved (each dot is shown twice as wide).
    pub fn dot_clock_half(&self) -> bool {
        self.regs[usize::from(SR_CLOCKING_MODE)] & SR01_DOT_CLOCK_HALF != 0
    }

    /// SR01 bit 5: the screen is turned off.
    pub fn screen_off(&self) -> bool {
        self.regs[usize::from(SR_CLOCKING_MODE)] & SR01_SCREEN_OFF != 0
    }

    /// SR02: the planes CPU writes may change (bit n = plane n).
    pub fn map_mask(&self) -> u8 {
        self.regs[usize::from(SR_MAP_MASK)]
    }

    /// SR04 bit 3: chain-4 addressing.
    pub fn chain4(&self) -> bool {
        self.regs[usize::from(SR_MEMORY_MODE)] & SR04_CHAIN_4 != 0
    }

    /// SR04 bit 2 clear: CPU writes use odd/even addressing.
    pub fn odd_even_writes(&self) -> bool {
        self.regs[usize::from(SR_MEMORY_MODE)] & SR04_ODD_EVEN_DISABLE == 0
    }

    /// Plane-2 offsets of the two character maps (SR03): `(map A, map B)`. Map A is
    /// used when attribute bit 3 is set, map B when it is clear. Map n starts at
    /// 16 KiB * (n & 3) + 8 KiB * (n >> 2).
    pub fn character_map_offsets(&self) -> (usize, usize) {
        let sr = self.regs[usize::from(SR_CHARACTER_MAP_SELECT)];
        let map_a = (sr & 0b11) | ((sr >> 3) & 0b100);
        let map_b = ((sr >> 2) & 0b11) | ((sr >> 2) & 0b100);
        (map_offset(map_a), map_offset(map_b))
    }
}

/// Plane-2 offset of character map `n` (0-7).
fn map_offset(n: u8) -> usize {
    usize::from(n & 0b11) * 0x4000 + usize::from(n >> 2) * 0x2000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_three_bits_and_registers_keep_implemented_bits() {
        let mut s = Sequencer::default();
        s.write_index(0xfa);
        assert_eq!(s.index(), 2);
        s.write_data(0xff);
        assert_eq!(s.read_data(), 0x0f, "map mask has four planes");
        s.write_index(SR_MEMORY_MODE);
        s.write_data(0xff);
        assert_eq!(s.read_data(), 0x0e);
        assert!(s.chain4());
        assert!(!s.odd_even_writes());
        s.write_index(6);
        s.write_data(0x55);
        assert_eq!(s.read_data(), 0);
    }

    /// FreeVGA, Character Map Select: map A = bits 5,1,0 and map B = bits 4,3,2.
    #[test]
    fn character_map_select() {
        let mut s = Sequencer::default();
        assert_eq!(s.character_map_offsets(), (0, 0));
        s.set(SR_CHARACTER_MAP_SELECT, 0b0010_0001);
        assert_eq!(s.character_map_offsets(), (0x6000, 0), "map A = 5 at 24 KiB");
        s.set(SR_CHARACTER_MAP_SELECT, 0b0001_1100);
        assert_eq!(s.character_map_offsets(), (0, 0xe000), "map B = 7 at 56 KiB");
    }

    #[test]
    fn clocking_mode() {
        let mut s = Sequencer::default();
        assert_eq!(s.dots_per_char(), 9);
        s.set(SR_CLOCKING_MODE, 0x29);
        assert_eq!(s.dots_per_char(), 8);
        assert!(s.dot_clock_half());
        assert!(s.screen_off());
    }
}
