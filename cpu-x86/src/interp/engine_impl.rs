//! [`Engine`] for the interpreter, plus register access for debuggers and harnesses.

use super::cpu::Interpreter;
use super::flags::FlagOp;
use super::state::{fl, CpuState, DescTable, Segment};
use crate::debug::EngineDebug;
use crate::engine::{Engine, EngineError, Exit, RegisterSummary};
use rx86_core::entry::{EntryState, SegmentInit};
use rx86_core::platform::Platform;
use rx86_core::time::Clock;

fn segment(s: &SegmentInit) -> Segment {
    Segment { base: s.base, limit: s.limit, selector: s.selector, attrs: s.attributes }
}

impl Interpreter {
    /// RFLAGS with the pending lazy flags folded in.
    pub fn rflags(&self) -> u64 {
        let st = &self.st;
        (st.rflags & !fl::ARITH) | st.lazy.compute(st.rflags)
    }

    /// Sets RFLAGS (bit 1 forced on) and drops pending lazy flags.
    pub fn set_rflags(&mut self, v: u64) {
        self.st.rflags = (v & fl::WRITABLE) | fl::FIXED1;
        self.st.lazy.op = FlagOp::None;
        self.st.update_mode();
    }

    /// The architectural state (read).
    pub fn state(&self) -> &CpuState {
        &self.st
    }

    /// The architectural state (write). Call [`Interpreter::flush_caches`] after
    /// changing control registers, segments or mode bits.
    pub fn state_mut(&mut self) -> &mut CpuState {
        &mut self.st
    }
}

impl Engine for Interpreter {
    fn name(&self) -> &'static str {
        if self.tier.is_some() {
            "jit"
        } else {
            "interp"
        }
    }

    fn instructions_retired(&self) -> Option<u64> {
        Some(self.retired)
    }

    fn tier_report(&self) -> Option<super::TierReport> {
        Interpreter::tier_report(self)
    }

    fn load_entry_state(&mut self, s: &EntryState) -> Result<(), EngineError> {
        let st = &mut self.st;
        *st = CpuState { msr: st.msr, model: st.model, ..CpuState::default() };
        st.gpr = s.gpr;
        st.rip = s.rip;
        for (i, seg) in [&s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs].into_iter().enumerate() {
            st.seg[i] = segment(seg);
        }
        st.gdtr = DescTable { base: s.gdt.base, limit: s.gdt.limit as u32 };
        st.idtr = DescTable { base: s.idt.base, limit: s.idt.limit as u32 };
        st.cr0 = s.cr0 | super::state::cr0::ET;
        st.cr3 = s.cr3;
        st.cr4 = s.cr4;
        st.efer = s.efer;
        st.update_mode();
        if st.protected() {
            st.cpl = st.seg[1].dpl();
        }
        self.set_rflags(s.rflags);
        self.flush_caches();
        Ok(())
    }

    fn run(&mut self, platform: &dyn Platform, clock: &Clock, deadline_ns: u64) -> Result<Exit, EngineError> {
        Ok(self.run_until(platform, clock, deadline_ns))
    }

    fn debug(&mut self) -> Option<&mut dyn EngineDebug> {
        Some(self)
    }

    fn registers(&self) -> RegisterSummary {
        let st = &self.st;
        RegisterSummary {
            gpr: st.gpr,
            rip: st.rip,
            rflags: self.rflags(),
            cs: st.seg[1].selector,
            cr0: st.cr0,
            cr2: st.cr2,
            cr3: st.cr3,
            cr4: st.cr4,
            efer: st.efer,
        }
    }
}
