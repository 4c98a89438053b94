//! Renders what the VGA shows into an XRGB8888 frame (`0x00RRGGBB` per pixel): text
//! modes with the font from plane 2, 16-colour planar modes, CGA-compatible 4-colour
//! modes, 256-colour modes (chain-4 mode 13h and unchained "mode X"), and VBE modes of
//! 4, 8, 15, 16, 24 and 32 bpp.
//!
//! Scan-out follows FreeVGA's "CRTC Operation" and "Attribute Controller" pages: the
//! CRTC's memory address counter (start address, offset register, byte/word/double-word
//! mode, line compare, CR17's MA13/MA14 row-scan substitution) picks plane offsets;
//! the attribute controller turns 4-bit colours into DAC indices; the DAC gives RGB.
//!
//! Frame size is the logical resolution: dots per line (9-dot cells included, doubled
//! when the dot clock is halved in text modes) by scan lines with scan doubling and
//! repeated character-row lines folded (mode 13h is 320x200, mode 12h 640x480, 80x25
//! text 720x400). Both honour the line-compare split and horizontal pixel panning
//! (AR13; reset below the split when AR10 bit 5 says so); text modes also honour the
//! preset row scan (CR08) and find the cursor by address, as the CRTC does. Not
//! modelled: the border (overscan) area.
//!
//! Blinking: `frame_count` counts vertical refreshes; as on the IBM VGA the cursor
//! toggles every 8 frames and blinking characters every 16.

use super::text::{TextGeometry, PLANE_WRAP};
use super::vbe::VbeMode;
use super::Vga;

/// The cursor is visible while this bit of the frame counter is clear.
const CURSOR_BLINK_BIT: u64 = 1 << 3;
/// Blinking characters are visible while this bit of the frame counter is clear.
const CHARACTER_BLINK_BIT: u64 = 1 << 4;
/// Bytes per glyph in a plane-2 character map.
const GLYPH_BYTES: usize = 32;
/// CR17 bits 0-1: MA13/MA14 come from the address counter (not row scan bits 0/1).
const CR17_MAP_MA13_MA14: u8 = 0b0000_0011;
/// AR10 bit 1: monochrome emulation (attributes 0x01/0x09 underline).
const AR10_MONOCHROME: u8 = 0b0000_0010;

/// A rendered frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` pixels, row by row, `0x00RRGGBB`.
    pub pixels: Vec<u32>,
}

impl Frame {
    fn reset(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.pixels.clear();
        self.pixels.resize(width * height, 0);
    }

    /// The pixel at `(x, y)`, if inside.
    pub fn pixel(&self, x: usize, y: usize) -> Option<u32> {
        (x < self.width).then(|| self.pixels.get(y * self.width + x).copied()).flatten()
    }
}

/// Scales a 5-bit colour component to 8 bits.
fn scale5(c: u32) -> u32 {
    (c << 3) | (c >> 2)
}

/// Scales a 6-bit colour component to 8 bits.
fn scale6(c: u32) -> u32 {
    (c << 2) | (c >> 4)
}

impl Vga {
    /// Renders the current screen into a new frame; see [`Vga::render_into`].
    pub fn render(&self, frame_count: u64) -> Frame {
        let mut frame = Frame::default();
        self.render_into(&mut frame, frame_count);
        frame
    }

    /// Renders the current screen into `frame` (reusing its allocation). A screen the
    /// sequencer or the attribute controller's PAS bit blanks renders black at the
    /// mode's size.
    pub fn render_into(&self, frame: &mut Frame, frame_count: u64) {
        if let Some(mode) = self.vbe.mode() {
            self.render_vbe(frame, mode);
            return;
        }
        if self.in_text_mode() {
            self.render_text(frame, frame_count);
        } else {
            self.render_graphics(frame);
        }
        if self.sequencer.screen_off() || !self.attribute.video_enabled() {
            frame.pixels.fill(0);
        }
    }

    fn colour(&self, colour4: u8) -> u32 {
        self.dac.xrgb(self.attribute.dac_index(colour4))
    }

    fn render_text(&self, frame: &mut Frame, frame_count: u64) {
        let g: TextGeometry = self.text_geometry();
        let dots = self.sequencer.dots_per_char() as usize;
        let widen = if self.sequencer.dot_clock_half() { 2 } else { 1 };
        let cell_width = dots * widen;
        let (width, height) = (g.cols * cell_width, g.rows * g.char_height);
        frame.reset(width, height);
        let palette: Vec<u32> = (0..16).map(|c| self.colour(c)).collect();
        let (map_a, map_b) = self.sequencer.character_map_offsets();
        let shift = self.crtc.address_mode().shift();
        let cursor_offset = (self.crtc.cursor_scan_lines().is_some() && frame_count & CURSOR_BLINK_BIT == 0)
            .then(|| ((self.crtc.cursor_location() as usize) << shift) & PLANE_WRAP);
        let cursor_lines = self.crtc.cursor_scan_lines().unwrap_or((1, 0));
        let blink_enabled = self.attribute.blink_enabled();
        let blink_hidden = frame_count & CHARACTER_BLINK_BIT != 0;
        let underline = (self.attribute.get(super::attribute::AR_MODE_CONTROL) & AR10_MONOCHROME != 0)
            .then(|| self.crtc.underline_location() as usize);
        let panning = self.attribute.horizontal_panning() as usize;
        let pan = widen
            * if dots == 9 {
                if panning < 8 {
                    panning + 1
                } else {
                    0
                }
            } else {
                panning & 7
            };
        let split_y = (self.crtc.line_compare() as usize + 1).div_ceil(if self.crtc.scan_doubling() { 2 } else { 1 });
        let preset = self.crtc.preset_row_scan() as usize;
        let mut line_pixels = vec![0; width + cell_width];
        for y in 0..height {
            let (scan, start, pan) = if y >= split_y {
                (y - split_y, 0, if self.attribute.panning_reset_at_split() { 0 } else { pan })
            } else {
                (y + preset, g.start, pan)
            };
            let (row, line) = (scan / g.char_height, scan % g.char_height);
            for col in 0..=g.cols {
                let offset = (start + row * g.pitch + col * g.cell_step) & PLANE_WRAP;
                let code = self.vram.plane_byte(0, offset);
                let attr = self.vram.plane_byte(1, offset);
                let mut fg = attr & 0x0f;
                let mut bg = attr >> 4;
                if blink_enabled {
                    bg &= 0x07;
                    if attr & 0x80 != 0 && blink_hidden {
                        fg = bg;
                    }
                }
                let font = if attr & 0x08 != 0 { map_a } else { map_b } + usize::from(code) * GLYPH_BYTES;
                let glyph = self.vram.plane_byte(2, font + line);
                let mut bits = u16::from(glyph) << 1;
                if dots == 9 && self.attribute.line_graphics() && (0xc0..=0xdf).contains(&code) {
                    bits |= u16::from(glyph & 1);
                }
                let solid = (cursor_offset == Some(offset)
                    && (cursor_lines.0..=cursor_lines.1).contains(&(line as u32)))
                    || (underline == Some(line) && attr & 0x77 == 0x01);
                let cell = &mut line_pixels[col * cell_width..(col + 1) * cell_width];
                for (dot, pixels) in cell.chunks_exact_mut(widen).enumerate() {
                    let on = solid || bits & (0x100 >> dot) != 0;
                    pixels.fill(palette[usize::from(if on { fg } else { bg })]);
                }
            }
            frame.pixels[y * width..(y + 1) * width].copy_from_slice(&line_pixels[pan..pan + width]);
        }
    }

    fn render_graphics(&self, frame: &mut Frame) {
        let crtc = &self.crtc;
        let chars = crtc.horizontal_display_chars() as usize;
        let shift = crtc.address_mode().shift();
        let eight_bit = self.graphics.shift_256() || self.attribute.eight_bit_colour();
        let width = if eight_bit { chars * 4 } else { chars * 8 };
        let lines = crtc.vertical_display_lines() as usize / if crtc.scan_doubling() { 2 } else { 1 };
        let row_scan_lines = crtc.scan_lines_per_row() as usize;
        let substitution = crtc.get(super::crtc::CR_MODE_CONTROL) & CR17_MAP_MA13_MA14 != CR17_MAP_MA13_MA14;
        let (height, lines_per_y) = if substitution { (lines, 1) } else { (lines / row_scan_lines, row_scan_lines) };
        frame.reset(width, height);
        let physical_per_y = lines_per_y * if crtc.scan_doubling() { 2 } else { 1 };
        let split_y = (crtc.line_compare() as usize + 1).div_ceil(physical_per_y);
        let pitch = crtc.line_pitch() as usize;
        let start = (crtc.start_address() as usize) << shift;
        let mode17 = crtc.get(super::crtc::CR_MODE_CONTROL);
        let palette: Vec<u32> = (0..16).map(|c| self.colour(c)).collect();
        let panning = self.attribute.horizontal_panning() as usize & 0b111;
        let pan = if eight_bit { panning / 2 } else { panning };
        let mut line = vec![0; width + if eight_bit { 4 } else { 8 }];
        for y in 0..height {
            let (y_in_area, area_start) = if y >= split_y { (y - split_y, 0) } else { (y, start) };
            let (row, row_scan) =
                if substitution { (y_in_area / row_scan_lines, y_in_area % row_scan_lines) } else { (y_in_area, 0) };
            let line_base = area_start + row * pitch;
            let address = |char_clock: usize| {
                let mut offset = (line_base + (char_clock << shift)) & PLANE_WRAP;
                if mode17 & 0b01 == 0 {
                    offset = (offset & !(1 << 13)) | ((row_scan & 1) << 13);
                }
                if mode17 & 0b10 == 0 {
                    offset = (offset & !(1 << 14)) | (((row_scan >> 1) & 1) << 14);
                }
                offset
            };
            let pixels_per_clock = if eight_bit { 4 } else { 8 };
            for c in 0..=chars {
                let planes = self.vram.planes(address(c)).to_le_bytes();
                let out = &mut line[c * pixels_per_clock..(c + 1) * pixels_per_clock];
                if eight_bit {
                    for (pixel, &byte) in out.iter_mut().zip(&planes) {
                        *pixel = self.dac.xrgb(byte);
                    }
                } else if self.graphics.shift_interleave() {
                    for (i, pixel) in out.iter_mut().enumerate() {
                        let byte = planes[i / 4];
                        *pixel = palette[usize::from((byte >> (6 - 2 * (i % 4))) & 0b11)];
                    }
                } else {
                    for (bit, pixel) in out.iter_mut().enumerate() {
                        let colour = (0..4).fold(0, |acc, p| acc | ((planes[p] >> (7 - bit)) & 1) << p);
                        *pixel = palette[usize::from(colour)];
                    }
                }
            }
            let pan = if y >= split_y && self.attribute.panning_reset_at_split() { 0 } else { pan };
            frame.pixels[y * width..(y + 1) * width].copy_from_slice(&line[pan..pan + width]);
        }
    }

    fn render_vbe(&self, frame: &mut Frame, mode: VbeMode) {
        let (width, height) = (mode.width as usize, mode.height as usize);
        frame.reset(width, height);
        let byte = |addr: usize| u32::from(self.vram.byte(addr));
        let palette: Vec<u32> = (0..16).map(|c| self.colour(c)).collect();
        for y in 0..height {
            let line = mode.start + y * mode.stride;
            let out = &mut frame.pixels[y * width..(y + 1) * width];
            if let Some(src) = self.vram.as_bytes().get(line..line + 4 * width).filter(|_| mode.bpp == 32) {
                for (pixel, bgrx) in out.iter_mut().zip(src.chunks_exact(4)) {
                    *pixel = u32::from_le_bytes([bgrx[0], bgrx[1], bgrx[2], 0]);
                }
                continue;
            }
            for (x, pixel) in out.iter_mut().enumerate() {
                *pixel = match mode.bpp {
                    4 => {
                        let offset = line / 4 + x / 8;
                        let colour =
                            (0..4).fold(0, |acc, p| acc | ((self.vram.plane_byte(p, offset) >> (7 - x % 8)) & 1) << p);
                        palette[usize::from(colour)]
                    }
                    8 => self.dac.xrgb(self.vram.byte(line + x)),
                    15 | 16 => {
                        let v = byte(line + 2 * x) | byte(line + 2 * x + 1) << 8;
                        if mode.bpp == 15 {
                            scale5((v >> 10) & 31) << 16 | scale5((v >> 5) & 31) << 8 | scale5(v & 31)
                        } else {
                            scale5(v >> 11) << 16 | scale6((v >> 5) & 63) << 8 | scale5(v & 31)
                        }
                    }
                    24 => byte(line + 3 * x + 2) << 16 | byte(line + 3 * x + 1) << 8 | byte(line + 3 * x),
                    _ => byte(line + 4 * x + 2) << 16 | byte(line + 4 * x + 1) << 8 | byte(line + 4 * x),
                };
            }
        }
    }
}
