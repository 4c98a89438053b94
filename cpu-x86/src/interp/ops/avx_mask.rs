//! AVX/AVX2 masked memory accesses (SDM Vol. 2, each instruction's page): VMASKMOVPS
//! VMASKMOVPD VPMASKMOVD VPMASKMOVQ (load and store the elements whose mask element has
//! its top bit set; masked-off elements are neither read nor written and cannot fault)
//! and the gathers VPGATHERDD/DQ/QD/QQ, VGATHERDPS/DPD/QPS/QPD (VSIB addressing: one
//! address per index element; each element's mask is cleared as it completes, so a fault
//! leaves the finished part done, as the SDM allows; at the end the whole mask is zero).

use super::avx::Ymm;
use super::operand::addr_size;
use crate::interp::cpu::Ctx;
use crate::interp::fault::{Fault, R};
use crate::interp::flags::size_mask;
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};

/// True for the mnemonics of this group.
pub(super) fn is_avx_mask(m: M) -> bool {
    matches!(m, M::Vmaskmovps | M::Vmaskmovpd | M::Vpmaskmovd | M::Vpmaskmovq) || gather_shape(m).is_some()
}

/// A gather's (index element bytes, data element bytes).
fn gather_shape(m: M) -> Option<(usize, usize)> {
    Some(match m {
        M::Vpgatherdd | M::Vgatherdps => (4, 4),
        M::Vpgatherdq | M::Vgatherdpd => (4, 8),
        M::Vpgatherqd | M::Vgatherqps => (8, 4),
        M::Vpgatherqq | M::Vgatherqpd => (8, 8),
        _ => return None,
    })
}

/// Element `i` of `w` bytes (4 or 8) of `v`.
fn elem(v: &Ymm, i: usize, w: usize) -> u64 {
    let bit = i * w * 8;
    let q = v[bit / 128][(bit / 64) % 2] >> (bit % 64);
    if w == 8 {
        q
    } else {
        q & 0xffff_ffff
    }
}

/// Sets element `i` of `w` bytes (4 or 8) of `v` to `x`.
fn set_elem(v: &mut Ymm, i: usize, w: usize, x: u64) {
    let bit = i * w * 8;
    let q = &mut v[bit / 128][(bit / 64) % 2];
    let mask = if w == 8 { u64::MAX } else { 0xffff_ffff } << (bit % 64);
    *q = (*q & !mask) | (x << (bit % 64) & mask);
}

impl Ctx<'_> {
    /// The instructions of this group.
    pub(super) fn avx_mask(&mut self, ins: &Instruction) -> R<()> {
        match gather_shape(ins.mnemonic()) {
            Some((iw, dw)) => self.gather(ins, iw, dw),
            None => self.mask_move(ins),
        }
    }

    /// VMASKMOVPS/PD and VPMASKMOVD/Q, loads (`reg, mask, mem`) and stores (`mem, mask,
    /// reg`); a store checks every selected element before writing any.
    fn mask_move(&mut self, ins: &Instruction) -> R<()> {
        let w = if matches!(ins.mnemonic(), M::Vmaskmovps | M::Vpmaskmovd) { 4 } else { 8 };
        let mask = self.ymm(ins.op1_register());
        let (seg, off) = self.ea(ins);
        let amask = size_mask(addr_size(ins));
        let store = ins.op0_kind() == OpKind::Memory;
        let n = if store { ins.op2_register().size() } else { ins.op0_register().size() } / w;
        let selected = |i: usize| elem(&mask, i, w) >> (w * 8 - 1) != 0;
        let at = |i: usize| off.wrapping_add((i * w) as u64) & amask;
        if store {
            let data = self.ymm(ins.op2_register());
            for i in (0..n).filter(|&i| selected(i)) {
                self.probe_write(seg, at(i), w as u8)?;
            }
            for i in (0..n).filter(|&i| selected(i)) {
                self.write(seg, at(i), w as u8, elem(&data, i, w))?;
            }
            return Ok(());
        }
        let mut out: Ymm = [[0; 2]; 2];
        for i in (0..n).filter(|&i| selected(i)) {
            let x = self.read(seg, at(i), w as u8)?;
            set_elem(&mut out, i, w, x);
        }
        self.set_ymm(ins.op0_register(), out);
        Ok(())
    }

    /// A gather with `iw`-byte index and `dw`-byte data elements: #UD when the
    /// destination, the index and the mask are not three different registers.
    fn gather(&mut self, ins: &Instruction, iw: usize, dw: usize) -> R<()> {
        let (dst, mreg, index) = (ins.op0_register(), ins.op2_register(), ins.memory_index());
        let (d, k, x) = (dst.number(), mreg.number(), index.number());
        if d == k || d == x || k == x {
            return Err(Fault::ud());
        }
        let n = (dst.size() / dw).min(index.size() / iw);
        let idx = self.ymm(index);
        let mut out = self.ymm(dst);
        let mut mask = self.ymm(mreg);
        let seg = super::operand::seg_of(ins.memory_segment());
        let mut base = ins.memory_displacement64();
        if ins.memory_base() != Register::None {
            base = base.wrapping_add(self.reg(ins.memory_base()));
        }
        let scale = ins.memory_index_scale() as u64;
        let amask = size_mask(addr_size(ins));
        for i in 0..n {
            if elem(&mask, i, dw) >> (dw * 8 - 1) == 0 {
                continue;
            }
            let raw = elem(&idx, i, iw);
            let offset = if iw == 4 { raw as u32 as i32 as i64 as u64 } else { raw };
            let off = base.wrapping_add(offset.wrapping_mul(scale)) & amask;
            match self.read(seg, off, dw as u8) {
                Ok(v) => {
                    set_elem(&mut out, i, dw, v);
                    set_elem(&mut mask, i, dw, 0);
                }
                Err(e) => {
                    self.set_ymm(dst, out);
                    self.set_ymm(mreg, mask);
                    return Err(e);
                }
            }
        }
        // Elements past `n` (the upper half of a QD gather's XMM destination) are zero.
        for i in n..dst.size() / dw {
            set_elem(&mut out, i, dw, 0);
        }
        self.set_ymm(dst, out);
        self.set_ymm(mreg, [[0; 2]; 2]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::avx::tests::avx_machine;
    use crate::interp::fault::vec;
    use iced_x86::code_asm::*;

    fn poke_dwords(m: &crate::interp::test_util::Machine, addr: u64, v: &[u32]) {
        for (i, x) in v.iter().enumerate() {
            m.poke(addr + 4 * i as u64, &x.to_le_bytes());
        }
    }

    #[test]
    fn gathers_load_the_selected_elements_and_clear_the_mask() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, 0x20000u64).unwrap();
        a.vpgatherdd_3(ymm0, dword_ptr(rax + ymm1 * 4 + 8), ymm2).unwrap();
        a.vpgatherqq_3(xmm3, qword_ptr(rax + xmm4 * 8), xmm5).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        poke_dwords(&m, 0x20000, &(0..64).map(|i| 0x100 + i).collect::<Vec<_>>());
        let st = m.cpu.state_mut();
        // Indices 5, -2, 0, 9, 1, 1, 30, 7; mask selects all but element 2.
        st.sse.xmm[1] = [5 | (-2i32 as u32 as u64) << 32, 9 << 32];
        st.ymm_hi[1] = [1 | 1 << 32, 30 | 7 << 32];
        st.sse.xmm[2] = [0x8000_0000_8000_0000, 0x8000_0000_0000_0000];
        st.ymm_hi[2] = [0x8000_0000_8000_0000, 0x8000_0000_8000_0000];
        st.sse.xmm[0] = [0, 0xdead_beef];
        st.sse.xmm[4] = [3, 1];
        st.sse.xmm[5] = [0, 1 << 63];
        st.sse.xmm[3] = [0x77, 0];
        st.ymm_hi[3] = [1, 1];
        m.run();
        let st = m.cpu.state();
        // dword_ptr(rax + 8 + 4 * i): element 0x102 + i.
        assert_eq!(st.sse.xmm[0], [0x107 | 0x100 << 32, 0xdead_beef | 0x10b << 32]);
        assert_eq!(st.ymm_hi[0], [0x103 | 0x103 << 32, 0x120 | 0x109 << 32]);
        assert_eq!((st.sse.xmm[2], st.ymm_hi[2]), ([0, 0], [0, 0]), "mask cleared");
        assert_eq!((st.sse.xmm[3], st.ymm_hi[3]), ([0x77, 0x102 | 0x103 << 32], [0, 0]));
    }

    #[test]
    fn gather_with_a_shared_register_is_ud_and_maskmov_skips_masked_elements() {
        let mut a = CodeAssembler::new(64).unwrap();
        a.vpgatherdd_3(xmm0, dword_ptr(rax + xmm0 * 4), xmm2).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        let _ = m.cpu.step(&m.p);
        assert_eq!(m.cpu.last_exception.map(|e| e.0), Some(vec::UD));
        // The masked-off element lies on an unmapped address: no fault.
        let mut a = CodeAssembler::new(64).unwrap();
        a.mov(rax, 0x20000u64).unwrap();
        a.vmaskmovps(xmm0, xmm1, ptr(rax)).unwrap();
        a.vpmaskmovq(ptr(rax + 0x100), ymm1, ymm3).unwrap();
        a.hlt().unwrap();
        let mut m = avx_machine(&mut a);
        poke_dwords(&m, 0x20000, &[1, 2, 3, 4]);
        let st = m.cpu.state_mut();
        st.sse.xmm[1] = [0x8000_0000 << 32, 0x8000_0000];
        st.ymm_hi[1] = [1 << 63, 0];
        st.sse.xmm[3] = [10, 11];
        st.ymm_hi[3] = [12, 13];
        m.run();
        assert_eq!(m.cpu.state().sse.xmm[0], [2 << 32, 3]);
        assert_eq!(m.peek::<32>(0x20100), {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&10u64.to_le_bytes());
            b[16..24].copy_from_slice(&12u64.to_le_bytes());
            b
        });
    }

    /// A 64-entry table of random dwords, random indices into it (as dwords and as
    /// qwords) and a random mask: the host's and the interpreter's gathers must agree on
    /// the destination and the mask.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn random_gathers_and_masked_moves_match_the_host() {
        use super::super::avx::Ymm;
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: the host has no AVX2");
            return;
        }
        const TABLE: u64 = 0x20000;
        let mut st = 0x9e37_79b9u64;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st
        };
        /// `insn` on the host with RAX = the table, YMM0/YMM1/YMM2 = dst/index/mask: the
        /// host's YMM0 and YMM2.
        macro_rules! host {
            ($insn:literal, $table:expr, $d:expr, $i:expr, $k:expr) => {{
                let mut v: [Ymm; 3] = [$d, $i, $k];
                // SAFETY: the caller checked that the host has AVX2. Loads YMM0-YMM2 from
                // `v`, gathers (or masked-loads) from `table` with in-range indices, stores
                // YMM0 and YMM2 back; the registers are declared clobbered.
                unsafe {
                    std::arch::asm!(
                        "vmovdqu ymm0, [{v}]", "vmovdqu ymm1, [{v} + 32]", "vmovdqu ymm2, [{v} + 64]", $insn,
                        "vmovdqu [{v}], ymm0", "vmovdqu [{v} + 64], ymm2", "vzeroupper",
                        v = in(reg) v.as_mut_ptr(), in("rax") $table.as_ptr(),
                        out("xmm0") _, out("xmm1") _, out("xmm2") _,
                    );
                }
                (v[0], v[2])
            }};
        }
        for _ in 0..300 {
            let table: Vec<u32> = (0..64).map(|_| next() as u32).collect();
            let d: Ymm = [[next(), next()], [next(), next()]];
            let k: Ymm = [[next(), next()], [next(), next()]];
            // Dword indices 0-31 (and qword indices 0-31) so that every scale stays inside.
            let dw = |x: u64| (x & 0x1f) | (x >> 32 & 0x1f) << 32;
            let i: Ymm = [[dw(next()), dw(next())], [dw(next()), dw(next())]];
            let iq: Ymm = [[next() & 0x1f, next() & 0x1f], [next() & 0x1f, next() & 0x1f]];
            let ours = |op: &dyn Fn(&mut CodeAssembler), idx: Ymm| {
                let mut a = CodeAssembler::new(64).unwrap();
                op(&mut a);
                a.hlt().unwrap();
                let mut m = avx_machine(&mut a);
                poke_dwords(&m, TABLE, &table);
                let st = m.cpu.state_mut();
                st.gpr[0] = TABLE;
                for (r, v) in [(0, d), (1, idx), (2, k)] {
                    st.sse.xmm[r] = v[0];
                    st.ymm_hi[r] = v[1];
                }
                m.run();
                let st = m.cpu.state();
                ([st.sse.xmm[0], st.ymm_hi[0]], [st.sse.xmm[2], st.ymm_hi[2]])
            };
            assert_eq!(
                ours(&|a| a.vpgatherdd_3(ymm0, dword_ptr(rax + ymm1 * 4), ymm2).unwrap(), i),
                host!("vpgatherdd ymm0, [rax + ymm1*4], ymm2", table, d, i, k),
                "vpgatherdd"
            );
            assert_eq!(
                ours(&|a| a.vgatherdpd_3(ymm0, qword_ptr(rax + xmm1 * 2), ymm2).unwrap(), i),
                host!("vgatherdpd ymm0, [rax + xmm1*2], ymm2", table, d, i, k),
                "vgatherdpd"
            );
            assert_eq!(
                ours(&|a| a.vpgatherqd_3(xmm0, dword_ptr(rax + ymm1 * 4), xmm2).unwrap(), iq),
                host!("vpgatherqd xmm0, [rax + ymm1*4], xmm2", table, d, iq, k),
                "vpgatherqd"
            );
            assert_eq!(
                ours(&|a| a.vgatherqps_3(xmm0, dword_ptr(rax + xmm1 * 8 + 4), xmm2).unwrap(), iq),
                host!("vgatherqps xmm0, [rax + xmm1*8 + 4], xmm2", table, d, iq, k),
                "vgatherqps"
            );
            assert_eq!(
                ours(&|a| a.vpmaskmovq(ymm0, ymm2, ptr(rax + 8)).unwrap(), i),
                host!("vpmaskmovq ymm0, ymm2, [rax + 8]", table, d, i, k),
                "vpmaskmovq"
            );
            assert_eq!(
                ours(&|a| a.vmaskmovps(xmm0, xmm2, ptr(rax + 4)).unwrap(), i),
                host!("vmaskmovps xmm0, xmm2, [rax + 4]", table, d, i, k),
                "vmaskmovps"
            );
        }
    }
}
