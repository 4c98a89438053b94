//! Copy-on-write overlay in memory (`--snapshot`): writes land in a per-sector map and
//! never reach the backend below, which is only ever read.

use super::{check_range, BlockBackend, BlockError, SECTOR_SIZE};
use std::collections::HashMap;

const SECTOR: usize = SECTOR_SIZE as usize;

/// A writable view of `base` whose writes stay in memory.
pub struct SnapshotOverlay {
    base: Box<dyn BlockBackend>,
    /// Sectors written so far, by sector number.
    dirty: HashMap<u64, Box<[u8; SECTOR]>>,
}

impl SnapshotOverlay {
    /// An overlay over `base` (which may be read-only).
    pub fn new(base: Box<dyn BlockBackend>) -> Self {
        SnapshotOverlay { base, dirty: HashMap::new() }
    }

    /// Number of sectors held in memory.
    pub fn dirty_sectors(&self) -> usize {
        self.dirty.len()
    }

    /// Reads sector `n` whole, from the overlay or the base.
    fn sector(&mut self, n: u64) -> Result<[u8; SECTOR], BlockError> {
        if let Some(s) = self.dirty.get(&n) {
            return Ok(**s);
        }
        let mut s = [0u8; SECTOR];
        self.base.read_at(n * SECTOR_SIZE, &mut s)?;
        Ok(s)
    }
}

impl BlockBackend for SnapshotOverlay {
    fn len(&self) -> u64 {
        self.base.len()
    }

    fn read_only(&self) -> bool {
        false
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len(), self.len())?;
        if self.dirty.is_empty() {
            return self.base.read_at(offset, buf);
        }
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let (n, within) = (at / SECTOR_SIZE, (at % SECTOR_SIZE) as usize);
            let take = (SECTOR - within).min(buf.len() - done);
            let sector = self.sector(n)?;
            buf[done..done + take].copy_from_slice(&sector[within..within + take]);
            done += take;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len(), self.len())?;
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let (n, within) = (at / SECTOR_SIZE, (at % SECTOR_SIZE) as usize);
            let take = (SECTOR - within).min(buf.len() - done);
            let mut sector = if take == SECTOR { [0u8; SECTOR] } else { self.sector(n)? };
            sector[within..within + take].copy_from_slice(&buf[done..done + take]);
            self.dirty.insert(n, Box::new(sector));
            done += take;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{pattern_byte, MemDisk};
    use super::*;

    #[test]
    fn copy_on_write_at_sector_granularity() {
        let mut base = MemDisk::patterned(8, 512);
        base.read_only = true;
        let original = base.data.clone();
        let mut o = SnapshotOverlay::new(Box::new(base));
        o.write_at(510, &[0xee; 4]).unwrap();
        assert_eq!(o.dirty_sectors(), 2, "an unaligned write touches two sectors");
        let mut buf = vec![0u8; 1536];
        o.read_at(0, &mut buf).unwrap();
        for (i, &b) in buf.iter().enumerate() {
            let want = if (510..514).contains(&i) { 0xee } else { pattern_byte(i as u64, 512) };
            assert_eq!(b, want, "byte {i}");
        }
        o.write_at(3 * 512, &[0x11; 512]).unwrap();
        o.flush().unwrap();
        let mut s = [0u8; 512];
        o.read_at(3 * 512, &mut s).unwrap();
        assert_eq!(s, [0x11; 512]);
        assert!(o.write_at(8 * 512 - 1, &[0; 2]).is_err());
        assert_eq!(o.base.len(), original.len() as u64);
        let mut all = vec![0u8; original.len()];
        o.base.read_at(0, &mut all).unwrap();
        assert_eq!(all, original, "the base is never written");
    }

    /// Deterministic fuzz: random reads and writes agree with a plain byte array.
    #[test]
    fn fuzz_against_a_model() {
        let base = MemDisk::patterned(16, 512);
        let mut model = base.data.clone();
        let mut o = SnapshotOverlay::new(Box::new(base));
        let mut seed = 0x1234_5678_u32;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for round in 0..500 {
            let off = u64::from(rnd() % 8300);
            let len = (rnd() % 1300) as usize;
            if rnd() % 2 == 0 {
                let data: Vec<u8> = (0..len).map(|i| (i as u32 ^ round) as u8).collect();
                let r = o.write_at(off, &data);
                if off as usize + len <= model.len() {
                    r.unwrap();
                    model[off as usize..off as usize + len].copy_from_slice(&data);
                } else {
                    assert!(r.is_err());
                }
            } else {
                let mut buf = vec![0u8; len];
                let r = o.read_at(off, &mut buf);
                if off as usize + len <= model.len() {
                    r.unwrap();
                    assert_eq!(buf, model[off as usize..off as usize + len], "round {round}");
                } else {
                    assert!(r.is_err());
                }
            }
        }
    }
}
