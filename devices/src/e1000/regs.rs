//! Register offsets and bits of the 82540EM, with the names of the PCI/PCI-X Family of
//! Gigabit Ethernet Controllers Software Developer's Manual (8254x SDM), section 13
//! (register descriptions) and table 13-2 (register summary).

// Offsets in the memory BAR (and through IOADDR/IODATA).
/// Device Control.
pub const CTRL: u32 = 0x0000;
/// Device Status.
pub const STATUS: u32 = 0x0008;
/// EEPROM/Flash Control/Data.
pub const EECD: u32 = 0x0010;
/// EEPROM Read.
pub const EERD: u32 = 0x0014;
/// Extended Device Control.
pub const CTRL_EXT: u32 = 0x0018;
/// MDI Control (PHY access).
pub const MDIC: u32 = 0x0020;
/// Interrupt Cause Read (read to clear).
pub const ICR: u32 = 0x00c0;
/// Interrupt Throttling Rate.
pub const ITR: u32 = 0x00c4;
/// Interrupt Cause Set.
pub const ICS: u32 = 0x00c8;
/// Interrupt Mask Set/Read.
pub const IMS: u32 = 0x00d0;
/// Interrupt Mask Clear.
pub const IMC: u32 = 0x00d8;
/// Receive Control.
pub const RCTL: u32 = 0x0100;
/// Transmit Control.
pub const TCTL: u32 = 0x0400;
/// Receive Descriptor Base Address Low.
pub const RDBAL: u32 = 0x2800;
/// Receive Descriptor Base Address High.
pub const RDBAH: u32 = 0x2804;
/// Receive Descriptor Length (bytes, a multiple of 128).
pub const RDLEN: u32 = 0x2808;
/// Receive Descriptor Head.
pub const RDH: u32 = 0x2810;
/// Receive Descriptor Tail.
pub const RDT: u32 = 0x2818;
/// Transmit Descriptor Base Address Low.
pub const TDBAL: u32 = 0x3800;
/// Transmit Descriptor Base Address High.
pub const TDBAH: u32 = 0x3804;
/// Transmit Descriptor Length (bytes, a multiple of 128).
pub const TDLEN: u32 = 0x3808;
/// Transmit Descriptor Head.
pub const TDH: u32 = 0x3810;
/// Transmit Descriptor Tail.
pub const TDT: u32 = 0x3818;
/// First statistics register (CRCERRS); the block runs to 0x40FF, every counter read to clear.
pub const STATS_START: u32 = 0x4000;
/// End of the statistics block.
pub const STATS_END: u32 = 0x4100;
/// Good Packets Received Count.
pub const GPRC: u32 = 0x4074;
/// Good Packets Transmitted Count.
pub const GPTC: u32 = 0x4080;
/// Total Packets Received.
pub const TPR: u32 = 0x40d0;
/// Total Packets Transmitted.
pub const TPT: u32 = 0x40d4;
/// Receive Checksum Control.
pub const RXCSUM: u32 = 0x5000;
/// Multicast Table Array (128 dwords).
pub const MTA: u32 = 0x5200;
/// End of the MTA.
pub const MTA_END: u32 = 0x5400;
/// Receive Address Low, entry 0 (16 RAL/RAH pairs).
pub const RAL0: u32 = 0x5400;
/// Receive Address High, entry 0.
pub const RAH0: u32 = 0x5404;

// CTRL bits.
/// CTRL.FD: full duplex.
pub const CTRL_FD: u32 = 1 << 0;
/// CTRL.SLU: set link up.
pub const CTRL_SLU: u32 = 1 << 6;
/// CTRL.RST: device reset (self-clearing).
pub const CTRL_RST: u32 = 1 << 26;
/// CTRL.PHY_RST: PHY reset.
pub const CTRL_PHY_RST: u32 = 1 << 31;

// STATUS bits.
/// STATUS.FD: full duplex.
pub const STATUS_FD: u32 = 1 << 0;
/// STATUS.LU: link up.
pub const STATUS_LU: u32 = 1 << 1;
/// STATUS.SPEED = 10b: 1000 Mb/s.
pub const STATUS_SPEED_1000: u32 = 0b10 << 6;

// EECD bits (Microwire interface, section 5.3).
/// EECD.SK: clock input to the EEPROM.
pub const EECD_SK: u32 = 1 << 0;
/// EECD.CS: chip select.
pub const EECD_CS: u32 = 1 << 1;
/// EECD.DI: data input to the EEPROM.
pub const EECD_DI: u32 = 1 << 2;
/// EECD.DO: data output from the EEPROM.
pub const EECD_DO: u32 = 1 << 3;
/// EECD.FWE: flash write enable (two bits).
pub const EECD_FWE: u32 = 0b11 << 4;
/// EECD.EE_REQ: software requests direct EEPROM access.
pub const EECD_REQ: u32 = 1 << 6;
/// EECD.EE_GNT: access granted.
pub const EECD_GNT: u32 = 1 << 7;
/// EECD.EE_PRES: an EEPROM is present.
pub const EECD_PRES: u32 = 1 << 8;

// EERD bits (82540EM layout).
/// EERD.START: start a read.
pub const EERD_START: u32 = 1 << 0;
/// EERD.DONE: the read finished.
pub const EERD_DONE: u32 = 1 << 4;
/// EERD.ADDR shift (bits 15:8).
pub const EERD_ADDR_SHIFT: u32 = 8;
/// EERD.DATA shift (bits 31:16).
pub const EERD_DATA_SHIFT: u32 = 16;

// MDIC fields.
/// MDIC.DATA (bits 15:0).
pub const MDIC_DATA: u32 = 0xffff;
/// MDIC.REGADD shift (bits 20:16).
pub const MDIC_REGADD_SHIFT: u32 = 16;
/// MDIC.PHYADD shift (bits 25:21).
pub const MDIC_PHYADD_SHIFT: u32 = 21;
/// MDIC.OP shift (bits 27:26): 01b write, 10b read.
pub const MDIC_OP_SHIFT: u32 = 26;
/// MDIC.R: ready.
pub const MDIC_READY: u32 = 1 << 28;
/// MDIC.E: error (no PHY at that address).
pub const MDIC_ERROR: u32 = 1 << 30;

// Interrupt causes (ICR, ICS, IMS, IMC).
/// Transmit descriptor written back.
pub const ICR_TXDW: u32 = 1 << 0;
/// Transmit queue empty.
pub const ICR_TXQE: u32 = 1 << 1;
/// Link status change.
pub const ICR_LSC: u32 = 1 << 2;
/// Receive descriptor minimum threshold reached.
pub const ICR_RXDMT0: u32 = 1 << 4;
/// Receiver overrun (a frame arrived with no descriptor free).
pub const ICR_RXO: u32 = 1 << 6;
/// Receiver timer interrupt (a frame was stored).
pub const ICR_RXT0: u32 = 1 << 7;
/// The cause bits ICS and IMS take (bits 0-16).
pub const ICR_VALID: u32 = 0x0001_ffff;

// RCTL bits.
/// RCTL.EN: receiver enable.
pub const RCTL_EN: u32 = 1 << 1;
/// RCTL.UPE: unicast promiscuous.
pub const RCTL_UPE: u32 = 1 << 3;
/// RCTL.MPE: multicast promiscuous.
pub const RCTL_MPE: u32 = 1 << 4;
/// RCTL.RDMTS shift (bits 9:8): free-descriptor threshold 1/2, 1/4 or 1/8 of the ring.
pub const RCTL_RDMTS_SHIFT: u32 = 8;
/// RCTL.MO shift (bits 13:12): which destination address bits index the MTA.
pub const RCTL_MO_SHIFT: u32 = 12;
/// RCTL.BAM: accept broadcast.
pub const RCTL_BAM: u32 = 1 << 15;
/// RCTL.BSIZE shift (bits 17:16).
pub const RCTL_BSIZE_SHIFT: u32 = 16;
/// RCTL.BSEX: buffer sizes times 16.
pub const RCTL_BSEX: u32 = 1 << 25;
/// RCTL.SECRC: strip the Ethernet CRC.
pub const RCTL_SECRC: u32 = 1 << 26;

// TCTL bits.
/// TCTL.EN: transmitter enable.
pub const TCTL_EN: u32 = 1 << 1;

/// RXCSUM.IPOFLD: check the IPv4 header checksum of received frames.
pub const RXCSUM_IPOFLD: u32 = 1 << 8;
/// RXCSUM.TUOFLD: check the TCP/UDP checksum of received frames.
pub const RXCSUM_TUOFLD: u32 = 1 << 9;

/// RAH.AV: the receive address is valid.
pub const RAH_AV: u32 = 1 << 31;
