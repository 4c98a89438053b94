//! gdb register layouts for each CPU mode, as one table per layout from which both the
//! target description (gdb's "Target Descriptions" appendix, features
//! `org.gnu.gdb.i386.core`, `.sse`, `.segments`) and the `g`/`G`/`p`/`P` packet encoding
//! are derived, so the two can never disagree.
//!
//! - [`Layout::Any`] (the default): no architecture named, so gdb keeps the one it has, from
//!   `set architecture` or the ELF given to `file` (else its default, x86-64), whatever mode
//!   the guest is in; the registers are the x86-64 set in gdb's amd64 order followed by the
//!   32-bit names (`eax`..`edi`, `eip`), so the description validates under i8086, i386 and
//!   x86-64 alike. One layout for the whole session: nothing to re-read when the guest
//!   switches mode, and `set architecture` later switches gdb's view on the same registers.
//! - [`Layout::I8086`]: real and virtual-8086 mode. gdb's i8086 architecture takes the
//!   i386 register set; values are the full 32-bit registers.
//! - [`Layout::I386`]: 16/32-bit protected mode and compatibility mode.
//! - [`Layout::X86_64`]: 64-bit mode.
//!
//! Every layout adds the state gdb has no standard place for in a feature of ours,
//! `org.rx86.x86.system`: the hidden segment bases, CR0/2/3/4/8, EFER, GDTR, IDTR, LDTR,
//! TR and KERNEL_GS_BASE. Writes narrower than a register keep its upper bits.

use rx86_cpu::debug::{seg, CpuMode, DebugRegs};
use std::fmt::Write;

/// Which register set gdb is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Any architecture gdb has chosen: x86-64 registers plus the 32-bit names.
    Any,
    /// Real mode: the i386 set under gdb's `i8086` architecture.
    I8086,
    /// Protected and compatibility mode: the i386 set.
    I386,
    /// 64-bit mode: the x86-64 set.
    X86_64,
}

/// Where a register's value lives in [`DebugRegs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Gpr(usize),
    Rip,
    Eflags,
    Selector(usize),
    St(usize),
    Fctrl,
    Fstat,
    Ftag,
    /// FCS/FDS: not kept by the CPU model (reads 0, writes ignored).
    FpuSelector,
    Fioff,
    Fooff,
    Fop,
    Xmm(usize),
    Mxcsr,
    SegBase(usize),
    Cr(u8),
    Efer,
    GdtrBase,
    GdtrLimit,
    IdtrBase,
    IdtrLimit,
    Ldtr,
    Tr,
    KernelGsBase,
}

/// The target-description feature a register belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feature {
    Core,
    Sse,
    Segments,
    System,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::Core => "org.gnu.gdb.i386.core",
            Feature::Sse => "org.gnu.gdb.i386.sse",
            Feature::Segments => "org.gnu.gdb.i386.segments",
            Feature::System => "org.rx86.x86.system",
        }
    }
}

/// One register of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegDef {
    /// gdb's name for it.
    pub name: String,
    /// Size in bits.
    pub bits: u32,
    ty: &'static str,
    feature: Feature,
    val: Val,
}

/// i386 GPR names in encoding order.
const GPR32: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
/// amd64 GPRs in gdb's order (not the encoding order): name and encoding number.
const GPR64: [(&str, usize); 16] = [
    ("rax", 0),
    ("rbx", 3),
    ("rcx", 1),
    ("rdx", 2),
    ("rsi", 6),
    ("rdi", 7),
    ("rbp", 5),
    ("rsp", 4),
    ("r8", 8),
    ("r9", 9),
    ("r10", 10),
    ("r11", 11),
    ("r12", 12),
    ("r13", 13),
    ("r14", 14),
    ("r15", 15),
];
/// Segment registers in gdb's order, with their encoding numbers.
const SEGS: [(&str, usize); 6] =
    [("cs", seg::CS), ("ss", seg::SS), ("ds", seg::DS), ("es", seg::ES), ("fs", seg::FS), ("gs", seg::GS)];

fn def(name: &str, bits: u32, ty: &'static str, feature: Feature, val: Val) -> RegDef {
    RegDef { name: name.to_string(), bits, ty, feature, val }
}

impl Layout {
    /// The layout that shows `mode` truthfully.
    pub fn for_mode(mode: CpuMode) -> Layout {
        match mode {
            CpuMode::Real | CpuMode::V86 => Layout::I8086,
            CpuMode::Protected16 | CpuMode::Protected32 | CpuMode::Compat => Layout::I386,
            CpuMode::Long64 => Layout::X86_64,
        }
    }

    /// gdb's architecture name; `None` for [`Layout::Any`], which names none.
    pub fn architecture(self) -> Option<&'static str> {
        match self {
            Layout::Any => None,
            Layout::I8086 => Some("i8086"),
            Layout::I386 => Some("i386"),
            Layout::X86_64 => Some("i386:x86-64"),
        }
    }

    /// The name `monitor layout` takes and shows.
    pub fn name(self) -> &'static str {
        self.architecture().unwrap_or("any")
    }

    /// The registers in packet order (the gdb register numbers are the indices).
    pub fn registers(self) -> Vec<RegDef> {
        use Feature::*;
        let wide = matches!(self, Layout::X86_64 | Layout::Any);
        // gdb sizes a pointer-typed register by its architecture's pointers, which under Any
        // may be 4 or 8 bytes: there every register gets a sized integer type.
        let any = self == Layout::Any;
        let (code_ptr, data_ptr) = if any { ("int64", "int64") } else { ("code_ptr", "data_ptr") };
        let word = if wide { 64 } else { 32 };
        let mut r = Vec::new();
        if wide {
            for (name, n) in GPR64 {
                let ty = match name {
                    "rsp" | "rbp" => data_ptr,
                    _ => "int64",
                };
                r.push(def(name, 64, ty, Core, Val::Gpr(n)));
            }
            r.push(def("rip", 64, code_ptr, Core, Val::Rip));
        } else {
            for (n, name) in GPR32.iter().enumerate() {
                let ty = if matches!(*name, "esp" | "ebp") { "data_ptr" } else { "int32" };
                r.push(def(name, 32, ty, Core, Val::Gpr(n)));
            }
            r.push(def("eip", 32, "code_ptr", Core, Val::Rip));
        }
        r.push(def("eflags", 32, "i386_eflags", Core, Val::Eflags));
        for (name, n) in SEGS {
            r.push(def(name, 32, "int32", Core, Val::Selector(n)));
        }
        for i in 0..8 {
            r.push(def(&format!("st{i}"), 80, "i387_ext", Core, Val::St(i)));
        }
        for (name, v) in [
            ("fctrl", Val::Fctrl),
            ("fstat", Val::Fstat),
            ("ftag", Val::Ftag),
            ("fiseg", Val::FpuSelector),
            ("fioff", Val::Fioff),
            ("foseg", Val::FpuSelector),
            ("fooff", Val::Fooff),
            ("fop", Val::Fop),
        ] {
            r.push(def(name, 32, "int", Core, v));
        }
        for i in 0..if wide { 16 } else { 8 } {
            r.push(def(&format!("xmm{i}"), 128, "vec128", Sse, Val::Xmm(i)));
        }
        r.push(def("mxcsr", 32, "i386_mxcsr", Sse, Val::Mxcsr));
        r.push(def("fs_base", word, "int", Segments, Val::SegBase(seg::FS)));
        r.push(def("gs_base", word, "int", Segments, Val::SegBase(seg::GS)));
        for (name, n) in [("cs", seg::CS), ("ss", seg::SS), ("ds", seg::DS), ("es", seg::ES)] {
            r.push(def(&format!("{name}_base"), word, "int", System, Val::SegBase(n)));
        }
        // 64 bits in every layout: the size of its flags type.
        r.push(def("cr0", 64, "rx86_cr0", System, Val::Cr(0)));
        for n in [2u8, 3, 4, 8] {
            r.push(def(&format!("cr{n}"), word, "int", System, Val::Cr(n)));
        }
        r.push(def("efer", 64, "rx86_efer", System, Val::Efer));
        r.push(def("gdtr_base", word, "int", System, Val::GdtrBase));
        r.push(def("gdtr_limit", 32, "int", System, Val::GdtrLimit));
        r.push(def("idtr_base", word, "int", System, Val::IdtrBase));
        r.push(def("idtr_limit", 32, "int", System, Val::IdtrLimit));
        r.push(def("ldtr", 32, "int32", System, Val::Ldtr));
        r.push(def("tr", 32, "int32", System, Val::Tr));
        if wide {
            r.push(def("k_gs_base", 64, "int", System, Val::KernelGsBase));
        }
        if any {
            // The i386 names gdb's i8086 and i386 architectures look for; under x86-64 they
            // are extra registers holding the low halves.
            for (n, name) in GPR32.iter().enumerate() {
                r.push(def(name, 32, "int32", Core, Val::Gpr(n)));
            }
            r.push(def("eip", 32, "int32", Core, Val::Rip));
        }
        r
    }

    /// The target description XML gdb reads through `qXfer:features:read:target.xml`.
    pub fn target_xml(self) -> String {
        let regs = self.registers();
        let mut x = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n");
        x.push_str("<target version=\"1.0\">\n");
        if let Some(arch) = self.architecture() {
            let _ = writeln!(x, "  <architecture>{arch}</architecture>");
        }
        // A bare-metal guest: without this, gdb applies its GNU/Linux i386 ABI, which
        // rejects the segment-base registers of a 32-bit description.
        x.push_str("  <osabi>none</osabi>\n");
        for feature in [Feature::Core, Feature::Sse, Feature::Segments, Feature::System] {
            let _ = writeln!(x, "  <feature name=\"{}\">", feature.name());
            x.push_str(match feature {
                Feature::Core => EFLAGS_TYPE,
                Feature::Sse => SSE_TYPES,
                Feature::Segments => "",
                Feature::System => SYSTEM_TYPES,
            });
            for (n, r) in regs.iter().enumerate().filter(|(_, r)| r.feature == feature) {
                let group = match r.val {
                    Val::St(_)
                    | Val::Fctrl
                    | Val::Fstat
                    | Val::Ftag
                    | Val::FpuSelector
                    | Val::Fioff
                    | Val::Fooff
                    | Val::Fop => " group=\"float\"",
                    Val::Xmm(_) | Val::Mxcsr => " group=\"vector\"",
                    _ => "",
                };
                let _ = writeln!(
                    x,
                    "    <reg name=\"{}\" bitsize=\"{}\" type=\"{}\" regnum=\"{n}\"{group}/>",
                    r.name, r.bits, r.ty
                );
            }
            x.push_str("  </feature>\n");
        }
        x.push_str("</target>\n");
        x
    }

    /// All registers, little-endian, in packet order (the `g` reply).
    pub fn serialize(self, regs: &DebugRegs) -> Vec<u8> {
        let mut out = Vec::new();
        for r in self.registers() {
            out.extend_from_slice(&get(regs, r.val)[..r.bits as usize / 8]);
        }
        out
    }

    /// Applies a `G` packet's bytes: the registers whose value it changes (so of two names
    /// for one register, `rax` and `eax`, the one gdb changed wins); registers the packet does
    /// not reach keep their value. False when the packet holds not even the first register.
    pub fn deserialize(self, bytes: &[u8], regs: &mut DebugRegs) -> bool {
        let before = self.serialize(regs);
        let mut at = 0;
        for r in self.registers() {
            let n = r.bits as usize / 8;
            let Some(chunk) = bytes.get(at..at + n) else { break };
            if before.get(at..at + n) != Some(chunk) {
                set(regs, r.val, r.bits, chunk);
            }
            at += n;
        }
        at > 0 || bytes.is_empty()
    }

    /// Register number `n` (the `p` reply), or `None` when the layout has no such register.
    pub fn read_one(self, n: usize, regs: &DebugRegs) -> Option<Vec<u8>> {
        let r = self.registers().into_iter().nth(n)?;
        Some(get(regs, r.val)[..r.bits as usize / 8].to_vec())
    }

    /// Writes register number `n` (a `P` packet); false for an unknown number or a value
    /// of the wrong size.
    pub fn write_one(self, n: usize, bytes: &[u8], regs: &mut DebugRegs) -> bool {
        match self.registers().into_iter().nth(n) {
            Some(r) if bytes.len() == r.bits as usize / 8 => {
                set(regs, r.val, r.bits, bytes);
                true
            }
            _ => false,
        }
    }
}

/// The value of `v` as 16 little-endian bytes.
fn get(r: &DebugRegs, v: Val) -> [u8; 16] {
    let int: u128 = match v {
        Val::St(i) => {
            let mut b = [0u8; 16];
            b[..10].copy_from_slice(&r.fpu.st[i]);
            return b;
        }
        Val::Gpr(n) => r.gpr[n] as u128,
        Val::Rip => r.rip as u128,
        Val::Eflags => r.rflags as u128,
        Val::Selector(n) => r.seg[n].selector as u128,
        Val::Fctrl => r.fpu.fcw as u128,
        Val::Fstat => r.fpu.fsw as u128,
        Val::Ftag => r.fpu.ftw as u128,
        Val::FpuSelector => 0,
        Val::Fioff => r.fpu.fip as u128,
        Val::Fooff => r.fpu.fdp as u128,
        Val::Fop => r.fpu.fop as u128,
        Val::Xmm(n) => r.xmm[n],
        Val::Mxcsr => r.mxcsr as u128,
        Val::SegBase(n) => r.seg[n].base as u128,
        Val::Cr(0) => r.cr0 as u128,
        Val::Cr(2) => r.cr2 as u128,
        Val::Cr(3) => r.cr3 as u128,
        Val::Cr(4) => r.cr4 as u128,
        Val::Cr(_) => r.cr8 as u128,
        Val::Efer => r.efer as u128,
        Val::GdtrBase => r.gdtr.base as u128,
        Val::GdtrLimit => r.gdtr.limit as u128,
        Val::IdtrBase => r.idtr.base as u128,
        Val::IdtrLimit => r.idtr.limit as u128,
        Val::Ldtr => r.ldtr.selector as u128,
        Val::Tr => r.tr.selector as u128,
        Val::KernelGsBase => r.kernel_gs_base as u128,
    };
    int.to_le_bytes()
}

/// Stores `bytes` (a `bits`-wide little-endian value) into `v`, keeping the bits above
/// `bits` of a wider field.
fn set(r: &mut DebugRegs, v: Val, bits: u32, bytes: &[u8]) {
    if let Val::St(i) = v {
        r.fpu.st[i].copy_from_slice(&bytes[..10]);
        return;
    }
    let mut b = [0u8; 16];
    b[..bytes.len().min(16)].copy_from_slice(&bytes[..bytes.len().min(16)]);
    let new = u128::from_le_bytes(b);
    let merge = |old: u64| -> u64 {
        if bits >= 64 {
            new as u64
        } else {
            let mask = (1u64 << bits) - 1;
            (old & !mask) | (new as u64 & mask)
        }
    };
    match v {
        Val::St(_) => {}
        Val::Gpr(n) => r.gpr[n] = merge(r.gpr[n]),
        Val::Rip => r.rip = merge(r.rip),
        Val::Eflags => r.rflags = merge(r.rflags),
        Val::Selector(n) => {
            let sel = new as u16;
            if sel != r.seg[n].selector && matches!(r.mode, CpuMode::Real | CpuMode::V86) {
                r.seg[n].base = (sel as u64) << 4;
            }
            r.seg[n].selector = sel;
        }
        Val::Fctrl => r.fpu.fcw = new as u16,
        Val::Fstat => r.fpu.fsw = new as u16,
        Val::Ftag => r.fpu.ftw = new as u16,
        Val::FpuSelector => {}
        Val::Fioff => r.fpu.fip = merge(r.fpu.fip),
        Val::Fooff => r.fpu.fdp = merge(r.fpu.fdp),
        Val::Fop => r.fpu.fop = new as u16,
        Val::Xmm(n) => r.xmm[n] = new,
        Val::Mxcsr => r.mxcsr = new as u32,
        Val::SegBase(n) => r.seg[n].base = merge(r.seg[n].base),
        Val::Cr(0) => r.cr0 = merge(r.cr0),
        Val::Cr(2) => r.cr2 = merge(r.cr2),
        Val::Cr(3) => r.cr3 = merge(r.cr3),
        Val::Cr(4) => r.cr4 = merge(r.cr4),
        Val::Cr(_) => r.cr8 = merge(r.cr8),
        Val::Efer => r.efer = merge(r.efer),
        Val::GdtrBase => r.gdtr.base = merge(r.gdtr.base),
        Val::GdtrLimit => r.gdtr.limit = new as u32,
        Val::IdtrBase => r.idtr.base = merge(r.idtr.base),
        Val::IdtrLimit => r.idtr.limit = new as u32,
        Val::Ldtr => r.ldtr.selector = new as u16,
        Val::Tr => r.tr.selector = new as u16,
        Val::KernelGsBase => r.kernel_gs_base = merge(r.kernel_gs_base),
    }
}

/// EFLAGS bits (SDM Vol. 1 §3.4.3) as a gdb flags type.
const EFLAGS_TYPE: &str = r#"    <flags id="i386_eflags" size="4">
      <field name="CF" start="0" end="0"/>
      <field name="" start="1" end="1"/>
      <field name="PF" start="2" end="2"/>
      <field name="AF" start="4" end="4"/>
      <field name="ZF" start="6" end="6"/>
      <field name="SF" start="7" end="7"/>
      <field name="TF" start="8" end="8"/>
      <field name="IF" start="9" end="9"/>
      <field name="DF" start="10" end="10"/>
      <field name="OF" start="11" end="11"/>
      <field name="NT" start="14" end="14"/>
      <field name="RF" start="16" end="16"/>
      <field name="VM" start="17" end="17"/>
      <field name="AC" start="18" end="18"/>
      <field name="VIF" start="19" end="19"/>
      <field name="VIP" start="20" end="20"/>
      <field name="ID" start="21" end="21"/>
    </flags>
"#;

/// The XMM vector views and MXCSR bits (SDM Vol. 1 §10.2.3).
const SSE_TYPES: &str = r#"    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v16i8" type="int8" count="16"/>
    <vector id="v8i16" type="int16" count="8"/>
    <vector id="v4i32" type="int32" count="4"/>
    <vector id="v2i64" type="int64" count="2"/>
    <union id="vec128">
      <field name="v4_float" type="v4f"/>
      <field name="v2_double" type="v2d"/>
      <field name="v16_int8" type="v16i8"/>
      <field name="v8_int16" type="v8i16"/>
      <field name="v4_int32" type="v4i32"/>
      <field name="v2_int64" type="v2i64"/>
      <field name="uint128" type="uint128"/>
    </union>
    <flags id="i386_mxcsr" size="4">
      <field name="IE" start="0" end="0"/>
      <field name="DE" start="1" end="1"/>
      <field name="ZE" start="2" end="2"/>
      <field name="OE" start="3" end="3"/>
      <field name="UE" start="4" end="4"/>
      <field name="PE" start="5" end="5"/>
      <field name="DAZ" start="6" end="6"/>
      <field name="IM" start="7" end="7"/>
      <field name="DM" start="8" end="8"/>
      <field name="ZM" start="9" end="9"/>
      <field name="OM" start="10" end="10"/>
      <field name="UM" start="11" end="11"/>
      <field name="PM" start="12" end="12"/>
      <field name="FZ" start="15" end="15"/>
    </flags>
"#;

/// CR0 (SDM Vol. 3A §2.5) and EFER (§2.2.1) bits, so `info registers` names them.
const SYSTEM_TYPES: &str = r#"    <flags id="rx86_cr0" size="8">
      <field name="PE" start="0" end="0"/>
      <field name="MP" start="1" end="1"/>
      <field name="EM" start="2" end="2"/>
      <field name="TS" start="3" end="3"/>
      <field name="ET" start="4" end="4"/>
      <field name="NE" start="5" end="5"/>
      <field name="WP" start="16" end="16"/>
      <field name="AM" start="18" end="18"/>
      <field name="NW" start="29" end="29"/>
      <field name="CD" start="30" end="30"/>
      <field name="PG" start="31" end="31"/>
    </flags>
    <flags id="rx86_efer" size="8">
      <field name="SCE" start="0" end="0"/>
      <field name="LME" start="8" end="8"/>
      <field name="LMA" start="10" end="10"/>
      <field name="NXE" start="11" end="11"/>
    </flags>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DebugRegs {
        let mut r = DebugRegs { rip: 0x1_0000_1234, rflags: 0x246, mode: CpuMode::Long64, ..DebugRegs::default() };
        for (i, g) in r.gpr.iter_mut().enumerate() {
            *g = 0x0101_0101_0000_0000u64.wrapping_mul(i as u64 + 1) + i as u64;
        }
        r.seg[seg::CS].selector = 0x18;
        r.cr0 = 0x8000_0011;
        r
    }

    #[test]
    fn x86_64_packet_follows_gdbs_amd64_order() {
        let r = sample();
        let g = Layout::X86_64.serialize(&r);
        let word = |i: usize| u64::from_le_bytes(g[i * 8..i * 8 + 8].try_into().unwrap());
        // gdb's amd64 order: rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8.. then rip.
        assert_eq!([word(0), word(1), word(2), word(7)], [r.gpr[0], r.gpr[3], r.gpr[1], r.gpr[4]]);
        assert_eq!(word(16), 0x1_0000_1234);
        // eflags (4 bytes) then cs (4 bytes).
        assert_eq!(u32::from_le_bytes(g[136..140].try_into().unwrap()), 0x246);
        assert_eq!(u32::from_le_bytes(g[140..144].try_into().unwrap()), 0x18);
        let total: u32 = Layout::X86_64.registers().iter().map(|d| d.bits / 8).sum();
        assert_eq!(g.len(), total as usize);
    }

    #[test]
    fn i386_packet_truncates_and_a_write_keeps_the_upper_halves() {
        let mut r = sample();
        let g = Layout::I386.serialize(&r);
        assert_eq!(u32::from_le_bytes(g[4..8].try_into().unwrap()), r.gpr[1] as u32, "ecx second");
        assert_eq!(u32::from_le_bytes(g[32..36].try_into().unwrap()), 0x1234, "eip");
        let mut changed = g.clone();
        changed[0..4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        let old_rax = r.gpr[0];
        assert!(Layout::I386.deserialize(&changed, &mut r));
        assert_eq!(r.gpr[0], (old_rax & !0xffff_ffff) | 0xdead_beef);
        assert_eq!(Layout::I386.serialize(&r)[4..], g[4..]);
    }

    #[test]
    fn single_register_access_by_number() {
        let mut r = sample();
        let regs = Layout::I386.registers();
        let eip = regs.iter().position(|d| d.name == "eip").unwrap();
        assert_eq!(Layout::I386.read_one(eip, &r), Some(0x1234u32.to_le_bytes().to_vec()));
        assert!(Layout::I386.write_one(eip, &0x5678u32.to_le_bytes(), &mut r));
        assert_eq!(r.rip, 0x1_0000_5678);
        assert!(!Layout::I386.write_one(eip, &[1, 2], &mut r), "wrong size");
        assert_eq!(Layout::I386.read_one(10_000, &r), None);
    }

    #[test]
    fn real_mode_selector_write_reloads_the_base() {
        let mut r = DebugRegs { mode: CpuMode::Real, ..DebugRegs::default() };
        let ds = Layout::I8086.registers().iter().position(|d| d.name == "ds").unwrap();
        assert!(Layout::I8086.write_one(ds, &0x1234u32.to_le_bytes(), &mut r));
        assert_eq!((r.seg[seg::DS].selector, r.seg[seg::DS].base), (0x1234, 0x12340));
    }

    #[test]
    fn every_register_is_as_wide_as_its_type() {
        // gdb sizes a register by its type: a flags type must match the bitsize.
        for layout in [Layout::Any, Layout::I8086, Layout::I386, Layout::X86_64] {
            for r in layout.registers() {
                let want = match r.ty {
                    "i386_eflags" | "i386_mxcsr" | "int32" => Some(32),
                    "rx86_cr0" | "rx86_efer" | "int64" => Some(64),
                    "i387_ext" => Some(80),
                    "vec128" => Some(128),
                    _ => None,
                };
                if let Some(bits) = want {
                    assert_eq!(r.bits, bits, "{} in {layout:?}", r.name);
                }
            }
        }
    }

    #[test]
    fn xml_names_the_architecture_and_numbers_every_register() {
        let x = Layout::I8086.target_xml();
        assert!(x.contains("<architecture>i8086</architecture>"));
        assert!(x.contains("<reg name=\"eip\" bitsize=\"32\" type=\"code_ptr\" regnum=\"8\"/>"));
        let x = Layout::X86_64.target_xml();
        assert!(x.contains("<architecture>i386:x86-64</architecture>"));
        assert_eq!(x.matches("<reg ").count(), Layout::X86_64.registers().len());
        assert!(x.contains("name=\"cr3\""));
        assert_eq!(Layout::for_mode(CpuMode::Compat), Layout::I386);
    }

    #[test]
    fn any_names_no_architecture_and_starts_as_gdbs_amd64_set() {
        let x = Layout::Any.target_xml();
        assert!(!x.contains("<architecture>"), "gdb keeps the architecture it has");
        // gdb's amd64 default set (with fs_base and gs_base), in order: a gdb that falls back
        // to it reads the same bytes.
        let amd64: Vec<String> = Layout::X86_64.registers().into_iter().take(59).map(|r| r.name).collect();
        let any: Vec<String> = Layout::Any.registers().into_iter().take(59).map(|r| r.name).collect();
        assert_eq!(any, amd64);
        assert_eq!(any[58], "gs_base");
        assert!(!x.contains("_ptr\""), "pointer types take the size of gdb's architecture's pointers");
        // Every name gdb's i386 architecture requires is there too.
        for name in GPR32.iter().chain(&["eip", "eflags", "cs", "gs", "st7", "fop", "xmm7", "mxcsr", "fs_base"]) {
            assert!(x.contains(&format!("<reg name=\"{name}\" ")), "{name}");
        }
    }

    #[test]
    fn a_g_packet_applies_the_name_gdb_changed() {
        let mut r = sample();
        let regs = Layout::Any.registers();
        let at = |name: &str| -> usize {
            let i = regs.iter().position(|d| d.name == name).unwrap();
            regs[..i].iter().map(|d| d.bits as usize / 8).sum()
        };
        let g = Layout::Any.serialize(&r);
        assert_eq!(u32::from_le_bytes(g[at("eax")..at("eax") + 4].try_into().unwrap()), r.gpr[0] as u32);
        // gdb under i386 changed eax and sent its stale copy of rax: eax wins.
        let mut changed = g.clone();
        changed[at("eax")..at("eax") + 4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        let old = r.gpr[0];
        assert!(Layout::Any.deserialize(&changed, &mut r));
        assert_eq!(r.gpr[0], (old & !0xffff_ffff) | 0xdead_beef);
        // Under x86-64 it changed rax and sent a stale eax: rax wins.
        let mut changed = Layout::Any.serialize(&r);
        changed[at("rax")..at("rax") + 8].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        assert!(Layout::Any.deserialize(&changed, &mut r));
        assert_eq!(r.gpr[0], 0x1122_3344_5566_7788);
    }
}
