//! Real mode: the low-memory layout, the interrupt vector table and the unwinding of
//! an exception frame, shared by the interpreter and the KVM runner.
//!
//! Every vector points at its own one-byte HLT stub, so the CPU halts right after
//! delivering an exception; the vector is the stub's address, and the faulting IP and
//! FLAGS are read back from the frame (SDM Vol. 3A §20.1.4: IP, CS and FLAGS pushed).
//! The sequence itself ends with a HLT.

use super::{Fault, Outcome};
use rx86_core::phys::PhysMemory;

/// Where the sequence starts (CS = DS = ES = SS = 0).
pub const CODE: u64 = 0x1000;
/// Start of the data area (the stack is inside it).
pub const DATA: u64 = 0x3000;
/// The HLT stubs, one byte per vector.
const STUBS: u64 = 0x500;
/// Vectors given a stub (the exceptions).
const VECTORS: u64 = 32;

/// Writes the IVT (vector v -> 0000:STUBS+v) and the HLT stubs.
pub fn write_vector_table(mem: &PhysMemory) {
    for v in 0..VECTORS {
        let ip = (STUBS + v) as u16;
        mem.write(v * 4, &[ip as u8, (ip >> 8) as u8, 0, 0]);
        mem.write(STUBS + v, &[0xf4]);
    }
}

/// The sequence followed by its final HLT.
pub fn with_final_hlt(code: &[u8]) -> Vec<u8> {
    let mut v = code.to_vec();
    v.push(0xf4);
    v
}

/// The outcome of a halted CPU: at the final HLT (`end`) the registers as they are; in
/// an exception stub the vector and the IP, FLAGS and SP from before the exception.
pub fn outcome(mem: &PhysMemory, mut gpr: [u64; 16], rip: u64, rflags: u64, end: u64, data: Vec<u8>) -> Outcome {
    let mut out = Outcome { gpr, rip, rflags, data, fault: None, stopped: None };
    if rip == end + 1 {
        out.rip = end;
    } else if (STUBS + 1..=STUBS + VECTORS).contains(&rip) {
        let sp = gpr[4] & 0xffff;
        let mut frame = [0u8; 6];
        mem.read(sp, &mut frame);
        // The frame is compared through IP and FLAGS (whose undefined bits are
        // masked), not as data.
        if let Some(bytes) = sp.checked_sub(DATA).and_then(|o| out.data.get_mut(o as usize..o as usize + 6)) {
            bytes.fill(0);
        }
        gpr[4] = (gpr[4] & !0xffff) | ((sp + 6) & 0xffff);
        out.gpr = gpr;
        out.rip = u16::from_le_bytes([frame[0], frame[1]]) as u64;
        out.rflags = (rflags & !0xffff) | u16::from_le_bytes([frame[4], frame[5]]) as u64;
        out.fault = Some(Fault::from_vector((rip - STUBS - 1) as u8));
    } else {
        out.stopped = Some(format!("halted at an unexpected address {rip:#x}"));
    }
    out
}
