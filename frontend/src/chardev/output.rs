//! The output side of character devices: one writer shared by every front end that
//! writes to the device (a serial port, and under `mon:` the monitor too).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A writer many owners share; each write reaches the backend whole and unbuffered.
#[derive(Clone)]
pub struct SharedOutput(Arc<Mutex<Box<dyn Write + Send>>>);

impl SharedOutput {
    /// Shares `writer`.
    pub fn new(writer: impl Write + Send + 'static) -> Self {
        SharedOutput(Arc::new(Mutex::new(Box::new(writer))))
    }
}

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(buf)?;
        w.flush()?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}
