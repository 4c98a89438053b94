//! Typed errors of the disk backends; each message names the image and the problem.

use std::path::PathBuf;
use thiserror::Error;

/// What went wrong opening or accessing an image.
#[derive(Debug, Error)]
pub enum BlockError {
    /// The host refused to open or read the image file.
    #[error("cannot open disk image {path}: {source}")]
    Open {
        /// The image.
        path: PathBuf,
        /// The host error.
        source: std::io::Error,
    },
    /// A read, write or flush of an open image failed on the host.
    #[error("disk image I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The image's size is not a whole number of 512-byte sectors.
    #[error("disk image {path} is {size} bytes, not a multiple of 512")]
    NotSectorMultiple {
        /// The image.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// An access reaches past the end of the image.
    #[error("access of {len} bytes at offset {offset:#x} is outside the {size}-byte image")]
    OutOfRange {
        /// First byte.
        offset: u64,
        /// Length.
        len: usize,
        /// Image size.
        size: u64,
    },
    /// A write to read-only media.
    #[error("the medium is read-only")]
    ReadOnly,
    /// A qcow2 header or table that breaks the format.
    #[error("corrupt qcow2 image {path}: {reason}")]
    Qcow2Corrupt {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A valid qcow2 image using a feature this reader lacks.
    #[error("qcow2 image {path} uses an unsupported feature: {feature}")]
    Qcow2Unsupported {
        /// The image.
        path: PathBuf,
        /// The feature.
        feature: String,
    },
    /// Another user of the image (rx86 or QEMU, or another drive of this machine) holds a
    /// lock that rules this use out.
    #[error(
        "disk image {} is in use: failed to get the {lock} lock; is another process (rx86 or QEMU) or \
         another drive of this machine using it?",
        path.display()
    )]
    Locked {
        /// The image.
        path: PathBuf,
        /// The lock that could not be had, as QEMU names it (`"write"`, `shared "write"`).
        lock: String,
    },
}
