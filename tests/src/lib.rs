//! rx86 test support: building our own test guests, fetching Debian fixtures, running
//! the `rx86` binary, the conformance runner and the differential tester.

pub mod differential;
pub mod fixtures;
pub mod gdb;
pub mod guests;
pub mod rx86_bin;
