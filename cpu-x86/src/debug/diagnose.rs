//! The triple-fault diagnosis: the chain of exceptions that shut the CPU down, each with
//! its error code decoded, CR2 and the page walk for a #PF, the IDT entry its delivery
//! needed (and the code segment that entry names), then what to check, in words a student
//! can act on (SDM Vol. 3A §6.15 "Exception and Interrupt Reference", Table 6-5 for the
//! double-fault rules, §6.13 error codes, §4.7 page-fault error codes).

use super::describe::{describe_gate, describe_segment_descriptor};
use super::walk::walk;
use super::{memory, seg, CpuMode, DebugRegs};
use rx86_core::phys::PhysMemory;
use std::fmt::Write;

/// One exception of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRecord {
    /// Vector.
    pub vector: u8,
    /// Error code, for vectors that push one.
    pub error: Option<u32>,
    /// CR2 when the exception was raised (meaningful for #PF).
    pub cr2: u64,
}

/// Vector 14.
const PF: u8 = 14;
/// Vector 8.
const DF: u8 = 8;

/// Mnemonic and name of exception `v` (SDM Table 6-1).
pub fn exception_name(v: u8) -> (&'static str, &'static str) {
    match v {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "BOUND range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point"),
        _ => ("INT", "interrupt"),
    }
}

/// A #PF error code in words (SDM §4.7).
fn page_fault_error(e: u32) -> String {
    format!(
        "{}; a {}; in {} mode{}{}",
        if e & 1 != 0 { "a protection violation on a present page" } else { "the page is not present" },
        if e & 0x10 != 0 {
            "instruction fetch"
        } else if e & 2 != 0 {
            "write"
        } else {
            "read"
        },
        if e & 4 != 0 { "user" } else { "supervisor" },
        if e & 8 != 0 { "; a reserved bit is set in a paging entry" } else { "" },
        if e & 0x20 != 0 { "; protection key" } else { "" },
    )
}

/// A selector error code in words (SDM §6.13): `IDT entry 14` or `GDT selector 0x28`.
fn selector_error(e: u32) -> String {
    let ext = if e & 1 != 0 { ", raised while delivering an event" } else { "" };
    let index = e >> 3;
    if e & 2 != 0 {
        format!("IDT entry {index}{ext}")
    } else if e & 4 != 0 {
        format!("LDT selector {:#x}{ext}", e & !3)
    } else if e & !3 == 0 {
        format!("no selector (null or outside any table){ext}")
    } else {
        format!("GDT selector {:#x}{ext}", e & !3)
    }
}

/// Reads `N` bytes of linear memory, if readable.
fn read_lin<const N: usize>(mem: &PhysMemory, regs: &DebugRegs, lin: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    (memory::read_virtual(mem, &regs.paging(), lin, &mut b) == N).then_some(b)
}

/// The IDT (or IVT) entry delivering `vector` needs, in words, and a hint when it is
/// unusable.
fn idt_entry(mem: &PhysMemory, regs: &DebugRegs, vector: u8) -> (String, Option<String>) {
    let idt = regs.idtr;
    let table = format!("IDTR base={:#x} limit={:#x}", idt.base, idt.limit);
    if regs.mode == CpuMode::Real {
        let at = vector as u64 * 4;
        if at + 3 > idt.limit as u64 {
            return (
                format!("IVT entry {vector}: beyond the IVT limit ({table})"),
                Some(format!("the real-mode IVT ({table}) does not cover vector {vector}: restore it with LIDT")),
            );
        }
        return match read_lin::<4>(mem, regs, idt.base + at) {
            Some(b) => (format!("IVT entry {vector} = {:02x}{:02x}:{:02x}{:02x}", b[3], b[2], b[1], b[0]), None),
            None => (format!("IVT entry {vector}: unreadable"), None),
        };
    }
    let long = regs.efer & (1 << 10) != 0;
    let size = if long { 16 } else { 8 };
    let at = vector as u64 * size;
    if at + size - 1 > idt.limit as u64 {
        return (
            format!("IDT entry {vector}: beyond the IDT limit ({table})"),
            Some(format!(
                "the IDT ({table}) does not reach vector {vector}: load an IDT with LIDT whose limit covers every \
                 vector the guest can raise (at least 0-31, {size} bytes each)"
            )),
        );
    }
    let (Some(lo), hi) = (read_lin::<8>(mem, regs, idt.base + at), read_lin::<8>(mem, regs, idt.base + at + 8)) else {
        return (
            format!("IDT entry {vector} at linear {:#x}: unreadable (not mapped)", idt.base + at),
            Some(format!("the IDT at {:#x} is not mapped: IDTR holds a linear address", idt.base)),
        );
    };
    let (lo, hi) = (u64::from_le_bytes(lo), hi.map_or(0, u64::from_le_bytes));
    let mut text = format!("IDT entry {vector}: {}", describe_gate(lo, hi, long));
    let mut hint = None;
    if lo & (1 << 47) == 0 {
        hint = Some(format!("IDT entry {vector} is not present (P=0): fill it before the guest can raise {vector}"));
    } else {
        let sel = (lo >> 16) & 0xfff8;
        let gdt = regs.gdtr;
        if sel == 0 {
            hint = Some(format!("IDT entry {vector} names the null selector as its code segment"));
        } else if (lo >> 16) & 4 != 0 {
            text.push_str(" (code segment in the LDT)");
        } else if sel + 7 > gdt.limit as u64 {
            hint =
                Some(format!("IDT entry {vector} names code segment {sel:#x}, beyond the GDT limit {:#x}", gdt.limit));
        } else if let Some(d) = read_lin::<8>(mem, regs, gdt.base + sel) {
            let _ = write!(
                text,
                "\n       its code segment, GDT[{sel:#x}]: {}",
                describe_segment_descriptor(u64::from_le_bytes(d), long)
            );
        }
    }
    (text, hint)
}

/// The diagnosis of a triple fault: the first line names the chain and where it
/// happened; the lines after it explain each step and what to check.
pub fn triple_fault_report(regs: &DebugRegs, chain: &[FaultRecord], mem: &PhysMemory) -> String {
    let vectors: Vec<String> = chain.iter().map(|f| format!("{:#04x}", f.vector)).collect();
    let cs = regs.seg[seg::CS].selector;
    let mut s = format!(
        "triple fault: exception chain [{}] at {cs:04x}:{:#x} ({}, CPL {})\n",
        vectors.join(" -> "),
        regs.rip,
        regs.mode.describe(),
        regs.cpl
    );
    s.push_str("What happened, in order:\n");
    let mut hints: Vec<String> = Vec::new();
    for (i, f) in chain.iter().enumerate() {
        let (mnemonic, name) = exception_name(f.vector);
        let _ = write!(s, "  {}. {mnemonic} ({name})", i + 1);
        match (f.vector, f.error) {
            (PF, Some(e)) => {
                let _ = write!(s, ", error code {e:#x} ({}), CR2={:#x}", page_fault_error(e), f.cr2);
            }
            (DF, _) => s.push_str(": a fault while delivering the previous one"),
            (_, Some(e)) if e != 0 => {
                let _ = write!(s, ", error code {e:#x} ({})", selector_error(e));
            }
            (_, Some(_)) => s.push_str(", error code 0"),
            (_, None) => {}
        }
        s.push('\n');
        if f.vector == PF {
            let w = walk(&regs.paging(), f.cr2, |a, size| memory::read_entry(mem, a, size));
            let _ = writeln!(s, "     page walk of {:#x} ({}, CR3={:#x}):", f.cr2, regs.paging().describe(), regs.cr3);
            for line in w.describe(f.cr2).lines() {
                let _ = writeln!(s, "     {line}");
            }
            if w.phys.is_none() {
                let missing = w.steps.last().map_or("entry", |st| st.level);
                let stack = f.cr2.abs_diff(regs.gpr[4]) < 0x1000;
                hints.push(format!(
                    "linear {:#x} is not mapped (its {missing} is not present){}",
                    f.cr2,
                    if stack {
                        format!(
                            ": it is next to the stack pointer ({:#x}); give the CPU a mapped stack (TSS \
                             ESP0/RSP0 or IST for faults from user mode or in long mode)",
                            regs.gpr[4]
                        )
                    } else {
                        format!(": map it, or find the bad pointer used at {cs:04x}:{:#x}", regs.rip)
                    }
                ));
            }
        }
        if i + 1 < chain.len() {
            let (text, hint) = idt_entry(mem, regs, f.vector);
            let _ = writeln!(s, "     delivering it needs {text}");
            hints.extend(hint);
        } else {
            s.push_str("     raised while delivering #DF: the CPU shuts down\n");
        }
    }
    merge_idt_limit_hints(&mut hints);
    if !hints.is_empty() {
        s.push_str("What to check:\n");
        for h in hints {
            let _ = writeln!(s, "  - {h}");
        }
    }
    s.trim_end().to_string()
}

/// Folds the "does not reach vector N" hints of one IDT into one line naming every vector.
fn merge_idt_limit_hints(hints: &mut Vec<String>) {
    const MARK: &str = " does not reach vector ";
    let mut vectors = Vec::new();
    let mut first = None;
    hints.retain(|h| match h.split_once(MARK) {
        Some((head, rest)) => {
            let (v, tail) = rest.split_once(':').unwrap_or((rest, ""));
            vectors.push(v.to_string());
            first.get_or_insert((head.to_string(), tail.to_string()));
            false
        }
        None => true,
    });
    if let Some((head, tail)) = first {
        let plural = if vectors.len() > 1 { "s" } else { "" };
        hints.push(format!("{head} does not reach vector{plural} {}:{tail}", vectors.join(", ")));
    }
    hints.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::platform::{BasicPlatform, Platform};

    #[test]
    fn error_codes_in_words() {
        assert_eq!(page_fault_error(2), "the page is not present; a write; in supervisor mode");
        assert!(page_fault_error(0x1d).starts_with("a protection violation on a present page; a instruction fetch"));
        assert_eq!(selector_error(14 * 8 + 2 + 1), "IDT entry 14, raised while delivering an event");
        assert_eq!(selector_error(0x28), "GDT selector 0x28");
        assert_eq!(selector_error(0x2c), "LDT selector 0x2c");
    }

    #[test]
    fn page_fault_with_an_empty_idt() {
        // 32-bit paging with CR3 = 0x1000 and nothing mapped; IDT limit 0.
        let p = BasicPlatform::new(1 << 20).unwrap();
        let mut regs = DebugRegs {
            mode: CpuMode::Protected32,
            rip: 0x100040,
            cr0: 0x8000_0011,
            cr3: 0x1000,
            ..DebugRegs::default()
        };
        regs.seg[seg::CS].selector = 8;
        regs.gpr[4] = 0x9000;
        let chain = [
            FaultRecord { vector: 14, error: Some(2), cr2: 0xdead_0000 },
            FaultRecord { vector: 13, error: Some(14 * 8 + 3), cr2: 0xdead_0000 },
            FaultRecord { vector: 8, error: Some(0), cr2: 0xdead_0000 },
            FaultRecord { vector: 13, error: Some(8 * 8 + 3), cr2: 0xdead_0000 },
        ];
        let r = triple_fault_report(&regs, &chain, p.memory());
        assert!(r.starts_with("triple fault: exception chain [0x0e -> 0x0d -> 0x08 -> 0x0d] at 0008:0x100040"), "{r}");
        for want in [
            "1. #PF (page fault), error code 0x2 (the page is not present; a write; in supervisor mode), CR2=0xdead0000",
            "PDE @0x1de8 = 0x0 (NOT PRESENT)",
            "delivering it needs IDT entry 14: beyond the IDT limit (IDTR base=0x0 limit=0x0)",
            "2. #GP (general protection), error code 0x73 (IDT entry 14, raised while delivering an event)",
            "3. #DF (double fault)",
            "4. #GP",
            "raised while delivering #DF: the CPU shuts down",
            "What to check:",
            "does not reach vectors 14, 13, 8: load an IDT",
            "linear 0xdead0000 is not mapped (its PDE is not present): map it, or find the bad pointer used at 0008:0x100040",
        ] {
            assert!(r.contains(want), "missing {want:?} in:\n{r}");
        }
    }

    #[test]
    fn present_gate_is_decoded_with_its_code_segment() {
        let p = BasicPlatform::new(1 << 20).unwrap();
        let mem = p.memory();
        // IDT at 0x2000 (limit 0xff): gate 13 -> 0008:0x1234; GDT at 0x3000 with a flat code segment.
        let gate: u64 = 0x1234 | (0x08 << 16) | (0x8e00 << 32);
        mem.write(0x2000 + 13 * 8, &gate.to_le_bytes());
        mem.write(0x3008, &0x00cf_9a00_0000_ffffu64.to_le_bytes());
        let mut regs = DebugRegs { mode: CpuMode::Protected32, cr0: 0x11, ..DebugRegs::default() };
        regs.idtr = super::super::TableReg { base: 0x2000, limit: 0xff };
        regs.gdtr = super::super::TableReg { base: 0x3000, limit: 0x17 };
        let (text, hint) = idt_entry(mem, &regs, 13);
        assert_eq!(hint, None);
        assert!(text.contains("32-bit interrupt gate -> 0008:0x1234 DPL=0 present"), "{text}");
        assert!(text.contains("GDT[0x8]: code (readable) base=0x0 limit=0xffffffff DPL=0 32-bit present"), "{text}");
        // Entry 14 is empty: not present.
        let (_, hint) = idt_entry(mem, &regs, 14);
        assert!(hint.unwrap().contains("IDT entry 14 is not present"));
    }
}
