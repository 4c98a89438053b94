//! Interrupt routing of the PC: ISA lines into the 8259 pair and the IOAPIC, the
//! IOAPIC's messages into the local APIC, and the local APIC's EOI broadcast back.
//!
//! Lock rule: at most one chip lock is held at a time. Every path takes a chip, copies
//! out what it must forward (a message, an EOI vector), releases it, then takes the next.

use rx86_core::bus::BusDevice;
use rx86_core::irq::IrqLine;
use rx86_devices::ioapic::IoApic;
use rx86_devices::lapic::{InterruptMessage, LocalApic};
use rx86_devices::pic::PicPair;
use std::sync::{Arc, Mutex, MutexGuard};

/// Number of ISA interrupt lines.
pub const ISA_IRQS: usize = 16;

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The interrupt controllers and the wiring between them.
pub struct Interrupts {
    /// The 8259 pair.
    pub pic: Arc<Mutex<PicPair>>,
    /// The I/O APIC.
    pub ioapic: Arc<Mutex<IoApic>>,
    /// The boot CPU's local APIC.
    pub lapic: Arc<Mutex<LocalApic>>,
    /// Per ISA line, the set of sources driving it high (lines are wired-OR).
    sources: Mutex<[u32; ISA_IRQS]>,
    /// How many sources each line has handed out.
    next_source: Mutex<[u8; ISA_IRQS]>,
}

impl Interrupts {
    /// Wires the three controllers together.
    pub fn new(pic: PicPair, ioapic: IoApic, lapic: LocalApic) -> Arc<Self> {
        Arc::new(Interrupts {
            pic: Arc::new(Mutex::new(pic)),
            ioapic: Arc::new(Mutex::new(ioapic)),
            lapic: Arc::new(Mutex::new(lapic)),
            sources: Mutex::new([0; ISA_IRQS]),
            next_source: Mutex::new([0; ISA_IRQS]),
        })
    }

    /// A new source on ISA line `irq` (a device's interrupt output).
    pub fn isa_line(self: &Arc<Self>, irq: u8) -> Arc<IsaIrqLine> {
        let idx = usize::from(irq) % ISA_IRQS;
        let mut next = lock(&self.next_source);
        let source = next[idx].min(31);
        next[idx] = next[idx].saturating_add(1);
        Arc::new(IsaIrqLine { irq: idx as u8, bit: 1 << source, interrupts: self.clone() })
    }

    /// The IOAPIC input an ISA IRQ drives (the MADT's override sends IRQ 0 to pin 2).
    pub fn isa_to_gsi(irq: u8) -> u8 {
        if irq == 0 {
            2
        } else {
            irq
        }
    }

    fn set_source(&self, irq: u8, bit: u32, high: bool) {
        let level = {
            let mut sources = lock(&self.sources);
            let s = &mut sources[usize::from(irq)];
            if high {
                *s |= bit;
            } else {
                *s &= !bit;
            }
            *s != 0
        };
        lock(&self.pic).set_irq_level(irq, level);
        let message = lock(&self.ioapic).set_irq_level(Self::isa_to_gsi(irq), level);
        if let Some(m) = message {
            self.deliver(m);
        }
    }

    fn deliver(&self, message: InterruptMessage) {
        lock(&self.lapic).deliver(message);
    }

    /// Forwards a level-triggered EOI from the local APIC to the IOAPIC, and whatever
    /// the IOAPIC re-delivers back to the local APIC.
    pub fn after_lapic_access(&self) {
        let vector = lock(&self.lapic).take_eoi_broadcast();
        if let Some(v) = vector {
            let messages = lock(&self.ioapic).end_of_interrupt(v);
            messages.into_iter().for_each(|m| self.deliver(m));
        }
    }

    /// Delivers what an IOAPIC register write released (an unmasked, asserted pin).
    pub fn after_ioapic_access(&self) {
        let messages = lock(&self.ioapic).take_messages();
        messages.into_iter().for_each(|m| self.deliver(m));
    }

    /// True when the CPU's INTR input is asserted: a local APIC vector above the
    /// processor priority, or the 8259's INT passed through LINT0.
    pub fn pending(&self) -> bool {
        let pic_path = {
            let lapic = lock(&self.lapic);
            if lapic.pending_vector().is_some() {
                return true;
            }
            lapic.accepts_pic_interrupts()
        };
        pic_path && lock(&self.pic).int_output()
    }

    /// The interrupt acknowledge cycle: the local APIC's vector first, else the 8259's.
    pub fn acknowledge(&self) -> Option<u8> {
        let pic_path = {
            let mut lapic = lock(&self.lapic);
            if lapic.pending_vector().is_some() {
                return lapic.acknowledge();
            }
            lapic.accepts_pic_interrupts()
        };
        let mut pic = lock(&self.pic);
        (pic_path && pic.int_output()).then(|| pic.acknowledge())
    }

    /// Takes an NMI the local APIC received.
    pub fn take_nmi(&self) -> bool {
        lock(&self.lapic).take_nmi()
    }
}

/// One device's output on an ISA interrupt line.
pub struct IsaIrqLine {
    irq: u8,
    bit: u32,
    interrupts: Arc<Interrupts>,
}

impl IrqLine for IsaIrqLine {
    fn set_level(&self, high: bool) {
        self.interrupts.set_source(self.irq, self.bit, high);
    }
}

/// The local APIC's MMIO page, forwarding EOIs to the IOAPIC.
pub struct LapicMmio(pub Arc<Interrupts>);

impl BusDevice for LapicMmio {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        lock(&self.0.lapic).read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        lock(&self.0.lapic).write(offset, size, value);
        self.0.after_lapic_access();
    }
}

/// The IOAPIC's MMIO window, delivering the messages a register write releases.
pub struct IoapicMmio(pub Arc<Interrupts>);

impl BusDevice for IoapicMmio {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        lock(&self.0.ioapic).read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        lock(&self.0.ioapic).write(offset, size, value);
        self.0.after_ioapic_access();
    }
}
