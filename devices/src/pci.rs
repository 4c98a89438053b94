//! PCI bus 0 behind configuration mechanism #1, with the i440FX host bridge and the
//! PIIX3 PCI-to-ISA bridge.
//!
//! References: PCI Local Bus Specification 3.0, section 3.2.2.3.2 (configuration
//! mechanism #1) and chapter 6 (configuration space); Intel 82441FX (i440FX) PMC and
//! 82371SB (PIIX3) datasheets for the two bridges' registers.
//!
//! # Board wiring
//!
//! The configuration ports sit around the reset control register at 0xCF9, which is
//! a separate byte device. On the i440FX, CONFIG_ADDRESS is decoded only for 32-bit
//! accesses at 0xCF8; byte and word accesses to 0xCF8-0xCFB pass through to the
//! PCI/ISA bus as ordinary I/O (which is how 0xCF9 reaches the PIIX reset register).
//! The port bus routes an access by its first port, so the board maps:
//!
//! | ports        | device                                           |
//! |--------------|--------------------------------------------------|
//! | 0xCF8, len 1 | [`PciConfigAddress`] (dword accesses latch)      |
//! | 0xCF9, len 1 | the reset control register (not in this module)  |
//! | 0xCFA-0xCFB  | nothing (byte/word I/O there reads all-ones)     |
//! | 0xCFC, len 4 | [`PciConfigData`]                                |
//!
//! A dword access at 0xCF8 starts in the CONFIG_ADDRESS range and reaches
//! [`PciConfigAddress`] whole; a byte write to 0xCF9 reaches the reset register.
//! [`config_mechanism_1`] builds the two port devices over one shared latch.

mod bus;
pub mod config_space;
mod expansion_rom;
mod host;
mod i440fx;
mod piix3;
mod window;

pub use bus::{PciBus, PciFunction, SharedPciFunction};
pub use config_space::{BarKind, ConfigSpace, PciError, PciId};
pub use expansion_rom::ExpansionRom;
pub use host::{config_mechanism_1, PciConfigAddress, PciConfigData};
pub use i440fx::I440fxHostBridge;
pub use piix3::Piix3IsaBridge;
pub use window::{AddressSpace, PciWindow, PciWindowDevice, SharedPciWindow};
