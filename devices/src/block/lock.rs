//! Image locking that QEMU understands (QEMU's `block/file-posix.c`, "image locking"):
//! advisory open-file-description (OFD) locks on single bytes of the image file, so two
//! programs, or two drives of one machine, never write the same image unknowingly.
//!
//! QEMU's layout: each block permission *i* (0 consistent read, 1 write, 2 write unchanged,
//! 3 resize) has two bytes. A user holding permission *i* keeps a shared lock on byte
//! 100 + *i*; a user that does not let others have permission *i* keeps a shared lock on
//! byte 200 + *i*. Opening an image takes one's own locks first, then tests, with an
//! exclusive lock that is never set (`F_OFD_GETLK`), that nobody else has refused a
//! permission one needs (bytes 200 + *i*) or holds a permission one refuses (bytes 100 + *i*).
//!
//! rx86 asks what QEMU's IDE and floppy devices ask: a writer holds consistent read and
//! write; a reader (read-only media, `--snapshot`, qcow2) consistent read; both share only
//! consistent read and unchanged writes. So readers coexist, and a writer excludes every
//! other user, as in QEMU. The locks belong to the open file: closing it releases them.

use super::BlockError;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Byte of the lock that says "holds permission i".
const PERM_BASE: i64 = 100;
/// Byte of the lock that says "does not share permission i".
const SHARED_BASE: i64 = 200;

/// QEMU's block permissions (`BLK_PERM_*`), as bit numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Permission {
    ConsistentRead = 0,
    Write = 1,
    WriteUnchanged = 2,
    Resize = 3,
}

impl Permission {
    const ALL: [Permission; 4] =
        [Permission::ConsistentRead, Permission::Write, Permission::WriteUnchanged, Permission::Resize];

    /// QEMU's name for it, as its messages use.
    fn name(self) -> &'static str {
        match self {
            Permission::ConsistentRead => "consistent read",
            Permission::Write => "write",
            Permission::WriteUnchanged => "write unchanged",
            Permission::Resize => "resize",
        }
    }
}

/// What every rx86 user of an image lets others do.
const SHARED: [Permission; 2] = [Permission::ConsistentRead, Permission::WriteUnchanged];

/// Locks `file` (the image at `path`) for a writer or a reader, or says who is in the way.
/// On a file system without OFD locks the image is used unlocked, with a warning.
pub(crate) fn lock_image(file: &File, path: &Path, writer: bool) -> Result<(), BlockError> {
    let held: &[Permission] =
        if writer { &[Permission::ConsistentRead, Permission::Write] } else { &[Permission::ConsistentRead] };
    let refused: Vec<Permission> = Permission::ALL.into_iter().filter(|p| !SHARED.contains(p)).collect();
    let locked = |permission: Permission, shared: bool| BlockError::Locked {
        path: path.to_path_buf(),
        lock: format!("{}\"{}\"", if shared { "shared " } else { "" }, permission.name()),
    };
    let unsupported = |e: std::io::Error| {
        log::warn!("{}: image locking is not available here ({e}); the image is used unlocked", path.display());
    };
    let own = held.iter().map(|&p| PERM_BASE + p as i64).chain(refused.iter().map(|&p| SHARED_BASE + p as i64));
    for byte in own {
        match set_shared_lock(file, byte) {
            Ok(()) => {}
            Err(e) if conflicts(&e) => {
                return Err(BlockError::Locked { path: path.to_path_buf(), lock: format!("byte {byte}") })
            }
            Err(e) => {
                unsupported(e);
                return Ok(());
            }
        }
    }
    for &p in held {
        if is_locked_by_others(file, SHARED_BASE + p as i64).map_err(BlockError::Io)? {
            return Err(locked(p, false));
        }
    }
    for &p in &refused {
        if is_locked_by_others(file, PERM_BASE + p as i64).map_err(BlockError::Io)? {
            return Err(locked(p, true));
        }
    }
    Ok(())
}

/// True for the errors that mean another lock is in the way.
fn conflicts(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES))
}

/// A `flock` describing one byte at `byte` with lock type `kind`.
fn one_byte(kind: libc::c_int, byte: i64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all zeroes is a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    // The lock type constants fit the C `short` field on every Linux ABI.
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = byte;
    lock.l_len = 1;
    // l_pid stays 0, as OFD locks require.
    lock
}

/// Takes a shared OFD lock on one byte without waiting.
fn set_shared_lock(file: &File, byte: i64) -> std::io::Result<()> {
    let lock = one_byte(libc::F_RDLCK, byte);
    // SAFETY: F_OFD_SETLK reads the `flock` we pass, which lives across the call; the
    // descriptor is open for as long as `file` is borrowed.
    match unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } {
        -1 => Err(std::io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// True when someone else (another open file, in this process or another) holds a lock
/// on `byte` that an exclusive lock would conflict with.
fn is_locked_by_others(file: &File, byte: i64) -> std::io::Result<bool> {
    let mut lock = one_byte(libc::F_WRLCK, byte);
    // SAFETY: F_OFD_GETLK reads and writes the `flock` we pass, which lives across the
    // call; the descriptor is open for as long as `file` is borrowed.
    match unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) } {
        -1 => Err(std::io::Error::last_os_error()),
        _ => Ok(i32::from(lock.l_type) != libc::F_UNLCK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tag: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("rx86-lock-{tag}-{}", std::process::id()));
        std::fs::write(&path, [0u8; 512]).unwrap();
        path
    }

    fn open_locked(path: &Path, writer: bool) -> Result<File, BlockError> {
        let file = File::options().read(true).write(writer).open(path).unwrap();
        lock_image(&file, path, writer).map(|()| file)
    }

    #[test]
    fn a_writer_excludes_everyone_and_readers_coexist() {
        let path = image("rw");
        let writer = open_locked(&path, true).unwrap();
        let err = open_locked(&path, true).unwrap_err().to_string();
        assert!(err.contains("\"write\" lock"), "{err}");
        let err = open_locked(&path, false).unwrap_err().to_string();
        assert!(err.contains("shared \"write\" lock"), "{err}");
        drop(writer);
        let reader = open_locked(&path, false).unwrap();
        let second_reader = open_locked(&path, false).unwrap();
        assert!(open_locked(&path, true).is_err(), "readers keep writers out");
        drop((reader, second_reader));
        open_locked(&path, true).unwrap();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn qemus_bytes_are_locked() {
        let path = image("bytes");
        let writer = open_locked(&path, true).unwrap();
        let probe = File::open(&path).unwrap();
        for byte in [100, 101, 201, 203] {
            assert!(is_locked_by_others(&probe, byte).unwrap(), "byte {byte}");
        }
        for byte in [102, 103, 200, 202] {
            assert!(!is_locked_by_others(&probe, byte).unwrap(), "byte {byte}");
        }
        drop(writer);
        std::fs::remove_file(&path).unwrap();
    }
}
