//! Port 0x92: fast A20 gate and fast reset ("System Control Port A").
//!
//! From the IBM PS/2 and later chipset documentation (e.g. Intel 82371SB PIIX3 / ICH
//! "Port 92h"): bit 0 `INIT_NOW` requests a fast CPU reset on its 0 → 1 transition,
//! bit 1 `ALT_A20_GATE` opens the A20 gate. The other bits (security lock, disk
//! activity LEDs) are stored and read back with no effect.
//!
//! The 8042 output port drives the same [`A20Gate`]; the last write from either wins,
//! as in QEMU, where both are wired to one A20 input.

use rx86_core::bus::{size_mask, BusDevice};
use rx86_core::phys::A20Gate;
use rx86_core::platform::{PowerControl, PowerEvent};

/// Bit 0: fast reset, acting on a 0 → 1 transition.
const INIT_NOW: u8 = 0b0000_0001;
/// Bit 1: A20 gate open.
const ALT_A20_GATE: u8 = 0b0000_0010;

/// The port 0x92 register (one byte).
#[derive(Debug, Clone)]
pub struct FastA20 {
    value: u8,
    a20: A20Gate,
    power: PowerControl,
}

impl FastA20 {
    /// The register with bit 1 reflecting the gate's current state; resets are posted
    /// on `power`.
    pub fn new(a20: A20Gate, power: PowerControl) -> Self {
        let value = if a20.enabled() { ALT_A20_GATE } else { 0 };
        FastA20 { value, a20, power }
    }

    /// Machine reset: bit 0 drops so the next 0 → 1 write resets again; the A20
    /// bit follows the gate.
    pub fn reset(&mut self) {
        self.value &= !(INIT_NOW | ALT_A20_GATE);
        if self.a20.enabled() {
            self.value |= ALT_A20_GATE;
        }
    }

    fn write_register(&mut self, value: u8) {
        let old = self.value;
        self.value = value;
        self.a20.set(value & ALT_A20_GATE != 0);
        if value & INIT_NOW != 0 && old & INIT_NOW == 0 {
            log::info!("port 0x92: fast reset requested");
            self.power.request(PowerEvent::Reset);
        }
    }
}

/// One register at offset 0; a wider access uses its low byte and reads 0xFF above it
/// (nothing else answers there on the ISA bus).
impl BusDevice for FastA20 {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset != 0 {
            log::warn!("port 0x92: read at offset {offset} of a one-byte register");
            return size_mask(size);
        }
        size_mask(size) & ((u64::MAX << 8) | u64::from(self.value))
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset != 0 {
            log::warn!("port 0x92: write of {value:#x} at offset {offset} of a one-byte register ignored");
            return;
        }
        if size != 1 {
            log::debug!("port 0x92: {size}-byte write of {value:#x}, using the low byte");
        }
        self.write_register(value as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> (FastA20, A20Gate, PowerControl) {
        let a20 = A20Gate::default();
        let power = PowerControl::new();
        (FastA20::new(a20.clone(), power.clone()), a20, power)
    }

    #[test]
    fn bit1_drives_the_a20_gate_and_reads_back() {
        let (mut p, a20, power) = port();
        assert_eq!(p.read(0, 1), 0x02, "gate starts open");
        p.write(0, 1, 0x00);
        assert!(!a20.enabled());
        assert_eq!(p.read(0, 1), 0x00);
        p.write(0, 1, 0xc2);
        assert!(a20.enabled());
        assert_eq!(p.read(0, 1), 0xc2, "other bits are stored");
        assert_eq!(power.pending(), None);
    }

    #[test]
    fn reset_only_on_rising_edge_of_bit0() {
        let (mut p, _a20, power) = port();
        p.write(0, 1, 0x03);
        assert_eq!(power.take(), Some(PowerEvent::Reset));
        p.write(0, 1, 0x03);
        assert_eq!(power.take(), None, "bit 0 already set: no new transition");
        p.write(0, 1, 0x02);
        p.write(0, 1, 0x03);
        assert_eq!(power.take(), Some(PowerEvent::Reset));
        p.reset();
        assert_eq!(p.read(0, 1), 0x02);
        p.write(0, 1, 0x03);
        assert_eq!(power.take(), Some(PowerEvent::Reset));
    }

    #[test]
    fn random_accesses_never_panic() {
        let (mut p, a20, _power) = port();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let offset = state % 3;
            let size = [1u8, 2, 4][(state >> 8) as usize % 3];
            if state & 0x100_0000 != 0 {
                p.write(offset, size, state >> 32);
                if offset == 0 {
                    assert_eq!(a20.enabled(), (state >> 33) & 1 == 1);
                }
            } else {
                p.read(offset, size);
            }
        }
    }
}
