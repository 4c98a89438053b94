//! The KVM vCPU and its run loop.

use super::debug::GuestDebug;
use super::kick::Kicker;
use super::shadow::ShadowSlots;
use super::{cpuid, regs};
use crate::debug::EngineDebug;
use crate::engine::{Engine, EngineError, Exit, RegisterSummary};
use kvm_bindings::{kvm_run, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES, KVM_MEM_READONLY};
use kvm_ioctls::{Cap, Kvm, VcpuExit, VcpuFd, VmFd};
use rx86_core::entry::EntryState;
use rx86_core::phys::{PhysMemory, RegionKind};
use rx86_core::platform::Platform;
use rx86_core::shadow::SEGMENT_COUNT;
use rx86_core::time::Clock;
use std::os::fd::AsRawFd;

/// `KVM_INTERRUPT`: `_IOW(KVMIO, 0x86, struct kvm_interrupt)`.
const KVM_INTERRUPT: libc::c_ulong = 0x4004_ae86;
/// Where the VMX real-mode TSS lives (three pages just below the BIOS alias).
const TSS_ADDRESS: usize = 0xfffb_d000;

/// Checks that `/dev/kvm` can run an rx86 guest; returns a one-line description of
/// the host's KVM, or why it cannot be used.
pub fn probe() -> Result<String, String> {
    let kvm = open_kvm()?;
    let module = super::kvm_module().unwrap_or("unknown");
    Ok(format!("KVM API {} ({module})", kvm.get_api_version()))
}

fn open_kvm() -> Result<Kvm, String> {
    let kvm = Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT => "/dev/kvm does not exist (no KVM on this host; use --accel interp)".to_string(),
        libc::EACCES | libc::EPERM => {
            "/dev/kvm is not accessible (permission denied; add yourself to the kvm group or use --accel interp)"
                .to_string()
        }
        _ => format!("cannot open /dev/kvm: {e}"),
    })?;
    if kvm.get_api_version() != 12 {
        return Err(format!("/dev/kvm has unsupported API version {}", kvm.get_api_version()));
    }
    if !kvm.check_extension(Cap::UserMemory) {
        return Err("/dev/kvm lacks KVM_CAP_USER_MEMORY".into());
    }
    Ok(kvm)
}

/// One vCPU running on KVM.
pub struct KvmEngine {
    _kvm: Kvm,
    vm: VmFd,
    /// The shadow segments' slots, when the address map has shadow RAM.
    shadow: Option<ShadowSlots>,
    pub(super) vcpu: VcpuFd,
    kicker: Kicker,
    run_ptr: *mut kvm_run,
    /// Breakpoints, watchpoints and stepping a debugger asked for.
    pub(super) guest_debug: GuestDebug,
}

pub(super) fn host_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Host(format!("KVM {what} failed: {e}"))
}

impl KvmEngine {
    /// Creates a VM with `memory`'s RAM and ROM regions and one vCPU.
    ///
    /// The regions' host mappings must outlive the engine (they are the machine's).
    pub fn new(memory: &PhysMemory, clock: &Clock) -> Result<Self, EngineError> {
        let kvm = open_kvm().map_err(EngineError::Unavailable)?;
        let vm = kvm.create_vm().map_err(|e| EngineError::Unavailable(format!("cannot create a KVM VM: {e}")))?;
        if let Err(e) = vm.set_tss_address(TSS_ADDRESS) {
            log::debug!("KVM_SET_TSS_ADDR: {e} (not needed on this host)");
        }
        let readonly_ok = kvm.check_extension(Cap::ReadonlyMem);
        let mut slot = 0u32;
        let mut shadow = None;
        for region in memory.regions() {
            let (host, flags) = match &region.kind {
                RegionKind::Shadow { offset, rom, control } => {
                    // SAFETY: as for RAM below: the region lies inside guest RAM.
                    let ram = unsafe { memory.ram().host_base().add(*offset as usize) };
                    let slots = ShadowSlots::new(control.clone(), slot, ram, rom.host_base(), readonly_ok);
                    shadow = Some(slots);
                    slot += SEGMENT_COUNT as u32;
                    continue;
                }
                RegionKind::Ram { offset } => {
                    // SAFETY: `offset + len` lies inside guest RAM (checked when the region
                    // was added), so the pointer stays inside the mapping.
                    (unsafe { memory.ram().host_base().add(*offset as usize) }, 0)
                }
                RegionKind::Rom { data } => (data.host_base(), if readonly_ok { KVM_MEM_READONLY } else { 0 }),
                RegionKind::Mmio => continue,
            };
            let mr = kvm_userspace_memory_region {
                slot,
                flags,
                guest_phys_addr: region.base,
                memory_size: region.len,
                userspace_addr: host as u64,
            };
            // SAFETY: the host range is a live mapping owned by the machine, which keeps
            // it alive longer than this VM (the board drops the engine first).
            unsafe { vm.set_user_memory_region(mr) }
                .map_err(|e| host_err(&format!("memory slot {}", region.name), e))?;
            slot += 1;
        }
        let mut vcpu = vm.create_vcpu(0).map_err(|e| host_err("vCPU creation", e))?;
        let supported =
            kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(|e| host_err("GET_SUPPORTED_CPUID", e))?;
        let cpuid = cpuid::filter(&supported).map_err(EngineError::Host)?;
        vcpu.set_cpuid2(&cpuid).map_err(|e| host_err("SET_CPUID2", e))?;
        let run_ptr = vcpu.get_kvm_run() as *mut kvm_run;
        // SAFETY: run_ptr points at the vCPU's kvm_run mapping, which lives as long as
        // `vcpu`; the kicker is dropped before the vCPU (field order in the struct).
        let immediate_exit = unsafe { std::ptr::addr_of_mut!((*run_ptr).immediate_exit) };
        let kicker = Kicker::new(clock.clone(), immediate_exit).map_err(|e| host_err("deadline thread", e))?;
        if let Some(slots) = &mut shadow {
            slots.sync(&vm)?;
        }
        Ok(KvmEngine { _kvm: kvm, vm, shadow, vcpu, kicker, run_ptr, guest_debug: GuestDebug::default() })
    }

    fn run_struct(&mut self) -> &mut kvm_run {
        // SAFETY: the mapping lives as long as the vCPU; we hold `&mut self`, so no other
        // reference into it exists while this one is used.
        unsafe { &mut *self.run_ptr }
    }

    fn inject_interrupts(&mut self, platform: &dyn Platform) -> Result<(), EngineError> {
        if platform.take_nmi() {
            self.vcpu.nmi().map_err(|e| host_err("NMI injection", e))?;
        }
        let pending = platform.interrupt_pending();
        let run = self.run_struct();
        let can_inject = run.ready_for_interrupt_injection != 0 && run.if_flag != 0;
        if pending && can_inject {
            run.request_interrupt_window = 0;
            if let Some(vector) = platform.acknowledge_interrupt() {
                let irq = kvm_bindings::kvm_interrupt { irq: vector as u32 };
                // SAFETY: KVM_INTERRUPT on a vCPU fd reads one kvm_interrupt struct.
                let ret = unsafe { libc::ioctl(self.vcpu.as_raw_fd(), KVM_INTERRUPT as _, &irq) };
                if ret < 0 {
                    return Err(host_err("KVM_INTERRUPT", std::io::Error::last_os_error()));
                }
            }
        } else {
            run.request_interrupt_window = pending as u8;
        }
        Ok(())
    }

    fn diagnose(&self, what: &str) -> String {
        format!("{what}; registers: {}", Engine::registers(self))
    }

    fn run_loop(&mut self, platform: &dyn Platform, clock: &Clock, deadline_ns: u64) -> Result<Exit, EngineError> {
        loop {
            if clock.now_ns() >= deadline_ns || platform.exit_requested() {
                return Ok(Exit::Deadline);
            }
            self.inject_interrupts(platform)?;
            if let Some(slots) = &mut self.shadow {
                slots.sync(&self.vm)?;
            }
            let run_ptr = self.run_ptr;
            // SAFETY: read only for a KVM_EXIT_IO exit, where `io` is the active union
            // field; the raw read does not overlap the data slice KVM hands out.
            let io_size = || (unsafe { (*run_ptr).__bindgen_anon_1.io.size } as usize).clamp(1, 4);
            match self.vcpu.run() {
                Ok(VcpuExit::IoIn(port, data)) => {
                    let size = io_size();
                    for chunk in data.chunks_mut(size) {
                        let v = platform.io_read(port, size as u8);
                        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
                    }
                }
                Ok(VcpuExit::IoOut(port, data)) => {
                    let size = io_size();
                    for chunk in data.chunks(size) {
                        let mut b = [0u8; 4];
                        b[..chunk.len()].copy_from_slice(chunk);
                        platform.io_write(port, size as u8, u32::from_le_bytes(b));
                    }
                }
                Ok(VcpuExit::MmioRead(addr, data)) => platform.memory().read(addr, data),
                Ok(VcpuExit::MmioWrite(addr, data)) => platform.memory().write(addr, data),
                Ok(VcpuExit::Hlt) => {
                    if !platform.interrupt_pending() {
                        return Ok(Exit::Halted);
                    }
                }
                Ok(VcpuExit::IrqWindowOpen) | Ok(VcpuExit::Intr) => {}
                Ok(VcpuExit::Debug(arch)) => match self.debug_stop(&arch) {
                    Some(stop) => return Ok(Exit::Debug(stop)),
                    None => log::warn!("KVM debug exit that no debugger request explains (DR6 {:#x})", arch.dr6),
                },
                Ok(VcpuExit::Shutdown) => {
                    return Ok(Exit::Shutdown(self.diagnose("triple fault (KVM_EXIT_SHUTDOWN)")));
                }
                Ok(VcpuExit::FailEntry(reason, cpu)) => {
                    return Err(EngineError::Host(self.diagnose(&format!(
                        "KVM could not enter the guest (hardware reason {reason:#x}, cpu {cpu})"
                    ))));
                }
                Ok(VcpuExit::InternalError) => {
                    // SAFETY: KVM_EXIT_INTERNAL_ERROR makes `internal` the active field.
                    let sub = unsafe { self.run_struct().__bindgen_anon_1.internal.suberror };
                    return Err(EngineError::Host(self.diagnose(&format!("KVM internal error (suberror {sub})"))));
                }
                Ok(VcpuExit::SystemEvent(kind, _)) => {
                    return Ok(Exit::Shutdown(self.diagnose(&format!("KVM system event {kind}"))));
                }
                Ok(other) => {
                    let what = format!("unhandled KVM exit {other:?}");
                    return Ok(Exit::Unsupported(self.diagnose(&what)));
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => self.kicker.acknowledge(),
                Err(e) => return Err(host_err("KVM_RUN", e)),
            }
        }
    }
}

impl Engine for KvmEngine {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn load_entry_state(&mut self, state: &EntryState) -> Result<(), EngineError> {
        let mut sregs = self.vcpu.get_sregs().map_err(|e| host_err("GET_SREGS", e))?;
        regs::apply_sregs(&mut sregs, state);
        self.vcpu.set_sregs(&sregs).map_err(|e| host_err("SET_SREGS", e))?;
        self.vcpu.set_regs(&regs::regs_from_entry(state)).map_err(|e| host_err("SET_REGS", e))?;
        Ok(())
    }

    fn run(&mut self, platform: &dyn Platform, clock: &Clock, deadline_ns: u64) -> Result<Exit, EngineError> {
        self.kicker.arm(deadline_ns);
        let result = self.run_loop(platform, clock, deadline_ns);
        self.kicker.disarm();
        result
    }

    fn debug(&mut self) -> Option<&mut dyn EngineDebug> {
        Some(self)
    }

    fn registers(&self) -> RegisterSummary {
        match (self.vcpu.get_regs(), self.vcpu.get_sregs()) {
            (Ok(r), Ok(s)) => regs::summary(&r, &s),
            _ => RegisterSummary::default(),
        }
    }
}
