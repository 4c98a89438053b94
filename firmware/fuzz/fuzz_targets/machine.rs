//! A small guest (16 MiB) shared by the loader fuzz targets, mapped as the board maps it.

use rx86_core::memory::GuestRam;
use rx86_core::phys::PhysMemory;
use rx86_firmware::MemoryLayout;
use std::sync::Arc;

/// Guest RAM size for fuzzing: small enough to map once, big enough to load into.
const RAM_BYTES: u64 = 16 << 20;

/// Guest memory and its layout.
pub fn machine() -> (PhysMemory, MemoryLayout) {
    let layout = MemoryLayout::new(RAM_BYTES).expect("16 MiB is a valid layout");
    let mut mem = PhysMemory::new(Arc::new(GuestRam::new(RAM_BYTES).expect("map guest RAM")));
    for region in layout.regions().expect("map the shadow ROM") {
        mem.add_region(region).expect("layout regions do not overlap");
    }
    (mem, layout)
}
