//! Descriptors and gates in words, for the monitor and the triple-fault diagnosis
//! (SDM Vol. 3A §3.4.5 segment descriptors, §3.5 system descriptor types, §6.11 IDT
//! descriptors, §6.14.1 64-bit mode IDT).

/// Decoded fields of a legacy 8-byte segment descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Base address (bits 0-31; a 16-byte system descriptor's upper half is not included).
    pub base: u64,
    /// Limit in bytes (scaled by G).
    pub limit: u32,
    /// Type field (4 bits).
    pub ty: u8,
    /// S: code/data (true) or system (false).
    pub code_or_data: bool,
    /// Descriptor privilege level.
    pub dpl: u8,
    /// Present.
    pub present: bool,
    /// L: 64-bit code.
    pub long: bool,
    /// D/B: 32-bit default size.
    pub big: bool,
}

impl Descriptor {
    /// Splits the 8 bytes of a descriptor.
    pub fn decode(raw: u64) -> Descriptor {
        let limit = ((raw & 0xffff) | ((raw >> 32) & 0xf_0000)) as u32;
        let g = raw & (1 << 55) != 0;
        Descriptor {
            base: ((raw >> 16) & 0xff_ffff) | (((raw >> 56) & 0xff) << 24),
            limit: if g { (limit << 12) | 0xfff } else { limit },
            ty: ((raw >> 40) & 0xf) as u8,
            code_or_data: raw & (1 << 44) != 0,
            dpl: ((raw >> 45) & 3) as u8,
            present: raw & (1 << 47) != 0,
            long: raw & (1 << 53) != 0,
            big: raw & (1 << 54) != 0,
        }
    }
}

/// Name of a system descriptor or gate type (SDM Table 3-2), for legacy or long mode.
fn system_type(ty: u8, long: bool) -> &'static str {
    match (ty, long) {
        (0x2, _) => "LDT",
        (0x1, false) => "16-bit TSS (available)",
        (0x3, false) => "16-bit TSS (busy)",
        (0x4, false) => "16-bit call gate",
        (0x5, false) => "task gate",
        (0x6, false) => "16-bit interrupt gate",
        (0x7, false) => "16-bit trap gate",
        (0x9, false) => "32-bit TSS (available)",
        (0xb, false) => "32-bit TSS (busy)",
        (0xc, false) => "32-bit call gate",
        (0xe, false) => "32-bit interrupt gate",
        (0xf, false) => "32-bit trap gate",
        (0x9, true) => "64-bit TSS (available)",
        (0xb, true) => "64-bit TSS (busy)",
        (0xc, true) => "64-bit call gate",
        (0xe, true) => "64-bit interrupt gate",
        (0xf, true) => "64-bit trap gate",
        _ => "reserved type (invalid)",
    }
}

/// A GDT/LDT entry in words: `code base=0x0 limit=0xffffffff DPL=0 64-bit present`.
pub fn describe_segment_descriptor(raw: u64, long_mode: bool) -> String {
    if raw == 0 {
        return "null descriptor".into();
    }
    let d = Descriptor::decode(raw);
    let kind = if !d.code_or_data {
        system_type(d.ty, long_mode).to_string()
    } else if d.ty & 0x8 != 0 {
        format!(
            "code ({}{})",
            if d.ty & 0x2 != 0 { "readable" } else { "execute-only" },
            if d.ty & 0x4 != 0 { ", conforming" } else { "" }
        )
    } else {
        format!(
            "data ({}{})",
            if d.ty & 0x2 != 0 { "writable" } else { "read-only" },
            if d.ty & 0x4 != 0 { ", expand-down" } else { "" }
        )
    };
    let size = if d.code_or_data && d.ty & 0x8 != 0 && d.long {
        "64-bit"
    } else if d.big {
        "32-bit"
    } else {
        "16-bit"
    };
    format!(
        "{kind} base={:#x} limit={:#x} DPL={} {}{}",
        d.base,
        d.limit,
        d.dpl,
        if d.code_or_data { size } else { "" },
        if d.present { " present" } else { " NOT PRESENT" }
    )
    .replace("  ", " ")
}

/// An IDT gate in words. `lo`/`hi` are the gate's two quadwords (`hi` is used in long
/// mode only): `32-bit interrupt gate -> 0008:0x101234 DPL=0 present`.
pub fn describe_gate(lo: u64, hi: u64, long_mode: bool) -> String {
    let ty = ((lo >> 40) & 0xf) as u8;
    let selector = (lo >> 16) & 0xffff;
    let mut offset = (lo & 0xffff) | (((lo >> 48) & 0xffff) << 16);
    if long_mode {
        offset |= (hi & 0xffff_ffff) << 32;
    }
    let dpl = (lo >> 45) & 3;
    let present = lo & (1 << 47) != 0;
    let s = lo & (1 << 44) != 0;
    let name = if s { "not a gate (S=1)" } else { system_type(ty, long_mode) };
    let target = if ty == 0x5 && !long_mode {
        format!("TSS selector {selector:#06x}")
    } else {
        format!("{selector:04x}:{offset:#x}")
    };
    let ist = if long_mode && (lo >> 32) & 7 != 0 { format!(" IST={}", (lo >> 32) & 7) } else { String::new() };
    format!("{name} -> {target} DPL={dpl}{ist}{}", if present { " present" } else { " NOT PRESENT" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_code_and_data_descriptors() {
        // The classic flat 4-GiB ring-0 code segment 0x00cf9a000000ffff.
        let s = describe_segment_descriptor(0x00cf_9a00_0000_ffff, false);
        assert_eq!(s, "code (readable) base=0x0 limit=0xffffffff DPL=0 32-bit present");
        // 64-bit code: L set, D clear (0x00af9a000000ffff).
        assert!(describe_segment_descriptor(0x00af_9a00_0000_ffff, true).contains("64-bit"));
        // Ring-3 data with base 0x12345678, byte granular limit 0xfff, not present.
        let d = Descriptor::decode(0x1240_7234_5678_0fff);
        assert_eq!((d.base, d.limit, d.dpl, d.present), (0x1234_5678, 0xfff, 3, false));
        assert_eq!(describe_segment_descriptor(0, false), "null descriptor");
    }

    #[test]
    fn gates_in_legacy_and_long_mode() {
        // 32-bit interrupt gate to 0008:0x00101234, DPL 0, present.
        let lo = 0x0010_8e00_0008_1234;
        assert_eq!(describe_gate(lo, 0, false), "32-bit interrupt gate -> 0008:0x101234 DPL=0 present");
        // The same bits in long mode with the high half 0xffffffff: a 64-bit offset.
        assert_eq!(
            describe_gate(lo | 2 << 32, 0xffff_ffff, true),
            "64-bit interrupt gate -> 0008:0xffffffff00101234 DPL=0 IST=2 present"
        );
        assert!(describe_gate(0, 0, false).contains("NOT PRESENT"));
    }
}
