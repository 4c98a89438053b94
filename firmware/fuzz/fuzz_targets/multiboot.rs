//! The Multiboot loader on arbitrary files: header search, ELF32 and a.out-kludge
//! parsing, module and info placement must return errors, never panic.
#![no_main]

mod machine;

use libfuzzer_sys::fuzz_target;
use rx86_firmware::{elf, multiboot, LoadOptions, Module};

thread_local! {
    static MACHINE: (rx86_core::phys::PhysMemory, rx86_firmware::MemoryLayout) = machine::machine();
}

fuzz_target!(|data: &[u8]| {
    let _ = elf::parse_elf32(data);
    if !matches!(multiboot::find_header(data), Ok(Some(_))) {
        return;
    }
    let modules = [Module { bytes: &data[..data.len().min(512)], cmdline: "module" }];
    let options = LoadOptions { modules: &modules, multiboot_ignore_video: data.len() % 2 == 0, ..Default::default() };
    MACHINE.with(|(mem, layout)| {
        let _ = rx86_firmware::load_kernel(mem, layout, data, None, "multiboot", None, &options);
    });
});
