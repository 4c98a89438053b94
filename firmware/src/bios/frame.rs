//! The register frame a ROM entry stub leaves on the guest's stack.
//!
//! A stub entered by `INT n` pushes DS, ES, FS, GS, then PUSHAD, then the vector
//! number, and stores SS:SP in the EBDA scratch words before trapping to Rust. Offsets
//! from that SP:
//!
//! | +0 | +2  | +6  | +10 | +14 | +18 | +22 | +26 | +30 | +34 | +36 | +38 | +40 | +42 | +44 | +46   |
//! |----|-----|-----|-----|-----|-----|-----|-----|-----|-----|-----|-----|-----|-----|-----|-------|
//! | n  | EDI | ESI | EBP | ESP | EBX | EDX | ECX | EAX | GS  | FS  | ES  | DS  | IP  | CS  | FLAGS |
//!
//! The services read the caller's registers from here and write results back; the
//! stub's POPAD/POP/IRET then hands them to the caller.

use rx86_core::phys::PhysMemory;

/// Bytes of the frame, up to and including the FLAGS word `INT` pushed.
pub const FRAME_BYTES: usize = 48;

/// FLAGS.CF.
pub const CF: u16 = 1 << 0;
/// FLAGS.ZF.
pub const ZF: u16 = 1 << 6;
/// FLAGS.IF.
pub const IF: u16 = 1 << 9;

/// The caller's registers as the stub saved them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Vector the stub was entered for (or a pseudo-vector).
    pub vector: u16,
    /// EDI.
    pub edi: u32,
    /// ESI.
    pub esi: u32,
    /// EBP.
    pub ebp: u32,
    /// EBX.
    pub ebx: u32,
    /// EDX.
    pub edx: u32,
    /// ECX.
    pub ecx: u32,
    /// EAX.
    pub eax: u32,
    /// GS.
    pub gs: u16,
    /// FS.
    pub fs: u16,
    /// ES.
    pub es: u16,
    /// DS.
    pub ds: u16,
    /// Return IP.
    pub ip: u16,
    /// Return CS.
    pub cs: u16,
    /// FLAGS to return with.
    pub flags: u16,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Frame {
    /// Reads the frame at linear address `at`.
    pub fn read(memory: &PhysMemory, at: u64) -> Frame {
        let mut b = [0u8; FRAME_BYTES];
        memory.read(at, &mut b);
        Frame::from_bytes(&b)
    }

    /// Decodes the frame's bytes.
    pub fn from_bytes(b: &[u8; FRAME_BYTES]) -> Frame {
        Frame {
            vector: u16_at(b, 0),
            edi: u32_at(b, 2),
            esi: u32_at(b, 6),
            ebp: u32_at(b, 10),
            ebx: u32_at(b, 18),
            edx: u32_at(b, 22),
            ecx: u32_at(b, 26),
            eax: u32_at(b, 30),
            gs: u16_at(b, 34),
            fs: u16_at(b, 36),
            es: u16_at(b, 38),
            ds: u16_at(b, 40),
            ip: u16_at(b, 42),
            cs: u16_at(b, 44),
            flags: u16_at(b, 46),
        }
    }

    /// Encodes the frame (the saved ESP slot at +14 is left zero: POPAD skips it).
    pub fn to_bytes(&self) -> [u8; FRAME_BYTES] {
        let mut b = [0u8; FRAME_BYTES];
        let mut put16 = |at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        put16(0, self.vector);
        for (at, v) in [(34, self.gs), (36, self.fs), (38, self.es), (40, self.ds), (42, self.ip), (44, self.cs)] {
            put16(at, v);
        }
        put16(46, self.flags);
        for (at, v) in [(2, self.edi), (6, self.esi), (10, self.ebp), (18, self.ebx), (22, self.edx), (26, self.ecx)] {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        b[30..34].copy_from_slice(&self.eax.to_le_bytes());
        b
    }

    /// Writes the frame back at `at`, leaving the saved-ESP slot as the stub left it.
    pub fn write(&self, memory: &PhysMemory, at: u64) {
        let b = self.to_bytes();
        memory.write(at, &b[..14]);
        memory.write(at + 18, &b[18..]);
    }

    /// AX.
    pub fn ax(&self) -> u16 {
        self.eax as u16
    }
    /// AH.
    pub fn ah(&self) -> u8 {
        (self.eax >> 8) as u8
    }
    /// AL.
    pub fn al(&self) -> u8 {
        self.eax as u8
    }
    /// BX.
    pub fn bx(&self) -> u16 {
        self.ebx as u16
    }
    /// BH.
    pub fn bh(&self) -> u8 {
        (self.ebx >> 8) as u8
    }
    /// BL.
    pub fn bl(&self) -> u8 {
        self.ebx as u8
    }
    /// CX.
    pub fn cx(&self) -> u16 {
        self.ecx as u16
    }
    /// CH.
    pub fn ch(&self) -> u8 {
        (self.ecx >> 8) as u8
    }
    /// CL.
    pub fn cl(&self) -> u8 {
        self.ecx as u8
    }
    /// DX.
    pub fn dx(&self) -> u16 {
        self.edx as u16
    }
    /// DH.
    pub fn dh(&self) -> u8 {
        (self.edx >> 8) as u8
    }
    /// DL.
    pub fn dl(&self) -> u8 {
        self.edx as u8
    }
    /// SI.
    pub fn si(&self) -> u16 {
        self.esi as u16
    }
    /// DI.
    pub fn di(&self) -> u16 {
        self.edi as u16
    }

    /// Sets AX.
    pub fn set_ax(&mut self, v: u16) {
        self.eax = (self.eax & !0xffff) | u32::from(v);
    }
    /// Sets AH.
    pub fn set_ah(&mut self, v: u8) {
        self.eax = (self.eax & !0xff00) | (u32::from(v) << 8);
    }
    /// Sets AL.
    pub fn set_al(&mut self, v: u8) {
        self.eax = (self.eax & !0xff) | u32::from(v);
    }
    /// Sets BX.
    pub fn set_bx(&mut self, v: u16) {
        self.ebx = (self.ebx & !0xffff) | u32::from(v);
    }
    /// Sets BH.
    pub fn set_bh(&mut self, v: u8) {
        self.ebx = (self.ebx & !0xff00) | (u32::from(v) << 8);
    }
    /// Sets BL.
    pub fn set_bl(&mut self, v: u8) {
        self.ebx = (self.ebx & !0xff) | u32::from(v);
    }
    /// Sets CX.
    pub fn set_cx(&mut self, v: u16) {
        self.ecx = (self.ecx & !0xffff) | u32::from(v);
    }
    /// Sets CH.
    pub fn set_ch(&mut self, v: u8) {
        self.ecx = (self.ecx & !0xff00) | (u32::from(v) << 8);
    }
    /// Sets CL.
    pub fn set_cl(&mut self, v: u8) {
        self.ecx = (self.ecx & !0xff) | u32::from(v);
    }
    /// Sets DX.
    pub fn set_dx(&mut self, v: u16) {
        self.edx = (self.edx & !0xffff) | u32::from(v);
    }
    /// Sets DH.
    pub fn set_dh(&mut self, v: u8) {
        self.edx = (self.edx & !0xff00) | (u32::from(v) << 8);
    }
    /// Sets DL.
    pub fn set_dl(&mut self, v: u8) {
        self.edx = (self.edx & !0xff) | u32::from(v);
    }

    /// Sets or clears a FLAGS bit in the returned flags.
    pub fn set_flag(&mut self, bit: u16, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// Success: CF clear.
    pub fn ok(&mut self) {
        self.set_flag(CF, false);
    }

    /// Failure: CF set and AH = `status`.
    pub fn fail(&mut self, status: u8) {
        self.set_flag(CF, true);
        self.set_ah(status);
    }

    /// Linear address of `seg:off` (real mode).
    pub fn linear(seg: u16, off: u16) -> u64 {
        (u64::from(seg) << 4) + u64::from(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips_and_matches_the_stub_order() {
        let mut b = [0u8; FRAME_BYTES];
        b[0] = 0x13;
        b[30..34].copy_from_slice(&0x1234_0201u32.to_le_bytes());
        b[46..48].copy_from_slice(&0x0202u16.to_le_bytes());
        let mut f = Frame::from_bytes(&b);
        assert_eq!((f.vector, f.ah(), f.al(), f.flags), (0x13, 0x02, 0x01, 0x0202));
        f.fail(0x80);
        assert_eq!(f.eax, 0x1234_8001);
        assert_eq!(f.flags, 0x0203);
        f.set_dl(0xe0);
        f.set_dh(1);
        assert_eq!(f.dx(), 0x01e0);
        assert_eq!(Frame::from_bytes(&f.to_bytes()), f);
        assert_eq!(Frame::linear(0xffff, 0x10), 0x10_0000);
    }
}
