//! Runs real-mode sequences in a KVM vCPU (the reference for [`Mode::Real16`]).
//!
//! The vCPU starts at [`real::CODE`] with CS = DS = ES = SS = 0 and the case's
//! registers and flags, and runs until it halts (at the final HLT or in an exception
//! stub, see [`real`]). Only hardware virtualization (`kvm_intel`, `kvm_amd`) is a
//! reference: the paravirtual `kvm_pvm` runs real mode through KVM's instruction
//! emulator, which stops on AAA/DAA and decodes LZCNT as BSR. Protected mode is
//! compared with the host CPU instead.

use super::gen::Case;
use super::layout::DATA_LEN;
use super::{real, Mode, Outcome, Reference};
use rx86_core::entry::EntryState;
use rx86_core::platform::BasicPlatform;
use rx86_core::time::Clock;
use rx86_cpu::engine::{Engine, Exit};
use rx86_cpu::kvm::{probe, KvmEngine};

/// RAM of the VM.
const RAM: u64 = 1 << 20;
/// How long one sequence may run (host time) before it counts as hung.
const TIMEOUT_NS: u64 = 1_000_000_000;

/// A one-vCPU VM for real-mode sequences.
pub struct KvmCpu {
    board: BasicPlatform,
    engine: KvmEngine,
    clock: Clock,
}

impl KvmCpu {
    /// Opens `/dev/kvm` and creates the VM, or says why it cannot.
    pub fn new() -> Result<Self, String> {
        let module = probe()?;
        if !rx86_cpu::kvm::hardware_virtualization() {
            return Err(format!(
                "the host's KVM ({module}) is not hardware virtualization (kvm_intel/kvm_amd): it runs real mode \
                 through KVM's instruction emulator, which is no reference"
            ));
        }
        let board = BasicPlatform::new(RAM).map_err(|e| e.to_string())?;
        real::write_vector_table(&board.memory);
        let clock = Clock::new_host();
        let engine = KvmEngine::new(&board.memory, &clock).map_err(|e| e.to_string())?;
        Ok(KvmCpu { board, engine, clock })
    }
}

impl Reference for KvmCpu {
    fn run(&mut self, case: &Case, code: &[u8], end: u64) -> Outcome {
        debug_assert_eq!(case.mode, Mode::Real16);
        let mem = &self.board.memory;
        mem.write(real::CODE, &real::with_final_hlt(code));
        mem.write(real::DATA, &case.data);
        let mut entry = EntryState::real_mode(0, real::CODE as u16, 0, 0, case.gpr[4] as u16);
        entry.gpr = case.gpr;
        entry.rflags = case.rflags;
        let mut data = vec![0u8; DATA_LEN];
        let stopped = match self.engine.load_entry_state(&entry) {
            Err(e) => Some(format!("KVM refused the state: {e:?}")),
            Ok(()) => match self.engine.run(&self.board, &self.clock, self.clock.now_ns() + TIMEOUT_NS) {
                Ok(Exit::Halted) => None,
                other => Some(format!("KVM stopped: {other:?}")),
            },
        };
        mem.read(real::DATA, &mut data);
        let regs = self.engine.registers();
        let mut out = real::outcome(mem, regs.gpr, regs.rip, regs.rflags, end, data);
        if stopped.is_some() {
            out.stopped = stopped;
        }
        out
    }
}
