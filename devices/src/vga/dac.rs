//! VGA DAC (RAMDAC): 256 palette entries of red, green and blue, loaded through the
//! write index (0x3C8), read index (0x3C7, which reads back the DAC state) and data
//! (0x3C9) ports, with the pixel mask at 0x3C6.
//!
//! Behaviour from the FreeVGA project's "DAC Operation" and "Color Registers" pages:
//! each data access moves through red, green, blue and then to the next index. Entries
//! are 6 bits; the Bochs VBE 8-bit DAC mode (DISPI ENABLE bit 5) keeps all 8 bits.

/// Number of palette entries.
const DAC_ENTRIES: usize = 256;
/// DAC State Register value after a read-index write (0x3C7 read).
const DAC_STATE_READ: u8 = 0b11;
/// DAC State Register value after a write-index write.
const DAC_STATE_WRITE: u8 = 0b00;
/// 2/3 of full scale in 6 bits (an EGA primary bit).
const EGA_TWO_THIRDS: u8 = 0x2a;
/// 1/3 of full scale in 6 bits (an EGA secondary bit).
const EGA_ONE_THIRD: u8 = 0x15;
/// A 6-bit DAC component.
const DAC_6BIT: u8 = 0b0011_1111;

/// The DAC palette and its access state.
#[derive(Debug, Clone)]
pub struct Dac {
    palette: [[u8; 3]; DAC_ENTRIES],
    write_index: u8,
    write_component: usize,
    pending: [u8; 3],
    read_index: u8,
    read_component: usize,
    state: u8,
    pixel_mask: u8,
    eight_bit: bool,
}

impl Default for Dac {
    fn default() -> Self {
        Dac {
            palette: [[0; 3]; DAC_ENTRIES],
            write_index: 0,
            write_component: 0,
            pending: [0; 3],
            read_index: 0,
            read_component: 0,
            state: DAC_STATE_WRITE,
            pixel_mask: 0xff,
            eight_bit: false,
        }
    }
}

impl Dac {
    /// Port 0x3C6 read.
    pub fn pixel_mask(&self) -> u8 {
        self.pixel_mask
    }

    /// Port 0x3C6 write.
    pub fn set_pixel_mask(&mut self, value: u8) {
        self.pixel_mask = value;
    }

    /// Port 0x3C7 read: the DAC state (0 = write mode, 3 = read mode).
    pub fn state(&self) -> u8 {
        self.state
    }

    /// Port 0x3C7 write: start reading at `index`.
    pub fn set_read_index(&mut self, index: u8) {
        self.read_index = index;
        self.read_component = 0;
        self.state = DAC_STATE_READ;
    }

    /// Port 0x3C8 read: the write index.
    pub fn write_index(&self) -> u8 {
        self.write_index
    }

    /// Port 0x3C8 write: start writing at `index`.
    pub fn set_write_index(&mut self, index: u8) {
        self.write_index = index;
        self.write_component = 0;
        self.state = DAC_STATE_WRITE;
    }

    /// Port 0x3C9 write: the next component; the entry is stored after blue.
    pub fn write_data(&mut self, value: u8) {
        self.pending[self.write_component] = if self.eight_bit { value } else { value & DAC_6BIT };
        self.write_component += 1;
        if self.write_component == 3 {
            self.palette[usize::from(self.write_index)] = self.pending;
            self.write_index = self.write_index.wrapping_add(1);
            self.write_component = 0;
        }
    }

    /// Port 0x3C9 read: the next component of the entry at the read index.
    pub fn read_data(&mut self) -> u8 {
        let value = self.palette[usize::from(self.read_index)][self.read_component];
        self.read_component += 1;
        if self.read_component == 3 {
            self.read_index = self.read_index.wrapping_add(1);
            self.read_component = 0;
        }
        value
    }

    /// Selects 8-bit (true) or 6-bit entries for later writes and for display.
    pub fn set_eight_bit(&mut self, eight_bit: bool) {
        self.eight_bit = eight_bit;
    }

    /// The raw components of entry `index`.
    pub fn entry(&self, index: u8) -> [u8; 3] {
        self.palette[usize::from(index)]
    }

    /// Sets entry `index` directly (the data path of three [`Self::write_data`] calls).
    pub fn set_entry(&mut self, index: u8, rgb: [u8; 3]) {
        let mask = if self.eight_bit { 0xff } else { DAC_6BIT };
        self.palette[usize::from(index)] = rgb.map(|c| c & mask);
    }

    /// Loads entries 0-63 with the EGA-compatible colours the VGA BIOS sets for 16-colour
    /// modes: index bits 0-2 are blue, green and red at 2/3 intensity, bits 3-5 the same
    /// at 1/3 (so attribute palette value 0x14 is brown and 0x38-0x3F the bright colours).
    pub fn load_ega_palette(&mut self) {
        for index in 0..64u8 {
            let level = |bit: u8| {
                (if index & (1 << bit) != 0 { EGA_TWO_THIRDS } else { 0 })
                    + (if index & (1 << (bit + 3)) != 0 { EGA_ONE_THIRD } else { 0 })
            };
            self.palette[usize::from(index)] = [level(2), level(1), level(0)];
        }
    }

    /// Loads all 256 entries with the VGA BIOS's default palette for mode 13h: the 16
    /// CGA colours, 16 grey levels, then nine 24-step hue circles (high, moderate and
    /// low saturation at high, medium and low intensity), and 8 black entries.
    pub fn load_default_256_palette(&mut self) {
        const CGA: [[u8; 3]; 16] = [
            [0, 0, 0],
            [0, 0, 42],
            [0, 42, 0],
            [0, 42, 42],
            [42, 0, 0],
            [42, 0, 42],
            [42, 21, 0],
            [42, 42, 42],
            [21, 21, 21],
            [21, 21, 63],
            [21, 63, 21],
            [21, 63, 63],
            [63, 21, 21],
            [63, 21, 63],
            [63, 63, 21],
            [63, 63, 63],
        ];
        const GREYS: [u8; 16] = [0, 5, 8, 11, 14, 17, 20, 24, 28, 32, 36, 40, 45, 50, 56, 63];
        // Component levels of each circle: intensity x saturation.
        const LEVELS: [[u8; 5]; 9] = [
            [0, 16, 31, 47, 63],
            [31, 39, 47, 55, 63],
            [45, 49, 54, 58, 63],
            [0, 7, 14, 21, 28],
            [14, 17, 21, 24, 28],
            [20, 22, 24, 26, 28],
            [0, 4, 8, 12, 16],
            [8, 10, 12, 14, 16],
            [11, 12, 13, 15, 16],
        ];
        // Level index of (red, green, blue) for the 24 hues, blue round to blue.
        const HUES: [[usize; 3]; 24] = [
            [0, 0, 4],
            [1, 0, 4],
            [2, 0, 4],
            [3, 0, 4],
            [4, 0, 4],
            [4, 0, 3],
            [4, 0, 2],
            [4, 0, 1],
            [4, 0, 0],
            [4, 1, 0],
            [4, 2, 0],
            [4, 3, 0],
            [4, 4, 0],
            [3, 4, 0],
            [2, 4, 0],
            [1, 4, 0],
            [0, 4, 0],
            [0, 4, 1],
            [0, 4, 2],
            [0, 4, 3],
            [0, 4, 4],
            [0, 3, 4],
            [0, 2, 4],
            [0, 1, 4],
        ];
        self.palette[..16].copy_from_slice(&CGA);
        for (i, &g) in GREYS.iter().enumerate() {
            self.palette[16 + i] = [g; 3];
        }
        for (c, levels) in LEVELS.iter().enumerate() {
            for (h, rgb) in HUES.iter().enumerate() {
                self.palette[32 + c * 24 + h] = rgb.map(|l| levels[l]);
            }
        }
        for entry in &mut self.palette[248..] {
            *entry = [0; 3];
        }
    }

    /// The colour a pixel value shows as XRGB8888, after the pixel mask. 6-bit
    /// components scale to 8 bits by repeating their top bits.
    pub fn xrgb(&self, pixel: u8) -> u32 {
        let [r, g, b] = self.palette[usize::from(pixel & self.pixel_mask)].map(|c| {
            if self.eight_bit {
                u32::from(c)
            } else {
                u32::from(c << 2 | c >> 4)
            }
        });
        r << 16 | g << 8 | b
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_256_palette_landmarks() {
        let mut dac = super::Dac::default();
        dac.load_default_256_palette();
        assert_eq!(dac.entry(15), [63, 63, 63]);
        assert_eq!(dac.entry(31), [63, 63, 63]);
        assert_eq!(dac.entry(32), [0, 0, 63], "first hue: blue");
        assert_eq!(dac.entry(40), [63, 0, 0], "ninth hue: red");
        assert_eq!(dac.entry(104), [0, 0, 28], "medium intensity starts at 104");
        assert_eq!(dac.entry(247), [11, 12, 16]);
        assert_eq!(dac.entry(255), [0, 0, 0]);
    }

    use super::*;

    #[test]
    fn write_then_read_back_auto_increments() {
        let mut d = Dac::default();
        d.set_write_index(0xff);
        for v in [0x3f, 0x20, 0xc1, 1, 2, 3] {
            d.write_data(v);
        }
        assert_eq!(d.write_index(), 1, "wrapped past 255 after two entries");
        assert_eq!(d.entry(0xff), [0x3f, 0x20, 0x01], "6-bit components");
        d.set_read_index(0xff);
        assert_eq!(d.state(), DAC_STATE_READ);
        let read: Vec<u8> = (0..6).map(|_| d.read_data()).collect();
        assert_eq!(read, [0x3f, 0x20, 0x01, 1, 2, 3]);
        d.set_write_index(7);
        assert_eq!(d.state(), DAC_STATE_WRITE);
    }

    #[test]
    fn colours_scale_and_pixel_mask_applies() {
        let mut d = Dac::default();
        d.set_entry(3, [0x3f, 0x00, 0x20]);
        d.set_entry(1, [0x01, 0x01, 0x01]);
        assert_eq!(d.xrgb(3), 0x00ff_0082);
        d.set_pixel_mask(0x01);
        assert_eq!(d.xrgb(3), 0x0004_0404, "index 3 & mask 1 = entry 1");
        d.set_pixel_mask(0xff);
        d.set_eight_bit(true);
        d.set_entry(3, [0xab, 0xcd, 0xef]);
        assert_eq!(d.xrgb(3), 0x00ab_cdef);
    }

    #[test]
    fn ega_palette() {
        let mut d = Dac::default();
        d.load_ega_palette();
        assert_eq!(d.entry(0x01), [0, 0, 0x2a], "blue");
        assert_eq!(d.entry(0x14), [0x2a, 0x15, 0], "brown");
        assert_eq!(d.entry(0x38), [0x15, 0x15, 0x15], "dark grey");
        assert_eq!(d.entry(0x3f), [0x3f, 0x3f, 0x3f], "white");
        assert_eq!(d.entry(0x40), [0, 0, 0], "only 64 entries");
    }
}
