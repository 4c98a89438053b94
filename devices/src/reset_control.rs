//! Reset control register (port 0xCF9).
//!
//! Intel PIIX3/PIIX4 datasheets, "Reset Control Register" (RC, I/O 0CF9h): bit 1
//! `SYS_RST` selects a hard (system) reset over a soft one (CPU INIT), bit 2 `RST_CPU`
//! starts the reset, bit 3 `FULL_RST` (ICH) keeps power off for a while. The FADT
//! `RESET_REG` points here with `RESET_VALUE` 0x06. This machine has a single kind of
//! reset, so any write with `RST_CPU` set requests [`PowerEvent::Reset`]; the kind is
//! logged.

use rx86_core::bus::BusDevice;
use rx86_core::platform::{PowerControl, PowerEvent};

/// RC bit 1: reset the whole system (hard reset) rather than INIT the CPU only.
const SYS_RST: u8 = 1 << 1;
/// RC bit 2: writing 1 starts the reset; always reads back 0.
const RST_CPU: u8 = 1 << 2;

/// The 0xCF9 reset control register (one byte).
#[derive(Debug, Clone)]
pub struct ResetControl {
    value: u8,
    power: PowerControl,
}

impl ResetControl {
    /// A register reading 0 that posts resets on `power`.
    pub fn new(power: PowerControl) -> Self {
        ResetControl { value: 0, power }
    }
}

impl BusDevice for ResetControl {
    fn read(&mut self, _offset: u64, _size: u8) -> u64 {
        self.value as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset != 0 || size != 1 {
            log::debug!("reset control: {size}-byte write of {value:#x} at offset {offset}, using the low byte");
        }
        let value = value as u8;
        if value & RST_CPU != 0 {
            let kind = if value & SYS_RST != 0 { "hard" } else { "soft" };
            log::info!("reset control: {kind} reset requested ({value:#04x})");
            self.power.request(PowerEvent::Reset);
        }
        self.value = value & !RST_CPU;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rst_cpu_requests_reset_and_reads_back_clear() {
        let power = PowerControl::new();
        let mut rc = ResetControl::new(power.clone());
        rc.write(0, 1, 0x02);
        assert_eq!(power.take(), None, "SYS_RST alone only selects the reset kind");
        assert_eq!(rc.read(0, 1), 0x02);
        rc.write(0, 1, 0x06);
        assert_eq!(power.take(), Some(PowerEvent::Reset));
        assert_eq!(rc.read(0, 1), 0x02, "RST_CPU reads back as 0");
        rc.write(0, 1, 0x04);
        assert_eq!(power.take(), Some(PowerEvent::Reset), "a soft reset also resets this machine");
    }
}
