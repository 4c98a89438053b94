//! What the board needs from any network card: the frames the guest sent, and a way to offer
//! it frames from the network. Every NIC model implements [`NetworkCard`], so the board's glue
//! between the card and the NAT is written once.

/// What became of a frame offered to the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxOutcome {
    /// Stored in the guest's buffers.
    Delivered,
    /// Not for this NIC (address filter), the receiver is off, or the ring is broken: gone.
    Dropped,
    /// No free buffer yet: offer it again later.
    NoRoom,
}

/// A network card as the board drives it from its machine loop.
pub trait NetworkCard: Send {
    /// The frames the guest transmitted since the last call (Ethernet header on, no CRC).
    fn take_tx_frames(&mut self) -> Vec<Vec<u8>>;
    /// True when the guest transmitted frames the board has not taken yet.
    fn has_tx_frames(&self) -> bool;
    /// Offers a frame from the network (Ethernet header on, no CRC) to the receiver.
    fn receive(&mut self, frame: &[u8]) -> RxOutcome;
    /// One line on the card's state, for the monitor's `info network`.
    fn describe(&self) -> String;
}
