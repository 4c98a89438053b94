//! Intel 82441FX PCI and Memory Controller (i440FX host bridge), device 0 function 0.
//!
//! Registers from the 82441FX datasheet, section 3.2: PAM0-PAM6 (0x59-0x5F, the
//! shadow-RAM attribute map for 0xC0000-0xFFFFF) and SMRAM (0x72). Their values are
//! stored and readable so firmware (SeaBIOS) finds them as it left them; the board's
//! memory map does not follow them yet (0xC0000-0xFFFFF stays RAM).

use super::bus::PciFunction;
use super::config_space::{ConfigSpace, PciId};

/// PAM0: attributes of 0xF0000-0xFFFFF in bits 4-5 (bits 0-3 reserved).
const PAM0: u8 = 0x59;
/// Number of PAM registers (PAM0-PAM6).
const PAM_COUNT: usize = 7;
/// PAM0 writable bits: HIENABLE read/write enables.
const PAM0_WRITABLE: u8 = 0b0011_0000;
/// PAM1-6 writable bits: LOENABLE (bits 0-1) and HIENABLE (bits 4-5).
const PAM_WRITABLE: u8 = 0b0011_0011;
/// System Management RAM control.
const SMRAM: u8 = 0x72;
/// SMRAM bit 6 D_OPEN: SMRAM visible outside SMM.
const SMRAM_D_OPEN: u8 = 0b0100_0000;
/// SMRAM bit 5 D_CLS: data accesses in SMM go to VGA memory.
const SMRAM_D_CLS: u8 = 0b0010_0000;
/// SMRAM bit 4 D_LCK: locks the register (and clears D_OPEN) until reset.
const SMRAM_D_LCK: u8 = 0b0001_0000;
/// SMRAM bit 3 G_SMRAME: SMRAM enable.
const SMRAM_G_SMRAME: u8 = 0b0000_1000;
/// SMRAM bits 0-2 C_BASE_SEG: fixed at 010b (SMRAM at 0xA0000).
const SMRAM_C_BASE_SEG_A0000: u8 = 0b0000_0010;
/// PCI status after reset: fast back-to-back capable, medium DEVSEL timing.
const STATUS_DEFAULT: u16 = 0x0280;
/// PCI command after reset: memory access and bus master enabled.
const COMMAND_DEFAULT: u16 = 0x0006;

/// The i440FX host bridge function (8086:1237, class 0600).
pub struct I440fxHostBridge {
    config: ConfigSpace,
}

impl Default for I440fxHostBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl I440fxHostBridge {
    /// The bridge in its power-on state.
    pub fn new() -> Self {
        let mut config = ConfigSpace::new(PciId {
            vendor_id: 0x8086,
            device_id: 0x1237,
            revision_id: 0x02,
            class_code: 0x06_00_00,
            header_type: 0,
        });
        config.set_u16(super::config_space::COMMAND, COMMAND_DEFAULT);
        config.set_u16(super::config_space::STATUS, STATUS_DEFAULT);
        config.set_write_mask(PAM0, &[PAM0_WRITABLE]);
        config.set_write_mask(PAM0 + 1, &[PAM_WRITABLE; PAM_COUNT - 1]);
        config.set_u8(SMRAM, SMRAM_C_BASE_SEG_A0000);
        config.set_write_mask(SMRAM, &[SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME]);
        I440fxHostBridge { config }
    }

    /// PAM0-PAM6 as programmed.
    pub fn pam(&self) -> [u8; PAM_COUNT] {
        std::array::from_fn(|i| self.config.u8_at(PAM0 + i as u8))
    }

    /// The SMRAM register.
    pub fn smram(&self) -> u8 {
        self.config.u8_at(SMRAM)
    }
}

impl PciFunction for I440fxHostBridge {
    fn read_config(&mut self, offset: u8, len: u8) -> u32 {
        self.config.read(offset, len)
    }

    fn write_config(&mut self, offset: u8, len: u8, value: u32) {
        self.config.write(offset, len, value);
        let smram = self.smram();
        if smram & SMRAM_D_LCK != 0 {
            // D_LCK closes SMRAM (D_OPEN = 0) and makes the register read-only.
            self.config.set_u8(SMRAM, smram & !SMRAM_D_OPEN);
            self.config.set_write_mask(SMRAM, &[0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pam_registers_keep_only_defined_bits() {
        let mut b = I440fxHostBridge::new();
        b.write_config(0x58, 4, 0xffff_ffff);
        b.write_config(0x5c, 4, 0xffff_ffff);
        assert_eq!(b.pam(), [0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        assert_eq!(b.read_config(0x58, 1), 0, "DRAMT is not modelled");
        b.write_config(0x5a, 1, 0x11);
        assert_eq!(b.pam()[1], 0x11);
    }

    #[test]
    fn smram_lock() {
        let mut b = I440fxHostBridge::new();
        assert_eq!(b.smram(), 0x02);
        b.write_config(SMRAM, 1, 0xff);
        assert_eq!(b.smram(), 0x3a, "D_LCK closes D_OPEN; C_BASE_SEG fixed");
        b.write_config(SMRAM, 1, 0x00);
        assert_eq!(b.smram(), 0x3a, "locked until reset");
        let mut b = I440fxHostBridge::new();
        b.write_config(SMRAM, 1, u32::from(SMRAM_D_OPEN | SMRAM_G_SMRAME));
        assert_eq!(b.smram(), 0x4a);
        b.write_config(SMRAM, 1, 0);
        assert_eq!(b.smram(), 0x02);
    }
}
