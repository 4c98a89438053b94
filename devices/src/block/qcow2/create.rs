//! New qcow2 images, laid out as `qemu-img create -f qcow2` lays them out: the header (and
//! a backing file's name and format) in cluster 0, then the refcount table, the refcount
//! blocks and the L1 table, every one of those clusters with refcount 1 and nothing else
//! allocated. Version 3, 16-bit refcounts, no features.

use super::write::REFCOUNT_ORDER;
use super::{CLUSTER_BITS, MAX_BACKING_NAME, MAX_L1_BYTES, QCOW2_MAGIC, V3_HEADER_LEN};
use crate::block::{BlockError, SECTOR_SIZE};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Header extension type: the backing file's format name.
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;

/// What a new image looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// The guest-visible size in bytes (a multiple of 512).
    pub size: u64,
    /// log2 of the cluster size (9..=21; QEMU's default is 16, 64 KiB).
    pub cluster_bits: u32,
    /// A backing file: its name as stored (relative to the new image's folder, or
    /// absolute) and its format (`raw`, `qcow2`).
    pub backing: Option<(String, String)>,
}

/// QEMU's default cluster size, 64 KiB.
pub const DEFAULT_CLUSTER_BITS: u32 = 16;

/// Writes a new qcow2 image at `path` (which must not exist).
pub fn create(path: &Path, options: &CreateOptions) -> Result<(), BlockError> {
    let invalid = |reason: String| BlockError::Qcow2Corrupt { path: path.to_path_buf(), reason };
    if !CLUSTER_BITS.contains(&options.cluster_bits) {
        return Err(invalid(format!("cluster size 2^{} is outside 512 bytes to 2 MiB", options.cluster_bits)));
    }
    if !options.size.is_multiple_of(SECTOR_SIZE) {
        return Err(BlockError::NotSectorMultiple { path: path.to_path_buf(), size: options.size });
    }
    let cluster_size = 1u64 << options.cluster_bits;
    let l2_entries = cluster_size / 8;
    let l1_entries = options.size.div_ceil(cluster_size).div_ceil(l2_entries).max(1);
    if l1_entries * 8 > MAX_L1_BYTES {
        return Err(invalid(format!("{} bytes need an L1 table over 32 MiB: use larger clusters", options.size)));
    }
    let l1_clusters = (l1_entries * 8).div_ceil(cluster_size);
    // Refcount blocks for every metadata cluster, and a table for the blocks: grow both
    // until they cover themselves.
    let per_block = cluster_size / 2;
    let (mut table_clusters, mut blocks) = (1u64, 1u64);
    loop {
        let total = 1 + table_clusters + blocks + l1_clusters;
        let need_blocks = total.div_ceil(per_block);
        let need_table = (need_blocks * 8).div_ceil(cluster_size);
        if (need_blocks, need_table) == (blocks, table_clusters) {
            break;
        }
        (blocks, table_clusters) = (need_blocks.max(blocks), need_table.max(table_clusters));
    }
    let table_at = cluster_size;
    let blocks_at = table_at + table_clusters * cluster_size;
    let l1_at = blocks_at + blocks * cluster_size;
    let end = l1_at + l1_clusters * cluster_size;

    let mut header = vec![0u8; cluster_size as usize];
    let put32 = |h: &mut [u8], at: usize, v: u32| h[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let put64 = |h: &mut [u8], at: usize, v: u64| h[at..at + 8].copy_from_slice(&v.to_be_bytes());
    put32(&mut header, 0, QCOW2_MAGIC);
    put32(&mut header, 4, 3);
    put32(&mut header, 20, options.cluster_bits);
    put64(&mut header, 24, options.size);
    put32(&mut header, 36, l1_entries as u32);
    put64(&mut header, 40, l1_at);
    put64(&mut header, 48, table_at);
    put32(&mut header, 56, table_clusters as u32);
    put32(&mut header, 96, REFCOUNT_ORDER);
    put32(&mut header, 100, V3_HEADER_LEN);
    if let Some((name, format)) = &options.backing {
        if name.is_empty() || name.len() > MAX_BACKING_NAME as usize {
            return Err(invalid(format!("backing file name of {} bytes", name.len())));
        }
        // The backing format extension, the end-of-extensions marker, then the name.
        let mut at = V3_HEADER_LEN as usize;
        put32(&mut header, at, EXT_BACKING_FORMAT);
        put32(&mut header, at + 4, format.len() as u32);
        header[at + 8..at + 8 + format.len()].copy_from_slice(format.as_bytes());
        at += 8 + format.len().next_multiple_of(8);
        at += 8;
        if at + name.len() > header.len() {
            return Err(invalid("the backing file name does not fit in the first cluster".into()));
        }
        header[at..at + name.len()].copy_from_slice(name.as_bytes());
        put64(&mut header, 8, at as u64);
        put32(&mut header, 16, name.len() as u32);
    }
    let mut table = vec![0u8; (table_clusters * cluster_size) as usize];
    for b in 0..blocks {
        put64(&mut table, (b * 8) as usize, blocks_at + b * cluster_size);
    }
    let mut refcounts = vec![0u8; (blocks * cluster_size) as usize];
    for cluster in 0..end / cluster_size {
        refcounts[(cluster * 2) as usize..][..2].copy_from_slice(&1u16.to_be_bytes());
    }
    let file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| BlockError::Open { path: path.to_path_buf(), source })?;
    file.write_all_at(&header, 0)?;
    file.write_all_at(&table, table_at)?;
    file.write_all_at(&refcounts, blocks_at)?;
    file.set_len(end)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockBackend, Qcow2Image, TempPath};

    #[test]
    fn new_images_open_empty_and_check_clean() {
        for (size, cluster_bits) in [(1 << 20, 16), (10 << 30, 16), (64 << 20, 9), (512, 21)] {
            let t = TempPath::new("new.qcow2");
            create(&t.0, &CreateOptions { size, cluster_bits, backing: None }).unwrap();
            let mut img = Qcow2Image::open(&t.0).unwrap();
            assert_eq!(img.len(), size);
            let mut buf = [1u8; 512];
            img.read_at(size - 512, &mut buf).unwrap();
            assert_eq!(buf, [0; 512]);
            let report = super::super::check::check(&t.0).unwrap();
            assert!(report.is_clean(), "{size} {cluster_bits}: {report:?}");
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let t = TempPath::new("bad.qcow2");
        assert!(create(&t.0, &CreateOptions { size: 1000, cluster_bits: 16, backing: None }).is_err());
        assert!(create(&t.0, &CreateOptions { size: 512, cluster_bits: 8, backing: None }).is_err());
        assert!(create(&t.0, &CreateOptions { size: 1 << 50, cluster_bits: 9, backing: None }).is_err());
        assert!(!t.0.exists(), "nothing written for refused options");
    }
}
