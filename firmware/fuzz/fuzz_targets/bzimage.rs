//! The Linux boot protocol loader on arbitrary files: header parsing and the whole load
//! (placement, initrd, zero page) must return errors, never panic.
#![no_main]

mod machine;

use libfuzzer_sys::fuzz_target;
use rx86_firmware::linux::{self, LinuxEntry, SetupHeader};
use rx86_firmware::LoadOptions;

thread_local! {
    static MACHINE: (rx86_core::phys::PhysMemory, rx86_firmware::MemoryLayout) = machine::machine();
}

fuzz_target!(|data: &[u8]| {
    let _ = SetupHeader::parse(data);
    if !linux::is_bzimage(data) {
        return;
    }
    let entry = if data.len() % 2 == 0 { LinuxEntry::Protected32 } else { LinuxEntry::Long64 };
    let options = LoadOptions { linux_entry: entry, ..Default::default() };
    let initrd = &data[..data.len().min(4096)];
    MACHINE.with(|(mem, layout)| {
        let _ = rx86_firmware::load_kernel(mem, layout, data, Some(initrd), "console=ttyS0", Some(0xE_0000), &options);
        let _ = rx86_firmware::linux_setup::load(mem, layout, data, Some(initrd), "console=ttyS0");
    });
});
