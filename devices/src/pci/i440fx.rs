//! Intel 82441FX PCI and Memory Controller (i440FX host bridge), device 0 function 0.
//!
//! Registers from the 82441FX datasheet, section 3.2: PAM0-PAM6 (0x59-0x5F, the
//! shadow-RAM attribute map for 0xC0000-0xFFFFF) and SMRAM (0x72). The PAM registers drive
//! the address map's [`ShadowControl`]: each segment's read and write enables decide
//! whether it is RAM or the ROM side (section 3.2.18). SMRAM is stored and readable so
//! firmware finds it as it left it; it has no effect on the map.

use super::bus::PciFunction;
use super::config_space::{ConfigSpace, PciId};
use rx86_core::shadow::{ShadowControl, SEGMENT_COUNT};
use std::sync::Arc;

/// PAM0: attributes of 0xF0000-0xFFFFF in bits 4-5 (bits 0-3 reserved).
const PAM0: u8 = 0x59;
/// Number of PAM registers (PAM0-PAM6).
const PAM_COUNT: usize = 7;
/// PAM0 writable bits: HIENABLE read/write enables.
const PAM0_WRITABLE: u8 = 0b0011_0000;
/// PAM1-6 writable bits: LOENABLE (bits 0-1) and HIENABLE (bits 4-5).
const PAM_WRITABLE: u8 = 0b0011_0011;
/// Shift of the HIENABLE field (the upper segment of a PAM register's pair).
const PAM_HI_SHIFT: u8 = 4;
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
    shadow: Arc<ShadowControl>,
}

impl I440fxHostBridge {
    /// The bridge driving `shadow`, with its PAM registers showing the enables `shadow` has
    /// now (all clear at power-on; read-write when a loader stands in for firmware that
    /// left shadow RAM writable).
    pub fn new(shadow: Arc<ShadowControl>) -> Self {
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
        for (i, value) in pam_from_segments(|segment| shadow.get(segment)).into_iter().enumerate() {
            config.set_u8(PAM0 + i as u8, value);
        }
        I440fxHostBridge { config, shadow }
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
        if u16::from(offset) < u16::from(PAM0) + PAM_COUNT as u16
            && u16::from(offset) + u16::from(len) > u16::from(PAM0)
        {
            let pam = self.pam();
            log::debug!("i440FX: PAM0-6 {pam:02x?}");
            for segment in 0..SEGMENT_COUNT {
                self.shadow.set(segment, segment_enables(&pam, segment));
            }
        }
        let smram = self.smram();
        if smram & SMRAM_D_LCK != 0 {
            // D_LCK closes SMRAM (D_OPEN = 0) and makes the register read-only.
            self.config.set_u8(SMRAM, smram & !SMRAM_D_OPEN);
            self.config.set_write_mask(SMRAM, &[0]);
        }
    }
}

/// The PAM register and field of each segment: segments 0-11 (0xC0000-0xEFFFF, 16 KiB each)
/// are PAM1-PAM6's low and high fields in turn, segment 12 (0xF0000) PAM0's high field.
fn pam_field(segment: usize) -> (usize, u8) {
    if segment == SEGMENT_COUNT - 1 {
        (0, PAM_HI_SHIFT)
    } else {
        (1 + segment / 2, if segment.is_multiple_of(2) { 0 } else { PAM_HI_SHIFT })
    }
}

/// A segment's enables from the PAM registers (RE is the field's bit 0, WE bit 1, as
/// [`rx86_core::shadow::enable`] has them).
fn segment_enables(pam: &[u8; PAM_COUNT], segment: usize) -> u8 {
    let (register, shift) = pam_field(segment);
    (pam[register] >> shift) & 0b11
}

/// The PAM registers that give each segment the enables `enables(segment)`.
fn pam_from_segments(enables: impl Fn(usize) -> u8) -> [u8; PAM_COUNT] {
    let mut pam = [0u8; PAM_COUNT];
    for segment in 0..SEGMENT_COUNT {
        let (register, shift) = pam_field(segment);
        pam[register] |= (enables(segment) & 0b11) << shift;
    }
    pam
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::shadow::enable;

    fn bridge() -> (I440fxHostBridge, Arc<ShadowControl>) {
        let shadow = Arc::new(ShadowControl::new(0));
        (I440fxHostBridge::new(shadow.clone()), shadow)
    }

    #[test]
    fn pam_registers_drive_the_shadow_segments() {
        let (mut b, shadow) = bridge();
        assert_eq!(b.pam(), [0; 7], "power-on: every segment reads the ROM side");
        // SeaBIOS's make_bios_writable: two dword writes at 0x58 and 0x5C.
        b.write_config(0x58, 4, 0x3333_3000);
        b.write_config(0x5c, 4, 0x3333_3333);
        assert!((0..SEGMENT_COUNT).all(|s| shadow.get(s) == enable::READ_WRITE));
        // make_bios_readonly: 0xF0000 and the first two option-ROM segments read-only.
        b.write_config(0x59, 1, 0x10);
        b.write_config(0x5a, 1, 0x11);
        assert_eq!(shadow.at(0xF_8000), enable::READ);
        assert_eq!(shadow.at(0xC_0000), enable::READ);
        assert_eq!(shadow.at(0xC_4000), enable::READ);
        assert_eq!(shadow.at(0xC_8000), enable::READ_WRITE);
        b.write_config(0x5f, 1, 0x20);
        assert_eq!(shadow.at(0xE_8000), 0, "PAM6 low: 0xE8000");
        assert_eq!(shadow.at(0xE_C000), enable::WRITE, "PAM6 high: 0xEC000, write-only");
    }

    #[test]
    fn the_registers_start_from_the_shadow_state() {
        let shadow = Arc::new(ShadowControl::new(enable::READ_WRITE));
        let b = I440fxHostBridge::new(shadow);
        assert_eq!(b.pam(), [0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
    }

    #[test]
    fn pam_registers_keep_only_defined_bits() {
        let (mut b, _) = bridge();
        b.write_config(0x58, 4, 0xffff_ffff);
        b.write_config(0x5c, 4, 0xffff_ffff);
        assert_eq!(b.pam(), [0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        assert_eq!(b.read_config(0x58, 1), 0, "DRAMT is not modelled");
        b.write_config(0x5a, 1, 0x11);
        assert_eq!(b.pam()[1], 0x11);
    }

    #[test]
    fn smram_lock() {
        let (mut b, _) = bridge();
        assert_eq!(b.smram(), 0x02);
        b.write_config(SMRAM, 1, 0xff);
        assert_eq!(b.smram(), 0x3a, "D_LCK closes D_OPEN; C_BASE_SEG fixed");
        b.write_config(SMRAM, 1, 0x00);
        assert_eq!(b.smram(), 0x3a, "locked until reset");
        let (mut b, _) = bridge();
        b.write_config(SMRAM, 1, u32::from(SMRAM_D_OPEN | SMRAM_G_SMRAME));
        assert_eq!(b.smram(), 0x4a);
        b.write_config(SMRAM, 1, 0);
        assert_eq!(b.smram(), 0x02);
    }
}
