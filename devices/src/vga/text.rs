//! Text-mode geometry and a character snapshot of the screen for tests and the
//! frontend: characters from plane 0, attributes from plane 1 (odd/even layout), code
//! page 437 translated to Unicode.

use super::Vga;

/// Plane offsets wrap at the 64 KiB of a VGA plane (the CRTC address counter is 16 bits).
pub(super) const PLANE_WRAP: usize = 0xffff;

/// Code page 437 characters 0x80-0xFF.
const CP437_HIGH: &str = concat!(
    "ÇüéâäàåçêëèïîìÄÅ",
    "ÉæÆôöòûùÿÖÜ¢£¥₧ƒ",
    "áíóúñÑªº¿⌐¬½¼¡«»",
    "░▒▓│┤╡╢╖╕╣║╗╝╜╛┐",
    "└┴┬├─┼╞╟╚╔╩╦╠═╬╧",
    "╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀",
    "αßΓπΣσµτΦΘΩδ∞φε∩",
    "≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}",
);
/// Code page 437 characters 0x01-0x1F (0x00 shows as a space).
const CP437_LOW: &str = "☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼";

/// The Unicode character code page 437 shows for `code` (0x00 is a space).
pub fn cp437_to_char(code: u8) -> char {
    match code {
        0 => ' ',
        0x01..=0x1f => CP437_LOW.chars().nth(usize::from(code) - 1).unwrap_or('?'),
        0x7f => '⌂',
        0x20..=0x7e => char::from(code),
        _ => CP437_HIGH.chars().nth(usize::from(code) - 0x80).unwrap_or('?'),
    }
}

/// One character cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextCell {
    /// The character code (code page 437).
    pub code: u8,
    /// The character as Unicode.
    pub ch: char,
    /// The attribute byte (foreground bits 0-3, background 4-6, blink/bright 7).
    pub attribute: u8,
}

/// A text screen: rows of cells and the cursor position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextScreen {
    /// Columns.
    pub cols: usize,
    /// Rows.
    pub rows: usize,
    /// `rows * cols` cells, row by row.
    pub cells: Vec<TextCell>,
    /// Cursor `(column, row)` when enabled and on screen.
    pub cursor: Option<(usize, usize)>,
}

impl TextScreen {
    /// Row `row` as a string (trailing spaces kept), empty past the last row.
    pub fn line(&self, row: usize) -> String {
        self.cells
            .iter()
            .skip(row * self.cols)
            .take(if row < self.rows { self.cols } else { 0 })
            .map(|c| c.ch)
            .collect()
    }

    /// All rows as strings with trailing spaces trimmed.
    pub fn lines(&self) -> Vec<String> {
        (0..self.rows).map(|r| self.line(r).trim_end().to_string()).collect()
    }

    /// The cell at `(col, row)`.
    pub fn cell(&self, col: usize, row: usize) -> Option<TextCell> {
        (col < self.cols).then(|| self.cells.get(row * self.cols + col).copied()).flatten()
    }
}

/// Where a text screen lives and how it is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TextGeometry {
    /// Columns shown.
    pub cols: usize,
    /// Rows shown.
    pub rows: usize,
    /// Scan lines per character row.
    pub char_height: usize,
    /// Plane offset of the first cell.
    pub start: usize,
    /// Plane offsets from one row to the next.
    pub pitch: usize,
    /// Plane offsets from one cell to the next.
    pub cell_step: usize,
}

impl TextGeometry {
    /// Plane offset of cell `(col, row)` (wrapped to the 64 KiB plane).
    pub fn cell_offset(&self, col: usize, row: usize) -> usize {
        (self.start + row * self.pitch + col * self.cell_step) & PLANE_WRAP
    }
}

impl Vga {
    /// True when the VGA shows text: no VBE mode and GR06 in alphanumeric mode.
    pub fn in_text_mode(&self) -> bool {
        self.vbe.mode().is_none() && !self.graphics.graphics_mode()
    }

    pub(super) fn text_geometry(&self) -> TextGeometry {
        let shift = self.crtc.address_mode().shift();
        let char_height = self.crtc.scan_lines_per_row() as usize;
        let line_height = char_height * if self.crtc.scan_doubling() { 2 } else { 1 };
        TextGeometry {
            cols: self.crtc.horizontal_display_chars() as usize,
            rows: self.crtc.vertical_display_lines() as usize / line_height,
            char_height,
            start: (self.crtc.start_address() as usize) << shift,
            pitch: self.crtc.line_pitch() as usize,
            cell_step: 1 << shift,
        }
    }

    /// The text cursor `(column, row)` when enabled and on screen.
    pub(super) fn text_cursor(&self, geometry: &TextGeometry) -> Option<(usize, usize)> {
        self.crtc.cursor_scan_lines()?;
        let counter_pitch = (self.crtc.offset() * 2) as usize;
        let rel = self.crtc.cursor_location().checked_sub(self.crtc.start_address())? as usize;
        let (row, col) = (rel.checked_div(counter_pitch)?, rel % counter_pitch.max(1));
        (row < geometry.rows && col < geometry.cols).then_some((col, row))
    }

    /// The characters of the screen row that shows plane offset `offset` (empty when no
    /// row on screen does).
    pub(super) fn text_row_at(&self, offset: usize) -> Vec<char> {
        let g = self.text_geometry();
        let relative = offset.wrapping_sub(g.start) & PLANE_WRAP;
        let (row, col) = match (relative.checked_div(g.pitch), relative.checked_rem(g.pitch)) {
            (Some(row), Some(within)) => (row, within / g.cell_step.max(1)),
            _ => return Vec::new(),
        };
        if row >= g.rows || col >= g.cols {
            return Vec::new();
        }
        (0..g.cols).map(|col| cp437_to_char(self.vram.plane_byte(0, g.cell_offset(col, row)))).collect()
    }

    /// The text screen as characters and attributes, or `None` outside text mode.
    pub fn text_snapshot(&self) -> Option<TextScreen> {
        if !self.in_text_mode() {
            return None;
        }
        let g = self.text_geometry();
        let cells = (0..g.rows)
            .flat_map(|row| (0..g.cols).map(move |col| g.cell_offset(col, row)))
            .map(|offset| {
                let code = self.vram.plane_byte(0, offset);
                TextCell { code, ch: cp437_to_char(code), attribute: self.vram.plane_byte(1, offset) }
            })
            .collect();
        Some(TextScreen { cols: g.cols, rows: g.rows, cells, cursor: self.text_cursor(&g) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_page_437() {
        assert_eq!(CP437_HIGH.chars().count(), 128);
        assert_eq!(CP437_LOW.chars().count(), 31);
        assert_eq!(cp437_to_char(b'A'), 'A');
        assert_eq!(cp437_to_char(0), ' ');
        assert_eq!(cp437_to_char(0x01), '☺');
        assert_eq!(cp437_to_char(0x1f), '▼');
        assert_eq!(cp437_to_char(0x80), 'Ç');
        assert_eq!(cp437_to_char(0xb3), '│');
        assert_eq!(cp437_to_char(0xc9), '╔');
        assert_eq!(cp437_to_char(0xdb), '█');
        assert_eq!(cp437_to_char(0xe1), 'ß');
        assert_eq!(cp437_to_char(0xfe), '■');
    }
}
