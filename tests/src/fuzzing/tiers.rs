//! The tier fuzz target: the same arbitrary code (in the form the [`super::cpu`] target
//! takes) on the interpreter alone and on the interpreter with the JIT tier compiling
//! every block at its second run, with and without the lock-step checker, each on a
//! fresh board. Both runs
//! must retire the same instructions, end with the same registers and the same exit,
//! and the checker must find no divergence.

use super::board::board;
use super::cpu::{run_code_on, RunEnd};
use rx86_cpu::interp::{Interpreter, DEFAULT_NS_PER_INSN};

/// Runs before a block is compiled: the second, so that code run once (random code
/// rewriting the block it runs in, one instruction per block run) is not compiled each
/// time, while every loop is.
const HOT_AFTER: u32 = 2;

/// Runs `data` on both tiers and panics with both outcomes if they differ.
pub fn tiers_code(data: &[u8]) {
    let (interp, checked, unchecked) = run_both(data);
    assert_eq!(interp, checked, "the tiers disagree under the checker on input {data:02x?}");
    assert_eq!(interp, unchecked, "the tiers disagree on input {data:02x?}");
}

/// The outcome of `data` on the interpreter, on the JIT tier under the lock-step
/// checker (which compiles memory accesses as handler calls), and on the JIT tier
/// alone (its inline memory accesses included).
pub fn run_both(data: &[u8]) -> (RunEnd, RunEnd, RunEnd) {
    let (pc, clock) = board();
    let interp = run_code_on(&pc, &clock, data, Interpreter::new(DEFAULT_NS_PER_INSN));
    let jit = |checked: bool| {
        let (pc, clock) = board();
        let mut cpu = Interpreter::new(DEFAULT_NS_PER_INSN);
        let tier = rx86_jit::JitTier::new(1 << 20).expect("the JIT tier on this host");
        cpu.set_tier(Box::new(tier), HOT_AFTER, checked);
        run_code_on(&pc, &clock, data, cpu)
    };
    (interp, jit(true), jit(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::platform::BasicPlatform;
    use rx86_core::time::Clock;
    use rx86_cpu::engine::Exit;
    use rx86_cpu::interp::state::{Seg, Segment};

    /// Real-mode code at 0x1000 on a plain board: `mov al, 1; hlt`, run to its HLT, then
    /// its immediate rewritten by DMA and the code run again; the new value must show,
    /// with the block compiled at its first run on the JIT tier as on the interpreter.
    fn dma_patched_run(jit: bool) -> u64 {
        let p = BasicPlatform::new(1 << 20).expect("RAM");
        p.memory.write(0x1000, &[0xb0, 0x01, 0xf4]);
        let mut cpu = Interpreter::new(DEFAULT_NS_PER_INSN);
        if jit {
            let tier = rx86_jit::JitTier::new(1 << 20).expect("the JIT tier on this host");
            cpu.set_tier(Box::new(tier), 1, true);
        }
        let start = |cpu: &mut Interpreter| {
            let st = cpu.state_mut();
            st.seg = [Segment::real(0); 6];
            st.seg[Seg::Cs as usize].attrs = 0x9b;
            st.rip = 0x1000;
            st.halted = false;
        };
        start(&mut cpu);
        cpu.flush_caches();
        let clock = Clock::new_virtual();
        for _ in 0..3 {
            start(&mut cpu);
            assert_eq!(cpu.run_until(&p, &clock, u64::MAX), Exit::Halted);
        }
        assert_eq!(cpu.state().gpr[0] & 0xff, 1);
        p.memory.dma_write(0x1001, &[7]).expect("DMA into RAM");
        start(&mut cpu);
        assert_eq!(cpu.run_until(&p, &clock, u64::MAX), Exit::Halted);
        if let Some(report) = cpu.tier_report() {
            assert_eq!(report.tier.units, 2, "compiled before and after the DMA");
            assert_eq!(report.invalidated_units, 1);
        }
        cpu.state().gpr[0] & 0xff
    }

    #[test]
    fn code_rewritten_by_dma_is_seen_on_both_tiers() {
        assert_eq!(dma_patched_run(false), 7);
        assert_eq!(dma_patched_run(true), 7);
    }

    #[test]
    fn a_counting_loop_runs_the_same_on_both_tiers() {
        // 32-bit: mov ecx, 1000; l: add eax, ecx; xor ebx, eax; dec ecx; jnz l; hlt.
        let code = [1, 0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xc8, 0x31, 0xc3, 0x49, 0x75, 0xf9, 0xf4];
        let (interp, checked, jit) = run_both(&code);
        assert_eq!(interp, checked);
        assert_eq!(interp, jit);
        assert_eq!(interp.retired, 1 + 4 * 1000 + 1);
        assert_eq!(interp.registers.gpr[0], 500_500);
    }

    #[test]
    fn code_patched_in_the_running_unit_is_seen() {
        // 32-bit, at 0x10000: l: mov byte [0x1000a], 5 (the immediate of the ADD below,
        // in the same block); inc edx; add eax, 1; cmp edx, 3; jne l; hlt. The write lands
        // before the ADD runs, in every pass: 3 x 5.
        let code =
            [1, 0xc6, 0x05, 0x0a, 0x00, 0x01, 0x00, 0x05, 0x42, 0x83, 0xc0, 0x01, 0x83, 0xfa, 0x03, 0x75, 0xf0, 0xf4];
        let (interp, checked, jit) = run_both(&code);
        assert_eq!(interp, checked);
        assert_eq!(interp, jit);
        assert_eq!(interp.registers.gpr[0], 15);
    }

    #[test]
    fn memory_operands_conditions_and_extensions_run_the_same_on_both_tiers() {
        // 32-bit: mov ecx, 100; l: mov [0x10200], ecx; add eax, [0x10200];
        // cmp dword [0x10200], 50; setb bl; cmovb edi, ecx; movzx edx, bl; add esi, edx;
        // movsx ebp, bl; test dword [0x10200], 1; dec ecx; jnz l; hlt.
        let code = [
            0x1, 0xb9, 0x64, 0x0, 0x0, 0x0, 0x89, 0xd, 0x0, 0x2, 0x1, 0x0, 0x3, 0x5, 0x0, 0x2, 0x1, 0x0, 0x83, 0x3d,
            0x0, 0x2, 0x1, 0x0, 0x32, 0xf, 0x92, 0xc3, 0xf, 0x42, 0xf9, 0xf, 0xb6, 0xd3, 0x1, 0xd6, 0xf, 0xbe, 0xeb,
            0xf7, 0x5, 0x0, 0x2, 0x1, 0x0, 0x1, 0x0, 0x0, 0x0, 0x49, 0x75, 0xd2, 0xf4,
        ];
        let (interp, checked, jit) = run_both(&code);
        assert_eq!(interp, checked);
        assert_eq!(interp, jit);
        let gpr = interp.registers.gpr;
        assert_eq!(gpr[0], 5050, "the sum of the values stored and loaded");
        assert_eq!(gpr[6], 49, "the values below 50");
        assert_eq!(gpr[7], 1, "the last value below 50");
        assert_eq!(gpr[5], 1, "the last SETB, sign-extended");
    }
}
