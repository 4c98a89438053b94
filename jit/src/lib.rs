//! rx86's compiled tier: hot decoded blocks of the software CPU compiled by Cranelift.
//!
//! [`JitTier`] implements [`rx86_cpu::tier::CodeTier`]: the interpreter hands it a
//! [`rx86_cpu::tier::UnitPlan`] for each hot block, `translate` turns the plan into
//! Cranelift IR, Cranelift compiles it for the host, and the machine code is copied into
//! the [`arena::CodeArena`]. Compiled code has no relocations: the helpers it calls are
//! absolute addresses in the plan.

pub mod arena;
mod translate;

use arena::CodeArena;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use rx86_cpu::tier::{CodeTier, EnterFn, TierStats, UnitCode, UnitPlan};
use std::io::Write;
use std::time::Instant;

/// Code memory reserved by default (the arena starts over when it is full).
pub const DEFAULT_CODE_BYTES: usize = 32 << 20;

/// The Cranelift tier.
pub struct JitTier {
    isa: OwnedTargetIsa,
    ctx: Context,
    fctx: FunctionBuilderContext,
    arena: CodeArena,
    /// Holds the entry trampoline, apart from the units' arena (which starts over).
    _enter_code: CodeArena,
    enter: EnterFn,
    stats: TierStats,
    /// Where each unit's code is listed for `perf` (see [`JitTier::write_perf_map`]).
    perf_map: Option<std::fs::File>,
}

impl JitTier {
    /// A tier for this host with `code_bytes` of code memory.
    pub fn new(code_bytes: usize) -> Result<Self, String> {
        if !cfg!(target_arch = "x86_64") {
            // Other hosts need an instruction-cache flush after code is written, which
            // the arena does not do yet.
            return Err("the JIT tier runs on x86-64 hosts only; use --accel interp".into());
        }
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
        // The IR verifier costs a tenth of compile time; it guards the translator in
        // debug builds (the tests) and is left out of release builds.
        flags
            .set("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" })
            .map_err(|e| e.to_string())?;
        // Cranelift's tail calls (units chaining to units) need frame pointers.
        flags.set("preserve_frame_pointers", "true").map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("no Cranelift backend for this host: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let arena = CodeArena::new(code_bytes).map_err(|e| format!("cannot map code memory: {e}"))?;
        let mut ctx = Context::new();
        let mut fctx = FunctionBuilderContext::new();
        let mut enter_code = CodeArena::new(4096).map_err(|e| format!("cannot map code memory: {e}"))?;
        let enter = compile_enter(&*isa, &mut ctx, &mut fctx, &mut enter_code)?;
        Ok(JitTier {
            isa,
            ctx,
            fctx,
            arena,
            _enter_code: enter_code,
            enter,
            stats: TierStats::default(),
            perf_map: None,
        })
    }

    /// Lists every unit compiled from now on in `/tmp/perf-PID.map`, the file `perf
    /// report` reads to name code without symbols (as QEMU's `-perfmap` does): one line
    /// per unit, named by its guest RIP, so a profile shows which guest code is hot.
    pub fn write_perf_map(&mut self) -> std::io::Result<std::path::PathBuf> {
        let path = std::env::temp_dir().join(format!("perf-{}.map", std::process::id()));
        self.perf_map = Some(std::fs::File::create(&path)?);
        Ok(path)
    }

    fn compile_plan(&mut self, plan: &UnitPlan) -> Result<Option<UnitCode>, String> {
        let mut func = Function::new();
        translate::translate(plan, &mut func, &mut self.fctx, &*self.isa);
        self.ctx.clear();
        self.ctx.func = func;
        let code = self.ctx.compile(&*self.isa, &mut ControlPlane::default()).map_err(|e| format!("{:?}", e.inner))?;
        if !code.buffer.relocs().is_empty() {
            return Err("compiled code needs relocations".into());
        }
        let bytes = code.code_buffer().to_vec();
        let Some((addr, generation)) = self.arena.insert(&bytes).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if let Some(map) = self.perf_map.as_mut() {
            let line =
                format!("{:x} {:x} rx86 unit {:#x}/{}\n", addr as usize, bytes.len(), plan.insns[0].ip, generation);
            if let Err(e) = map.write_all(line.as_bytes()) {
                log::warn!("perf map: {e}; no longer written");
                self.perf_map = None;
            }
        }
        Ok(Some(UnitCode { entry: addr, enter: self.enter, generation }))
    }
}

impl CodeTier for JitTier {
    fn compile(&mut self, plan: &UnitPlan) -> Option<UnitCode> {
        let start = Instant::now();
        let result = self.compile_plan(plan);
        self.stats.compile_ns += start.elapsed().as_nanos() as u64;
        match result {
            Ok(Some(code)) => {
                self.stats.units += 1;
                Some(code)
            }
            Ok(None) => {
                self.stats.failures += 1;
                None
            }
            Err(e) => {
                log::warn!("JIT: the block at {:#x} stays interpreted: {e}", plan.insns[0].ip);
                self.stats.failures += 1;
                None
            }
        }
    }

    fn generation(&self) -> u64 {
        self.arena.generation()
    }

    fn stats(&self) -> TierStats {
        TierStats {
            code_bytes: self.arena.used() as u64,
            code_capacity: self.arena.capacity() as u64,
            flushes: self.arena.flushes(),
            ..self.stats.clone()
        }
    }
}

/// Compiles the way in from Rust: `enter(frame, entry)` calls the unit at `entry` in the
/// units' calling convention.
fn compile_enter(
    isa: &dyn TargetIsa,
    ctx: &mut Context,
    fctx: &mut FunctionBuilderContext,
    arena: &mut CodeArena,
) -> Result<EnterFn, String> {
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I64)]);
    let mut func = Function::with_name_signature(Default::default(), sig);
    let mut b = cranelift_frontend::FunctionBuilder::new(&mut func, fctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    let (frame, entry) = (b.block_params(block)[0], b.block_params(block)[1]);
    let unit = b.import_signature(translate::unit_signature());
    b.ins().call_indirect(unit, entry, &[frame]);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(isa.frontend_config());
    ctx.clear();
    ctx.func = func;
    let code = ctx.compile(isa, &mut ControlPlane::default()).map_err(|e| format!("{:?}", e.inner))?;
    let bytes = code.code_buffer().to_vec();
    let (addr, _) = arena.insert(&bytes).map_err(|e| e.to_string())?.ok_or("the entry does not fit")?;
    // SAFETY: `addr` is the start of the function just compiled, in the host's default
    // (C) calling convention, taking two pointer-sized arguments and returning nothing,
    // which is `EnterFn`; it stays in `arena`, which the tier keeps.
    Ok(unsafe { std::mem::transmute::<*const u8, EnterFn>(addr) })
}
