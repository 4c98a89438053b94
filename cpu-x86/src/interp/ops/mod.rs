//! Instruction dispatch: one `match` on the iced mnemonic (no allocation, no handler
//! objects) into one file per instruction group.

mod aes_clmul;
mod arith;
mod avx;
mod avx_float;
mod avx_int;
mod avx_mask;
mod avx_move;
mod avx_perm;
mod bits;
mod bmi;
mod control;
pub(crate) use control::FarKind;
mod data;
mod f16c;
mod flagops;
mod fma;
mod io;
mod movbe_adx;
pub(crate) mod muldiv;
pub(crate) mod operand;
mod protection;
pub(crate) mod random;
mod sha;
mod shift;
mod sse;
mod sse3;
mod sse41;
mod sse42;
mod sse_convert;
mod sse_float;
mod sse_int;
mod sse_mmx;
mod sse_move;
mod ssse3;
pub(crate) mod stack;
mod string;
mod system;
mod x87;
mod x87_arith;
mod x87_compare;
mod x87_state;
mod x87_transcendental;
mod x87_transfer;
pub(crate) mod xsave;

use super::cpu::Ctx;
use super::fault::{Fault, R};
use super::flags::{FlagOp, LazyFlags};
use super::state::fl;
use iced_x86::{Instruction, Mnemonic as M, OpKind};

/// True when a LOCK prefix on `ins` is valid: a lockable instruction with a memory
/// destination (SDM Vol. 2A "LOCK"); anything else raises #UD.
pub fn lock_allowed(ins: &Instruction) -> bool {
    matches!(
        ins.mnemonic(),
        M::Add
            | M::Adc
            | M::And
            | M::Btc
            | M::Btr
            | M::Bts
            | M::Cmpxchg
            | M::Cmpxchg8b
            | M::Cmpxchg16b
            | M::Dec
            | M::Inc
            | M::Neg
            | M::Not
            | M::Or
            | M::Sbb
            | M::Sub
            | M::Xor
            | M::Xadd
            | M::Xchg
    ) && ins.op0_kind() == iced_x86::OpKind::Memory
}

/// True for CMOVcc.
pub(crate) fn is_cmov(m: M) -> bool {
    matches!(
        m,
        M::Cmovo
            | M::Cmovno
            | M::Cmovb
            | M::Cmovae
            | M::Cmove
            | M::Cmovne
            | M::Cmovbe
            | M::Cmova
            | M::Cmovs
            | M::Cmovns
            | M::Cmovp
            | M::Cmovnp
            | M::Cmovl
            | M::Cmovge
            | M::Cmovle
            | M::Cmovg
    )
}

/// True for SETcc.
pub(crate) fn is_setcc(m: M) -> bool {
    matches!(
        m,
        M::Seto
            | M::Setno
            | M::Setb
            | M::Setae
            | M::Sete
            | M::Setne
            | M::Setbe
            | M::Seta
            | M::Sets
            | M::Setns
            | M::Setp
            | M::Setnp
            | M::Setl
            | M::Setge
            | M::Setle
            | M::Setg
    )
}

/// True for Jcc.
pub(crate) fn is_jcc(m: M) -> bool {
    matches!(
        m,
        M::Jo
            | M::Jno
            | M::Jb
            | M::Jae
            | M::Je
            | M::Jne
            | M::Jbe
            | M::Ja
            | M::Js
            | M::Jns
            | M::Jp
            | M::Jnp
            | M::Jl
            | M::Jge
            | M::Jle
            | M::Jg
    )
}

impl Ctx<'_> {
    /// RFLAGS with the lazy arithmetic flags folded in.
    #[inline]
    pub fn flags(&mut self) -> u64 {
        let st = &mut self.c.st;
        if st.lazy.op != FlagOp::None {
            st.rflags = (st.rflags & !fl::ARITH) | st.lazy.compute(st.rflags);
            st.lazy.op = FlagOp::None;
        }
        st.rflags
    }

    /// Records a pending arithmetic result. INC and DEC keep CF: only CF of the pending
    /// operation is folded into RFLAGS first.
    #[inline]
    pub fn set_lazy(&mut self, op: FlagOp, size: u8, dst: u64, src: u64, res: u64) {
        let st = &mut self.c.st;
        if matches!(op, FlagOp::Inc | FlagOp::Dec) {
            st.fold_carry();
        }
        st.lazy = LazyFlags { dst, src, res, op, size };
    }

    /// CF, computed alone.
    #[inline]
    pub fn carry(&self) -> bool {
        self.c.st.lazy.carry(self.c.st.rflags)
    }

    /// Condition code `cc` (low nibble of Jcc/SETcc/CMOVcc), computing only the flags it
    /// reads.
    #[inline]
    pub fn cond(&self, cc: u8) -> bool {
        self.c.st.lazy.condition(cc, self.c.st.rflags)
    }

    /// Replaces the arithmetic flags selected by `mask` with `value`.
    #[inline]
    pub fn set_arith_flags(&mut self, mask: u64, value: u64) {
        let f = self.flags();
        self.c.st.rflags = (f & !mask) | (value & mask);
    }

    /// Executes one decoded instruction; RIP already points after it.
    pub fn exec(&mut self, ins: &Instruction) -> R<()> {
        if super::model::lacks(&self.c.st.model, ins) {
            return Err(Fault::ud());
        }
        if ins.has_lock_prefix() && !lock_allowed(ins) {
            return Err(Fault::ud());
        }
        if ins.encoding() != iced_x86::EncodingKind::Legacy {
            // VEX: BMI1/BMI2, AVX, AVX2, FMA, F16C (`avx.rs`); EVEX and XOP encodings are
            // #UD everywhere.
            return if ins.encoding() == iced_x86::EncodingKind::VEX { self.exec_vex(ins) } else { Err(Fault::ud()) };
        }
        match ins.mnemonic() {
            M::Add | M::Adc | M::Sub | M::Sbb | M::Cmp | M::And | M::Or | M::Xor | M::Test => self.alu2(ins),
            M::Inc | M::Dec | M::Neg | M::Not => self.alu1(ins),
            M::Xadd | M::Cmpxchg | M::Cmpxchg8b | M::Cmpxchg16b => self.atomic_rmw(ins),
            M::Daa | M::Das | M::Aaa | M::Aas | M::Aam | M::Aad => self.bcd(ins),
            M::Mul | M::Imul | M::Div | M::Idiv => self.muldiv(ins),
            M::Rol | M::Ror | M::Rcl | M::Rcr | M::Shl | M::Sal | M::Shr | M::Sar => self.shift(ins),
            M::Shld | M::Shrd => self.shift_double(ins),
            M::Bt | M::Bts | M::Btr | M::Btc => self.bit_test(ins),
            M::Bsf | M::Bsr | M::Tzcnt | M::Lzcnt | M::Popcnt => self.bit_scan(ins),
            M::Mov => self.mov(ins),
            M::Movzx | M::Movsx | M::Movsxd => self.mov_extend(ins),
            M::Lea => self.lea(ins),
            M::Xchg => self.xchg(ins),
            M::Xlatb => self.xlat(ins),
            M::Bswap => self.bswap(ins),
            M::Movbe => self.movbe(ins),
            M::Adcx | M::Adox => self.adx(ins),
            m if is_cmov(m) => self.cmov(ins),
            m if is_setcc(m) => self.setcc(ins),
            M::Cbw | M::Cwde | M::Cdqe | M::Cwd | M::Cdq | M::Cqo => self.sign_extend_acc(ins),
            M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss => self.load_far_pointer(ins),
            // ENDBR32/64 are NOPs on a CPU without CET (CPUID does not report it); the cache
            // write-backs and prefetches have nothing to act on (no cache is modelled).
            M::Nop
            | M::Endbr32
            | M::Endbr64
            | M::Pause
            | M::Lfence
            | M::Sfence
            | M::Mfence
            | M::Clflush
            | M::Clflushopt
            | M::Clwb
            | M::Prefetchnta
            | M::Prefetcht0
            | M::Prefetcht1
            | M::Prefetcht2
            | M::Prefetchw => Ok(()),
            M::Push | M::Pop | M::Pusha | M::Pushad | M::Popa | M::Popad => self.push_pop(ins),
            M::Pushf | M::Pushfd | M::Pushfq | M::Popf | M::Popfd | M::Popfq => self.push_pop_flags(ins),
            M::Enter | M::Leave => self.enter_leave(ins),
            M::Movsb
            | M::Movsw
            | M::Movsq
            | M::Cmpsb
            | M::Cmpsw
            | M::Cmpsq
            | M::Stosb
            | M::Stosw
            | M::Stosd
            | M::Stosq
            | M::Lodsb
            | M::Lodsw
            | M::Lodsd
            | M::Lodsq
            | M::Scasb
            | M::Scasw
            | M::Scasd
            | M::Scasq
            | M::Insb
            | M::Insw
            | M::Insd
            | M::Outsb
            | M::Outsw
            | M::Outsd => self.string(ins),
            M::Movsd | M::Cmpsd if !matches!(ins.op0_kind(), OpKind::Register | OpKind::Memory) => self.string(ins),
            M::Lahf | M::Sahf | M::Clc | M::Stc | M::Cmc | M::Cld | M::Std | M::Cli | M::Sti | M::Salc => {
                self.flag_op(ins)
            }
            M::In | M::Out => self.in_out(ins),
            m if is_jcc(m) => self.jcc(ins),
            M::Jmp => self.jmp(ins),
            M::Call => self.call(ins),
            M::Ret | M::Retf => self.ret(ins),
            M::Loop | M::Loope | M::Loopne | M::Jcxz | M::Jecxz | M::Jrcxz => self.loop_jcxz(ins),
            M::Int | M::Int3 | M::Into | M::Int1 | M::Bound => self.soft_int(ins),
            M::Iret | M::Iretd | M::Iretq => self.iret(ins),
            M::Hlt => self.hlt(),
            M::Ud0 | M::Ud1 | M::Ud2 | M::INVALID => Err(Fault::ud()),
            M::Cpuid => self.cpuid(),
            M::Rdtsc | M::Rdtscp => self.rdtsc(ins),
            M::Rdmsr | M::Wrmsr => self.msr_op(ins),
            M::Lgdt | M::Lidt | M::Sgdt | M::Sidt | M::Lldt | M::Sldt | M::Ltr | M::Str | M::Lmsw | M::Smsw => {
                self.table_op(ins)
            }
            M::Clts | M::Invlpg | M::Wbinvd | M::Invd => self.cache_op(ins),
            M::Stac | M::Clac => self.stac_clac(ins),
            M::Invpcid => self.invpcid(ins),
            M::Lar | M::Lsl | M::Verr | M::Verw | M::Arpl => self.descriptor_query(ins),
            M::Sysenter | M::Sysexit | M::Sysexitq | M::Syscall | M::Sysret | M::Sysretq | M::Swapgs => {
                self.fast_syscall(ins)
            }
            M::Rdfsbase | M::Rdgsbase | M::Wrfsbase | M::Wrgsbase => self.fs_gs_base(ins),
            m if xsave::is_xsave(m) => self.xsave_op(ins),
            m if random::is_random(m) => self.random(ins),
            m if x87::is_x87(m) => self.x87(ins),
            m => self.exec_sse(ins, m),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::interp::test_util::Machine;
    use iced_x86::code_asm::*;

    #[test]
    fn endbr64_and_endbr32_retire_as_nops() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.endbr64().unwrap();
        a.endbr32().unwrap();
        a.mov(eax, 7u32).unwrap();
        a.hlt().unwrap();
        let mut m = Machine::long64(&mut a);
        m.run();
        assert_eq!(m.gpr(0), 7);
    }
}
