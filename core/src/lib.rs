//! rx86 core: the pieces of a machine that know neither a CPU nor a device.
//!
//! - [`memory::GuestRam`]: guest RAM as one anonymous mapping shared by every engine.
//! - [`phys::PhysMemory`]: the physical address map (RAM, ROM, shadow RAM, MMIO, unmapped).
//! - [`shadow::ShadowControl`]: the chipset's read/write enables for 0xC0000-0xFFFFF.
//! - [`entry::EntryState`]: the CPU state a loader asks an engine to start in.
//! - [`bus`]: port-I/O and MMIO buses that route base-relative accesses to devices.
//! - [`irq`]: interrupt lines devices drive, and a recording fake for tests.
//! - [`time`]: the virtual clock and the timer queue devices schedule deadlines on.
//! - [`platform::Platform`]: what a CPU engine needs from the board.

pub mod bus;
pub mod entry;
pub mod irq;
pub mod memory;
pub mod phys;
pub mod platform;
pub mod shadow;
pub mod time;
