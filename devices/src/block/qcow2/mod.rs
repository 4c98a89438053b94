//! qcow2 images (versions 2 and 3), after QEMU's `docs/interop/qcow2.txt`: read here,
//! written by [`write`] (cluster allocation with refcounts), made by [`create`] and
//! verified by [`check`].
//!
//! A guest offset splits into an L1 index, an L2 index and an offset in a cluster; the
//! L1 table (one cluster-aligned array of big-endian u64) points at L2 tables, whose
//! entries point at data clusters. A cluster with no L2 entry reads from the backing
//! file, or as zeros when there is none; a v3 "all zeros" entry reads as zeros.
//! Compressed clusters, encryption, external data files and extended L2 entries are
//! refused with a [`BlockError::Qcow2Unsupported`] naming the feature. Every table and
//! cluster offset is checked against the file size before it is read.

pub mod check;
pub mod create;
mod write;

use super::lock::lock_image;
use super::{check_range, BlockBackend, BlockError, RawImage, SECTOR_SIZE};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `QFI\xfb`.
const QCOW2_MAGIC: u32 = 0x5146_49fb;
/// Size of a version 2 header.
const V2_HEADER_LEN: usize = 72;
/// Size of the fixed part of a version 3 header.
const V3_HEADER_LEN: u32 = 104;
/// Smallest and largest cluster_bits QEMU accepts.
const CLUSTER_BITS: std::ops::RangeInclusive<u32> = 9..=21;
/// Longest backing file name (QEMU's limit).
const MAX_BACKING_NAME: u32 = 1023;
/// Largest L1 table accepted (32 MiB, QEMU's limit).
const MAX_L1_BYTES: u64 = 32 << 20;
/// Bits 9-55 of an L1 or L2 entry: the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L2 entry bit 62: compressed cluster.
const L2_COMPRESSED: u64 = 1 << 62;
/// L2 entry bit 0 (v3): the cluster reads as zeros.
const L2_ZERO: u64 = 1;
/// Incompatible feature bit 2: external data file.
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible feature bit 3: a compression type other than zlib.
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Incompatible feature bit 4: extended L2 entries (subclusters).
const INCOMPAT_EXTL2: u64 = 1 << 4;
/// Incompatible feature bits 0 (dirty) and 1 (corrupt) only matter to writers.
const INCOMPAT_WRITER_ONLY: u64 = 0b11;
/// Longest chain of backing files followed (loops are found by file identity).
const MAX_BACKING_DEPTH: u32 = 16;
/// L2 tables kept in memory before the cache is emptied.
const L2_CACHE_TABLES: usize = 64;

/// True when the file at `path` starts with the qcow2 magic.
pub fn has_magic(path: &Path) -> Result<bool, BlockError> {
    let file = File::open(path).map_err(|source| BlockError::Open { path: path.to_path_buf(), source })?;
    let mut magic = [0u8; 4];
    Ok(file.read_exact_at(&mut magic, 0).is_ok() && u32::from_be_bytes(magic) == QCOW2_MAGIC)
}

/// What `rx86 img info` shows of an image's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// The backing file's name as stored.
    pub backing: Option<String>,
}

impl Header {
    /// Reads the header of the valid qcow2 image at `path`.
    pub fn read(path: &Path) -> Result<Header, BlockError> {
        let image = Qcow2Image::open(path)?;
        let mut h = [0u8; V2_HEADER_LEN];
        image.file.read_exact_at(&mut h, 0)?;
        let (offset, len) = (be64(&h, 8), be32(&h, 16) as usize);
        let backing = if offset == 0 || len == 0 {
            None
        } else {
            // Bounds were checked when the image was opened.
            let mut name = vec![0u8; len];
            image.file.read_exact_at(&mut name, offset)?;
            Some(String::from_utf8_lossy(&name).into_owned())
        };
        Ok(Header { version: be32(&h, 4), cluster_bits: image.cluster_bits, backing })
    }
}

/// A qcow2 image, opened for reading or (see [`Qcow2Image::open_writable`]) for writing.
pub struct Qcow2Image {
    path: PathBuf,
    file: File,
    file_size: u64,
    size: u64,
    cluster_bits: u32,
    /// Where the L1 table is in the file.
    l1_offset: u64,
    l1: Vec<u64>,
    l2_cache: HashMap<u64, Vec<u64>>,
    backing: Option<Box<dyn BlockBackend>>,
    /// What writing needs; `None` when opened read-only.
    writer: Option<write::Writer>,
}

/// A file's identity (device and inode), to tell a loop of backing files by whatever names
/// they reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    fn of(file: &File) -> std::io::Result<FileId> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata()?;
        Ok(FileId(m.dev(), m.ino()))
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Qcow2Image {
    /// Opens and validates the image at `path` (and its backing file, if any) for reading.
    pub fn open(path: &Path) -> Result<Self, BlockError> {
        Self::open_in_chain(path, &[], false)
    }

    /// Opens the image at `path` for reading and writing (its backing files read-only),
    /// taking QEMU's write lock. Images with internal snapshots, refcounts other than
    /// 16-bit, or the dirty or corrupt bit set are refused for writing.
    pub fn open_writable(path: &Path) -> Result<Self, BlockError> {
        Self::open_in_chain(path, &[], true)
    }

    /// Opens `path` as a backing file of the images in `chain` (the user's image first, by
    /// file identity); empty for the image the user named.
    fn open_in_chain(path: &Path, chain: &[FileId], writable: bool) -> Result<Self, BlockError> {
        let open_err = |source| BlockError::Open { path: path.to_path_buf(), source };
        let corrupt = |reason: String| BlockError::Qcow2Corrupt { path: path.to_path_buf(), reason };
        let unsupported = |feature: String| BlockError::Qcow2Unsupported { path: path.to_path_buf(), feature };
        let file = File::options().read(true).write(writable).open(path).map_err(open_err)?;
        let id = FileId::of(&file).map_err(open_err)?;
        if chain.contains(&id) {
            return Err(corrupt("the backing file chain loops back to this image".into()));
        }
        let chain: Vec<FileId> = chain.iter().copied().chain([id]).collect();
        lock_image(&file, path, writable)?;
        let file_size = file.metadata().map_err(open_err)?.len();
        let mut h = [0u8; V3_HEADER_LEN as usize];
        let avail = (file_size.min(h.len() as u64)) as usize;
        file.read_exact_at(&mut h[..avail], 0).map_err(open_err)?;
        if avail < V2_HEADER_LEN || be32(&h, 0) != QCOW2_MAGIC {
            return Err(corrupt("no qcow2 header (bad magic or file too short)".into()));
        }
        let version = be32(&h, 4);
        if version != 2 && version != 3 {
            return Err(unsupported(format!("version {version}")));
        }
        let cluster_bits = be32(&h, 20);
        if !CLUSTER_BITS.contains(&cluster_bits) {
            return Err(corrupt(format!("cluster_bits {cluster_bits} outside 9..=21")));
        }
        let cluster_size = 1u64 << cluster_bits;
        let size = be64(&h, 24);
        if !size.is_multiple_of(SECTOR_SIZE) {
            return Err(BlockError::NotSectorMultiple { path: path.to_path_buf(), size });
        }
        if be32(&h, 32) != 0 {
            return Err(unsupported("encryption".into()));
        }
        if version == 3 {
            if avail < V3_HEADER_LEN as usize {
                return Err(corrupt("version 3 header is truncated".into()));
            }
            let incompatible = be64(&h, 72);
            let header_length = be32(&h, 100);
            if header_length < V3_HEADER_LEN || u64::from(header_length) > cluster_size {
                return Err(corrupt(format!("header_length {header_length}")));
            }
            for (bit, name) in [
                (INCOMPAT_DATA_FILE, "external data file"),
                (INCOMPAT_COMPRESSION, "compression type other than zlib"),
                (INCOMPAT_EXTL2, "extended L2 entries"),
            ] {
                if incompatible & bit != 0 {
                    return Err(unsupported(name.into()));
                }
            }
            let unknown =
                incompatible & !(INCOMPAT_WRITER_ONLY | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2);
            if unknown != 0 {
                return Err(unsupported(format!("incompatible feature bits {unknown:#x}")));
            }
        }
        let l1_size = u64::from(be32(&h, 36));
        let l1_offset = be64(&h, 40);
        let l2_entries = cluster_size / 8;
        let needed = size.div_ceil(cluster_size).div_ceil(l2_entries);
        if l1_size < needed {
            return Err(corrupt(format!("L1 table has {l1_size} entries, the disk size needs {needed}")));
        }
        if l1_size * 8 > MAX_L1_BYTES {
            return Err(corrupt(format!("L1 table of {l1_size} entries is too large")));
        }
        if !l1_offset.is_multiple_of(cluster_size)
            || l1_offset.checked_add(l1_size * 8).is_none_or(|end| end > file_size)
        {
            return Err(corrupt(format!("L1 table at {l1_offset:#x} is misaligned or past the end of the file")));
        }
        let mut raw = vec![0u8; (needed * 8) as usize];
        file.read_exact_at(&mut raw, l1_offset).map_err(open_err)?;
        let l1 = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();
        let backing = Self::open_backing(path, &file, file_size, &h, &chain)?;
        let mut image = Qcow2Image {
            path: path.to_path_buf(),
            file,
            file_size,
            size,
            cluster_bits,
            l1_offset,
            l1,
            l2_cache: HashMap::new(),
            backing,
            writer: None,
        };
        if writable {
            image.writer = Some(write::Writer::open(&mut image, &h, version)?);
        }
        Ok(image)
    }

    /// Opens the backing file the header names, relative to the image's directory.
    fn open_backing(
        path: &Path,
        file: &File,
        file_size: u64,
        h: &[u8],
        chain: &[FileId],
    ) -> Result<Option<Box<dyn BlockBackend>>, BlockError> {
        let offset = be64(h, 8);
        let len = be32(h, 16);
        if offset == 0 || len == 0 {
            return Ok(None);
        }
        let corrupt = |reason: String| BlockError::Qcow2Corrupt { path: path.to_path_buf(), reason };
        if len > MAX_BACKING_NAME || offset.checked_add(u64::from(len)).is_none_or(|end| end > file_size) {
            return Err(corrupt(format!("backing file name at {offset:#x} ({len} bytes) is out of bounds")));
        }
        let mut name = vec![0u8; len as usize];
        file.read_exact_at(&mut name, offset)?;
        let name = String::from_utf8(name).map_err(|_| corrupt("backing file name is not UTF-8".into()))?;
        let target = path.parent().unwrap_or(Path::new(".")).join(&name);
        if target == path {
            return Err(corrupt("the image is its own backing file".into()));
        }
        if chain.len() > MAX_BACKING_DEPTH as usize {
            return Err(corrupt(format!("backing file chain is longer than {MAX_BACKING_DEPTH}")));
        }
        if has_magic(&target)? {
            Ok(Some(Box::new(Self::open_in_chain(&target, chain, false)?)))
        } else {
            Ok(Some(Box::new(RawImage::open(&target, true)?)))
        }
    }

    fn corrupt(&self, reason: String) -> BlockError {
        BlockError::Qcow2Corrupt { path: self.path.clone(), reason }
    }

    /// The L2 entry for guest cluster `cluster` (0 when no L2 table is allocated).
    fn l2_entry(&mut self, cluster: u64) -> Result<u64, BlockError> {
        let l2_bits = self.cluster_bits - 3;
        let l1_index = (cluster >> l2_bits) as usize;
        let l2_index = (cluster & ((1 << l2_bits) - 1)) as usize;
        let l2_offset = self.l1[l1_index] & OFFSET_MASK;
        if l2_offset == 0 {
            return Ok(0);
        }
        if !self.l2_cache.contains_key(&l2_offset) {
            let cluster_size = 1u64 << self.cluster_bits;
            if !l2_offset.is_multiple_of(cluster_size) || l2_offset + cluster_size > self.file_size {
                return Err(self.corrupt(format!("L2 table at {l2_offset:#x} is misaligned or past the end")));
            }
            let mut raw = vec![0u8; cluster_size as usize];
            self.file.read_exact_at(&mut raw, l2_offset)?;
            if self.l2_cache.len() >= L2_CACHE_TABLES {
                self.l2_cache.clear();
            }
            self.l2_cache.insert(l2_offset, raw.chunks_exact(8).map(|c| be64(c, 0)).collect());
        }
        Ok(self.l2_cache[&l2_offset][l2_index])
    }

    /// Fills `buf` from guest offset `offset`, all inside one cluster.
    fn read_in_cluster(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let cluster_size = 1u64 << self.cluster_bits;
        let entry = self.l2_entry(offset >> self.cluster_bits)?;
        if entry & L2_COMPRESSED != 0 {
            return Err(BlockError::Qcow2Unsupported {
                path: self.path.clone(),
                feature: "compressed clusters".into(),
            });
        }
        let host = entry & OFFSET_MASK;
        if entry & L2_ZERO != 0 {
            buf.fill(0);
        } else if host != 0 {
            if !host.is_multiple_of(cluster_size) || host + cluster_size > self.file_size {
                return Err(self.corrupt(format!("data cluster at {host:#x} is misaligned or past the end")));
            }
            self.file.read_exact_at(buf, host + (offset & (cluster_size - 1)))?;
        } else if let Some(backing) = &mut self.backing {
            let end = backing.len();
            let have = end.saturating_sub(offset).min(buf.len() as u64) as usize;
            if have > 0 {
                backing.read_at(offset, &mut buf[..have])?;
            }
            buf[have..].fill(0);
        } else {
            buf.fill(0);
        }
        Ok(())
    }
}

impl BlockBackend for Qcow2Image {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_only(&self) -> bool {
        self.writer.is_none()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len(), self.size)?;
        let cluster_size = 1u64 << self.cluster_bits;
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let take = ((cluster_size - (at & (cluster_size - 1))) as usize).min(buf.len() - done);
            self.read_in_cluster(at, &mut buf[done..done + take])?;
            done += take;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.writer.is_none() {
            return Err(BlockError::ReadOnly);
        }
        check_range(offset, buf.len(), self.size)?;
        let cluster_size = 1u64 << self.cluster_bits;
        let mut done = 0;
        let mut pending = Vec::new();
        while done < buf.len() {
            let at = offset + done as u64;
            let take = ((cluster_size - (at & (cluster_size - 1))) as usize).min(buf.len() - done);
            match self.write_in_cluster(at, &buf[done..done + take]) {
                Ok(entry) => pending.extend(entry),
                Err(e) => {
                    // What was written so far is still pointed at.
                    self.commit(&pending)?;
                    return Err(e);
                }
            }
            done += take;
        }
        self.commit(&pending)
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        if self.writer.is_some() {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::TempPath;
    use super::*;

    /// Test image layout with 512-byte clusters: header in cluster 0, L1 in cluster 1,
    /// one L2 table in cluster 2, data clusters from cluster 3 on.
    struct Builder {
        version: u32,
        size: u64,
        /// (guest cluster, L2 entry flags, data) for each allocated cluster.
        clusters: Vec<(u64, u64, Vec<u8>)>,
        backing: Option<String>,
    }

    const CB: u32 = 9;
    const CS: usize = 1 << CB;

    impl Builder {
        fn new(version: u32, size: u64) -> Self {
            Builder { version, size, clusters: Vec::new(), backing: None }
        }

        fn bytes(&self) -> Vec<u8> {
            let mut f = vec![0u8; 3 * CS];
            f[0..4].copy_from_slice(&QCOW2_MAGIC.to_be_bytes());
            f[4..8].copy_from_slice(&self.version.to_be_bytes());
            f[20..24].copy_from_slice(&CB.to_be_bytes());
            f[24..32].copy_from_slice(&self.size.to_be_bytes());
            let l1_entries = self.size.div_ceil(CS as u64).div_ceil(CS as u64 / 8).max(1) as u32;
            f[36..40].copy_from_slice(&l1_entries.to_be_bytes());
            f[40..48].copy_from_slice(&(CS as u64).to_be_bytes());
            if self.version == 3 {
                f[96..100].copy_from_slice(&4u32.to_be_bytes());
                f[100..104].copy_from_slice(&V3_HEADER_LEN.to_be_bytes());
            }
            if let Some(name) = &self.backing {
                f[8..16].copy_from_slice(&200u64.to_be_bytes());
                f[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
                f[200..200 + name.len()].copy_from_slice(name.as_bytes());
            }
            f[CS..CS + 8].copy_from_slice(&((2 * CS as u64) | (1 << 63)).to_be_bytes());
            for (i, (guest, flags, data)) in self.clusters.iter().enumerate() {
                let host = if data.is_empty() { 0 } else { (3 + i) * CS };
                let entry = host as u64 | flags;
                f[2 * CS + 8 * *guest as usize..][..8].copy_from_slice(&entry.to_be_bytes());
                if !data.is_empty() {
                    f.resize(host + CS, 0);
                    f[host..host + CS].copy_from_slice(data);
                }
            }
            f
        }

        fn write(&self, tag: &str) -> TempPath {
            let t = TempPath::new(tag);
            std::fs::write(&t.0, self.bytes()).unwrap();
            t
        }
    }

    #[test]
    fn reads_allocated_zero_and_unallocated_clusters() {
        for version in [2, 3] {
            let mut b = Builder::new(version, 8 * CS as u64);
            b.clusters.push((1, 0, vec![0xa1; CS]));
            b.clusters.push((5, 1 << 63, (0..CS).map(|i| i as u8).collect()));
            if version == 3 {
                b.clusters.push((6, L2_ZERO, Vec::new()));
            }
            let t = b.write("img.qcow2");
            assert!(has_magic(&t.0).unwrap());
            let mut q = Qcow2Image::open(&t.0).unwrap();
            assert_eq!(q.len(), 8 * CS as u64);
            assert!(q.read_only());
            let mut all = vec![0xffu8; 8 * CS];
            q.read_at(0, &mut all).unwrap();
            assert_eq!(&all[..CS], &[0; CS][..], "unallocated reads zero");
            assert_eq!(&all[CS..2 * CS], &[0xa1; CS][..]);
            assert_eq!(all[5 * CS + 7], 7);
            assert_eq!(&all[6 * CS..], &[0; 2 * CS][..]);
            let mut cross = [0u8; 4];
            q.read_at(2 * CS as u64 - 2, &mut cross).unwrap();
            assert_eq!(cross, [0xa1, 0xa1, 0, 0], "a read across a cluster boundary");
            assert!(matches!(q.write_at(0, &[0; 512]), Err(BlockError::ReadOnly)));
            assert!(matches!(q.read_at(8 * CS as u64 - 1, &mut [0; 2]), Err(BlockError::OutOfRange { .. })));
        }
    }

    #[test]
    fn unallocated_clusters_read_from_the_backing_file() {
        let base = TempPath::new("base.raw");
        std::fs::write(&base.0, vec![0x5a; 2 * CS]).unwrap();
        let mut b = Builder::new(3, 4 * CS as u64);
        b.backing = Some(base.0.file_name().unwrap().to_str().unwrap().to_string());
        b.clusters.push((1, 0, vec![0x11; CS]));
        let t = b.write("overlay.qcow2");
        let mut q = Qcow2Image::open(&t.0).unwrap();
        let mut all = vec![0u8; 4 * CS];
        q.read_at(0, &mut all).unwrap();
        assert_eq!(&all[..CS], &[0x5a; CS][..], "from the backing file");
        assert_eq!(&all[CS..2 * CS], &[0x11; CS][..], "allocated in the overlay");
        assert_eq!(&all[2 * CS..], &[0; 2 * CS][..], "past the backing file's end");
    }

    #[test]
    fn backing_file_loops_are_refused() {
        let a = TempPath::new("loop-a.qcow2");
        let b = TempPath::new("loop-b.qcow2");
        let name = |t: &TempPath| t.0.file_name().unwrap().to_str().unwrap().to_string();
        let mut img = Builder::new(3, 4 * CS as u64);
        img.backing = Some(name(&b));
        std::fs::write(&a.0, img.bytes()).unwrap();
        img.backing = Some(name(&a));
        std::fs::write(&b.0, img.bytes()).unwrap();
        let e = Qcow2Image::open(&a.0).err().expect("a loop must be refused");
        assert!(e.to_string().contains("backing file chain loops back"), "{e}");
        // Writable too: the loop is found before the lock would refuse the second opening.
        let e = Qcow2Image::open_writable(&a.0).err().expect("a loop must be refused");
        assert!(e.to_string().contains("backing file chain loops back"), "{e}");
        // A missing backing file is an open error naming it.
        img.backing = Some("no-such-base.raw".into());
        std::fs::write(&a.0, img.bytes()).unwrap();
        let e = Qcow2Image::open(&a.0).err().unwrap();
        assert!(e.to_string().contains("no-such-base.raw"), "{e}");
    }

    fn open_err(bytes: &[u8]) -> BlockError {
        let t = TempPath::new("bad.qcow2");
        std::fs::write(&t.0, bytes).unwrap();
        Qcow2Image::open(&t.0).err().expect("must be refused")
    }

    #[test]
    fn corrupt_headers_are_clear_errors() {
        let good = Builder::new(3, 8 * CS as u64).bytes();
        let set = |at: usize, v: &[u8]| {
            let mut b = good.clone();
            b[at..at + v.len()].copy_from_slice(v);
            b
        };
        let corrupt = |e: BlockError| matches!(e, BlockError::Qcow2Corrupt { .. });
        assert!(corrupt(open_err(&good[..40])), "truncated");
        assert!(corrupt(open_err(&set(0, b"QFI\0"))), "magic");
        assert!(matches!(open_err(&set(4, &7u32.to_be_bytes())), BlockError::Qcow2Unsupported { .. }));
        assert!(corrupt(open_err(&set(20, &40u32.to_be_bytes()))), "cluster_bits");
        assert!(corrupt(open_err(&set(20, &8u32.to_be_bytes()))), "cluster_bits");
        assert!(matches!(open_err(&set(24, &1000u64.to_be_bytes())), BlockError::NotSectorMultiple { .. }));
        assert!(corrupt(open_err(&set(24, &(1u64 << 40).to_be_bytes()))), "size needs a bigger L1");
        assert!(corrupt(open_err(&set(40, &(1u64 << 40).to_be_bytes()))), "L1 past the end");
        assert!(corrupt(open_err(&set(40, &0x201u64.to_be_bytes()))), "L1 misaligned");
        assert!(corrupt(open_err(&set(36, &u32::MAX.to_be_bytes()))), "huge L1");
        assert!(corrupt(open_err(&set(100, &50u32.to_be_bytes()))), "header_length");
        let e = open_err(&set(32, &1u32.to_be_bytes()));
        assert!(e.to_string().contains("encryption"), "{e}");
        let e = open_err(&set(79, &[INCOMPAT_EXTL2 as u8]));
        assert!(e.to_string().contains("extended L2"), "{e}");
        assert!(corrupt(open_err(&set(8, &[0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 10]))), "backing name past the end");
    }

    #[test]
    fn bad_tables_fail_reads_cleanly() {
        let mut b = Builder::new(3, 8 * CS as u64);
        b.clusters.push((0, 0, vec![1; CS]));
        b.clusters.push((2, L2_COMPRESSED, Vec::new()));
        let mut bytes = b.bytes();
        // Guest cluster 1 points past the end of the file.
        bytes[2 * CS + 8..2 * CS + 16].copy_from_slice(&(1u64 << 40).to_be_bytes());
        let t = TempPath::new("tables.qcow2");
        std::fs::write(&t.0, &bytes).unwrap();
        let mut q = Qcow2Image::open(&t.0).unwrap();
        q.read_at(0, &mut [0; 512]).unwrap();
        assert!(matches!(q.read_at(512, &mut [0; 512]), Err(BlockError::Qcow2Corrupt { .. })));
        let e = q.read_at(1024, &mut [0; 512]).unwrap_err();
        assert!(e.to_string().contains("compressed"), "{e}");
        // An L1 entry pointing at a misaligned L2 table.
        bytes[CS..CS + 8].copy_from_slice(&0x1234u64.to_be_bytes());
        std::fs::write(&t.0, &bytes).unwrap();
        let mut q = Qcow2Image::open(&t.0).unwrap();
        assert!(matches!(q.read_at(0, &mut [0; 512]), Err(BlockError::Qcow2Corrupt { .. })));
    }

    /// Deterministic fuzz of the header and table parser: flipped bytes in a valid
    /// image either open and read cleanly or fail with an error, never panic or read
    /// outside the file.
    #[test]
    fn fuzz_corrupted_images() {
        let mut b = Builder::new(3, 16 * CS as u64);
        b.clusters.push((0, 0, vec![1; CS]));
        b.clusters.push((3, 1 << 63, vec![2; CS]));
        b.backing = None;
        let good = b.bytes();
        let t = TempPath::new("fuzz.qcow2");
        let mut seed = 0x0bad_cafeu32;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut opened = 0;
        for _ in 0..400 {
            let mut bytes = good.clone();
            for _ in 0..1 + rnd() % 4 {
                let at = (rnd() as usize) % bytes.len().min(3 * CS);
                bytes[at] = rnd() as u8;
            }
            std::fs::write(&t.0, &bytes).unwrap();
            if let Ok(mut q) = Qcow2Image::open(&t.0) {
                opened += 1;
                let mut buf = vec![0u8; 4 * CS];
                for off in [0, 2 * CS as u64, q.len().saturating_sub(4 * CS as u64)] {
                    let _ = q.read_at(off, &mut buf);
                }
            }
        }
        assert!(opened > 0, "some mutations leave a readable image");
    }

    /// A real image made by qemu-img, when it is installed.
    #[test]
    fn reads_what_qemu_img_writes() {
        let raw = TempPath::new("src.raw");
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i / 512 * 7 + i) as u8).collect();
        let mut sparse = data.clone();
        sparse[1 << 20..2 << 20].fill(0);
        std::fs::write(&raw.0, &sparse).unwrap();
        let q = TempPath::new("conv.qcow2");
        let status = std::process::Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "qcow2"])
            .arg(&raw.0)
            .arg(&q.0)
            .status();
        match status {
            Ok(s) if s.success() => {}
            _ => {
                println!("qemu-img not available: skipping the qemu-img qcow2 test");
                return;
            }
        }
        let mut img = Qcow2Image::open(&q.0).unwrap();
        assert_eq!(img.len(), sparse.len() as u64);
        let mut back = vec![0u8; sparse.len()];
        img.read_at(0, &mut back).unwrap();
        assert!(back == sparse, "qcow2 contents differ from the raw source");

        // An empty overlay over the raw file reads the backing file.
        let overlay = TempPath::new("overlay.qcow2");
        let ok = qemu_img(&["create", "-f", "qcow2", "-F", "raw", "-b"], &[&raw.0, &overlay.0]);
        assert!(ok, "qemu-img create with a backing file");
        let mut img = Qcow2Image::open(&overlay.0).unwrap();
        img.read_at(0, &mut back).unwrap();
        assert!(back == sparse, "overlay reads through to its backing file");

        // Compressed clusters are refused with a clear error, not wrong data.
        let compressed = TempPath::new("compressed.qcow2");
        assert!(qemu_img(&["convert", "-c", "-f", "raw", "-O", "qcow2"], &[&raw.0, &compressed.0]));
        let mut img = Qcow2Image::open(&compressed.0).unwrap();
        let e = img.read_at(0, &mut back[..512]).unwrap_err();
        assert!(e.to_string().contains("compressed clusters"), "{e}");
    }

    fn qemu_img(args: &[&str], paths: &[&std::path::Path]) -> bool {
        std::process::Command::new("qemu-img").args(args).args(paths).status().is_ok_and(|s| s.success())
    }
}
