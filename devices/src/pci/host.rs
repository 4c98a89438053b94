//! Configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): the
//! CONFIG_ADDRESS latch at 0xCF8 and the CONFIG_DATA window at 0xCFC-0xCFF.
//!
//! CONFIG_ADDRESS: bit 31 enable, bits 30-24 reserved (read 0), bits 23-16 bus,
//! 15-11 device, 10-8 function, 7-2 register, 1-0 read 0. Only 32-bit accesses reach
//! it (82441FX datasheet, CONFADD): byte and word accesses are ordinary I/O cycles
//! that no PCI agent claims, so they read all-ones and are dropped.
//!
//! CONFIG_DATA: byte lane `n` of 0xCFC-0xCFF addresses register + `n`; any access
//! size works. With the enable bit clear, or for a bus other than 0 (this board has
//! no PCI-to-PCI bridges), nothing answers.

use super::bus::{all_ones, PciBus};
use rx86_core::bus::{size_mask, BusDevice};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// CONFIG_ADDRESS bit 31: turn CONFIG_DATA accesses into configuration cycles.
const ENABLE: u32 = 1 << 31;
/// The implemented CONFIG_ADDRESS bits: enable, bus, device, function, register.
const WRITABLE: u32 = ENABLE | 0x00ff_fffc;
/// Bytes of CONFIG_DATA.
const DATA_WINDOW: u64 = 4;

/// A decoded CONFIG_ADDRESS.
struct ConfigAddress {
    bus: u8,
    device: u8,
    function: u8,
    register: u8,
}

impl ConfigAddress {
    fn decode(latch: u32) -> Option<Self> {
        (latch & ENABLE != 0).then_some(ConfigAddress {
            bus: (latch >> 16) as u8,
            device: ((latch >> 11) & 0x1f) as u8,
            function: ((latch >> 8) & 0x7) as u8,
            register: (latch & 0xfc) as u8,
        })
    }
}

/// The CONFIG_ADDRESS register; map it at 0xCF8 with length 1 (see the module docs
/// of [`crate::pci`]).
pub struct PciConfigAddress {
    latch: Arc<AtomicU32>,
}

/// The CONFIG_DATA window; map it at 0xCFC with length 4. Owns bus 0.
pub struct PciConfigData {
    latch: Arc<AtomicU32>,
    bus: PciBus,
}

/// The two port devices of configuration mechanism #1 over `bus`, sharing one
/// CONFIG_ADDRESS latch (0 at power-on).
pub fn config_mechanism_1(bus: PciBus) -> (PciConfigAddress, PciConfigData) {
    let latch = Arc::new(AtomicU32::new(0));
    (PciConfigAddress { latch: latch.clone() }, PciConfigData { latch, bus })
}

impl BusDevice for PciConfigAddress {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset == 0 && size == 4 {
            u64::from(self.latch.load(Ordering::Relaxed))
        } else {
            log::debug!("pci: {size}-byte read at CONFIG_ADDRESS+{offset} is not a config access");
            size_mask(size)
        }
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset == 0 && size == 4 {
            self.latch.store(value as u32 & WRITABLE, Ordering::Relaxed);
        } else {
            log::debug!("pci: {size}-byte write of {value:#x} at CONFIG_ADDRESS+{offset} is not a config access");
        }
    }
}

impl PciConfigData {
    /// Bus 0.
    pub fn bus(&self) -> &PciBus {
        &self.bus
    }

    /// Bus 0, to add functions while the board is being built.
    pub fn bus_mut(&mut self) -> &mut PciBus {
        &mut self.bus
    }

    /// The target of an access of `size` bytes at window `offset`: the decoded
    /// address, the config offset and how many bytes fall inside the window.
    fn target(&self, offset: u64, size: u8) -> Option<(ConfigAddress, u8, u8)> {
        let address = ConfigAddress::decode(self.latch.load(Ordering::Relaxed))?;
        if address.bus != 0 || offset >= DATA_WINDOW {
            return None;
        }
        let len = u64::from(size.min(4)).min(DATA_WINDOW - offset) as u8;
        let config_offset = address.register + offset as u8;
        Some((address, config_offset, len))
    }
}

impl BusDevice for PciConfigData {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let Some((address, config_offset, len)) = self.target(offset, size) else {
            return size_mask(size);
        };
        let value = self.bus.read_config(address.device, address.function, config_offset, len) & all_ones(len);
        // Lanes beyond 0xCFF belong to no one.
        (size_mask(size) & !u64::from(all_ones(len))) | u64::from(value)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if let Some((address, config_offset, len)) = self.target(offset, size) {
            self.bus.write_config(address.device, address.function, config_offset, len, value as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::{BarKind, ConfigSpace, I440fxHostBridge, PciFunction, PciId, Piix3IsaBridge};
    use rx86_core::bus::Bus;
    use std::sync::Mutex;

    /// A function with one 4 KiB memory BAR and one 32-byte I/O BAR.
    struct TestFunction(ConfigSpace);

    impl PciFunction for TestFunction {
        fn read_config(&mut self, offset: u8, len: u8) -> u32 {
            self.0.read(offset, len)
        }
        fn write_config(&mut self, offset: u8, len: u8, value: u32) {
            self.0.write(offset, len, value)
        }
    }

    /// Records what the 0xCF9 reset register would see.
    #[derive(Default)]
    struct ResetStub(Vec<(u8, u64)>);

    impl BusDevice for ResetStub {
        fn read(&mut self, _offset: u64, _size: u8) -> u64 {
            0
        }
        fn write(&mut self, _offset: u64, size: u8, value: u64) {
            self.0.push((size, value));
        }
    }

    struct Board {
        ports: Bus,
        reset: Arc<Mutex<ResetStub>>,
    }

    /// The board wiring the module docs prescribe.
    fn board() -> Board {
        let mut pci = PciBus::new();
        let shadow = Arc::new(rx86_core::shadow::ShadowControl::new(0));
        pci.insert(0, 0, Arc::new(Mutex::new(I440fxHostBridge::new(shadow)))).unwrap();
        pci.insert(1, 0, Arc::new(Mutex::new(Piix3IsaBridge::new()))).unwrap();
        let mut space = ConfigSpace::new(PciId {
            vendor_id: 0x1af4,
            device_id: 0x1000,
            revision_id: 0,
            class_code: 0x02_00_00,
            header_type: 0,
        });
        space.set_bar(0, BarKind::Io, 32).unwrap();
        space.set_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        pci.insert(3, 0, Arc::new(Mutex::new(TestFunction(space)))).unwrap();
        let (address, data) = config_mechanism_1(pci);
        let reset = Arc::new(Mutex::new(ResetStub::default()));
        let mut ports = Bus::new_port();
        ports.insert("pci-config-address", 0xcf8, 1, Arc::new(Mutex::new(address))).unwrap();
        ports.insert("reset-control", 0xcf9, 1, reset.clone()).unwrap();
        ports.insert("pci-config-data", 0xcfc, 4, Arc::new(Mutex::new(data))).unwrap();
        Board { ports, reset }
    }

    impl Board {
        fn outl(&self, port: u64, v: u32) {
            self.ports.write(port, 4, u64::from(v));
        }
        fn inl(&self, port: u64) -> u32 {
            self.ports.read(port, 4) as u32
        }
        fn config_read(&self, devfn: u32, reg: u32, size: u8) -> u32 {
            self.outl(0xcf8, ENABLE | devfn << 8 | (reg & 0xfc));
            self.ports.read(0xcfc + u64::from(reg & 3), size) as u32
        }
        fn config_write(&self, devfn: u32, reg: u32, size: u8, value: u32) {
            self.outl(0xcf8, ENABLE | devfn << 8 | (reg & 0xfc));
            self.ports.write(0xcfc + u64::from(reg & 3), size, u64::from(value));
        }
    }

    /// arch/x86/pci/direct.c pci_check_type1() and pci_sanity_check().
    #[test]
    fn linux_type1_probe() {
        let b = board();
        b.ports.write(0xcfb, 1, 0x01);
        let saved = b.inl(0xcf8);
        b.outl(0xcf8, 0x8000_0000);
        assert_eq!(b.inl(0xcf8), 0x8000_0000);
        // Sanity check: some function on bus 0 is a host bridge or Intel's.
        let found =
            (0..256).any(|devfn| b.config_read(devfn, 0x0a, 2) == 0x0600 || b.config_read(devfn, 0x00, 2) == 0x8086);
        assert!(found);
        b.outl(0xcf8, saved);
        assert_eq!(b.inl(0xcf8), saved);
        // The type 2 probe (byte writes to 0xCF8/0xCFA, then byte reads expecting 0)
        // must not see mechanism #2.
        b.ports.write(0xcf8, 1, 0);
        b.ports.write(0xcfa, 1, 0);
        assert!(b.ports.read(0xcf8, 1) != 0 || b.ports.read(0xcfa, 1) != 0);
    }

    #[test]
    fn bridges_identify() {
        let b = board();
        assert_eq!(b.config_read(0, 0, 4), 0x1237_8086);
        assert_eq!(b.config_read(0, 0x08, 4) >> 8, 0x06_00_00);
        assert_eq!(b.config_read(1 << 3, 0, 4), 0x7000_8086);
        assert_eq!(b.config_read(1 << 3, 0x0a, 2), 0x0601);
        assert_eq!(b.config_read(1 << 3, 0x0e, 1) & 0x80, 0x80, "PIIX3 is multi-function");
        assert_eq!(b.config_read(2 << 3, 0, 2), 0xffff, "empty slot");
        assert_eq!(b.config_read(1 << 3 | 5, 0, 4), 0xffff_ffff, "absent function");
    }

    #[test]
    fn byte_and_word_lanes_at_odd_offsets() {
        let b = board();
        // Device ID bytes through lanes 2 and 3.
        assert_eq!(b.config_read(0, 0x02, 1), 0x37);
        assert_eq!(b.config_read(0, 0x03, 1), 0x12);
        assert_eq!(b.config_read(0, 0x01, 2), 0x3780, "word at lane 1 spans vendor and device");
        // PIRQ route registers 0x60-0x63 written a byte at a time.
        for (i, irq) in [10u32, 11, 5, 9].into_iter().enumerate() {
            b.config_write(1 << 3, 0x60 + i as u32, 1, irq);
        }
        assert_eq!(b.config_read(1 << 3, 0x60, 4), 0x0905_0b0a);
        b.config_write(1 << 3, 0x61, 2, 0x8080);
        assert_eq!(b.config_read(1 << 3, 0x60, 4), 0x0980_800a);
        // A dword at lane 3 keeps its in-window byte and reads all-ones beyond 0xCFF.
        assert_eq!(b.config_read(1 << 3, 0x63, 4), 0xffff_ff09);
    }

    #[test]
    fn bar_sizing_through_the_ports() {
        let b = board();
        let devfn = 3 << 3;
        for bar in [0x10, 0x14] {
            b.config_write(devfn, bar, 4, 0xffff_ffff);
        }
        let io = b.config_read(devfn, 0x10, 4);
        let mem = b.config_read(devfn, 0x14, 4);
        assert_eq!(io & 1, 1, "I/O BAR");
        assert_eq!((!(io & !0b11)).wrapping_add(1), 32);
        assert_eq!(mem & 0b1111, 0, "32-bit non-prefetchable memory");
        assert_eq!((!(mem & !0b1111)).wrapping_add(1), 0x1000);
        assert_eq!(b.config_read(devfn, 0x18, 4), 0, "unimplemented BAR");
    }

    #[test]
    fn cf9_byte_access_reaches_reset_control_and_not_the_latch() {
        let b = board();
        b.outl(0xcf8, 0x8000_0800);
        b.ports.write(0xcf9, 1, 0x06);
        assert_eq!(b.reset.lock().unwrap().0, vec![(1, 0x06)]);
        assert_eq!(b.inl(0xcf8), 0x8000_0800);
        // Byte and word accesses at 0xCF8 neither latch nor read the latch.
        b.ports.write(0xcf8, 1, 0x00);
        b.ports.write(0xcf8, 2, 0x0000);
        assert_eq!(b.inl(0xcf8), 0x8000_0800);
        assert_eq!(b.ports.read(0xcf8, 2), 0xffff);
        assert_eq!(b.reset.lock().unwrap().0.len(), 1);
    }

    #[test]
    fn hostile_config_address_values() {
        let b = board();
        b.outl(0xcf8, 0xffff_ffff);
        assert_eq!(b.inl(0xcf8), 0x80ff_fffc, "reserved and low bits read 0");
        assert_eq!(b.inl(0xcfc), 0xffff_ffff, "bus 255 has nothing");
        b.outl(0xcfc, 0x1234_5678);
        b.outl(0xcf8, 0x0000_0000);
        assert_eq!(b.inl(0xcfc), 0xffff_ffff, "disabled: no config cycle");
        b.outl(0xcf8, 0x7f00_0000);
        assert_eq!(b.inl(0xcfc), 0xffff_ffff);
        // Enabled, bus 0, device 0, register 0xFC: the last dword of the host bridge.
        b.outl(0xcf8, 0x8000_00ff);
        assert_eq!(b.inl(0xcf8), 0x8000_00fc);
        b.inl(0xcfc);
    }

    #[test]
    fn random_port_accesses_never_panic() {
        let b = board();
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let port = 0xcf8 + (state >> 4) % 8;
            let size = [1u8, 2, 4][(state >> 12) as usize % 3];
            // Keep the enable bit and bus 0 often, so config cycles really happen.
            let value = if state & 0x10000 != 0 { (state >> 32) & 0x8000_ffff } else { state >> 32 };
            if state & 1 == 0 {
                b.ports.write(port, size, value);
            } else {
                assert!(b.ports.read(port, size) <= size_mask(size));
            }
        }
        assert_eq!(b.config_read(0, 0, 4), 0x1237_8086, "identity survived");
    }
}
