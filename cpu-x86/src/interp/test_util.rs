//! Helpers for the interpreter's unit tests: assemble code with iced's `code_asm`,
//! place it in a `BasicPlatform`, run it to HLT.

use super::cpu::{Interpreter, Step};
use super::state::{cr0, efer, Seg, Segment};
use iced_x86::code_asm::CodeAssembler;
use rx86_core::platform::BasicPlatform;

/// A machine of 2 MiB RAM with an interpreter.
pub struct Machine {
    pub p: BasicPlatform,
    pub cpu: Interpreter,
}

impl Machine {
    pub fn new() -> Self {
        Machine { p: BasicPlatform::new(2 << 20).unwrap(), cpu: Interpreter::default() }
    }

    /// Writes bytes at a physical address.
    pub fn poke(&self, addr: u64, bytes: &[u8]) {
        self.p.memory.write(addr, bytes);
    }

    /// Reads `N` bytes at a physical address.
    pub fn peek<const N: usize>(&self, addr: u64) -> [u8; N] {
        let mut b = [0; N];
        self.p.memory.read(addr, &mut b);
        b
    }

    /// Assembles `a` for `ip` and stores it at physical `addr`.
    pub fn load(&self, a: &mut CodeAssembler, ip: u64, addr: u64) {
        let code = a.assemble(ip).unwrap();
        self.poke(addr, &code);
    }

    /// Real mode, CS=DS=ES=SS=0, code at 0x1000, SP=0x8000.
    pub fn real(a: &mut CodeAssembler) -> Self {
        let m = Self::new();
        m.load(a, 0x1000, 0x1000);
        let mut m = m;
        let st = m.cpu.state_mut();
        st.cr0 = cr0::ET;
        st.seg = [Segment::real(0); 6];
        st.seg[Seg::Cs as usize].attrs = 0x9b;
        st.rip = 0x1000;
        st.gpr[4] = 0x8000;
        st.idtr.limit = 0x3ff;
        m.cpu.flush_caches();
        m
    }

    /// Flat 32-bit protected mode at CPL 0 (GDT at 0x500: null, code 0x08, data 0x10),
    /// code at 0x10000, ESP=0x9000.
    pub fn protected32(a: &mut CodeAssembler) -> Self {
        let mut m = Self::new();
        m.load(a, 0x10000, 0x10000);
        m.poke(0x500, &[0; 8]);
        m.poke(0x508, &0x00cf_9b00_0000_ffffu64.to_le_bytes());
        m.poke(0x510, &0x00cf_9300_0000_ffffu64.to_le_bytes());
        let st = m.cpu.state_mut();
        st.cr0 = cr0::ET | cr0::PE;
        st.gdtr.base = 0x500;
        st.gdtr.limit = 0x17;
        let data = Segment { base: 0, limit: 0xffff_ffff, selector: 0x10, attrs: 0xc093 };
        st.seg = [data; 6];
        st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: 0x08, attrs: 0xc09b };
        st.rip = 0x10000;
        st.gpr[4] = 0x9000;
        m.cpu.flush_caches();
        m
    }

    /// 64-bit mode with the first 2 MiB identity-mapped by a 2 MiB page (tables at
    /// 0x70000), GDT as in `protected32` plus a 64-bit code segment 0x18, code at 0x10000.
    pub fn long64(a: &mut CodeAssembler) -> Self {
        let mut m = Self::new();
        m.load(a, 0x10000, 0x10000);
        m.poke(0x500, &[0; 8]);
        m.poke(0x508, &0x00cf_9b00_0000_ffffu64.to_le_bytes());
        m.poke(0x510, &0x00cf_9300_0000_ffffu64.to_le_bytes());
        m.poke(0x518, &0x00af_9b00_0000_ffffu64.to_le_bytes());
        m.poke(0x70000, &(0x71000u64 | 7).to_le_bytes());
        m.poke(0x71000, &(0x72000u64 | 7).to_le_bytes());
        m.poke(0x72000, &(0x87u64).to_le_bytes());
        let st = m.cpu.state_mut();
        st.cr0 = cr0::ET | cr0::PE | cr0::PG;
        st.cr3 = 0x70000;
        st.cr4 = super::state::cr4::PAE;
        st.efer = efer::LME | efer::LMA;
        st.gdtr.base = 0x500;
        st.gdtr.limit = 0x1f;
        let data = Segment { base: 0, limit: 0xffff_ffff, selector: 0x10, attrs: 0xc093 };
        st.seg = [data; 6];
        st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: 0x18, attrs: 0xa09b };
        st.rip = 0x10000;
        st.gpr[4] = 0x9000;
        m.cpu.flush_caches();
        m
    }

    /// IDT entries for vectors 0-31 pointing at a HLT at 0x30000 (code selector 0x18 in
    /// 64-bit mode, 0x08 otherwise), so the run stops at the first exception and
    /// `last_exception` names it.
    pub fn catch_exceptions(&mut self, long: bool) {
        let mut h = CodeAssembler::new(if long { 64 } else { 32 }).unwrap();
        h.hlt().unwrap();
        self.load(&mut h, 0x30000, 0x30000);
        let code_sel: u64 = if long { 0x18 } else { 0x08 };
        let gate = (code_sel << 16) | (0x8e00 << 32) | (0x3 << 48);
        for v in 0..32u64 {
            if long {
                self.poke(0x2000 + v * 16, &gate.to_le_bytes());
                self.poke(0x2000 + v * 16 + 8, &0u64.to_le_bytes());
            } else {
                self.poke(0x2000 + v * 8, &gate.to_le_bytes());
            }
        }
        let st = self.cpu.state_mut();
        st.idtr.base = 0x2000;
        st.idtr.limit = if long { 0x1ff } else { 0xff };
    }

    /// Steps until HLT (panics after 100k steps or on an engine exit).
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            match self.cpu.step(&self.p) {
                Step::Retired => {}
                Step::Halted => return,
                Step::Exit(e) => panic!("engine exit {e:?}"),
            }
        }
        panic!("no HLT");
    }

    /// GPR `n`.
    pub fn gpr(&self, n: usize) -> u64 {
        self.cpu.state().gpr[n]
    }
}

/// The tests' seeded random generator (xorshift64): runs repeat.
pub struct TestRng(pub u64);

impl TestRng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
