//! The input side of character devices: reader threads put what they read into an
//! [`InputSink`]; the machine loop, idle, waits on the [`InputSignal`] they raise.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Raised whenever any character device receives input, so an idle machine loop wakes at
/// once instead of at the end of its poll interval. One per run, shared by every device.
#[derive(Clone, Default)]
pub struct InputSignal {
    raised: Arc<(Mutex<bool>, Condvar)>,
}

impl InputSignal {
    /// Wakes a waiter (or the next one).
    pub fn raise(&self) {
        let (flag, cond) = &*self.raised;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cond.notify_all();
    }

    /// Waits until input arrived since the last wait, or for `timeout`; true when it did.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (flag, cond) = &*self.raised;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) =
            cond.wait_timeout_while(guard, timeout, |raised| !*raised).unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *guard)
    }
}

type Deliver = dyn FnMut(&[u8]) + Send;

/// Where a reader thread puts the bytes it reads. Clones share one destination; once the
/// last clone is dropped the destination learns that no more input will come.
#[derive(Clone)]
pub struct InputSink {
    deliver: Arc<Mutex<Box<Deliver>>>,
    signal: InputSignal,
}

impl InputSink {
    /// A sink that calls `deliver` with each chunk read.
    pub fn new(signal: &InputSignal, deliver: impl FnMut(&[u8]) + Send + 'static) -> Self {
        InputSink { deliver: Arc::new(Mutex::new(Box::new(deliver))), signal: signal.clone() }
    }

    /// A sink feeding a channel, and the channel's receiving end.
    pub fn channel(signal: &InputSignal) -> (Self, Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel();
        let sink = InputSink::new(signal, move |bytes: &[u8]| {
            // The receiver goes away only when the run ends; nothing is left to tell.
            let _ = tx.send(bytes.to_vec());
        });
        (sink, rx)
    }

    /// Hands `bytes` on and raises the signal.
    pub fn deliver(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        (self.deliver.lock().unwrap_or_else(|e| e.into_inner()))(bytes);
        self.signal.raise();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_delivers_raises_and_closes_with_its_last_clone() {
        let signal = InputSignal::default();
        let (sink, rx) = InputSink::channel(&signal);
        let clone = sink.clone();
        assert!(!signal.wait(Duration::ZERO));
        clone.deliver(b"ab");
        assert!(signal.wait(Duration::ZERO));
        assert!(!signal.wait(Duration::ZERO), "a wait consumes the signal");
        assert_eq!(rx.try_recv().unwrap(), b"ab");
        drop(sink);
        assert!(rx.try_recv().is_err());
        drop(clone);
        assert!(matches!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected)));
    }

    #[test]
    fn a_waiter_on_another_thread_is_woken() {
        let signal = InputSignal::default();
        let s = signal.clone();
        let t = std::thread::spawn(move || s.wait(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(10));
        signal.raise();
        assert!(t.join().unwrap());
    }
}
