//! Disk image backends: what a storage controller reads and writes.
//!
//! A [`BlockBackend`] is a flat array of bytes whose length is a multiple of
//! [`SECTOR_SIZE`]; controllers address it by byte offset and always stay inside
//! [`BlockBackend::len`] (an access past the end is an [`BlockError::OutOfRange`], never
//! a write outside the image). Three backends:
//!
//! - [`RawImage`]: a raw image file, read-write (writes reach the file; [`BlockBackend::flush`]
//!   calls `fsync`) or read-only (CD images).
//! - [`SnapshotOverlay`]: copy-on-write in memory at sector granularity over any backend;
//!   the backend below is never written (`--snapshot`).
//! - [`Qcow2Image`]: a qcow2 (v2/v3) image, read-write (clusters allocated with refcounts,
//!   `qcow2/write.rs`) or read-only, with its backing files; [`qcow2::create`] makes new
//!   images and [`qcow2::check`] verifies their refcounts as `qemu-img check` does.
//!
//! [`open_image`] opens a path with the format detected from its first bytes. Every image
//! file is locked as QEMU locks it (`lock.rs`): a writer excludes all other users, readers
//! (read-only media, `--snapshot`, qcow2 and its backing files) coexist.

mod error;
mod lock;
pub mod qcow2;
mod raw;
mod shared;
mod snapshot;

use std::path::Path;

pub use error::BlockError;
pub use qcow2::Qcow2Image;
pub use raw::RawImage;
pub use shared::SharedBackend;
pub use snapshot::SnapshotOverlay;

/// Size of a disk sector; every image is a whole number of them.
pub const SECTOR_SIZE: u64 = 512;

/// A disk image as a storage controller sees it.
pub trait BlockBackend: Send {
    /// Length in bytes (a multiple of [`SECTOR_SIZE`]).
    fn len(&self) -> u64;
    /// True when writes are refused with [`BlockError::ReadOnly`].
    fn read_only(&self) -> bool;
    /// Fills `buf` from byte `offset`; the whole range must lie inside the image.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `buf` at byte `offset`; the whole range must lie inside the image.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError>;
    /// Makes every completed write durable (guest FLUSH CACHE, and at exit).
    fn flush(&mut self) -> Result<(), BlockError>;
    /// True for an empty image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks that `len` bytes at `offset` lie inside an image of `size` bytes.
pub(crate) fn check_range(offset: u64, len: usize, size: u64) -> Result<(), BlockError> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(BlockError::OutOfRange { offset, len, size }),
    }
}

/// Image formats [`open_image`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Detect from the first bytes: the qcow2 magic means qcow2, anything else raw.
    Auto,
    /// A raw image.
    Raw,
    /// A qcow2 image.
    Qcow2,
}

/// How [`open_image`] opens an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageOptions {
    /// The format.
    pub format: ImageFormat,
    /// Read-only media (CD images): writes are refused.
    pub read_only: bool,
    /// Keep all writes in memory ([`SnapshotOverlay`]); the file is opened read-only.
    pub snapshot: bool,
}

/// Opens the image at `path`: writable unless `read_only` or `snapshot` (whose writes go to
/// an in-memory overlay over the read-only image).
pub fn open_image(path: &Path, options: ImageOptions) -> Result<Box<dyn BlockBackend>, BlockError> {
    let format = match options.format {
        ImageFormat::Auto if qcow2::has_magic(path)? => ImageFormat::Qcow2,
        ImageFormat::Auto => ImageFormat::Raw,
        other => other,
    };
    let base: Box<dyn BlockBackend> = match format {
        ImageFormat::Qcow2 if options.snapshot || options.read_only => Box::new(Qcow2Image::open(path)?),
        ImageFormat::Qcow2 => Box::new(Qcow2Image::open_writable(path)?),
        _ => Box::new(RawImage::open(path, options.read_only || options.snapshot)?),
    };
    if options.snapshot && !options.read_only {
        Ok(Box::new(SnapshotOverlay::new(base)))
    } else {
        Ok(base)
    }
}

/// An in-memory backend, for controller tests.
#[cfg(test)]
pub(crate) struct MemDisk {
    /// The bytes.
    pub data: Vec<u8>,
    /// Refuse writes.
    pub read_only: bool,
    /// Number of flushes seen.
    pub flushes: usize,
}

#[cfg(test)]
impl MemDisk {
    /// A disk of `sectors` sectors where every byte is a function of its offset.
    pub fn patterned(sectors: u64, sector_size: u64) -> Self {
        let data = (0..sectors * sector_size).map(|i| pattern_byte(i, sector_size)).collect();
        MemDisk { data, read_only: false, flushes: 0 }
    }
}

/// The pattern byte at `offset`: low byte of the sector number, xor the offset in it.
#[cfg(test)]
pub(crate) fn pattern_byte(offset: u64, sector_size: u64) -> u8 {
    ((offset / sector_size) as u8) ^ (offset % sector_size) as u8
}

#[cfg(test)]
impl BlockBackend for MemDisk {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len(), self.len())?;
        buf.copy_from_slice(&self.data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        check_range(offset, buf.len(), self.len())?;
        self.data[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.flushes += 1;
        Ok(())
    }
}

/// A unique scratch file path for tests (removed by [`TempPath`]'s drop).
#[cfg(test)]
pub(crate) struct TempPath(pub std::path::PathBuf);

#[cfg(test)]
impl TempPath {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!("rx86-block-{}-{n}-{tag}", std::process::id())))
    }
}

#[cfg(test)]
impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_check_catches_overflow() {
        assert!(check_range(0, 512, 512).is_ok());
        assert!(check_range(1, 512, 512).is_err());
        assert!(check_range(u64::MAX, 2, u64::MAX).is_err());
    }

    #[test]
    fn open_image_detects_formats_and_applies_snapshot() {
        let t = TempPath::new("auto.img");
        std::fs::write(&t.0, vec![7u8; 1024]).unwrap();
        let opts = ImageOptions { format: ImageFormat::Auto, read_only: false, snapshot: true };
        let mut d = open_image(&t.0, opts).unwrap();
        d.write_at(0, &[1; 512]).unwrap();
        d.flush().unwrap();
        assert_eq!(std::fs::read(&t.0).unwrap(), vec![7u8; 1024], "snapshot never touches the file");
        let ro = ImageOptions { format: ImageFormat::Raw, read_only: true, snapshot: false };
        let mut d = open_image(&t.0, ro).unwrap();
        assert!(d.read_only());
        assert!(matches!(d.write_at(0, &[0; 512]), Err(BlockError::ReadOnly)));
        let missing = open_image(Path::new("/nonexistent/rx86.img"), opts).err().unwrap();
        assert!(missing.to_string().contains("/nonexistent/rx86.img"), "{missing}");
    }
}
