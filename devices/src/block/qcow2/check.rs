//! Consistency check of a qcow2 image, as `qemu-img check` does it: every cluster the
//! metadata references (header, L1 and refcount tables, refcount blocks, L2 tables, data
//! and compressed clusters) is counted, and the counts are compared with the stored
//! refcounts. A cluster referenced more often than its refcount says is an error (writing
//! it would corrupt another user); one with a refcount but no reference is a leak (wasted
//! space only). Entries whose "copied" flag disagrees with a refcount of 1 are errors too.
//! Nothing is written; every offset is checked against the file before it is read.

use super::write::{COPIED, REFCOUNT_ORDER};
use super::{be32, be64, CLUSTER_BITS, L2_COMPRESSED, MAX_L1_BYTES, OFFSET_MASK, QCOW2_MAGIC, V2_HEADER_LEN};
use crate::block::BlockError;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Most problems listed one by one (the counts cover all of them).
const MAX_LISTED: usize = 20;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Corruptions: references without the refcount they need, references out of the
    /// file, wrong "copied" flags.
    pub errors: u64,
    /// Clusters whose refcount is higher than their references (unreferenced ones leak).
    pub leaks: u64,
    /// Guest clusters with data (allocated or compressed).
    pub allocated: u64,
    /// The guest size in clusters.
    pub total: u64,
    /// The first problems, one line each.
    pub messages: Vec<String>,
}

impl CheckReport {
    /// No errors and no leaks.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.leaks == 0
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.messages.len() < MAX_LISTED {
            self.messages.push(format!("ERROR {message}"));
        }
    }

    fn leak(&mut self, message: String) {
        self.leaks += 1;
        if self.messages.len() < MAX_LISTED {
            self.messages.push(format!("Leaked cluster {message}"));
        }
    }
}

/// Checks the qcow2 image at `path`. `Err` when it cannot be read as qcow2 at all (no
/// header, tables out of the file, features this checker does not know).
pub fn check(path: &Path) -> Result<CheckReport, BlockError> {
    let corrupt = |reason: String| BlockError::Qcow2Corrupt { path: path.to_path_buf(), reason };
    let unsupported = |feature: String| BlockError::Qcow2Unsupported { path: path.to_path_buf(), feature };
    let file = File::open(path).map_err(|source| BlockError::Open { path: path.to_path_buf(), source })?;
    let file_size = file.metadata()?.len();
    let mut h = [0u8; 104];
    let avail = file_size.min(h.len() as u64) as usize;
    file.read_exact_at(&mut h[..avail], 0)?;
    if avail < V2_HEADER_LEN || be32(&h, 0) != QCOW2_MAGIC {
        return Err(corrupt("no qcow2 header".into()));
    }
    let version = be32(&h, 4);
    let cluster_bits = be32(&h, 20);
    if !(2..=3).contains(&version) || !CLUSTER_BITS.contains(&cluster_bits) {
        return Err(unsupported(format!("version {version}, cluster_bits {cluster_bits}")));
    }
    if version == 3 && (avail < 104 || be32(&h, 96) != REFCOUNT_ORDER) {
        return Err(unsupported("refcounts other than 16-bit".into()));
    }
    if be32(&h, 60) != 0 {
        return Err(unsupported("checking internal snapshots".into()));
    }
    let cluster_size = 1u64 << cluster_bits;
    let size = be64(&h, 24);
    let l1_size = u64::from(be32(&h, 36));
    let l1_offset = be64(&h, 40);
    let table_offset = be64(&h, 48);
    let table_clusters = u64::from(be32(&h, 56));
    let table_ok = |offset: u64, bytes: u64| {
        bytes <= MAX_L1_BYTES
            && offset.is_multiple_of(cluster_size)
            && offset.checked_add(bytes).is_some_and(|end| end <= file_size)
    };
    if !table_ok(l1_offset, l1_size * 8) {
        return Err(corrupt(format!("L1 table at {l1_offset:#x} is misaligned or out of the file")));
    }
    if table_clusters == 0 || !table_ok(table_offset, table_clusters * cluster_size) {
        return Err(corrupt(format!("refcount table at {table_offset:#x} is misaligned or out of the file")));
    }
    let read_table = |offset: u64, bytes: u64| -> Result<Vec<u64>, BlockError> {
        let mut raw = vec![0u8; bytes as usize];
        file.read_exact_at(&mut raw, offset)?;
        Ok(raw.chunks_exact(8).map(|c| be64(c, 0)).collect())
    };

    let mut report = CheckReport { total: size.div_ceil(cluster_size), ..CheckReport::default() };
    // Expected refcount of each referenced cluster (by cluster index).
    let mut expected: HashMap<u64, u64> = HashMap::new();
    let file_clusters = file_size.div_ceil(cluster_size);
    let mut count = |report: &mut CheckReport, offset: u64, bytes: u64, what: &str| -> bool {
        let end = offset.saturating_add(bytes);
        if end > file_clusters * cluster_size || bytes == 0 {
            report.error(format!("{what} at {offset:#x} is outside the file"));
            return false;
        }
        for cluster in offset / cluster_size..end.div_ceil(cluster_size) {
            *expected.entry(cluster).or_default() += 1;
        }
        true
    };
    count(&mut report, 0, cluster_size, "header");
    count(&mut report, l1_offset, (l1_size * 8).max(1), "L1 table");
    count(&mut report, table_offset, table_clusters * cluster_size, "refcount table");
    let refcount_table = read_table(table_offset, table_clusters * cluster_size)?;
    let mut blocks = Vec::new();
    for (i, &entry) in refcount_table.iter().enumerate() {
        let block = entry & OFFSET_MASK;
        if block == 0 {
            continue;
        }
        if !block.is_multiple_of(cluster_size) {
            report.error(format!("refcount block {i} at {block:#x} is not cluster-aligned"));
        } else if count(&mut report, block, cluster_size, &format!("refcount block {i}")) {
            blocks.push((i as u64, block));
        }
    }
    // The L1 and L2 tables; each entry's "copied" flag is checked once refcounts are known.
    let mut copied_claims: Vec<(u64, bool, String)> = Vec::new();
    let l1 = read_table(l1_offset, l1_size * 8)?;
    let compressed_shift = 62 - (cluster_bits - 8);
    for (i, &l1_entry) in l1.iter().enumerate() {
        let l2 = l1_entry & OFFSET_MASK;
        if l2 == 0 {
            continue;
        }
        if !l2.is_multiple_of(cluster_size) || !count(&mut report, l2, cluster_size, &format!("L2 table {i}")) {
            report.error(format!("L1 entry {i}: L2 table at {l2:#x} is misaligned or outside the file"));
            continue;
        }
        copied_claims.push((l2 / cluster_size, l1_entry & COPIED != 0, format!("L1 entry {i}")));
        for (j, &entry) in read_table(l2, cluster_size)?.iter().enumerate() {
            if entry & L2_COMPRESSED != 0 {
                let offset = entry & ((1u64 << compressed_shift) - 1);
                let sectors = ((entry >> compressed_shift) & ((1u64 << (cluster_bits - 8)) - 1)) + 1;
                count(&mut report, offset & !511, sectors * 512, "compressed cluster");
                report.allocated += 1;
                continue;
            }
            let data = entry & OFFSET_MASK;
            if data == 0 {
                continue;
            }
            let what = format!("L2 table {i} entry {j}");
            if !data.is_multiple_of(cluster_size) {
                report.error(format!("{what}: data cluster at {data:#x} is not cluster-aligned"));
            } else if count(&mut report, data, cluster_size, &what) {
                report.allocated += 1;
                copied_claims.push((data / cluster_size, entry & COPIED != 0, what));
            }
        }
    }

    // Stored refcounts, for every cluster a refcount block covers.
    let per_block = cluster_size / 2;
    let mut stored: HashMap<u64, u64> = HashMap::new();
    for (index, block) in blocks {
        let mut raw = vec![0u8; cluster_size as usize];
        file.read_exact_at(&mut raw, block)?;
        for (k, pair) in raw.chunks_exact(2).enumerate() {
            let refcount = u64::from(u16::from_be_bytes([pair[0], pair[1]]));
            if refcount != 0 {
                stored.insert(index * per_block + k as u64, refcount);
            }
        }
    }
    let mut clusters: Vec<u64> = expected.keys().chain(stored.keys()).copied().collect();
    clusters.sort_unstable();
    clusters.dedup();
    for cluster in clusters {
        let want = expected.get(&cluster).copied().unwrap_or(0);
        let have = stored.get(&cluster).copied().unwrap_or(0);
        let at = cluster * cluster_size;
        if want > have {
            report.error(format!("cluster {cluster} ({at:#x}) refcount={have} reference={want}"));
        } else if want < have {
            report.leak(format!("{cluster} ({at:#x}) refcount={have} reference={want}"));
        }
    }
    for (cluster, copied, what) in copied_claims {
        let have = stored.get(&cluster).copied().unwrap_or(0);
        if copied != (have == 1) {
            report.error(format!("OFLAG_COPIED {what}: refcount={have}"));
        }
    }
    Ok(report)
}
