//! Register sets of the standard IBM VGA modes the BIOS programs (values from the IBM
//! VGA BIOS parameter tables as listed by FreeVGA's "VGA Mode Register Values" and
//! Bochs/SeaBIOS's `vgatables`; they are hardware facts, typed in here). The VGA BIOS
//! (later) and tests use [`Vga::set_standard_mode`]; it programs the registers through
//! the same port paths a guest uses. Loading the font and the DAC palette is the BIOS's
//! job.

use super::Vga;

/// A standard mode this table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardMode {
    /// Mode 01h: 40x25 text, 9x16 cells, 360x400 (dot clock halved).
    Text40x25,
    /// Mode 03h: 80x25 text, 9x16 cells, 720x400.
    Text80x25,
    /// Mode 03h with an 8-line font: 80x50 text, 9x8 cells, 720x400.
    Text80x50,
    /// Mode 07h: 80x25 monochrome text at 0xB0000, CRTC at 0x3B4, 9x16 cells.
    MonoText80x25,
    /// Mode 0Dh: 320x200, 16 colours, planar (scan-doubled).
    Planar320x200x16,
    /// Mode 04h: 320x200, 4 colours, CGA-compatible (interleaved 2-bit pixels, odd and
    /// even lines 8 KiB apart).
    Cga320x200x4,
    /// Mode 12h: 640x480, 16 colours, planar.
    Planar640x480x16,
    /// Mode 13h: 320x200, 256 colours, chain-4.
    Chain4_320x200x256,
}

/// One mode's register values.
struct ModeRegisters {
    misc: u8,
    sequencer: [u8; 5],
    crtc: [u8; 25],
    graphics: [u8; 9],
    attribute: [u8; 21],
}

/// The 16-entry identity-ish palette of the colour text and 16-colour modes.
const TEXT_PALETTE: [u8; 16] =
    [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f];

const fn attribute(palette: [u8; 16], tail: [u8; 5]) -> [u8; 21] {
    let mut out = [0; 21];
    let mut i = 0;
    while i < 16 {
        out[i] = palette[i];
        i += 1;
    }
    while i < 21 {
        out[i] = tail[i - 16];
        i += 1;
    }
    out
}

const MODE_03: ModeRegisters = ModeRegisters {
    misc: 0x67,
    sequencer: [0x03, 0x00, 0x03, 0x00, 0x02],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
    ],
    graphics: [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff],
    attribute: attribute(TEXT_PALETTE, [0x0c, 0x00, 0x0f, 0x08, 0x00]),
};

const MODE_01: ModeRegisters = ModeRegisters {
    misc: 0x67,
    sequencer: [0x03, 0x08, 0x03, 0x00, 0x02],
    crtc: [
        0x2d, 0x27, 0x28, 0x90, 0x2b, 0xa0, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x14, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
    ],
    graphics: MODE_03.graphics,
    attribute: MODE_03.attribute,
};

const MODE_03_8X8: ModeRegisters = ModeRegisters {
    misc: 0x67,
    sequencer: MODE_03.sequencer,
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x47, 0x06, 0x07, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
    ],
    graphics: MODE_03.graphics,
    attribute: MODE_03.attribute,
};

const MODE_07: ModeRegisters = ModeRegisters {
    misc: 0x66,
    sequencer: MODE_03.sequencer,
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x28, 0x0f, 0x96, 0xb9, 0xa3, 0xff,
    ],
    graphics: [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0a, 0x0f, 0xff],
    attribute: attribute(
        [0x00, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x10, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18],
        [0x0e, 0x00, 0x0f, 0x08, 0x00],
    ),
};

const MODE_0D: ModeRegisters = ModeRegisters {
    misc: 0x63,
    sequencer: [0x03, 0x09, 0x0f, 0x00, 0x06],
    crtc: [
        0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x14, 0x00, 0x96, 0xb9, 0xe3, 0xff,
    ],
    graphics: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
    attribute: attribute(
        [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17],
        [0x01, 0x00, 0x0f, 0x00, 0x00],
    ),
};

const MODE_04: ModeRegisters = ModeRegisters {
    misc: 0x63,
    sequencer: [0x03, 0x09, 0x03, 0x00, 0x02],
    crtc: [
        0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x14, 0x00, 0x96, 0xb9, 0xa2, 0xff,
    ],
    graphics: [0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x00, 0xff],
    attribute: attribute(
        [0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17],
        [0x01, 0x00, 0x03, 0x00, 0x00],
    ),
};

const MODE_12: ModeRegisters = ModeRegisters {
    misc: 0xe3,
    sequencer: [0x03, 0x01, 0x0f, 0x00, 0x06],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x8c,
        0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff,
    ],
    graphics: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
    attribute: attribute(TEXT_PALETTE, [0x01, 0x00, 0x0f, 0x00, 0x00]),
};

const MODE_13: ModeRegisters = ModeRegisters {
    misc: 0x63,
    sequencer: [0x03, 0x01, 0x0f, 0x00, 0x0e],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
        0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff,
    ],
    graphics: [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff],
    attribute: attribute(
        [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f],
        [0x41, 0x00, 0x0f, 0x00, 0x00],
    ),
};

// Absolute ports used while programming a mode.
/// Attribute index/data.
const PORT_ATTRIBUTE: u16 = 0x3c0;
/// Miscellaneous output write.
const PORT_MISC_OUTPUT: u16 = 0x3c2;
/// Sequencer index (data follows).
const PORT_SEQUENCER: u16 = 0x3c4;
/// Graphics index (data follows).
const PORT_GRAPHICS: u16 = 0x3ce;
/// CRTC index in colour mode (data follows).
const PORT_CRTC: u16 = 0x3d4;
/// CRTC index in monochrome mode (data follows).
const PORT_MONO_CRTC: u16 = 0x3b4;
/// Input status 1 (colour; monochrome is 0x20 lower, like the CRTC).
const PORT_INPUT_STATUS_1: u16 = 0x3da;
/// Miscellaneous output bit 0: colour I/O addresses.
const MISC_COLOUR_IO: u8 = 0b0000_0001;
/// CR11 (its bit 7 protects CR00-CR07).
const CR_VERTICAL_RETRACE_END: u8 = 0x11;
/// Attribute index bit 5: hand the palette back to the display.
const ATTRIBUTE_PAS: u8 = 0x20;

/// A blank text cell: a space, light grey on black.
const BLANK_CELL: u32 = 0x0720;
/// Plane offsets of the 32 KiB text window at 0xB8000.
const TEXT_WINDOW_OFFSETS: usize = 0x8000;

impl Vga {
    /// What the VGA BIOS leaves after POST, for boards that start a guest without one
    /// (direct kernel boot with a VGA text console): mode 03h, the 8x16 font in
    /// character map 0, the EGA palette in DAC entries 0-63, the text window filled
    /// with grey-on-black spaces and the cursor at the top-left.
    pub fn init_text_console(&mut self) {
        self.set_standard_mode(StandardMode::Text80x25);
        self.load_font(0, &super::FONT_8X16);
        self.dac.load_ega_palette();
        for offset in (0..TEXT_WINDOW_OFFSETS).step_by(2) {
            self.vram.set_planes(offset, BLANK_CELL, 0b0011);
        }
        for (index, value) in [(0x0e, 0), (0x0f, 0)] {
            self.write_port(PORT_CRTC, index);
            self.write_port(PORT_CRTC + 1, value);
        }
    }

    /// Programs the registers of a standard mode (misc output, sequencer, CRTC,
    /// graphics controller, attribute controller; leaves PAS set so video shows).
    /// Disables any VBE mode first, as the VGA BIOS does.
    pub fn set_standard_mode(&mut self, mode: StandardMode) {
        let regs = match mode {
            StandardMode::Text40x25 => &MODE_01,
            StandardMode::Text80x25 => &MODE_03,
            StandardMode::Text80x50 => &MODE_03_8X8,
            StandardMode::MonoText80x25 => &MODE_07,
            StandardMode::Planar320x200x16 => &MODE_0D,
            StandardMode::Cga320x200x4 => &MODE_04,
            StandardMode::Planar640x480x16 => &MODE_12,
            StandardMode::Chain4_320x200x256 => &MODE_13,
        };
        self.set_vbe_index(super::vbe::VBE_DISPI_INDEX_ENABLE);
        self.vbe_write(0);
        self.write_port(PORT_MISC_OUTPUT, regs.misc);
        let (crtc, status) = if regs.misc & MISC_COLOUR_IO != 0 {
            (PORT_CRTC, PORT_INPUT_STATUS_1)
        } else {
            (PORT_MONO_CRTC, PORT_INPUT_STATUS_1 - 0x20)
        };
        for (i, &v) in regs.sequencer.iter().enumerate() {
            self.write_port(PORT_SEQUENCER, i as u8);
            self.write_port(PORT_SEQUENCER + 1, v);
        }
        self.write_port(crtc, CR_VERTICAL_RETRACE_END);
        self.write_port(crtc + 1, regs.crtc[usize::from(CR_VERTICAL_RETRACE_END)] & 0x7f);
        for (i, &v) in regs.crtc.iter().enumerate() {
            self.write_port(crtc, i as u8);
            self.write_port(crtc + 1, v);
        }
        for (i, &v) in regs.graphics.iter().enumerate() {
            self.write_port(PORT_GRAPHICS, i as u8);
            self.write_port(PORT_GRAPHICS + 1, v);
        }
        self.read_port(status);
        for (i, &v) in regs.attribute.iter().enumerate() {
            self.write_port(PORT_ATTRIBUTE, i as u8);
            self.write_port(PORT_ATTRIBUTE, v);
        }
        self.write_port(PORT_ATTRIBUTE, ATTRIBUTE_PAS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mode 07h: CRTC at 0x3B4, text at 0xB0000, attribute 0x01 underlined on line 15.
    #[test]
    fn monochrome_text() {
        let mut vga = Vga::new(256 << 10);
        vga.set_standard_mode(StandardMode::MonoText80x25);
        assert_eq!(vga.crtc().horizontal_display_chars(), 80, "programmed through 0x3B4");
        assert_eq!(vga.read_port(0x3d5), 0xff);
        vga.dac_mut().set_entry(8, [42, 42, 42]);
        vga.mem_write(0x1_0000, b'_');
        vga.mem_write(0x1_0001, 0x01);
        assert_eq!(vga.text_snapshot().unwrap().lines()[0], "_");
        let f = vga.render(8);
        assert_eq!((f.width, f.height), (720, 400));
        assert!((0..9).all(|x| f.pixel(x, 15) == Some(0xaa_aaaa)), "underline");
        assert_eq!(f.pixel(0, 14), Some(0));
    }

    /// Mode 0Dh: 40 character clocks of 8 pixels, 400 lines scan-doubled.
    #[test]
    fn planar_320x200() {
        let mut vga = Vga::new(256 << 10);
        vga.set_standard_mode(StandardMode::Planar320x200x16);
        vga.dac_mut().set_entry(0x17, [63, 0, 0]);
        vga.mem_write(199 * 40 + 39, 0x01);
        let f = vga.render(0);
        assert_eq!((f.width, f.height), (320, 200));
        assert_eq!(f.pixel(319, 199), Some(0xff_0000), "all four planes: colour 15 -> palette 0x17");
        assert_eq!(f.pixels.iter().filter(|&&p| p != 0).count(), 1);
    }

    #[test]
    fn text_console_after_init() {
        let mut vga = Vga::new(256 << 10);
        vga.init_text_console();
        let shot = vga.text_snapshot().unwrap();
        assert_eq!((shot.cols, shot.rows, shot.cursor), (80, 25, Some((0, 0))));
        assert!(shot.lines().iter().all(String::is_empty));
        assert_eq!(shot.cell(79, 24).map(|c| c.attribute), Some(0x07));
        vga.mem_write(0x1_8000 + 2 * 80, 0xdb);
        let f = vga.render(8);
        assert_eq!((f.width, f.height), (720, 400));
        assert_eq!(f.pixel(0, 16), Some(0xaa_aaaa), "full block in light grey (palette 7 -> DAC 7)");
        assert_eq!(f.pixel(0, 0), Some(0), "a space on black");
    }
}
