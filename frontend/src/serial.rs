//! The host side of the serial ports: each COM port's character device, and the input
//! typed for it on its way into the UART's receive FIFO.

use crate::chardev::{self, CharBackend, Chardev, ChardevError, InputSignal};
use rx86_devices::uart::Uart16550;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::TryRecvError;
use std::sync::Arc;

/// One serial port's host end: it outlives guest resets.
pub struct SerialHost {
    device: Chardev,
    /// Typed bytes the UART had no room for yet.
    backlog: VecDeque<u8>,
    /// Bytes the guest sent (for the progress line).
    sent: Arc<AtomicU64>,
}

/// A writer that counts what passes.
struct Counted {
    inner: Box<dyn Write + Send>,
    count: Arc<AtomicU64>,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SerialHost {
    /// A port on `device`.
    pub fn new(device: Chardev) -> Self {
        SerialHost { device, backlog: VecDeque::new(), sent: Arc::default() }
    }

    /// A writer for the UART's transmitted bytes.
    pub fn output(&self) -> Box<dyn Write + Send> {
        Box::new(Counted { inner: Box::new(self.device.output.clone()), count: self.sent.clone() })
    }

    /// Bytes the guest has sent on this port.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// True while input may still arrive.
    pub fn has_input(&self) -> bool {
        self.device.input.is_some() || !self.backlog.is_empty()
    }

    /// Takes what arrived and moves into `uart` as much as its FIFO has room for.
    pub fn pump(&mut self, uart: &mut Uart16550) {
        while let Some(rx) = &self.device.input {
            match rx.try_recv() {
                Ok(bytes) => self.backlog.extend(bytes),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.device.input = None,
            }
        }
        let n = uart.rx_space().min(self.backlog.len());
        if n > 0 {
            let bytes: Vec<u8> = self.backlog.drain(..n).collect();
            uart.receive(&bytes);
        }
    }
}

/// The opened serial ports (COM1 first) and, when one of them is shared through `mon:`, the
/// monitor's side of it.
pub struct OpenedPorts {
    /// One host end per configured port.
    pub ports: Vec<SerialHost>,
    /// The monitor's device from a `mon:` port.
    pub monitor: Option<Chardev>,
}

/// Opens the backends of COM1, COM2, ... in order.
pub fn open_ports(backends: &[CharBackend], signal: &InputSignal) -> Result<OpenedPorts, ChardevError> {
    let mut opened = OpenedPorts { ports: Vec::new(), monitor: None };
    for (i, backend) in backends.iter().enumerate() {
        let o = chardev::open(backend, &format!("serial{i}"), signal)?;
        opened.ports.push(SerialHost::new(o.device));
        opened.monitor = opened.monitor.or(o.monitor);
    }
    Ok(opened)
}
