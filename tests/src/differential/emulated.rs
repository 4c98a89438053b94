//! Runs a sequence on the interpreter, in a [`BasicPlatform`] whose RAM holds the same
//! layout as the host region.
//!
//! 64-bit mode identity-maps the first 4 MiB with 2 MiB user pages; 32-bit mode is
//! flat protected mode without paging. Both run at CPL 3 with IOPL 0, as the host's
//! user code does, so privileged instructions raise #GP on both sides. The IDT is empty: the first exception is read from
//! [`Interpreter::last_exception`] and the state from just before the faulting
//! instruction is reported (the host reports the same for a fault).

use super::gen::Case;
use super::layout::DATA_LEN;
use super::{real, Fault, Mode, Outcome};
use rx86_core::platform::BasicPlatform;
use rx86_core::time::Clock;
use rx86_cpu::engine::{Engine, Exit};
use rx86_cpu::interp::state::{cr0, cr4, efer, CpuState, DescTable, Seg, Segment};
use rx86_cpu::interp::{Interpreter, Step};

/// Physical memory of the test machine: enough for the region and the page tables.
const RAM: u64 = 4 << 20;
/// XCR0 with x87, SSE and AVX state enabled, as Linux sets it on a CPU with AVX.
const AVX_XCR0: u64 = 7;
/// Where the GDT lives (null, 32-bit code 0x08, data 0x10, 64-bit code 0x18, then
/// the same at DPL 3: 32-bit code 0x23, data 0x2b, 64-bit code 0x33, as on Linux).
const GDT: u64 = 0x500;
/// PML4, PDPT and page directory of the 64-bit identity map.
const PML4: u64 = 0x10000;
/// Instructions a sequence may retire before it counts as runaway.
const STEP_LIMIT: usize = 100_000;

/// Where whole runs ([`EmulatedCpu::whole_run`]) keep their IDT (32 gates).
const IDT: u64 = 0x1000;
/// The HLT every exception of a whole run is delivered to, at CPL 0.
const HANDLER: u64 = 0x2000;
/// The TSS of a whole run (its RSP0/ESP0 is the handler's stack).
const TSS: u64 = 0x3000;
/// Top of the handler's stack.
const HANDLER_STACK: u64 = 0x8000;
/// Vectors whose exceptions push an error code.
const WITH_ERROR_CODE: [u8; 8] = [8, 10, 11, 12, 13, 14, 17, 21];

/// The interpreter plus its machine, ready for one case after another.
pub struct EmulatedCpu {
    platform: BasicPlatform,
    cpu: Interpreter,
    initial: CpuState,
    /// The clock of a whole run, which lets the CPU run blocks (and its tier compiled code).
    clock: Option<Clock>,
}

impl EmulatedCpu {
    /// A machine in `mode` with its descriptor and page tables written.
    pub fn new(mode: Mode) -> Self {
        let platform = BasicPlatform::new(RAM).expect("4 MiB of RAM");
        let mem = &platform.memory;
        mem.write(GDT, &0u64.to_le_bytes());
        mem.write(GDT + 8, &0x00cf_9b00_0000_ffffu64.to_le_bytes());
        mem.write(GDT + 16, &0x00cf_9300_0000_ffffu64.to_le_bytes());
        mem.write(GDT + 24, &0x00af_9b00_0000_ffffu64.to_le_bytes());
        mem.write(GDT + 32, &0x00cf_fb00_0000_ffffu64.to_le_bytes());
        mem.write(GDT + 40, &0x00cf_f300_0000_ffffu64.to_le_bytes());
        mem.write(GDT + 48, &0x00af_fb00_0000_ffffu64.to_le_bytes());
        let mut cpu = Interpreter::default();
        let st = cpu.state_mut();
        st.gdtr = DescTable { base: GDT, limit: 0x37 };
        st.idtr = DescTable { base: 0, limit: 0 };
        // No TSS, hence no I/O permission bitmap: port I/O at CPL 3 is #GP, as for
        // a Linux process without ioperm().
        st.tr = Segment { base: 0, limit: 0, selector: 0, attrs: 0 };
        // DS, ES and SS as the host's trampolines leave them (null DS/ES in 64-bit
        // mode, as Linux runs 64-bit code); FS and GS null (their bases are the
        // host's TLS, which sequences never use).
        let data = Segment { base: 0, limit: 0xffff_ffff, selector: 0x2b, attrs: 0xc0f3 };
        let null = Segment { base: 0, limit: 0, selector: 0, attrs: 0 };
        st.seg = [data, data, data, data, null, null];
        if mode == Mode::Long64 {
            st.seg[Seg::Ds as usize].selector = 0;
            st.seg[Seg::Es as usize].selector = 0;
        }
        match mode {
            Mode::Long64 => {
                // PML4[0] -> PDPT, PDPT[0] -> PD, PD[0..2] = 2 MiB pages (P, RW, US, PS).
                mem.write(PML4, &((PML4 + 0x1000) | 7).to_le_bytes());
                mem.write(PML4 + 0x1000, &((PML4 + 0x2000) | 7).to_le_bytes());
                mem.write(PML4 + 0x2000, &0x87u64.to_le_bytes());
                mem.write(PML4 + 0x2008, &(0x20_0000u64 | 0x87).to_le_bytes());
                st.cr0 = cr0::ET | cr0::PE | cr0::PG;
                st.cr3 = PML4;
                st.cr4 = cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::OSXSAVE;
                st.xcr0 = AVX_XCR0;
                st.efer = efer::LME | efer::LMA;
                st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: 0x33, attrs: 0xa0fb };
                st.cpl = 3;
            }
            Mode::Protected32 => {
                st.cr0 = cr0::ET | cr0::PE;
                // SSE and AVX enabled, as Linux runs its processes.
                st.cr4 = cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::OSXSAVE;
                st.xcr0 = AVX_XCR0;
                st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: 0x23, attrs: 0xc0fb };
                st.cpl = 3;
            }
            Mode::Real16 => {
                st.cr0 = cr0::ET;
                st.seg = [Segment::real(0); 6];
                st.seg[Seg::Cs as usize].attrs = 0x9b;
                st.idtr = DescTable { base: 0, limit: 0x3ff };
                real::write_vector_table(mem);
            }
        }
        st.rip = mode.code();
        cpu.flush_caches();
        let initial = cpu.state().clone();
        EmulatedCpu { platform, cpu, initial, clock: None }
    }

    /// Writes `case`'s data and puts the CPU in its initial state (the code is written).
    fn start(&mut self, case: &Case) {
        self.platform.memory.write(case.mode.data(), &case.data);
        *self.cpu.state_mut() = self.initial.clone();
        let st = self.cpu.state_mut();
        st.gpr = case.gpr;
        st.rip = case.mode.code();
        self.cpu.set_rflags(case.rflags);
        self.cpu.flush_caches();
        self.cpu.last_exception = None;
    }

    /// A machine in `mode` for [`Self::run_whole`]: its exceptions go through an IDT to a
    /// HLT at CPL 0 (real mode: through the IVT to HLT stubs, as in [`Self::run`]), and
    /// with `jit` every block is compiled at its first run.
    pub fn whole_run(mode: Mode, jit: bool) -> Self {
        let mut emu = EmulatedCpu::new(mode);
        let mem = &emu.platform.memory;
        mem.write(HANDLER, &[0xf4]);
        let st = &mut emu.initial;
        // The low eight bytes of an interrupt gate to `selector`:HANDLER, DPL 0.
        let gate = |selector: u64| (HANDLER & 0xffff) | (selector << 16) | (0x8e00 << 32) | ((HANDLER >> 16) << 48);
        match mode {
            Mode::Long64 => {
                for v in 0..32 {
                    // A 64-bit gate: the handler's upper half in the next eight bytes.
                    mem.write(IDT + 16 * v, &gate(0x18).to_le_bytes());
                    mem.write(IDT + 16 * v + 8, &(HANDLER >> 32).to_le_bytes());
                }
                mem.write(TSS + 4, &HANDLER_STACK.to_le_bytes());
                st.idtr = DescTable { base: IDT, limit: 32 * 16 - 1 };
                st.tr = Segment { base: TSS, limit: 0x67, selector: 0x38, attrs: 0x8b };
            }
            Mode::Protected32 => {
                for v in 0..32 {
                    mem.write(IDT + 8 * v, &gate(0x08).to_le_bytes());
                }
                mem.write(TSS + 4, &(HANDLER_STACK as u32).to_le_bytes());
                mem.write(TSS + 8, &0x10u32.to_le_bytes());
                st.idtr = DescTable { base: IDT, limit: 32 * 8 - 1 };
                st.tr = Segment { base: TSS, limit: 0x67, selector: 0x38, attrs: 0x8b };
            }
            Mode::Real16 => {}
        }
        if jit {
            let tier = rx86_jit::JitTier::new(8 << 20).expect("the JIT tier on this host");
            emu.cpu.set_tier(Box::new(tier), 1, false);
        }
        emu.clock = Some(Clock::new_virtual());
        emu
    }

    /// Runs `case` (encoded as `code`, ending at `end`) as a whole, as the machine runs
    /// code (blocks, and compiled code on a tier), on a machine from
    /// [`Self::whole_run`]; returns what it did and the instructions it retired. A
    /// fault is reported, as by [`Self::run`], with the state at the faulting
    /// instruction, read back from the exception frame.
    pub fn run_whole(&mut self, case: &Case, code: &[u8], end: u64) -> (Outcome, u64) {
        let mem = &self.platform.memory;
        let real = case.mode == Mode::Real16;
        if real {
            mem.write(case.mode.code(), &real::with_final_hlt(code));
        } else {
            // HLT at CPL 3 raises #GP at the end: the handler reports where it stopped.
            let mut with_hlt = code.to_vec();
            with_hlt.push(0xf4);
            mem.write(case.mode.code(), &with_hlt);
        }
        self.start(case);
        let mem = &self.platform.memory;
        let clock = self.clock.as_ref().expect("a machine from whole_run");
        let retired_before = self.cpu.instructions_retired().unwrap_or(0);
        let exit = self.cpu.run_until(&self.platform, clock, clock.now_ns() + STEP_LIMIT as u64);
        let retired = self.cpu.instructions_retired().unwrap_or(0) - retired_before;
        let mut data = vec![0u8; DATA_LEN];
        mem.read(case.mode.data(), &mut data);
        let st = self.cpu.state();
        let stopped = (exit != Exit::Halted).then(|| format!("{exit:?}"));
        if real {
            let mut out = real::outcome(mem, st.gpr, st.rip, self.cpu.rflags(), end, data);
            out.stopped = out.stopped.or(stopped);
            return (out, retired);
        }
        let mut gpr = st.gpr;
        let (mut rip, mut rflags, mut fault) = (st.rip, self.cpu.rflags(), None);
        if let Some((vector, _)) = self.cpu.last_exception.filter(|_| stopped.is_none()) {
            let width = if case.mode == Mode::Long64 { 8 } else { 4 };
            let frame = st.gpr[4] + if WITH_ERROR_CODE.contains(&vector) { width } else { 0 };
            let item = |i: u64| {
                let mut b = [0u8; 8];
                mem.read(frame + i * width, &mut b[..width as usize]);
                u64::from_le_bytes(b)
            };
            (rip, rflags, gpr[4]) = (item(0), item(2), item(3));
            if !(vector == 13 && rip == end) {
                fault = Some(Fault::from_vector(vector));
            }
        }
        gpr.iter_mut().for_each(|g| *g &= case.mode.gpr_mask());
        (Outcome { gpr, rip, rflags, data, fault, stopped }, retired)
    }

    /// Runs `case` (encoded as `code`, ending at `end`) and returns what it did.
    pub fn run(&mut self, case: &Case, code: &[u8], end: u64) -> Outcome {
        let mem = &self.platform.memory;
        let real = case.mode == Mode::Real16;
        if real {
            mem.write(case.mode.code(), &real::with_final_hlt(code));
        } else {
            mem.write(case.mode.code(), code);
        }
        self.start(case);
        let mem = &self.platform.memory;
        let mask = case.mode.gpr_mask();
        let mut fault = None;
        let mut stopped = None;
        let (mut gpr, mut rip, mut rflags) = (case.gpr, case.mode.code(), case.rflags);
        let mut halted = false;
        for _ in 0..STEP_LIMIT {
            let st = self.cpu.state();
            (gpr, rip, rflags) = (st.gpr, st.rip, self.cpu.rflags());
            if rip == end && !real {
                break;
            }
            let step = self.cpu.step(&self.platform);
            if real {
                // Real mode delivers exceptions through the IVT to HLT stubs.
                if step == Step::Halted {
                    halted = true;
                    break;
                }
            } else if let Some((vector, _)) = self.cpu.last_exception {
                fault = Some(Fault::from_vector(vector));
                break;
            }
            match step {
                Step::Retired => {}
                Step::Halted => {
                    stopped = Some("halted".to_string());
                    break;
                }
                Step::Exit(e) => {
                    stopped = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        let mut data = vec![0u8; DATA_LEN];
        mem.read(case.mode.data(), &mut data);
        if real {
            let st = self.cpu.state();
            let mut out = real::outcome(mem, st.gpr, st.rip, self.cpu.rflags(), end, data);
            out.stopped = out.stopped.or(stopped).or((!halted).then(|| "did not halt".to_string()));
            return out;
        }
        gpr.iter_mut().for_each(|g| *g &= mask);
        Outcome { gpr, rip, rflags, data, fault, stopped }
    }
}
