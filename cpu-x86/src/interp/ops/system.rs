//! System instructions: MOV to/from CR and DR, LGDT LIDT SGDT SIDT LLDT SLDT LTR STR
//! LMSW SMSW, CLTS INVLPG WBINVD INVD, LAR LSL VERR VERW ARPL, SYSENTER SYSEXIT SYSCALL
//! SYSRET SWAPGS, RD/WR FS/GS BASE, CPUID, RDTSC RDTSCP, RDMSR WRMSR, RDPMC, and the #UD
//! of instructions this CPU model does not have (SDM Vol. 2 and Vol. 3A §2.5-2.7,
//! §5.8.7-5.8.8).

use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::flags::size_mask;
use crate::interp::msr::canonical;
use crate::interp::segment::{sel_err, Descriptor};
use crate::interp::state::{attr, cr0, cr4, efer, fl, Mode, Seg, Segment};
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};

/// IA32_APIC_BASE (SDM Vol. 3A §11.4.4) and the bits CR8 needs of it.
mod apic {
    /// The MSR number.
    pub const BASE_MSR: u32 = 0x1b;
    /// Bit 10: x2APIC mode (EXTD).
    pub const BASE_EXTD: u64 = 1 << 10;
    /// Bit 11: APIC global enable (EN).
    pub const BASE_EN: u64 = 1 << 11;
    /// The xAPIC page's physical address: bits 35:12 (MAXPHYADDR is 36, see CPUID).
    pub const BASE_ADDR: u64 = 0xf_ffff_f000;
    /// The TPR's offset in the xAPIC page (SDM Vol. 3A Table 11-1).
    pub const XAPIC_TPR: u64 = 0x80;
    /// The TPR as an x2APIC MSR (SDM Vol. 3A Table 11-6).
    pub const X2APIC_TPR_MSR: u32 = 0x808;
}

/// Where the local APIC's task-priority register is reached.
enum TprAccess {
    /// The xAPIC page, at this physical address.
    Mmio(u64),
    /// The x2APIC MSR.
    X2apic,
}

/// True for the instructions this CPU model does not have: they raise #UD, as on a
/// processor whose CPUID does not report them, so a guest probing for a feature by
/// catching #UD carries on.
/// - VMX (CPUID.1:ECX.VMX = 0): outside VMX operation every VMX instruction, VMCALL
///   included, is #UD (SDM Vol. 3C §31.3, Vol. 2C "VMCALL").
/// - SVM (CPUID.80000001H:ECX.SVM = 0, EFER.SVME cannot be set): #UD (AMD APM Vol. 3).
/// - XSAVE (CPUID.1:ECX.XSAVE = 0, so CR4.OSXSAVE cannot be set): XGETBV, XSETBV and
///   the XSAVE/XRSTOR family are #UD (SDM Vol. 2C "XGETBV": IF CR4.OSXSAVE = 0 #UD).
/// - INVPCID (CPUID.(EAX=7,ECX=0):EBX.INVPCID = 0), RDPID (CPUID.(7,0):ECX.RDPID = 0),
///   RDRAND and RDSEED (CPUID.1:ECX.RDRAND, CPUID.(7,0):EBX.RDSEED = 0), MONITOR and
///   MWAIT (CPUID.1:ECX.MONITOR = 0) and AMD's RDPRU, MONITORX and MWAITX.
pub(super) fn absent_from_model(m: M) -> bool {
    matches!(
        m,
        M::Vmcall
            | M::Vmlaunch
            | M::Vmresume
            | M::Vmxoff
            | M::Vmxon
            | M::Vmclear
            | M::Vmptrld
            | M::Vmptrst
            | M::Vmread
            | M::Vmwrite
            | M::Vmfunc
            | M::Invept
            | M::Invvpid
            | M::Vmrun
            | M::Vmload
            | M::Vmsave
            | M::Vmmcall
            | M::Stgi
            | M::Clgi
            | M::Skinit
            | M::Invlpga
            | M::Xsaves
            | M::Xsaves64
            | M::Xrstors
            | M::Xrstors64
            | M::Monitor
            | M::Mwait
            | M::Rdpru
            | M::Monitorx
            | M::Mwaitx
    )
}

impl Ctx<'_> {
    /// RDPMC (SDM Vol. 2B "RDPMC"). This CPU model has no performance-monitoring
    /// counters: CPUID reports no leaf 0AH (architectural performance monitoring) and
    /// neither the P6 PerfCtr0/1 nor the IA32_PMCx MSRs exist. So after the privilege
    /// rule (#GP(0) at CPL > 0 with CR4.PCE clear) every counter index in ECX is
    /// invalid, which is #GP(0) too.
    pub(super) fn rdpmc(&mut self) -> R<()> {
        let st = &self.c.st;
        if st.cpl != 0 && st.cr4 & cr4::PCE == 0 {
            return Err(Fault::gp(0));
        }
        log::debug!("RDPMC of counter {:#x}: this CPU has no performance counters, #GP(0)", st.gpr[1] as u32);
        Err(Fault::gp(0))
    }

    /// How CR8 reaches the local APIC's TPR: through the board's IA32_APIC_BASE, at
    /// the xAPIC page or the x2APIC MSR; `None` when the board has no local APIC or it
    /// is globally disabled (CR8 is then only the CPU's copy).
    fn tpr_access(&self) -> Option<TprAccess> {
        let base = self.p.msr_read(apic::BASE_MSR)?;
        if base & apic::BASE_EN == 0 {
            return None;
        }
        Some(if base & apic::BASE_EXTD != 0 {
            TprAccess::X2apic
        } else {
            TprAccess::Mmio((base & apic::BASE_ADDR) + apic::XAPIC_TPR)
        })
    }

    /// MOV to CR8: TPR[7:4] = CR8[3:0], TPR[3:0] = 0, so the write shows in APIC
    /// register 0x80 and masks interrupts of that priority class and below; bits 63:4
    /// are reserved, #GP(0) (SDM Vol. 3A §11.8.6, §2.5).
    fn write_cr8(&mut self, v: u64) -> R<()> {
        if v & !0xf != 0 {
            return Err(Fault::gp(0));
        }
        self.c.st.cr8 = v;
        let tpr = (v as u32) << 4;
        match self.tpr_access() {
            Some(TprAccess::Mmio(addr)) => self.p.memory().write(addr, &tpr.to_le_bytes()),
            Some(TprAccess::X2apic) => {
                self.p.msr_write(apic::X2APIC_TPR_MSR, tpr.into());
            }
            None => {}
        }
        self.c.irq_check = true;
        self.c.brk = true;
        Ok(())
    }

    /// MOV from CR8: TPR[7:4] (SDM Vol. 3A §11.8.6), so TPR writes through the APIC
    /// page show in CR8 too.
    fn read_cr8(&mut self) -> u64 {
        let tpr = match self.tpr_access() {
            Some(TprAccess::Mmio(addr)) => {
                let mut b = [0; 4];
                self.p.memory().read(addr, &mut b);
                Some(u64::from(u32::from_le_bytes(b)))
            }
            Some(TprAccess::X2apic) => self.p.msr_read(apic::X2APIC_TPR_MSR),
            None => None,
        };
        if let Some(tpr) = tpr {
            self.c.st.cr8 = (tpr >> 4) & 0xf;
        }
        self.c.st.cr8
    }

    fn require_cpl0(&self) -> R<()> {
        if self.c.st.cpl != 0 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    fn require_protected(&self) -> R<()> {
        if !self.c.st.protected() {
            return Err(Fault::ud());
        }
        Ok(())
    }

    /// Writes CR0 with the consistency checks of SDM Vol. 3A §2.5 and mode updates.
    pub fn write_cr0(&mut self, v: u64) -> R<()> {
        let v = (v & 0xffff_ffff) | cr0::ET;
        if v >> 32 != 0 || (v & cr0::PG != 0 && v & cr0::PE == 0) || (v & cr0::NW != 0 && v & cr0::CD == 0) {
            return Err(Fault::gp(0));
        }
        let st = &mut self.c.st;
        let enabling_paging = v & cr0::PG != 0 && st.cr0 & cr0::PG == 0;
        if enabling_paging && st.efer & efer::LME != 0 {
            if st.cr4 & cr4::PAE == 0 {
                return Err(Fault::gp(0));
            }
            st.efer |= efer::LMA;
        }
        // SDM Vol. 2B "MOV to CR0": paging may not be turned off while CR4.PCIDE = 1.
        if v & cr0::PG == 0 && st.cr4 & cr4::PCIDE != 0 {
            return Err(Fault::gp(0));
        }
        if v & cr0::PG == 0 {
            st.efer &= !efer::LMA;
        }
        // Without paging, linear addresses map to themselves whether PE is set or not,
        // so switching between real and protected mode keeps the TLB.
        if (st.cr0 ^ v) & (cr0::PG | cr0::WP) != 0 {
            self.c.tlb.flush(false);
        }
        self.c.st.cr0 = v;
        self.c.st.update_mode();
        self.c.brk = true;
        Ok(())
    }

    /// Writes CR4: #GP for bits the model lacks, for PAE off in long mode, and for PCIDE
    /// set outside long mode or with a nonzero PCID in CR3 (SDM Vol. 2B "MOV to CR4").
    /// Changes that alter translations or what the TLB may hold (PAE, PGE, PSE, PCIDE,
    /// SMEP, SMAP) flush the whole TLB.
    pub fn write_cr4(&mut self, v: u64) -> R<()> {
        let st = &self.c.st;
        if v & !st.model.cr4_supported() != 0 || (st.efer & efer::LMA != 0 && v & cr4::PAE == 0) {
            return Err(Fault::gp(0));
        }
        if v & cr4::PCIDE != 0 && st.cr4 & cr4::PCIDE == 0 && (st.efer & efer::LMA == 0 || st.cr3 & 0xfff != 0) {
            return Err(Fault::gp(0));
        }
        let flushing = cr4::PAE | cr4::PGE | cr4::PSE | cr4::PCIDE | cr4::SMEP | cr4::SMAP;
        if (st.cr4 ^ v) & flushing != 0 {
            self.c.tlb.flush(false);
        }
        self.c.st.cr4 = v;
        self.c.brk = true;
        Ok(())
    }

    /// Writes CR3 and flushes the non-global TLB entries. With CR4.PCIDE, bits 11:0 are
    /// the PCID and bit 63 set (not stored) keeps the TLB when the PCID stays the same;
    /// the TLB holds one PCID's translations, so a new PCID drops the old one's.
    pub fn write_cr3(&mut self, v: u64) {
        let st = &mut self.c.st;
        let pcide = st.cr4 & cr4::PCIDE != 0;
        let keep = pcide && v >> 63 != 0 && (v ^ st.cr3) & 0xfff == 0;
        st.cr3 = if st.efer & efer::LMA != 0 { v & 0x000f_ffff_ffff_ffff } else { v & 0xffff_ffff };
        if !keep {
            self.c.tlb.flush(st.cr4 & cr4::PGE != 0);
        }
        self.c.brk = true;
    }

    pub(super) fn mov_control(&mut self, ins: &Instruction) -> R<()> {
        if self.c.st.mode == Mode::V86 {
            return Err(Fault::gp(0));
        }
        self.require_cpl0()?;
        let (r0, r1) = (ins.op0_register(), ins.op1_register());
        let wide = if self.c.st.long64() { 8 } else { 4 };
        if r0.is_cr() || r1.is_cr() {
            let (cr, gpr, to_cr) = if r0.is_cr() { (r0, r1, true) } else { (r1, r0, false) };
            let n = cr as usize - Register::CR0 as usize;
            if to_cr {
                let v = self.reg(gpr) & size_mask(wide);
                match n {
                    0 => self.write_cr0(v)?,
                    2 => self.c.st.cr2 = v,
                    3 => self.write_cr3(v),
                    4 => self.write_cr4(v)?,
                    8 => self.write_cr8(v)?,
                    _ => return Err(Fault::ud()),
                }
            } else {
                let v = match n {
                    0 => self.c.st.cr0,
                    2 => self.c.st.cr2,
                    3 => self.c.st.cr3,
                    4 => self.c.st.cr4,
                    8 => self.read_cr8(),
                    _ => return Err(Fault::ud()),
                };
                self.set_reg(gpr, v & size_mask(wide));
            }
        } else {
            let (dr, gpr, to_dr) = if r0.is_dr() { (r0, r1, true) } else { (r1, r0, false) };
            self.check_general_detect()?;
            let mut n = dr as usize - Register::DR0 as usize;
            if n == 4 || n == 5 {
                if self.c.st.cr4 & cr4::DE != 0 {
                    return Err(Fault::ud());
                }
                n += 2;
            }
            if n > 7 {
                return Err(Fault::ud());
            }
            if to_dr {
                let v = self.reg(gpr) & size_mask(wide);
                self.c.st.dr[n] = match n {
                    6 => (v & 0xf00f) | 0xffff_0ff0,
                    7 => (v & 0xffff_2bff) | 0x400,
                    _ => v,
                };
                if n == 7 {
                    self.rearm_breakpoints();
                }
            } else {
                let v = self.c.st.dr[n];
                self.set_reg(gpr, v & size_mask(wide));
            }
        }
        Ok(())
    }

    pub(super) fn table_op(&mut self, ins: &Instruction) -> R<()> {
        let m = ins.mnemonic();
        match m {
            M::Lgdt | M::Lidt => {
                self.require_cpl0()?;
                let (seg, off) = self.ea(ins);
                let limit = self.read(seg, off, 2)?;
                let base = if self.c.st.long64() {
                    // SDM Vol. 2A "LGDT/LIDT", 64-bit mode: #GP(0) for a non-canonical base.
                    let b = self.read(seg, off + 2, 8)?;
                    if !canonical(b) {
                        return Err(Fault::gp(0));
                    }
                    b
                } else {
                    let b = self.read(seg, off + 2, 4)?;
                    if ins.code() == iced_x86::Code::Lgdt_m1632_16 || ins.code() == iced_x86::Code::Lidt_m1632_16 {
                        b & 0xff_ffff
                    } else {
                        b
                    }
                };
                let t = if m == M::Lgdt { &mut self.c.st.gdtr } else { &mut self.c.st.idtr };
                t.base = base;
                t.limit = limit as u32;
            }
            M::Sgdt | M::Sidt => {
                self.check_umip()?;
                let t = if m == M::Sgdt { self.c.st.gdtr } else { self.c.st.idtr };
                let (seg, off) = self.ea(ins);
                let bsize = if self.c.st.long64() { 8 } else { 4 };
                self.probe_write(seg, off, 2 + bsize)?;
                self.write(seg, off, 2, t.limit as u64)?;
                self.write(seg, off + 2, bsize, t.base)?;
            }
            M::Sldt | M::Str => {
                self.require_protected()?;
                self.check_umip()?;
                let sel = if m == M::Sldt { self.c.st.ldtr.selector } else { self.c.st.tr.selector };
                let size = if ins.op0_kind() == OpKind::Memory { 2 } else { self.op_size(ins, 0) };
                self.write_op(ins, 0, size, sel as u64)?;
            }
            M::Lldt | M::Ltr => {
                self.require_protected()?;
                self.require_cpl0()?;
                let sel = self.read_op(ins, 0, 2)? as u16;
                self.load_system_segment(sel, m == M::Ltr)?;
            }
            M::Smsw => {
                self.check_umip()?;
                let v = self.c.st.cr0;
                let size = if ins.op0_kind() == OpKind::Memory { 2 } else { self.op_size(ins, 0) };
                self.write_op(ins, 0, size, v & size_mask(size))?;
            }
            _ => {
                self.require_cpl0()?;
                let v = self.read_op(ins, 0, 2)?;
                // LMSW changes PE (set only), MP, EM and TS.
                let old = self.c.st.cr0;
                let new = (old & !0xe) | (v & 0xe) | ((old | v) & cr0::PE);
                self.write_cr0(new)?;
            }
        }
        Ok(())
    }

    /// LLDT / LTR.
    fn load_system_segment(&mut self, sel: u16, task: bool) -> R<()> {
        if sel & !3 == 0 {
            if task {
                return Err(Fault::gp(0));
            }
            self.c.st.ldtr = Segment { selector: sel, ..Segment::default() };
            return Ok(());
        }
        if sel & 4 != 0 {
            return Err(Fault::gp(sel_err(sel)));
        }
        let long = self.c.st.efer & efer::LMA != 0;
        let d = self.read_descriptor(sel)?;
        let ok = !d.s() && if task { matches!(d.typ(), 0x1 | 0x9) } else { d.typ() == 0x2 };
        if !ok || (long && task && d.typ() != 0x9) {
            return Err(Fault::gp(sel_err(sel)));
        }
        if !d.present() {
            return Err(Fault::np(sel_err(sel)));
        }
        let mut s = d.to_segment(sel);
        if long {
            // The base in the 16-byte system descriptor must be canonical (SDM Vol. 3A
            // §3.3.7.1): #GP(selector), as Bochs's LLDT and LTR raise.
            s.base |= self.read_descriptor_high(sel)? << 32;
            if !canonical(s.base) {
                return Err(Fault::gp(sel_err(sel)));
            }
        }
        if task {
            // Mark the TSS busy in the GDT and in the cache.
            let a = self.descriptor_addr(sel, 8)?;
            self.write_lin_sys(a + 5, 1, ((d.0 >> 40) & 0xff) | 2)?;
            s.attrs |= 2;
            self.c.st.tr = s;
        } else {
            self.c.st.ldtr = s;
        }
        Ok(())
    }

    pub(super) fn cache_op(&mut self, ins: &Instruction) -> R<()> {
        self.require_cpl0()?;
        match ins.mnemonic() {
            M::Clts => self.c.st.cr0 &= !cr0::TS,
            M::Invlpg => {
                let (seg, off) = self.ea(ins);
                let lin = self.linear(seg, off, 1, crate::interp::mmu::Acc::Read).unwrap_or(off);
                self.c.tlb.flush_page(lin);
                self.c.brk = true;
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn descriptor_query(&mut self, ins: &Instruction) -> R<()> {
        self.require_protected()?;
        let m = ins.mnemonic();
        if m == M::Arpl {
            if self.c.st.long64() {
                return Err(Fault::ud());
            }
            // SDM Vol. 2A "ARPL": the destination is written only when its RPL rises,
            // so a read-only segment faults only then (as on a 386).
            let d = self.read_op(ins, 0, 2)?;
            let s = self.reg(ins.op1_register());
            if d & 3 < s & 3 {
                self.write_op(ins, 0, 2, (d & !3) | (s & 3))?;
                self.set_arith_flags(fl::ZF, fl::ZF);
            } else {
                self.set_arith_flags(fl::ZF, 0);
            }
            return Ok(());
        }
        let sel = self.read_op(ins, if matches!(m, M::Verr | M::Verw) { 0 } else { 1 }, 2)? as u16;
        let cpl = self.c.st.cpl;
        let rpl = (sel & 3) as u8;
        let d = if sel & !3 == 0 { None } else { self.read_descriptor(sel).ok().map(|d: Descriptor| d) };
        let visible = |d: Descriptor| d.conforming() || (d.dpl() >= cpl && d.dpl() >= rpl);
        let long = self.c.st.efer & efer::LMA != 0;
        let ok = match (m, d) {
            (_, None) => false,
            (M::Verr, Some(d)) => d.s() && (!d.code() || d.typ() & 2 != 0) && visible(d),
            (M::Verw, Some(d)) => d.s() && !d.code() && d.typ() & 2 != 0 && visible(d),
            (M::Lar, Some(d)) => {
                (d.s()
                    || matches!(d.typ(), 1 | 2 | 3 | 4 | 5 | 9 | 0xb | 0xc)
                        && !(long && matches!(d.typ(), 1 | 3 | 4 | 5)))
                    && visible(d)
            }
            (_, Some(d)) => {
                (d.s() || matches!(d.typ(), 1 | 2 | 3 | 9 | 0xb) && !(long && matches!(d.typ(), 1 | 3))) && visible(d)
            }
        };
        if ok {
            if let Some(d) = d {
                let size = self.op_size(ins, 0);
                match m {
                    M::Lar => self.set_reg(ins.op0_register(), (d.0 >> 32) & 0x00f0_ff00 & size_mask(size)),
                    M::Lsl => self.set_reg(ins.op0_register(), d.limit() as u64 & size_mask(size)),
                    _ => {}
                }
            }
        }
        self.set_arith_flags(fl::ZF, if ok { fl::ZF } else { 0 });
        Ok(())
    }

    pub(super) fn fast_syscall(&mut self, ins: &Instruction) -> R<()> {
        let long_active = self.c.st.efer & efer::LMA != 0;
        match ins.mnemonic() {
            M::Swapgs => {
                if !self.c.st.long64() {
                    return Err(Fault::ud());
                }
                self.require_cpl0()?;
                let gs = &mut self.c.st.seg[Seg::Gs as usize].base;
                std::mem::swap(gs, &mut self.c.st.msr.kernel_gs_base);
            }
            M::Sysenter => {
                let cs = self.c.st.msr.sysenter_cs as u16;
                if !self.c.st.protected() || cs & !3 == 0 {
                    return Err(Fault::gp(0));
                }
                self.c.st.rflags &= !(fl::VM | fl::IF | fl::RF);
                let code = if long_active { 0xa09b } else { 0xc09b };
                self.c.st.seg[Seg::Cs as usize] =
                    Segment { base: 0, limit: 0xffff_ffff, selector: cs & !3, attrs: code };
                self.c.st.seg[Seg::Ss as usize] =
                    Segment { base: 0, limit: 0xffff_ffff, selector: (cs & !3) + 8, attrs: 0xc093 };
                self.c.st.cpl = 0;
                self.c.st.update_mode();
                let w = if long_active { u64::MAX } else { 0xffff_ffff };
                self.c.st.gpr[4] = self.c.st.msr.sysenter_esp & w;
                self.c.st.rip = self.c.st.msr.sysenter_eip & w;
                self.c.brk = true;
            }
            M::Sysexit | M::Sysexitq => {
                let cs = self.c.st.msr.sysenter_cs as u16;
                if !self.c.st.protected() || cs & !3 == 0 {
                    return Err(Fault::gp(0));
                }
                self.require_cpl0()?;
                let to64 = ins.code() == iced_x86::Code::Sysexitq;
                let (csel, code) = if to64 { ((cs & !3) + 32, 0xa0fb) } else { ((cs & !3) + 16, 0xc0fb) };
                self.c.st.seg[Seg::Cs as usize] =
                    Segment { base: 0, limit: 0xffff_ffff, selector: csel | 3, attrs: code };
                self.c.st.seg[Seg::Ss as usize] =
                    Segment { base: 0, limit: 0xffff_ffff, selector: (csel + 8) | 3, attrs: 0xc0f3 };
                self.c.st.cpl = 3;
                self.c.st.update_mode();
                let w = if to64 { u64::MAX } else { 0xffff_ffff };
                self.c.st.gpr[4] = self.c.st.gpr[1] & w;
                self.c.st.rip = self.c.st.gpr[2] & w;
                self.c.brk = true;
            }
            M::Syscall => {
                if self.c.st.efer & efer::SCE == 0 || !long_active {
                    return Err(Fault::ud());
                }
                let star = self.c.st.msr.star;
                let cs = ((star >> 32) & 0xfffc) as u16;
                self.c.st.gpr[1] = self.c.st.rip;
                let f = self.flags();
                self.c.st.gpr[11] = f & !fl::RF;
                self.c.st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: cs, attrs: 0xa09b };
                self.c.st.seg[Seg::Ss as usize] =
                    Segment { base: 0, limit: 0xffff_ffff, selector: cs + 8, attrs: 0xc093 };
                self.c.st.cpl = 0;
                let was64 = self.c.st.long64();
                self.c.st.rflags = (f & !self.c.st.msr.sfmask & !fl::RF) | fl::FIXED1;
                self.c.st.rip = if was64 { self.c.st.msr.lstar } else { self.c.st.msr.cstar };
                self.c.st.update_mode();
                self.single_step_by_final_tf();
                self.c.brk = true;
            }
            _ => {
                if self.c.st.efer & efer::SCE == 0 || !long_active {
                    return Err(Fault::ud());
                }
                self.require_cpl0()?;
                let star = self.c.st.msr.star;
                let base = ((star >> 48) & 0xfffc) as u16;
                let to64 = ins.code() == iced_x86::Code::Sysretq;
                let (sel, code, rip) = if to64 {
                    (base + 16, 0xa0fb, self.c.st.gpr[1])
                } else {
                    (base, 0xc0fb, self.c.st.gpr[1] & 0xffff_ffff)
                };
                if ((rip as i64) << 16 >> 16) as u64 != rip {
                    return Err(Fault::gp(0));
                }
                self.c.st.seg[Seg::Cs as usize] =
                    Segment { base: 0, limit: 0xffff_ffff, selector: sel | 3, attrs: code };
                let ss = &mut self.c.st.seg[Seg::Ss as usize];
                ss.selector = (base + 8) | 3;
                ss.attrs = 0xc0f3;
                self.c.st.cpl = 3;
                self.c.st.rflags = (self.c.st.gpr[11] & fl::WRITABLE & !(fl::RF | fl::VM)) | fl::FIXED1;
                self.c.st.lazy.op = crate::interp::flags::FlagOp::None;
                self.c.st.rip = rip;
                self.c.st.update_mode();
                self.single_step_by_final_tf();
                self.c.brk = true;
                self.c.irq_check = true;
            }
        }
        let _ = attr::P;
        Ok(())
    }

    /// SYSCALL and SYSRET raise their single-step #DB when TF is set at their end (see
    /// `steps_by_final_tf` in `cpu`): at the next instruction boundary.
    fn single_step_by_final_tf(&mut self) {
        if self.c.st.rflags & fl::TF != 0 {
            self.c.pending_db |= crate::interp::debug::dr6::BS;
        }
    }

    pub(super) fn fs_gs_base(&mut self, ins: &Instruction) -> R<()> {
        if !self.c.st.long64() || self.c.st.cr4 & cr4::FSGSBASE == 0 {
            return Err(Fault::ud());
        }
        let seg = if matches!(ins.mnemonic(), M::Rdfsbase | M::Wrfsbase) { Seg::Fs } else { Seg::Gs };
        let r = ins.op0_register();
        match ins.mnemonic() {
            M::Rdfsbase | M::Rdgsbase => {
                let v = self.c.st.seg[seg as usize].base;
                self.set_reg(r, v);
            }
            _ => {
                let v = self.reg(r);
                if ((v as i64) << 16 >> 16) as u64 != v {
                    return Err(Fault::gp(0));
                }
                self.c.st.seg[seg as usize].base = v;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::cpu::{Interpreter, Step};
    use crate::interp::fault::vec;
    use crate::interp::state::{cr4, Seg};
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;
    use rx86_core::bus::BusDevice;
    use rx86_core::phys::PhysMemory;
    use rx86_core::platform::{BasicPlatform, Platform};
    use std::sync::{Arc, Mutex};

    /// Runs `a` in 64-bit mode at CPL 0 with exceptions caught; returns the machine.
    fn run64(a: &mut CodeAssembler) -> Machine {
        let mut m = Machine::long64(a);
        m.catch_exceptions(true);
        m.run();
        m
    }

    #[test]
    fn arpl_writes_only_when_the_rpl_rises() {
        // DS is a read-only data segment. The selector at 0x3000 has RPL 3: ARPL with
        // AX (RPL 0) needs no change, so it neither writes nor faults (as on a 386).
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, 0).unwrap();
        a.arpl(word_ptr(0x3000), ax).unwrap();
        a.mov(ebx, 1).unwrap();
        a.mov(eax, 3).unwrap();
        a.arpl(word_ptr(0x3002), ax).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.catch_exceptions(false);
        m.poke(0x3000, &[0x13, 0, 0x10, 0]);
        m.cpu.state_mut().seg[Seg::Ds as usize].attrs = 0xc091;
        m.cpu.flush_caches();
        m.run();
        assert_eq!(m.gpr(3), 1, "the first ARPL retired");
        // The second must raise the destination's RPL: a write to a read-only segment.
        assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))));
        assert_eq!(m.peek::<4>(0x3000), [0x13, 0, 0x10, 0]);
    }

    #[test]
    fn lgdt_and_lidt_fault_on_a_non_canonical_base_in_64bit_mode() {
        for lidt in [false, true] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(rax, 0x0000_8000_0000_0000u64).unwrap();
            a.mov(qword_ptr(0x3002), rax).unwrap();
            a.mov(word_ptr(0x3000), 0xfff).unwrap();
            if lidt {
                a.lidt(ptr(0x3000)).unwrap();
            } else {
                a.lgdt(ptr(0x3000)).unwrap();
            }
            a.hlt().unwrap();
            let m = run64(&mut a);
            assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))), "LIDT: {lidt}");
            let st = m.cpu.state();
            assert_eq!((st.gdtr.base, st.idtr.base), (0x500, 0x2000), "tables unchanged");
        }
    }

    #[test]
    fn ltr_and_lldt_fault_on_a_non_canonical_base_in_64bit_mode() {
        // 16-byte descriptors at 0x520 (TSS, type 9) and 0x530 (LDT, type 2), base
        // bits 63:32 = 0x0000_8000: non-canonical.
        for (sel, typ) in [(0x20u16, 0x89u64), (0x30, 0x82)] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(ax, sel as u32).unwrap();
            if typ == 0x89 {
                a.ltr(ax).unwrap();
            } else {
                a.lldt(ax).unwrap();
            }
            a.hlt().unwrap();
            let mut m = Machine::long64(&mut a);
            m.catch_exceptions(true);
            let addr = 0x500 + sel as u64;
            m.poke(addr, &((typ << 40) | 0x67).to_le_bytes());
            m.poke(addr + 8, &0x8000u64.to_le_bytes());
            m.cpu.state_mut().gdtr.limit = 0x3f;
            m.run();
            assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(sel as u32))), "selector {sel:#x}");
            assert_eq!(m.peek::<8>(addr), ((typ << 40) | 0x67).to_le_bytes(), "TSS not marked busy");
        }
    }

    #[test]
    fn instructions_the_model_lacks_raise_ud() {
        type Emit = fn(&mut CodeAssembler);
        let cases: [(&str, Emit); 4] = [
            ("VMCALL", |a| a.vmcall().unwrap()),
            ("VMRUN", |a| a.vmrun().unwrap()),
            ("XGETBV", |a| a.xgetbv().unwrap()),
            ("RDPRU", |a| a.rdpru().unwrap()),
        ];
        for (name, emit) in cases {
            let mut a = CodeAssembler::new(64).unwrap();
            emit(&mut a);
            a.hlt().unwrap();
            let m = run64(&mut a);
            assert_eq!(m.cpu.last_exception, Some((vec::UD, None)), "{name}");
        }
    }

    #[test]
    fn rdpmc_raises_gp_for_every_counter() {
        // No counters exist: #GP(0) at CPL 0 (and with CR4.PCE), for any ECX.
        for (counter, pce) in [(0u32, false), (1, true), (0x4000_0000, true)] {
            let mut a = CodeAssembler::new(64).unwrap();
            a.mov(ecx, counter).unwrap();
            a.rdpmc().unwrap();
            a.hlt().unwrap();
            let mut m = Machine::long64(&mut a);
            m.catch_exceptions(true);
            if pce {
                m.cpu.state_mut().cr4 |= cr4::PCE;
            }
            m.run();
            assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))), "ECX {counter:#x}");
        }
    }

    #[test]
    fn mov_to_cr8_with_reserved_bits_faults() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(eax, 0x1f).unwrap();
        a.mov(cr8, rax).unwrap();
        a.hlt().unwrap();
        let m = run64(&mut a);
        assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))));
        assert_eq!(m.cpu.state().cr8, 0);
    }

    /// A board with a local APIC reduced to IA32_APIC_BASE and the TPR: the register
    /// page at 0xFEE00000 and the x2APIC TPR MSR. IA32_APIC_BASE refuses reserved bits
    /// (7:0, 9, 10: no x2APIC) like the real device.
    struct ApicBoard {
        inner: BasicPlatform,
        apic_base: Mutex<u64>,
        tpr: Arc<Mutex<u32>>,
    }

    struct TprPage(Arc<Mutex<u32>>);

    impl BusDevice for TprPage {
        fn read(&mut self, offset: u64, _size: u8) -> u64 {
            if offset == 0x80 {
                (*self.0.lock().unwrap()).into()
            } else {
                0
            }
        }
        fn write(&mut self, offset: u64, _size: u8, value: u64) {
            if offset == 0x80 {
                *self.0.lock().unwrap() = value as u32 & 0xff;
            }
        }
    }

    impl Platform for ApicBoard {
        fn memory(&self) -> &PhysMemory {
            &self.inner.memory
        }
        fn io_read(&self, port: u16, size: u8) -> u32 {
            self.inner.io_read(port, size)
        }
        fn io_write(&self, port: u16, size: u8, value: u32) {
            self.inner.io_write(port, size, value)
        }
        fn msr_read(&self, msr: u32) -> Option<u64> {
            (msr == 0x1b).then(|| *self.apic_base.lock().unwrap())
        }
        fn msr_write(&self, msr: u32, value: u64) -> bool {
            let ok = msr == 0x1b && value & 0x6ff == 0;
            if ok {
                *self.apic_base.lock().unwrap() = value;
            }
            ok
        }
    }

    /// Runs `a` in 64-bit mode on an [`ApicBoard`] whose TPR holds `tpr`, with
    /// exceptions caught.
    fn run_on_apic_board(a: &mut CodeAssembler, tpr: u32) -> (Interpreter, ApicBoard) {
        let mut m = Machine::long64(a);
        m.catch_exceptions(true);
        let Machine { mut p, mut cpu } = m;
        let tpr = Arc::new(Mutex::new(tpr));
        p.memory.add_mmio("lapic", 0xfee0_0000, 0x1000, Arc::new(Mutex::new(TprPage(tpr.clone())))).unwrap();
        let board = ApicBoard { inner: p, apic_base: Mutex::new(0xfee0_0900), tpr };
        for _ in 0..1000 {
            match cpu.step(&board) {
                Step::Retired => {}
                Step::Halted => return (cpu, board),
                Step::Exit(e) => panic!("engine exit {e:?}"),
            }
        }
        panic!("no HLT");
    }

    #[test]
    fn cr8_is_the_local_apic_tpr() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rbx, cr8).unwrap();
        a.mov(eax, 0xa).unwrap();
        a.mov(cr8, rax).unwrap();
        a.hlt().unwrap();
        // The APIC's TPR is 0x5F (as if the guest wrote it through the page): CR8 reads
        // TPR[7:4]; MOV to CR8 then writes TPR[7:4] = 0xA and TPR[3:0] = 0.
        let (cpu, board) = run_on_apic_board(&mut a, 0x5f);
        assert_eq!(cpu.last_exception, None);
        assert_eq!(cpu.state().gpr[3], 5);
        assert_eq!(*board.tpr.lock().unwrap(), 0xa0, "APIC register 0x80");
        assert_eq!(cpu.state().cr8, 0xa);
    }

    #[test]
    fn a_platform_msr_refusing_a_write_raises_gp() {
        // IA32_APIC_BASE with EXTD (x2APIC, not supported): the board refuses it.
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(ecx, 0x1b).unwrap();
        a.mov(eax, 0xfee0_0d00u32).unwrap();
        a.xor(edx, edx).unwrap();
        a.wrmsr().unwrap();
        a.hlt().unwrap();
        let (cpu, board) = run_on_apic_board(&mut a, 0);
        assert_eq!(cpu.last_exception, Some((vec::GP, Some(0))));
        assert_eq!(*board.apic_base.lock().unwrap(), 0xfee0_0900);
        assert_eq!(cpu.state().msr.apic_base, 0xfee0_0900, "the CPU's copy did not take it");
    }

    #[test]
    fn without_a_platform_apic_the_cpu_refuses_reserved_apic_base_bits() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(ecx, 0x1b).unwrap();
        a.mov(eax, 0xfee0_0d00u32).unwrap();
        a.xor(edx, edx).unwrap();
        a.wrmsr().unwrap();
        a.hlt().unwrap();
        let m = run64(&mut a);
        assert_eq!(m.cpu.last_exception, Some((vec::GP, Some(0))));
        assert_eq!(m.cpu.state().msr.apic_base, 0xfee0_0900);
    }

    #[test]
    fn cpuid_reports_the_apic_only_while_it_is_enabled() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(eax, 1).unwrap();
        a.cpuid().unwrap();
        a.mov(esi, edx).unwrap();
        a.mov(ecx, 0x1b).unwrap();
        a.mov(eax, 0xfee0_0100u32).unwrap();
        a.xor(edx, edx).unwrap();
        a.wrmsr().unwrap();
        a.mov(eax, 1).unwrap();
        a.cpuid().unwrap();
        a.mov(edi, edx).unwrap();
        a.hlt().unwrap();
        let (cpu, _) = run_on_apic_board(&mut a, 0);
        let g = &cpu.state().gpr;
        assert_eq!((g[6] >> 9 & 1, g[7] >> 9 & 1), (1, 0), "CPUID.1:EDX.APIC follows IA32_APIC_BASE.EN");
    }

    #[test]
    fn long_mode_arithmetic_and_zero_extension() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, 0x1_0000_0000u64).unwrap();
        a.add(rax, rax).unwrap();
        a.push(rax).unwrap();
        a.pop(rbx).unwrap();
        a.mov(r9, -1i64).unwrap();
        a.mov(r9d, 5).unwrap();
        a.mov(qword_ptr(0x3000), rbx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!(m.gpr(3), 0x2_0000_0000);
        assert_eq!(m.gpr(9), 5, "32-bit writes zero the upper half");
        assert_eq!(u64::from_le_bytes(m.peek::<8>(0x3000)), 0x2_0000_0000);
    }

    #[test]
    fn rdmsr_wrmsr_efer_and_unknown_msr_faults() {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(ecx, 0xc000_0080u32).unwrap();
        a.rdmsr().unwrap();
        a.or(eax, 0x800).unwrap();
        a.wrmsr().unwrap();
        a.rdmsr().unwrap();
        a.mov(esi, eax).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::protected32(&mut a);
        m.run();
        assert_eq!(m.gpr(6), 0x800, "EFER.NXE set");
    }
}
