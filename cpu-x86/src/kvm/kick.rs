//! Ends a blocking `KVM_RUN` when the machine clock reaches a deadline.
//!
//! A small thread sleeps until the deadline, then sets `kvm_run.immediate_exit` (so a
//! `KVM_RUN` that has not started yet returns at once) and signals the vCPU thread (so
//! one that is running returns with `EINTR`). The signal's handler does nothing; it
//! exists only so the signal interrupts the ioctl instead of killing the process.

use rx86_core::time::Clock;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

/// The signal used to kick the vCPU thread out of `KVM_RUN`.
pub fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

extern "C" fn ignore_signal(_: libc::c_int) {}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction with a zeroed struct, an empty mask and a handler that does
        // nothing is async-signal-safe; SA_RESTART is deliberately not set so KVM_RUN
        // returns EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = ignore_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut());
        }
    });
}

struct KickState {
    deadline: Option<u64>,
    target: Option<libc::pthread_t>,
    quit: bool,
}

struct Shared {
    state: Mutex<KickState>,
    wake: Condvar,
    immediate_exit: AtomicPtr<u8>,
}

/// The deadline thread of one vCPU.
pub struct Kicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Kicker {
    /// Starts the thread; `immediate_exit` points at the vCPU's `kvm_run.immediate_exit`.
    pub fn new(clock: Clock, immediate_exit: *mut u8) -> std::io::Result<Self> {
        install_handler();
        let shared = Arc::new(Shared {
            state: Mutex::new(KickState { deadline: None, target: None, quit: false }),
            wake: Condvar::new(),
            immediate_exit: AtomicPtr::new(immediate_exit),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("rx86-kvm-kick".into()).spawn(move || kick_loop(&s, &clock))?;
        Ok(Kicker { shared, thread: Some(thread) })
    }

    /// Arms the deadline for the calling (vCPU) thread.
    pub fn arm(&self, deadline_ns: u64) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: pthread_self has no preconditions.
        st.target = Some(unsafe { libc::pthread_self() });
        st.deadline = Some(deadline_ns);
        // SAFETY: the pointer targets the vCPU's kvm_run mapping, alive as long as the
        // engine that owns this kicker; a byte store is atomic on x86.
        unsafe { std::ptr::write_volatile(self.shared.immediate_exit.load(Ordering::Acquire), 0) };
        self.shared.wake.notify_one();
    }

    /// Disarms the deadline and clears a kick that was not consumed.
    pub fn disarm(&self) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.deadline = None;
        st.target = None;
        // SAFETY: as in `arm`.
        unsafe { std::ptr::write_volatile(self.shared.immediate_exit.load(Ordering::Acquire), 0) };
    }

    /// Clears `immediate_exit` after a kicked `KVM_RUN` returned.
    pub fn acknowledge(&self) {
        let _st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: as in `arm`.
        unsafe { std::ptr::write_volatile(self.shared.immediate_exit.load(Ordering::Acquire), 0) };
    }
}

fn kick_loop(shared: &Shared, clock: &Clock) {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    while !st.quit {
        match (st.deadline, st.target) {
            (Some(deadline), Some(target)) => {
                let now = clock.now_ns();
                if now >= deadline {
                    // SAFETY: see `Kicker::arm`; the target thread is the vCPU thread,
                    // which is inside `run` while a deadline is armed.
                    unsafe {
                        std::ptr::write_volatile(shared.immediate_exit.load(Ordering::Acquire), 1);
                        libc::pthread_kill(target, kick_signal());
                    }
                    st.deadline = None;
                } else {
                    let wait = Duration::from_nanos(deadline - now);
                    st = shared.wake.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
            _ => st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).quit = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
