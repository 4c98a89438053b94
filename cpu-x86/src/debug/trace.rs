//! What an engine reports to a tracer (`--trace`): each instruction before it executes,
//! each exception or interrupt delivered, each port access and each access to
//! memory-mapped I/O (or to unmapped physical memory). The software CPU calls these;
//! a sink decides what to keep and how to print it.

use iced_x86::Instruction;

/// Receives trace events from an engine.
pub trait TraceSink {
    /// An instruction about to execute at `cs:rip` (linear address `lin`).
    fn instruction(&mut self, cs: u16, rip: u64, lin: u64, ins: &Instruction);
    /// An exception (`external` false) or interrupt being delivered at `cs:rip`.
    fn event(&mut self, vector: u8, error: Option<u32>, external: bool, cs: u16, rip: u64);
    /// A port access of `size` bytes (`value` read or written).
    fn port(&mut self, port: u16, size: u8, value: u32, write: bool);
    /// A data access of `size` bytes to physical `addr` outside RAM and ROM (a device's
    /// MMIO registers, or unmapped: reads all ones), with the value read or written.
    fn mmio(&mut self, addr: u64, size: u8, value: u64, write: bool);
}
