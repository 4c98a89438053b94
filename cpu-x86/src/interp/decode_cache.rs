//! The decode cache: basic blocks of decoded instructions keyed by the physical address
//! of their first byte, their starting RIP and the code size, so each guest instruction
//! is decoded once. Blocks in RAM mark their page as code in `PhysMemory`; a write to
//! such a page (by the CPU or by DMA) queues the page, and [`DecodeCache::invalidate`]
//! then drops every block on it. Blocks are also indexed by page, so invalidating a
//! page costs the blocks on that page, not a walk over the whole cache (code that
//! writes data next to itself, as boot loaders do, invalidates often).

use iced_x86::Instruction;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// A decoded basic block.
#[derive(Debug)]
pub struct Block {
    /// The instructions, the last one possibly a control transfer.
    pub instrs: Box<[Instruction]>,
    /// RAM offset of the page the block lies in (`None` for ROM/MMIO code).
    pub ram_page: Option<u64>,
}

/// Cache key: physical address, starting RIP, code size in bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Physical address of the first byte.
    pub phys: u64,
    /// RIP of the first instruction (decoded branch targets depend on it).
    pub rip: u64,
    /// 16, 32 or 64.
    pub bitness: u32,
}

/// A multiplicative hasher for the small integer keys of the cache.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
}

/// Most blocks the cache holds before it starts over (bounds host memory).
const MAX_BLOCKS: usize = 1 << 16;

/// The cache of decoded blocks.
#[derive(Default)]
pub struct DecodeCache {
    blocks: HashMap<Key, Rc<Block>, BuildHasherDefault<KeyHasher>>,
    by_page: HashMap<u64, Vec<Key>, BuildHasherDefault<KeyHasher>>,
}

impl DecodeCache {
    /// The cached block for `key`.
    #[inline]
    pub fn get(&self, key: &Key) -> Option<Rc<Block>> {
        self.blocks.get(key).cloned()
    }

    /// Caches `block`.
    pub fn insert(&mut self, key: Key, block: Rc<Block>) {
        if self.blocks.len() >= MAX_BLOCKS {
            self.clear();
        }
        if let Some(page) = block.ram_page {
            self.by_page.entry(page).or_default().push(key);
        }
        self.blocks.insert(key, block);
    }

    /// Drops every block on the RAM pages `pages` (RAM offsets of page starts).
    pub fn invalidate(&mut self, pages: &[u64]) {
        for page in pages {
            for key in self.by_page.remove(page).unwrap_or_default() {
                if self.blocks.get(&key).is_some_and(|b| b.ram_page == Some(*page)) {
                    self.blocks.remove(&key);
                }
            }
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.blocks.clear();
        self.by_page.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_drops_only_blocks_on_written_pages() {
        let mut c = DecodeCache::default();
        let block = |page| Rc::new(Block { instrs: Box::new([]), ram_page: page });
        c.insert(Key { phys: 0x1000, rip: 0, bitness: 16 }, block(Some(0x1000)));
        c.insert(Key { phys: 0x2000, rip: 0, bitness: 16 }, block(Some(0x2000)));
        c.insert(Key { phys: 0xf_0000, rip: 0, bitness: 16 }, block(None));
        c.invalidate(&[0x1000]);
        assert_eq!(c.blocks.len(), 2);
        assert!(c.get(&Key { phys: 0x1000, rip: 0, bitness: 16 }).is_none());
        assert!(c.get(&Key { phys: 0x2000, rip: 0, bitness: 16 }).is_some());
        c.invalidate(&[0x1000, 0x3000]);
        assert_eq!(c.blocks.len(), 2, "a page with no blocks left");
        c.insert(Key { phys: 0x1000, rip: 0, bitness: 16 }, block(Some(0x1000)));
        c.invalidate(&[0x2000]);
        assert!(c.get(&Key { phys: 0x1000, rip: 0, bitness: 16 }).is_some(), "re-inserted block survives");
        assert!(!c.by_page.contains_key(&0x2000));
    }
}
