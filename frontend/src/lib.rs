//! rx86: a full-system x86 PC emulator.
//!
//! This crate assembles the PC ([`pc::Pc`]: memory map, buses, devices, interrupt
//! routing, firmware), picks an engine (KVM or the interpreter) and runs the machine
//! loop ([`machine::Machine`]). The `rx86` binary is a thin CLI over it; tests and
//! benchmarks drive the same API.

pub mod chardev;
pub mod cli;
pub mod config;
pub mod drives;
pub mod error;
pub mod external_bios;
pub mod gdb;
pub mod img;
pub mod interrupts;
pub mod keys;
pub mod machine;
pub mod monitor;
pub mod network;
pub mod pc;
pub mod progress;
pub mod qemu_args;
pub mod rtc_option;
pub mod screenshot;
pub mod serial;
pub mod stats;
pub mod stop;
pub mod trace;
#[cfg(feature = "window")]
pub mod window;
