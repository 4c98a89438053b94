//! 32-bit protected mode in a KVM vCPU: the descriptor tables, the entry to CPL 3 and the
//! unwinding of an exception frame.
//!
//! The sequence runs where the host runner and the interpreter run it ([`layout`]), at CPL 3
//! with IOPL 0 in the flat user segments 0x23 (code) and 0x2b (data) of a GDT that matches
//! [`super::emulated`]'s, so privileged instructions and segment loads behave alike. A ring-0
//! stub loads the task register (whose TSS gives the ring-0 stack and no I/O bitmap) and IRETs
//! to the sequence. Every exception vector is an interrupt gate to its own ring-0 HLT stub; the
//! sequence ends with `INT 0x40` through a DPL-3 gate to one more stub. The vector is the
//! stub's address, and the interrupted EIP, EFLAGS and ESP are read back from the frame the CPU
//! pushed on the ring-0 stack (SDM Vol. 3A §6.12.1: an error code for vectors 8, 10-14, 17 and
//! 21, then EIP, CS, EFLAGS, ESP and SS).

use super::layout::{self, DATA_LEN};
use super::{Fault, Outcome};
use rx86_core::entry::{EntryState, SegmentInit, TableInit};
use rx86_core::phys::PhysMemory;

/// The GDT: null, code32/data/code64 at DPL 0 (0x08, 0x10, 0x18), the same at DPL 3 (0x23,
/// 0x2b, 0x33), then the TSS (0x38).
const GDT: u64 = 0x500;
/// Descriptors below the TSS, as [`super::emulated`] writes them.
const GDT_SEGMENTS: [u64; 7] = [
    0,
    0x00cf_9b00_0000_ffff,
    0x00cf_9300_0000_ffff,
    0x00af_9b00_0000_ffff,
    0x00cf_fb00_0000_ffff,
    0x00cf_f300_0000_ffff,
    0x00af_fb00_0000_ffff,
];
/// The TSS selector.
const TSS_SELECTOR: u16 = 0x38;
/// The IDT: a gate for every exception and for [`END_VECTOR`].
const IDT: u64 = 0x600;
/// The vector of the `INT` that ends a sequence (DPL 3, so CPL 3 may raise it).
const END_VECTOR: u8 = 0x40;
/// The 32-bit TSS (104 bytes, no I/O bitmap).
const TSS: u64 = 0x900;
/// TSS size minus one, and its I/O map base (beyond the limit: every port is #GP at CPL 3).
const TSS_LIMIT: u32 = 0x67;
/// The ring-0 HLT stubs, one byte per vector.
const STUBS: u64 = 0xa00;
/// The ring-0 entry stub and the selector it loads into TR.
const ENTRY: u64 = 0xb00;
const TR_WORD: u64 = 0xb80;
/// Top of the ring-0 stack (the TSS's ESP0, and the entry stub's IRET frame below it).
const STACK0_TOP: u64 = 0x2000;
/// Exceptions with a stub.
const EXCEPTIONS: u8 = 32;
/// The ring-0 code and data selectors.
const KERNEL_CODE: u16 = 0x08;
const KERNEL_DATA: u16 = 0x10;
/// The ring-3 code and data selectors (RPL 3).
const USER_CODE: u16 = 0x23;
const USER_DATA: u16 = 0x2b;

/// Writes the GDT, IDT, TSS, stubs and entry stub.
pub fn write_tables(mem: &PhysMemory) {
    for (i, descriptor) in GDT_SEGMENTS.iter().enumerate() {
        mem.write(GDT + 8 * i as u64, &descriptor.to_le_bytes());
    }
    write_tss_descriptor(mem);
    for vector in (0..EXCEPTIONS).chain([END_VECTOR]) {
        let dpl = if vector == END_VECTOR { 3 } else { 0 };
        mem.write(IDT + 8 * vector as u64, &interrupt_gate(STUBS + vector as u64, dpl).to_le_bytes());
        mem.write(STUBS + vector as u64, &[0xf4]);
    }
    let mut tss = [0u8; TSS_LIMIT as usize + 1];
    tss[4..8].copy_from_slice(&(STACK0_TOP as u32).to_le_bytes());
    tss[8..10].copy_from_slice(&KERNEL_DATA.to_le_bytes());
    tss[0x66..0x68].copy_from_slice(&((TSS_LIMIT + 1) as u16).to_le_bytes());
    mem.write(TSS, &tss);
    // ltr word [TR_WORD]; iretd
    let [lo, hi, ..] = (TR_WORD as u32).to_le_bytes();
    mem.write(ENTRY, &[0x0f, 0x00, 0x1d, lo, hi, 0, 0, 0xcf]);
    mem.write(TR_WORD, &TSS_SELECTOR.to_le_bytes());
}

/// An available 32-bit TSS descriptor (LTR marks it busy, so it is rewritten before each run).
fn write_tss_descriptor(mem: &PhysMemory) {
    let (base, limit) = (TSS as u32, TSS_LIMIT);
    let low = (base << 16) | (limit & 0xffff);
    let high = (base & 0xff00_0000) | (limit & 0xf_0000) | 0x8900 | ((base >> 16) & 0xff);
    mem.write(GDT + TSS_SELECTOR as u64, &(((high as u64) << 32) | low as u64).to_le_bytes());
}

/// A 32-bit interrupt gate to `offset` in the ring-0 code segment, callable from `dpl`.
fn interrupt_gate(offset: u64, dpl: u64) -> u64 {
    let offset = offset as u32 as u64;
    ((offset & 0xffff_0000) << 32) | ((0x8e00 | dpl << 13) << 32) | ((KERNEL_CODE as u64) << 16) | (offset & 0xffff)
}

/// The sequence followed by the `INT` that ends it.
pub fn with_final_int(code: &[u8]) -> Vec<u8> {
    let mut v = code.to_vec();
    v.extend_from_slice(&[0xcd, END_VECTOR]);
    v
}

/// Prepares a run of a sequence with registers `gpr` and flags `rflags`: rewrites the TSS
/// descriptor, pushes the IRET frame to CPL 3 and returns the entry state of the ring-0 stub.
pub fn entry(mem: &PhysMemory, gpr: [u64; 16], rflags: u64) -> EntryState {
    write_tss_descriptor(mem);
    let frame = STACK0_TOP - 20;
    let words = [layout::CODE as u32, USER_CODE as u32, rflags as u32, gpr[4] as u32, USER_DATA as u32];
    for (i, word) in words.iter().enumerate() {
        mem.write(frame + 4 * i as u64, &word.to_le_bytes());
    }
    let mut entry =
        EntryState::protected32(ENTRY as u32, KERNEL_CODE, KERNEL_DATA, TableInit { base: GDT, limit: 0x3f });
    entry.idt = TableInit { base: IDT, limit: 8 * END_VECTOR as u16 + 7 };
    // DS and ES hold the user data segment (DPL 3, kept by the IRET); FS and GS stay DPL 0, so
    // the IRET to CPL 3 nulls them, as the interpreter's are.
    let user_data = SegmentInit { attributes: 0xc0f3, ..SegmentInit::flat_data(USER_DATA) };
    entry.ds = user_data;
    entry.es = user_data;
    entry.gpr = gpr;
    entry.gpr[4] = frame;
    entry.rflags = 2;
    entry
}

/// Whether `vector` pushes an error code (SDM Vol. 3A Table 6-1).
fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

/// The outcome of a vCPU halted in a stub at `rip` with ring-0 `gpr`: the interrupted EIP,
/// EFLAGS and ESP from the frame, the vector as the fault (none for the final `INT`, whose
/// frame points past it, at `end` + 2).
pub fn outcome(mem: &PhysMemory, mut gpr: [u64; 16], rip: u64, end: u64, data: Vec<u8>) -> Outcome {
    gpr.iter_mut().for_each(|g| *g &= 0xffff_ffff);
    let mut out = Outcome { gpr, rip, rflags: 0, data, fault: None, stopped: None };
    let stubs = STUBS + 1..=STUBS + END_VECTOR as u64 + 1;
    if !stubs.contains(&rip) {
        out.stopped = Some(format!("halted at an unexpected address {rip:#x}"));
        return out;
    }
    let vector = (rip - STUBS - 1) as u8;
    let mut frame = gpr[4];
    if has_error_code(vector) {
        frame += 4;
    }
    let word = |i: u64| {
        let mut b = [0u8; 4];
        mem.read(frame + 4 * i, &mut b);
        u32::from_le_bytes(b) as u64
    };
    out.rip = word(0);
    out.rflags = word(2);
    out.gpr[4] = word(3);
    if vector == END_VECTOR {
        if out.rip != end + 2 {
            out.stopped = Some(format!("INT {END_VECTOR:#x} from {:#x}, not from the end of the sequence", out.rip));
        }
        out.rip = end;
    } else {
        out.fault = Some(Fault::from_vector(vector));
    }
    debug_assert_eq!(out.data.len(), DATA_LEN);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_and_descriptors_follow_the_sdm_layouts() {
        // Offset 0x12345678, selector 0x08, present, DPL 3, 32-bit interrupt gate (type 0xE).
        assert_eq!(interrupt_gate(0x1234_5678, 3), 0x1234_ee00_0008_5678);
        assert_eq!(interrupt_gate(0xa0d, 0), 0x0000_8e00_0008_0a0d);
        assert!(has_error_code(13) && has_error_code(14) && has_error_code(8));
        assert!(!has_error_code(0) && !has_error_code(6) && !has_error_code(END_VECTOR));
    }
}
