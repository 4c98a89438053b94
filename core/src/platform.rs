//! What a CPU engine (interpreter, JIT or KVM) needs from the board, and the power
//! requests devices make of the machine.

use crate::bus::Bus;
use crate::memory::GuestRam;
use crate::phys::{PhysMemory, Region, RegionKind};
use std::sync::{Arc, Mutex};

/// The board as a CPU sees it: physical memory, port I/O, interrupt pins and the
/// MSRs that belong to platform devices (the local APIC).
pub trait Platform {
    /// The physical address space.
    fn memory(&self) -> &PhysMemory;
    /// IN of `size` (1, 2 or 4) bytes.
    fn io_read(&self, port: u16, size: u8) -> u32;
    /// OUT of `size` (1, 2 or 4) bytes.
    fn io_write(&self, port: u16, size: u8, value: u32);
    /// True when a maskable interrupt is waiting (the INTR pin, taken when IF=1).
    fn interrupt_pending(&self) -> bool {
        false
    }
    /// The interrupt acknowledge cycle: the vector to deliver, or `None` if the
    /// request went away.
    fn acknowledge_interrupt(&self) -> Option<u8> {
        None
    }
    /// Takes a pending NMI.
    fn take_nmi(&self) -> bool {
        false
    }
    /// True when the machine wants the engine to return at the next instruction
    /// boundary (a device requested reset, power-off or exit, or a debugger stopped).
    /// Engines check it after port and MMIO accesses.
    fn exit_requested(&self) -> bool {
        false
    }
    /// The earliest deadline of the board's device timers, in clock nanoseconds. Engines
    /// ask after port and MMIO accesses, so that a timer the guest just armed for earlier
    /// than the running slice's end fires at its time.
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    /// RDMSR of an MSR owned by a platform device; `None` when the platform has no
    /// such MSR (the CPU then handles it or raises #GP).
    fn msr_read(&self, _msr: u32) -> Option<u64> {
        None
    }
    /// WRMSR of a platform-owned MSR; `false` when the platform has no such MSR.
    fn msr_write(&self, _msr: u32, _value: u64) -> bool {
        false
    }
}

/// Machine-level requests from devices and firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerEvent {
    /// Reset the machine (8042 pulse, port 0x92/0xCF9, triple fault).
    Reset,
    /// Power off (ACPI S5).
    PowerOff,
    /// `isa-debug-exit`: end rx86 with this process exit status.
    DebugExit(i32),
}

/// The channel through which devices ask the machine to reset, power off or exit.
/// The first request wins until the machine takes it.
#[derive(Debug, Clone, Default)]
pub struct PowerControl(Arc<Mutex<Option<PowerEvent>>>);

impl PowerControl {
    /// A control with nothing requested.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests `event` unless another request is already waiting.
    pub fn request(&self, event: PowerEvent) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(event);
        }
    }

    /// Peeks at the waiting request.
    pub fn pending(&self) -> Option<PowerEvent> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the waiting request.
    pub fn take(&self) -> Option<PowerEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A platform of flat RAM and a port bus, with no interrupt sources: for CPU tests,
/// conformance runners and small harnesses.
pub struct BasicPlatform {
    /// Physical memory: RAM from address 0.
    pub memory: PhysMemory,
    /// Port bus; empty ports read all-ones.
    pub ports: Bus,
}

impl BasicPlatform {
    /// `ram_bytes` of RAM at physical 0 (a multiple of 4 KiB).
    pub fn new(ram_bytes: u64) -> Result<Self, crate::memory::MemoryError> {
        let ram = Arc::new(GuestRam::new(ram_bytes)?);
        let mut memory = PhysMemory::new(ram);
        memory
            .add_region(Region { base: 0, len: ram_bytes, kind: RegionKind::Ram { offset: 0 }, name: "ram".into() })
            .expect("first region cannot overlap");
        Ok(BasicPlatform { memory, ports: Bus::new_port() })
    }
}

impl Platform for BasicPlatform {
    fn memory(&self) -> &PhysMemory {
        &self.memory
    }
    fn io_read(&self, port: u16, size: u8) -> u32 {
        self.ports.read(port as u64, size) as u32
    }
    fn io_write(&self, port: u16, size: u8, value: u32) {
        self.ports.write(port as u64, size, value as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_power_request_wins() {
        let p = PowerControl::new();
        p.request(PowerEvent::DebugExit(3));
        p.request(PowerEvent::Reset);
        assert_eq!(p.take(), Some(PowerEvent::DebugExit(3)));
        assert_eq!(p.take(), None);
    }

    #[test]
    fn basic_platform_reads_ram_and_open_bus() {
        let p = BasicPlatform::new(0x10000).unwrap();
        p.memory().write(0x100, &[1, 2]);
        let mut b = [0; 2];
        p.memory().read(0x100, &mut b);
        assert_eq!(b, [1, 2]);
        assert_eq!(p.io_read(0x60, 1), 0xff);
    }
}
