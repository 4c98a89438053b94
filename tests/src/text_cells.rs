//! Reading text out of a graphics-mode screenshot without knowing the font: the screen is cut
//! into character cells, each cell's lit pixels form its bitmap, and a known string is found by
//! its *pattern*: cells of equal characters have equal bitmaps, cells of different characters
//! different ones, spaces are empty. Linux's framebuffer console draws with its own font (not
//! rx86's), so this checks that a line of text is on the screen without a copy of that font.

/// A screenshot cut into `cell_width` x `cell_height` character cells.
#[derive(Debug, Clone)]
pub struct CellGrid {
    /// Columns of cells.
    pub columns: usize,
    /// Rows of cells.
    pub rows: usize,
    /// Each cell's lit-pixel bitmap, row-major (one bool per pixel of the cell).
    cells: Vec<Vec<bool>>,
}

impl CellGrid {
    /// Cuts an RGB frame (`width` x `height`, 3 bytes a pixel) into cells; a pixel is lit when
    /// it differs from the frame's most common colour (the background).
    pub fn new(width: usize, height: usize, rgb: &[u8], cell_width: usize, cell_height: usize) -> Self {
        assert_eq!(rgb.len(), width * height * 3, "an RGB frame of {width}x{height}");
        let pixel = |x: usize, y: usize| {
            let i = (y * width + x) * 3;
            [rgb[i], rgb[i + 1], rgb[i + 2]]
        };
        let mut counts = std::collections::HashMap::new();
        for p in rgb.chunks_exact(3) {
            *counts.entry([p[0], p[1], p[2]]).or_insert(0usize) += 1;
        }
        let background = counts.into_iter().max_by_key(|&(_, n)| n).map(|(c, _)| c).unwrap_or_default();
        let (columns, rows) = (width / cell_width, height / cell_height);
        let mut cells = Vec::with_capacity(columns * rows);
        for row in 0..rows {
            for column in 0..columns {
                let mut bits = Vec::with_capacity(cell_width * cell_height);
                for y in 0..cell_height {
                    for x in 0..cell_width {
                        bits.push(pixel(column * cell_width + x, row * cell_height + y) != background);
                    }
                }
                cells.push(bits);
            }
        }
        CellGrid { columns, rows, cells }
    }

    fn cell(&self, column: usize, row: usize) -> &[bool] {
        &self.cells[row * self.columns + column]
    }

    fn is_blank(&self, column: usize, row: usize) -> bool {
        !self.cell(column, row).iter().any(|&b| b)
    }

    /// Rows with at least one non-blank cell.
    pub fn text_rows(&self) -> usize {
        (0..self.rows).filter(|&r| (0..self.columns).any(|c| !self.is_blank(c, r))).count()
    }

    /// True when `text` sits at (`column`, `row`) by its pattern: spaces blank, other
    /// characters drawn, equal characters as equal cells and different ones as different cells.
    pub fn matches_at(&self, text: &str, column: usize, row: usize) -> bool {
        let chars: Vec<char> = text.chars().collect();
        if row >= self.rows || column + chars.len() > self.columns {
            return false;
        }
        for (i, &a) in chars.iter().enumerate() {
            if (a == ' ') != self.is_blank(column + i, row) {
                return false;
            }
            for (j, &b) in chars.iter().enumerate().skip(i + 1) {
                if (a == b) != (self.cell(column + i, row) == self.cell(column + j, row)) {
                    return false;
                }
            }
        }
        true
    }

    /// Where `text` is on the screen by its pattern (see [`CellGrid::matches_at`]): the
    /// first (column, row) found.
    pub fn find(&self, text: &str) -> Option<(usize, usize)> {
        (0..self.rows).flat_map(|r| (0..self.columns).map(move |c| (c, r))).find(|&(c, r)| self.matches_at(text, c, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4x4-pixel-cell frame of `columns` x `rows` cells with `text` drawn at (`x`, `y`) in a
    /// made-up font: character `ch` lights pixel p < 8 when bit p of its code is set, and
    /// always pixel 15 (so no glyph is blank).
    fn frame(columns: usize, rows: usize, text: &str, x: usize, y: usize) -> (usize, usize, Vec<u8>) {
        let (w, h) = (columns * 4, rows * 4);
        let mut rgb = vec![0u8; w * h * 3];
        for (i, ch) in text.chars().enumerate() {
            if ch == ' ' {
                continue;
            }
            for p in 0..16usize {
                if (p < 8 && (ch as usize) & (1 << p) != 0) || p == 15 {
                    let (px, py) = ((x + i) * 4 + p % 4, y * 4 + p / 4);
                    rgb[(py * w + px) * 3..][..3].copy_from_slice(&[0xaa, 0xaa, 0xaa]);
                }
            }
        }
        (w, h, rgb)
    }

    #[test]
    fn a_string_is_found_by_its_pattern_where_it_was_drawn() {
        let (w, h, rgb) = frame(20, 5, "RX86 ab ab", 3, 2);
        let grid = CellGrid::new(w, h, &rgb, 4, 4);
        assert_eq!((grid.columns, grid.rows), (20, 5));
        assert_eq!(grid.find("RX86 ab ab"), Some((3, 2)));
        assert_eq!(grid.text_rows(), 1);
        assert!(!grid.matches_at("RX86 ab ab", 4, 2), "one cell off");
        assert!(!grid.matches_at("RX86 ab ba", 3, 2), "b where a is drawn");
        assert!(!grid.matches_at("RX86 abcab", 3, 2), "a blank where a character is expected");
        assert_eq!(grid.find("RR"), None, "no two equal drawn cells side by side");
    }

    #[test]
    fn the_background_is_the_most_common_colour() {
        let (w, h, mut rgb) = frame(4, 2, "ab", 0, 0);
        // A blue screen with grey text: the blue is background, whatever its value.
        for p in rgb.chunks_exact_mut(3) {
            if p == [0, 0, 0] {
                p.copy_from_slice(&[0, 0, 0xaa]);
            }
        }
        let grid = CellGrid::new(w, h, &rgb, 4, 4);
        assert_eq!(grid.find("ab"), Some((0, 0)));
        assert_eq!(grid.text_rows(), 1);
    }
}
