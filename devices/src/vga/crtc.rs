//! VGA CRT controller registers (index/data at 0x3D4/0x3D5 in colour mode, 0x3B4/0x3B5
//! in monochrome mode).
//!
//! Register layout from the FreeVGA project's "CRT Controller Registers" page and the
//! IBM VGA technical reference: CR00-CR18. CR11 bit 7 write-protects CR00-CR07 except
//! the line compare bit 8 in CR07 bit 4.

/// CR01 End Horizontal Display (character clocks - 1).
pub const CR_HORIZONTAL_DISPLAY_END: u8 = 0x01;
/// CR07 Overflow Register (bit 8/9 of vertical values).
pub const CR_OVERFLOW: u8 = 0x07;
/// CR08 Preset Row Scan Register.
pub const CR_PRESET_ROW_SCAN: u8 = 0x08;
/// CR09 Maximum Scan Line Register.
pub const CR_MAXIMUM_SCAN_LINE: u8 = 0x09;
/// CR0A Cursor Start Register.
pub const CR_CURSOR_START: u8 = 0x0a;
/// CR0B Cursor End Register.
pub const CR_CURSOR_END: u8 = 0x0b;
/// CR0C Start Address High Register.
pub const CR_START_ADDRESS_HIGH: u8 = 0x0c;
/// CR0D Start Address Low Register.
pub const CR_START_ADDRESS_LOW: u8 = 0x0d;
/// CR0E Cursor Location High Register.
pub const CR_CURSOR_LOCATION_HIGH: u8 = 0x0e;
/// CR0F Cursor Location Low Register.
pub const CR_CURSOR_LOCATION_LOW: u8 = 0x0f;
/// CR11 Vertical Retrace End Register (bit 7: protect CR00-CR07).
pub const CR_VERTICAL_RETRACE_END: u8 = 0x11;
/// CR12 Vertical Display End Register (low 8 bits).
pub const CR_VERTICAL_DISPLAY_END: u8 = 0x12;
/// CR13 Offset Register (line pitch).
pub const CR_OFFSET: u8 = 0x13;
/// CR14 Underline Location Register.
pub const CR_UNDERLINE_LOCATION: u8 = 0x14;
/// CR17 CRTC Mode Control Register.
pub const CR_MODE_CONTROL: u8 = 0x17;
/// CR18 Line Compare Register (low 8 bits).
pub const CR_LINE_COMPARE: u8 = 0x18;
/// Number of CRTC registers.
const CR_COUNT: usize = 0x19;

/// CR07 bit 1: Vertical Display End bit 8.
const CR07_VDE_8: u8 = 0b0000_0010;
/// CR07 bit 4: Line Compare bit 8 (writable even when CR00-CR07 are protected).
const CR07_LINE_COMPARE_8: u8 = 0b0001_0000;
/// CR07 bit 6: Vertical Display End bit 9.
const CR07_VDE_9: u8 = 0b0100_0000;
/// CR09 bits 0-4: Maximum Scan Line.
const CR09_MAXIMUM_SCAN_LINE: u8 = 0b0001_1111;
/// CR09 bit 6: Line Compare bit 9.
const CR09_LINE_COMPARE_9: u8 = 0b0100_0000;
/// CR09 bit 7: Scan Doubling.
const CR09_SCAN_DOUBLING: u8 = 0b1000_0000;
/// CR0A bit 5: Cursor Disable.
const CR0A_CURSOR_DISABLE: u8 = 0b0010_0000;
/// CR0A/CR0B bits 0-4: cursor scan line.
const CURSOR_SCAN_LINE: u8 = 0b0001_1111;
/// CR11 bit 7: Protect CR00-CR07.
const CR11_PROTECT: u8 = 0b1000_0000;
/// CR14 bit 6: Double-Word Addressing.
const CR14_DOUBLE_WORD: u8 = 0b0100_0000;
/// CR14 bits 0-4: Underline Location.
const CR14_UNDERLINE: u8 = 0b0001_1111;
/// CR17 bit 6: Word/Byte Mode Select (1 = byte mode).
const CR17_BYTE_MODE: u8 = 0b0100_0000;

/// How the CRTC's memory address counter maps to a plane offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressMode {
    /// Counter = plane offset.
    Byte,
    /// Plane offset = counter * 2 (text modes).
    Word,
    /// Plane offset = counter * 4 (mode 13h, whose chain-4 data sits at every 4th offset).
    DoubleWord,
}

impl AddressMode {
    /// Left shift from counter to plane offset.
    pub fn shift(self) -> u32 {
        match self {
            AddressMode::Byte => 0,
            AddressMode::Word => 1,
            AddressMode::DoubleWord => 2,
        }
    }
}

/// The CRT controller's index and registers.
#[derive(Debug, Clone, Default)]
pub struct Crtc {
    index: u8,
    regs: [u8; CR_COUNT],
}

impl Crtc {
    /// The index register (all eight bits read back).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Writes the index register.
    pub fn write_index(&mut self, value: u8) {
        self.index = value;
    }

    /// Reads the register the index selects; 0 past CR18.
    pub fn read_data(&self) -> u8 {
        self.get(self.index)
    }

    /// Writes the register the index selects, honouring the CR11 protect bit.
    pub fn write_data(&mut self, value: u8) {
        self.set(self.index, value);
    }

    /// Writes register `index`, honouring the CR11 protect bit.
    pub fn set(&mut self, index: u8, value: u8) {
        let at = usize::from(index);
        if at >= CR_COUNT {
            log::debug!("vga: write {value:#04x} to nonexistent CRTC register {index:#x} dropped");
            return;
        }
        if index <= CR_OVERFLOW && self.regs[usize::from(CR_VERTICAL_RETRACE_END)] & CR11_PROTECT != 0 {
            if index == CR_OVERFLOW {
                let reg = &mut self.regs[at];
                *reg = (*reg & !CR07_LINE_COMPARE_8) | (value & CR07_LINE_COMPARE_8);
            }
            return;
        }
        self.regs[at] = value;
    }

    /// Register `index` (0 past CR18).
    pub fn get(&self, index: u8) -> u8 {
        self.regs.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// Displayed character clocks per line (CR01 + 1).
    pub fn horizontal_display_chars(&self) -> u32 {
        u32::from(self.regs[usize::from(CR_HORIZONTAL_DISPLAY_END)]) + 1
    }

    /// Displayed scan lines (Vertical Display End + 1, ten bits from CR12 and CR07).
    pub fn vertical_display_lines(&self) -> u32 {
        let overflow = self.regs[usize::from(CR_OVERFLOW)];
        let mut end = u32::from(self.regs[usize::from(CR_VERTICAL_DISPLAY_END)]);
        if overflow & CR07_VDE_8 != 0 {
            end |= 1 << 8;
        }
        if overflow & CR07_VDE_9 != 0 {
            end |= 1 << 9;
        }
        end + 1
    }

    /// Scan lines per character row (CR09 bits 0-4, plus one).
    pub fn scan_lines_per_row(&self) -> u32 {
        u32::from(self.regs[usize::from(CR_MAXIMUM_SCAN_LINE)] & CR09_MAXIMUM_SCAN_LINE) + 1
    }

    /// CR09 bit 7: every scan line is shown twice.
    pub fn scan_doubling(&self) -> bool {
        self.regs[usize::from(CR_MAXIMUM_SCAN_LINE)] & CR09_SCAN_DOUBLING != 0
    }

    /// CR08 bits 0-4: first scan line of the top character row.
    pub fn preset_row_scan(&self) -> u32 {
        u32::from(self.regs[usize::from(CR_PRESET_ROW_SCAN)] & 0b0001_1111)
    }

    /// The text cursor's first and last scan lines, or `None` when CR0A disables it.
    pub fn cursor_scan_lines(&self) -> Option<(u32, u32)> {
        let start = self.regs[usize::from(CR_CURSOR_START)];
        let end = self.regs[usize::from(CR_CURSOR_END)];
        (start & CR0A_CURSOR_DISABLE == 0)
            .then(|| (u32::from(start & CURSOR_SCAN_LINE), u32::from(end & CURSOR_SCAN_LINE)))
    }

    /// Start address (CR0C:CR0D) in memory address counter units.
    pub fn start_address(&self) -> u32 {
        u32::from(self.regs[usize::from(CR_START_ADDRESS_HIGH)]) << 8
            | u32::from(self.regs[usize::from(CR_START_ADDRESS_LOW)])
    }

    /// Cursor location (CR0E:CR0F) in memory address counter units.
    pub fn cursor_location(&self) -> u32 {
        u32::from(self.regs[usize::from(CR_CURSOR_LOCATION_HIGH)]) << 8
            | u32::from(self.regs[usize::from(CR_CURSOR_LOCATION_LOW)])
    }

    /// CR13: line pitch in units of 2 (byte), 4 (word) or 8 (double-word) plane offsets.
    pub fn offset(&self) -> u32 {
        u32::from(self.regs[usize::from(CR_OFFSET)])
    }

    /// Plane offsets from one character row (text) or scan line (graphics) to the next.
    pub fn line_pitch(&self) -> u32 {
        (self.offset() * 2) << self.address_mode().shift()
    }

    /// CR14 bits 0-4: the scan line (in a character row) that shows the underline.
    pub fn underline_location(&self) -> u32 {
        u32::from(self.regs[usize::from(CR_UNDERLINE_LOCATION)] & CR14_UNDERLINE)
    }

    /// Line compare (ten bits from CR18, CR07 bit 4 and CR09 bit 6): the scan line at
    /// which the address counter restarts at 0 (split screen).
    pub fn line_compare(&self) -> u32 {
        let mut line = u32::from(self.regs[usize::from(CR_LINE_COMPARE)]);
        if self.regs[usize::from(CR_OVERFLOW)] & CR07_LINE_COMPARE_8 != 0 {
            line |= 1 << 8;
        }
        if self.regs[usize::from(CR_MAXIMUM_SCAN_LINE)] & CR09_LINE_COMPARE_9 != 0 {
            line |= 1 << 9;
        }
        line
    }

    /// Counter-to-offset mapping: CR14 bit 6 (double-word) wins over CR17 bit 6 (byte).
    pub fn address_mode(&self) -> AddressMode {
        if self.regs[usize::from(CR_UNDERLINE_LOCATION)] & CR14_DOUBLE_WORD != 0 {
            AddressMode::DoubleWord
        } else if self.regs[usize::from(CR_MODE_CONTROL)] & CR17_BYTE_MODE != 0 {
            AddressMode::Byte
        } else {
            AddressMode::Word
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mode 03h CRTC values (IBM VGA BIOS tables, as listed by FreeVGA).
    const MODE_03: [u8; CR_COUNT] = [
        0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
    ];

    fn mode_03() -> Crtc {
        let mut c = Crtc::default();
        for (i, v) in MODE_03.iter().enumerate() {
            c.set(i as u8, *v);
        }
        c
    }

    #[test]
    fn mode_03_geometry() {
        let c = mode_03();
        assert_eq!(c.horizontal_display_chars(), 80);
        assert_eq!(c.vertical_display_lines(), 400, "0x8f | bit 8 from CR07 0x1f");
        assert_eq!(c.scan_lines_per_row(), 16);
        assert_eq!(c.cursor_scan_lines(), Some((13, 14)));
        assert_eq!(c.address_mode(), AddressMode::Word);
        assert_eq!(c.line_pitch(), 160, "80 cells of 2 plane offsets");
        assert_eq!(c.line_compare(), 0x3ff);
    }

    /// CR11 bit 7 protects CR00-CR07, except CR07 bit 4.
    #[test]
    fn write_protect() {
        let mut c = mode_03();
        c.set(CR_VERTICAL_RETRACE_END, 0x8e);
        c.write_index(CR_HORIZONTAL_DISPLAY_END);
        c.write_data(0x27);
        assert_eq!(c.read_data(), 0x4f);
        c.set(CR_OVERFLOW, 0x00);
        assert_eq!(c.get(CR_OVERFLOW), 0x0f, "only line compare bit 8 changed");
        c.set(CR_VERTICAL_RETRACE_END, 0x0e);
        c.set(CR_HORIZONTAL_DISPLAY_END, 0x27);
        assert_eq!(c.horizontal_display_chars(), 40);
    }

    #[test]
    fn out_of_range_index() {
        let mut c = mode_03();
        c.write_index(0x40);
        c.write_data(0x12);
        assert_eq!(c.read_data(), 0);
        assert_eq!(c.index(), 0x40);
    }

    #[test]
    fn address_modes() {
        let mut c = Crtc::default();
        c.set(CR_OFFSET, 40);
        c.set(CR_MODE_CONTROL, 0xe3);
        assert_eq!(c.address_mode(), AddressMode::Byte);
        assert_eq!(c.line_pitch(), 80, "mode 12h: 640 pixels / 8 per byte");
        c.set(CR_UNDERLINE_LOCATION, 0x40);
        assert_eq!(c.address_mode(), AddressMode::DoubleWord);
        assert_eq!(c.line_pitch(), 320, "mode 13h: 320 bytes per line");
    }
}
