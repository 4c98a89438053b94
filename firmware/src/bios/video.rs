//! INT 10h: video services (IBM VGA BIOS functions 00h-1Ah) and VBE 2.0 (AX=4Fxxh) over
//! the board's VGA with the Bochs VBE extension.
//!
//! Text output writes the text window and programs the CRTC cursor through the same
//! memory and ports a guest uses; mode sets use the VGA's register tables
//! ([`StandardMode`]) and load fonts and palettes as the IBM BIOS does. In modes 12h and
//! 13h, teletype and character output draw the ROM font's glyphs (8x16 and 8x8) in the
//! given colour; other graphics modes only move the cursor.

use super::frame::Frame;
use super::{bda, read_u16, read_u8, rom, unsupported, write_u16, write_u8, Action, Bios};
use rx86_core::phys::PhysMemory;
use rx86_core::platform::Platform;
use rx86_devices::vga::{StandardMode, FONT_8X16, FONT_8X8};

/// CRTC index port of the colour modes.
const CRTC_COLOUR: u16 = 0x3d4;
/// Bochs VBE index/data ports.
const VBE_INDEX: u16 = 0x1ce;
const VBE_DATA: u16 = 0x1cf;
/// Bochs VBE DISPI registers.
const DISPI_XRES: u16 = 1;
const DISPI_YRES: u16 = 2;
const DISPI_BPP: u16 = 3;
const DISPI_ENABLE: u16 = 4;
const DISPI_BANK: u16 = 5;
const DISPI_VIRT_WIDTH: u16 = 6;
const DISPI_X_OFFSET: u16 = 8;
const DISPI_Y_OFFSET: u16 = 9;
/// DISPI_ENABLE bits: enabled, linear framebuffer, keep memory.
const DISPI_ENABLED: u16 = 0x01;
const DISPI_LFB_ENABLED: u16 = 0x40;
const DISPI_NOCLEARMEM: u16 = 0x80;
/// Where the BIOS keeps the current VBE mode number (an EBDA scratch word).
const EBDA_VBE_MODE: u64 = ((rom::EBDA_SEGMENT as u64) << 4) + 0x106;
/// VBE version reported: 2.0.
const VBE_VERSION: u16 = 0x0200;

/// A VBE mode the BIOS offers: number, width, height, bits per pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VbeModeInfo {
    /// VBE mode number.
    pub number: u16,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Bits per pixel (8, 16, 24 or 32).
    pub bpp: u8,
}

impl VbeModeInfo {
    /// Bytes per scan line.
    pub fn pitch(&self) -> u32 {
        u32::from(self.width) * u32::from(self.bpp).div_ceil(8)
    }
    /// Bytes of the whole frame.
    pub fn bytes(&self) -> u32 {
        self.pitch() * u32::from(self.height)
    }
}

/// The VBE modes (VESA-defined numbers where VESA defined them).
pub const VBE_MODES: [VbeModeInfo; 12] = [
    VbeModeInfo { number: 0x100, width: 640, height: 400, bpp: 8 },
    VbeModeInfo { number: 0x101, width: 640, height: 480, bpp: 8 },
    VbeModeInfo { number: 0x103, width: 800, height: 600, bpp: 8 },
    VbeModeInfo { number: 0x105, width: 1024, height: 768, bpp: 8 },
    VbeModeInfo { number: 0x111, width: 640, height: 480, bpp: 16 },
    VbeModeInfo { number: 0x114, width: 800, height: 600, bpp: 16 },
    VbeModeInfo { number: 0x117, width: 1024, height: 768, bpp: 16 },
    VbeModeInfo { number: 0x112, width: 640, height: 480, bpp: 32 },
    VbeModeInfo { number: 0x115, width: 800, height: 600, bpp: 32 },
    VbeModeInfo { number: 0x118, width: 1024, height: 768, bpp: 32 },
    VbeModeInfo { number: 0x11b, width: 1280, height: 1024, bpp: 32 },
    VbeModeInfo { number: 0x140, width: 1920, height: 1080, bpp: 32 },
];

/// The text-mode geometry the BDA describes.
struct Screen {
    mode: u8,
    columns: u16,
    rows: u16,
    page_size: u16,
}

impl Screen {
    fn read(mem: &PhysMemory) -> Screen {
        Screen {
            mode: read_u8(mem, bda::VIDEO_MODE),
            columns: read_u16(mem, bda::VIDEO_COLUMNS).max(1),
            rows: u16::from(read_u8(mem, bda::VIDEO_ROWS)) + 1,
            page_size: read_u16(mem, bda::VIDEO_PAGE_SIZE),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self.mode, 0..=3 | 7)
    }

    fn base(&self) -> u64 {
        if self.mode == 7 {
            0xb_0000
        } else {
            0xb_8000
        }
    }

    fn cell(&self, page: u8, col: u16, row: u16) -> u64 {
        self.base()
            + u64::from(page & 7) * u64::from(self.page_size)
            + 2 * (u64::from(row) * u64::from(self.columns) + u64::from(col))
    }
}

fn cursor(mem: &PhysMemory, page: u8) -> (u16, u16) {
    let at = bda::CURSOR_POS + 2 * u64::from(page & 7);
    (u16::from(read_u8(mem, at)), u16::from(read_u8(mem, at + 1)))
}

fn set_cursor(hw: &dyn Platform, page: u8, col: u16, row: u16) {
    let mem = hw.memory();
    let at = bda::CURSOR_POS + 2 * u64::from(page & 7);
    mem.write(at, &[col as u8, row as u8]);
    if page == read_u8(mem, bda::VIDEO_PAGE) {
        let s = Screen::read(mem);
        let pos = u32::from(page) * u32::from(s.page_size) / 2 + u32::from(row) * u32::from(s.columns) + u32::from(col);
        crtc_write(hw, 0x0e, (pos >> 8) as u8);
        crtc_write(hw, 0x0f, pos as u8);
    }
}

fn crtc_port(mem: &PhysMemory) -> u16 {
    match read_u16(mem, bda::CRTC_PORT) {
        0x3b4 => 0x3b4,
        _ => CRTC_COLOUR,
    }
}

fn crtc_write(hw: &dyn Platform, index: u8, value: u8) {
    let port = crtc_port(hw.memory());
    hw.io_write(port, 1, u32::from(index));
    hw.io_write(port + 1, 1, u32::from(value));
}

/// INT 10h.
pub fn int10(bios: &mut Bios, hw: &dyn Platform, f: &mut Frame) -> Action {
    let mem = hw.memory();
    match f.ah() {
        0x00 => set_mode(bios, hw, f.al() & 0x7f, f.al() & 0x80 == 0),
        0x01 => {
            mem.write(bda::CURSOR_SHAPE, &[f.cl(), f.ch()]);
            crtc_write(hw, 0x0a, f.ch());
            crtc_write(hw, 0x0b, f.cl());
        }
        0x02 => set_cursor(hw, f.bh(), u16::from(f.dl()), u16::from(f.dh())),
        0x03 => {
            let (col, row) = cursor(mem, f.bh());
            f.set_dl(col as u8);
            f.set_dh(row as u8);
            let shape = read_u16(mem, bda::CURSOR_SHAPE);
            f.set_ch((shape >> 8) as u8);
            f.set_cl(shape as u8);
        }
        0x05 => set_page(hw, f.al()),
        0x06 | 0x07 => {
            let s = Screen::read(mem);
            let (top, left) = (u16::from(f.ch()), u16::from(f.cl()));
            let bottom = u16::from(f.dh()).min(s.rows - 1);
            let right = u16::from(f.dl()).min(s.columns - 1);
            let page = read_u8(mem, bda::VIDEO_PAGE);
            scroll(mem, &s, page, (top, left, bottom, right), f.al(), f.bh(), f.ah() == 0x06);
        }
        0x08 => {
            let s = Screen::read(mem);
            let (col, row) = cursor(mem, f.bh());
            let mut cell = [0u8; 2];
            mem.read(s.cell(f.bh(), col, row), &mut cell);
            f.set_ax(u16::from_le_bytes(cell));
        }
        0x09 | 0x0a if !Screen::read(mem).is_text() => {
            let s = Screen::read(mem);
            let (col, row) = cursor(mem, f.bh());
            for i in 0..f.cx().min(s.columns.saturating_sub(col)) {
                draw_glyph(hw, s.mode, col + i, row, f.al(), f.bl());
            }
        }
        0x09 | 0x0a => {
            let s = Screen::read(mem);
            if s.is_text() {
                let (col, row) = cursor(mem, f.bh());
                let start = u32::from(row) * u32::from(s.columns) + u32::from(col);
                let end = (start + u32::from(f.cx())).min(u32::from(s.rows) * u32::from(s.columns));
                for pos in start..end {
                    let at = s.cell(f.bh(), (pos % u32::from(s.columns)) as u16, (pos / u32::from(s.columns)) as u16);
                    mem.write(at, &[f.al()]);
                    if f.ah() == 0x09 {
                        mem.write(at + 1, &[f.bl()]);
                    }
                }
            }
        }
        0x0e => teletype(hw, f.al(), None),
        0x0f => {
            f.set_al(read_u8(mem, bda::VIDEO_MODE) | (read_u8(mem, bda::VIDEO_OPTIONS) & 0x80));
            f.set_ah(read_u8(mem, bda::VIDEO_COLUMNS));
            f.set_bh(read_u8(mem, bda::VIDEO_PAGE));
        }
        0x10 => palette(hw, f),
        0x11 => font(bios, hw, f),
        0x12 => match f.bl() {
            0x10 => {
                f.set_bh(0);
                f.set_bl(3);
                f.set_cx(0x0009);
            }
            0x20 | 0x30..=0x36 => f.set_al(0x12),
            _ => unsupported("INT 10h AH=12h", f),
        },
        0x13 => write_string(hw, f),
        0x1a if f.al() == 0 => {
            f.set_al(0x1a);
            f.set_bx(0x0008);
        }
        0x4f => vbe(bios, hw, f),
        _ => unsupported("INT 10h", f),
    }
    Action::Return
}

/// Prints `ch` at the active page's cursor as INT 10h AH=0Eh does (BEL, BS, CR, LF
/// interpreted; the screen scrolls at the bottom). `attr` colours new cells.
pub fn teletype(hw: &dyn Platform, ch: u8, attr: Option<u8>) {
    let mem = hw.memory();
    let s = Screen::read(mem);
    let page = read_u8(mem, bda::VIDEO_PAGE);
    let (mut col, mut row) = cursor(mem, page);
    match ch {
        0x07 => {}
        0x08 => col = col.saturating_sub(1),
        b'\r' => col = 0,
        b'\n' => row += 1,
        _ => {
            if s.is_text() {
                let at = s.cell(page, col, row);
                mem.write(at, &[ch]);
                if let Some(a) = attr {
                    mem.write(at + 1, &[a]);
                }
            } else {
                draw_glyph(hw, s.mode, col, row, ch, attr.unwrap_or(0x0f));
            }
            col += 1;
        }
    }
    if col >= s.columns {
        col = 0;
        row += 1;
    }
    if row >= s.rows {
        if s.is_text() {
            let mut attr_byte = [0u8; 2];
            mem.read(s.cell(page, 0, s.rows - 1), &mut attr_byte);
            scroll(mem, &s, page, (0, 0, s.rows - 1, s.columns - 1), 1, attr_byte[1], true);
        }
        row = s.rows - 1;
    }
    set_cursor(hw, page, col, row);
}

/// Draws character `ch` at text cell (`col`, `row`) of graphics mode `mode` in colour
/// `colour` (modes 12h and 13h; the background is left as it is, as the IBM BIOS does
/// without the XOR bit).
fn draw_glyph(hw: &dyn Platform, mode: u8, col: u16, row: u16, ch: u8, colour: u8) {
    let mem = hw.memory();
    match mode {
        0x13 => {
            let glyph = &FONT_8X8[usize::from(ch)];
            for (y, &bits) in glyph.iter().enumerate() {
                let line = 0xa_0000 + (u64::from(row) * 8 + y as u64) * 320 + u64::from(col) * 8;
                for x in 0..8 {
                    if bits & (0x80 >> x) != 0 {
                        mem.write(line + x, &[colour]);
                    }
                }
            }
        }
        0x12 => {
            // Write mode 2 through the bit mask: each glyph row is one byte of 8 pixels.
            hw.io_write(0x3ce, 2, 0x0205);
            let glyph = &FONT_8X16[usize::from(ch)];
            for (y, &bits) in glyph.iter().enumerate() {
                let at = 0xa_0000 + (u64::from(row) * 16 + y as u64) * 80 + u64::from(col);
                hw.io_write(0x3ce, 2, 0x08 | (u32::from(bits) << 8));
                let mut latch = [0u8; 1];
                mem.read(at, &mut latch);
                mem.write(at, &[colour & 0x0f]);
            }
            hw.io_write(0x3ce, 2, 0xff08);
            hw.io_write(0x3ce, 2, 0x0005);
        }
        _ => {}
    }
}

/// Scrolls a window up (or down) by `lines` (0 = clear), filling with `attr` blanks.
fn scroll(mem: &PhysMemory, s: &Screen, page: u8, window: (u16, u16, u16, u16), lines: u8, attr: u8, up: bool) {
    let (top, left, bottom, right) = window;
    if !s.is_text() || top > bottom || left > right {
        return;
    }
    let height = bottom - top + 1;
    let lines = if lines == 0 || u16::from(lines) > height { height } else { u16::from(lines) };
    let width = usize::from(right - left + 1) * 2;
    let mut row_buf = vec![0u8; width];
    let blank: Vec<u8> = [b' ', attr].repeat(width / 2);
    let rows: Vec<u16> = if up { (top..=bottom).collect() } else { (top..=bottom).rev().collect() };
    for &row in &rows {
        let src = if up { row + lines } else { row.wrapping_sub(lines) };
        let inside = if up { src <= bottom } else { row >= top + lines };
        let dst = s.cell(page, left, row);
        if inside {
            mem.read(s.cell(page, left, src), &mut row_buf);
            mem.write(dst, &row_buf);
        } else {
            mem.write(dst, &blank);
        }
    }
}

fn set_page(hw: &dyn Platform, page: u8) {
    let mem = hw.memory();
    let page = page & 7;
    let s = Screen::read(mem);
    write_u8(mem, bda::VIDEO_PAGE, page);
    let start = u16::from(page) * s.page_size;
    write_u16(mem, bda::VIDEO_PAGE_START, start);
    crtc_write(hw, 0x0c, ((start / 2) >> 8) as u8);
    crtc_write(hw, 0x0d, (start / 2) as u8);
    let (col, row) = cursor(mem, page);
    set_cursor(hw, page, col, row);
}

/// BDA values of a standard mode: (VGA table, columns, rows, page size, char height).
fn mode_table(mode: u8) -> Option<(StandardMode, u16, u8, u16, u8)> {
    Some(match mode {
        0x00 | 0x01 => (StandardMode::Text40x25, 40, 25, 0x800, 16),
        0x02 | 0x03 => (StandardMode::Text80x25, 80, 25, 0x1000, 16),
        0x04 | 0x05 => (StandardMode::Cga320x200x4, 40, 25, 0x4000, 8),
        0x07 => (StandardMode::MonoText80x25, 80, 25, 0x1000, 16),
        0x0d => (StandardMode::Planar320x200x16, 40, 25, 0x2000, 8),
        0x12 => (StandardMode::Planar640x480x16, 80, 30, 0, 16),
        0x13 => (StandardMode::Chain4_320x200x256, 40, 25, 0, 8),
        _ => return None,
    })
}

/// AH=00h: sets a standard mode and records it in the BDA.
pub fn set_mode(bios: &Bios, hw: &dyn Platform, mode: u8, clear: bool) {
    let mem = hw.memory();
    let Some((table, columns, rows, page_size, char_height)) = mode_table(mode) else {
        log::warn!("BIOS: INT 10h set mode {mode:#04x}: mode not supported; mode unchanged");
        return;
    };
    if let Some(vga) = &bios.vga {
        let mut v = vga.lock().unwrap_or_else(|e| e.into_inner());
        v.set_standard_mode(table);
        match table {
            StandardMode::Chain4_320x200x256 => v.dac_mut().load_default_256_palette(),
            _ => v.dac_mut().load_ega_palette(),
        }
        if matches!(table, StandardMode::Text40x25 | StandardMode::Text80x25 | StandardMode::MonoText80x25) {
            v.load_font(0, &FONT_8X16);
        }
    }
    write_u8(mem, bda::VIDEO_MODE, mode);
    write_u16(mem, bda::VIDEO_COLUMNS, columns);
    write_u16(mem, bda::VIDEO_PAGE_SIZE, page_size);
    write_u16(mem, bda::VIDEO_PAGE_START, 0);
    mem.write(bda::CURSOR_POS, &[0; 16]);
    write_u8(mem, bda::VIDEO_PAGE, 0);
    write_u16(mem, bda::CRTC_PORT, if mode == 7 { 0x3b4 } else { CRTC_COLOUR });
    write_u8(mem, bda::VIDEO_ROWS, rows - 1);
    write_u16(mem, bda::CHAR_HEIGHT, u16::from(char_height));
    write_u8(mem, bda::VIDEO_OPTIONS, 0x60 | if clear { 0 } else { 0x80 });
    write_u16(mem, bda::CURSOR_SHAPE, 0x0d0e);
    if clear {
        clear_screen(mem, mode);
    }
    set_cursor(hw, 0, 0, 0);
}

fn clear_screen(mem: &PhysMemory, mode: u8) {
    match mode {
        0..=3 => mem.write(0xb_8000, &[b' ', 0x07].repeat(0x4000)),
        7 => mem.write(0xb_0000, &[b' ', 0x07].repeat(0x4000)),
        0x04 | 0x05 => mem.write(0xb_8000, &[0u8; 0x8000]),
        // Planar and chain-4 modes: with the mode's default map mask (all planes) a
        // write-mode-0 store of 0 clears every plane.
        _ => mem.write(0xa_0000, &[0u8; 0x1_0000]),
    }
}

/// AH=13h: write string at DH,DL from ES:BP (AL bit 0: move cursor, bit 1: string
/// holds char/attribute pairs).
fn write_string(hw: &dyn Platform, f: &Frame) {
    let mem = hw.memory();
    let page = f.bh();
    let (saved_col, saved_row) = cursor(mem, page);
    set_cursor(hw, page, u16::from(f.dl()), u16::from(f.dh()));
    let pairs = f.al() & 2 != 0;
    let len = usize::from(f.cx()) * if pairs { 2 } else { 1 };
    let mut text = vec![0u8; len];
    mem.read(Frame::linear(f.es, f.ebp as u16), &mut text);
    if pairs {
        for pair in text.chunks_exact(2) {
            teletype(hw, pair[0], Some(pair[1]));
        }
    } else {
        for &c in &text {
            teletype(hw, c, Some(f.bl()));
        }
    }
    if f.al() & 1 == 0 {
        set_cursor(hw, page, saved_col, saved_row);
    }
}

/// AH=10h: palette registers and the DAC.
fn palette(hw: &dyn Platform, f: &mut Frame) {
    let mem = hw.memory();
    let attr_write = |index: u8, value: u8| {
        hw.io_read(0x3da, 1);
        hw.io_write(0x3c0, 1, u32::from(index));
        hw.io_write(0x3c0, 1, u32::from(value));
        hw.io_write(0x3c0, 1, 0x20);
    };
    match f.al() {
        0x00 if f.bl() < 0x10 => attr_write(f.bl(), f.bh()),
        0x01 => attr_write(0x11, f.bh()),
        0x02 => {
            let mut regs = [0u8; 17];
            mem.read(Frame::linear(f.es, f.dx()), &mut regs);
            for (i, &v) in regs[..16].iter().enumerate() {
                attr_write(i as u8, v);
            }
            attr_write(0x11, regs[16]);
        }
        0x03 => {
            hw.io_read(0x3da, 1);
            hw.io_write(0x3c0, 1, 0x10);
            let mode = hw.io_read(0x3c1, 1) as u8;
            let mode = if f.bl() == 0 { mode & !0x08 } else { mode | 0x08 };
            attr_write(0x10, mode);
        }
        0x10 => {
            hw.io_write(0x3c8, 1, u32::from(f.bl()));
            for c in [f.dh(), f.ch(), f.cl()] {
                hw.io_write(0x3c9, 1, u32::from(c));
            }
        }
        0x12 => {
            let count = usize::from(f.cx()).min(256);
            let mut rgb = vec![0u8; count * 3];
            mem.read(Frame::linear(f.es, f.dx()), &mut rgb);
            hw.io_write(0x3c8, 1, u32::from(f.bl()));
            for c in rgb {
                hw.io_write(0x3c9, 1, u32::from(c));
            }
        }
        0x15 => {
            hw.io_write(0x3c7, 1, u32::from(f.bl()));
            let rgb: Vec<u8> = (0..3).map(|_| hw.io_read(0x3c9, 1) as u8).collect();
            f.set_dh(rgb[0]);
            f.set_ch(rgb[1]);
            f.set_cl(rgb[2]);
        }
        0x17 => {
            let count = usize::from(f.cx()).min(256);
            hw.io_write(0x3c7, 1, u32::from(f.bl()));
            let rgb: Vec<u8> = (0..count * 3).map(|_| hw.io_read(0x3c9, 1) as u8).collect();
            mem.write(Frame::linear(f.es, f.dx()), &rgb);
        }
        _ => unsupported("INT 10h AH=10h", f),
    }
}

/// AH=11h: character generator.
fn font(bios: &Bios, hw: &dyn Platform, f: &mut Frame) {
    let mem = hw.memory();
    let vga = bios.vga.as_ref();
    match f.al() {
        0x00 | 0x10 => {
            let height = usize::from(f.bh());
            let count = usize::from(f.cx());
            let mut data = vec![0u8; height * count];
            mem.read(Frame::linear(f.es, f.ebp as u16), &mut data);
            if let Some(v) = vga {
                v.lock().unwrap_or_else(|e| e.into_inner()).load_glyphs(f.bl() & 7, usize::from(f.dx()), height, &data);
            }
        }
        0x01 | 0x11 | 0x04 | 0x14 => {
            if let Some(v) = vga {
                v.lock().unwrap_or_else(|e| e.into_inner()).load_font(f.bl() & 7, &FONT_8X16);
            }
        }
        0x02 | 0x12 => {
            if let Some(v) = vga {
                let mut v = v.lock().unwrap_or_else(|e| e.into_inner());
                v.set_standard_mode(StandardMode::Text80x50);
                v.load_font(f.bl() & 7, &FONT_8X8);
            }
            write_u8(mem, bda::VIDEO_ROWS, 49);
            write_u16(mem, bda::CHAR_HEIGHT, 8);
            write_u16(mem, bda::VIDEO_PAGE_SIZE, 0x2000);
        }
        0x03 => {
            hw.io_write(0x3c4, 1, 3);
            hw.io_write(0x3c5, 1, u32::from(f.bl()));
        }
        0x30 => {
            let (offset, height) = match f.bh() {
                0x01 | 0x03 => (rom::FONT_8X8_OFFSET, 8),
                0x04 => (rom::FONT_8X8_OFFSET + 128 * 8, 8),
                0x00 => (read_u16(mem, 0x1f * 4), 8),
                _ => (rom::FONT_8X16_OFFSET, 16),
            };
            f.es = rom::ROM_SEGMENT;
            f.ebp = (f.ebp & !0xffff) | u32::from(offset);
            f.set_cx(read_u16(mem, bda::CHAR_HEIGHT).max(height));
            f.set_dl(read_u8(mem, bda::VIDEO_ROWS));
        }
        _ => unsupported("INT 10h AH=11h", f),
    }
}

fn vbe_write(hw: &dyn Platform, index: u16, value: u16) {
    hw.io_write(VBE_INDEX, 2, u32::from(index));
    hw.io_write(VBE_DATA, 2, u32::from(value));
}

fn vbe_read(hw: &dyn Platform, index: u16) -> u16 {
    hw.io_write(VBE_INDEX, 2, u32::from(index));
    hw.io_read(VBE_DATA, 2) as u16
}

/// The VBE modes that fit in the VGA's memory.
fn available_modes(bios: &Bios) -> Vec<VbeModeInfo> {
    let vram = bios.vga.as_ref().map_or(0, |v| v.lock().unwrap_or_else(|e| e.into_inner()).vram_size());
    VBE_MODES.iter().copied().filter(|m| m.bytes() as usize <= vram).collect()
}

/// AX=4Fxxh: VBE 2.0. AX=004Fh on success.
fn vbe(bios: &Bios, hw: &dyn Platform, f: &mut Frame) {
    let mem = hw.memory();
    let modes = available_modes(bios);
    if bios.vga.is_none() {
        f.set_ax(0x014f);
        return;
    }
    let status: u8 = match f.al() {
        0x00 => {
            let buf = Frame::linear(f.es, f.di());
            let mut info = [0u8; 512];
            let mut sig = [0u8; 4];
            mem.read(buf, &mut sig);
            let v2 = &sig == b"VBE2";
            info[0..4].copy_from_slice(b"VESA");
            info[4..6].copy_from_slice(&VBE_VERSION.to_le_bytes());
            info[6..8].copy_from_slice(&rom::VBE_OEM_STRING_OFFSET.to_le_bytes());
            info[8..10].copy_from_slice(&rom::ROM_SEGMENT.to_le_bytes());
            // Capabilities: DAC switchable to 8 bits.
            info[10] = 1;
            // The mode list lives in the block's reserved area (offset 34).
            info[14..16].copy_from_slice(&(f.di().wrapping_add(34)).to_le_bytes());
            info[16..18].copy_from_slice(&f.es.to_le_bytes());
            let vram = bios.vga.as_ref().map_or(0, |v| v.lock().unwrap_or_else(|e| e.into_inner()).vram_size());
            info[18..20].copy_from_slice(&((vram >> 16) as u16).to_le_bytes());
            let mut at = 34;
            for m in &modes {
                info[at..at + 2].copy_from_slice(&m.number.to_le_bytes());
                at += 2;
            }
            info[at..at + 2].copy_from_slice(&0xffffu16.to_le_bytes());
            mem.write(buf, &info[..if v2 { 512 } else { 256 }]);
            0
        }
        0x01 => match modes.iter().find(|m| m.number == f.cx() & 0x1ff) {
            Some(m) => {
                mem.write(Frame::linear(f.es, f.di()), &mode_info_block(m, bios.lfb_address));
                0
            }
            None => 1,
        },
        0x02 => {
            let bx = f.bx();
            let number = bx & 0x1ff;
            if number < 0x100 {
                set_mode(bios, hw, number as u8, bx & 0x8000 == 0);
                0
            } else if let Some(m) = modes.iter().find(|m| m.number == number) {
                vbe_write(hw, DISPI_ENABLE, 0);
                vbe_write(hw, DISPI_BPP, u16::from(m.bpp));
                vbe_write(hw, DISPI_XRES, m.width);
                vbe_write(hw, DISPI_YRES, m.height);
                vbe_write(hw, DISPI_BANK, 0);
                let mut enable = DISPI_ENABLED;
                if bx & 0x4000 != 0 {
                    enable |= DISPI_LFB_ENABLED;
                }
                if bx & 0x8000 != 0 {
                    enable |= DISPI_NOCLEARMEM;
                }
                vbe_write(hw, DISPI_ENABLE, enable);
                write_u16(mem, EBDA_VBE_MODE, bx);
                0
            } else {
                log::warn!("BIOS: VBE set mode {bx:#x}: no such mode (or too large for video memory)");
                1
            }
        }
        0x03 => {
            let enabled = vbe_read(hw, DISPI_ENABLE) & DISPI_ENABLED != 0;
            let current = if enabled { read_u16(mem, EBDA_VBE_MODE) } else { u16::from(read_u8(mem, bda::VIDEO_MODE)) };
            f.set_bx(current);
            0
        }
        0x05 if f.bh() == 0 => {
            vbe_write(hw, DISPI_BANK, f.dx());
            0
        }
        0x05 if f.bh() == 1 => {
            f.set_dx(vbe_read(hw, DISPI_BANK));
            0
        }
        0x06 if f.bl() == 1 => {
            let width = vbe_read(hw, DISPI_VIRT_WIDTH);
            let bpp = vbe_read(hw, DISPI_BPP).max(8);
            f.set_bx(width * bpp.div_ceil(8));
            f.set_cx(width);
            f.set_dx(vbe_read(hw, DISPI_YRES));
            0
        }
        0x07 if f.bl() == 0 || f.bl() == 0x80 => {
            vbe_write(hw, DISPI_X_OFFSET, f.cx());
            vbe_write(hw, DISPI_Y_OFFSET, f.dx());
            0
        }
        0x07 if f.bl() == 1 => {
            f.set_cx(vbe_read(hw, DISPI_X_OFFSET));
            f.set_dx(vbe_read(hw, DISPI_Y_OFFSET));
            0
        }
        0x08 => {
            f.set_bh(6);
            0
        }
        _ => {
            unsupported("VBE", f);
            1
        }
    };
    f.set_al(0x4f);
    f.set_ah(status);
}

/// The 256-byte VBE ModeInfoBlock of `m`.
pub fn mode_info_block(m: &VbeModeInfo, lfb: Option<u64>) -> [u8; 256] {
    let mut b = [0u8; 256];
    // Supported, optional info, colour, graphics, linear framebuffer available.
    let attributes: u16 = 0x0001 | 0x0002 | 0x0008 | 0x0010 | if lfb.is_some() { 0x0080 } else { 0 };
    b[0..2].copy_from_slice(&attributes.to_le_bytes());
    b[2] = 0x07;
    b[4..6].copy_from_slice(&64u16.to_le_bytes());
    b[6..8].copy_from_slice(&64u16.to_le_bytes());
    b[8..10].copy_from_slice(&0xa000u16.to_le_bytes());
    b[16..18].copy_from_slice(&(m.pitch() as u16).to_le_bytes());
    b[18..20].copy_from_slice(&m.width.to_le_bytes());
    b[20..22].copy_from_slice(&m.height.to_le_bytes());
    b[22] = 8;
    b[23] = 16;
    b[24] = 1;
    b[25] = m.bpp;
    b[26] = m.bytes().div_ceil(0x1_0000) as u8;
    b[27] = if m.bpp == 8 { 4 } else { 6 };
    b[29] = 0;
    b[30] = 1;
    let masks: [u8; 8] = match m.bpp {
        16 => [5, 11, 6, 5, 5, 0, 0, 0],
        24 | 32 => [8, 16, 8, 8, 8, 0, if m.bpp == 32 { 8 } else { 0 }, 24],
        _ => [0; 8],
    };
    b[31..39].copy_from_slice(&masks);
    b[40..44].copy_from_slice(&(lfb.unwrap_or(0) as u32).to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_info_describes_a_32bpp_linear_mode() {
        let m = VBE_MODES.iter().find(|m| m.number == 0x118).unwrap();
        let b = mode_info_block(m, Some(0xfd00_0000));
        assert_eq!(u16::from_le_bytes([b[0], b[1]]) & 0x99, 0x99);
        assert_eq!(u16::from_le_bytes([b[16], b[17]]), 4096);
        assert_eq!((u16::from_le_bytes([b[18], b[19]]), u16::from_le_bytes([b[20], b[21]])), (1024, 768));
        assert_eq!(b[25], 32);
        assert_eq!(b[27], 6, "direct colour");
        assert_eq!((b[31], b[32]), (8, 16), "red mask size and position");
        assert_eq!(u32::from_le_bytes([b[40], b[41], b[42], b[43]]), 0xfd00_0000);
        let no_lfb = mode_info_block(m, None);
        assert_eq!(no_lfb[0] & 0x80, 0);
    }

    #[test]
    fn every_offered_mode_has_a_distinct_number() {
        let mut numbers: Vec<u16> = VBE_MODES.iter().map(|m| m.number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), VBE_MODES.len());
    }
}

#[cfg(test)]
mod teletype_tests {
    use super::*;
    use rx86_core::platform::BasicPlatform;

    /// A platform whose BDA says mode 03h (80x25) with the cursor at the top left.
    fn text_mode() -> BasicPlatform {
        let p = BasicPlatform::new(2 << 20).unwrap();
        let mem = &p.memory;
        write_u8(mem, bda::VIDEO_MODE, 3);
        write_u16(mem, bda::VIDEO_COLUMNS, 80);
        write_u8(mem, bda::VIDEO_ROWS, 24);
        write_u16(mem, bda::VIDEO_PAGE_SIZE, 0x1000);
        write_u16(mem, bda::CRTC_PORT, CRTC_COLOUR);
        p
    }

    fn cell(p: &BasicPlatform, col: u64, row: u64) -> (u8, u8) {
        let mut b = [0u8; 2];
        p.memory.read(0xb_8000 + 2 * (row * 80 + col), &mut b);
        (b[0], b[1])
    }

    #[test]
    fn teletype_writes_cells_and_handles_control_characters() {
        let p = text_mode();
        for &c in b"AB\x08C\r\nD" {
            teletype(&p, c, Some(0x1f));
        }
        assert_eq!(cell(&p, 0, 0), (b'A', 0x1f));
        assert_eq!(cell(&p, 1, 0), (b'C', 0x1f), "backspace moved back over B");
        assert_eq!(cell(&p, 0, 1), (b'D', 0x1f));
        assert_eq!(cursor(&p.memory, 0), (1, 1));
    }

    #[test]
    fn the_last_line_scrolls_the_screen_up() {
        let p = text_mode();
        teletype(&p, b'X', Some(7));
        set_cursor(&p, 0, 79, 24);
        teletype(&p, b'Y', Some(7));
        assert_eq!(cursor(&p.memory, 0), (0, 24), "wrapped to a new last line");
        assert_eq!(cell(&p, 79, 23), (b'Y', 7), "the old last line moved up");
        assert_ne!(cell(&p, 0, 0).0, b'X', "the first line scrolled away");
        assert_eq!(cell(&p, 0, 24).0, b' ', "a blank new line");
    }
}
