//! Executable memory for compiled units: one fixed-size mapping filled from the start.
//! When it is full it starts over and the generation changes, which retires every unit
//! compiled before (the interpreter checks a unit's generation before running it), as
//! QEMU empties its translation cache. So a guest that keeps rewriting its code never
//! makes the code memory grow.
//!
//! The mapping is writable only while code is copied in, executable otherwise.

use memmap2::{Mmap, MmapMut};

/// Alignment of each unit's entry.
const ALIGN: usize = 16;

/// A bump allocator over executable memory.
pub struct CodeArena {
    /// The mapping, executable (`None` only while its protection changes).
    map: Option<Mmap>,
    capacity: usize,
    used: usize,
    generation: u64,
    flushes: u64,
}

impl CodeArena {
    /// Reserves `capacity` bytes of code memory.
    pub fn new(capacity: usize) -> std::io::Result<Self> {
        let map = MmapMut::map_anon(capacity)?.make_exec()?;
        Ok(CodeArena { map: Some(map), capacity, used: 0, generation: 0, flushes: 0 })
    }

    /// Copies `code` in; returns its address and the generation it belongs to, or
    /// `None` if it does not fit even in an empty arena.
    pub fn insert(&mut self, code: &[u8]) -> std::io::Result<Option<(*const u8, u64)>> {
        if code.len() > self.capacity {
            return Ok(None);
        }
        let mut start = self.used.next_multiple_of(ALIGN);
        if start + code.len() > self.capacity {
            self.generation += 1;
            self.flushes += 1;
            start = 0;
        }
        let Some(map) = self.map.take() else {
            return Err(std::io::Error::other("code arena lost after a failed protection change"));
        };
        let mut map = map.make_mut()?;
        map[start..start + code.len()].copy_from_slice(code);
        let map = map.make_exec()?;
        let addr = map[start..].as_ptr();
        self.map = Some(map);
        self.used = start + code.len();
        Ok(Some((addr, self.generation)))
    }

    /// The generation units compiled now belong to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Bytes reserved.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Times the arena started over.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }
}

impl std::fmt::Debug for CodeArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodeArena({}/{} bytes, generation {})", self.used, self.capacity, self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_arena_starts_over_in_a_new_generation() {
        let mut a = CodeArena::new(4096).unwrap();
        let (first, g0) = a.insert(&[0xc3; 3000]).unwrap().unwrap();
        let (second, g1) = a.insert(&[0xc3; 3000]).unwrap().unwrap();
        assert_eq!((g0, g1), (0, 1));
        assert_eq!(first, second, "the second unit reuses the memory of the first");
        assert_eq!(a.flushes(), 1);
        assert!(a.insert(&[0; 5000]).unwrap().is_none());
    }

    #[test]
    fn units_are_aligned() {
        let mut a = CodeArena::new(4096).unwrap();
        a.insert(&[0xc3; 5]).unwrap();
        let (p, _) = a.insert(&[0xc3; 5]).unwrap().unwrap();
        assert_eq!(p as usize % ALIGN, 0);
    }
}
