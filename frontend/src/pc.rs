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
//! | 8237 DMA + page regs    | 0x00, 0xC0, 0x81 |   |
//! | 82077 floppy            | 0x3F0-0x3F5, 0x3F7 | 6 |
//! | IDE primary/secondary   | 0x1F0, 0x3F6 / 0x170, 0x376 | 14 / 15 |
//! | IDE bus master (BAR4)   | 0xC000-0xC00F  |     |
//! | VGA / Bochs VBE         | 0x3B0-0x3DF / 0x1CE-0x1D0 | |
//! | built-in BIOS services  | 0x440 (write)  |     |
//! | NIC I/O windows         | 0xC040, 0xC080, 0xC0C0, 0xC100 | 11, 10, 10, 11 (INTA#) |
//!
//! PCI bus 0: 00.0 i440FX, 01.0 PIIX3 ISA, 01.1 PIIX3 IDE, 02.0 VGA (1234:1111; LFB
//! BAR0 at 0xFD000000, registers BAR2 at 0xFEBF0000), and with each `--nic` a NIC from 03.0 on
//! (up to 06.0): an e1000 (8086:100E; registers BAR0 at 0xFEBC0000, the next 128 KiB lower for
//! each further one, I/O BAR1), a virtio-net (1AF4:1000; legacy I/O BAR0) or an NE2000
//! (RTL8029AS, 10EC:8029; I/O BAR0). The VGA window 0xA0000-0xBFFFF is MMIO. A NIC's INTA# is
//! PIRQ[slot mod 4] (as the PIIX3 swizzles it: slot 3 is PIRQD), which the board wires to the
//! ISA IRQ SeaBIOS routes that PIRQ to (PIRQA/B to 10, PIRQC/D to 11); its interrupt line
//! register says the same.

use crate::chardev::InputSignal;
use crate::config::{Accel, MachineConfig};
use crate::drives::{DriveMedia, OpenDrive, OpenDrives};
use crate::error::RunError;
use crate::interrupts::{Interrupts, IoapicMmio, LapicMmio};
use crate::network::{self, Network, NicModel};
use crate::serial::{self, SerialHost};
use rx86_core::bus::{Bus, BusDevice};
use rx86_core::entry::EntryState;
use rx86_core::memory::GuestRam;
use rx86_core::phys::PhysMemory;
use rx86_core::platform::{Platform, PowerControl};
use rx86_core::shadow::{SEGMENT_COUNT, SHADOW_BASE, SHADOW_END};
use rx86_core::time::{Clock, TimerId, TimerQueue};
use rx86_devices::acpi_pm::{AcpiPm, PM_BLOCK_LEN};
use rx86_devices::debug_ports::{DebugConsole, DebugExit, PostCode};
use rx86_devices::dma8237::{DmaPageRegisters, IsaDma, IsaDmaPorts, PAGE_REGISTERS_BASE, PAGE_REGISTERS_LEN};
use rx86_devices::e1000::{E1000, E1000_IO_BAR, E1000_IO_SIZE, E1000_MMIO_BAR, E1000_MMIO_SIZE};
use rx86_devices::fast_a20::FastA20;
use rx86_devices::floppy::{FloppyController, FloppyDirPort, FloppyDisk};
use rx86_devices::fw_cfg::{FW_CFG_PORTS_LEN, FW_CFG_PORT_BASE};
use rx86_devices::i8042::{I8042CommandPort, I8042DataPort, I8042};
use rx86_devices::ide::{
    AtaDisk, AtapiCdrom, IdeCommandBlock, IdeControlBlock, IdeDrive, Piix3Ide, BAR_BUS_MASTER, BUS_MASTER_BLOCK_SIZE,
};
use rx86_devices::ioapic::IoApic;
use rx86_devices::lapic::{LocalApic, LocalApicConfig};
use rx86_devices::ne2000::{Ne2000, NE2000_IO_BAR, NE2000_IO_SIZE};
use rx86_devices::net::{NetBackend, NetworkCard};
use rx86_devices::pci::{
    config_mechanism_1, AddressSpace, ExpansionRom, I440fxHostBridge, PciBus, PciWindow, PciWindowDevice,
    Piix3IsaBridge,
};
use rx86_devices::pic::{ElcrPorts, PicChip, PicPair, PicPorts};
use rx86_devices::pit::Pit;
use rx86_devices::reset_control::ResetControl;
use rx86_devices::rtc::{Rtc, RtcDateTime};
use rx86_devices::system_port_b::SystemPortB;
use rx86_devices::uart::Uart16550;
use rx86_devices::vga::{
    PciVga, SharedVga, VbePorts, Vga, VgaLfb, VgaMemory, VgaMmio, VgaPorts, DEFAULT_VRAM_SIZE, VGA_LFB_BAR,
    VGA_MMIO_BAR, VGA_MMIO_BAR_SIZE,
};
use rx86_devices::virtio::net::VirtioNet;
use rx86_devices::virtio::pci::{VirtioPci, VIRTIO_LEGACY_BAR};
use rx86_firmware::bios::{Bios, BiosConfig, BootDevice};
use rx86_firmware::layout::{MemoryLayout, IOAPIC_BASE, LAPIC_BASE};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// IOAPIC ID (the local APIC is ID 0).
const IOAPIC_ID: u8 = 1;
/// The four serial ports: base port and ISA IRQ.
const COM_PORTS: [(u16, u8); 4] = [(0x3f8, 4), (0x2f8, 3), (0x3e8, 4), (0x2e8, 3)];

/// Where firmware puts the VGA's linear framebuffer (BAR0), as SeaBIOS does on QEMU.
const VGA_LFB_BASE: u64 = 0xfd00_0000;
/// Where firmware puts the VGA's register window (BAR2).
const VGA_MMIO_BASE: u64 = 0xfebf_0000;
/// Where firmware puts the IDE bus master block (BAR4), as SeaBIOS does on QEMU.
const IDE_BUS_MASTER_BASE: u16 = 0xc000;
/// The PCI I/O window: the ports above the ISA range (PCI BARs go at 0x1000 and up, as
/// Linux's PCIBIOS_MIN_IO has it), where I/O BARs decode wherever firmware puts them.
const PCI_IO_BASE: u64 = 0x1000;
/// Its length, to the top of the port space.
const PCI_IO_LEN: u64 = 0x1_0000 - PCI_IO_BASE;
/// Where firmware puts the first e1000's registers (BAR0), as SeaBIOS does on QEMU; further
/// e1000s go below it.
const E1000_MMIO_BASE: u32 = 0xfebc_0000;
/// Where firmware puts the first NIC's I/O window (the e1000's BAR1, virtio-net's and the
/// NE2000's BAR0), after the IDE bus master block; further NICs follow.
const NIC_IO_BASE: u16 = 0xc040;
/// PCI device number of the first NIC (QEMU's first free slot); the others follow.
const NIC_SLOT: u8 = 3;
/// NICs the board takes (slots 3 to 6).
const MAX_NICS: usize = 4;
/// Bytes between the NICs' I/O windows (the e1000's is the largest).
const NIC_IO_STRIDE: u16 = 0x40;
/// The ISA IRQs PIRQA-PIRQD are wired to, as SeaBIOS routes them on QEMU's PIIX3.
const PIRQ_IRQS: [u8; 4] = [10, 10, 11, 11];
/// QEMU's default boot order: hard disk, floppy, CD-ROM.
const DEFAULT_BOOT_ORDER: [BootDevice; 3] = [BootDevice::HardDisk, BootDevice::Floppy, BootDevice::Cdrom];

type TimerHandler = Box<dyn Fn() + Send>;

fn shared<T: BusDevice + 'static>(dev: T) -> Arc<Mutex<T>> {
    Arc::new(Mutex::new(dev))
}

/// What outlives a guest reset: the host side of the machine. A reset rebuilds the board
/// but hands these on, so a `--snapshot` overlay keeps the guest's writes (as QEMU's does
/// across a reset) and typed input keeps its single reader.
#[derive(Default)]
pub struct HostAttachments {
    /// The opened drive images.
    pub drives: OpenDrives,
    /// The serial ports' character devices, COM1 first.
    pub serial: Vec<SerialHost>,
    /// The monitor's character device (taken by the machine loop, which runs the monitor).
    pub monitor: Option<crate::chardev::Chardev>,
    /// Raised when any character device receives input.
    pub input_signal: InputSignal,
    /// The RTC's date and time at power-on (guest time 0), in Unix seconds: read from the
    /// host once, so the RTC carries on across a reset as a battery-backed one does.
    pub rtc_start: i64,
    /// The network backends (NATs, TAP interfaces), one per NIC (their host forwards, open
    /// interfaces and capture files outlive a reset).
    pub net: Vec<Box<dyn NetBackend>>,
}

impl HostAttachments {
    /// Opens the drives and the character devices `config` names.
    pub fn open(config: &MachineConfig) -> Result<Self, RunError> {
        let input_signal = InputSignal::default();
        let drives = crate::drives::open_drives(&config.drives, config.snapshot)?;
        let opened = serial::open_ports(&config.serial, &input_signal)?;
        let monitor = match &config.monitor {
            Some(backend) => Some(crate::chardev::open(backend, "monitor", &input_signal)?.device),
            None => opened.monitor,
        };
        Ok(HostAttachments {
            drives,
            serial: opened.ports,
            monitor,
            input_signal,
            rtc_start: config.rtc.start_seconds(),
            net: config.nics.iter().map(network::open_backend).collect::<Result<_, _>>().map_err(RunError::Network)?,
        })
    }
}

/// The assembled PC.
pub struct Pc {
    memory: Arc<PhysMemory>,
    ports: Bus,
    timers: TimerQueue,
    timer_handlers: Vec<(TimerId, TimerHandler)>,
    power: PowerControl,
    interrupts: Arc<Interrupts>,
    entry: EntryState,
    /// COM1-COM4.
    uarts: Vec<Arc<Mutex<Uart16550>>>,
    /// The configured ports' host ends, COM1 first.
    serial: Vec<SerialHost>,
    input_signal: InputSignal,
    post_code: Arc<Mutex<PostCode>>,
    kbc: Arc<Mutex<I8042>>,
    vga: SharedVga,
    /// The VGA's text-watch flag: a store that may complete an awaited text asks the
    /// engine to return, so the machine checks the screen at that instruction.
    screen_hit: Arc<std::sync::atomic::AtomicBool>,
    ide: Arc<Mutex<Piix3Ide>>,
    floppy: Arc<Mutex<FloppyController>>,
    bios: Option<Mutex<Bios>>,
    /// The images behind `ide` and `floppy`, kept to hand on at a reset.
    drives: OpenDrives,
    /// The RTC's date and time at guest time 0, in Unix seconds.
    rtc_start: i64,
    /// The NICs and their backends, with `--nic`.
    network: Option<Network>,
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
    pub fn new(config: &MachineConfig, clock: &Clock, host: HostAttachments) -> Result<Self, RunError> {
        let HostAttachments { drives, serial, monitor: _, input_signal, rtc_start, net } = host;
        let layout = MemoryLayout::new(config.ram_bytes).map_err(|e| RunError::Memory(e.to_string()))?;
        let ram = Arc::new(GuestRam::new(config.ram_bytes).map_err(|e| RunError::Memory(e.to_string()))?);
        let mut memory = PhysMemory::new(ram);
        for region in layout.regions().map_err(|e| RunError::Memory(e.to_string()))? {
            memory.add_region(region).map_err(|e| RunError::Board(e.to_string()))?;
        }
        let shadow = memory.shadow().cloned().ok_or_else(|| RunError::Board("no shadow RAM".into()))?;
        let external_rom = config.bios.as_deref().map(crate::external_bios::read_rom).transpose()?;
        if let Some(rom) = &external_rom {
            crate::external_bios::map_high(&mut memory, rom)?;
            // Power-on: shadow RAM is off and 0xC0000-0xFFFFF reads the ROM side until the
            // firmware copies itself down through the PAM registers.
            for segment in 0..SEGMENT_COUNT {
                shadow.set(segment, 0);
            }
        }
        let power = PowerControl::new();
        let timers = TimerQueue::new();
        let mut b = Builder { ports: Bus::new_port(), timers: timers.clone(), handlers: Vec::new(), clock };

        // Interrupt controllers. The local APIC's timer handler needs the controller
        // itself, so its timer is created first and the handler added once it exists.
        let lapic_timer = b.timers.new_timer("lapic");
        let lapic_config = LocalApicConfig { x2apic: cpuid_reports_x2apic(config.accel), ..LocalApicConfig::default() };
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
        // VGA: its legacy window joins the address map before it is shared; its BARs decode
        // in the PCI memory window, from the top of low RAM to the IOAPIC.
        let vga = Vga::new_shared(DEFAULT_VRAM_SIZE);
        memory
            .add_mmio(
                "vga-window",
                rx86_devices::vga::VGA_WINDOW_BASE,
                rx86_devices::vga::VGA_WINDOW_LEN,
                shared(VgaMemory::new(vga.clone())),
            )
            .map_err(|e| RunError::Board(e.to_string()))?;
        let pci_window =
            PciWindow::new(AddressSpace::Memory, layout.low_end(), IOAPIC_BASE - layout.low_end()).shared();
        memory
            .add_mmio(
                "pci-memory",
                layout.low_end(),
                IOAPIC_BASE - layout.low_end(),
                shared(PciWindowDevice(pci_window.clone())),
            )
            .map_err(|e| RunError::Board(e.to_string()))?;
        // I/O BARs decode in the PCI I/O window, beneath the fixed port devices.
        let pci_io_window = PciWindow::new(AddressSpace::Io, PCI_IO_BASE, PCI_IO_LEN).shared();
        b.ports
            .set_fallback("pci-io", PCI_IO_BASE, PCI_IO_LEN, shared(PciWindowDevice(pci_io_window.clone())))
            .map_err(|e| RunError::Board(e.to_string()))?;
        b.map(
            "vga",
            rx86_devices::vga::VGA_PORT_BASE,
            rx86_devices::vga::VGA_PORT_LEN,
            shared(VgaPorts::new(vga.clone())),
        )?;
        b.map(
            "vbe",
            rx86_devices::vga::VBE_PORT_BASE,
            rx86_devices::vga::VBE_PORT_LEN,
            shared(VbePorts::new(vga.clone())),
        )?;
        let memory = Arc::new(memory);

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

        let rtc_now = rtc_start.saturating_add((clock.now_ns() / 1_000_000_000) as i64);
        let rtc: Arc<Mutex<Rtc>> = late_bound(
            &mut b,
            "rtc",
            |timer, b| {
                Rtc::new(b.clock.clone(), timer, interrupts.isa_line(8), RtcDateTime::from_unix_seconds(rtc_now))
            },
            |r| r.on_timer(),
        );
        lock(&rtc).set_memory_layout(layout.low_end(), layout.high_ram_bytes());
        b.map("rtc", 0x70, 2, rtc.clone())?;

        let acpi = late_bound(
            &mut b,
            "acpi-pm",
            |timer, b| AcpiPm::new(b.clock.clone(), timer, interrupts.isa_line(9), power.clone()),
            |a| a.on_timer(),
        );
        b.map("acpi-pm", 0x600, PM_BLOCK_LEN as u16, acpi)?;

        // Keyboard controller and A20.
        let a20 = memory.a20_gate();
        let kbc = late_bound(
            &mut b,
            "typematic",
            |timer, b| {
                let mut kbc = I8042::new(interrupts.isa_line(1), interrupts.isa_line(12), a20.clone(), power.clone());
                kbc.attach_typematic(b.clock.clone(), timer);
                kbc
            },
            I8042::on_typematic_timer,
        );
        b.map("i8042-data", 0x60, 1, shared(I8042DataPort(kbc.clone())))?;
        b.map("i8042-cmd", 0x64, 1, shared(I8042CommandPort(kbc.clone())))?;
        b.map("fast-a20", 0x92, 1, shared(FastA20::new(a20, power.clone())))?;

        // Serial ports: each configured one on its character device, the others discard output.
        let mut uarts = Vec::new();
        for (i, &(base, irq)) in COM_PORTS.iter().enumerate() {
            let out = serial.get(i).map_or_else(|| Box::new(std::io::sink()), SerialHost::output);
            let name = format!("com{}", i + 1);
            let uart = late_bound(
                &mut b,
                &name,
                |timer, b| Uart16550::new(interrupts.isa_line(irq), out, b.clock.clone(), timer),
                |u| u.on_timer(),
            );
            b.map(&name, base, 8, uart.clone())?;
            uarts.push(uart);
        }

        // Storage: IDE disks and CDs, floppies behind the ISA DMA controller.
        let dma_memory: rx86_devices::ide::SharedDmaMemory = memory.clone();
        let ide = Arc::new(Mutex::new(Piix3Ide::new(
            interrupts.isa_line(14),
            interrupts.isa_line(15),
            Some(dma_memory.clone()),
        )));
        attach_ide(&ide, &drives)?;
        lock(&ide).firmware_setup(IDE_BUS_MASTER_BASE);
        for (i, (cmd, ctl)) in [(0x1f0u16, 0x3f6u16), (0x170, 0x376)].into_iter().enumerate() {
            let channel = lock(&ide).channel(i).ok_or_else(|| RunError::Board("IDE channel".into()))?;
            b.map(&format!("ide{i}"), cmd, 8, shared(IdeCommandBlock(channel.clone())))?;
            b.map(&format!("ide{i}-control"), ctl, 1, shared(IdeControlBlock(channel)))?;
        }

        let isa_dma = IsaDma::shared(Some(dma_memory.clone()));
        b.map("dma1", 0x00, 16, shared(IsaDmaPorts::dma1(isa_dma.clone())))?;
        b.map("dma2", 0xc0, 32, shared(IsaDmaPorts::dma2(isa_dma.clone())))?;
        b.map("dma-page", PAGE_REGISTERS_BASE, PAGE_REGISTERS_LEN as u16, shared(DmaPageRegisters(isa_dma.clone())))?;
        let floppy = Arc::new(Mutex::new(FloppyController::new(interrupts.isa_line(6), Some(isa_dma))));
        let mut floppy_types = [0u8; 2];
        for (i, d) in drives.floppy.iter().enumerate() {
            if let Some(d) = d {
                let disk = FloppyDisk::new(Box::new(d.backend.clone())).map_err(|e| RunError::Drive(e.to_string()))?;
                floppy_types[i] = cmos_floppy_type(d.backend_len());
                lock(&floppy).insert(i, disk).map_err(|e| RunError::Drive(e.to_string()))?;
            }
        }
        lock(&rtc).set_floppy_types(floppy_types[0], floppy_types[1]);
        b.map("floppy", 0x3f0, 6, floppy.clone())?;
        b.map("floppy-dir", 0x3f7, 1, shared(FloppyDirPort(floppy.clone())))?;

        // PCI and the reset register inside its port range.
        let mut pci = PciBus::new();
        let mut pci_vga = PciVga::new(DEFAULT_VRAM_SIZE).map_err(|e| RunError::Board(e.to_string()))?;
        pci_vga.firmware_setup(VGA_LFB_BASE as u32, VGA_MMIO_BASE as u32);
        let vga_bios = config.bios.as_deref().and_then(crate::external_bios::find_vga_bios).map(ExpansionRom::new);
        if let Some(rom) = &vga_bios {
            pci_vga.set_expansion_rom(rom.bar_size()).map_err(|e| RunError::Board(format!("VGA BIOS: {e}")))?;
        }
        let pci_vga = shared_pci(pci_vga);
        let functions: [(u8, u8, rx86_devices::pci::SharedPciFunction); 4] = [
            (0, 0, shared_pci(I440fxHostBridge::new(shadow))),
            (1, 0, shared_pci(Piix3IsaBridge::new())),
            (1, 1, ide.clone()),
            (2, 0, pci_vga.clone()),
        ];
        for (dev, func, f) in functions {
            pci.insert(dev, func, f).map_err(|e| RunError::Board(e.to_string()))?;
        }
        let mut links = Vec::new();
        let macs = network::nic_macs(&config.nics);
        for (i, ((nic, mac), nat)) in config.nics.iter().zip(macs).zip(net).enumerate() {
            let card =
                attach_nic(i, (nic.model, mac), &interrupts, &dma_memory, &mut pci, &pci_window, &pci_io_window)?;
            links.push((card, nat));
        }
        let network = (!links.is_empty()).then(|| Network::new(links, clock.clone()));
        {
            let mut window = lock(&pci_window);
            let lfb = shared(VgaLfb::new(vga.clone()));
            window.add_bar("VGA framebuffer", pci_vga.clone(), VGA_LFB_BAR, DEFAULT_VRAM_SIZE as u64, lfb);
            let registers = shared(VgaMmio::new(vga.clone()));
            window.add_bar("VGA registers", pci_vga.clone(), VGA_MMIO_BAR, VGA_MMIO_BAR_SIZE, registers);
            if let Some(rom) = vga_bios {
                window.add_expansion_rom("VGA BIOS", pci_vga, rom.bar_size(), shared(rom));
            }
        }
        let bus_master = shared(lock(&ide).bus_master_ports());
        lock(&pci_io_window).add_bar("IDE bus master", ide.clone(), BAR_BUS_MASTER, BUS_MASTER_BLOCK_SIZE, bus_master);
        pci.add_window(pci_window);
        pci.add_window(pci_io_window);
        let (pci_address, pci_data) = config_mechanism_1(pci);
        b.map("pci-address", 0xcf8, 1, shared(pci_address))?;
        b.map("reset-control", 0xcf9, 1, shared(ResetControl::new(power.clone())))?;
        b.map("pci-data", 0xcfc, 4, shared(pci_data))?;

        // Debug ports.
        let post_code = shared(PostCode::new());
        b.map("post-code", 0x80, 1, post_code.clone())?;
        b.map("debug-console", 0xe9, 1, shared(DebugConsole::new(Box::new(std::io::stderr()))))?;
        if external_rom.is_some() {
            // SeaBIOS's log port in QEMU builds (QEMU's -debugcon): to standard error too.
            b.map("debug-console-402", 0x402, 1, shared(DebugConsole::new(Box::new(std::io::stderr()))))?;
            let fw_cfg = crate::external_bios::fw_cfg(dma_memory.clone(), &layout)?;
            b.map("fw-cfg", FW_CFG_PORT_BASE, FW_CFG_PORTS_LEN as u16, shared(fw_cfg))?;
            let order = config.boot_order.clone().unwrap_or(DEFAULT_BOOT_ORDER.to_vec());
            let (low, high) = crate::external_bios::boot_order_cmos(&order);
            lock(&rtc).set_byte(crate::external_bios::CMOS_BOOT_ORDER_LOW, low);
            lock(&rtc).set_byte(crate::external_bios::CMOS_BOOT_ORDER_HIGH, high);
        }
        if let Some(port) = config.debug_exit_port {
            b.map("isa-debug-exit", port, 2, shared(DebugExit::new(power.clone())))?;
        }

        // The guest (and its firmware tables).
        let (entry, bios) = load_guest(config, external_rom.as_deref(), &memory, &layout, &drives, &vga)?;
        if external_rom.is_none() {
            seed_bios_rom_side(&memory)?;
        }

        let screen_hit = lock(&vga).text_watch().hits();
        Ok(Pc {
            memory,
            ports: b.ports,
            timers,
            timer_handlers: b.handlers,
            power,
            interrupts,
            entry,
            uarts,
            serial,
            input_signal,
            post_code,
            kbc,
            screen_hit,
            vga,
            ide,
            floppy,
            bios: bios.map(Mutex::new),
            drives,
            rtc_start,
            network,
        })
    }

    /// Flushes the disks and gives up what a rebuilt board takes over after a reset.
    pub fn detach_host(&mut self) -> HostAttachments {
        self.flush_disks();
        HostAttachments {
            drives: std::mem::take(&mut self.drives),
            serial: std::mem::take(&mut self.serial),
            monitor: None,
            input_signal: self.input_signal.clone(),
            rtc_start: self.rtc_start,
            net: self.network.take().map(Network::into_backends).unwrap_or_default(),
        }
    }

    /// The RTC's date and time at power-on (guest time 0).
    pub fn rtc_start(&self) -> RtcDateTime {
        RtcDateTime::from_unix_seconds(self.rtc_start)
    }

    /// The VGA (for screenshots and the display).
    pub fn vga(&self) -> &SharedVga {
        &self.vga
    }

    /// Lowers the VGA's text-watch flag; true when it was raised (the screen may show an
    /// awaited text since the last call).
    pub fn take_screen_hit(&self) -> bool {
        self.screen_hit.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes every disk's completed writes through to its image (at exit and reset).
    pub fn flush_disks(&self) {
        if let Err(e) = lock(&self.ide).flush_all() {
            log::error!("flushing IDE disks: {e}");
        }
        if let Err(e) = lock(&self.floppy).flush_all() {
            log::error!("flushing floppy disks: {e}");
        }
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

    /// True while serial input or host network traffic may still arrive.
    pub fn has_input_source(&self) -> bool {
        self.has_serial_input() || self.network.as_ref().is_some_and(Network::host_active)
    }

    fn has_serial_input(&self) -> bool {
        self.serial.iter().any(SerialHost::has_input)
    }

    /// Lets frames move between the NICs and their backends (once per machine-loop turn, so host
    /// traffic reaches the guest at instruction boundaries).
    pub fn poll_network(&mut self) {
        if let Some(net) = &mut self.network {
            net.poll();
        }
    }

    /// The next machine time at which something happens without the guest: the earliest
    /// device timer, or a replayed network frame.
    pub fn next_deadline(&self) -> Option<u64> {
        let timers = self.timers.next_deadline();
        let network = self.network.as_ref().and_then(Network::next_event);
        timers.into_iter().chain(network).min()
    }

    /// For an idle machine on the virtual clock: waits in host time, at most `virtual_gap`
    /// nanoseconds (the time to the next device event; capped at a few milliseconds), for host
    /// network traffic while a backend expects some. True when some arrived: the turn should end
    /// without moving the clock, so the traffic enters at the current instruction.
    pub fn wait_for_network(&mut self, virtual_gap: Option<u64>) -> bool {
        self.network.as_mut().is_some_and(|n| n.wait(virtual_gap))
    }

    /// Bytes read from and written to the disks, and sent on the serial ports, so far (for the
    /// progress line).
    pub fn activity(&self) -> (u64, u64, u64) {
        let drives = self.drives.ide.iter().chain(&self.drives.floppy).flatten();
        let (read, written) = drives.fold((0, 0), |(r, w), d| {
            let (dr, dw) = d.backend.traffic();
            (r + dr, w + dw)
        });
        (read, written, self.serial.iter().map(SerialHost::sent).sum())
    }

    /// The NICs' state and their backends' (the NATs' connections), for the monitor.
    pub fn network_info(&self) -> Vec<String> {
        self.network.as_ref().map_or_else(|| vec!["no network card (see --nic)".into()], Network::describe)
    }

    /// Moves typed bytes into the serial ports as far as their FIFOs have room, and network
    /// frames between the NICs and their backends.
    pub fn poll_input(&mut self) {
        self.poll_network();
        for (host, uart) in self.serial.iter_mut().zip(&self.uarts) {
            host.pump(&mut lock(uart));
        }
    }

    /// Waits at most `timeout` for input on a character device (a serial port or the
    /// monitor), or, with no serial input possible, for host network traffic while
    /// connections are open; either ends the wait early.
    pub fn wait_for_input_timeout(&mut self, timeout: Duration) {
        let serial_input = self.has_serial_input();
        match &mut self.network {
            Some(net) if !serial_input && (net.host_active() || net.tx_pending()) => {
                net.wait(Some(timeout.as_nanos().try_into().unwrap_or(u64::MAX)));
            }
            _ => {
                self.input_signal.wait(timeout);
            }
        }
        self.poll_input();
    }
}

/// Puts NIC number `index` (from 0), a `model` with address `mac`, in its PCI slot, its BARs
/// where firmware would place them and its INTA# on the IRQ SeaBIOS routes its PIRQ to;
/// returns it for the network glue.
fn attach_nic(
    index: usize,
    (model, mac): (NicModel, [u8; 6]),
    interrupts: &Arc<Interrupts>,
    memory: &rx86_devices::ide::SharedDmaMemory,
    pci: &mut PciBus,
    mmio_window: &rx86_devices::pci::SharedPciWindow,
    io_window: &rx86_devices::pci::SharedPciWindow,
) -> Result<Arc<Mutex<dyn NetworkCard>>, RunError> {
    if index >= MAX_NICS {
        return Err(RunError::Board(format!("at most {MAX_NICS} network cards (--nic) fit the board")));
    }
    let slot = NIC_SLOT + index as u8;
    // PIIX3 swizzling: INTA# of slot S is PIRQ[S mod 4].
    let irq_number = PIRQ_IRQS[usize::from(slot) % 4];
    let io_base = NIC_IO_BASE + NIC_IO_STRIDE * index as u16;
    let irq = interrupts.isa_line(irq_number);
    let card: Arc<Mutex<dyn NetworkCard>> = match model {
        NicModel::E1000 => {
            let mut e1000 =
                E1000::new(mac, irq, Some(memory.clone())).map_err(|e| RunError::Board(format!("e1000: {e}")))?;
            let mmio_base = E1000_MMIO_BASE - E1000_MMIO_SIZE as u32 * index as u32;
            e1000.firmware_setup(mmio_base, io_base, irq_number);
            let e1000 = Arc::new(Mutex::new(e1000));
            pci.insert(slot, 0, e1000.clone()).map_err(|e| RunError::Board(e.to_string()))?;
            lock(mmio_window).add_bar("e1000 registers", e1000.clone(), E1000_MMIO_BAR, E1000_MMIO_SIZE, e1000.clone());
            let io = shared(E1000::io_ports(&e1000));
            lock(io_window).add_bar("e1000 I/O", e1000.clone(), E1000_IO_BAR, E1000_IO_SIZE, io);
            e1000
        }
        NicModel::VirtioNet => {
            let mut card = VirtioPci::new(VirtioNet::new(mac), irq, Some(memory.clone()))
                .map_err(|e| RunError::Board(format!("virtio-net: {e}")))?;
            card.firmware_setup(io_base, irq_number);
            let size = card.io_size();
            let card = Arc::new(Mutex::new(card));
            pci.insert(slot, 0, card.clone()).map_err(|e| RunError::Board(e.to_string()))?;
            lock(io_window).add_bar("virtio-net I/O", card.clone(), VIRTIO_LEGACY_BAR, size, card.clone());
            card
        }
        NicModel::Ne2kPci => {
            let mut card = Ne2000::new(mac, irq).map_err(|e| RunError::Board(format!("ne2k_pci: {e}")))?;
            card.firmware_setup(io_base, irq_number);
            let card = Arc::new(Mutex::new(card));
            pci.insert(slot, 0, card.clone()).map_err(|e| RunError::Board(e.to_string()))?;
            lock(io_window).add_bar("ne2k_pci I/O", card.clone(), NE2000_IO_BAR, NE2000_IO_SIZE, card.clone());
            card
        }
    };
    Ok(card)
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

fn read_file(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, RunError> {
    std::fs::read(path).map_err(|source| RunError::ReadFile { what, path: path.into(), source })
}

/// Puts the opened IDE drives on their channels.
fn attach_ide(ide: &Arc<Mutex<Piix3Ide>>, drives: &OpenDrives) -> Result<(), RunError> {
    for (i, d) in drives.ide.iter().enumerate() {
        let Some(d) = d else { continue };
        let serial = format!("RX86-{i}");
        let drive = match d.media {
            DriveMedia::Disk => IdeDrive::Ata(AtaDisk::new(Box::new(d.backend.clone()), &serial)),
            DriveMedia::Cdrom => IdeDrive::Atapi(AtapiCdrom::new(Some(Box::new(d.backend.clone())), &serial)),
        };
        let channel = lock(ide).channel(i / 2).ok_or_else(|| RunError::Board("IDE channel".into()))?;
        lock(&channel).attach(i % 2, drive);
    }
    Ok(())
}

impl OpenDrive {
    fn backend_len(&self) -> u64 {
        use rx86_devices::block::BlockBackend;
        self.backend.len()
    }
}

/// CMOS register 0x10 drive type of a floppy image of `bytes`.
fn cmos_floppy_type(bytes: u64) -> u8 {
    match bytes {
        368_640 => 1,
        1_228_800 => 2,
        737_280 => 3,
        2_949_120 => 5,
        _ => 4,
    }
}

/// Size of the BIOS area whose ROM side holds the firmware (0xE0000-0xFFFFF, as the top of a
/// PC's flash appears there).
const BIOS_AREA_BYTES: u64 = 128 << 10;

/// Copies what the built-in BIOS or a loader put at 0xE0000-0xFFFFF to the shadow region's
/// ROM side, so a guest that turns shadow RAM off there reads the firmware a flash chip would
/// hold.
fn seed_bios_rom_side(memory: &PhysMemory) -> Result<(), RunError> {
    let rom = memory.shadow_rom().ok_or_else(|| RunError::Board("no shadow RAM".into()))?;
    let start = SHADOW_END - BIOS_AREA_BYTES;
    let mut image = vec![0u8; BIOS_AREA_BYTES as usize];
    memory.read(start, &mut image);
    rom.write(start - SHADOW_BASE, &image).map_err(|e| RunError::Memory(e.to_string()))
}

/// Loads what the machine runs first: a kernel directly (with the VGA left as its BIOS
/// would leave it), or the built-in BIOS, which boots from the drives or enters a kernel
/// that has no 32-bit entry through its real-mode setup.
fn load_guest(
    config: &MachineConfig,
    external_rom: Option<&[u8]>,
    memory: &PhysMemory,
    layout: &MemoryLayout,
    drives: &OpenDrives,
    vga: &SharedVga,
) -> Result<(EntryState, Option<Bios>), RunError> {
    if let Some(rom) = external_rom {
        if config.kernel.is_some() {
            return Err(RunError::Firmware(
                "--bios with --kernel: handing a kernel to external firmware (QEMU's fw_cfg kernel loading) is not \
                 supported yet; boot the kernel directly (omit --bios) or from a disk or CD image"
                    .into(),
            ));
        }
        crate::external_bios::fill_low_alias(memory, rom)?;
        return Ok((EntryState::reset(), None));
    }
    // The external firmware gets its ACPI tables over fw_cfg; everything else finds them here.
    let rsdp = rx86_firmware::acpi::build_acpi_tables(memory, layout, 1)
        .map_err(|e| RunError::Board(format!("ACPI tables: {e}")))?;
    let bios_config = |linux_setup| BiosConfig {
        layout: *layout,
        floppies: drives.floppy.each_ref().map(|d| d.as_ref().map(|d| d.backend.clone())),
        hard_disks: drives
            .ide
            .iter()
            .flatten()
            .filter(|d| d.media == DriveMedia::Disk)
            .map(|d| d.backend.clone())
            .collect(),
        cdrom: drives.ide.iter().flatten().find(|d| d.media == DriveMedia::Cdrom).map(|d| d.backend.clone()),
        boot_order: config.boot_order.clone().unwrap_or(DEFAULT_BOOT_ORDER.to_vec()),
        vga: Some(vga.clone()),
        lfb_address: Some(VGA_LFB_BASE),
        linux_setup,
    };
    let start_bios = |linux_setup| -> Result<(EntryState, Option<Bios>), RunError> {
        let bios = Bios::new(bios_config(linux_setup)).map_err(|e| RunError::Firmware(e.to_string()))?;
        let entry = bios.install(memory);
        Ok((entry, Some(bios)))
    };
    let Some(kernel_path) = &config.kernel else {
        let any_drive = drives.ide.iter().chain(drives.floppy.iter()).any(Option::is_some);
        if !any_drive {
            return Err(RunError::NothingToBoot);
        }
        return start_bios(None);
    };
    let kernel = read_file("kernel", kernel_path)?;
    let initrd = config.initrd.as_deref().map(|p| read_file("initrd", p)).transpose()?;
    let load_error = |e: rx86_firmware::LoadError| RunError::Load(format!("{}: {e}", kernel_path.display()));
    if rx86_firmware::linux_setup::needs_real_mode_setup(&kernel) {
        // No 32-bit entry: the image's own setup code starts it, under the BIOS.
        let (setup, summary) =
            rx86_firmware::linux_setup::load(memory, layout, &kernel, initrd.as_deref(), &config.append)
                .map_err(load_error)?;
        log::info!("{summary}");
        return start_bios(Some(setup));
    }
    lock(vga).init_text_console();
    let options = rx86_firmware::LoadOptions { vga_text_console: true, ..Default::default() };
    let loaded =
        rx86_firmware::load_kernel(memory, layout, &kernel, initrd.as_deref(), &config.append, Some(rsdp), &options)
            .map_err(load_error)?;
    Ok((loaded.entry, None))
}

impl Drop for Pc {
    fn drop(&mut self) {
        self.flush_disks();
    }
}

impl Platform for Pc {
    fn memory(&self) -> &PhysMemory {
        &self.memory
    }
    fn io_read(&self, port: u16, size: u8) -> u32 {
        self.ports.read(port.into(), size) as u32
    }
    fn io_write(&self, port: u16, size: u8, value: u32) {
        match &self.bios {
            Some(bios) if port == rx86_firmware::bios::rom::SERVICE_PORT => lock(bios).service(self),
            _ => self.ports.write(port.into(), size, value.into()),
        }
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
        self.power.pending().is_some() || self.screen_hit.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn next_deadline(&self) -> Option<u64> {
        Pc::next_deadline(self)
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

/// CPUID.1:ECX bit 21: x2APIC.
const CPUID1_ECX_X2APIC: u32 = 1 << 21;

/// True when the engine's CPUID reports x2APIC, so the local APIC may enter x2APIC mode;
/// otherwise setting IA32_APIC_BASE.EXTD is a reserved-bit #GP (SDM Vol. 3A §11.12.1).
/// KVM's CPUID drops x2APIC (rx86's APIC is reached through MMIO exits); the
/// interpreter's CPUID decides for itself.
fn cpuid_reports_x2apic(accel: Accel) -> bool {
    accel != Accel::Kvm && rx86_cpu::interp::cpuid::cpuid(1, 0)[2] & CPUID1_ECX_X2APIC != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x2apic_mode_is_refused_unless_cpuid_reports_x2apic() {
        // A blank floppy image, so the built-in BIOS has something to boot.
        let image = std::env::temp_dir().join(format!("rx86-pc-x2apic-{}.img", std::process::id()));
        std::fs::write(&image, vec![0u8; 1_474_560]).unwrap();
        let floppy =
            crate::drives::DriveConfig::at(image.clone(), crate::drives::DriveInterface::Floppy, DriveMedia::Disk, 0);
        let config = MachineConfig {
            serial: vec![crate::config::CharBackend::Null],
            snapshot: true,
            drives: vec![floppy],
            ..MachineConfig::default()
        };
        let host = HostAttachments::open(&config).unwrap();
        let pc = Pc::new(&config, &Clock::new_virtual(), host).unwrap();
        std::fs::remove_file(&image).unwrap();
        let base = pc.msr_read(0x1b).unwrap();
        let x2apic = cpuid_reports_x2apic(Accel::Interp);
        assert_eq!(pc.msr_write(0x1b, base | (1 << 10)), x2apic);
        if !x2apic {
            assert_eq!(pc.msr_read(0x1b), Some(base));
        }
    }
}
