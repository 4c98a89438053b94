//! What the board needs from a network backend, the far end of a NIC's cable: the user-mode
//! NAT ([`super::UserNet`]) or a host TAP interface ([`super::tap::TapNet`]). The board calls
//! it only from its machine loop, so traffic from the host enters the guest at instruction
//! boundaries whatever the backend.

use std::time::Duration;

/// A network backend as the board drives it.
pub trait NetBackend: Send {
    /// Takes a frame the guest transmitted (Ethernet header on, no CRC) at machine time
    /// `now_ns`.
    fn transmit(&mut self, frame: &[u8], now_ns: u64);
    /// Takes what the host delivered since the last call.
    fn poll(&mut self, now_ns: u64);
    /// The next frame for the guest, if any.
    fn peek_for_guest(&self) -> Option<&[u8]>;
    /// Removes the frame [`Self::peek_for_guest`] returned: it reached the guest at `now_ns`.
    fn pop_for_guest(&mut self, now_ns: u64);
    /// True while traffic may arrive from the host, so an idle machine should wait for it.
    fn host_active(&self) -> bool;
    /// Waits at most `timeout` (host time) for host traffic; true when some arrived.
    fn wait(&self, timeout: Duration) -> bool;
    /// The machine time at which the backend will have a frame for the guest without any
    /// host traffic (a replay's next frame); the machine loop ends its turn there.
    fn next_event(&self) -> Option<u64> {
        None
    }
    /// Lines for the monitor's `info network`.
    fn describe(&self) -> Vec<String>;
}
