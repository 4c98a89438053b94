//! The decode cache: basic blocks of decoded instructions keyed by the physical address
//! of their first byte, their starting RIP and the code size, so each guest instruction
//! is decoded once. Blocks in RAM mark their bytes as code in `PhysMemory`; a write over
//! them (by the CPU or by DMA) queues the page, and [`DecodeCache::invalidate`] then
//! drops every block on it. Blocks are also indexed by page, so invalidating a page
//! costs the blocks on that page, not a walk over the whole cache.
//!
//! In front of the map sits a direct-mapped table keyed by the linear address, RIP, code
//! size and privilege of the block's start ([`FrontKey`]): a hit skips the code
//! translation and the hash probe. Its entries carry the TLB's generation, so any TLB
//! flush makes them miss, and a block dropped from the cache is marked dead, so no
//! entry leads to it again while other blocks keep their entries.
//!
//! Each block also remembers the blocks execution went on to from it ([`Link`]): one
//! for falling through (or a branch not taken) and one for the last other successor (a
//! taken branch, a call, a return). A link is checked like a front-table slot, by key
//! and TLB generation, and holds its target weakly, so chains never keep a dropped block
//! alive or form reference cycles.

use super::op::Op;
use rx86_core::phys::CodeWrite;
use std::cell::{Cell, OnceCell, RefCell};
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
    /// Dropped from the cache (its bytes were written, or the cache was cleared): the
    /// front table and links no longer lead here.
    dead: Cell<bool>,
    /// Executions counted towards compiling the block (`u32::MAX`: the tier declined it,
    /// or the block is not cached and so never runs again).
    pub heat: Cell<u32>,
    /// The block's compiled code, once the tier compiled it.
    pub unit: Cell<Option<crate::tier::UnitCode>>,
    /// How each instruction was offered to the tier (set when the block is compiled).
    pub lowered: OnceCell<Box<[crate::tier::Lowering]>>,
    /// Where its compiled code goes on to its successors' (`[fall-through, other]`).
    pub chain: [crate::tier::ChainSlot; 2],
}

impl Block {
    /// A block of `ops` lying at `span` of RAM page `ram_page`.
    pub fn new(ops: Box<[Op]>, ram_page: Option<u64>, span: (u64, u64)) -> Self {
        Block {
            ops,
            ram_page,
            span,
            links: RefCell::new([None, None]),
            dead: Cell::new(false),
            heat: Cell::new(0),
            unit: Cell::new(None),
            lowered: OnceCell::new(),
            chain: Default::default(),
        }
    }

    /// The address of the dead flag (one byte, nonzero once dropped), which compiled
    /// code reads before going round its loop again.
    pub fn dead_flag(&self) -> *const u8 {
        self.dead.as_ptr().cast()
    }

    /// Marks the block dropped; true when it had compiled code.
    fn kill(&self) -> bool {
        self.dead.set(true);
        self.unit.get().is_some()
    }

    /// The link slot for a successor starting at `rip`.
    pub fn slot(&self, rip: u64) -> usize {
        usize::from(self.ops.last().is_none_or(|op| op.next_ip != rip))
    }
}

/// A remembered successor: valid while its key matches, the TLB was not flushed since
/// it was made, and its target is still in the cache.
struct Link {
    key: FrontKey,
    tlb_generation: u64,
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

/// A block listed under its page: its key and its bytes within the page.
type PageEntry = (Key, (u64, u64));

/// Most blocks the cache holds before it starts over (bounds host memory).
const MAX_BLOCKS: usize = 1 << 16;

/// The cache of decoded blocks.
pub struct DecodeCache {
    blocks: HashMap<Key, Rc<Block>, BuildHasherDefault<KeyHasher>>,
    /// The blocks on each RAM page, with their spans.
    by_page: HashMap<u64, Vec<PageEntry>, BuildHasherDefault<KeyHasher>>,
    front: Box<[FrontSlot]>,
    /// Blocks with compiled code dropped so far.
    pub dropped_units: u64,
    /// Bumped whenever a block is dropped: chain slots filled in before no longer hold.
    pub chain_epoch: u64,
    /// The jump cache compiled code consults for successors known only at run time
    /// ([`crate::tier::JUMP_CACHE_SLOTS`] slots, valid by the same rules as chain slots).
    pub jumps: Box<[crate::tier::ChainSlot]>,
}

impl Default for DecodeCache {
    fn default() -> Self {
        DecodeCache {
            blocks: HashMap::default(),
            by_page: HashMap::default(),
            front: (0..FRONT_SLOTS).map(|_| FrontSlot::default()).collect(),
            dropped_units: 0,
            chain_epoch: 0,
            jumps: (0..crate::tier::JUMP_CACHE_SLOTS).map(|_| crate::tier::ChainSlot::default()).collect(),
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
        let block = slot.block.as_ref()?;
        (slot.key == *key && slot.tlb_generation == tlb_generation && !block.dead.get()).then_some(block)
    }

    /// The successor of `from` remembered for `key` while the TLB is at `tlb_generation`.
    #[inline]
    pub fn linked(&self, from: &Block, key: &FrontKey, tlb_generation: u64) -> Option<Rc<Block>> {
        let links = from.links.borrow();
        let link = links[from.slot(key.rip)].as_ref()?;
        if link.key != *key || link.tlb_generation != tlb_generation {
            return None;
        }
        link.block.upgrade().filter(|b| !b.dead.get())
    }

    /// Remembers that execution went on from `from` to `to`, found for `key`.
    pub fn link(&self, from: &Block, key: FrontKey, tlb_generation: u64, to: &Rc<Block>) {
        let link = Link { key, tlb_generation, block: Rc::downgrade(to) };
        from.links.borrow_mut()[from.slot(key.rip)] = Some(link);
    }

    /// Remembers `block` for `key` in the front table.
    pub fn set_front(&mut self, key: FrontKey, tlb_generation: u64, block: Rc<Block>) {
        self.front[front_index(&key)] = FrontSlot { key, tlb_generation, block: Some(block) };
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
        let (page, span) = (block.ram_page, block.span);
        if let Some(old) = self.blocks.insert(key, block) {
            // Links and front slots may still name the block replaced, and the page
            // lists its span.
            self.dropped_units += u64::from(old.kill());
            self.chain_epoch += 1;
            if let Some(entries) = old.ram_page.and_then(|p| self.by_page.get_mut(&p)) {
                entries.retain(|&(k, _)| k != key);
            }
        }
        if let Some(page) = page {
            self.by_page.entry(page).or_default().push((key, span));
        }
    }

    /// Drops the blocks whose bytes `writes` overlap; returns, for each page written, the
    /// spans of the blocks left on it (for `PhysMemory::reset_code`).
    pub fn invalidate(&mut self, writes: &[CodeWrite]) -> Vec<(u64, Vec<(u64, u64)>)> {
        let mut pages: Vec<u64> = writes.iter().map(|w| w.page).collect();
        pages.sort_unstable();
        pages.dedup();
        let mut left = Vec::with_capacity(pages.len());
        let mut written = Vec::new();
        for page in pages {
            written.clear();
            written.extend(writes.iter().filter(|w| w.page == page).map(|w| (w.start, w.end)));
            let hit = |span: (u64, u64)| written.iter().any(|&(start, end)| start < span.1 && span.0 < end);
            let mut entries = self.by_page.remove(&page).unwrap_or_default();
            let mut spans = Vec::with_capacity(entries.len());
            entries.retain(|&(key, span)| {
                if !hit(span) {
                    spans.push(span);
                    return true;
                }
                if let Some(b) = self.blocks.remove(&key) {
                    self.dropped_units += u64::from(b.kill());
                    self.chain_epoch += 1;
                }
                false
            });
            if !entries.is_empty() {
                self.by_page.insert(page, entries);
            }
            left.push((page, spans));
        }
        left
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        for b in self.blocks.values() {
            self.dropped_units += u64::from(b.kill());
        }
        self.chain_epoch += 1;
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
    fn front_entries_miss_after_a_tlb_flush_or_once_their_block_is_dropped() {
        let mut c = DecodeCache::default();
        let key = FrontKey { lin: 0x1000, rip: 0x1000, mode: 32 };
        let other = FrontKey { lin: 0x2000, rip: 0x2000, mode: 32 };
        let (here, there) = (block(Some(0x1000), (0, 0x10)), block(Some(0x2000), (0, 0x10)));
        c.insert(Key { phys: 0x1000, rip: 0x1000, bitness: 32 }, here.clone());
        c.insert(Key { phys: 0x2000, rip: 0x2000, bitness: 32 }, there.clone());
        c.set_front(key, 7, here);
        c.set_front(other, 7, there);
        assert!(c.front(&key, 7).is_some());
        assert!(c.front(&key, 8).is_none(), "TLB flushed since");
        assert!(c.front(&FrontKey { rip: 0x1001, ..key }, 7).is_none());
        c.invalidate(&[write(0x5000, 0, 1)]);
        assert!(c.front(&key, 7).is_some(), "nothing dropped");
        c.invalidate(&[write(0x1000, 0, 1)]);
        assert!(c.front(&key, 7).is_none(), "its block was dropped");
        assert!(c.front(&other, 7).is_some(), "another block's entry stays");
        c.clear();
        assert!(c.front(&other, 7).is_none(), "everything dropped");
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
        assert!(c.linked(&from, &other, 3).is_none(), "its target was dropped");
        assert!(c.linked(&from, &key, 3).is_some(), "the other link stays");
        drop(to);
        c.clear();
        assert!(c.linked(&from, &key, 3).is_none(), "the target is gone");
    }
}
