//! The CPU fuzz target: arbitrary code on the interpreter, running on the full PC board,
//! in real mode, 32-bit protected mode or 64-bit long mode. Whatever the bytes do (invalid
//! encodings, faults, port and MMIO accesses, self-modifying code, descriptor and paging
//! changes), the interpreter must end each run with an exit, never a panic or a hang.
//!
//! Input: the first byte picks the mode (and, in every other group of three, enables SSE and
//! XSAVE through CR4 and the AVX state in XCR0, so the SIMD and AVX instructions run), the next up to 4 KiB are the code, placed at
//! 0x10000 and followed by HLTs, with a flat GDT (and, in long mode, the first GiB identity-mapped). There is no
//! IDT: a fault shuts the CPU down (a triple fault), and the run restarts a few bytes further
//! into the code, so one input explores all of it.

use super::board::board;
use rx86::pc::Pc;
use rx86_core::entry::{gpr, EntryState, TableInit};
use rx86_core::time::Clock;
use rx86_cpu::engine::{Engine, Exit, RegisterSummary};
use rx86_cpu::interp::{Interpreter, DEFAULT_NS_PER_INSN};

/// Where the code goes.
const CODE: u64 = 0x1_0000;
/// Most code bytes taken from one input.
const MAX_CODE: usize = 4096;
/// Instructions one input may run, over all its restarts.
const MAX_INSNS: u64 = 50_000;
/// Restarts after a shutdown.
const MAX_RESTARTS: u64 = 16;
/// The GDT: null, 0x08 flat 32-bit code, 0x10 flat data, 0x18 64-bit code.
const GDT: u64 = 0x500;
const GDT_ENTRIES: [u64; 4] = [0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff, 0x00af_9b00_0000_ffff];
/// Long-mode tables: PML4, PDPT and one page directory of 2 MiB pages.
const PML4: u64 = 0x7_0000;
/// Initial stack pointer.
const STACK_TOP: u64 = 0x9_f000;
/// CR4 bits that enable SSE (OSFXSR, OSXMMEXCPT) and XSAVE (OSXSAVE).
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;

/// XCR0 with the x87, SSE and AVX state enabled.
const XCR0_AVX: u64 = 7;

/// Loads `entry` into `cpu`; with CR4.OSXSAVE the AVX state is enabled too (XCR0 = 7),
/// so the groups with SSE also run AVX, AVX2, FMA and F16C code. False when the state
/// is refused.
fn load(cpu: &mut Interpreter, entry: &EntryState) -> bool {
    if cpu.load_entry_state(entry).is_err() {
        return false;
    }
    if entry.cr4 & CR4_OSXSAVE != 0 {
        cpu.state_mut().xcr0 = XCR0_AVX;
    }
    true
}

/// The state a run starts in: the mode byte's mode, at `offset` into the code.
fn entry_state(mode: u8, offset: u64) -> EntryState {
    let gdt = TableInit { base: GDT, limit: (GDT_ENTRIES.len() * 8 - 1) as u16 };
    let mut s = match mode % 3 {
        0 => EntryState::real_mode((CODE >> 4) as u16, offset as u16, 0, 0, STACK_TOP as u16),
        1 => EntryState::protected32((CODE + offset) as u32, 0x08, 0x10, gdt),
        _ => EntryState::long64(CODE + offset, 0x18, 0x10, gdt, PML4),
    };
    if !mode.is_multiple_of(3) {
        s.gpr[gpr::RSP] = STACK_TOP;
        if !(mode / 3).is_multiple_of(2) {
            s.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
        }
    }
    s
}

/// Runs the code in `data` on a fresh board (see the module documentation).
pub fn cpu_code(data: &[u8]) {
    let (pc, clock) = board();
    run_code(&pc, &clock, data);
}

/// Runs the code in `data` on `pc`; returns the instructions retired.
pub fn run_code(pc: &Pc, clock: &Clock, data: &[u8]) -> u64 {
    run_code_on(pc, clock, data, Interpreter::new(DEFAULT_NS_PER_INSN)).retired
}

/// How a run of [`run_code_on`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// Instructions retired.
    pub retired: u64,
    /// The registers at the end.
    pub registers: RegisterSummary,
    /// The last exit other than a deadline, halt or restarted shutdown.
    pub exit: Option<String>,
}

/// Runs the code in `data` on `pc` with the CPU `cpu` (see the module documentation).
pub fn run_code_on(pc: &Pc, clock: &Clock, data: &[u8], mut cpu: Interpreter) -> RunEnd {
    let end_of = |cpu: &Interpreter, exit: Option<String>| RunEnd {
        retired: cpu.instructions_retired().unwrap_or(0),
        registers: cpu.registers(),
        exit,
    };
    let Some((&mode, code)) = data.split_first() else { return end_of(&cpu, None) };
    let code = &code[..code.len().min(MAX_CODE)];
    let mem = pc.memory();
    mem.write(CODE, code);
    // HLT after the code: a run that falls off its end stops rather than running zeros.
    mem.write(CODE + code.len() as u64, &[0xf4; MAX_CODE + 16][..MAX_CODE + 16 - code.len()]);
    for (i, e) in GDT_ENTRIES.iter().enumerate() {
        mem.write(GDT + 8 * i as u64, &e.to_le_bytes());
    }
    mem.write(PML4, &((PML4 + 0x1000) | 3).to_le_bytes());
    mem.write(PML4 + 0x1000, &((PML4 + 0x2000) | 3).to_le_bytes());
    for i in 0..512u64 {
        mem.write(PML4 + 0x2000 + 8 * i, &((i << 21) | 0x83).to_le_bytes());
    }
    let entry = |offset: u64| entry_state(mode, offset);

    let end = clock.now_ns() + MAX_INSNS * DEFAULT_NS_PER_INSN;
    let mut restarts = 0;
    if !load(&mut cpu, &entry(0)) {
        return end_of(&cpu, None);
    }
    let mut last = None;
    while clock.now_ns() < end {
        let deadline = pc.timers().next_deadline().unwrap_or(u64::MAX).min(end);
        match cpu.run(pc, clock, deadline) {
            Ok(Exit::Deadline) => {}
            Ok(Exit::Halted) => match pc.timers().next_deadline() {
                // A halted CPU waits for the next device event, as the machine loop does.
                Some(t) if t < end => clock.advance_to(t.max(clock.now_ns())),
                _ => break,
            },
            Ok(Exit::Shutdown(_)) if restarts < MAX_RESTARTS && !code.is_empty() => {
                restarts += 1;
                let offset = restarts * (code.len() as u64 / (MAX_RESTARTS + 1)).max(1);
                if !load(&mut cpu, &entry(offset % code.len() as u64)) {
                    break;
                }
            }
            Ok(exit) => {
                last = Some(format!("{exit:?}"));
                break;
            }
            Err(e) => {
                last = Some(e.to_string());
                break;
            }
        }
        pc.fire_due_timers(clock.now_ns());
        pc.power().take();
    }
    end_of(&cpu, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_runs_in_each_mode() {
        // mov byte [0x8000], 0x5a; hlt, encoded for 16-, 32- and 64-bit code.
        let programs: [&[u8]; 3] = [
            &[0, 0xc6, 0x06, 0x00, 0x80, 0x5a, 0xf4],
            &[1, 0xc6, 0x05, 0x00, 0x80, 0x00, 0x00, 0x5a, 0xf4],
            &[2, 0xc6, 0x04, 0x25, 0x00, 0x80, 0x00, 0x00, 0x5a, 0xf4],
        ];
        for program in programs {
            let (pc, clock) = board();
            assert_eq!(run_code(&pc, &clock, program), 2, "mode {}", program[0]);
            let mut b = [0u8];
            pc.memory().read(0x8000, &mut b);
            assert_eq!(b[0], 0x5a, "mode {}", program[0]);
        }
    }

    #[test]
    fn avx_code_runs_in_the_groups_with_xsave() {
        // VPCMPEQB YMM0, YMM0, YMM0; VMOVDQU [0x20000], YMM0; HLT, in 32-bit mode (mode
        // byte 4: protected, SSE and XSAVE group).
        let (pc, clock) = board();
        let code = [0x04, 0xc5, 0xfd, 0x74, 0xc0, 0xc5, 0xfe, 0x7f, 0x05, 0x00, 0x00, 0x02, 0x00, 0xf4];
        assert_eq!(run_code(&pc, &clock, &code), 3, "no fault, HLT reached");
        let mut stored = [0u8; 32];
        pc.memory().read(0x20000, &mut stored);
        assert_eq!(stored, [0xff; 32]);
    }

    #[test]
    fn every_other_group_of_mode_bytes_enables_sse_and_xsave() {
        let sse = CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
        for (mode, on) in [(0u8, false), (1, false), (2, false), (4, true), (5, true), (7, false), (11, true)] {
            assert_eq!(entry_state(mode, 0).cr4 & sse == sse, on, "mode byte {mode}");
        }
        // The first group (and real mode) keeps its earlier state.
        assert_eq!(entry_state(3, 0).cr4 & sse, 0, "real mode");
    }
}
