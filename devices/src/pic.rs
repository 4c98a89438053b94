//! Intel 8259A programmable interrupt controller pair.
//!
//! Follows the Intel 8259A datasheet (order 231468): initialization command words
//! ICW1-ICW4, operation command words OCW1-OCW3, fully nested and rotating priority,
//! automatic EOI, special mask mode, special fully nested mode and poll mode. The PC
//! wires two chips: the slave's INT output drives master input IR2. Trigger mode comes
//! from the PIIX edge/level control registers ELCR1/ELCR2 (ports 0x4D0/0x4D1, PIIX3
//! datasheet 2.2.9); ICW1's LTIM bit is ignored, as on the PIIX.
//!
//! One [`PicPair`] holds both chips and the ELCRs. The board shares it as
//! `Arc<Mutex<PicPair>>` and maps three thin bus views on it: [`PicPorts`] for the
//! master (0x20-0x21) and the slave (0xA0-0xA1), and [`ElcrPorts`] for 0x4D0-0x4D1.
//! The PIC never calls out: the board drives inputs with [`PicPair::set_irq_level`],
//! polls [`PicPair::int_output`] and runs the INTA cycle with [`PicPair::acknowledge`].
//!
//! Edge-triggered requests are latched on the rising edge and stay requested after the
//! input falls (so a pulsed line is never lost); a level-triggered request follows its
//! input. An INTA with no request left (a level request that went away, or a request
//! masked after INT was raised) returns the spurious vector of IR7 (IR15 on the slave),
//! without setting an in-service bit.

use rx86_core::bus::BusDevice;
use std::sync::{Arc, Mutex};

/// ICW1 marker: a command-port write with bit 4 set starts initialization.
const ICW1_INIT: u8 = 1 << 4;
/// ICW1 bit 3 LTIM: level-triggered mode (ignored: the ELCR decides, as on the PIIX).
const ICW1_LTIM: u8 = 1 << 3;
/// ICW1 bit 1 SNGL: single chip, no ICW3.
const ICW1_SNGL: u8 = 1 << 1;
/// ICW1 bit 0 IC4: an ICW4 follows.
const ICW1_IC4: u8 = 1 << 0;
/// ICW4 bit 4 SFNM: special fully nested mode.
const ICW4_SFNM: u8 = 1 << 4;
/// ICW4 bit 1 AEOI: automatic end of interrupt.
const ICW4_AEOI: u8 = 1 << 1;
/// ICW4 bit 0 uPM: 8086/8088 mode (the only mode an x86 PC uses).
const ICW4_UPM: u8 = 1 << 0;
/// OCW3 marker: a command-port write with bits 4:3 = 01 is OCW3.
const OCW3_SELECT: u8 = 1 << 3;
/// OCW3 bit 6 ESMM: bit 5 (SMM) is valid.
const OCW3_ESMM: u8 = 1 << 6;
/// OCW3 bit 5 SMM: special mask mode on/off.
const OCW3_SMM: u8 = 1 << 5;
/// OCW3 bit 2 P: poll command.
const OCW3_POLL: u8 = 1 << 2;
/// OCW3 bit 1 RR: bit 0 (RIS) is valid.
const OCW3_RR: u8 = 1 << 1;
/// OCW3 bit 0 RIS: the status read returns ISR (1) or IRR (0).
const OCW3_RIS: u8 = 1 << 0;
/// OCW2 bits 7:5 (R, SL, EOI): rotate in automatic EOI mode (clear).
const OCW2_CLEAR_ROTATE_AEOI: u8 = 0b000;
/// OCW2: non-specific EOI.
const OCW2_NONSPECIFIC_EOI: u8 = 0b001;
/// OCW2: no operation.
const OCW2_NOP: u8 = 0b010;
/// OCW2: specific EOI of level L (bits 2:0).
const OCW2_SPECIFIC_EOI: u8 = 0b011;
/// OCW2: rotate in automatic EOI mode (set).
const OCW2_SET_ROTATE_AEOI: u8 = 0b100;
/// OCW2: rotate on non-specific EOI.
const OCW2_ROTATE_NONSPECIFIC_EOI: u8 = 0b101;
/// OCW2: set priority (L becomes the lowest priority).
const OCW2_SET_PRIORITY: u8 = 0b110;
/// OCW2: rotate on specific EOI of level L.
const OCW2_ROTATE_SPECIFIC_EOI: u8 = 0b111;
/// Poll word bit 7 I: an interrupt was pending.
const POLL_INTERRUPT: u8 = 1 << 7;
/// The master input the slave's INT output is cascaded to.
const CASCADE_IR: u8 = 2;
/// The IR level reported for a spurious interrupt.
const SPURIOUS_IR: u8 = 7;
/// ELCR1 bits that can be set: IRQ0-2 are always edge (PIIX3 2.2.9).
const ELCR1_WRITABLE: u8 = 0xf8;
/// ELCR2 bits that can be set: IRQ8 and IRQ13 are always edge.
const ELCR2_WRITABLE: u8 = 0xde;

/// Which chip of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PicChip {
    /// The master (IRQ 0-7, ports 0x20-0x21).
    Master,
    /// The slave (IRQ 8-15, ports 0xA0-0xA1), cascaded on master IR2.
    Slave,
}

/// Where the chip is in the ICW sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum InitStep {
    /// Initialized: data-port writes are OCW1.
    #[default]
    Ready,
    /// Waiting for ICW2 (vector base).
    Icw2,
    /// Waiting for ICW3 (cascade wiring).
    Icw3,
    /// Waiting for ICW4 (mode).
    Icw4,
}

/// The registers of one 8259A.
#[derive(Debug, Clone, Default)]
struct Pic8259 {
    /// Interrupt request register.
    irr: u8,
    /// In-service register.
    isr: u8,
    /// Interrupt mask register (OCW1).
    imr: u8,
    /// Current levels of the IR input pins.
    pins: u8,
    /// Level-triggered inputs (the ELCR).
    elcr: u8,
    /// The IR level with the highest priority (rotation moves it).
    highest_priority: u8,
    /// Vector of IR0 (ICW2 bits 7:3).
    vector_base: u8,
    init: InitStep,
    /// ICW1 IC4: an ICW4 is expected.
    expect_icw4: bool,
    /// ICW1 SNGL: no ICW3.
    single: bool,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    special_fully_nested: bool,
    special_mask: bool,
    /// OCW3 RIS: status reads return ISR instead of IRR.
    read_isr: bool,
    /// OCW3 P: the next read is the poll word.
    poll: bool,
}

impl Pic8259 {
    fn level_triggered(&self, bit: u8) -> bool {
        self.elcr & bit != 0
    }

    /// Drives input `ir`: a rising edge latches an edge request, a level request
    /// follows the pin.
    fn set_pin(&mut self, ir: u8, high: bool) {
        let bit = 1 << ir;
        let was_high = self.pins & bit != 0;
        if high {
            self.pins |= bit;
            if !was_high || self.level_triggered(bit) {
                self.irr |= bit;
            }
        } else {
            self.pins &= !bit;
            if self.level_triggered(bit) {
                self.irr &= !bit;
            }
        }
    }

    /// Rank of IR `ir` (0 = highest priority) under the current rotation.
    fn rank(&self, ir: u8) -> u8 {
        ir.wrapping_sub(self.highest_priority) & 7
    }

    /// The highest-priority IR whose bit is set in `mask`.
    fn highest(&self, mask: u8) -> Option<u8> {
        (0..8).map(|rank| (rank + self.highest_priority) & 7).find(|&ir| mask & (1 << ir) != 0)
    }

    /// The IR this chip would signal now, if any.
    fn pending(&self, is_master: bool) -> Option<u8> {
        let requests = self.irr & !self.imr;
        if self.special_mask {
            // Special mask mode: every unmasked level that is not itself in service
            // may interrupt, whatever its priority.
            return self.highest(requests & !self.isr);
        }
        let candidate = self.highest(requests)?;
        let mut blocking = self.isr;
        if is_master && self.special_fully_nested {
            // SFNM: an in-service cascade input does not block the slave's own
            // higher-priority requests.
            blocking &= !(1 << CASCADE_IR);
        }
        match self.highest(blocking) {
            Some(in_service) if self.rank(in_service) <= self.rank(candidate) => None,
            _ => Some(candidate),
        }
    }

    /// The acknowledge of `ir`: set it in service (unless AEOI) and consume an edge request.
    fn accept(&mut self, ir: u8) {
        let bit = 1 << ir;
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.highest_priority = (ir + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
        if !self.level_triggered(bit) {
            self.irr &= !bit;
        }
    }

    /// The poll word: acknowledges the pending IR as an INTA would.
    fn poll_word(&mut self, is_master: bool) -> u8 {
        self.poll = false;
        match self.pending(is_master) {
            Some(ir) => {
                self.accept(ir);
                POLL_INTERRUPT | ir
            }
            None => 0,
        }
    }

    fn read(&mut self, offset: u64, is_master: bool) -> u8 {
        if self.poll {
            return self.poll_word(is_master);
        }
        match offset & 1 {
            0 if self.read_isr => self.isr,
            0 => self.irr,
            _ => self.imr,
        }
    }

    fn write(&mut self, offset: u64, value: u8, name: &str) {
        if offset & 1 == 0 {
            if value & ICW1_INIT != 0 {
                self.write_icw1(value, name);
            } else if value & OCW3_SELECT != 0 {
                self.write_ocw3(value);
            } else {
                self.write_ocw2(value, name);
            }
            return;
        }
        match self.init {
            InitStep::Ready => self.imr = value,
            InitStep::Icw2 => {
                self.vector_base = value & 0xf8;
                self.init = if !self.single {
                    InitStep::Icw3
                } else if self.expect_icw4 {
                    InitStep::Icw4
                } else {
                    InitStep::Ready
                };
            }
            InitStep::Icw3 => {
                log::debug!("PIC {name}: ICW3 {value:#04x}");
                self.init = if self.expect_icw4 { InitStep::Icw4 } else { InitStep::Ready };
            }
            InitStep::Icw4 => {
                if value & ICW4_UPM == 0 {
                    log::warn!("PIC {name}: ICW4 {value:#04x} selects 8080 mode, which an x86 cannot use");
                }
                self.auto_eoi = value & ICW4_AEOI != 0;
                self.special_fully_nested = value & ICW4_SFNM != 0;
                self.init = InitStep::Ready;
            }
        }
    }

    /// ICW1: resets the chip's state and starts the ICW sequence.
    fn write_icw1(&mut self, value: u8, name: &str) {
        if value & ICW1_LTIM != 0 {
            log::debug!("PIC {name}: ICW1 LTIM ignored, the ELCR selects level triggering");
        }
        // The datasheet: IMR cleared, IR7 lowest priority, special mask mode off,
        // status reads select IRR, and the edge-sense latches need a new rising edge.
        self.irr = self.pins & self.elcr;
        self.isr = 0;
        self.imr = 0;
        self.highest_priority = 0;
        self.special_mask = false;
        self.read_isr = false;
        self.poll = false;
        self.auto_eoi = false;
        self.rotate_on_auto_eoi = false;
        self.special_fully_nested = false;
        self.single = value & ICW1_SNGL != 0;
        self.expect_icw4 = value & ICW1_IC4 != 0;
        self.init = InitStep::Icw2;
    }

    fn write_ocw2(&mut self, value: u8, name: &str) {
        let level = value & 7;
        match value >> 5 {
            OCW2_CLEAR_ROTATE_AEOI => self.rotate_on_auto_eoi = false,
            OCW2_SET_ROTATE_AEOI => self.rotate_on_auto_eoi = true,
            OCW2_NOP => {}
            OCW2_NONSPECIFIC_EOI | OCW2_ROTATE_NONSPECIFIC_EOI => match self.highest(self.isr) {
                Some(ir) => {
                    self.isr &= !(1 << ir);
                    if value >> 5 == OCW2_ROTATE_NONSPECIFIC_EOI {
                        self.highest_priority = (ir + 1) & 7;
                    }
                }
                None => log::debug!("PIC {name}: non-specific EOI with nothing in service"),
            },
            OCW2_SPECIFIC_EOI => self.isr &= !(1 << level),
            OCW2_SET_PRIORITY => self.highest_priority = (level + 1) & 7,
            command => {
                // The only three-bit command left.
                debug_assert_eq!(command, OCW2_ROTATE_SPECIFIC_EOI);
                self.isr &= !(1 << level);
                self.highest_priority = (level + 1) & 7;
            }
        }
    }

    fn write_ocw3(&mut self, value: u8) {
        if value & OCW3_ESMM != 0 {
            self.special_mask = value & OCW3_SMM != 0;
        }
        if value & OCW3_RR != 0 {
            self.read_isr = value & OCW3_RIS != 0;
        }
        self.poll = value & OCW3_POLL != 0;
    }
}

/// The cascaded master/slave 8259A pair of a PC, with the PIIX ELCRs.
#[derive(Debug, Clone, Default)]
pub struct PicPair {
    master: Pic8259,
    slave: Pic8259,
}

impl PicPair {
    /// Both chips in their power-on state (uninitialized, everything edge-triggered).
    pub fn new() -> Self {
        Self::default()
    }

    /// Drives ISA IRQ `irq` (0-15) to `high`. Input 2 of the master is the cascade and
    /// ignores external drive.
    pub fn set_irq_level(&mut self, irq: u8, high: bool) {
        match irq {
            CASCADE_IR => log::debug!("PIC: IRQ2 is the cascade input, external drive ignored"),
            0..=7 => self.master.set_pin(irq, high),
            8..=15 => self.slave.set_pin(irq - 8, high),
            _ => {
                log::warn!("PIC: no IRQ {irq} (valid 0-15)");
                return;
            }
        }
        self.update_cascade();
    }

    /// The INT pin to the CPU: an unmasked request outranks everything in service.
    pub fn int_output(&self) -> bool {
        self.master.pending(true).is_some()
    }

    /// The INTA cycle: returns the vector and updates IRR/ISR. When the request went
    /// away since INT was raised, returns the spurious IR7 vector (IR15's when the
    /// slave lost its request).
    pub fn acknowledge(&mut self) -> u8 {
        let vector = match self.master.pending(true) {
            None => {
                log::debug!("PIC: spurious IRQ 7");
                self.master.vector_base | SPURIOUS_IR
            }
            Some(CASCADE_IR) => {
                self.master.accept(CASCADE_IR);
                match self.slave.pending(false) {
                    Some(ir) => {
                        self.slave.accept(ir);
                        self.slave.vector_base | ir
                    }
                    None => {
                        log::debug!("PIC: spurious IRQ 15");
                        self.slave.vector_base | SPURIOUS_IR
                    }
                }
            }
            Some(ir) => {
                self.master.accept(ir);
                self.master.vector_base | ir
            }
        };
        // The slave's INT drops during INTA; a request still waiting raises it again,
        // which the edge-triggered cascade input sees as a new request.
        self.master.set_pin(CASCADE_IR, false);
        self.update_cascade();
        vector
    }

    /// Reads the command (offset 0) or data (offset 1) port of `chip`.
    pub fn read_port(&mut self, chip: PicChip, offset: u64) -> u8 {
        let value = match chip {
            PicChip::Master => self.master.read(offset, true),
            PicChip::Slave => self.slave.read(offset, false),
        };
        self.update_cascade();
        value
    }

    /// Writes the command (offset 0) or data (offset 1) port of `chip`.
    pub fn write_port(&mut self, chip: PicChip, offset: u64, value: u8) {
        match chip {
            PicChip::Master => self.master.write(offset, value, "master"),
            PicChip::Slave => self.slave.write(offset, value, "slave"),
        }
        self.update_cascade();
    }

    /// Reads ELCR1 (offset 0, IRQ 0-7) or ELCR2 (offset 1, IRQ 8-15).
    pub fn read_elcr(&self, offset: u64) -> u8 {
        if offset & 1 == 0 {
            self.master.elcr
        } else {
            self.slave.elcr
        }
    }

    /// Writes ELCR1 or ELCR2 (reserved edge-only bits stay clear). Inputs switched to
    /// level trigger take their request from the current pin level.
    pub fn write_elcr(&mut self, offset: u64, value: u8) {
        let (chip, writable) =
            if offset & 1 == 0 { (&mut self.master, ELCR1_WRITABLE) } else { (&mut self.slave, ELCR2_WRITABLE) };
        if value & !writable != 0 {
            log::debug!("PIC: ELCR{} reserved bits {:#04x} ignored", offset % 2 + 1, value & !writable);
        }
        chip.elcr = value & writable;
        chip.irr = (chip.irr & !chip.elcr) | (chip.pins & chip.elcr);
        self.update_cascade();
    }

    /// The monitor's `info pic`: one line per chip in QEMU's layout (`pic0` the master),
    /// registers in hex, the highest-priority level and the special modes.
    pub fn info(&self) -> String {
        [("pic0", &self.master), ("pic1", &self.slave)]
            .iter()
            .map(|(name, chip)| {
                format!(
                    "{name}: irr={:02x} imr={:02x} isr={:02x} hprio={} irq_base={:02x} rr_sel={} elcr={:02x} fnm={} \
                     aeoi={} smm={}{}\n",
                    chip.irr,
                    chip.imr,
                    chip.isr,
                    chip.highest_priority,
                    chip.vector_base,
                    u8::from(chip.read_isr),
                    chip.elcr,
                    u8::from(chip.special_fully_nested),
                    u8::from(chip.auto_eoi),
                    u8::from(chip.special_mask),
                    if chip.init == InitStep::Ready { "" } else { " (initialising)" },
                )
            })
            .collect()
    }

    /// Propagates the slave's INT output to master IR2.
    fn update_cascade(&mut self) {
        let slave_int = self.slave.pending(false).is_some();
        self.master.set_pin(CASCADE_IR, slave_int);
    }
}

/// Bus view of one chip's two ports (offset 0: command/status, 1: data/mask).
pub struct PicPorts {
    pic: Arc<Mutex<PicPair>>,
    chip: PicChip,
}

impl PicPorts {
    /// The ports of `chip` of the shared `pic`.
    pub fn new(pic: Arc<Mutex<PicPair>>, chip: PicChip) -> Self {
        PicPorts { pic, chip }
    }
}

impl BusDevice for PicPorts {
    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        self.pic.lock().unwrap_or_else(|e| e.into_inner()).read_port(self.chip, offset) as u64
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        self.pic.lock().unwrap_or_else(|e| e.into_inner()).write_port(self.chip, offset, value as u8)
    }
}

/// Bus view of the ELCRs (offset 0: ELCR1 at 0x4D0, 1: ELCR2 at 0x4D1). A 16-bit
/// access at offset 0 covers both.
pub struct ElcrPorts {
    pic: Arc<Mutex<PicPair>>,
}

impl ElcrPorts {
    /// The ELCRs of the shared `pic`.
    pub fn new(pic: Arc<Mutex<PicPair>>) -> Self {
        ElcrPorts { pic }
    }
}

impl BusDevice for ElcrPorts {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        let pic = self.pic.lock().unwrap_or_else(|e| e.into_inner());
        (0..size.min(2) as u64).filter(|i| offset + i < 2).map(|i| (pic.read_elcr(offset + i) as u64) << (8 * i)).sum()
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        let mut pic = self.pic.lock().unwrap_or_else(|e| e.into_inner());
        for i in (0..size.min(2) as u64).filter(|i| offset + i < 2) {
            pic.write_elcr(offset + i, (value >> (8 * i)) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence Linux's `init_8259A` writes: vectors 0x30/0x38, cascade on IR2,
    /// 8086 mode, normal EOI.
    fn linux_init(pic: &mut PicPair) {
        pic.write_port(PicChip::Master, 1, 0xff);
        pic.write_port(PicChip::Slave, 1, 0xff);
        pic.write_port(PicChip::Master, 0, 0x11);
        pic.write_port(PicChip::Master, 1, 0x30);
        pic.write_port(PicChip::Master, 1, 0x04);
        pic.write_port(PicChip::Master, 1, 0x01);
        pic.write_port(PicChip::Slave, 0, 0x11);
        pic.write_port(PicChip::Slave, 1, 0x38);
        pic.write_port(PicChip::Slave, 1, 0x02);
        pic.write_port(PicChip::Slave, 1, 0x01);
        pic.write_port(PicChip::Master, 1, 0x00);
        pic.write_port(PicChip::Slave, 1, 0x00);
    }

    fn eoi(pic: &mut PicPair, chip: PicChip) {
        pic.write_port(chip, 0, 0x20);
    }

    #[test]
    fn info_is_one_qemu_style_line_per_chip() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.write_port(PicChip::Master, 1, 0xfa);
        pic.set_irq_level(0, true);
        pic.set_irq_level(1, true);
        pic.acknowledge();
        assert_eq!(
            pic.info(),
            "pic0: irr=02 imr=fa isr=01 hprio=0 irq_base=30 rr_sel=0 elcr=00 fnm=0 aeoi=0 smm=0\n\
             pic1: irr=00 imr=00 isr=00 hprio=0 irq_base=38 rr_sel=0 elcr=00 fnm=0 aeoi=0 smm=0\n"
        );
    }

    #[test]
    fn linux_init_sets_vectors_and_masks() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.write_port(PicChip::Master, 1, 0xfb);
        assert_eq!(pic.read_port(PicChip::Master, 1), 0xfb);
        pic.write_port(PicChip::Master, 1, 0x00);
        assert!(!pic.int_output());
        pic.set_irq_level(1, true);
        assert!(pic.int_output());
        assert_eq!(pic.acknowledge(), 0x31);
        assert!(!pic.int_output(), "IRQ1 in service, edge request consumed");
        pic.set_irq_level(12, true);
        assert!(!pic.int_output(), "IRQ12 (via IR2) ranks below in-service IRQ1");
        eoi(&mut pic, PicChip::Master);
        assert!(pic.int_output());
        assert_eq!(pic.acknowledge(), 0x38 + 4);
        pic.write_port(PicChip::Master, 0, 0x0b);
        assert_eq!(pic.read_port(PicChip::Master, 0), 0x04, "ISR: cascade input in service");
        pic.write_port(PicChip::Slave, 0, 0x0b);
        assert_eq!(pic.read_port(PicChip::Slave, 0), 0x10, "slave ISR: IR4 (IRQ12)");
    }

    #[test]
    fn edge_request_latches_a_pulse_level_request_follows_the_pin() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.write_elcr(1, 0x02); // IRQ9 level-triggered (the SCI)
        pic.set_irq_level(3, true);
        pic.set_irq_level(3, false);
        assert!(pic.int_output(), "edge request survives the fall of the pin");
        assert_eq!(pic.read_port(PicChip::Master, 0), 0x08, "IRR bit 3");
        assert_eq!(pic.acknowledge(), 0x33);
        eoi(&mut pic, PicChip::Master);
        assert!(!pic.int_output(), "one edge, one interrupt");
        pic.set_irq_level(3, true);
        assert_eq!(pic.acknowledge(), 0x33, "a new rising edge is a new request");
        eoi(&mut pic, PicChip::Master);
        pic.set_irq_level(3, true);
        assert!(!pic.int_output(), "a held-high edge input does not re-request");

        pic.set_irq_level(9, true);
        assert!(pic.int_output());
        assert_eq!(pic.acknowledge(), 0x39);
        eoi(&mut pic, PicChip::Slave);
        eoi(&mut pic, PicChip::Master);
        assert!(pic.int_output(), "level still high: requested again after EOI");
        pic.set_irq_level(9, false);
        pic.write_port(PicChip::Slave, 0, 0x0a);
        assert_eq!(pic.read_port(PicChip::Slave, 0), 0, "slave IRR follows the level pin");
        assert_eq!(pic.acknowledge(), 0x3f, "the master latched IR2: spurious IRQ15, as on real PCs");
        eoi(&mut pic, PicChip::Master);
        assert!(!pic.int_output());
    }

    #[test]
    fn elcr_keeps_reserved_bits_clear_and_views_cover_both_bytes() {
        let pic = Arc::new(Mutex::new(PicPair::new()));
        let mut elcr = ElcrPorts::new(pic.clone());
        elcr.write(0, 2, 0xffff);
        assert_eq!(elcr.read(0, 2), 0xdef8);
        assert_eq!(elcr.read(1, 1), 0xde);
        let mut master = PicPorts::new(pic.clone(), PicChip::Master);
        master.write(1, 1, 0x5a);
        assert_eq!(pic.lock().unwrap().read_port(PicChip::Master, 1), 0x5a);
    }

    #[test]
    fn specific_and_nonspecific_eoi_clear_the_right_isr_bit() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.set_irq_level(4, true);
        assert_eq!(pic.acknowledge(), 0x34);
        pic.set_irq_level(0, true);
        assert_eq!(pic.acknowledge(), 0x30, "IRQ0 outranks in-service IRQ4 (nesting)");
        pic.write_port(PicChip::Master, 0, 0x0b);
        assert_eq!(pic.read_port(PicChip::Master, 0), 0x11);
        eoi(&mut pic, PicChip::Master);
        assert_eq!(pic.read_port(PicChip::Master, 0), 0x10, "non-specific EOI clears the highest (IR0)");
        pic.set_irq_level(0, false);
        pic.set_irq_level(0, true);
        assert_eq!(pic.acknowledge(), 0x30);
        pic.write_port(PicChip::Master, 0, 0x60 | 4); // specific EOI IR4
        assert_eq!(pic.read_port(PicChip::Master, 0), 0x01);
    }

    #[test]
    fn rotate_on_eoi_makes_the_serviced_level_lowest() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.set_irq_level(3, true);
        assert_eq!(pic.acknowledge(), 0x33);
        pic.write_port(PicChip::Master, 0, 0xa0); // rotate on non-specific EOI
        pic.set_irq_level(1, true);
        pic.set_irq_level(5, true);
        assert_eq!(pic.acknowledge(), 0x35, "after rotation IR4 is highest, so IR5 beats IR1");
        pic.write_port(PicChip::Master, 0, 0xe0 | 5); // rotate on specific EOI IR5
        assert_eq!(pic.acknowledge(), 0x31);
        eoi(&mut pic, PicChip::Master);
        pic.write_port(PicChip::Master, 0, 0xc0 | 6); // set priority: IR6 lowest
        pic.set_irq_level(6, true);
        pic.set_irq_level(4, true);
        pic.set_irq_level(7, true);
        assert_eq!(pic.acknowledge(), 0x37, "IR7 now ranks highest");
    }

    #[test]
    fn auto_eoi_leaves_nothing_in_service_and_can_rotate() {
        let mut pic = PicPair::new();
        pic.write_port(PicChip::Master, 0, 0x13); // single, ICW4
        pic.write_port(PicChip::Master, 1, 0x08);
        pic.write_port(PicChip::Master, 1, 0x03); // AEOI, 8086
        pic.set_irq_level(5, true);
        assert_eq!(pic.acknowledge(), 0x0d);
        pic.write_port(PicChip::Master, 0, 0x0b);
        assert_eq!(pic.read_port(PicChip::Master, 0), 0);
        pic.write_port(PicChip::Master, 0, 0x80); // rotate in AEOI mode
        pic.set_irq_level(3, true);
        assert_eq!(pic.acknowledge(), 0x0b);
        pic.set_irq_level(2, true);
        pic.set_irq_level(4, true);
        assert_eq!(pic.acknowledge(), 0x0c, "IR3 became lowest, IR4 highest");
    }

    #[test]
    fn cascade_delivers_slave_vectors_and_refires_after_intack() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.set_irq_level(14, true);
        pic.set_irq_level(10, true);
        assert_eq!(pic.acknowledge(), 0x3a);
        eoi(&mut pic, PicChip::Slave);
        eoi(&mut pic, PicChip::Master);
        assert!(pic.int_output(), "IRQ14 still waiting on the slave re-raises IR2");
        assert_eq!(pic.acknowledge(), 0x3e);
        pic.write_port(PicChip::Slave, 1, 0x01);
        assert_eq!(pic.read_port(PicChip::Slave, 1), 0x01);
    }

    #[test]
    fn vanished_requests_give_spurious_vectors() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.write_elcr(0, 0x20);
        pic.set_irq_level(5, true);
        assert!(pic.int_output());
        pic.set_irq_level(5, false);
        assert_eq!(pic.acknowledge(), 0x37, "spurious IRQ7");
        pic.write_port(PicChip::Master, 0, 0x0b);
        assert_eq!(pic.read_port(PicChip::Master, 0), 0, "spurious IR7 is not put in service");

        pic.set_irq_level(11, true);
        assert!(pic.int_output());
        pic.write_port(PicChip::Slave, 1, 0x08); // mask IR3 of the slave after INT
        assert_eq!(pic.acknowledge(), 0x3f, "spurious IRQ15");
        assert_eq!(pic.read_port(PicChip::Master, 0), 0x04, "the master did put IR2 in service");
    }

    #[test]
    fn poll_mode_reads_and_acknowledges_the_highest_request() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.write_port(PicChip::Master, 0, 0x0c);
        assert_eq!(pic.read_port(PicChip::Master, 0), 0, "nothing pending");
        pic.set_irq_level(6, true);
        pic.write_port(PicChip::Master, 0, 0x0c);
        assert_eq!(pic.read_port(PicChip::Master, 1), 0x86, "poll applies to the next read of either port");
        assert!(!pic.int_output());
        pic.write_port(PicChip::Master, 0, 0x0b);
        assert_eq!(pic.read_port(PicChip::Master, 0), 0x40, "poll put IR6 in service");
    }

    #[test]
    fn special_mask_mode_admits_lower_priority_levels() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.set_irq_level(1, true);
        assert_eq!(pic.acknowledge(), 0x31);
        pic.set_irq_level(6, true);
        assert!(!pic.int_output());
        pic.write_port(PicChip::Master, 1, 0x02);
        pic.write_port(PicChip::Master, 0, 0x68); // set special mask mode
        assert!(pic.int_output());
        assert_eq!(pic.acknowledge(), 0x36);
        pic.write_port(PicChip::Master, 0, 0x48); // reset special mask mode
        pic.set_irq_level(7, true);
        assert!(!pic.int_output(), "nested priority again: IR6 in service blocks IR7");
    }

    #[test]
    fn special_fully_nested_mode_lets_higher_slave_requests_through() {
        for (icw4, nested_delivery) in [(0x01, false), (0x11, true)] {
            let mut pic = PicPair::new();
            linux_init(&mut pic);
            pic.write_port(PicChip::Master, 0, 0x11);
            pic.write_port(PicChip::Master, 1, 0x30);
            pic.write_port(PicChip::Master, 1, 0x04);
            pic.write_port(PicChip::Master, 1, icw4);
            pic.set_irq_level(12, true);
            assert_eq!(pic.acknowledge(), 0x3c);
            pic.set_irq_level(9, true);
            assert_eq!(pic.int_output(), nested_delivery, "ICW4 {icw4:#04x}");
            if nested_delivery {
                assert_eq!(pic.acknowledge(), 0x39);
            }
        }
    }

    #[test]
    fn icw1_clears_mask_and_edge_latches() {
        let mut pic = PicPair::new();
        linux_init(&mut pic);
        pic.write_port(PicChip::Master, 1, 0xff);
        pic.set_irq_level(3, true);
        pic.write_port(PicChip::Master, 0, 0x11);
        pic.write_port(PicChip::Master, 1, 0x20);
        pic.write_port(PicChip::Master, 1, 0x04);
        pic.write_port(PicChip::Master, 1, 0x01);
        assert_eq!(pic.read_port(PicChip::Master, 1), 0);
        assert!(!pic.int_output(), "the edge latched before ICW1 is forgotten");
        pic.set_irq_level(3, false);
        pic.set_irq_level(3, true);
        assert_eq!(pic.acknowledge(), 0x23);
    }

    #[test]
    fn fuzz_register_writes_never_panic() {
        let pic = Arc::new(Mutex::new(PicPair::new()));
        let mut master = PicPorts::new(pic.clone(), PicChip::Master);
        let mut slave = PicPorts::new(pic.clone(), PicChip::Slave);
        let mut elcr = ElcrPorts::new(pic.clone());
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = state >> 32;
            let offset = (state >> 8) & 3;
            match state % 8 {
                0 => master.write(offset, 1, value),
                1 => slave.write(offset, 1, value),
                2 => elcr.write(offset, (1 << (state >> 20 & 3)) as u8, value),
                3 => {
                    master.read(offset, 1);
                    slave.read(offset, 1);
                    elcr.read(offset, 2);
                }
                4 => pic.lock().unwrap().set_irq_level((value % 20) as u8, value & 0x100 != 0),
                _ => {
                    let mut p = pic.lock().unwrap();
                    if p.int_output() {
                        p.acknowledge();
                    }
                }
            }
        }
    }
}
