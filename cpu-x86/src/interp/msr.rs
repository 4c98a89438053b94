//! RDMSR/WRMSR and the time-stamp counter. Platform MSRs (the local APIC's) are asked
//! of the board first; the CPU keeps the rest in [`super::state::Msrs`]; anything else
//! is #GP(0) plus a log line (SDM Vol. 4 for the MSR numbers).

use super::cpu::Ctx;
use super::fault::{Fault, R};
use super::state::{cr0, cr4, efer, Seg};
use iced_x86::{Instruction, Mnemonic as M};

/// MSR numbers (SDM Vol. 4 Table 2-2).
mod num {
    pub const TSC: u32 = 0x10;
    pub const PLATFORM_ID: u32 = 0x17;
    pub const APIC_BASE: u32 = 0x1b;
    pub const BIOS_SIGN_ID: u32 = 0x8b;
    pub const MTRRCAP: u32 = 0xfe;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MCG_CAP: u32 = 0x179;
    pub const MCG_STATUS: u32 = 0x17a;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const MTRR_PHYS_FIRST: u32 = 0x200;
    pub const MTRR_PHYS_LAST: u32 = 0x20f;
    pub const MTRR_FIX64K: u32 = 0x250;
    pub const MTRR_FIX16K_80000: u32 = 0x258;
    pub const MTRR_FIX16K_A0000: u32 = 0x259;
    pub const MTRR_FIX4K_FIRST: u32 = 0x268;
    pub const MTRR_FIX4K_LAST: u32 = 0x26f;
    pub const PAT: u32 = 0x277;
    pub const MTRR_DEF_TYPE: u32 = 0x2ff;
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
}

/// Index into `Msrs::mtrr_fixed` of a fixed-range MTRR.
fn fixed_index(msr: u32) -> Option<usize> {
    match msr {
        num::MTRR_FIX64K => Some(0),
        num::MTRR_FIX16K_80000 => Some(1),
        num::MTRR_FIX16K_A0000 => Some(2),
        num::MTRR_FIX4K_FIRST..=num::MTRR_FIX4K_LAST => Some(3 + (msr - num::MTRR_FIX4K_FIRST) as usize),
        _ => None,
    }
}

/// IA32_APIC_BASE bits software may set: BSP (8), EN (11) and the base (35:12).
const APIC_BASE_WRITABLE: u64 = 0xf_ffff_f000 | (1 << 11) | (1 << 8);

/// True when `v` is a canonical 48-bit linear address (bits 63:47 all equal).
pub(crate) fn canonical(v: u64) -> bool {
    ((v as i64) << 16 >> 16) as u64 == v
}

impl Ctx<'_> {
    /// The time-stamp counter: 1 GHz from the machine clock plus the guest's offset.
    pub fn tsc(&self) -> u64 {
        self.now_ns().wrapping_add(self.c.st.msr.tsc_offset)
    }

    pub(crate) fn rdtsc(&mut self, ins: &Instruction) -> R<()> {
        if self.c.st.cr4 & cr4::TSD != 0 && self.c.st.cpl != 0 && self.c.st.protected() {
            return Err(Fault::gp(0));
        }
        let t = self.tsc();
        self.set_gpr(0, 4, t & 0xffff_ffff);
        self.set_gpr(2, 4, t >> 32);
        if ins.mnemonic() == M::Rdtscp {
            let aux = self.c.st.msr.tsc_aux;
            self.set_gpr(1, 4, aux & 0xffff_ffff);
        }
        Ok(())
    }

    pub(crate) fn msr_op(&mut self, ins: &Instruction) -> R<()> {
        if self.c.st.cpl != 0 {
            return Err(Fault::gp(0));
        }
        let msr = self.c.st.gpr[1] as u32;
        if ins.mnemonic() == M::Rdmsr {
            self.sync_clock();
            let v = match self.p.msr_read(msr) {
                Some(v) => v,
                None => self.read_msr(msr).ok_or_else(|| {
                    // Guests probe MSRs they may lack (Linux's rdmsr_safe): the #GP is the
                    // architected answer (SDM Vol. 4 §2.1), not an emulator problem.
                    log::debug!("RDMSR of unimplemented MSR {msr:#x}: #GP");
                    Fault::gp(0)
                })?,
            };
            self.set_gpr(0, 4, v & 0xffff_ffff);
            self.set_gpr(2, 4, v >> 32);
        } else {
            let v = (self.c.st.gpr[0] & 0xffff_ffff) | (self.c.st.gpr[2] << 32);
            self.sync_clock();
            if self.p.msr_write(msr, v) {
                self.c.irq_check = true;
                self.c.brk = true;
                return Ok(());
            }
            // A platform MSR that reads but refused the write (reserved bits, x2APIC
            // without x2APIC support, an illegal APIC mode change) is #GP(0); the CPU's
            // copy must not take the value instead.
            if self.p.msr_read(msr).is_some() {
                log::debug!("WRMSR {msr:#x} = {v:#x} refused by the platform: #GP");
                return Err(Fault::gp(0));
            }
            self.write_msr(msr, v)?;
        }
        Ok(())
    }

    /// The CPU-owned MSR `msr`, or `None` when it is not implemented.
    pub fn read_msr(&self, msr: u32) -> Option<u64> {
        let st = &self.c.st;
        let m = &st.msr;
        Some(match msr {
            num::TSC => self.tsc(),
            num::APIC_BASE => m.apic_base,
            num::PLATFORM_ID | num::BIOS_SIGN_ID | num::MCG_CAP | num::MCG_STATUS => 0,
            // 8 variable ranges, fixed ranges and write-combining supported.
            num::MTRRCAP => 0x508,
            num::SYSENTER_CS => m.sysenter_cs,
            num::SYSENTER_ESP => m.sysenter_esp,
            num::SYSENTER_EIP => m.sysenter_eip,
            num::MISC_ENABLE => m.misc_enable,
            num::MTRR_PHYS_FIRST..=num::MTRR_PHYS_LAST => m.mtrr_var[(msr - num::MTRR_PHYS_FIRST) as usize],
            num::PAT => m.pat,
            num::MTRR_DEF_TYPE => m.mtrr_def_type,
            num::EFER => st.efer,
            num::STAR => m.star,
            num::LSTAR => m.lstar,
            num::CSTAR => m.cstar,
            num::SFMASK => m.sfmask,
            num::FS_BASE => st.seg[Seg::Fs as usize].base,
            num::GS_BASE => st.seg[Seg::Gs as usize].base,
            num::KERNEL_GS_BASE => m.kernel_gs_base,
            num::TSC_AUX => m.tsc_aux,
            _ => m.mtrr_fixed[fixed_index(msr)?],
        })
    }

    /// Writes a CPU-owned MSR (#GP for unknown MSRs and invalid values).
    pub fn write_msr(&mut self, msr: u32, v: u64) -> R<()> {
        let now = self.now_ns();
        let st = &mut self.c.st;
        match msr {
            num::TSC => st.msr.tsc_offset = v.wrapping_sub(now),
            // Without a platform APIC the CPU keeps IA32_APIC_BASE itself, with the
            // same reserved bits: 7:0, 9, 10 (CPUID has no x2APIC) and 63:36 (SDM Vol. 3A
            // §11.4.4).
            num::APIC_BASE if v & !APIC_BASE_WRITABLE == 0 => st.msr.apic_base = v,
            num::BIOS_SIGN_ID | num::MCG_STATUS => {}
            num::SYSENTER_CS => st.msr.sysenter_cs = v & 0xffff,
            num::SYSENTER_ESP if canonical(v) => st.msr.sysenter_esp = v,
            num::SYSENTER_EIP if canonical(v) => st.msr.sysenter_eip = v,
            num::MISC_ENABLE => st.msr.misc_enable = v,
            num::MTRR_PHYS_FIRST..=num::MTRR_PHYS_LAST => st.msr.mtrr_var[(msr - num::MTRR_PHYS_FIRST) as usize] = v,
            num::PAT => st.msr.pat = v,
            num::MTRR_DEF_TYPE => st.msr.mtrr_def_type = v,
            num::EFER => {
                // Only the bits the CPU model reports are writable (SCE with SYSCALL, LME
                // with long mode, NXE with NX).
                let (sce, nxe) = st.model.efer_bits();
                let writable =
                    (efer::SCE * sce as u64) | (efer::LME * st.model.long_mode() as u64) | (efer::NXE * nxe as u64);
                if v & !(writable | efer::LMA) != 0 {
                    return Err(Fault::gp(0));
                }
                if st.cr0 & cr0::PG != 0 && (v ^ st.efer) & efer::LME != 0 {
                    return Err(Fault::gp(0));
                }
                let lma = st.efer & efer::LMA;
                if (st.efer ^ v) & efer::NXE != 0 {
                    self.c.tlb.flush(false);
                }
                st.efer = (v & efer::WRITABLE) | lma;
            }
            num::STAR => st.msr.star = v,
            num::LSTAR if canonical(v) => st.msr.lstar = v,
            num::CSTAR if canonical(v) => st.msr.cstar = v,
            num::SFMASK => st.msr.sfmask = v & 0xffff_ffff,
            num::FS_BASE if canonical(v) => st.seg[Seg::Fs as usize].base = v,
            num::GS_BASE if canonical(v) => st.seg[Seg::Gs as usize].base = v,
            num::KERNEL_GS_BASE if canonical(v) => st.msr.kernel_gs_base = v,
            num::TSC_AUX => st.msr.tsc_aux = v & 0xffff_ffff,
            _ => match fixed_index(msr) {
                Some(i) => st.msr.mtrr_fixed[i] = v,
                None => {
                    log::debug!("WRMSR of unimplemented or invalid MSR {msr:#x} = {v:#x}: #GP");
                    return Err(Fault::gp(0));
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn platform_id_reads_zero_instead_of_faulting() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(eax, 0x1234u32).unwrap();
        a.mov(edx, 0x5678u32).unwrap();
        a.mov(ecx, 0x17u32).unwrap();
        a.rdmsr().unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!((m.gpr(0), m.gpr(2)), (0, 0));
    }
}
