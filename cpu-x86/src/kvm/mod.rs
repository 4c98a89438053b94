//! The KVM engine: runs the guest on the host CPU through `/dev/kvm`.
//!
//! Guest RAM is registered from the very mapping the interpreter uses; port and MMIO
//! exits go to the same buses; interrupts come from rx86's own PIC/IOAPIC/local APIC
//! models and are injected with `KVM_INTERRUPT` when the guest can take them (no
//! in-kernel irqchip). A deadline thread ([`kick`]) ends `KVM_RUN` when the machine's
//! next device event is due. [`debug`] drives `KVM_SET_GUEST_DEBUG` for the gdb stub.
//! [`shadow`] keeps the shadow-RAM segments' memory slots in step with the chipset.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod cpuid;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod debug;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod engine;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod kick;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod regs;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod shadow;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use engine::{probe, KvmEngine};

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests;

/// The kernel module behind `/dev/kvm`: `kvm_intel` or `kvm_amd` (hardware
/// virtualization) or `kvm_pvm` (nested paravirtual), if one is loaded.
pub fn kvm_module() -> Option<&'static str> {
    ["kvm_intel", "kvm_amd", "kvm_pvm"].into_iter().find(|m| std::path::Path::new(&format!("/sys/module/{m}")).exists())
}

/// True when `/dev/kvm` is backed by hardware virtualization (`kvm_intel`/`kvm_amd`):
/// the KVM that runs unmodified kernels and protected-mode code without emulation.
pub fn hardware_virtualization() -> bool {
    matches!(kvm_module(), Some("kvm_intel" | "kvm_amd"))
}

/// Says why KVM cannot be used on this host (always, off x86-64 Linux).
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub fn probe() -> Result<String, String> {
    Err("KVM is only available on x86-64 Linux hosts".into())
}
