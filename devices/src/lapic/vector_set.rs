//! A 256-bit set of interrupt vectors: the layout of the local APIC's IRR, ISR and
//! TMR (eight 32-bit registers each, vector `v` at bit `v % 32` of register `v / 32`).

/// 256 bits, one per vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VectorSet([u32; 8]);

impl VectorSet {
    /// True when `vector` is in the set.
    pub fn contains(&self, vector: u8) -> bool {
        self.0[usize::from(vector / 32)] & (1 << (vector % 32)) != 0
    }

    /// Adds `vector`.
    pub fn insert(&mut self, vector: u8) {
        self.0[usize::from(vector / 32)] |= 1 << (vector % 32);
    }

    /// Removes `vector`.
    pub fn remove(&mut self, vector: u8) {
        self.0[usize::from(vector / 32)] &= !(1 << (vector % 32));
    }

    /// Adds or removes `vector`.
    pub fn set(&mut self, vector: u8, present: bool) {
        if present {
            self.insert(vector);
        } else {
            self.remove(vector);
        }
    }

    /// The highest vector in the set.
    pub fn highest(&self) -> Option<u8> {
        self.0
            .iter()
            .enumerate()
            .rev()
            .find(|(_, &w)| w != 0)
            .map(|(i, &w)| (i * 32 + 31 - w.leading_zeros() as usize) as u8)
    }

    /// Removes and returns the highest vector.
    pub fn pop_highest(&mut self) -> Option<u8> {
        let v = self.highest()?;
        self.remove(v);
        Some(v)
    }

    /// The 32-bit register holding vectors `32 * index ..= 32 * index + 31`
    /// (`index` < 8; larger indices read as zero).
    pub fn register(&self, index: usize) -> u32 {
        self.0.get(index).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_and_register_layout() {
        let mut s = VectorSet::default();
        assert_eq!(s.highest(), None);
        s.insert(0x21);
        s.insert(0x20);
        s.insert(0xff);
        assert_eq!(s.register(1), 0b11);
        assert_eq!(s.register(7), 0x8000_0000);
        assert_eq!(s.pop_highest(), Some(0xff));
        assert_eq!(s.highest(), Some(0x21));
        s.set(0x21, false);
        assert!(s.contains(0x20) && !s.contains(0x21));
        assert_eq!(s.register(9), 0);
        s.remove(0x20);
        assert_eq!(s.highest(), None);
    }
}
