//! The decode cache: basic blocks of decoded instructions keyed by the physical address
//! of their first byte, their starting RIP and the code size, so each guest instruction
//! is decoded once. Blocks in RAM mark their bytes as code in `PhysMemory`; a write over
//! them (by the CPU or by DMA) queues the page, and [`DecodeCache::invalidate`] then
//! drops every block on it. Blocks are also indexed by page, so invalidating a page
//! costs the blocks on that page, not a walk over the whole cache.
//!
//! In front of the map sits a direct-mapped table keyed by the linear address, RIP, code
//! size and privilege of the block's start ([`FrontKey`]): a hit skips the code
//! translation and the hash probe. Its entries carry the generations of the TLB and of
//! this cache, so any TLB flush or invalidation makes them miss.
//!
//! Each block also remembers the blocks execution went on to from it ([`Link`]): one
//! for falling through (or a branch not taken) and one for the last other successor (a
//! taken branch, a call, a return). A link is checked like a front-table slot, by key
//! and generations, and holds its target weakly, so chains never keep a dropped block
//! alive or form reference cycles.

use super::op::Op;
use rx86_core::phys::CodeWrite;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::{Rc, Weak};

/// A decoded basic block.
pub struct Block {
    /// The instructions in executable form, the last one possibly a control transfer.
    pub ops: Box<[Op]>,
    /// RAM offset of the page the block lies in (`None` for ROM/MMIO code).
    pub ram_page: Option<u64>,
    /// The block's bytes within its page, `start..end`.
    pub span: (u64, u64),
    /// The successors seen: `[fall-through, other]`.
    links: RefCell<[Option<Link>; 2]>,
}

impl Block {
    /// A block of `ops` lying at `span` of RAM page `ram_page`.
    pub fn new(ops: Box<[Op]>, ram_page: Option<u64>, span: (u64, u64)) -> Self {
        Block { ops, ram_page, span, links: RefCell::new([None, None]) }
    }

    /// The link slot for a successor starting at `rip`.
    fn slot(&self, rip: u64) -> usize {
        usize::from(self.ops.last().is_none_or(|op| op.next_ip != rip))
    }
}

/// A remembered successor: valid while its key matches and neither the TLB nor the
/// cache changed since it was made.
struct Link {
    key: FrontKey,
    tlb_generation: u64,
    generation: u64,
    block: Weak<Block>,
}

/// What identifies a block's start without translating it: the linear address of its
/// first byte, its RIP, and the code size and CPL (which decide the decoding and the
/// fetch permission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrontKey {
    /// Linear address of the first byte.
    pub lin: u64,
    /// RIP of the first instruction.
    pub rip: u64,
    /// Code size in bits, plus 256 at CPL 3.
    pub mode: u32,
}

/// One slot of the direct-mapped front table.
#[derive(Default)]
struct FrontSlot {
    key: FrontKey,
    tlb_generation: u64,
    generation: u64,
    block: Option<Rc<Block>>,
}

/// Slots of the front table (a power of two).
const FRONT_SLOTS: usize = 4096;

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
pub struct DecodeCache {
    blocks: HashMap<Key, Rc<Block>, BuildHasherDefault<KeyHasher>>,
    by_page: HashMap<u64, Vec<Key>, BuildHasherDefault<KeyHasher>>,
    front: Box<[FrontSlot]>,
    /// Bumped whenever blocks are dropped, so front-table entries made before miss.
    generation: u64,
}

impl Default for DecodeCache {
    fn default() -> Self {
        DecodeCache {
            blocks: HashMap::default(),
            by_page: HashMap::default(),
            front: (0..FRONT_SLOTS).map(|_| FrontSlot::default()).collect(),
            generation: 0,
        }
    }
}

/// The front-table slot of `key`.
#[inline(always)]
fn front_index(key: &FrontKey) -> usize {
    ((key.lin ^ (key.lin >> 12)) as usize) & (FRONT_SLOTS - 1)
}

impl DecodeCache {
    /// The block remembered for `key` while the TLB is at `tlb_generation`.
    #[inline]
    pub fn front(&self, key: &FrontKey, tlb_generation: u64) -> Option<&Rc<Block>> {
        let slot = &self.front[front_index(key)];
        if slot.key == *key && slot.tlb_generation == tlb_generation && slot.generation == self.generation {
            slot.block.as_ref()
        } else {
            None
        }
    }

    /// The successor of `from` remembered for `key` while the TLB is at `tlb_generation`.
    #[inline]
    pub fn linked(&self, from: &Block, key: &FrontKey, tlb_generation: u64) -> Option<Rc<Block>> {
        let links = from.links.borrow();
        let link = links[from.slot(key.rip)].as_ref()?;
        if link.key == *key && link.tlb_generation == tlb_generation && link.generation == self.generation {
            link.block.upgrade()
        } else {
            None
        }
    }

    /// Remembers that execution went on from `from` to `to`, found for `key`.
    pub fn link(&self, from: &Block, key: FrontKey, tlb_generation: u64, to: &Rc<Block>) {
        let link = Link { key, tlb_generation, generation: self.generation, block: Rc::downgrade(to) };
        from.links.borrow_mut()[from.slot(key.rip)] = Some(link);
    }

    /// Remembers `block` for `key` in the front table.
    pub fn set_front(&mut self, key: FrontKey, tlb_generation: u64, block: Rc<Block>) {
        let generation = self.generation;
        self.front[front_index(&key)] = FrontSlot { key, tlb_generation, generation, block: Some(block) };
    }

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
        let page = block.ram_page;
        let replaced = self.blocks.insert(key, block);
        if replaced.is_some() {
            // Links and front slots may still name the block replaced.
            self.generation += 1;
        }
        if let Some(page) = page {
            // A key already listed for the page (its block was decoded again) is not listed twice.
            if replaced.is_none_or(|old| old.ram_page != Some(page)) {
                self.by_page.entry(page).or_default().push(key);
            }
        }
    }

    /// Drops the blocks whose bytes `writes` overlap; returns, for each page written, the
    /// spans of the blocks left on it (for `PhysMemory::reset_code`).
    pub fn invalidate(&mut self, writes: &[CodeWrite]) -> Vec<(u64, Vec<(u64, u64)>)> {
        let mut pages: Vec<u64> = writes.iter().map(|w| w.page).collect();
        pages.sort_unstable();
        pages.dedup();
        let mut left = Vec::with_capacity(pages.len());
        for page in pages {
            let hit = |span: (u64, u64)| writes.iter().any(|w| w.page == page && w.start < span.1 && span.0 < w.end);
            let mut spans = Vec::new();
            let mut keys = self.by_page.remove(&page).unwrap_or_default();
            keys.retain(|key| match self.blocks.get(key) {
                Some(b) if b.ram_page == Some(page) && hit(b.span) => {
                    self.blocks.remove(key);
                    self.generation += 1;
                    false
                }
                Some(b) if b.ram_page == Some(page) => {
                    spans.push(b.span);
                    true
                }
                _ => false,
            });
            if !keys.is_empty() {
                self.by_page.insert(page, keys);
            }
            left.push((page, spans));
        }
        left
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.generation += 1;
        self.blocks.clear();
        self.by_page.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(page: Option<u64>, span: (u64, u64)) -> Rc<Block> {
        Rc::new(Block::new(Box::new([]), page, span))
    }

    fn write(page: u64, start: u64, end: u64) -> CodeWrite {
        CodeWrite { page, start, end }
    }

    #[test]
    fn invalidation_drops_only_the_blocks_a_write_overlaps() {
        let mut c = DecodeCache::default();
        let key = |phys| Key { phys, rip: 0, bitness: 16 };
        c.insert(key(0x1000), block(Some(0x1000), (0, 0x10)));
        c.insert(key(0x1010), block(Some(0x1000), (0x10, 0x20)));
        c.insert(key(0x2000), block(Some(0x2000), (0, 0x10)));
        c.insert(key(0xf_0000), block(None, (0, 0x10)));
        let left = c.invalidate(&[write(0x1000, 0x12, 0x13)]);
        assert_eq!(left, vec![(0x1000, vec![(0, 0x10)])]);
        assert!(c.get(&key(0x1010)).is_none());
        assert!(c.get(&key(0x1000)).is_some(), "the block beside the write survives");
        assert!(c.get(&key(0x2000)).is_some());
        let left = c.invalidate(&[write(0x1000, 0, 1), write(0x3000, 0, 1)]);
        assert_eq!(left, vec![(0x1000, vec![]), (0x3000, vec![])]);
        assert_eq!(c.blocks.len(), 2, "a page with no blocks left");
        assert!(!c.by_page.contains_key(&0x1000));
        c.insert(key(0x1000), block(Some(0x1000), (0, 0x10)));
        c.invalidate(&[write(0x2000, 0, 0x1000)]);
        assert!(c.get(&key(0x1000)).is_some(), "re-inserted block survives");
        assert!(!c.by_page.contains_key(&0x2000));
    }

    #[test]
    fn front_entries_miss_after_a_tlb_flush_or_an_invalidation() {
        let mut c = DecodeCache::default();
        let key = FrontKey { lin: 0x1000, rip: 0x1000, mode: 32 };
        c.set_front(key, 7, block(Some(0x1000), (0, 0x10)));
        assert!(c.front(&key, 7).is_some());
        assert!(c.front(&key, 8).is_none(), "TLB flushed since");
        assert!(c.front(&FrontKey { rip: 0x1001, ..key }, 7).is_none());
        c.insert(Key { phys: 0x1000, rip: 0x1000, bitness: 32 }, block(Some(0x1000), (0, 0x10)));
        c.invalidate(&[write(0x5000, 0, 1)]);
        assert!(c.front(&key, 7).is_some(), "nothing dropped");
        c.invalidate(&[write(0x1000, 0, 1)]);
        assert!(c.front(&key, 7).is_none(), "blocks dropped since");
    }

    #[test]
    fn links_are_followed_until_the_tlb_or_the_cache_changes_or_the_target_goes() {
        let mut c = DecodeCache::default();
        // A JE at 0x100e: falls through to 0x1010, branches to 0x2000.
        let mut je = iced_x86::Decoder::with_ip(32, &[0x74, 0x00], 0x100e, 0).decode();
        je.set_near_branch32(0x2000);
        let from = Rc::new(Block::new(Box::new([Op::new(je)]), Some(0x1000), (0, 0x10)));
        let to = block(Some(0x1000), (0x10, 0x20));
        let elsewhere = block(Some(0x2000), (0, 0x10));
        c.insert(Key { phys: 0x1010, rip: 0x1010, bitness: 32 }, to.clone());
        c.insert(Key { phys: 0x2000, rip: 0x2000, bitness: 32 }, elsewhere.clone());
        let key = FrontKey { lin: 0x1010, rip: 0x1010, mode: 32 };
        let other = FrontKey { lin: 0x2000, rip: 0x2000, mode: 32 };
        assert!(c.linked(&from, &key, 3).is_none(), "nothing linked yet");
        c.link(&from, key, 3, &to);
        c.link(&from, other, 3, &elsewhere);
        assert!(Rc::ptr_eq(&c.linked(&from, &key, 3).unwrap(), &to));
        assert!(Rc::ptr_eq(&c.linked(&from, &other, 3).unwrap(), &elsewhere));
        assert!(c.linked(&from, &FrontKey { mode: 16, ..key }, 3).is_none(), "another code size");
        assert!(c.linked(&from, &key, 4).is_none(), "TLB flushed since");
        c.invalidate(&[write(0x2000, 0, 1)]);
        assert!(c.linked(&from, &key, 3).is_none(), "blocks dropped since");
        c.link(&from, key, 3, &to);
        drop(to);
        c.clear();
        assert!(c.linked(&from, &key, 3).is_none(), "the target is gone");
    }
}
