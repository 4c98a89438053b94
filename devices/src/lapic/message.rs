//! APIC-bus interrupt messages: what an I/O APIC (or an IPI, or later an MSI) sends
//! to a local APIC (Intel SDM vol. 3, 11.6 "Issuing Interprocessor Interrupts" and
//! 82093AA datasheet 3.2.4, whose delivery-mode encodings are the same).

/// How the receiving local APIC must treat a message (ICR / redirection-entry bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// 000: the vector goes to the IRR of the destination.
    Fixed,
    /// 001: the lowest-priority destination takes it (the only CPU here).
    LowestPriority,
    /// 010: a system-management interrupt; the vector is ignored.
    Smi,
    /// 100: a non-maskable interrupt; the vector is ignored.
    Nmi,
    /// 101: INIT, the processor resets to its wait-for-SIPI state.
    Init,
    /// 110: start-up IPI; the vector is the 4 KiB page the processor starts at.
    StartUp,
    /// 111: external interrupt; the vector comes from an 8259 INTA cycle.
    ExtInt,
}

impl DeliveryMode {
    /// Decodes the 3-bit field; `None` for the reserved encoding 011.
    ///
    /// 110 is StartUp on the APIC bus; an I/O APIC treats it as reserved itself.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits & 0b111 {
            0b000 => Some(Self::Fixed),
            0b001 => Some(Self::LowestPriority),
            0b010 => Some(Self::Smi),
            0b100 => Some(Self::Nmi),
            0b101 => Some(Self::Init),
            0b110 => Some(Self::StartUp),
            0b111 => Some(Self::ExtInt),
            _ => None,
        }
    }

    /// The 3-bit encoding.
    pub fn bits(self) -> u8 {
        match self {
            Self::Fixed => 0b000,
            Self::LowestPriority => 0b001,
            Self::Smi => 0b010,
            Self::Nmi => 0b100,
            Self::Init => 0b101,
            Self::StartUp => 0b110,
            Self::ExtInt => 0b111,
        }
    }

    /// True for the modes that put a vector in the IRR (and so may need an EOI).
    pub fn uses_irr(self) -> bool {
        matches!(self, Self::Fixed | Self::LowestPriority)
    }
}

/// One interrupt message on the APIC bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InterruptMessage {
    /// The interrupt vector (or start-up page for [`DeliveryMode::StartUp`]).
    pub vector: u8,
    /// How the destination handles it.
    pub delivery_mode: DeliveryMode,
    /// Level-triggered (`true`): the destination sets its TMR bit and broadcasts an EOI.
    pub trigger_level: bool,
    /// Destination APIC ID (physical) or logical destination set; 8 bits from an
    /// xAPIC-format source, 32 bits in x2APIC format.
    pub destination: u32,
    /// Logical (`true`) or physical destination mode.
    pub logical: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_mode_round_trips_and_rejects_reserved() {
        for bits in 0..8u8 {
            match DeliveryMode::from_bits(bits) {
                Some(mode) => assert_eq!(mode.bits(), bits),
                None => assert_eq!(bits, 0b011),
            }
        }
        assert!(DeliveryMode::Fixed.uses_irr());
        assert!(DeliveryMode::LowestPriority.uses_irr());
        assert!(!DeliveryMode::Nmi.uses_irr());
    }
}
