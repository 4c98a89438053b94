//! Debug traps held or moved by the instruction that raises them: MOV SS and POP SS hold
//! a single-step or data-breakpoint #DB over the next instruction (SDM Vol. 3A §6.8.3),
//! and SYSCALL/SYSRET single-step by TF at their end.

use super::fault::vec;
use super::state::{efer, fl, Segment};
use super::test_util::Machine;
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

/// A real-mode #DB handler at 0x3000 that stores the pushed IP at 0x600 and DR6 at
/// 0x604, clears TF in the pushed FLAGS and returns.
fn real_db_handler(m: &Machine) {
    let mut h = CodeAssembler::new(16).unwrap();
    h.push(bp).unwrap();
    h.mov(bp, sp).unwrap();
    h.mov(ax, word_ptr(bp + 2)).unwrap();
    h.mov(word_ptr(0x600), ax).unwrap();
    h.mov(eax, dr6).unwrap();
    h.mov(dword_ptr(0x604), eax).unwrap();
    h.and(word_ptr(bp + 6), !(fl::TF as u16) as i16 as i32).unwrap();
    h.pop(bp).unwrap();
    h.iret().unwrap();
    m.load(&mut h, 0x3000, 0x3000);
    m.poke(4, &[0x00, 0x30, 0, 0]);
}

/// Assembles `a` at 0x1000 and runs it to its HLT with the handler above and `setup`;
/// returns the IP the last #DB pushed, its DR6, and the address of `label`.
fn last_db(a: &mut CodeAssembler, label: &CodeLabel, setup: impl FnOnce(&mut Machine)) -> (u64, u32, u64) {
    let want = a.assemble_options(0x1000, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
    let want = want.label_ip(label).unwrap();
    let mut m = Machine::real(a);
    real_db_handler(&m);
    setup(&mut m);
    m.cpu.flush_caches();
    m.run();
    (u16::from_le_bytes(m.peek::<2>(0x600)) as u64, u32::from_le_bytes(m.peek::<4>(0x604)), want)
}

#[test]
fn mov_ss_and_pop_ss_hold_the_single_step_over_the_next_instruction() {
    for pop in [false, true] {
        // POPF sets TF, so the instruction after it is the first one stepped: MOV SS or
        // POP SS, whose trap waits for MOV CX.
        let mut a = CodeAssembler::new(16).unwrap();
        a.pushf().unwrap();
        a.pop(ax).unwrap();
        a.or(ax, fl::TF as i32).unwrap();
        a.push(0).unwrap();
        a.push(ax).unwrap();
        a.mov(ax, 0).unwrap();
        a.popf().unwrap();
        if pop {
            a.pop(ss).unwrap();
        } else {
            a.mov(ss, ax).unwrap();
        }
        a.mov(cx, 1).unwrap();
        let mut after = a.create_label();
        a.set_label(&mut after).unwrap();
        a.hlt().unwrap();
        let (ip, status, want) = last_db(&mut a, &after, |_| {});
        assert_eq!(ip, want, "pop {pop}: the #DB follows the instruction after the SS load");
        assert_ne!(status & 0x4000, 0, "BS");
    }
}

#[test]
fn mov_ss_holds_its_data_breakpoint_over_the_next_instruction() {
    let mut a = CodeAssembler::new(16).unwrap();
    a.mov(ss, word_ptr(0x700)).unwrap();
    a.mov(cx, 1).unwrap();
    let mut after = a.create_label();
    a.set_label(&mut after).unwrap();
    a.hlt().unwrap();
    // DR0 on the word at 0x700, R/W = 11 (read or write), LEN = 01.
    let (ip, status, want) = last_db(&mut a, &after, |m| {
        m.cpu.state_mut().dr[0] = 0x700;
        m.cpu.state_mut().dr[7] = 0x400 | 0b10 | (0b11 << 16) | (0b01 << 18);
    });
    assert_eq!(ip, want, "the #DB follows MOV CX");
    assert_eq!(status & 0xf, 1, "B0");
}

/// 64-bit: SYSCALL target 0x31000 (`mov r14, 1`, then `hlt`), user code at 0x32000
/// (`mov r12, 1`, `hlt`), #DB handler at 0x30000 storing the pushed RIP in R13 and CS in
/// R15 (then `hlt`), a TSS for the ring-0 stack. FMASK clears TF and IF.
fn syscall_machine(a: &mut CodeAssembler) -> Machine {
    let mut m = Machine::long64(a);
    let mut k = CodeAssembler::new(64).unwrap();
    k.mov(r14, 1u64).unwrap();
    k.hlt().unwrap();
    m.load(&mut k, 0x31000, 0x31000);
    let mut u = CodeAssembler::new(64).unwrap();
    u.mov(r12, 1u64).unwrap();
    u.hlt().unwrap();
    m.load(&mut u, 0x32000, 0x32000);
    let mut h = CodeAssembler::new(64).unwrap();
    h.mov(r13, qword_ptr(rsp)).unwrap();
    h.mov(r15, qword_ptr(rsp + 8)).unwrap();
    h.hlt().unwrap();
    m.load(&mut h, 0x30000, 0x30000);
    let gate = 0x30000u64 | (0x18 << 16) | (0x8e00 << 32) | ((0x30000u64 >> 16) << 48);
    m.poke(0x2010, &gate.to_le_bytes());
    m.poke(0x2018, &0u64.to_le_bytes());
    // GDT: 0x20 32-bit user code, 0x28 user data, 0x30 64-bit user code (SYSRET's
    // layout from STAR[63:48] = 0x20), then the TSS at 0x38.
    m.poke(0x520, &0x00cf_fb00_0000_ffffu64.to_le_bytes());
    m.poke(0x528, &0x00cf_f300_0000_ffffu64.to_le_bytes());
    m.poke(0x530, &0x00af_fb00_0000_ffffu64.to_le_bytes());
    m.poke(0x4004, &0x9000u64.to_le_bytes());
    let st = m.cpu.state_mut();
    st.gdtr.limit = 0x47;
    st.idtr.base = 0x2000;
    st.idtr.limit = 0xfff;
    st.tr = Segment { base: 0x4000, limit: 0x67, selector: 0x38, attrs: 0x8b };
    st.efer |= efer::SCE;
    st.msr.star = (0x20u64 << 48) | (0x18u64 << 32);
    st.msr.lstar = 0x31000;
    st.msr.sfmask = fl::TF | fl::IF;
    m.cpu.flush_caches();
    m.run();
    m
}

#[test]
fn syscall_whose_fmask_clears_tf_does_not_trap_in_the_kernel() {
    let mut a = CodeAssembler::new(64).unwrap();
    a.pushfq().unwrap();
    a.or(qword_ptr(rsp), fl::TF as i32).unwrap();
    a.popfq().unwrap();
    a.syscall().unwrap();
    let m = syscall_machine(&mut a);
    assert_eq!(m.gpr(14), 1, "the kernel ran");
    assert_eq!((m.cpu.last_exception, m.gpr(15)), (None, 0), "no #DB");
}

#[test]
fn sysret_restoring_tf_traps_before_the_first_user_instruction() {
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(rcx, 0x32000u64).unwrap();
    a.mov(r11, fl::TF | 0x2).unwrap();
    a.sysretq().unwrap();
    let m = syscall_machine(&mut a);
    assert_eq!(m.cpu.last_exception, Some((vec::DB, None)));
    assert_eq!((m.gpr(13), m.gpr(15)), (0x32000, 0x33), "at the user RIP, CS = 0x30 | 3");
    assert_eq!(m.gpr(12), 0, "before MOV R12 ran");
}
