//! rx86's x86 CPU engines: the software interpreter and the KVM engine.
//!
//! Both implement [`engine::Engine`]: they start from a loader's
//! [`rx86_core::entry::EntryState`], run against the board's
//! [`rx86_core::platform::Platform`] until a deadline on the machine clock or an
//! exit, and report why they stopped.

pub mod debug;
pub mod engine;
pub mod interp;
pub mod kvm;
pub mod tier;
