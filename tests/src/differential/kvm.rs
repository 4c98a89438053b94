//! Runs real- and protected-mode sequences in a KVM vCPU (the reference for
//! [`Mode::Real16`], and for [`Mode::Protected32`] besides the host CPU).
//!
//! Real mode: the vCPU starts at [`real::CODE`] with CS = DS = ES = SS = 0 and the case's
//! registers and flags, and runs until it halts (at the final HLT or in an exception
//! stub, see [`real`]). Protected mode: a ring-0 stub enters the sequence at CPL 3, which
//! ends with an `INT` to a HLT stub, as do exceptions (see [`protected`]). Only hardware
//! virtualization (`kvm_intel`, `kvm_amd`) is a reference: the paravirtual `kvm_pvm` runs
//! real mode through KVM's instruction emulator, which stops on AAA/DAA and decodes LZCNT
//! as BSR, and cannot run protected mode without paging.

use super::gen::{Avoid, Case};
use super::layout::DATA_LEN;
use super::{protected, real, Mode, Outcome, Reference};
use rx86_core::entry::EntryState;
use rx86_core::platform::BasicPlatform;
use rx86_core::time::Clock;
use rx86_cpu::engine::{Engine, Exit};
use rx86_cpu::kvm::{probe, KvmEngine};

/// RAM of the VM: low memory and the region of [`super::layout`].
const RAM: u64 = 4 << 20;
/// How long one sequence may run (host time) before it counts as hung.
const TIMEOUT_NS: u64 = 1_000_000_000;

/// A one-vCPU VM for real- or protected-mode sequences.
pub struct KvmCpu {
    board: BasicPlatform,
    engine: KvmEngine,
    clock: Clock,
    mode: Mode,
    on_tcg: bool,
}

/// Whether this process runs under QEMU's TCG: its CPUID hypervisor leaf says "TCGTCGTCGTCG".
/// A KVM there (a nested KVM host, see [`crate::nested`]) runs its guests' instructions on TCG.
fn running_on_qemu_tcg() -> bool {
    const HYPERVISOR_LEAF: u32 = 0x4000_0000;
    let leaf = std::arch::x86_64::__cpuid(HYPERVISOR_LEAF);
    let signature: Vec<u8> = [leaf.ebx, leaf.ecx, leaf.edx].iter().flat_map(|r| r.to_le_bytes()).collect();
    signature == b"TCGTCGTCGTCG"
}

impl KvmCpu {
    /// Opens `/dev/kvm` and creates a VM for `mode` (real or protected), or says why it cannot.
    pub fn new(mode: Mode) -> Result<Self, String> {
        let module = probe()?;
        if !rx86_cpu::kvm::hardware_virtualization() {
            return Err(format!(
                "the host's KVM ({module}) is not hardware virtualization (kvm_intel/kvm_amd): it runs real mode \
                 through KVM's instruction emulator, which is no reference"
            ));
        }
        let board = BasicPlatform::new(RAM).map_err(|e| e.to_string())?;
        match mode {
            Mode::Real16 => real::write_vector_table(&board.memory),
            Mode::Protected32 => protected::write_tables(&board.memory),
            Mode::Long64 => return Err("64-bit sequences are compared with the host CPU, not KVM".into()),
        }
        let clock = Clock::new_host();
        let engine = KvmEngine::new(&board.memory, &clock).map_err(|e| e.to_string())?;
        Ok(KvmCpu { board, engine, clock, mode, on_tcg: running_on_qemu_tcg() })
    }
}

impl Reference for KvmCpu {
    fn run(&mut self, case: &Case, code: &[u8], end: u64) -> Outcome {
        debug_assert_eq!(case.mode, self.mode);
        let mem = &self.board.memory;
        let real = self.mode == Mode::Real16;
        let entry = if real {
            mem.write(real::CODE, &real::with_final_hlt(code));
            let mut entry = EntryState::real_mode(0, real::CODE as u16, 0, 0, case.gpr[4] as u16);
            entry.gpr = case.gpr;
            entry.rflags = case.rflags;
            entry
        } else {
            mem.write(case.mode.code(), &protected::with_final_int(code));
            protected::entry(mem, case.gpr, case.rflags)
        };
        mem.write(case.mode.data(), &case.data);
        let mut data = vec![0u8; DATA_LEN];
        let stopped = match self.engine.load_entry_state(&entry) {
            Err(e) => Some(format!("KVM refused the state: {e:?}")),
            Ok(()) => match self.engine.run(&self.board, &self.clock, self.clock.now_ns() + TIMEOUT_NS) {
                Ok(Exit::Halted) => None,
                other => Some(format!("KVM stopped: {other:?}")),
            },
        };
        mem.read(case.mode.data(), &mut data);
        let regs = self.engine.registers();
        let mut out = if real {
            real::outcome(mem, regs.gpr, regs.rip, regs.rflags, end, data)
        } else {
            protected::outcome(mem, regs.gpr, regs.rip, end, data)
        };
        if stopped.is_some() {
            out.stopped = stopped;
        }
        out
    }

    fn avoid(&self) -> Avoid {
        if self.on_tcg {
            Avoid::QEMU_TCG
        } else {
            Avoid::KVM
        }
    }
}
