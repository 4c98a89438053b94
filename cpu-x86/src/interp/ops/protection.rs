//! The paging-protection instructions: STAC and CLAC (SMAP's RFLAGS.AC), INVPCID, and
//! UMIP's rule for the descriptor-table stores (SDM Vol. 2A "CLAC", "INVPCID", Vol. 2B
//! "STAC", Vol. 3A §2.5 CR4.UMIP, §4.10.4.1 INVPCID).

use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::mmu::keep_smap;
use crate::interp::msr::canonical;
use crate::interp::state::{cr4, efer, fl, Mode};
use iced_x86::{Instruction, Mnemonic as M};

/// INVPCID types (SDM Vol. 2A "INVPCID", "INVPCID Descriptor" and its type list).
mod invpcid_type {
    /// One linear address in one PCID (global translations may stay).
    pub const ADDRESS: u64 = 0;
    /// Every non-global translation of one PCID.
    pub const SINGLE_CONTEXT: u64 = 1;
    /// Every translation, global ones too.
    pub const ALL_WITH_GLOBAL: u64 = 2;
    /// Every non-global translation of every PCID.
    pub const ALL: u64 = 3;
}

impl Ctx<'_> {
    /// UMIP: SGDT, SIDT, SLDT, SMSW and STR raise #GP(0) at CPL > 0 with CR4.UMIP set.
    pub(super) fn check_umip(&self) -> R<()> {
        if self.c.st.cr4 & cr4::UMIP != 0 && self.c.st.cpl > 0 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    /// STAC / CLAC: set or clear RFLAGS.AC; #UD above CPL 0 (virtual-8086 mode included).
    /// Clearing AC below CPL 3 forbids supervisor accesses to user pages again under
    /// SMAP, so the TLB drops its user pages at once (compiled code after CLAC in the
    /// same chain probes it inline).
    pub(super) fn stac_clac(&mut self, ins: &Instruction) -> R<()> {
        if self.c.st.cpl > 0 {
            return Err(Fault::ud());
        }
        if ins.mnemonic() == M::Stac {
            self.c.st.rflags |= fl::AC;
        } else {
            self.c.st.rflags &= !fl::AC;
            keep_smap(&self.c.st, &mut self.c.tlb);
        }
        Ok(())
    }

    /// INVPCID type, [descriptor]: the descriptor holds the PCID in bits 11:0 (63:12
    /// zero) and the linear address in bits 127:64. The TLB holds the current PCID's
    /// translations and the global ones only, so a type naming another PCID has nothing
    /// to drop.
    pub(super) fn invpcid(&mut self, ins: &Instruction) -> R<()> {
        if self.c.st.mode == Mode::V86 || self.c.st.cpl != 0 {
            return Err(Fault::gp(0));
        }
        let long64 = self.c.st.long64();
        let ty = self.reg(ins.op0_register()) & if long64 { u64::MAX } else { 0xffff_ffff };
        let (seg, off) = self.ea(ins);
        let desc = self.read(seg, off, 8)?;
        let addr = self.read(seg, off.wrapping_add(8), 8)?;
        let pcid = desc & 0xfff;
        let pcide = self.c.st.cr4 & cr4::PCIDE != 0;
        if ty > invpcid_type::ALL || desc >> 12 != 0 {
            return Err(Fault::gp(0));
        }
        if matches!(ty, invpcid_type::ADDRESS | invpcid_type::SINGLE_CONTEXT) && !pcide && pcid != 0 {
            return Err(Fault::gp(0));
        }
        if ty == invpcid_type::ADDRESS && !canonical(addr) {
            return Err(Fault::gp(0));
        }
        let current = pcid == if pcide { self.c.st.cr3 & 0xfff } else { 0 };
        match ty {
            invpcid_type::ADDRESS if current => {
                let lin = if self.c.st.efer & efer::LMA != 0 { addr } else { addr & 0xffff_ffff };
                self.c.tlb.flush_page(lin);
            }
            invpcid_type::SINGLE_CONTEXT if current => self.c.tlb.flush(true),
            invpcid_type::ALL_WITH_GLOBAL => self.c.tlb.flush(false),
            invpcid_type::ALL => self.c.tlb.flush(true),
            _ => {}
        }
        self.c.brk = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::fault::vec;
    use crate::interp::model::CpuModel;
    use crate::interp::state::{cr0, cr4, Seg, Segment};
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    /// A user page (linear = physical 0x5000) among supervisor pages: the first 2 MiB
    /// are identity-mapped by 4-KiB supervisor pages (page table at 0x73000).
    const USER_PAGE: u64 = 0x5000;
    /// The page-table entry of [`USER_PAGE`].
    const USER_PTE: u64 = 0x73000 + 5 * 8;

    /// `a` in 64-bit mode at CPL 0 on `model` with CR4 |= `cr4_bits`, exceptions
    /// caught, the pages above; 0x5000 holds 0xaaaa and 0x6000 holds 0xbbbb. `setup`
    /// may change the machine before it runs to HLT.
    fn run64_with(a: &mut CodeAssembler, model: CpuModel, cr4_bits: u64, setup: impl FnOnce(&mut Machine)) -> Machine {
        let mut m = Machine::long64(a);
        m.catch_exceptions(true);
        m.poke(0x72000, &(0x73000u64 | 7).to_le_bytes());
        for i in 0..512u64 {
            m.poke(0x73000 + i * 8, &(i << 12 | 3).to_le_bytes());
        }
        m.poke(USER_PTE, &(USER_PAGE | 7).to_le_bytes());
        m.poke(0x5000, &0xaaaau64.to_le_bytes());
        m.poke(0x6000, &0xbbbbu64.to_le_bytes());
        m.cpu.set_cpu_model(model);
        m.cpu.state_mut().cr4 |= cr4_bits;
        setup(&mut m);
        m.cpu.flush_caches();
        m.run();
        m
    }

    fn run64(a: &mut CodeAssembler, cr4_bits: u64) -> Machine {
        run64_with(a, CpuModel::Max, cr4_bits, |_| {})
    }

    #[test]
    fn smap_faults_supervisor_data_accesses_to_user_pages_unless_ac() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.stac().unwrap();
        a.mov(rbx, qword_ptr(USER_PAGE)).unwrap();
        a.clac().unwrap();
        // The entry cached with AC=1 must not serve this read.
        a.mov(rcx, qword_ptr(USER_PAGE)).unwrap();
        a.hlt().unwrap();
        let m = run64(&mut a, cr4::SMAP);
        assert_eq!(m.gpr(3), 0xaaaa, "read with AC=1");
        assert_eq!(m.gpr(1), 0, "not read after CLAC");
        assert_eq!(m.cpu.last_exception, Some((vec::PF, Some(1))), "present, read, supervisor");
        assert_eq!(m.cpu.state().cr2, USER_PAGE);
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(qword_ptr(USER_PAGE), rax).unwrap();
        a.hlt().unwrap();
        let m = run64(&mut a, cr4::SMAP);
        assert_eq!(m.cpu.last_exception, Some((vec::PF, Some(3))), "present, write, supervisor");
        assert_eq!(run64(&mut a, 0).cpu.last_exception, None, "no SMAP");
    }

    #[test]
    fn stac_and_clac_need_smap_in_the_model() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.clac().unwrap();
        a.hlt().unwrap();
        assert_eq!(run64(&mut a, 0).cpu.last_exception, None);
        let m = run64_with(&mut a, CpuModel::X86_64V3, 0, |_| {});
        assert_eq!(m.cpu.last_exception, Some((vec::UD, None)));
    }

    #[test]
    fn smep_faults_supervisor_fetches_from_user_pages() {
        let mut user = CodeAssembler::new(64).unwrap();
        user.mov(ebx, 1).unwrap();
        user.hlt().unwrap();
        let user = user.assemble(USER_PAGE + 0x100).unwrap();
        for smep in [false, true] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(rax, USER_PAGE + 0x100).unwrap();
            a.jmp(rax).unwrap();
            let bits = if smep { cr4::SMEP } else { 0 };
            let m = run64_with(&mut a, CpuModel::Max, bits, |m| m.poke(USER_PAGE + 0x100, &user));
            if smep {
                assert_eq!(m.cpu.last_exception, Some((vec::PF, Some(0x11))), "present, fetch");
                assert_eq!(m.cpu.state().cr2, USER_PAGE + 0x100);
                assert_eq!(m.gpr(3), 0);
            } else {
                assert_eq!((m.cpu.last_exception, m.gpr(3)), (None, 1));
            }
        }
    }

    #[test]
    fn cr4_refuses_what_the_model_lacks() {
        for (bit, v3) in [(cr4::SMEP, true), (cr4::SMAP, false), (cr4::UMIP, false)] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(rax, cr4).unwrap();
            a.or(rax, bit as i32).unwrap();
            a.mov(cr4, rax).unwrap();
            a.hlt().unwrap();
            assert_eq!(run64(&mut a, 0).cpu.state().cr4 & bit, bit);
            let m = run64_with(&mut a, CpuModel::X86_64V3, 0, |_| {});
            let want = if v3 { None } else { Some((vec::GP, Some(0))) };
            assert_eq!(m.cpu.last_exception, want, "{bit:#x}");
        }
    }

    /// Reads 0x5000 into RBX, points its PTE at 0x6000, writes CR3 = 0x70000 | `cr3_low`,
    /// optionally runs `flush`, reads 0x5000 into RCX and CR3 into RDX.
    fn remap_and_reload(cr3_low: u64, flush: impl FnOnce(&mut CodeAssembler)) -> Machine {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rbx, qword_ptr(USER_PAGE)).unwrap();
        a.mov(rax, 0x6000u64 | 7).unwrap();
        a.mov(qword_ptr(USER_PTE), rax).unwrap();
        a.mov(rax, 0x70000 | cr3_low).unwrap();
        a.mov(cr3, rax).unwrap();
        flush(&mut a);
        a.mov(rcx, qword_ptr(USER_PAGE)).unwrap();
        a.mov(rdx, cr3).unwrap();
        a.hlt().unwrap();
        run64(&mut a, cr4::PCIDE)
    }

    #[test]
    fn mov_cr3_with_bit_63_keeps_the_pcid_translations() {
        let m = remap_and_reload(1 << 63, |_| {});
        assert_eq!(m.cpu.last_exception, None);
        assert_eq!((m.gpr(3), m.gpr(1)), (0xaaaa, 0xaaaa), "stale translation kept");
        assert_eq!(m.gpr(2), 0x70000, "bit 63 is not stored");
        let m = remap_and_reload(0, |_| {});
        assert_eq!(m.gpr(1), 0xbbbb, "bit 63 clear: flushed");
        let m = remap_and_reload(1 << 63 | 5, |_| {});
        assert_eq!((m.gpr(1), m.gpr(2)), (0xbbbb, 0x70005), "another PCID: not the old translations");
    }

    #[test]
    fn pcide_rules_for_cr4_and_cr0() {
        // PCIDE with a nonzero PCID in CR3, or outside long mode: #GP(0).
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, 0x70001u64).unwrap();
        a.mov(cr3, rax).unwrap();
        a.mov(rax, cr4).unwrap();
        a.or(rax, cr4::PCIDE as i32).unwrap();
        a.mov(cr4, rax).unwrap();
        a.hlt().unwrap();
        let m = run64(&mut a, 0);
        assert_eq!((m.cpu.last_exception, m.cpu.state().cr4 & cr4::PCIDE), (Some((vec::GP, Some(0))), 0));
        // Paging off while PCIDE = 1: #GP(0).
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, cr0).unwrap();
        a.and(eax, !(cr0::PG as u32) as i32).unwrap();
        a.mov(cr0, rax).unwrap();
        a.hlt().unwrap();
        let m = run64(&mut a, cr4::PCIDE);
        assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))));
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, cr4).unwrap();
        a.or(eax, cr4::PCIDE as i32).unwrap();
        a.mov(cr4, eax).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.catch_exceptions(false);
        m.run();
        assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))), "not in long mode");
    }

    /// INVPCID type `ty` with descriptor (`desc`, `addr`) at 0x3000.
    fn invpcid(a: &mut CodeAssembler, ty: u64, desc: u64, addr: u64) {
        a.mov(rax, desc).unwrap();
        a.mov(qword_ptr(0x3000), rax).unwrap();
        a.mov(rax, addr).unwrap();
        a.mov(qword_ptr(0x3008), rax).unwrap();
        a.mov(rax, ty).unwrap();
        a.invpcid(rax, xmmword_ptr(0x3000)).unwrap();
    }

    #[test]
    fn invpcid_drops_the_named_translations() {
        // Individual address and single context of the current PCID (1).
        for ty in [0, 1] {
            let m = remap_and_reload(1 << 63 | 1, |a| invpcid(a, ty, 1, USER_PAGE));
            assert_eq!((m.cpu.last_exception, m.gpr(1)), (None, 0xbbbb), "type {ty}");
        }
        // All contexts with globals drops a global page that CR3 writes keep.
        for (ty, want) in [(3, 0xaaaa), (2, 0xbbbb)] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(rbx, qword_ptr(USER_PAGE)).unwrap();
            a.mov(rax, 0x6000u64 | 0x107).unwrap();
            a.mov(qword_ptr(USER_PTE), rax).unwrap();
            a.mov(rax, 0x70000u64).unwrap();
            a.mov(cr3, rax).unwrap();
            invpcid(&mut a, ty, 0, 0);
            a.mov(rcx, qword_ptr(USER_PAGE)).unwrap();
            a.hlt().unwrap();
            let m = run64_with(&mut a, CpuModel::Max, cr4::PCIDE | cr4::PGE, |m| {
                m.poke(USER_PTE, &(USER_PAGE | 0x107).to_le_bytes())
            });
            assert_eq!((m.cpu.last_exception, m.gpr(1)), (None, want), "type {ty}");
        }
    }

    #[test]
    fn invpcid_faults() {
        let gp = Some((vec::GP, Some(0)));
        for (ty, desc, addr, pcide) in
            [(4, 0, 0, true), (0, 1 << 12, 0, true), (0, 0, 0x8000_0000_0000_0000, true), (1, 1, 0, false)]
        {
            let mut a = CodeAssembler::new(64).unwrap();
            invpcid(&mut a, ty, desc, addr);
            a.hlt().unwrap();
            let m = run64(&mut a, if pcide { cr4::PCIDE } else { 0 });
            assert_eq!(m.cpu.last_exception, gp, "type {ty} desc {desc:#x} addr {addr:#x}");
        }
        let mut a = CodeAssembler::new(64).unwrap();
        invpcid(&mut a, 2, 0, 0);
        a.hlt().unwrap();
        assert_eq!(run64(&mut a, 0).cpu.last_exception, None);
        let m = run64_with(&mut a, CpuModel::X86_64V2, 0, |_| {});
        assert_eq!(m.cpu.last_exception, Some((vec::UD, None)), "no INVPCID before Haswell");
    }

    /// Runs `op` at CPL 3 in flat 32-bit protected mode (TSS for the ring-0 stack) with
    /// CR4 |= `cr4_bits`; `op` is followed by MOV EBX, 1 and HLT (which #GPs at CPL 3).
    fn run_user32(op: impl FnOnce(&mut CodeAssembler), cr4_bits: u64) -> Machine {
        let mut a = CodeAssembler::new(32).unwrap();
        op(&mut a);
        a.mov(ebx, 1).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.catch_exceptions(false);
        m.poke(0x518, &0x00cf_fb00_0000_ffffu64.to_le_bytes());
        m.poke(0x520, &0x00cf_f300_0000_ffffu64.to_le_bytes());
        m.poke(0x528, &0x0000_8b00_4000_0067u64.to_le_bytes());
        m.poke(0x4004, &0x9000u32.to_le_bytes());
        m.poke(0x4008, &0x10u32.to_le_bytes());
        let st = m.cpu.state_mut();
        st.gdtr.limit = 0x2f;
        st.tr = Segment { base: 0x4000, limit: 0x67, selector: 0x28, attrs: 0x8b };
        let data = Segment { base: 0, limit: 0xffff_ffff, selector: 0x23, attrs: 0xc0f3 };
        st.seg = [data; 6];
        st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: 0x1b, attrs: 0xc0fb };
        st.cpl = 3;
        st.cr4 |= cr4_bits;
        m.cpu.flush_caches();
        m.run();
        m
    }

    #[test]
    fn umip_refuses_descriptor_table_stores_above_cpl_0() {
        type Emit = fn(&mut CodeAssembler);
        let cases: [(&str, Emit); 5] = [
            ("SGDT", |a| a.sgdt(ptr(0x3000)).unwrap()),
            ("SIDT", |a| a.sidt(ptr(0x3000)).unwrap()),
            ("SLDT", |a| a.sldt(ax).unwrap()),
            ("STR", |a| a.str(ax).unwrap()),
            ("SMSW", |a| a.smsw(eax).unwrap()),
        ];
        for (name, op) in cases {
            let m = run_user32(op, 0);
            assert_eq!(m.gpr(3), 1, "{name} without UMIP");
            let m = run_user32(op, cr4::UMIP);
            assert_eq!((m.gpr(3), m.cpu.last_exception), (0, Some((vec::GP, Some(0)))), "{name} with UMIP");
            assert_eq!(m.cpu.state().rip, 0x30001, "{name}: in the #GP handler");
        }
        // CPL 0 is not restricted.
        let mut a = CodeAssembler::new(64).unwrap();
        a.sgdt(ptr(0x3000)).unwrap();
        a.smsw(eax).unwrap();
        a.hlt().unwrap();
        assert_eq!(run64(&mut a, cr4::UMIP).cpu.last_exception, None);
    }
}
