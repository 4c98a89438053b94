//! Debug-register breakpoints: DR0-DR3 addresses enabled and typed by DR7, reported in
//! DR6 (SDM Vol. 3B §17.2 "Debug Registers", §17.3 "Debug Exceptions").
//!
//! DR7 is decoded once, when it is written, into [`Armed`]: one mask of breakpoint
//! numbers per kind of access. The execution loop and the data accesses test a mask
//! byte and do nothing else while no breakpoint is enabled.
//!
//! - Instruction breakpoints (R/W = 00) are faults: #DB before the instruction, RIP
//!   unchanged, unless RFLAGS.RF is set (§17.3.1.1).
//! - Data breakpoints (R/W = 01 writes, 11 reads or writes) are traps: the hits of an
//!   instruction are collected by the accesses and reported after it retires (§17.3.1.2).
//! - I/O breakpoints (R/W = 10, only with CR4.DE) are traps on IN/OUT/INS/OUTS ports.
//! - DR7.GD makes any MOV DR fault with DR6.BD (§17.2.4).

use super::cpu::Ctx;
use super::fault::{vec, Exception, Fault, R};
use super::state::cr4;
use crate::engine::Exit;

/// DR6 (debug status) bits, SDM Vol. 3B §17.2.3.
pub mod dr6 {
    /// B0-B3: breakpoint condition 0-3 detected.
    pub const B_MASK: u64 = 0xf;
    /// BD: debug-register access detected (DR7.GD).
    pub const BD: u64 = 1 << 13;
    /// BS: single step (RFLAGS.TF).
    pub const BS: u64 = 1 << 14;
}

/// DR7 (debug control) fields, SDM Vol. 3B §17.2.4.
pub mod dr7 {
    /// GD: general detect enable (fault on MOV DR).
    pub const GD: u64 = 1 << 13;
    /// R/W field value: break on instruction execution.
    pub const RW_EXEC: u64 = 0b00;
    /// R/W field value: break on data writes.
    pub const RW_WRITE: u64 = 0b01;
    /// R/W field value: break on I/O reads or writes (CR4.DE = 1); the remaining value,
    /// 11, breaks on data reads or writes.
    pub const RW_IO: u64 = 0b10;

    /// True when L`n` or G`n` enables breakpoint `n`.
    pub fn enabled(dr7: u64, n: usize) -> bool {
        (dr7 >> (n * 2)) & 0b11 != 0
    }

    /// The R/W field of breakpoint `n` (bits 16+4n..17+4n).
    pub fn rw(dr7: u64, n: usize) -> u64 {
        (dr7 >> (16 + n * 4)) & 0b11
    }

    /// The length in bytes the LEN field of breakpoint `n` (bits 18+4n..19+4n) selects:
    /// 00 = 1, 01 = 2, 11 = 4, 10 = 8.
    pub fn len(dr7: u64, n: usize) -> u64 {
        match (dr7 >> (18 + n * 4)) & 0b11 {
            0b00 => 1,
            0b01 => 2,
            0b10 => 8,
            _ => 4,
        }
    }
}

/// The enabled breakpoints by kind (bit `n` = DRn), decoded from DR7, plus the data
/// breakpoints the current instruction has hit so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Armed {
    /// Instruction breakpoints.
    pub exec: u8,
    /// Breakpoints that data writes trigger (R/W = 01 or 11).
    pub write: u8,
    /// Breakpoints that data reads trigger (R/W = 11).
    pub read: u8,
    /// I/O breakpoints (R/W = 10; they count only while CR4.DE is set).
    pub io: u8,
    /// Data and I/O breakpoints hit by the instruction executing now.
    pub hits: u8,
}

impl Armed {
    /// Decodes the enables and types of DR7.
    pub fn from_dr7(dr7: u64) -> Armed {
        let mut a = Armed::default();
        for n in (0..4).filter(|&n| dr7::enabled(dr7, n)) {
            let bit = 1 << n;
            match dr7::rw(dr7, n) {
                dr7::RW_EXEC => a.exec |= bit,
                dr7::RW_WRITE => a.write |= bit,
                dr7::RW_IO => a.io |= bit,
                _ => {
                    a.write |= bit;
                    a.read |= bit;
                }
            }
        }
        a
    }
}

/// True when `size` bytes at `addr` overlap the `len`-byte breakpoint at `bp` (the low
/// address bits LEN covers are ignored, SDM §17.2.5).
fn overlaps(bp: u64, len: u64, addr: u64, size: u64) -> bool {
    let start = bp & !(len - 1);
    addr.wrapping_sub(start) < len || start.wrapping_sub(addr) < size
}

impl Ctx<'_> {
    /// Re-decodes DR7 after it changed (MOV DR7, a state load).
    pub fn rearm_breakpoints(&mut self) {
        let hits = self.c.dbg.hits;
        self.c.dbg = Armed { hits, ..Armed::from_dr7(self.c.st.dr[7]) };
    }

    /// The breakpoints among `mask` whose range `size` bytes at `addr` overlap.
    fn breakpoint_hits(&self, mask: u8, addr: u64, size: u64) -> u8 {
        let dr7 = self.c.st.dr[7];
        (0..4)
            .filter(|&n| mask & (1 << n) != 0 && overlaps(self.c.st.dr[n], dr7::len(dr7, n), addr, size))
            .fold(0, |acc, n| acc | (1 << n))
    }

    /// Records the data breakpoints among `mask` that `size` bytes at linear `lin` hit;
    /// they trap after the instruction.
    #[cold]
    pub fn note_data_access(&mut self, mask: u8, lin: u64, size: u8) {
        self.c.dbg.hits |= self.breakpoint_hits(mask, lin, size as u64);
    }

    /// Records the I/O breakpoints that an access of `size` bytes at `port` hits.
    pub fn note_io_access(&mut self, port: u16, size: u8) {
        if self.c.dbg.io != 0 && self.c.st.cr4 & cr4::DE != 0 {
            self.c.dbg.hits |= self.breakpoint_hits(self.c.dbg.io, port as u64, size as u64);
        }
    }

    /// The instruction breakpoints at linear address `lin` (only the first byte of an
    /// instruction matches, and the LEN of an instruction breakpoint must be 1).
    #[cold]
    pub fn instruction_breakpoints(&self, lin: u64) -> u8 {
        let dr7 = self.c.st.dr[7];
        (0..4)
            .filter(|&n| self.c.dbg.exec & (1 << n) != 0 && dr7::len(dr7, n) == 1 && self.c.st.dr[n] == lin)
            .fold(0, |acc, n| acc | (1 << n))
    }

    /// Raises the general-detect fault when DR7.GD is set: DR6.BD is set and GD cleared
    /// so the handler may use the debug registers (SDM §17.2.4).
    pub fn check_general_detect(&mut self) -> R<()> {
        if self.c.st.dr[7] & dr7::GD != 0 {
            self.c.st.dr[6] |= dr6::BD;
            self.c.st.dr[7] &= !dr7::GD;
            self.rearm_breakpoints();
            return Err(Fault::exc(vec::DB));
        }
        Ok(())
    }

    /// Delivers #DB reporting `status`: B0-B3 (replacing the previous ones when any is
    /// set) and BS/BD (added). GD is cleared on entry to the handler.
    pub fn debug_exception(&mut self, status: u64) -> Result<(), Exit> {
        let st = &mut self.c.st;
        if status & dr6::B_MASK != 0 {
            st.dr[6] &= !dr6::B_MASK;
        }
        st.dr[6] |= status & (dr6::B_MASK | dr6::BD | dr6::BS);
        st.dr[7] &= !dr7::GD;
        self.c.dbg.hits = 0;
        self.rearm_breakpoints();
        self.deliver_event(Exception { vector: vec::DB, error: None }, false)
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::fl;
    use super::super::test_util::Machine;
    use super::*;
    use iced_x86::code_asm::*;

    #[test]
    fn dr7_decoding_sorts_breakpoints_by_type() {
        // DR0 exec (L0, R/W 00), DR1 write (G1), DR2 read/write (L2), DR3 I/O (G3).
        let ctl = 0b10_01_10_01 | (0b01 << 20) | (0b11 << 24) | (0b10 << 28);
        let a = Armed::from_dr7(ctl);
        assert_eq!((a.exec, a.write, a.read, a.io), (0b0001, 0b0110, 0b0100, 0b1000));
        // Types without enables arm nothing.
        assert_eq!(Armed::from_dr7(0x400 | (0b11 << 16)), Armed::default());
    }

    #[test]
    fn len_field_masks_the_low_address_bits() {
        assert_eq!(dr7::len(0b11 << 18, 0), 4);
        assert_eq!(dr7::len(0b10 << 22, 1), 8);
        // A 4-byte breakpoint at 0x1003 covers 0x1000-0x1003.
        assert!(overlaps(0x1003, 4, 0x1000, 1));
        assert!(!overlaps(0x1003, 4, 0x1004, 1));
        // A word at 0x0fff touches 0x1000.
        assert!(overlaps(0x1000, 8, 0x0fff, 2));
        assert!(!overlaps(0x1000, 8, 0x0ffe, 2));
    }

    /// Real-mode IVT entry `v` -> 0000:`handler`.
    fn vector_to(m: &Machine, v: u64, handler: u16) {
        m.poke(v * 4, &[handler as u8, (handler >> 8) as u8, 0, 0]);
    }

    /// A #DB handler at 0x3000 that counts in BX, saves DR6 in EDX and returns.
    fn counting_db_handler(m: &Machine) {
        let mut h = CodeAssembler::new(16).unwrap();
        h.inc(bx).unwrap();
        h.mov(edx, dr6).unwrap();
        h.iret().unwrap();
        m.load(&mut h, 0x3000, 0x3000);
        vector_to(m, 1, 0x3000);
    }

    #[test]
    fn instruction_breakpoint_faults_before_execution_and_rf_resumes() {
        // 0x1000: mov ax, 1 (3 bytes); 0x1003: mov cx, 2; hlt. Breakpoint on 0x1003.
        let mut a = CodeAssembler::new(16).unwrap();
        a.mov(ax, 1).unwrap();
        a.mov(cx, 2).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::real(&mut a);
        counting_db_handler(&m);
        m.cpu.state_mut().dr[0] = 0x1003;
        m.cpu.state_mut().dr[7] = 0x400 | 0b01;
        m.cpu.flush_caches();
        // A 16-bit IRET cannot restore RF (bit 16), so step by hand: the MOV AX, then
        // the #DB instead of MOV CX.
        assert_eq!(m.cpu.step(&m.p), Step::Retired);
        assert_eq!(m.cpu.step(&m.p), Step::Retired);
        let st = m.cpu.state();
        assert_eq!((st.rip, st.gpr[1] & 0xffff), (0x3000, 0), "#DB before MOV CX executes");
        assert_eq!(m.cpu.last_exception, Some((vec::DB, None)));
        assert_eq!(m.peek::<2>(0x8000 - 6), [0x03, 0x10], "pushed IP is the breakpoint");
        assert_eq!(st.dr[6] & 0xf, 1, "B0");
        // Back at the breakpoint with RF set: it executes once without a new #DB.
        let st = m.cpu.state_mut();
        st.rip = 0x1003;
        st.gpr[4] = 0x8000;
        st.rflags |= fl::RF;
        assert_eq!(m.cpu.step(&m.p), Step::Retired);
        assert_eq!(m.gpr(1) & 0xffff, 2);
        assert_eq!(m.cpu.state().rflags & fl::RF, 0, "RF cleared once the instruction ran");
        // Without RF the breakpoint fires every time.
        let st = m.cpu.state_mut();
        st.rip = 0x1003;
        m.cpu.step(&m.p);
        assert_eq!(m.cpu.state().rip, 0x3000);
    }

    use super::super::cpu::Step;

    /// Protected-mode IDT at 0x2000 with gate `v` -> 0x08:`handler` (32-bit interrupt gate).
    fn idt_gate(m: &mut Machine, v: u64, handler: u32) {
        let lo = (handler as u64 & 0xffff) | (0x08 << 16) | (0x8e00u64 << 32) | ((handler as u64 >> 16) << 48);
        m.poke(0x2000 + v * 8, &lo.to_le_bytes());
        let st = m.cpu.state_mut();
        st.idtr.base = 0x2000;
        st.idtr.limit = 0xff;
    }

    /// A 32-bit #DB handler at 0x30000: counts in EBX, keeps DR6 in EDX, returns with
    /// IRETD (which restores RF from the image).
    fn pm_db_handler(m: &mut Machine, set_rf: bool) {
        let mut h = CodeAssembler::new(32).unwrap();
        h.inc(ebx).unwrap();
        h.mov(edx, dr6).unwrap();
        h.mov(eax, 0).unwrap();
        h.mov(dr6, eax).unwrap();
        if set_rf {
            h.or(dword_ptr(esp + 8), fl::RF as i32).unwrap();
        }
        h.iretd().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        idt_gate(m, 1, 0x30000);
    }

    #[test]
    fn handler_resuming_with_rf_steps_over_the_breakpoint_once() {
        // A loop body that runs twice, with an instruction breakpoint inside it.
        let mut a = CodeAssembler::new(32).unwrap();
        let mut top = a.create_label();
        a.mov(ecx, 2).unwrap();
        a.set_label(&mut top).unwrap();
        a.inc(esi).unwrap();
        a.dec(ecx).unwrap();
        a.jnz(top).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        pm_db_handler(&mut m, true);
        // `inc esi` sits after the 5-byte `mov ecx, 2`.
        m.cpu.state_mut().dr[0] = 0x10005;
        m.cpu.state_mut().dr[7] = 0x400 | 0b10;
        m.cpu.flush_caches();
        m.run();
        assert_eq!(m.gpr(6), 2, "the instruction ran on each pass");
        assert_eq!(m.gpr(3), 2, "one #DB per pass, not a loop");
        assert_eq!(m.gpr(2) & 0xf, 1, "B0");
    }

    #[test]
    fn instruction_breakpoint_in_64_bit_mode_uses_rip_as_the_linear_address() {
        // mov ecx, 2 (5 bytes); top: inc rsi; dec ecx; jnz top; hlt, breakpoint on INC.
        let mut a = CodeAssembler::new(64).unwrap();
        let mut top = a.create_label();
        a.mov(ecx, 2).unwrap();
        a.set_label(&mut top).unwrap();
        a.inc(rsi).unwrap();
        a.dec(ecx).unwrap();
        a.jnz(top).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        // 64-bit interrupt gate 1 -> 0x18:0x30000 at IDT 0x2000 (16-byte entries).
        let gate = 0x30000u64 | (0x18 << 16) | (0x8e00 << 32) | ((0x30000u64 >> 16) << 48);
        m.poke(0x2010, &gate.to_le_bytes());
        m.poke(0x2018, &0u64.to_le_bytes());
        let mut h = CodeAssembler::new(64).unwrap();
        h.inc(rbx).unwrap();
        h.mov(rdx, dr6).unwrap();
        h.or(qword_ptr(rsp + 16), fl::RF as i32).unwrap();
        h.iretq().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        let st = m.cpu.state_mut();
        st.idtr.base = 0x2000;
        st.idtr.limit = 0xfff;
        st.dr[3] = 0x10005;
        st.dr[7] = 0x400 | 0b1000_0000;
        m.cpu.flush_caches();
        m.run();
        assert_eq!((m.gpr(6), m.gpr(3)), (2, 2));
        assert_eq!(m.gpr(2) & 0xf, 0b1000, "B3");
    }

    #[test]
    fn other_faults_push_rf_set() {
        // A #UD handler that records the pushed EFLAGS and skips the 2-byte UD2.
        let mut a = CodeAssembler::new(32).unwrap();
        a.ud2().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        let mut h = CodeAssembler::new(32).unwrap();
        h.mov(eax, dword_ptr(esp + 8)).unwrap();
        h.add(dword_ptr(esp), 2).unwrap();
        h.iretd().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        idt_gate(&mut m, 6, 0x30000);
        m.run();
        assert_ne!(m.gpr(0) & fl::RF, 0);
        assert_eq!(m.cpu.state().rflags & fl::RF, 0, "cleared after the next instruction");
    }

    /// Code: mov [0x5000], ax ; mov cx, [0x5002] ; add dword [0x5004], 1 ; hlt, with DR0
    /// set up by `dr7` at `addr`; returns (handler count, DR6 seen, pushed EIPs).
    fn data_breakpoint_run(addr: u64, dr7_bits: u64) -> (u64, u64, Vec<u32>) {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(word_ptr(0x5000), ax).unwrap();
        a.mov(cx, word_ptr(0x5002)).unwrap();
        a.add(dword_ptr(0x5004), 1).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        // Handler: count, keep DR6, log the pushed EIP at 0x6000 + 4*count, clear DR6.
        let mut h = CodeAssembler::new(32).unwrap();
        h.mov(eax, dword_ptr(esp)).unwrap();
        h.mov(dword_ptr(ebx * 4 + 0x6000), eax).unwrap();
        h.inc(ebx).unwrap();
        h.mov(edx, dr6).unwrap();
        h.or(dword_ptr(0x6100), edx).unwrap();
        h.mov(eax, 0).unwrap();
        h.mov(dr6, eax).unwrap();
        h.iretd().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        idt_gate(&mut m, 1, 0x30000);
        m.cpu.state_mut().dr[0] = addr;
        m.cpu.state_mut().dr[7] = 0x400 | 0b01 | dr7_bits;
        m.cpu.flush_caches();
        m.run();
        let n = m.gpr(3);
        let eips = (0..n).map(|i| u32::from_le_bytes(m.peek::<4>(0x6000 + i * 4))).collect();
        (n, u32::from_le_bytes(m.peek::<4>(0x6100)) as u64, eips)
    }

    #[test]
    fn write_breakpoint_traps_after_the_write_only() {
        // R/W = 01, LEN = 01 (2 bytes) on 0x5000: only the first MOV (writes) hits;
        // the read at 0x5002 does not. The trap's EIP is the next instruction (0x10006).
        let (n, dr6_seen, eips) = data_breakpoint_run(0x5000, (0b01 << 16) | (0b01 << 18));
        assert_eq!(n, 1);
        assert_eq!(dr6_seen & 0xf, 1);
        assert_eq!(dr6_seen & dr6::BS, 0);
        assert_eq!(eips, vec![0x10006]);
    }

    #[test]
    fn read_write_breakpoint_traps_on_reads_too() {
        // R/W = 11, LEN = 11 (4 bytes) at 0x5003 covers 0x5000-0x5003: the write of
        // 0x5000 and the read of 0x5002 both hit, the add at 0x5004 does not.
        let (n, dr6_seen, eips) = data_breakpoint_run(0x5003, (0b11 << 16) | (0b11 << 18));
        assert_eq!(n, 2);
        assert_eq!(dr6_seen & 0xf, 1);
        assert_eq!(eips, vec![0x10006, 0x1000d]);
    }

    #[test]
    fn len_8_breakpoint_sees_the_read_modify_write() {
        // R/W = 01, LEN = 10 (8 bytes) at 0x5004: all of 0x5000-0x5007 is covered;
        // both writes hit (mov [0x5000] and add [0x5004]).
        let (n, _, eips) = data_breakpoint_run(0x5004, (0b01 << 16) | (0b10 << 18));
        assert_eq!(n, 2);
        assert_eq!(eips, vec![0x10006, 0x10014]);
    }

    #[test]
    fn disabled_breakpoint_never_fires() {
        let (n, _, _) = data_breakpoint_run(0x5000, 0);
        assert_eq!(n, 0, "the L0 bit only: exec type on 0x5000 is never fetched");
    }

    #[test]
    fn general_detect_faults_on_mov_dr() {
        // mov eax, dr0 at 0x10000 with GD set: #DB fault with BD, GD cleared so the
        // handler can read DR6. The handler skips the 3-byte MOV.
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, dr0).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        let mut h = CodeAssembler::new(32).unwrap();
        h.inc(ebx).unwrap();
        h.mov(ecx, dword_ptr(esp)).unwrap();
        h.mov(edx, dr6).unwrap();
        h.mov(esi, dr7).unwrap();
        h.add(dword_ptr(esp), 3).unwrap();
        h.iretd().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        idt_gate(&mut m, 1, 0x30000);
        m.cpu.state_mut().dr[0] = 0x1234;
        m.cpu.state_mut().gpr[0] = 0x5555;
        m.cpu.state_mut().dr[7] = 0x400 | dr7::GD;
        m.cpu.flush_caches();
        m.run();
        assert_eq!(m.gpr(3), 1);
        assert_eq!(m.gpr(1), 0x10000, "fault: EIP of the MOV DR");
        assert_ne!(m.gpr(2) & dr6::BD, 0);
        assert_eq!(m.gpr(6) & dr7::GD, 0);
        assert_eq!(m.gpr(0), 0x5555, "the MOV did not execute");
    }

    #[test]
    fn single_step_and_data_breakpoint_report_together() {
        // TF set: each instruction traps with BS; the write to 0x5000 adds B1. The
        // handler stops the machine at the trap after the final NOP.
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(dword_ptr(0x5000), eax).unwrap();
        a.nop().unwrap();
        a.nop().unwrap();
        let mut m = Machine::protected32(&mut a);
        let mut h = CodeAssembler::new(32).unwrap();
        let mut stop = h.create_label();
        h.mov(edx, dr6).unwrap();
        h.mov(dword_ptr(ebx * 4 + 0x6000), edx).unwrap();
        h.inc(ebx).unwrap();
        h.mov(eax, 0).unwrap();
        h.mov(dr6, eax).unwrap();
        h.cmp(ebx, 3).unwrap();
        h.je(stop).unwrap();
        h.iretd().unwrap();
        h.set_label(&mut stop).unwrap();
        h.hlt().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        idt_gate(&mut m, 1, 0x30000);
        let st = m.cpu.state_mut();
        st.dr[1] = 0x5000;
        st.dr[7] = 0x400 | 0b100 | (0b01 << 20) | (0b11 << 22);
        st.rflags |= fl::TF;
        m.cpu.flush_caches();
        m.run();
        assert_eq!(m.gpr(3), 3, "one #DB after each of MOV, NOP, NOP");
        let seen = |i: u64| u32::from_le_bytes(m.peek::<4>(0x6000 + 4 * i)) as u64 & (dr6::BS | dr6::B_MASK);
        assert_eq!(seen(0), dr6::BS | 0b10);
        assert_eq!(seen(1), dr6::BS);
        assert_eq!(seen(2), dr6::BS);
    }

    #[test]
    fn icebp_raises_db_as_a_trap() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.int1().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        let mut h = CodeAssembler::new(32).unwrap();
        h.inc(ebx).unwrap();
        h.mov(ecx, dword_ptr(esp)).unwrap();
        h.iretd().unwrap();
        m.load(&mut h, 0x30000, 0x30000);
        idt_gate(&mut m, 1, 0x30000);
        m.run();
        assert_eq!(m.gpr(3), 1);
        assert_eq!(m.gpr(1), 0x10001, "returns after the 1-byte F1");
    }

    #[test]
    fn io_breakpoint_needs_cr4_de() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(dx, 0x80).unwrap();
        a.out(dx, al).unwrap();
        a.hlt().unwrap();
        for de in [false, true] {
            let mut m = Machine::protected32(&mut a);
            pm_db_handler(&mut m, false);
            let st = m.cpu.state_mut();
            st.dr[2] = 0x80;
            st.dr[7] = 0x400 | 0b10_0000 | (0b10 << 24);
            if de {
                st.cr4 |= cr4::DE;
            }
            m.cpu.flush_caches();
            m.run();
            assert_eq!(m.gpr(3), de as u64);
            if de {
                assert_eq!(m.gpr(2) & 0xf, 0b100);
            }
        }
    }
}
