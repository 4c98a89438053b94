//! rx86 firmware: the memory layout and E820 map, ACPI tables, and the direct kernel
//! loaders (Linux boot protocol and Multiboot 1).
#![warn(missing_docs)]

pub mod acpi;
pub mod layout;
