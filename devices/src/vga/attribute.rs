//! VGA attribute controller (port 0x3C0 index/data write with a flip-flop, 0x3C1 data
//! read): the 16-entry palette, mode control, overscan, colour plane enable, horizontal
//! panning and colour select.
//!
//! Behaviour from the FreeVGA project's "Attribute Controller Registers" page and the
//! IBM VGA technical reference. Reading input status 1 (0x3DA/0x3BA) resets the
//! flip-flop to "index".

/// AR00-AR0F: palette registers.
pub const AR_PALETTE_COUNT: u8 = 0x10;
/// AR10 Attribute Mode Control Register.
pub const AR_MODE_CONTROL: u8 = 0x10;
/// AR11 Overscan Color Register.
pub const AR_OVERSCAN: u8 = 0x11;
/// AR12 Color Plane Enable Register.
pub const AR_COLOR_PLANE_ENABLE: u8 = 0x12;
/// AR13 Horizontal Pixel Panning Register.
pub const AR_HORIZONTAL_PANNING: u8 = 0x13;
/// AR14 Color Select Register.
pub const AR_COLOR_SELECT: u8 = 0x14;
/// Number of attribute registers.
const AR_COUNT: usize = 0x15;
/// Index bits 0-4: the register.
const AR_INDEX_REGISTER: u8 = 0b0001_1111;
/// Index bit 5: Palette Address Source (1 = the display uses the palette; video on).
pub const AR_INDEX_PAS: u8 = 0b0010_0000;
/// Implemented bits of AR10-AR14 (palette registers keep 6 bits).
const AR_WRITABLE_HIGH: [u8; 5] = [0xef, 0xff, 0x3f, 0x0f, 0x0f];
/// Palette registers hold 6 bits.
const AR_PALETTE_BITS: u8 = 0b0011_1111;

/// AR10 bit 0: graphics mode.
const AR10_GRAPHICS: u8 = 0b0000_0001;
/// AR10 bit 2: Line Graphics Enable (9th dot of 0xC0-0xDF repeats the 8th).
const AR10_LINE_GRAPHICS: u8 = 0b0000_0100;
/// AR10 bit 3: Blink Enable (attribute bit 7 blinks instead of bright background).
const AR10_BLINK: u8 = 0b0000_1000;
/// AR10 bit 5: Pixel Panning Mode (panning reset to 0 after a line compare match).
const AR10_PIXEL_PANNING_MODE: u8 = 0b0010_0000;
/// AR10 bit 6: 8-bit Color Enable (256-colour mode).
const AR10_EIGHT_BIT: u8 = 0b0100_0000;
/// AR10 bit 7: Palette Bits 5-4 Select (take bits 5-4 from AR14 instead of the palette).
const AR10_P54S: u8 = 0b1000_0000;

/// The attribute controller's index, flip-flop and registers.
#[derive(Debug, Clone, Default)]
pub struct AttributeController {
    index: u8,
    data_next: bool,
    regs: [u8; AR_COUNT],
}

impl AttributeController {
    /// Port 0x3C0 read: the index register with the PAS bit.
    pub fn read_index(&self) -> u8 {
        self.index
    }

    /// Port 0x3C0 write: the index when the flip-flop says "index", else the data;
    /// the flip-flop toggles.
    pub fn write(&mut self, value: u8) {
        if self.data_next {
            self.set(self.index & AR_INDEX_REGISTER, value);
        } else {
            self.index = value & (AR_INDEX_REGISTER | AR_INDEX_PAS);
        }
        self.data_next = !self.data_next;
    }

    /// Port 0x3C1 read: the register the index selects; 0 past AR14.
    pub fn read_data(&self) -> u8 {
        self.get(self.index & AR_INDEX_REGISTER)
    }

    /// Input status 1 read: the flip-flop goes back to "index".
    pub fn reset_flip_flop(&mut self) {
        self.data_next = false;
    }

    /// Writes register `index` through its implemented bits.
    pub fn set(&mut self, index: u8, value: u8) {
        match index {
            0..AR_PALETTE_COUNT => self.regs[usize::from(index)] = value & AR_PALETTE_BITS,
            AR_MODE_CONTROL..=AR_COLOR_SELECT => {
                self.regs[usize::from(index)] = value & AR_WRITABLE_HIGH[usize::from(index - AR_MODE_CONTROL)]
            }
            _ => log::debug!("vga: write {value:#04x} to nonexistent attribute register {index:#x} dropped"),
        }
    }

    /// Register `index` (0 past AR14).
    pub fn get(&self, index: u8) -> u8 {
        self.regs.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// Index bit 5 (PAS): 0 while the palette is being loaded, which blanks the screen.
    pub fn video_enabled(&self) -> bool {
        self.index & AR_INDEX_PAS != 0
    }

    fn mode_control(&self) -> u8 {
        self.regs[usize::from(AR_MODE_CONTROL)]
    }

    /// AR10 bit 0: graphics mode.
    pub fn graphics_mode(&self) -> bool {
        self.mode_control() & AR10_GRAPHICS != 0
    }

    /// AR10 bit 2: line graphics (9th column copies the 8th for 0xC0-0xDF).
    pub fn line_graphics(&self) -> bool {
        self.mode_control() & AR10_LINE_GRAPHICS != 0
    }

    /// AR10 bit 3: attribute bit 7 blinks.
    pub fn blink_enabled(&self) -> bool {
        self.mode_control() & AR10_BLINK != 0
    }

    /// AR10 bit 6: 8-bit pixels.
    pub fn eight_bit_colour(&self) -> bool {
        self.mode_control() & AR10_EIGHT_BIT != 0
    }

    /// AR10 bit 5: horizontal panning applies only above the line-compare split.
    pub fn panning_reset_at_split(&self) -> bool {
        self.mode_control() & AR10_PIXEL_PANNING_MODE != 0
    }

    /// AR13 bits 0-3: horizontal pixel panning.
    pub fn horizontal_panning(&self) -> u32 {
        u32::from(self.regs[usize::from(AR_HORIZONTAL_PANNING)] & 0x0f)
    }

    /// The DAC index of a 4-bit pixel or text colour: colour plane enable, palette
    /// lookup, then bits 4-7 from the palette or AR14 (FreeVGA, "Attribute Controller
    /// Registers").
    pub fn dac_index(&self, colour: u8) -> u8 {
        let enabled = colour & self.regs[usize::from(AR_COLOR_PLANE_ENABLE)] & 0x0f;
        let palette = self.regs[usize::from(enabled)];
        let select = self.regs[usize::from(AR_COLOR_SELECT)];
        let bits_5_4 = if self.mode_control() & AR10_P54S != 0 { (select & 0b0011) << 4 } else { palette & 0x30 };
        ((select & 0b1100) << 4) | bits_5_4 | (palette & 0x0f)
    }

    /// The DAC index of the overscan (border) colour.
    pub fn overscan(&self) -> u8 {
        self.regs[usize::from(AR_OVERSCAN)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_flop_alternates_index_and_data() {
        let mut a = AttributeController::default();
        a.write(0x23);
        assert_eq!(a.read_index(), 0x23);
        assert!(a.video_enabled());
        a.write(0xff);
        assert_eq!(a.read_data(), 0x3f, "palette registers keep 6 bits");
        a.write(AR_MODE_CONTROL);
        a.reset_flip_flop();
        a.write(AR_COLOR_SELECT);
        a.write(0xff);
        assert_eq!(a.get(AR_COLOR_SELECT), 0x0f);
        assert_eq!(a.get(AR_MODE_CONTROL), 0, "the reset made 0x14 an index, not data");
        a.write(0x1f);
        a.write(0x55);
        assert_eq!(a.read_data(), 0);
        assert!(!a.video_enabled());
    }

    #[test]
    fn dac_index_through_palette_and_colour_select() {
        let mut a = AttributeController::default();
        a.set(AR_COLOR_PLANE_ENABLE, 0x0f);
        a.set(5, 0x3a);
        assert_eq!(a.dac_index(5), 0x3a);
        a.set(AR_COLOR_SELECT, 0b1110);
        assert_eq!(a.dac_index(5), 0xfa, "bits 7-6 from AR14 bits 3-2");
        a.set(AR_MODE_CONTROL, AR10_P54S);
        assert_eq!(a.dac_index(5), 0xea, "bits 5-4 from AR14 bits 1-0");
        a.set(AR_COLOR_PLANE_ENABLE, 0b0100);
        a.set(4, 0x07);
        assert_eq!(a.dac_index(5), 0xe7, "plane 0 disabled: colour 5 becomes 4");
    }
}
