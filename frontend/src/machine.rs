//! The machine loop: runs the engine until the next device deadline, fires due
//! device timers, feeds serial input, and acts on power requests.

use crate::config::{Accel, ClockMode, CpuChoice, MachineConfig};
use crate::error::RunError;
use crate::keys::KeyFeeder;
use crate::monitor::MonitorConsole;
use crate::pc::{HostAttachments, Pc};
use crate::stop::{ExternalStop, StopConditions, StopSignals};
use rx86_core::platform::PowerEvent;
use rx86_core::time::Clock;
use rx86_cpu::debug::{DebugStop, EngineDebug};
use rx86_cpu::engine::{Engine, Exit};
use rx86_cpu::interp::{Interpreter, DEFAULT_NS_PER_INSN};
use std::time::Duration;

/// Longest stretch of machine time the engine runs before the loop looks at input and
/// power requests again.
const SLICE_NS: u64 = 10_000_000;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest powered off (ACPI S5).
    PowerOff,
    /// The guest wrote to `isa-debug-exit`; the value is the process exit status.
    DebugExit(i32),
    /// The guest reset the machine and `--no-reboot` was given.
    Reset,
    /// The guest triple-faulted and `--no-reboot` was given; the text is the diagnosis.
    TripleFault(String),
    /// The guest halted with interrupts disabled and nothing can wake it.
    Hung(String),
    /// gdb's `kill` command, or the monitor's `quit`, ended the run.
    Killed,
    /// The `--stop-at` time came, or the screen showed its text.
    Stopped,
    /// A termination signal or the `--timeout` limit ended the run.
    External(ExternalStop),
}

impl Outcome {
    /// The process exit status for this outcome: 0 for power-off, a reset under
    /// `--no-reboot` (as QEMU) and `--stop-at`, the guest's value for debug-exit, 3 for a triple fault
    /// or a dead halt, 128 + the signal's number for a termination signal (as a shell
    /// reports a process the signal killed), 124 for `--timeout` (as coreutils' `timeout`).
    pub fn exit_status(&self) -> i32 {
        match self {
            Outcome::PowerOff | Outcome::Reset | Outcome::Killed | Outcome::Stopped => 0,
            Outcome::DebugExit(code) => *code,
            Outcome::TripleFault(_) | Outcome::Hung(_) => 3,
            Outcome::External(ExternalStop::Signal(signal)) => 128 + signal,
            Outcome::External(ExternalStop::Timeout(_)) => TIMEOUT_STATUS,
        }
    }
}

/// Exit status when `--timeout` ends the run.
pub const TIMEOUT_STATUS: i32 = 124;

/// How long an idle guest on the virtual clock waits for serial input before the loop looks
/// at its stop conditions again.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// A PC and the engine running it.
pub struct Machine {
    config: MachineConfig,
    clock: Clock,
    // Field order matters: the engine (which may hold the RAM registered with KVM)
    // drops before the board that owns the RAM.
    engine: Box<dyn Engine>,
    pc: Pc,
    /// Why the engine last stopped for a debugger, until the debugger takes it.
    debug_stop: Option<DebugStop>,
    keys: Option<KeyFeeder>,
    /// Triple faults so far (each followed by a reset unless `--no-reboot`).
    triple_faults: u64,
    /// What ends the run from outside the guest.
    stop: StopConditions,
    /// The monitor on its character device (`--monitor`, `mon:`), run between turns.
    monitor: Option<MonitorConsole>,
    /// The texts the VGA's text watch is armed for (`--stop-at @TEXT`, the next `--keys`
    /// `@TEXT` event).
    watching: Vec<String>,
}

/// Refuses a `--cpu` the engine cannot honour: `host` on the interpreter, a named model
/// under KVM (whose CPUID is the host's filtered to the board; filtering it to a model is
/// not implemented). `max` under KVM is QEMU's habit and means the host's.
fn check_cpu_choice(config: &MachineConfig) -> Result<(), RunError> {
    match (config.accel, config.cpu) {
        (Accel::Kvm, CpuChoice::Model(rx86_cpu::interp::model::CpuModel::Max)) => Ok(()),
        (Accel::Interp | Accel::Jit, CpuChoice::Host) => {
            Err(RunError::Accel { accel: "interp", reason: "--cpu host needs --accel kvm".into() })
        }
        (Accel::Kvm, CpuChoice::Model(model)) => Err(RunError::Accel {
            accel: "kvm",
            reason: format!(
                "--cpu {} is for the interpreter; under KVM the guest sees the host's CPUID filtered to the \
                 board (--cpu host)",
                model.name()
            ),
        }),
        _ => Ok(()),
    }
}

fn make_engine(config: &MachineConfig, pc: &Pc, clock: &Clock) -> Result<Box<dyn Engine>, RunError> {
    match config.accel {
        Accel::Kvm => {
            #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
            {
                rx86_cpu::kvm::probe().map_err(|reason| RunError::Accel { accel: "kvm", reason })?;
                if rx86_cpu::kvm::kvm_module() == Some("kvm_pvm") {
                    log::warn!(
                        "this host's KVM is nested paravirtual (kvm_pvm): protected-mode code without 4-level \
                         paging goes through KVM's instruction emulator, and unmodified Linux kernels stall there \
                         (as under QEMU); use --accel interp for them"
                    );
                }
                let engine = rx86_cpu::kvm::KvmEngine::new(pc.memory(), clock)
                    .map_err(|e| RunError::Accel { accel: "kvm", reason: e.to_string() })?;
                Ok(Box::new(engine))
            }
            #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
            {
                let _ = (pc, clock);
                Err(RunError::Accel { accel: "kvm", reason: rx86_cpu::kvm::probe().unwrap_err() })
            }
        }
        // Virtual time advances a fixed amount per instruction retired: runs repeat exactly.
        Accel::Interp | Accel::Jit => {
            let mut cpu = Interpreter::new(config.icount_shift.map_or(DEFAULT_NS_PER_INSN, |shift| 1 << shift));
            if let Some(n) = config.max_block {
                cpu.set_max_block(n);
            }
            if let CpuChoice::Model(model) = config.cpu {
                cpu.set_cpu_model(model);
            }
            if config.accel == Accel::Jit {
                match rx86_jit::JitTier::new(rx86_jit::DEFAULT_CODE_BYTES) {
                    Ok(mut tier) => {
                        if config.jit.perf_map {
                            let path = tier.write_perf_map().map_err(|e| RunError::Accel {
                                accel: "jit",
                                reason: format!("--perfmap: cannot write the perf map: {e}"),
                            })?;
                            log::info!("compiled code is listed in {}", path.display());
                        }
                        let threshold = config.jit.threshold.unwrap_or(rx86_cpu::interp::DEFAULT_HOT_THRESHOLD);
                        cpu.set_tier(Box::new(tier), threshold, config.jit.check);
                    }
                    Err(reason) if config.jit.fallback => {
                        log::warn!("the JIT tier cannot start ({reason}): running on the interpreter alone");
                    }
                    Err(reason) => return Err(RunError::Accel { accel: "jit", reason }),
                }
            }
            Ok(Box::new(cpu))
        }
    }
}

impl Machine {
    /// Builds the board, loads the guest and creates the engine.
    pub fn new(config: MachineConfig) -> Result<Self, RunError> {
        let clock = match config.clock_mode() {
            ClockMode::Virtual => Clock::new_virtual(),
            ClockMode::Host => Clock::new_host(),
        };
        check_cpu_choice(&config)?;
        if config.icount_shift.is_some() && (config.accel == Accel::Kvm || !clock.is_virtual()) {
            return Err(RunError::Accel {
                accel: match config.accel {
                    Accel::Kvm => "kvm",
                    Accel::Jit => "jit",
                    Accel::Interp => "interp",
                },
                reason: "--icount sets the virtual clock's rate: it needs the interpreter on --clock virtual".into(),
            });
        }
        if config.accel == Accel::Kvm && clock.is_virtual() {
            return Err(RunError::Accel { accel: "kvm", reason: "KVM runs on host time; drop --clock virtual".into() });
        }
        let mut host = HostAttachments::open(&config)?;
        let monitor = host.monitor.take().map(MonitorConsole::new);
        let (pc, engine) = Self::build(&config, &clock, host)?;
        let keys = config.keys.as_ref().map(|script| KeyFeeder::new(script, pc.timers()));
        let stop = StopConditions::with_timeout(config.timeout);
        Ok(Machine {
            config,
            clock,
            engine,
            pc,
            debug_stop: None,
            keys,
            triple_faults: 0,
            stop,
            monitor,
            watching: Vec::new(),
        })
    }

    /// The board on `host`'s drives and input, and an engine at its entry state.
    fn build(config: &MachineConfig, clock: &Clock, host: HostAttachments) -> Result<(Pc, Box<dyn Engine>), RunError> {
        let pc = Pc::new(config, clock, host)?;
        let mut engine = make_engine(config, &pc, clock)?;
        engine.load_entry_state(pc.entry_state()).map_err(|e| RunError::Engine(e.to_string()))?;
        log::info!("machine ready: {} engine, {} MiB RAM", engine.name(), config.ram_bytes >> 20);
        Ok((pc, engine))
    }

    /// A signal or the `--timeout` limit asks the run to end (checked by [`Machine::step`];
    /// for loops that wait without stepping, such as the gdb stub before gdb connects).
    pub fn external_stop(&self) -> Option<ExternalStop> {
        self.stop.check()
    }

    /// Ends the run (as [`Outcome::External`]) when one of `signals` arrives.
    pub fn stop_on_signals(&mut self, signals: StopSignals) {
        self.stop.set_signals(signals);
    }

    /// The board.
    pub fn pc(&self) -> &Pc {
        &self.pc
    }

    /// The machine clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Instructions the engine has retired, where it counts them.
    pub fn instructions_retired(&self) -> Option<u64> {
        self.engine.instructions_retired()
    }

    /// How the compiled tier was used, under `--accel jit`.
    pub fn tier_report(&self) -> Option<rx86_cpu::interp::TierReport> {
        self.engine.tier_report()
    }

    /// The engine's debugging interface (if it has one) and the board, for the gdb stub
    /// and the monitor.
    pub fn debug_parts(&mut self) -> (Option<&mut dyn EngineDebug>, &Pc) {
        (self.engine.debug(), &self.pc)
    }

    /// The engine's short name ("interp", "kvm").
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Takes the reason the engine last stopped for a debugger (breakpoint, watchpoint,
    /// single step).
    pub fn take_debug_stop(&mut self) -> Option<DebugStop> {
        self.debug_stop.take()
    }

    /// A reset: the board and the engine are built again from the configuration, as at
    /// power-on, but what lives outside the guest carries on: the clock (guest time does
    /// not go back), the drives (a `--snapshot` overlay keeps its writes), typed input, the
    /// scripted keys, and the debugger's breakpoints, watchpoints and trace.
    fn rebuild(&mut self) -> Result<(), RunError> {
        log::info!("machine reset");
        let setup = self.engine.debug().map(|d| d.take_setup());
        let host = self.pc.detach_host();
        let (pc, engine) = Self::build(&self.config, &self.clock, host)?;
        // The old engine goes before the old board (it may hold the board's RAM).
        self.engine = engine;
        self.pc = pc;
        if let (Some(setup), Some(debug)) = (setup, self.engine.debug()) {
            setup.install(debug);
        }
        if let Some(keys) = &mut self.keys {
            keys.move_to(self.pc.timers());
        }
        self.debug_stop = None;
        self.watching.clear();
        Ok(())
    }

    /// Arms the VGA's text watch for the texts awaited now, so that a store that may show
    /// one ends the engine's run at that instruction and the screen is read right then,
    /// not at the end of the slice (when the text may have scrolled away).
    fn watch_awaited_texts(&mut self) {
        let stop_text = self.config.stop_at.as_ref().and_then(|s| s.awaited_text());
        let key_text = self.keys.as_ref().and_then(|k| k.awaited_text());
        let wanted: Vec<&str> = stop_text.into_iter().chain(key_text).collect();
        if wanted.iter().copied().ne(self.watching.iter().map(String::as_str)) {
            self.pc.vga().lock().unwrap_or_else(|e| e.into_inner()).text_watch_mut().arm(wanted.iter().copied());
            self.watching = wanted.into_iter().map(str::to_string).collect();
        }
    }

    /// Runs until the guest powers off, exits, or (under `--no-reboot`) resets.
    pub fn run(&mut self) -> Result<Outcome, RunError> {
        loop {
            if let Some(outcome) = self.step()? {
                return Ok(outcome);
            }
        }
    }

    /// Runs the command lines that reached the monitor on its character device (between
    /// two turns of the loop, and while a debugger holds the guest stopped); true when the
    /// user asked to end rx86.
    pub fn poll_monitor(&mut self) -> bool {
        let Some(mut monitor) = self.monitor.take() else {
            return false;
        };
        let quit = monitor.poll(self);
        self.monitor = Some(monitor);
        quit
    }

    /// One turn of the loop; `Some` when the run is over.
    pub fn step(&mut self) -> Result<Option<Outcome>, RunError> {
        if let Some(stop) = self.stop.check() {
            return Ok(Some(Outcome::External(stop)));
        }
        if self.poll_monitor() {
            return Ok(Some(Outcome::Killed));
        }
        let now = self.clock.now_ns();
        let next_event = self.pc.next_deadline();
        let deadline = next_event.unwrap_or(u64::MAX).min(now + SLICE_NS);
        self.watch_awaited_texts();
        let exit = self.engine.run(&self.pc, &self.clock, deadline).map_err(|e| RunError::Engine(e.to_string()))?;
        // The text conditions below read the screen after every turn, this one included.
        self.pc.take_screen_hit();
        match exit {
            Exit::Deadline => {}
            Exit::Halted => {
                if let Some(outcome) = self.idle()? {
                    return Ok(Some(outcome));
                }
            }
            Exit::Shutdown(diagnosis) => {
                if self.config.no_reboot {
                    return Ok(Some(Outcome::TripleFault(diagnosis)));
                }
                self.triple_faults += 1;
                self.report_triple_fault(&diagnosis);
                self.rebuild()?;
            }
            Exit::Unsupported(what) => return Err(RunError::Unsupported(what)),
            Exit::Debug(stop) => {
                self.debug_stop = Some(stop);
                return Ok(None);
            }
        }
        self.pc.fire_due_timers(self.clock.now_ns());
        if let Some(keys) = &mut self.keys {
            keys.feed(self.clock.now_ns(), self.pc.keyboard_controller(), self.pc.vga());
        }
        if self.config.stop_at.as_ref().is_some_and(|s| s.reached(self.clock.now_ns(), self.pc.vga())) {
            return Ok(Some(Outcome::Stopped));
        }
        self.pc.poll_input();
        match self.pc.power().take() {
            Some(PowerEvent::PowerOff) => Ok(Some(Outcome::PowerOff)),
            Some(PowerEvent::DebugExit(code)) => Ok(Some(Outcome::DebugExit(code))),
            Some(PowerEvent::Reset) if self.config.no_reboot => Ok(Some(Outcome::Reset)),
            Some(PowerEvent::Reset) => {
                self.rebuild()?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Logs a triple fault that resets the machine: the multi-line diagnosis the first time,
    /// then (a guest that faults at every boot would flood the terminal) one line with the
    /// count, at the 2nd, 4th, 8th... fault.
    fn report_triple_fault(&self, diagnosis: &str) {
        match self.triple_faults {
            1 => log::error!("guest triple fault, the machine resets: {diagnosis}"),
            n if n.is_power_of_two() => {
                log::error!("guest triple fault again after a reset: {n} so far (the first one's diagnosis is above)")
            }
            _ => {}
        }
    }

    /// The CPU is halted: move time to the next event (virtual clock) or wait for it
    /// (host clock). A halt that nothing can end is reported instead of hanging.
    fn idle(&mut self) -> Result<Option<Outcome>, RunError> {
        let interrupts_on = self.engine.registers().rflags & (1 << 9) != 0;
        let next = self.pc.next_deadline();
        if self.pc.power().pending().is_some() {
            return Ok(None);
        }
        if !interrupts_on && !self.pc.nmi_possible() {
            let regs = self.engine.registers();
            return Ok(Some(Outcome::Hung(format!("the guest executed HLT with interrupts disabled; {regs}"))));
        }
        if self.clock.is_virtual() {
            if self.pc.wait_for_network(next.map(|d| d.saturating_sub(self.clock.now_ns()))) {
                return Ok(None);
            }
            match next {
                Some(deadline) => self.clock.advance_to(deadline),
                None if self.pc.has_input_source() || self.monitor.as_ref().is_some_and(MonitorConsole::has_input) => {
                    self.pc.wait_for_input_timeout(INPUT_POLL)
                }
                None => {
                    let regs = self.engine.registers();
                    return Ok(Some(Outcome::Hung(format!(
                        "the guest is halted and no device will ever interrupt it; {regs}"
                    ))));
                }
            }
        } else {
            let now = self.clock.now_ns();
            let wait = next.map_or(SLICE_NS, |d| d.saturating_sub(now)).min(SLICE_NS);
            if wait > 0 {
                self.pc.wait_for_input_timeout(Duration::from_nanos(wait));
            }
        }
        Ok(None)
    }
}
