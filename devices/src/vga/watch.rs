//! The text watch: tells the machine, at the store that may have done it, that the text
//! screen could now show a text someone waits for (`--stop-at @TEXT`, a `--keys` `@TEXT`
//! event).
//!
//! Reading the whole screen after every store would cost a screen scan per character, so
//! the watch filters. A text within one row (no newline) can only appear in the row of the
//! cell just stored, so that row alone is read, and only after a store of one of the
//! text's characters or a blank. A text spanning rows counts every store of one of its
//! characters or a blank (the screen's rows are read with trailing blanks trimmed, so a
//! blank can complete a text that ends a row). A change of what the screen shows as a
//! whole (start address, mode, VBE) always counts. The CRTC's cursor registers and the DAC
//! never change the text and never count.

use super::text::cp437_to_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Code page 437's blank cell characters: NUL and space both show as a space.
const BLANKS: [u8; 2] = [0x00, 0x20];

/// A set of code page 437 codes.
#[derive(Debug, Clone, Copy, Default)]
struct CodeSet([u64; 4]);

impl CodeSet {
    /// The codes that show as a character of `text`, and the blanks.
    fn of(text: &str) -> CodeSet {
        let mut set = CodeSet::default();
        for code in (0..=255u8).filter(|&c| text.contains(cp437_to_char(c))).chain(BLANKS) {
            set.0[usize::from(code >> 6)] |= 1 << (code & 63);
        }
        set
    }

    fn union(self, other: CodeSet) -> CodeSet {
        CodeSet(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code >> 6)] & (1 << (code & 63)) != 0
    }
}

/// The awaited texts, and the flag raised when a store (or a layout change) may have made
/// the screen show one while the watch is armed.
#[derive(Debug, Clone, Default)]
pub struct TextWatch {
    /// Texts within one row, as characters: checked against the stored cell's row.
    in_row: Vec<Vec<char>>,
    /// Codes whose store may complete a text within a row.
    row_codes: CodeSet,
    /// Codes whose store may complete a text that spans rows.
    spanning_codes: CodeSet,
    armed: bool,
    hit: Arc<AtomicBool>,
}

impl TextWatch {
    /// Watches for stores that may complete any of `texts`; no texts disarms the watch.
    pub fn arm<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) {
        *self = TextWatch { hit: self.hit.clone(), ..TextWatch::default() };
        for text in texts {
            self.armed = true;
            if text.contains('\n') {
                self.spanning_codes = self.spanning_codes.union(CodeSet::of(text));
            } else {
                self.row_codes = self.row_codes.union(CodeSet::of(text));
                self.in_row.push(text.chars().collect());
            }
        }
    }

    /// True while some text is awaited.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// The flag raised by a store that may have completed an awaited text. The machine
    /// reads it between instructions and lowers it once it has looked at the screen.
    pub fn hits(&self) -> Arc<AtomicBool> {
        self.hit.clone()
    }

    /// `code` was stored into plane 0 while text shows, in the row `row` gives (its cells as
    /// characters, read only when needed).
    pub(super) fn stored(&self, code: u8, row: impl FnOnce() -> Vec<char>) {
        if !self.armed {
            return;
        }
        let shows = |row: Vec<char>| {
            self.in_row.iter().any(|text| row.windows(text.len().max(1)).any(|w| w == text.as_slice()))
        };
        let in_row = self.row_codes.contains(code) && shows(row());
        if in_row || self.spanning_codes.contains(code) {
            self.hit.store(true, Ordering::Relaxed);
        }
    }

    /// What the screen shows changed as a whole (start address, mode, VBE on or off).
    pub(super) fn layout_changed(&self) {
        if self.armed {
            self.hit.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str) -> impl FnOnce() -> Vec<char> + '_ {
        move || text.chars().collect()
    }

    #[test]
    fn a_text_within_a_row_fires_when_the_stored_row_shows_it() {
        let mut watch = TextWatch::default();
        let hit = watch.hits();
        watch.stored(b'Y', row("READY"));
        watch.layout_changed();
        assert!(!hit.load(Ordering::Relaxed), "an unarmed watch never fires");
        watch.arm(["READY", "ok:"]);
        assert!(watch.is_armed());
        watch.stored(b'Y', row("  READ Y"));
        watch.stored(b'x', row("READY"));
        assert!(!hit.load(Ordering::Relaxed), "the row lacks the text; 'x' is in no text");
        for (code, shown) in [(b'Y', "> READY <"), (b':', "ok: go"), (b' ', "ok:  ")] {
            watch.stored(code, row(shown));
            assert!(hit.swap(false, Ordering::Relaxed), "{code:#x} in {shown:?}");
        }
        watch.layout_changed();
        assert!(hit.swap(false, Ordering::Relaxed));
        watch.arm([]);
        watch.stored(b'R', row("READY"));
        assert!(!watch.is_armed() && !hit.load(Ordering::Relaxed));
    }

    #[test]
    fn a_text_spanning_rows_fires_at_stores_of_its_characters_or_blanks() {
        let mut watch = TextWatch::default();
        let hit = watch.hits();
        watch.arm(["login\nPassword"]);
        let never = || -> Vec<char> { panic!("a spanning text does not read the row") };
        watch.stored(b'z', never);
        assert!(!hit.load(Ordering::Relaxed));
        for code in [b'P', b'n', 0, b' '] {
            watch.stored(code, Vec::new);
            assert!(hit.swap(false, Ordering::Relaxed), "{code:#x}");
        }
    }

    #[test]
    fn characters_outside_ascii_map_through_code_page_437() {
        let mut watch = TextWatch::default();
        let hit = watch.hits();
        watch.arm(["╔═"]);
        watch.stored(0xc9, row("x╔═"));
        assert!(hit.swap(false, Ordering::Relaxed), "0xC9 shows as ╔");
        watch.stored(b'=', row("x╔═"));
        assert!(!hit.load(Ordering::Relaxed));
    }
}
