//! Writing qcow2 images: a write to a cluster with no data of its own allocates one (and an
//! L2 table when its L1 entry is empty), filled with what the cluster read before (its
//! backing file's data, or zeros) and the new bytes.
//!
//! New clusters are appended at the end of the file; each gets refcount 1 (allocating a
//! refcount block when its range has none). Metadata is ordered so that a crash leaves at
//! worst leaked clusters, never a reference to a cluster with refcount 0 or to unwritten
//! data: the clusters' content and refcounts are written and synced (once per guest write)
//! before the L2 (or L1) entries that point at them. Entries get QEMU's "copied" flag
//! (refcount exactly 1).

use super::{be32, be64, Qcow2Image, L2_COMPRESSED, L2_ZERO, OFFSET_MASK};
use crate::block::BlockError;
use std::os::unix::fs::FileExt;

/// L1/L2 entry bit 63: the cluster's refcount is exactly 1 (written in place).
pub(super) const COPIED: u64 = 1 << 63;
/// The one refcount width written: 16 bits (refcount_order 4, QEMU's default).
pub(super) const REFCOUNT_ORDER: u32 = 4;
/// Header offset of the refcount table's offset (u64), followed by its size in clusters (u32).
const REFCOUNT_TABLE_OFFSET: u64 = 48;
/// Header offset of the v3 autoclear feature bits.
const AUTOCLEAR_OFFSET: u64 = 88;

/// An L2 entry to write once the cluster it points at is on disk.
pub(super) struct PendingEntry {
    /// The L2 table's host offset.
    l2: u64,
    /// The entry's index in it.
    l2_index: u64,
    /// The new entry.
    entry: u64,
}

/// The state writing needs beyond what reading does.
pub(super) struct Writer {
    /// Where the refcount table is, and its entries (refcount block offsets, 0: none).
    refcount_table_offset: u64,
    refcount_table: Vec<u64>,
    /// Where the next cluster is allocated: the end of the file, cluster-aligned.
    next_free: u64,
}

impl Writer {
    /// Checks that the image at `image` (header bytes `h`) can be written, and reads its
    /// refcount table.
    pub(super) fn open(image: &mut Qcow2Image, h: &[u8], version: u32) -> Result<Writer, BlockError> {
        let unsupported = |feature: String| BlockError::Qcow2Unsupported { path: image.path.clone(), feature };
        let cluster_size = 1u64 << image.cluster_bits;
        if version == 3 {
            let refcount_order = be32(h, 96);
            if refcount_order != REFCOUNT_ORDER {
                return Err(unsupported(format!("writing {}-bit refcounts", 1u32 << refcount_order.min(31))));
            }
            let incompatible = be64(h, 72);
            if incompatible & 0b1 != 0 {
                return Err(unsupported("writing an image marked dirty (run qemu-img check -r all)".into()));
            }
            if incompatible & 0b10 != 0 {
                return Err(image.corrupt("the image is marked corrupt (run qemu-img check -r all)".into()));
            }
        }
        let snapshots = be32(h, 60);
        if snapshots != 0 {
            return Err(unsupported(format!("writing an image with {snapshots} internal snapshots")));
        }
        let table_offset = be64(h, 48);
        let table_clusters = u64::from(be32(h, 56));
        let table_bytes = table_clusters * cluster_size;
        if table_clusters == 0
            || table_bytes > super::MAX_L1_BYTES
            || !table_offset.is_multiple_of(cluster_size)
            || table_offset.checked_add(table_bytes).is_none_or(|end| end > image.file_size)
        {
            return Err(image.corrupt(format!("refcount table at {table_offset:#x} is misaligned or out of bounds")));
        }
        let mut raw = vec![0u8; table_bytes as usize];
        image.file.read_exact_at(&mut raw, table_offset)?;
        let refcount_table: Vec<u64> = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();
        for &block in &refcount_table {
            let block = block & OFFSET_MASK;
            if block != 0 && (!block.is_multiple_of(cluster_size) || block + cluster_size > image.file_size) {
                return Err(image.corrupt(format!("refcount block at {block:#x} is misaligned or past the end")));
            }
        }
        // Autoclear features (bitmaps...) describe data this writer does not keep up to date:
        // clear them, as QEMU does for the ones it does not know.
        if version == 3 && be64(h, AUTOCLEAR_OFFSET as usize) != 0 {
            image.file.write_all_at(&0u64.to_be_bytes(), AUTOCLEAR_OFFSET)?;
        }
        let next_free = image.file_size.next_multiple_of(cluster_size);
        Ok(Writer { refcount_table_offset: table_offset, refcount_table, next_free })
    }
}

impl Qcow2Image {
    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    fn writer(&mut self) -> Result<&mut Writer, BlockError> {
        self.writer.as_mut().ok_or(BlockError::ReadOnly)
    }

    /// Writes `data` at host offset `at`, growing the known file size.
    fn write_host(&mut self, at: u64, data: &[u8]) -> Result<(), BlockError> {
        self.file.write_all_at(data, at)?;
        self.file_size = self.file_size.max(at + data.len() as u64);
        Ok(())
    }

    /// Takes the next cluster at the end of the file (its refcount not yet set).
    fn take_cluster(&mut self) -> Result<u64, BlockError> {
        let size = self.cluster_size();
        let w = self.writer()?;
        let at = w.next_free;
        w.next_free += size;
        Ok(at)
    }

    /// A new cluster with refcount 1; its content is the caller's to write.
    fn allocate_cluster(&mut self) -> Result<u64, BlockError> {
        let at = self.take_cluster()?;
        self.set_refcount(at, 1)?;
        Ok(at)
    }

    /// Sets the 16-bit refcount of the cluster at host offset `host`, allocating the
    /// refcount block that covers it if there is none.
    fn set_refcount(&mut self, host: u64, value: u16) -> Result<(), BlockError> {
        let cluster_size = self.cluster_size();
        let per_block = cluster_size / 2;
        let cluster = host >> self.cluster_bits;
        let index = (cluster / per_block) as usize;
        if index >= self.writer()?.refcount_table.len() {
            self.grow_refcount_table(index)?;
        }
        let w = self.writer()?;
        let entry = w.refcount_table[index];
        let table_entry_at = w.refcount_table_offset + index as u64 * 8;
        let mut block = entry & OFFSET_MASK;
        if block == 0 {
            block = self.take_cluster()?;
            let mut fresh = vec![0u8; cluster_size as usize];
            let own = block >> self.cluster_bits;
            if own / per_block == index as u64 {
                // The new block counts itself.
                let at = ((own % per_block) * 2) as usize;
                fresh[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
            } else {
                self.set_refcount(block, 1)?;
            }
            self.write_host(block, &fresh)?;
            self.file.sync_data()?;
            self.write_host(table_entry_at, &block.to_be_bytes())?;
            self.writer()?.refcount_table[index] = block;
        }
        self.write_host(block + (cluster % per_block) * 2, &value.to_be_bytes())
    }

    /// Moves the refcount table to a larger one at the end of the file that covers refcount
    /// block `index` (at least twice the old size, as QEMU grows it). The new table's
    /// clusters come first, then the refcount blocks that count them and themselves; both
    /// are written and synced before the header points at the new table, and the old
    /// table's clusters are freed last, so a crash leaves either table in force with at
    /// worst the old one's clusters leaked.
    fn grow_refcount_table(&mut self, index: usize) -> Result<(), BlockError> {
        let cluster_size = self.cluster_size();
        let per_block = cluster_size / 2;
        let per_table_cluster = cluster_size / 8;
        let w = self.writer()?;
        let (old_offset, mut table) = (w.refcount_table_offset, w.refcount_table.clone());
        let old_clusters = (table.len() as u64 * 8).div_ceil(cluster_size);
        let first = w.next_free >> self.cluster_bits;
        // The new table's size and the blocks it needs depend on each other: settle both.
        let mut table_clusters = (2 * old_clusters).max((index as u64 + 1).div_ceil(per_table_cluster));
        let blocks = loop {
            let mut count = 0;
            let blocks = loop {
                let end = first + table_clusters + count;
                let needed: Vec<u64> = (first / per_block..=(end - 1) / per_block)
                    .filter(|&i| table.get(i as usize).is_none_or(|&e| e & OFFSET_MASK == 0))
                    .collect();
                if needed.len() as u64 == count {
                    break needed;
                }
                count = needed.len() as u64;
            };
            let end = first + table_clusters + blocks.len() as u64;
            if table_clusters * per_table_cluster >= end.div_ceil(per_block).max(index as u64 + 1) {
                break blocks;
            }
            table_clusters += 1;
        };
        if table_clusters * cluster_size > super::MAX_L1_BYTES {
            return Err(BlockError::Qcow2Unsupported {
                path: self.path.clone(),
                feature: "a refcount table larger than 32 MiB".into(),
            });
        }
        let end = first + table_clusters + blocks.len() as u64;
        table.resize((table_clusters * per_table_cluster) as usize, 0);
        for (n, &block_index) in blocks.iter().enumerate() {
            let block_cluster = first + table_clusters + n as u64;
            let mut fresh = vec![0u8; cluster_size as usize];
            let covered = block_index * per_block..(block_index + 1) * per_block;
            for cluster in (first..end).filter(|c| covered.contains(c)) {
                let at = ((cluster % per_block) * 2) as usize;
                fresh[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
            }
            self.write_host(block_cluster << self.cluster_bits, &fresh)?;
            table[block_index as usize] = block_cluster << self.cluster_bits;
        }
        let new_offset = first << self.cluster_bits;
        let raw: Vec<u8> = table.iter().flat_map(|e| e.to_be_bytes()).collect();
        self.write_host(new_offset, &raw)?;
        self.file.sync_data()?;
        let mut header = [0u8; 12];
        header[..8].copy_from_slice(&new_offset.to_be_bytes());
        header[8..].copy_from_slice(&(table_clusters as u32).to_be_bytes());
        self.write_host(REFCOUNT_TABLE_OFFSET, &header)?;
        self.file.sync_data()?;
        let next_free = end << self.cluster_bits;
        let w = self.writer()?;
        w.refcount_table_offset = new_offset;
        w.refcount_table = table;
        w.next_free = next_free;
        for k in 0..old_clusters {
            self.set_refcount(old_offset + k * cluster_size, 0)?;
        }
        Ok(())
    }

    /// The L2 table for guest cluster `cluster`, allocated (zeroed, refcount 1, L1 entry
    /// written after it) when the L1 entry is empty. Returns its host offset.
    fn ensure_l2(&mut self, cluster: u64) -> Result<u64, BlockError> {
        let l1_index = (cluster >> (self.cluster_bits - 3)) as usize;
        let current = self.l1[l1_index] & OFFSET_MASK;
        if current != 0 {
            if self.l1[l1_index] & COPIED == 0 {
                return Err(BlockError::Qcow2Unsupported {
                    path: self.path.clone(),
                    feature: "writing through a shared L2 table (refcount above 1)".into(),
                });
            }
            return Ok(current);
        }
        let table = self.allocate_cluster()?;
        self.write_host(table, &vec![0u8; self.cluster_size() as usize])?;
        self.file.sync_data()?;
        let entry = table | COPIED;
        self.write_host(self.l1_offset + l1_index as u64 * 8, &entry.to_be_bytes())?;
        self.l1[l1_index] = entry;
        self.l2_cache.insert(table, vec![0; (self.cluster_size() / 8) as usize]);
        Ok(table)
    }

    /// Writes `data` at guest offset `offset`, all inside one cluster. A cluster that
    /// needed a new host cluster comes back as the L2 entry still to write (after a sync,
    /// [`Qcow2Image::commit`]).
    pub(super) fn write_in_cluster(&mut self, offset: u64, data: &[u8]) -> Result<Option<PendingEntry>, BlockError> {
        let cluster_size = self.cluster_size();
        let cluster = offset >> self.cluster_bits;
        let within = offset & (cluster_size - 1);
        let entry = self.l2_entry(cluster)?;
        if entry & L2_COMPRESSED != 0 {
            return Err(BlockError::Qcow2Unsupported {
                path: self.path.clone(),
                feature: "compressed clusters".into(),
            });
        }
        let host = entry & OFFSET_MASK;
        if host != 0 && entry & COPIED == 0 {
            return Err(BlockError::Qcow2Unsupported {
                path: self.path.clone(),
                feature: "writing a shared cluster (refcount above 1)".into(),
            });
        }
        if host != 0 && entry & L2_ZERO == 0 {
            if !host.is_multiple_of(cluster_size) || host + cluster_size > self.file_size {
                return Err(self.corrupt(format!("data cluster at {host:#x} is misaligned or past the end")));
            }
            return self.write_host(host + within, data).map(|()| None);
        }
        // A cluster without data of its own: the whole cluster is written, what it read
        // before with the new bytes over it.
        let mut whole = vec![0u8; cluster_size as usize];
        if data.len() as u64 != cluster_size {
            self.read_in_cluster(cluster << self.cluster_bits, &mut whole)?;
        }
        whole[within as usize..within as usize + data.len()].copy_from_slice(data);
        let l2 = self.ensure_l2(cluster)?;
        // A zero cluster that keeps a preallocated host cluster is written in place.
        let target = if host != 0 { host } else { self.allocate_cluster()? };
        if host != 0 && (!host.is_multiple_of(cluster_size) || host + cluster_size > self.file_size) {
            return Err(self.corrupt(format!("data cluster at {host:#x} is misaligned or past the end")));
        }
        self.write_host(target, &whole)?;
        let l2_index = cluster & ((1 << (self.cluster_bits - 3)) - 1);
        Ok(Some(PendingEntry { l2, l2_index, entry: target | COPIED }))
    }

    /// Points the L2 entries at their new clusters, once the clusters' data and refcounts
    /// are on disk.
    pub(super) fn commit(&mut self, pending: &[PendingEntry]) -> Result<(), BlockError> {
        if pending.is_empty() {
            return Ok(());
        }
        self.file.sync_data()?;
        for p in pending {
            self.write_host(p.l2 + p.l2_index * 8, &p.entry.to_be_bytes())?;
            if let Some(table) = self.l2_cache.get_mut(&p.l2) {
                table[p.l2_index as usize] = p.entry;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::create::{create, CreateOptions};
    use super::*;
    use crate::block::{BlockBackend, TempPath};

    fn new_image(tag: &str, size: u64, cluster_bits: u32) -> TempPath {
        let t = TempPath::new(tag);
        create(&t.0, &CreateOptions { size, cluster_bits, backing: None }).unwrap();
        t
    }

    #[test]
    fn writes_read_back_and_survive_reopening() {
        for cluster_bits in [9, 16] {
            let t = new_image("rw.qcow2", 4 << 20, cluster_bits);
            let mut img = Qcow2Image::open_writable(&t.0).unwrap();
            assert!(!img.read_only());
            let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
            img.write_at(1000, &data).unwrap();
            img.write_at((4 << 20) - 512, &[0xee; 512]).unwrap();
            img.write_at(1500, &[1, 2, 3]).unwrap();
            img.flush().unwrap();
            drop(img);
            let mut img = Qcow2Image::open(&t.0).unwrap();
            let mut back = vec![0u8; 5000];
            img.read_at(0, &mut back).unwrap();
            let mut want = vec![0u8; 5000];
            want[1000..4000].copy_from_slice(&data);
            want[1500..1503].copy_from_slice(&[1, 2, 3]);
            assert!(back == want, "cluster_bits {cluster_bits}");
            let mut end = [0u8; 512];
            img.read_at((4 << 20) - 512, &mut end).unwrap();
            assert_eq!(end, [0xee; 512]);
            let report = super::super::check::check(&t.0).unwrap();
            assert!(report.is_clean(), "cluster_bits {cluster_bits}: {report:?}");
        }
    }

    fn qemu_img(args: &[&str]) -> Option<std::process::Output> {
        std::process::Command::new("qemu-img").args(args).output().ok()
    }

    /// Images written here pass `qemu-img check` and read back the same through qemu-img:
    /// one qemu-img made, one made here over a raw backing file.
    #[test]
    fn qemu_img_checks_and_reads_what_is_written_here() {
        let made = TempPath::new("qemu-made.qcow2");
        let path = made.0.to_str().unwrap();
        if !qemu_img(&["create", "-q", "-f", "qcow2", path, "8M"]).is_some_and(|o| o.status.success()) {
            println!("qemu-img not available: skipping");
            return;
        }
        let backing = TempPath::new("backing.raw");
        let base: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&backing.0, &base).unwrap();
        let overlay = TempPath::new("overlay.qcow2");
        let name = backing.0.to_str().unwrap().to_string();
        let options = CreateOptions { size: 8 << 20, cluster_bits: 12, backing: Some((name, "raw".into())) };
        create(&overlay.0, &options).unwrap();
        for (image, under) in [(&made, vec![0u8; 8 << 20]), (&overlay, base)] {
            let mut want = under;
            let mut img = Qcow2Image::open_writable(&image.0).unwrap();
            for (at, len, byte) in [(0u64, 512usize, 1u8), (70_000, 200_000, 2), (5 << 20, 4096, 3), (69_632, 1024, 4)]
            {
                img.write_at(at, &vec![byte; len]).unwrap();
                want[at as usize..at as usize + len].fill(byte);
            }
            img.flush().unwrap();
            drop(img);
            let path = image.0.to_str().unwrap();
            let check = qemu_img(&["check", path]).unwrap();
            let text = String::from_utf8_lossy(&check.stdout);
            assert!(check.status.success() && text.contains("No errors were found"), "{text}");
            let raw = TempPath::new("back.raw");
            let convert = qemu_img(&["convert", "-O", "raw", path, raw.0.to_str().unwrap()]).unwrap();
            assert!(convert.status.success(), "{}", String::from_utf8_lossy(&convert.stderr));
            assert!(std::fs::read(&raw.0).unwrap() == want, "qemu-img reads what was written");
        }
    }

    /// Damaged tables are refused (the file untouched) or found by the check, never a panic.
    #[test]
    fn corrupt_tables_are_refused_or_reported() {
        let t = new_image("corrupt.qcow2", 1 << 20, 9);
        let mut img = Qcow2Image::open_writable(&t.0).unwrap();
        img.write_at(0, &[7; 512]).unwrap();
        drop(img);
        let good = std::fs::read(&t.0).unwrap();
        let patch = |at: usize, value: u64| {
            let mut bytes = good.clone();
            bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
            std::fs::write(&t.0, &bytes).unwrap();
        };
        // The refcount table pointing past the end of the file: refused, nothing written.
        let table_at = be64(&good, 48) as usize;
        patch(table_at, 1 << 40);
        let e = Qcow2Image::open_writable(&t.0).err().unwrap();
        assert!(e.to_string().contains("refcount block"), "{e}");
        assert_eq!(std::fs::read(&t.0).unwrap()[table_at..table_at + 8], (1u64 << 40).to_be_bytes());
        assert_eq!(std::fs::read(&t.0).unwrap().len(), good.len(), "the image is not modified");
        // An L2 entry pointing outside the file: the check reports it; writing there fails.
        let l1_at = be64(&good, 40) as usize;
        let l2_at = (be64(&good, l1_at) & OFFSET_MASK) as usize;
        patch(l2_at, (1 << 40) | COPIED);
        let report = super::super::check::check(&t.0).unwrap();
        assert!(report.errors > 0 && report.messages.iter().any(|m| m.contains("outside the file")), "{report:?}");
        let mut img = Qcow2Image::open_writable(&t.0).unwrap();
        assert!(img.write_at(0, &[1; 512]).is_err());
        drop(img);
        // A data cluster whose refcount is 0: an error (writing it again would corrupt).
        std::fs::write(&t.0, &good).unwrap();
        let data = be64(&good, l2_at) & OFFSET_MASK;
        let block = be64(&good, table_at) & OFFSET_MASK;
        let mut bytes = good.clone();
        let at = (block + (data >> 9) * 2) as usize;
        bytes[at..at + 2].copy_from_slice(&0u16.to_be_bytes());
        std::fs::write(&t.0, &bytes).unwrap();
        let report = super::super::check::check(&t.0).unwrap();
        assert_eq!(report.errors, 2, "refcount below its reference, and the copied flag: {report:?}");
        // A leaked cluster (a refcount nothing references) is a leak, not an error.
        let mut bytes = good.clone();
        let past = (block + ((good.len() as u64 >> 9) - 1) * 2) as usize;
        let free = past + 2;
        bytes[free..free + 2].copy_from_slice(&1u16.to_be_bytes());
        bytes.resize(good.len() + 512, 0);
        std::fs::write(&t.0, &bytes).unwrap();
        let report = super::super::check::check(&t.0).unwrap();
        assert_eq!((report.errors, report.leaks), (0, 1), "{report:?}");
    }

    #[test]
    fn a_full_refcount_table_grows_and_the_image_stays_consistent() {
        // 512-byte clusters: one refcount table cluster covers 64 blocks of 256 clusters,
        // 8 MiB of file; 24 MiB of data needs the table to grow twice.
        let t = new_image("full.qcow2", 64 << 20, 9);
        let first_table = be64(&std::fs::read(&t.0).unwrap(), 48);
        let mut img = Qcow2Image::open_writable(&t.0).unwrap();
        let pattern = |i: u64| [(i as u8) ^ 0x5a; 64 << 10];
        for i in 0..384u64 {
            img.write_at(i * (128 << 10), &pattern(i)).unwrap();
        }
        for i in 0..384u64 {
            let mut back = vec![0u8; 64 << 10];
            img.read_at(i * (128 << 10), &mut back).unwrap();
            assert!(back == pattern(i), "chunk {i} reads back");
        }
        drop(img);
        let bytes = std::fs::read(&t.0).unwrap();
        assert!(bytes.len() > 24 << 20, "the file passed what one table cluster covers");
        assert!(be32(&bytes, 56) >= 4 && be64(&bytes, 48) != first_table, "the table moved and grew");
        let report = super::super::check::check(&t.0).unwrap();
        assert!(report.is_clean(), "{report:?}");
        if let Some(out) = qemu_img(&["check", t.0.to_str().unwrap()]) {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.contains("No errors were found"), "{text}");
        }
        // Reopened, the grown table is read from the header.
        let mut img = Qcow2Image::open_writable(&t.0).unwrap();
        let mut back = vec![0u8; 64 << 10];
        img.read_at(383 * (128 << 10), &mut back).unwrap();
        assert!(back == pattern(383));
    }
}
