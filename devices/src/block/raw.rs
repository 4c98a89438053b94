//! A raw disk image file: byte `n` of the disk is byte `n` of the file.

use super::lock::lock_image;
use super::{check_range, BlockBackend, BlockError, SECTOR_SIZE};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A raw image file opened read-write (writes reach the file) or read-only.
#[derive(Debug)]
pub struct RawImage {
    file: File,
    size: u64,
    read_only: bool,
}

impl RawImage {
    /// Opens `path`; its size must be a multiple of 512 bytes.
    pub fn open(path: &Path, read_only: bool) -> Result<Self, BlockError> {
        let open_err = |source| BlockError::Open { path: path.to_path_buf(), source };
        let file = File::options().read(true).write(!read_only).open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if !meta.is_file() {
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
            return Err(open_err(source));
        }
        lock_image(&file, path, !read_only)?;
        let size = meta.len();
        if !size.is_multiple_of(SECTOR_SIZE) {
            return Err(BlockError::NotSectorMultiple { path: path.to_path_buf(), size });
        }
        Ok(RawImage { file, size, read_only })
    }
}

impl BlockBackend for RawImage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len(), self.size)?;
        Ok(self.file.read_exact_at(buf, offset)?)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        check_range(offset, buf.len(), self.size)?;
        Ok(self.file.write_all_at(buf, offset)?)
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        if !self.read_only {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::TempPath;
    use super::*;

    #[test]
    fn writes_reach_the_file() {
        let t = TempPath::new("rw.img");
        std::fs::write(&t.0, vec![0u8; 2048]).unwrap();
        let mut img = RawImage::open(&t.0, false).unwrap();
        assert_eq!(img.len(), 2048);
        img.write_at(512, &[0xab; 512]).unwrap();
        img.flush().unwrap();
        let bytes = std::fs::read(&t.0).unwrap();
        assert_eq!(&bytes[512..1024], &[0xab; 512][..]);
        assert_eq!(&bytes[..512], &[0; 512][..]);
        let mut back = [0u8; 4];
        img.read_at(1022, &mut back).unwrap();
        assert_eq!(back, [0xab, 0xab, 0, 0]);
    }

    #[test]
    fn refuses_bad_images_and_accesses() {
        let t = TempPath::new("odd.img");
        std::fs::write(&t.0, vec![0u8; 1000]).unwrap();
        let e = RawImage::open(&t.0, false).unwrap_err();
        assert!(matches!(e, BlockError::NotSectorMultiple { size: 1000, .. }), "{e}");
        assert!(e.to_string().contains("not a multiple of 512"));
        let missing = RawImage::open(Path::new("/nonexistent/disk.img"), true).unwrap_err();
        assert!(matches!(missing, BlockError::Open { .. }));
        assert!(RawImage::open(&std::env::temp_dir(), true).is_err(), "a directory is not an image");

        std::fs::write(&t.0, vec![0u8; 1024]).unwrap();
        let mut img = RawImage::open(&t.0, false).unwrap();
        assert!(matches!(img.write_at(1020, &[1; 8]), Err(BlockError::OutOfRange { .. })));
        assert!(matches!(img.read_at(u64::MAX - 1, &mut [0; 8]), Err(BlockError::OutOfRange { .. })));
        assert_eq!(std::fs::metadata(&t.0).unwrap().len(), 1024, "nothing written past the end");
        // A writer holds the image alone (lock.rs): the read-only open waits for it to go.
        drop(img);

        let mut ro = RawImage::open(&t.0, true).unwrap();
        assert!(matches!(ro.write_at(0, &[1; 512]), Err(BlockError::ReadOnly)));
        ro.flush().unwrap();
    }
}
