//! One disk image reached from two places: the storage controller the guest programs
//! and the firmware's disk services (INT 13h), which read and write the same bytes.

use super::{BlockBackend, BlockError};
use std::sync::{Arc, Mutex, MutexGuard};

/// A cloneable handle to one backend; every clone sees the same image.
#[derive(Clone)]
pub struct SharedBackend(Arc<Mutex<Box<dyn BlockBackend>>>);

impl SharedBackend {
    /// Shares `backend`.
    pub fn new(backend: Box<dyn BlockBackend>) -> Self {
        SharedBackend(Arc::new(Mutex::new(backend)))
    }

    fn lock(&self) -> MutexGuard<'_, Box<dyn BlockBackend>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
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
        self.lock().read_at(offset, buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
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
