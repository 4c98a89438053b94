//! Writes newc cpio archives (`cpio(5)`, "New ASCII Format"), the format of Linux's initramfs.
//!
//! Tests append an archive to a fixture's initramfs to add files or replace its `/init`: Linux
//! unpacks concatenated archives in order (compressed or not, each starting at a 4-byte
//! boundary), so a later entry replaces an earlier one of the same name.

/// Regular file type bits of a newc mode.
const S_IFREG: u32 = 0o100_000;
/// Directory type bits.
const S_IFDIR: u32 = 0o040_000;
/// Symbolic link type bits.
const S_IFLNK: u32 = 0o120_000;
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// An uncompressed newc archive being built; every entry is owned by root with mtime 0.
#[derive(Debug, Default)]
pub struct NewcArchive {
    bytes: Vec<u8>,
    entries: u32,
}

impl NewcArchive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory `name` (no leading `/`) with permission bits `mode`.
    pub fn dir(&mut self, name: &str, mode: u32) {
        self.entry(name, S_IFDIR | mode, b"");
    }

    /// Adds a regular file `name` with permission bits `mode` and contents `data`.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, S_IFREG | mode, data);
    }

    /// Adds a symbolic link `name` pointing at `target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes());
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, b"");
        self.bytes
    }

    /// A 110-byte header of 13 eight-digit hex fields, the NUL-terminated name and the data, each
    /// padded to 4 bytes.
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entries += 1;
        let name_len = name.len() as u32 + 1;
        let size = u32::try_from(data.len()).expect("a newc entry holds less than 4 GiB");
        let fields = [self.entries, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, name_len, 0];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
    }
}

/// Appends `archive` to the initramfs `base`, at the 4-byte boundary where Linux looks for the
/// next archive (zeros in between are skipped).
pub fn append_archive(base: &mut Vec<u8>, archive: &[u8]) {
    base.resize(base.len().next_multiple_of(4), 0);
    base.extend_from_slice(archive);
}

/// A gzip-compressed archive holding just `/init` (executable) with `script`.
pub fn init_override(script: &str) -> Vec<u8> {
    use std::io::Write;
    let mut archive = NewcArchive::new();
    archive.file("init", 0o755, script.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&archive.finish()).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hex field `index` (0 = c_ino) of the header at `at`.
    fn field(bytes: &[u8], at: usize, index: usize) -> u32 {
        let start = at + 6 + 8 * index;
        u32::from_str_radix(std::str::from_utf8(&bytes[start..start + 8]).unwrap(), 16).unwrap()
    }

    #[test]
    fn entries_are_newc_headers_with_padded_names_and_data() {
        let mut archive = NewcArchive::new();
        archive.file("init", 0o755, b"#!/bin/sh\n");
        let bytes = archive.finish();
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(field(&bytes, 0, 1), 0o100_755);
        assert_eq!(field(&bytes, 0, 6), 10, "c_filesize");
        assert_eq!(field(&bytes, 0, 11), 5, "c_namesize counts the NUL");
        assert_eq!(&bytes[110..115], b"init\0");
        // 110 + 5 = 115, padded to 116; the data starts there.
        assert_eq!(&bytes[116..126], b"#!/bin/sh\n");
        // The data ends at 126, padded to 128, where the trailer starts.
        assert_eq!(&bytes[128..134], b"070701");
        assert_eq!(&bytes[128 + 110..128 + 110 + 11], b"TRAILER!!!\0");
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn links_and_directories_have_their_type_bits() {
        let mut archive = NewcArchive::new();
        archive.dir("bin", 0o755);
        archive.symlink("bin/sh", "busybox");
        let bytes = archive.finish();
        assert_eq!(field(&bytes, 0, 1), 0o040_755);
        let link = (110 + 4usize).next_multiple_of(4);
        assert_eq!(field(&bytes, link, 1), 0o120_777);
        assert_eq!(field(&bytes, link, 6), 7, "the target is the link's data");
    }

    #[test]
    fn appended_archives_start_on_a_4_byte_boundary() {
        let mut base = vec![1, 2, 3, 4, 5];
        append_archive(&mut base, b"0707");
        assert_eq!(base, [1, 2, 3, 4, 5, 0, 0, 0, b'0', b'7', b'0', b'7']);
    }
}
