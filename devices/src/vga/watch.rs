//! The text watch: tells the machine, at the store that may have done it, that the text
//! screen could now show a text someone waits for (`--stop-at @TEXT`, a `--keys` `@TEXT`
//! event).
//!
//! Reading the whole screen after every store would cost a screen scan per character, so
//! the watch filters: a store can make the screen show a text only if the stored
//! character is one of the text's characters, or a blank (the screen's rows are read with
//! trailing blanks trimmed, so a blank can complete a text that ends a row). A change of
//! what the screen shows as a whole (start address, mode, VBE) always counts. The CRTC's
//! cursor registers and the DAC never change the text and never count.

use super::text::cp437_to_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Code page 437's blank cell characters: NUL and space both show as a space.
const BLANKS: [u8; 2] = [0x00, 0x20];

/// Character codes whose store into plane 0 may complete an awaited text, and the flag
/// raised when one is stored (or the screen's layout changes) while the watch is armed.
#[derive(Debug, Clone, Default)]
pub struct TextWatch {
    /// One bit per code page 437 code.
    codes: [u64; 4],
    armed: bool,
    hit: Arc<AtomicBool>,
}

impl TextWatch {
    /// Watches for stores that may complete any of `texts`; no texts disarms the watch.
    pub fn arm<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) {
        self.codes = [0; 4];
        self.armed = false;
        for text in texts {
            self.armed = true;
            for code in (0..=255u8).filter(|&c| text.contains(cp437_to_char(c))).chain(BLANKS) {
                self.codes[usize::from(code >> 6)] |= 1 << (code & 63);
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

    /// A character code was stored into plane 0 while text shows.
    pub(super) fn stored(&self, code: u8) {
        if self.armed && self.codes[usize::from(code >> 6)] & (1 << (code & 63)) != 0 {
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

    #[test]
    fn only_stores_of_the_texts_characters_or_blanks_count() {
        let mut watch = TextWatch::default();
        let hit = watch.hits();
        watch.stored(b'R');
        watch.layout_changed();
        assert!(!hit.load(Ordering::Relaxed), "an unarmed watch never fires");
        watch.arm(["READY", "ok:"]);
        assert!(watch.is_armed());
        for code in [b'x', b'r', 0xdb, b'Z'] {
            watch.stored(code);
            assert!(!hit.load(Ordering::Relaxed), "{code:#x} is in no awaited text");
        }
        for code in [b'R', b'Y', b':', b' ', 0] {
            watch.stored(code);
            assert!(hit.swap(false, Ordering::Relaxed), "{code:#x} may complete a text");
        }
        watch.layout_changed();
        assert!(hit.swap(false, Ordering::Relaxed));
        watch.arm([]);
        watch.stored(b'R');
        assert!(!watch.is_armed() && !hit.load(Ordering::Relaxed));
    }

    #[test]
    fn characters_outside_ascii_map_through_code_page_437() {
        let mut watch = TextWatch::default();
        let hit = watch.hits();
        watch.arm(["╔═"]);
        watch.stored(0xc9);
        assert!(hit.swap(false, Ordering::Relaxed), "0xC9 shows as ╔");
        watch.stored(b'=');
        assert!(!hit.load(Ordering::Relaxed));
    }
}
