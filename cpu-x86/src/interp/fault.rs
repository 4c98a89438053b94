//! Guest faults as values: every instruction returns `Result<_, Fault>` and faults
//! propagate with `?` to the delivery code in `interrupt.rs`.
//!
//! SDM Vol. 3A §6.3.1 (exception vectors), §6.15 (exception classes).

/// Exception vectors (SDM Vol. 3A Table 6-1).
pub mod vec {
    /// Divide error.
    pub const DE: u8 = 0;
    /// Debug.
    pub const DB: u8 = 1;
    /// Non-maskable interrupt.
    pub const NMI: u8 = 2;
    /// Breakpoint (INT3).
    pub const BP: u8 = 3;
    /// Overflow (INTO).
    pub const OF: u8 = 4;
    /// BOUND range exceeded.
    pub const BR: u8 = 5;
    /// Invalid opcode.
    pub const UD: u8 = 6;
    /// Device not available.
    pub const NM: u8 = 7;
    /// Double fault.
    pub const DF: u8 = 8;
    /// Invalid TSS.
    pub const TS: u8 = 10;
    /// Segment not present.
    pub const NP: u8 = 11;
    /// Stack-segment fault.
    pub const SS: u8 = 12;
    /// General protection.
    pub const GP: u8 = 13;
    /// Page fault.
    pub const PF: u8 = 14;
    /// x87 floating-point error.
    pub const MF: u8 = 16;
    /// Alignment check.
    pub const AC: u8 = 17;
    /// SIMD floating-point exception.
    pub const XM: u8 = 19;
}

/// A guest exception to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    /// Vector.
    pub vector: u8,
    /// Error code pushed in protected mode, when the vector has one.
    pub error: Option<u32>,
}

/// An [`Exception`] packed into 32 bits for [`Fault`]: bits 15:0 the error code (every
/// x86 error code fits: selector-based codes and #PF's flag bits), bits 23:16 the vector,
/// bit 24 set when there is an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedException(u32);

/// Bit of [`PackedException`] set when an error code is pushed.
const HAS_ERROR: u32 = 1 << 24;

impl PackedException {
    /// Packs `e`.
    pub fn new(e: Exception) -> Self {
        let error = e.error.map_or(0, |code| {
            debug_assert!(code <= 0xffff, "error code {code:#x} wider than 16 bits");
            HAS_ERROR | (code & 0xffff)
        });
        PackedException(error | (e.vector as u32) << 16)
    }

    /// The exception.
    pub fn unpack(self) -> Exception {
        let error = (self.0 & HAS_ERROR != 0).then_some(self.0 & 0xffff);
        Exception { vector: (self.0 >> 16) as u8, error }
    }
}

/// Why an instruction did not complete: an 8-byte `Copy` value, so `R<()>` comes back
/// in a register from every handler (not through memory), and a JIT can return it
/// from a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A guest exception (delivered through the IVT/IDT).
    Exc(PackedException),
    /// Something this CPU model does not emulate. What it was is kept beside the CPU
    /// state (`Ctx::unsupported`), off the hot path.
    Unsupported,
}

/// Result of an instruction step.
pub type R<T> = Result<T, Fault>;

impl From<Exception> for Fault {
    fn from(e: Exception) -> Fault {
        Fault::Exc(PackedException::new(e))
    }
}

impl Fault {
    /// An exception without error code.
    pub fn exc(vector: u8) -> Fault {
        Exception { vector, error: None }.into()
    }

    /// An exception with an error code.
    pub fn exc_code(vector: u8, error: u32) -> Fault {
        Exception { vector, error: Some(error) }.into()
    }

    /// #UD.
    pub fn ud() -> Fault {
        Fault::exc(vec::UD)
    }

    /// #GP(code).
    pub fn gp(code: u32) -> Fault {
        Fault::exc_code(vec::GP, code)
    }

    /// #SS(code).
    pub fn ss(code: u32) -> Fault {
        Fault::exc_code(vec::SS, code)
    }

    /// #NP(code).
    pub fn np(code: u32) -> Fault {
        Fault::exc_code(vec::NP, code)
    }

    /// #TS(code).
    pub fn ts(code: u32) -> Fault {
        Fault::exc_code(vec::TS, code)
    }
}

/// Exception class for the double-fault rules (SDM Vol. 3A Table 6-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Benign exceptions and interrupts.
    Benign,
    /// #DE, #TS, #NP, #SS, #GP.
    Contributory,
    /// #PF.
    PageFault,
}

/// The class of `vector`.
pub fn class(vector: u8) -> Class {
    match vector {
        vec::DE | vec::TS | vec::NP | vec::SS | vec::GP => Class::Contributory,
        vec::PF => Class::PageFault,
        _ => Class::Benign,
    }
}

/// True when a fault while delivering `first` turns `second` into #DF.
pub fn is_double_fault(first: u8, second: u8) -> bool {
    matches!(
        (class(first), class(second)),
        (Class::Contributory, Class::Contributory) | (Class::PageFault, Class::Contributory | Class::PageFault)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_results_fit_in_a_register() {
        assert_eq!(std::mem::size_of::<R<()>>(), 8);
    }

    #[test]
    fn packed_exceptions_round_trip() {
        for e in [
            Exception { vector: vec::PF, error: Some(0x1f) },
            Exception { vector: vec::GP, error: Some(0xfffc) },
            Exception { vector: vec::DF, error: Some(0) },
            Exception { vector: 0xff, error: None },
        ] {
            assert_eq!(PackedException::new(e).unpack(), e);
        }
    }

    #[test]
    fn double_fault_table() {
        assert!(is_double_fault(vec::GP, vec::NP));
        assert!(is_double_fault(vec::PF, vec::PF));
        assert!(!is_double_fault(vec::GP, vec::PF));
        assert!(!is_double_fault(vec::UD, vec::GP));
    }
}
