//! APIC-bus interrupt messages: what an I/O APIC, an IPI or an MSI sends to a local
//! APIC (Intel SDM vol. 3, 11.6 "Issuing Interprocessor Interrupts", 11.11 "Message
//! Signalled Interrupts", and 82093AA datasheet 3.2.4, whose delivery-mode encodings
//! are the same).

/// MSI address bits 31:20 must be 0xFEE (SDM 11.11.1).
const MSI_ADDRESS_FIXED: u64 = 0xFEE;
/// MSI address bits 19:12: destination ID.
const MSI_ADDRESS_DEST_SHIFT: u32 = 12;
/// MSI address bit 2: destination mode (1 = logical).
const MSI_ADDRESS_DEST_LOGICAL: u64 = 1 << 2;
/// MSI data bits 10:8: delivery mode.
const MSI_DATA_DELIVERY_MODE_SHIFT: u32 = 8;
/// MSI data bit 15: trigger mode (1 = level).
const MSI_DATA_TRIGGER_LEVEL: u32 = 1 << 15;

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

    /// The name the monitor's tables use (QEMU's spelling).
    pub fn name(self) -> &'static str {
        match self {
            Self::Fixed => "Fixed",
            Self::LowestPriority => "LowPri",
            Self::Smi => "SMI",
            Self::Nmi => "NMI",
            Self::Init => "INIT",
            Self::StartUp => "SIPI",
            Self::ExtInt => "ExtINT",
        }
    }

    /// The name of a 3-bit delivery-mode field, "reserved" for 011.
    pub fn name_of_bits(bits: u8) -> &'static str {
        Self::from_bits(bits).map_or("reserved", Self::name)
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

impl InterruptMessage {
    /// Decodes a message-signalled interrupt: a DWORD write of `data` to `address`
    /// (SDM 11.11.1-2). `None` when the address is outside 0xFEExxxxx or the delivery
    /// mode is reserved (011) or not allowed in an MSI (110, start-up).
    pub fn from_msi(address: u64, data: u32) -> Option<Self> {
        if address >> 20 != MSI_ADDRESS_FIXED {
            return None;
        }
        let delivery_mode = match DeliveryMode::from_bits((data >> MSI_DATA_DELIVERY_MODE_SHIFT) as u8) {
            Some(DeliveryMode::StartUp) | None => return None,
            Some(mode) => mode,
        };
        Some(InterruptMessage {
            vector: data as u8,
            delivery_mode,
            trigger_level: data & MSI_DATA_TRIGGER_LEVEL != 0,
            destination: ((address >> MSI_ADDRESS_DEST_SHIFT) & 0xFF) as u32,
            logical: address & MSI_ADDRESS_DEST_LOGICAL != 0,
        })
    }
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

    #[test]
    fn msi_address_and_data_decode() {
        // Linux's usual MSI: physical destination 3, fixed, edge, vector 0x41.
        assert_eq!(
            InterruptMessage::from_msi(0xFEE0_3000, 0x0041),
            Some(InterruptMessage {
                vector: 0x41,
                delivery_mode: DeliveryMode::Fixed,
                trigger_level: false,
                destination: 3,
                logical: false
            })
        );
        let logical_nmi = InterruptMessage::from_msi(0xFEE0_F00C, 0x8400).unwrap();
        assert_eq!(logical_nmi.delivery_mode, DeliveryMode::Nmi);
        assert!(logical_nmi.logical && logical_nmi.trigger_level);
        assert_eq!(logical_nmi.destination, 0x0F);
        assert_eq!(InterruptMessage::from_msi(0xFED0_0000, 0x41), None, "not the MSI window");
        assert_eq!(InterruptMessage::from_msi(0xFEE0_0000, 0x0341), None, "reserved mode");
        assert_eq!(InterruptMessage::from_msi(0xFEE0_0000, 0x0641), None, "start-up");
    }
}
