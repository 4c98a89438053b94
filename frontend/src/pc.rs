//! The PC board: the whole machine on one page.
//!
//! Memory map (see `firmware::layout`): RAM with the VGA hole, the IOAPIC at
//! 0xFEC00000 and the local APIC at 0xFEE00000. Ports and ISA IRQs:
//!
//! | device                  | ports          | IRQ |
//! |-------------------------|----------------|-----|
//! | 8259A PIC master/slave  | 0x20, 0xA0     |     |
//! | ELCR                    | 0x4D0-0x4D1    |     |
//! | 8254 PIT                | 0x40-0x43      | 0   |
//! | port B                  | 0x61           |     |
//! | 8042 keyboard/mouse     | 0x60, 0x64     | 1, 12 |
//! | MC146818 RTC/CMOS       | 0x70-0x71      | 8   |
//! | fast A20 / reset        | 0x92           |     |
//! | COM1..COM4 (16550A)     | 0x3F8, 0x2F8, 0x3E8, 0x2E8 | 4, 3, 4, 3 |
//! | POST code               | 0x80           |     |
//! | debug console           | 0xE9           |     |
//! | PCI config mechanism #1 | 0xCF8, 0xCFC   |     |
//! | reset control           | 0xCF9          |     |
//! | ACPI PM block           | 0x600-0x62F    | 9 (SCI) |
//! | isa-debug-exit          | optional (`--debug-exit`) |  |

use crate::config::{Accel, MachineConfig};
use crate::error::RunError;
use crate::interrupts::{Interrupts, IoapicMmio, LapicMmio};
use crate::serial::{self, SerialIo};
use rx86_core::bus::{Bus, BusDevice};
use rx86_core::entry::EntryState;
use rx86_core::memory::GuestRam;
use rx86_core::phys::PhysMemory;
use rx86_core::platform::{Platform, PowerControl};
use rx86_core::time::{Clock, TimerId, TimerQueue};
use rx86_devices::acpi_pm::{AcpiPm, PM_BLOCK_LEN};
use rx86_devices::debug_ports::{DebugConsole, DebugExit, PostCode};
use rx86_devices::fast_a20::FastA20;
use rx86_devices::i8042::{I8042CommandPort, I8042DataPort, I8042};
use rx86_devices::ioapic::IoApic;
use rx86_devices::lapic::{LocalApic, LocalApicConfig};
use rx86_devices::pci::{config_mechanism_1, I440fxHostBridge, PciBus, Piix3IsaBridge};
use rx86_devices::pic::{ElcrPorts, PicChip, PicPair, PicPorts};
use rx86_devices::pit::Pit;
use rx86_devices::reset_control::ResetControl;
use rx86_devices::rtc::{Rtc, RtcDateTime};
use rx86_devices::system_port_b::SystemPortB;
use rx86_devices::uart::Uart16550;
use rx86_firmware::layout::{MemoryLayout, IOAPIC_BASE, LAPIC_BASE};
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The RTC's date at power-on under the virtual clock (deterministic runs).
const VIRTUAL_EPOCH: RtcDateTime = RtcDateTime { year: 2024, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
/// IOAPIC ID (the local APIC is ID 0).
const IOAPIC_ID: u8 = 1;
/// The four serial ports: base port and ISA IRQ.
const COM_PORTS: [(u16, u8); 4] = [(0x3f8, 4), (0x2f8, 3), (0x3e8, 4), (0x2e8, 3)];

type TimerHandler = Box<dyn Fn() + Send>;

fn shared<T: BusDevice + 'static>(dev: T) -> Arc<Mutex<T>> {
    Arc::new(Mutex::new(dev))
}

/// The assembled PC.
pub struct Pc {
    memory: PhysMemory,
    ports: Bus,
    timers: TimerQueue,
    timer_handlers: Vec<(TimerId, TimerHandler)>,
    power: PowerControl,
    interrupts: Arc<Interrupts>,
    entry: EntryState,
    com1: Arc<Mutex<Uart16550>>,
    serial_input: Option<Receiver<Vec<u8>>>,
    input_backlog: VecDeque<u8>,
    post_code: Arc<Mutex<PostCode>>,
    kbc: Arc<Mutex<I8042>>,
}

struct Builder<'a> {
    ports: Bus,
    timers: TimerQueue,
    handlers: Vec<(TimerId, TimerHandler)>,
    clock: &'a Clock,
}

impl Builder<'_> {
    fn map(&mut self, name: &str, base: u16, len: u16, dev: Arc<Mutex<dyn BusDevice>>) -> Result<(), RunError> {
        self.ports.insert(name, base.into(), len.into(), dev).map_err(|e| RunError::Board(e.to_string()))
    }

    /// A timer for `name`, whose due events call `on_timer`.
    fn timer(&mut self, name: &str, on_timer: impl Fn() + Send + 'static) -> rx86_core::time::Timer {
        let t = self.timers.new_timer(name);
        self.handlers.push((t.id(), Box::new(on_timer)));
        t
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pc {
    /// Builds the PC `config` describes and loads its guest.
    pub fn new(config: &MachineConfig, clock: &Clock) -> Result<Self, RunError> {
        let layout = MemoryLayout::new(config.ram_bytes).map_err(|e| RunError::Memory(e.to_string()))?;
        let ram = Arc::new(GuestRam::new(config.ram_bytes).map_err(|e| RunError::Memory(e.to_string()))?);
        let mut memory = PhysMemory::new(ram);
        for region in layout.regions() {
            memory.add_region(region).map_err(|e| RunError::Board(e.to_string()))?;
        }
        let power = PowerControl::new();
        let timers = TimerQueue::new();
        let mut b = Builder { ports: Bus::new_port(), timers: timers.clone(), handlers: Vec::new(), clock };

        // Interrupt controllers. The local APIC's timer handler needs the controller
        // itself, so its timer is created first and the handler added once it exists.
        let lapic_timer = b.timers.new_timer("lapic");
        let lapic_config = LocalApicConfig { x2apic: config.accel != Accel::Kvm, ..LocalApicConfig::default() };
        let interrupts = Interrupts::new(
            PicPair::new(),
            IoApic::new(IOAPIC_ID),
            LocalApic::new(lapic_config, clock.clone(), lapic_timer.clone()),
        );
        {
            let lapic = interrupts.lapic.clone();
            b.handlers.push((lapic_timer.id(), Box::new(move || lock(&lapic).on_timer())));
        }
        memory
            .add_mmio("lapic", LAPIC_BASE, 0x1000, shared(LapicMmio(interrupts.clone())))
            .map_err(|e| RunError::Board(e.to_string()))?;
        memory
            .add_mmio("ioapic", IOAPIC_BASE, 0x1000, shared(IoapicMmio(interrupts.clone())))
            .map_err(|e| RunError::Board(e.to_string()))?;
        b.map("pic-master", 0x20, 2, shared(PicPorts::new(interrupts.pic.clone(), PicChip::Master)))?;
        b.map("pic-slave", 0xa0, 2, shared(PicPorts::new(interrupts.pic.clone(), PicChip::Slave)))?;
        b.map("elcr", 0x4d0, 2, shared(ElcrPorts::new(interrupts.pic.clone())))?;

        // Timers and clocks.
        let pit = late_bound(
            &mut b,
            "pit",
            |timer, b| Pit::new(b.clock.clone(), timer, interrupts.isa_line(0)),
            |p| p.on_timer(),
        );
        b.map("pit", 0x40, 4, pit.clone())?;
        b.map("port-b", 0x61, 1, shared(SystemPortB::new(pit, clock.clone())))?;

        let rtc_start = if clock.is_virtual() { VIRTUAL_EPOCH } else { host_date() };
        let rtc = late_bound(
            &mut b,
            "rtc",
            |timer, b| Rtc::new(b.clock.clone(), timer, interrupts.isa_line(8), rtc_start),
            |r| r.on_timer(),
        );
        lock(&rtc).set_memory_layout(layout.low_end(), layout.high_ram_bytes());
        b.map("rtc", 0x70, 2, rtc)?;

        let acpi = late_bound(
            &mut b,
            "acpi-pm",
            |timer, b| AcpiPm::new(b.clock.clone(), timer, interrupts.isa_line(9), power.clone()),
            |a| a.on_timer(),
        );
        b.map("acpi-pm", 0x600, PM_BLOCK_LEN as u16, acpi)?;

        // Keyboard controller and A20.
        let a20 = memory.a20_gate();
        let kbc = Arc::new(Mutex::new(I8042::new(
            interrupts.isa_line(1),
            interrupts.isa_line(12),
            a20.clone(),
            power.clone(),
        )));
        b.map("i8042-data", 0x60, 1, shared(I8042DataPort(kbc.clone())))?;
        b.map("i8042-cmd", 0x64, 1, shared(I8042CommandPort(kbc.clone())))?;
        b.map("fast-a20", 0x92, 1, shared(FastA20::new(a20, power.clone())))?;

        // Serial ports: COM1 gets the configured backend, the others discard output.
        let SerialIo { output, input } = serial::open(&config.serial)?;
        let mut com1_output = Some(output);
        let mut com1 = None;
        for (i, &(base, irq)) in COM_PORTS.iter().enumerate() {
            let out = com1_output.take().unwrap_or_else(|| Box::new(std::io::sink()));
            let name = format!("com{}", i + 1);
            let uart = late_bound(
                &mut b,
                &name,
                |timer, b| Uart16550::new(interrupts.isa_line(irq), out, b.clock.clone(), timer),
                |u| u.on_timer(),
            );
            b.map(&name, base, 8, uart.clone())?;
            com1.get_or_insert(uart);
        }
        let com1 = com1.ok_or_else(|| RunError::Board("no COM1".into()))?;

        // PCI and the reset register inside its port range.
        let mut pci = PciBus::new();
        for (dev, func) in [(0u8, shared_pci(I440fxHostBridge::new())), (1, shared_pci(Piix3IsaBridge::new()))] {
            pci.insert(dev, 0, func).map_err(|e| RunError::Board(e.to_string()))?;
        }
        let (pci_address, pci_data) = config_mechanism_1(pci);
        b.map("pci-address", 0xcf8, 1, shared(pci_address))?;
        b.map("reset-control", 0xcf9, 1, shared(ResetControl::new(power.clone())))?;
        b.map("pci-data", 0xcfc, 4, shared(pci_data))?;

        // Debug ports.
        let post_code = shared(PostCode::new());
        b.map("post-code", 0x80, 1, post_code.clone())?;
        b.map("debug-console", 0xe9, 1, shared(DebugConsole::new(Box::new(std::io::stderr()))))?;
        if let Some(port) = config.debug_exit_port {
            b.map("isa-debug-exit", port, 2, shared(DebugExit::new(power.clone())))?;
        }

        // Firmware tables and the guest.
        let rsdp = rx86_firmware::acpi::build_acpi_tables(&memory, &layout, 1)
            .map_err(|e| RunError::Board(format!("ACPI tables: {e}")))?;
        let entry = load_guest(config, &memory, &layout, rsdp)?;

        Ok(Pc {
            memory,
            ports: b.ports,
            timers,
            timer_handlers: b.handlers,
            power,
            interrupts,
            entry,
            com1,
            serial_input: input,
            input_backlog: VecDeque::new(),
            post_code,
            kbc,
        })
    }

    /// Physical memory.
    pub fn memory(&self) -> &PhysMemory {
        &self.memory
    }

    /// The port bus (for device listings).
    pub fn ports(&self) -> &Bus {
        &self.ports
    }

    /// The state the CPU starts in.
    pub fn entry_state(&self) -> &EntryState {
        &self.entry
    }

    /// Device timers.
    pub fn timers(&self) -> &TimerQueue {
        &self.timers
    }

    /// Power requests from devices.
    pub fn power(&self) -> &PowerControl {
        &self.power
    }

    /// The interrupt controllers.
    pub fn interrupts(&self) -> &Arc<Interrupts> {
        &self.interrupts
    }

    /// The last POST code written to port 0x80.
    pub fn last_post_code(&self) -> Option<u8> {
        lock(&self.post_code).last()
    }

    /// The keyboard controller (for input from the frontend).
    pub fn keyboard_controller(&self) -> &Arc<Mutex<I8042>> {
        &self.kbc
    }

    /// Lets every device whose timer is due at `now` act.
    pub fn fire_due_timers(&self, now: u64) {
        for id in self.timers.take_due(now) {
            if let Some((_, handler)) = self.timer_handlers.iter().find(|(t, _)| *t == id) {
                handler();
            }
        }
    }

    /// No board device raises NMIs yet.
    pub fn nmi_possible(&self) -> bool {
        false
    }

    /// True while serial input may still arrive.
    pub fn has_input_source(&self) -> bool {
        self.serial_input.is_some() || !self.input_backlog.is_empty()
    }

    fn take_input(&mut self, chunk: Result<Vec<u8>, bool>) {
        match chunk {
            Ok(bytes) => self.input_backlog.extend(bytes),
            Err(closed) if closed => self.serial_input = None,
            Err(_) => {}
        }
    }

    /// Moves typed bytes into COM1 as far as its FIFO has room.
    pub fn poll_input(&mut self) {
        while let Some(rx) = &self.serial_input {
            let next = match rx.try_recv() {
                Ok(bytes) => Ok(bytes),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => Err(true),
            };
            self.take_input(next);
        }
        if self.input_backlog.is_empty() {
            return;
        }
        let mut uart = lock(&self.com1);
        let n = uart.rx_space().min(self.input_backlog.len());
        let bytes: Vec<u8> = self.input_backlog.drain(..n).collect();
        uart.receive(&bytes);
    }

    /// Blocks until serial input arrives or its source closes.
    pub fn wait_for_input(&mut self) {
        if let Some(rx) = &self.serial_input {
            let next = rx.recv().map_err(|_| true);
            self.take_input(next);
        }
        self.poll_input();
    }

    /// Waits at most `timeout` for serial input.
    pub fn wait_for_input_timeout(&mut self, timeout: Duration) {
        match &self.serial_input {
            Some(rx) => {
                let next = match rx.recv_timeout(timeout) {
                    Ok(b) => Ok(b),
                    Err(RecvTimeoutError::Timeout) => Err(false),
                    Err(RecvTimeoutError::Disconnected) => Err(true),
                };
                self.take_input(next);
            }
            None => std::thread::sleep(timeout),
        }
        self.poll_input();
    }
}

fn shared_pci<T: rx86_devices::pci::PciFunction + 'static>(f: T) -> rx86_devices::pci::SharedPciFunction {
    Arc::new(Mutex::new(f))
}

/// Builds a timed device whose timer handler needs the device itself: the timer is
/// created first, the device second, and the handler reaches it through a slot.
fn late_bound<T: Send + 'static>(
    b: &mut Builder<'_>,
    name: &str,
    make: impl FnOnce(rx86_core::time::Timer, &Builder<'_>) -> T,
    on_timer: fn(&mut T),
) -> Arc<Mutex<T>> {
    let slot: Arc<Mutex<Option<Arc<Mutex<T>>>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let timer = b.timer(name, move || {
        if let Some(dev) = lock(&s).as_ref() {
            on_timer(&mut lock(dev));
        }
    });
    let dev = Arc::new(Mutex::new(make(timer, b)));
    *lock(&slot) = Some(dev.clone());
    dev
}

fn host_date() -> RtcDateTime {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    RtcDateTime::from_unix_seconds(secs)
}

fn read_file(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, RunError> {
    std::fs::read(path).map_err(|source| RunError::ReadFile { what, path: path.into(), source })
}

fn load_guest(
    config: &MachineConfig,
    memory: &PhysMemory,
    layout: &MemoryLayout,
    rsdp: u64,
) -> Result<EntryState, RunError> {
    let Some(kernel_path) = &config.kernel else {
        return Err(RunError::NothingToBoot);
    };
    let kernel = read_file("kernel", kernel_path)?;
    let initrd = config.initrd.as_deref().map(|p| read_file("initrd", p)).transpose()?;
    let options = rx86_firmware::LoadOptions::default();
    let loaded =
        rx86_firmware::load_kernel(memory, layout, &kernel, initrd.as_deref(), &config.append, Some(rsdp), &options)
            .map_err(|e| RunError::Load(format!("{}: {e}", kernel_path.display())))?;
    Ok(loaded.entry)
}

impl Platform for Pc {
    fn memory(&self) -> &PhysMemory {
        &self.memory
    }
    fn io_read(&self, port: u16, size: u8) -> u32 {
        self.ports.read(port.into(), size) as u32
    }
    fn io_write(&self, port: u16, size: u8, value: u32) {
        self.ports.write(port.into(), size, value.into())
    }
    fn interrupt_pending(&self) -> bool {
        self.interrupts.pending()
    }
    fn acknowledge_interrupt(&self) -> Option<u8> {
        self.interrupts.acknowledge()
    }
    fn take_nmi(&self) -> bool {
        self.interrupts.take_nmi()
    }
    fn exit_requested(&self) -> bool {
        self.power.pending().is_some()
    }
    fn msr_read(&self, msr: u32) -> Option<u64> {
        is_apic_msr(msr).then(|| lock(&self.interrupts.lapic).msr_read(msr).ok()).flatten()
    }
    fn msr_write(&self, msr: u32, value: u64) -> bool {
        if !is_apic_msr(msr) {
            return false;
        }
        let ok = lock(&self.interrupts.lapic).msr_write(msr, value).is_ok();
        self.interrupts.after_lapic_access();
        ok
    }
}

/// IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC range belong to the local APIC.
fn is_apic_msr(msr: u32) -> bool {
    matches!(msr, 0x1b | 0x6e0 | 0x800..=0x8ff)
}
