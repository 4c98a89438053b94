//! PCI bus 0: functions by device and function number, and the configuration
//! accesses the host bridge forwards to them.

use super::config_space::PciError;
use super::window::SharedPciWindow;
use std::sync::{Arc, Mutex};

/// Devices on one bus (5-bit device number).
const DEVICES_PER_BUS: u8 = 32;
/// Functions per device (3-bit function number).
const FUNCTIONS_PER_DEVICE: u8 = 8;

/// One PCI function as configuration software sees it.
///
/// The host bridge calls these with `offset + len <= 256` and never across a dword
/// boundary; `len` is 1 to 4 (3 when a misaligned dword access is clipped at the end
/// of CONFIG_DATA). Most functions delegate to a [`super::ConfigSpace`] and add their
/// side effects.
pub trait PciFunction: Send {
    /// Reads `len` bytes of configuration space at `offset`, little-endian.
    fn read_config(&mut self, offset: u8, len: u8) -> u32;
    /// Writes the low `len` bytes of `value` at `offset`.
    fn write_config(&mut self, offset: u8, len: u8, value: u32);
}

/// A function shared by the bus and the board (which may inspect its registers).
pub type SharedPciFunction = Arc<Mutex<dyn PciFunction>>;

/// Bus 0: up to 32 devices of up to 8 functions each.
pub struct PciBus {
    /// Indexed by device << 3 | function.
    slots: Vec<Option<SharedPciFunction>>,
    /// Where the functions' BARs decode, refreshed after every configuration write.
    windows: Vec<SharedPciWindow>,
}

impl Default for PciBus {
    fn default() -> Self {
        Self::new()
    }
}

impl PciBus {
    /// An empty bus.
    pub fn new() -> Self {
        PciBus {
            slots: vec![None; usize::from(DEVICES_PER_BUS) * usize::from(FUNCTIONS_PER_DEVICE)],
            windows: Vec::new(),
        }
    }

    /// Lets `window` follow the BARs: it is refreshed after every configuration write.
    pub fn add_window(&mut self, window: SharedPciWindow) {
        self.windows.push(window);
    }

    fn slot_index(device: u8, function: u8) -> Result<usize, PciError> {
        if device >= DEVICES_PER_BUS || function >= FUNCTIONS_PER_DEVICE {
            return Err(PciError::NoSuchSlot { device, function });
        }
        Ok(usize::from(device) << 3 | usize::from(function))
    }

    /// Places `f` at `device`.`function`.
    pub fn insert(&mut self, device: u8, function: u8, f: SharedPciFunction) -> Result<(), PciError> {
        let slot = &mut self.slots[Self::slot_index(device, function)?];
        if slot.is_some() {
            return Err(PciError::SlotTaken { device, function });
        }
        *slot = Some(f);
        Ok(())
    }

    /// The function at `device`.`function`, if any.
    pub fn get(&self, device: u8, function: u8) -> Option<&SharedPciFunction> {
        self.slots.get(Self::slot_index(device, function).ok()?)?.as_ref()
    }

    /// A configuration read; a missing function reads all-ones (the master abort
    /// that tells software no device is there, section 6.1). A function other than 0
    /// is only decoded when the device has a function 0.
    pub fn read_config(&self, device: u8, function: u8, offset: u8, len: u8) -> u32 {
        match self.decoded(device, function) {
            Some(f) => f.lock().unwrap_or_else(|e| e.into_inner()).read_config(offset, len),
            None => all_ones(len),
        }
    }

    /// A configuration write; dropped when no function answers.
    pub fn write_config(&self, device: u8, function: u8, offset: u8, len: u8, value: u32) {
        if let Some(f) = self.decoded(device, function) {
            f.lock().unwrap_or_else(|e| e.into_inner()).write_config(offset, len, value);
            for window in &self.windows {
                window.lock().unwrap_or_else(|e| e.into_inner()).refresh();
            }
        }
    }

    fn decoded(&self, device: u8, function: u8) -> Option<&SharedPciFunction> {
        self.get(device, 0)?;
        self.get(device, function)
    }
}

/// All-ones in the low `len` bytes.
pub(super) fn all_ones(len: u8) -> u32 {
    match len {
        0 => 0,
        1..=3 => (1u32 << (8 * u32::from(len))) - 1,
        _ => u32::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u32);

    impl PciFunction for Fixed {
        fn read_config(&mut self, offset: u8, len: u8) -> u32 {
            (self.0 >> (8 * (offset & 3))) & all_ones(len)
        }
        fn write_config(&mut self, _offset: u8, _len: u8, value: u32) {
            self.0 = value;
        }
    }

    #[test]
    fn absent_functions_read_all_ones() {
        let mut bus = PciBus::new();
        bus.insert(3, 1, Arc::new(Mutex::new(Fixed(0x1111_2222)))).unwrap();
        assert_eq!(bus.read_config(3, 1, 0, 4), u32::MAX, "no function 0, no device");
        bus.insert(3, 0, Arc::new(Mutex::new(Fixed(0x3333_4444)))).unwrap();
        assert_eq!(bus.read_config(3, 1, 0, 4), 0x1111_2222);
        assert_eq!(bus.read_config(3, 1, 2, 2), 0x1111);
        assert_eq!(bus.read_config(3, 2, 0, 2), 0xffff);
        assert_eq!(bus.read_config(4, 0, 0, 1), 0xff);
        bus.write_config(4, 0, 0, 4, 5);
        bus.write_config(3, 0, 0, 4, 5);
        assert_eq!(bus.read_config(3, 0, 0, 4), 5);
    }

    #[test]
    fn slots_are_checked() {
        let mut bus = PciBus::new();
        let f = || -> SharedPciFunction { Arc::new(Mutex::new(Fixed(0))) };
        assert_eq!(bus.insert(32, 0, f()), Err(PciError::NoSuchSlot { device: 32, function: 0 }));
        assert_eq!(bus.insert(0, 8, f()), Err(PciError::NoSuchSlot { device: 0, function: 8 }));
        bus.insert(0, 0, f()).unwrap();
        assert_eq!(bus.insert(0, 0, f()), Err(PciError::SlotTaken { device: 0, function: 0 }));
        assert!(bus.get(40, 9).is_none());
    }
}
