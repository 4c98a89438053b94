//! The 82540EM's internal PHY (an M88E1011-compatible gigabit PHY at MDIO address 1), reached
//! through MDIC (8254x SDM section 13.4.9 and the PHY registers of section 13.5).
//!
//! The model's link is always up at 1000 Mb/s full duplex with auto-negotiation complete, so
//! drivers that poll the PHY (Linux's `e1000_check_for_link`) see the link the MAC reports.

/// MDIO address of the internal PHY.
pub const PHY_ADDRESS: u32 = 1;
/// PHY Control (MII register 0).
const PCTRL: usize = 0;
/// PHY Status (MII register 1).
const PSTATUS: usize = 1;
/// PHY Identifier 1.
const PHY_ID1: usize = 2;
/// PHY Identifier 2.
const PHY_ID2: usize = 3;
/// Auto-Negotiation Advertisement.
const ANA: usize = 4;
/// Auto-Negotiation Link Partner Ability.
const ANLPA: usize = 5;
/// Auto-Negotiation Expansion.
const ANE: usize = 6;
/// 1000BASE-T Control.
const GCON: usize = 9;
/// 1000BASE-T Status.
const GSTATUS: usize = 10;
/// PHY Specific Control.
const PSCON: usize = 16;
/// PHY Specific Status.
const PSSTAT: usize = 17;
/// Extended PHY Specific Control.
const EPSCON: usize = 20;
/// PCTRL bit 15: reset (self-clearing).
const PCTRL_RESET: u16 = 1 << 15;
/// PCTRL bit 9: restart auto-negotiation (self-clearing).
const PCTRL_RESTART_AN: u16 = 1 << 9;
/// Registers the model keeps.
const PHY_REGISTERS: usize = 32;

/// Register values after reset: link up, auto-negotiation complete with a gigabit,
/// full-duplex partner.
fn reset_values() -> [u16; PHY_REGISTERS] {
    let mut r = [0u16; PHY_REGISTERS];
    r[PCTRL] = 0x1140; // auto-negotiation on, 1000 Mb/s, full duplex
    r[PSTATUS] = 0x796d; // capabilities, auto-negotiation complete, link up
    r[PHY_ID1] = 0x0141; // Marvell OUI
    r[PHY_ID2] = 0x0c20; // M88E1011 as integrated in the 82540EM
    r[ANA] = 0x0de1;
    r[ANLPA] = 0x45e1; // partner: 10/100 half and full duplex, pause, acknowledged
    r[ANE] = 0x0001;
    r[GCON] = 0x0e00;
    r[GSTATUS] = 0x3c00; // partner 1000BASE-T full and half duplex, local and remote receivers OK
    r[PSCON] = 0x0360;
    r[PSSTAT] = 0xac00; // 1000 Mb/s, full duplex, resolved, link up
    r[EPSCON] = 0x0d60;
    r
}

/// The PHY's register file.
#[derive(Clone)]
pub struct Phy {
    regs: [u16; PHY_REGISTERS],
}

impl Default for Phy {
    fn default() -> Self {
        Phy { regs: reset_values() }
    }
}

impl Phy {
    /// Reads register `reg` (0-31).
    pub fn read(&self, reg: u32) -> u16 {
        self.regs[reg as usize % PHY_REGISTERS]
    }

    /// Writes register `reg`; status and identifier registers are read-only.
    pub fn write(&mut self, reg: u32, value: u16) {
        match reg as usize {
            PCTRL if value & PCTRL_RESET != 0 => *self = Phy::default(),
            // Auto-negotiation completes at once, with the same partner.
            PCTRL => self.regs[PCTRL] = value & !PCTRL_RESTART_AN,
            PSTATUS | PHY_ID1 | PHY_ID2 | ANLPA | ANE | GSTATUS | PSSTAT => {}
            r if r < PHY_REGISTERS => self.regs[r] = value,
            // Register addresses are 5 bits: nothing else reaches here.
            _ => {}
        }
    }
}
