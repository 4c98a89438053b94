//! Intel 82371SB PIIX3 PCI-to-ISA bridge, function 0 (device 1 on this board).
//!
//! Registers from the 82371SB datasheet, section 2.2: PIRQRC[A:D] (0x60-0x63) route
//! the PCI interrupt lines INTA#-INTD# to ISA IRQs. They are stored for firmware and
//! for the board's interrupt router (see [`Piix3IsaBridge::pirq_route`]).

use super::bus::PciFunction;
use super::config_space::{ConfigSpace, PciId, HEADER_TYPE_MULTI_FUNCTION};

/// PIRQRC[A]; B, C and D follow.
const PIRQRC_A: u8 = 0x60;
/// Number of PIRQ route registers.
const PIRQ_COUNT: usize = 4;
/// PIRQRC bit 7 IRQROUTEEN#: 1 = routing disabled.
const PIRQRC_DISABLE: u8 = 0b1000_0000;
/// PIRQRC bits 0-3: the ISA IRQ.
const PIRQRC_IRQ: u8 = 0b0000_1111;
/// PIRQRC after reset: routing disabled.
const PIRQRC_DEFAULT: u8 = 0x80;
/// ISA IRQs a PIRQ may be routed to (0-2, 8 and 13 are reserved).
const ROUTABLE_IRQS: [u8; 11] = [3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15];
/// PCI command after reset: I/O, memory and bus master enabled.
const COMMAND_DEFAULT: u16 = 0x0007;
/// PCI status after reset: medium DEVSEL timing.
const STATUS_DEFAULT: u16 = 0x0200;

/// The PIIX3 ISA bridge function (8086:7000, class 0601, multi-function).
pub struct Piix3IsaBridge {
    config: ConfigSpace,
}

impl Default for Piix3IsaBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl Piix3IsaBridge {
    /// The bridge in its power-on state.
    pub fn new() -> Self {
        let mut config = ConfigSpace::new(PciId {
            vendor_id: 0x8086,
            device_id: 0x7000,
            revision_id: 0,
            class_code: 0x06_01_00,
            header_type: HEADER_TYPE_MULTI_FUNCTION,
        });
        config.set_u16(super::config_space::COMMAND, COMMAND_DEFAULT);
        config.set_u16(super::config_space::STATUS, STATUS_DEFAULT);
        config.set_u32(PIRQRC_A, u32::from_le_bytes([PIRQRC_DEFAULT; PIRQ_COUNT]));
        config.set_write_mask(PIRQRC_A, &[PIRQRC_DISABLE | PIRQRC_IRQ; PIRQ_COUNT]);
        Piix3IsaBridge { config }
    }

    /// The raw PIRQRC register for PIRQ `pirq` (0 = A .. 3 = D).
    pub fn pirq_register(&self, pirq: usize) -> Option<u8> {
        (pirq < PIRQ_COUNT).then(|| self.config.u8_at(PIRQRC_A + pirq as u8))
    }

    /// The ISA IRQ PIRQ `pirq` (0 = A .. 3 = D) is routed to, or `None` when routing is
    /// disabled or names a reserved IRQ.
    pub fn pirq_route(&self, pirq: usize) -> Option<u8> {
        let reg = self.pirq_register(pirq)?;
        let irq = reg & PIRQRC_IRQ;
        (reg & PIRQRC_DISABLE == 0 && ROUTABLE_IRQS.contains(&irq)).then_some(irq)
    }
}

impl PciFunction for Piix3IsaBridge {
    fn read_config(&mut self, offset: u8, len: u8) -> u32 {
        self.config.read(offset, len)
    }

    fn write_config(&mut self, offset: u8, len: u8, value: u32) {
        self.config.write(offset, len, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pirq_routes() {
        let mut b = Piix3IsaBridge::new();
        assert_eq!(b.read_config(PIRQRC_A, 4), 0x8080_8080);
        assert_eq!(b.pirq_route(0), None, "disabled at reset");
        b.write_config(PIRQRC_A, 4, 0x0b0a_7f8b);
        assert_eq!(b.read_config(PIRQRC_A, 4), 0x0b0a_0f8b, "bits 4-6 reserved");
        assert_eq!(b.pirq_route(0), None, "IRQROUTEEN# set");
        assert_eq!(b.pirq_route(1), Some(15), "0x7f: enabled (bit 7 clear), IRQ 15");
        assert_eq!(b.pirq_route(2), Some(10));
        assert_eq!(b.pirq_route(3), Some(11));
        b.write_config(PIRQRC_A + 1, 1, 0x0d);
        assert_eq!(b.pirq_route(1), None, "IRQ 13 is reserved");
        assert_eq!(b.pirq_route(4), None);
    }
}
