//! RDRAND, RDSEED and RDPID (SDM Vol. 2B "RDRAND", "RDSEED", "RDPID"). The random numbers
//! come from a generator seeded with a constant at power-on (SplitMix64 over
//! [`CpuState::rng`](crate::interp::state::CpuState::rng)), so a run repeats exactly,
//! as everything else on the virtual clock does: they are not secret. Every request
//! succeeds (CF = 1).

use crate::interp::cpu::Ctx;
use crate::interp::fault::R;
use crate::interp::flags::size_mask;
use crate::interp::state::fl;
use iced_x86::{Instruction, Mnemonic as M};

/// The generator's state at power-on.
pub const RNG_SEED: u64 = 0x7278_3836_5244_524e;

/// The next value of the SplitMix64 generator at `state`.
pub fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// True for the instructions of this group.
pub(super) fn is_random(m: M) -> bool {
    matches!(m, M::Rdrand | M::Rdseed | M::Rdpid)
}

impl Ctx<'_> {
    /// RDRAND and RDSEED (a random value, CF = 1, the other flags clear) and RDPID
    /// (IA32_TSC_AUX, flags unchanged).
    pub(super) fn random(&mut self, ins: &Instruction) -> R<()> {
        let r = ins.op0_register();
        if ins.mnemonic() == M::Rdpid {
            self.set_reg(r, self.c.st.msr.tsc_aux);
            return Ok(());
        }
        let v = next_random(&mut self.c.st.rng) & size_mask(r.size() as u8);
        self.set_reg(r, v);
        self.set_arith_flags(fl::ARITH, fl::CF);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::state::fl;
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    fn run() -> (u64, u64, u64, u64) {
        let mut a = CodeAssembler::new(64).unwrap();
        a.rdrand(rax).unwrap();
        a.rdseed(ecx).unwrap();
        a.mov(rdx, u64::MAX).unwrap();
        a.rdrand(dx).unwrap();
        a.rdpid(rbx).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.cpu.state_mut().msr.tsc_aux = 0x1234;
        m.run();
        assert_eq!(m.cpu.rflags() & fl::ARITH, fl::CF);
        (m.gpr(0), m.gpr(1), m.gpr(2), m.gpr(3))
    }

    #[test]
    fn random_numbers_repeat_from_power_on_and_rdpid_reads_tsc_aux() {
        let (a, c, d, b) = run();
        assert_eq!(run(), (a, c, d, b), "the same sequence on every run");
        assert_ne!(a, 0);
        assert!(c <= u32::MAX as u64 && c != a & 0xffff_ffff);
        assert_eq!(d >> 16, 0xffff_ffff_ffff, "a 16-bit destination merges");
        assert_eq!(b, 0x1234);
    }
}
