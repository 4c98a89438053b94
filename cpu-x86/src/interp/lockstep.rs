//! The lock-step checker of the compiled tier (`--accel jit --jit-check`).
//!
//! While a unit runs, every instruction it hands to its handler is recorded with the
//! registers before and after it. After the unit, the checker replays the block from
//! the registers the unit started with: instructions the unit translated run through
//! their handlers, the recorded ones are checked against the copy
//! (the unit must have reached the same state before calling them) and then taken as
//! recorded (they already are the handlers' work, and may have touched devices, which
//! cannot run twice). At the end the copy must equal the state the unit left: the
//! registers, RIP, RFLAGS and the instruction count. The first divergence stops the
//! machine with both states and the block's code.
//!
//! Translated instructions touch only the general registers, RIP and the flags, so
//! replaying them needs no memory undo.

use super::cpu::{Ctx, Interpreter};
use super::decode_cache::Block;
use super::flags::LazyFlags;
use super::op::Op;
use crate::engine::Exit;
use crate::tier::{Lowering, UnitCode};
use std::fmt::Write;

/// Passes round its loop a checked unit may make.
const PASSES: usize = 4;

/// The part of the state translated instructions change, and the counters.
#[derive(Clone, Copy)]
struct Snap {
    gpr: [u64; 16],
    rip: u64,
    rflags: u64,
    lazy: LazyFlags,
    retired: u64,
    event_ticks: u64,
}

impl Snap {
    fn of(c: &Interpreter) -> Snap {
        let st = &c.st;
        Snap {
            gpr: st.gpr,
            rip: st.rip,
            rflags: st.rflags,
            lazy: st.lazy,
            retired: c.retired,
            event_ticks: c.event_ticks,
        }
    }

    /// Sets the registers, flags and counters of `c` to these.
    fn put(&self, c: &mut Interpreter) {
        let st = &mut c.st;
        st.gpr = self.gpr;
        st.rip = self.rip;
        st.rflags = self.rflags;
        st.lazy = self.lazy;
        c.retired = self.retired;
        c.event_ticks = self.event_ticks;
    }

    fn flags(&self) -> u64 {
        (self.rflags & !super::state::fl::ARITH) | self.lazy.compute(self.rflags)
    }

    /// What differs between `self` (the handlers) and `jit`, if anything; RIP only when
    /// `with_rip` (before a handler runs, compiled code has not stored RIP: the handler
    /// sets it from the instruction).
    fn diff(&self, jit: &Snap, with_rip: bool) -> Option<String> {
        let same_flags = (self.rflags == jit.rflags && self.lazy == jit.lazy) || self.flags() == jit.flags();
        if same_flags
            && self.gpr == jit.gpr
            && (!with_rip || self.rip == jit.rip)
            && self.retired == jit.retired
            && self.event_ticks == jit.event_ticks
        {
            return None;
        }
        let mut out = String::new();
        for (i, (a, b)) in self.gpr.iter().zip(&jit.gpr).enumerate() {
            if a != b {
                let _ = write!(out, " gpr{i}: handlers {a:#x}, unit {b:#x};");
            }
        }
        let pairs = [
            ("rip", if with_rip { self.rip } else { 0 }, if with_rip { jit.rip } else { 0 }),
            ("rflags", self.flags(), jit.flags()),
            ("retired", self.retired, jit.retired),
            ("event ticks", self.event_ticks, jit.event_ticks),
        ];
        for (name, a, b) in pairs {
            if a != b {
                let _ = write!(out, " {name}: handlers {a:#x}, unit {b:#x};");
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// One instruction a unit ran through its handler.
struct Record {
    op: *const Op,
    before: Snap,
    after: Snap,
    stop: bool,
}

/// The checker's state.
#[derive(Default)]
pub struct Lockstep {
    /// Unit runs compared so far.
    pub checked: u64,
    records: Vec<Record>,
}

impl Ctx<'_> {
    /// Runs `op` through its handler for a unit, recording it for the checker.
    pub(super) fn exec_one_recorded(&mut self, op: &Op) -> bool {
        let before = Snap::of(self.c);
        let stop = self.exec_one_plain(op) != crate::tier::helper_result::GO_ON;
        let after = Snap::of(self.c);
        if let Some(l) = self.c.lockstep.as_mut() {
            l.records.push(Record { op, before, after, stop });
        }
        stop
    }

    /// Runs compiled `code` of `block` and checks it against the handlers.
    pub(super) fn run_unit_checked(
        &mut self,
        block: &Block,
        code: UnitCode,
        end: u64,
        chain: bool,
    ) -> Result<(), Exit> {
        // As the lean loop does before its first instruction (`run_unit` does it too).
        self.c.st.rflags &= !super::state::fl::RF;
        let start = Snap::of(self.c);
        if let Some(l) = self.c.lockstep.as_mut() {
            l.records.clear();
        }
        // A few passes round a loop, so that the way back is checked too, without
        // recording millions of instructions.
        let passes = (PASSES * block.ops.len()) as u64;
        let end = end.min(self.c.retired + self.c.event_ticks + passes);
        let result = self.run_unit(block, code, end, chain);
        let unit_end = Snap::of(self.c);
        let records = self.c.lockstep.as_mut().map(|l| std::mem::take(&mut l.records)).unwrap_or_default();
        start.put(self.c);
        let replayed = self.replay(block, &records, &unit_end);
        // The unit's state stays (it equals the handlers' when nothing diverged).
        unit_end.put(self.c);
        if let Some(l) = self.c.lockstep.as_mut() {
            l.checked += 1;
            // Keep the buffer for the next unit.
            l.records = records;
        }
        match replayed {
            Ok(()) => result,
            Err(why) => Err(Exit::Unsupported(self.divergence(block, &why))),
        }
    }

    /// Replays `block` on the registers (set to the unit's start) as the interpreter's
    /// lean loop would, taking the recorded instructions as recorded; fails with what
    /// differs.
    fn replay(&mut self, block: &Block, records: &[Record], unit_end: &Snap) -> Result<(), String> {
        let first_ip = block.ops[0].ins.ip();
        let lowered = block.lowered.get().map(|l| &l[..]).unwrap_or_default();
        let mut next = records.iter();
        let mut pending = next.next();
        let mut i = 0;
        loop {
            let op = &block.ops[i];
            let recorded = pending.filter(|r| std::ptr::eq(r.op, op));
            let stop = if let Some(r) = recorded {
                if let Some(d) = Snap::of(self.c).diff(&r.before, false) {
                    return Err(format!("before `{}`:{d}", op.ins));
                }
                r.after.put(self.c);
                pending = next.next();
                r.stop
            } else if lowered.get(i).is_none_or(|l| *l == Lowering::Helper) {
                return Err(format!("`{}` should have gone through its handler, and did not", op.ins));
            } else {
                self.c.st.rip = op.next_ip;
                if let Err(fault) = (op.run)(self, op) {
                    return Err(format!("`{}` faults in its handler ({fault:?}) but the unit translated it", op.ins));
                }
                self.c.retired += 1;
                false
            };
            if stop {
                break;
            }
            let straight = self.c.st.rip == op.next_ip;
            i += 1;
            if !straight || i == block.ops.len() {
                if self.c.st.rip == first_ip && self.c.retired < unit_end.retired {
                    i = 0;
                    continue;
                }
                break;
            }
        }
        if let Some(r) = pending {
            // SAFETY: the record's op points into `block`, alive here.
            let ins = unsafe { &(*r.op).ins };
            return Err(format!("the unit ran `{ins}` through its handler after the handlers' path ended"));
        }
        match Snap::of(self.c).diff(unit_end, true) {
            Some(d) => Err(format!("at the unit's exit:{d}")),
            None => Ok(()),
        }
    }

    /// The diagnosis of a divergence: what differs and the block's code.
    fn divergence(&mut self, block: &Block, why: &str) -> String {
        let mut text = format!("JIT lock-step divergence in the block at {:#x}: {why}\n  code:", block.ops[0].ins.ip());
        for op in block.ops.iter() {
            let _ = write!(text, "\n    {:#x}: {}", op.ins.ip(), op.ins);
        }
        log::error!("{text}");
        text
    }
}
