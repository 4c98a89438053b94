//! The Fixed ACPI Description Table (FADT, signature "FACP") and the Firmware ACPI
//! Control Structure (FACS), ACPI 6.5 sections 5.2.9 and 5.2.10.
//!
//! The FADT is revision 3 (ACPI 2.0 layout, 244 bytes): every 32-bit block address has
//! its 64-bit generic-address twin. The PM registers are the board's PIIX4-style block
//! at 0x600 (see the board description); ACPI is always enabled, so SMI_CMD is 0.

use super::sdt;

/// FADT revision (ACPI 2.0 layout).
const FADT_REVISION: u8 = 3;
/// FADT length for revisions 3 and 4.
pub(super) const FADT_LENGTH: usize = 244;
/// FACS length.
pub(super) const FACS_LENGTH: usize = 64;
/// FACS version (ACPI 2.0).
const FACS_VERSION: u8 = 1;

/// SCI_INT: the ISA IRQ of the System Control Interrupt.
pub const SCI_IRQ: u16 = 9;
/// PM1a_EVT_BLK: PM1 status (16 bit) and enable (16 bit).
pub const PM1A_EVT_BLK: u16 = 0x600;
/// PM1_EVT_LEN in bytes.
const PM1_EVT_LEN: u8 = 4;
/// PM1a_CNT_BLK: PM1 control (SCI_EN, SLP_TYP, SLP_EN).
pub const PM1A_CNT_BLK: u16 = 0x604;
/// PM1_CNT_LEN in bytes.
const PM1_CNT_LEN: u8 = 2;
/// PM_TMR_BLK: the 3.579545 MHz power-management timer.
pub const PM_TMR_BLK: u16 = 0x608;
/// PM_TMR_LEN in bytes.
const PM_TMR_LEN: u8 = 4;
/// GPE0_BLK: GPE0 status (2 bytes) then enable (2 bytes).
pub const GPE0_BLK: u16 = 0x620;
/// GPE0_BLK_LEN in bytes.
const GPE0_BLK_LEN: u8 = 4;
/// RESET_REG: the PIIX reset control register.
pub const RESET_PORT: u16 = 0xCF9;
/// RESET_VALUE: RST_CPU | SYS_RST (a hard reset).
pub const RESET_VALUE: u8 = 0x06;
/// P_LVL2_LAT above 100 µs: C2 not supported.
const P_LVL2_LAT_NONE: u16 = 101;
/// P_LVL3_LAT above 1000 µs: C3 not supported.
const P_LVL3_LAT_NONE: u16 = 1001;
/// CENTURY: the CMOS RTC index holding the century (BCD).
const CMOS_CENTURY_INDEX: u8 = 0x32;

/// IAPC_BOOT_ARCH bit 0, LEGACY_DEVICES: ISA/LPC legacy devices are present.
const IAPC_LEGACY_DEVICES: u16 = 1 << 0;
/// IAPC_BOOT_ARCH bit 1, 8042: an 8042 keyboard controller is present.
const IAPC_8042: u16 = 1 << 1;

/// Flags bit 0, WBINVD: WBINVD works correctly.
const FLAG_WBINVD: u32 = 1 << 0;
/// Flags bit 2, PROC_C1: C1 (HLT) is supported on all processors.
const FLAG_PROC_C1: u32 = 1 << 2;
/// Flags bit 4, PWR_BUTTON: the power button, if any, is not a fixed feature.
const FLAG_PWR_BUTTON: u32 = 1 << 4;
/// Flags bit 5, SLP_BUTTON: the sleep button, if any, is not a fixed feature.
const FLAG_SLP_BUTTON: u32 = 1 << 5;
/// Flags bit 6, FIX_RTC: RTC wake status is not in the fixed register space.
const FLAG_FIX_RTC: u32 = 1 << 6;
/// Flags bit 8, TMR_VAL_EXT: the PM timer is 32 bits wide.
const FLAG_TMR_VAL_EXT: u32 = 1 << 8;
/// Flags bit 10, RESET_REG_SUP: RESET_REG is supported.
const FLAG_RESET_REG_SUP: u32 = 1 << 10;

/// Generic Address Structure address space ID for system I/O.
const GAS_SYSTEM_IO: u8 = 1;
/// GAS access size: byte.
const GAS_ACCESS_BYTE: u8 = 1;
/// GAS access size: word.
const GAS_ACCESS_WORD: u8 = 2;
/// GAS access size: dword.
const GAS_ACCESS_DWORD: u8 = 3;

/// A Generic Address Structure (section 5.2.3.2) for an I/O port block.
fn gas_io(port: u16, len_bytes: u8, access_size: u8) -> [u8; 12] {
    let mut g = [0u8; 12];
    g[0] = GAS_SYSTEM_IO;
    g[1] = len_bytes * 8;
    g[2] = 0;
    g[3] = access_size;
    g[4..12].copy_from_slice(&u64::from(port).to_le_bytes());
    g
}

/// The FACS: no waking vector, no global lock owner.
pub(super) fn facs() -> Vec<u8> {
    let mut t = vec![0u8; FACS_LENGTH];
    t[0..4].copy_from_slice(b"FACS");
    t[4..8].copy_from_slice(&(FACS_LENGTH as u32).to_le_bytes());
    t[32] = FACS_VERSION;
    t
}

/// Offsets of the FADT's pointer fields (ACPI 6.5 Table 5.9): the FACS and the DSDT, each as a
/// 32-bit and a 64-bit address, with the field size.
pub(super) const POINTER_FIELDS: [(usize, u8); 4] = [(FIRMWARE_CTRL, 4), (DSDT, 4), (X_FIRMWARE_CTRL, 8), (X_DSDT, 8)];
const FIRMWARE_CTRL: usize = 36;
const DSDT: usize = 40;
const X_FIRMWARE_CTRL: usize = 132;
const X_DSDT: usize = 140;

/// The FADT pointing at the FACS and DSDT at the given guest-physical addresses.
pub(super) fn fadt(facs: u64, dsdt: u64) -> Vec<u8> {
    let mut b = vec![0u8; FADT_LENGTH - sdt::HEADER_LENGTH];
    // Offsets below are the specification's, relative to the table start.
    let mut put = |offset: usize, bytes: &[u8]| {
        let at = offset - sdt::HEADER_LENGTH;
        b[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put(FIRMWARE_CTRL, &(facs as u32).to_le_bytes());
    put(DSDT, &(dsdt as u32).to_le_bytes());
    put(46, &SCI_IRQ.to_le_bytes()); // SCI_INT
    put(48, &0u32.to_le_bytes()); // SMI_CMD: ACPI is always enabled
    put(56, &u32::from(PM1A_EVT_BLK).to_le_bytes());
    put(64, &u32::from(PM1A_CNT_BLK).to_le_bytes());
    put(76, &u32::from(PM_TMR_BLK).to_le_bytes());
    put(80, &u32::from(GPE0_BLK).to_le_bytes());
    put(88, &[PM1_EVT_LEN, PM1_CNT_LEN, 0, PM_TMR_LEN, GPE0_BLK_LEN, 0, 0, 0]);
    put(96, &P_LVL2_LAT_NONE.to_le_bytes());
    put(98, &P_LVL3_LAT_NONE.to_le_bytes());
    put(108, &[CMOS_CENTURY_INDEX]);
    put(109, &(IAPC_LEGACY_DEVICES | IAPC_8042).to_le_bytes());
    let flags = FLAG_WBINVD
        | FLAG_PROC_C1
        | FLAG_PWR_BUTTON
        | FLAG_SLP_BUTTON
        | FLAG_FIX_RTC
        | FLAG_TMR_VAL_EXT
        | FLAG_RESET_REG_SUP;
    put(112, &flags.to_le_bytes());
    put(116, &gas_io(RESET_PORT, 1, GAS_ACCESS_BYTE)); // RESET_REG
    put(128, &[RESET_VALUE]);
    put(X_FIRMWARE_CTRL, &facs.to_le_bytes());
    put(X_DSDT, &dsdt.to_le_bytes());
    put(148, &gas_io(PM1A_EVT_BLK, PM1_EVT_LEN, GAS_ACCESS_WORD));
    put(172, &gas_io(PM1A_CNT_BLK, PM1_CNT_LEN, GAS_ACCESS_WORD));
    put(208, &gas_io(PM_TMR_BLK, PM_TMR_LEN, GAS_ACCESS_DWORD));
    put(220, &gas_io(GPE0_BLK, GPE0_BLK_LEN, GAS_ACCESS_BYTE));
    sdt::table(b"FACP", FADT_REVISION, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(t: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(t[o..o + 4].try_into().unwrap())
    }

    #[test]
    fn fadt_fields_land_at_spec_offsets() {
        let t = fadt(0x7FE_0000, 0x7FE_0040);
        assert_eq!(t.len(), FADT_LENGTH);
        assert_eq!(&t[0..4], b"FACP");
        assert_eq!(t[8], 3);
        assert_eq!(t.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
        assert_eq!(u32_at(&t, 36), 0x7FE_0000);
        assert_eq!(u32_at(&t, 40), 0x7FE_0040);
        assert_eq!(u16::from_le_bytes([t[46], t[47]]), 9);
        assert_eq!(u32_at(&t, 48), 0);
        assert_eq!(u32_at(&t, 56), 0x600);
        assert_eq!(u32_at(&t, 64), 0x604);
        assert_eq!(u32_at(&t, 76), 0x608);
        assert_eq!(u32_at(&t, 80), 0x620);
        assert_eq!(&t[88..94], &[4, 2, 0, 4, 4, 0]);
        assert_eq!(u16::from_le_bytes([t[109], t[110]]), 0b11);
        let flags = u32_at(&t, 112);
        assert_ne!(flags & (1 << 8), 0, "TMR_VAL_EXT");
        assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");
        assert_eq!(&t[116..128], &[1, 8, 0, 1, 0xF9, 0x0C, 0, 0, 0, 0, 0, 0]);
        assert_eq!(t[128], 6);
        assert_eq!(u64::from_le_bytes(t[132..140].try_into().unwrap()), 0x7FE_0000);
        assert_eq!(u64::from_le_bytes(t[140..148].try_into().unwrap()), 0x7FE_0040);
        // X_PM1a_EVT_BLK: I/O, 32 bits, word access, port 0x600.
        assert_eq!(&t[148..160], &[1, 32, 0, 2, 0x00, 0x06, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&t[172..176], &[1, 16, 0, 2]);
        assert_eq!(&t[208..212], &[1, 32, 0, 3]);
        assert_eq!(&t[220..224], &[1, 32, 0, 1]);
        assert_eq!(u16::from_le_bytes([t[224], t[225]]), 0x620);
    }

    #[test]
    fn facs_header() {
        let f = facs();
        assert_eq!(&f[0..4], b"FACS");
        assert_eq!(u32_at(&f, 4), 64);
        assert_eq!(f[32], 1);
    }
}
