//! One disk image reached from two places: the storage controller the guest programs
//! and the firmware's disk services (INT 13h), which read and write the same bytes.

use super::{BlockBackend, BlockError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A cloneable handle to one backend; every clone sees the same image.
#[derive(Clone)]
pub struct SharedBackend {
    backend: Arc<Mutex<Box<dyn BlockBackend>>>,
    /// Bytes read and written through any clone (for the progress line).
    traffic: Arc<[AtomicU64; 2]>,
}

impl SharedBackend {
    /// Shares `backend`.
    pub fn new(backend: Box<dyn BlockBackend>) -> Self {
        SharedBackend {
            backend: Arc::new(Mutex::new(backend)),
            traffic: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn BlockBackend>> {
        self.backend.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes read and bytes written so far, through every clone.
    pub fn traffic(&self) -> (u64, u64) {
        (self.traffic[0].load(Ordering::Relaxed), self.traffic[1].load(Ordering::Relaxed))
    }
}

impl BlockBackend for SharedBackend {
    fn len(&self) -> u64 {
        self.lock().len()
    }

    fn read_only(&self) -> bool {
        self.lock().read_only()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.traffic[0].fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.lock().read_at(offset, buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.traffic[1].fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.lock().write_at(offset, buf)
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        self.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDisk;

    #[test]
    fn clones_see_each_others_writes() {
        let mut a = SharedBackend::new(Box::new(MemDisk::patterned(4, 512)));
        let mut b = a.clone();
        a.write_at(512, &[0xAB; 512]).unwrap();
        let mut buf = [0u8; 512];
        b.read_at(512, &mut buf).unwrap();
        assert_eq!(buf, [0xAB; 512]);
        assert_eq!(b.len(), 2048);
        assert!(b.write_at(2048, &[0; 1]).is_err());
    }
}
