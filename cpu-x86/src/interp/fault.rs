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

/// Why an instruction did not complete: a small `Copy` value, so `R<()>` comes back in
/// registers from every handler (not through memory), and a JIT can return it from a
/// helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A guest exception (delivered through the IVT/IDT).
    Exc(Exception),
    /// Something this CPU model does not emulate. What it was is kept beside the CPU
    /// state (`Ctx::unsupported`), off the hot path.
    Unsupported,
}

/// Result of an instruction step.
pub type R<T> = Result<T, Fault>;

impl Fault {
    /// An exception without error code.
    pub fn exc(vector: u8) -> Fault {
        Fault::Exc(Exception { vector, error: None })
    }

    /// An exception with an error code.
    pub fn exc_code(vector: u8, error: u32) -> Fault {
        Fault::Exc(Exception { vector, error: Some(error) })
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
    fn fault_results_fit_in_two_registers() {
        assert!(std::mem::size_of::<R<()>>() <= 16);
    }

    #[test]
    fn double_fault_table() {
        assert!(is_double_fault(vec::GP, vec::NP));
        assert!(is_double_fault(vec::PF, vec::PF));
        assert!(!is_double_fault(vec::GP, vec::PF));
        assert!(!is_double_fault(vec::UD, vec::GP));
    }
}
