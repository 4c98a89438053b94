//! Just enough ELF (System V ABI, "ELF header" and "Program header") to load a 32-bit
//! x86 executable's PT_LOAD segments and to name what other ELF files are.

use crate::error::LoadError;

/// ELF magic: 0x7F 'E' 'L' 'F'.
const ELF_MAGIC: &[u8; 4] = b"\x7FELF";
/// e_ident[EI_CLASS] for 32-bit objects.
const ELFCLASS32: u8 = 1;
/// e_ident[EI_CLASS] for 64-bit objects.
const ELFCLASS64: u8 = 2;
/// e_ident[EI_DATA] for little-endian objects.
const ELFDATA2LSB: u8 = 1;
/// e_type of an executable.
const ET_EXEC: u16 = 2;
/// e_machine for Intel 80386.
const EM_386: u16 = 3;
/// e_machine for AMD x86-64.
const EM_X86_64: u16 = 62;
/// p_type of a loadable segment.
const PT_LOAD: u32 = 1;
/// Size of the ELF32 file header.
const ELF32_EHDR_SIZE: usize = 52;
/// Size of an ELF32 program header.
const ELF32_PHDR_SIZE: usize = 32;

/// True when `bytes` starts with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(ELF_MAGIC)
}

/// True for a 64-bit ELF file.
pub fn is_elf64(bytes: &[u8]) -> bool {
    is_elf(bytes) && bytes.get(4) == Some(&ELFCLASS64)
}

/// A short description such as "a 64-bit ELF x86-64 executable".
pub fn describe(bytes: &[u8]) -> String {
    let class = match bytes.get(4) {
        Some(&ELFCLASS32) => "32-bit",
        Some(&ELFCLASS64) => "64-bit",
        _ => "an unknown-class",
    };
    let half = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let machine = match half(18) {
        Some(EM_386) => "i386".to_string(),
        Some(EM_X86_64) => "x86-64".to_string(),
        Some(m) => format!("machine {m}"),
        None => "truncated".to_string(),
    };
    let kind = match half(16) {
        Some(1) => "relocatable object",
        Some(ET_EXEC) => "executable",
        Some(3) => "shared object",
        Some(4) => "core dump",
        _ => "file",
    };
    format!("a {class} ELF {machine} {kind}")
}

/// One PT_LOAD segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// File offset of the initialised bytes.
    pub offset: u64,
    /// Virtual address.
    pub vaddr: u64,
    /// Physical (load) address.
    pub paddr: u64,
    /// Initialised bytes in the file.
    pub filesz: u64,
    /// Bytes in memory (the rest is zeroed: bss).
    pub memsz: u64,
}

/// A parsed ELF32 executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf32 {
    /// e_entry.
    pub entry: u64,
    /// PT_LOAD segments with non-zero memory size.
    pub segments: Vec<Segment>,
}

impl Elf32 {
    /// The entry point as a physical address: translated through the segment whose
    /// virtual range holds it (higher-half kernels link at virtual addresses), as
    /// Multiboot loaders do.
    pub fn physical_entry(&self) -> u64 {
        self.segments
            .iter()
            .find(|s| self.entry >= s.vaddr && self.entry - s.vaddr < s.memsz)
            .map_or(self.entry, |s| self.entry - s.vaddr + s.paddr)
    }
}

fn bad(msg: String) -> LoadError {
    LoadError::BadElf(msg)
}

/// Parses a 32-bit little-endian i386 executable.
pub fn parse_elf32(bytes: &[u8]) -> Result<Elf32, LoadError> {
    if !is_elf(bytes) {
        return Err(bad("missing ELF magic".into()));
    }
    if bytes.len() < ELF32_EHDR_SIZE {
        return Err(LoadError::Truncated { what: "ELF header", len: bytes.len() as u64, need: ELF32_EHDR_SIZE as u64 });
    }
    if bytes[4] == ELFCLASS64 {
        return Err(LoadError::Elf64);
    }
    if bytes[4] != ELFCLASS32 || bytes[5] != ELFDATA2LSB {
        return Err(bad(format!("{} is not 32-bit little-endian", describe(bytes))));
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u64::from(u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]));
    if u16_at(16) != ET_EXEC || u16_at(18) != EM_386 {
        return Err(bad(format!("{} is not an i386 executable", describe(bytes))));
    }
    let entry = u32_at(24);
    let phoff = u32_at(28);
    let phentsize = u64::from(u16_at(42));
    let phnum = u64::from(u16_at(44));
    if phnum == 0 {
        return Err(bad("no program headers".into()));
    }
    if phentsize < ELF32_PHDR_SIZE as u64 {
        return Err(bad(format!("program header size {phentsize} is smaller than {ELF32_PHDR_SIZE}")));
    }
    let table_end = phoff + phentsize * phnum;
    if table_end > bytes.len() as u64 {
        return Err(LoadError::Truncated {
            what: "ELF program header table",
            len: bytes.len() as u64,
            need: table_end,
        });
    }
    let mut segments = Vec::new();
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        let ph = |o: usize| u32_at(at + o);
        if ph(0) as u32 != PT_LOAD || ph(20) == 0 {
            continue;
        }
        let s = Segment { offset: ph(4), vaddr: ph(8), paddr: ph(12), filesz: ph(16), memsz: ph(20) };
        if s.filesz > s.memsz {
            return Err(bad(format!("segment {i} has file size {:#x} above memory size {:#x}", s.filesz, s.memsz)));
        }
        if s.offset + s.filesz > bytes.len() as u64 {
            return Err(LoadError::Truncated {
                what: "ELF segment",
                len: bytes.len() as u64,
                need: s.offset + s.filesz,
            });
        }
        if s.paddr + s.memsz > 1 << 32 {
            return Err(bad(format!("segment {i} at {:#x}+{:#x} reaches past 4 GiB", s.paddr, s.memsz)));
        }
        segments.push(s);
    }
    if segments.is_empty() {
        return Err(bad("no loadable segments".into()));
    }
    Ok(Elf32 { entry, segments })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an ELF32 i386 executable with one PT_LOAD per `(paddr, vaddr, data, memsz)`.
    pub(crate) fn build_elf32(entry: u32, segments: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let phoff = ELF32_EHDR_SIZE;
        let mut data_off = phoff + ELF32_PHDR_SIZE * segments.len();
        let mut f = vec![0u8; data_off];
        f[0..4].copy_from_slice(ELF_MAGIC);
        f[4] = ELFCLASS32;
        f[5] = ELFDATA2LSB;
        f[6] = 1;
        f[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        f[18..20].copy_from_slice(&EM_386.to_le_bytes());
        f[24..28].copy_from_slice(&entry.to_le_bytes());
        f[28..32].copy_from_slice(&(phoff as u32).to_le_bytes());
        f[42..44].copy_from_slice(&(ELF32_PHDR_SIZE as u16).to_le_bytes());
        f[44..46].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        let mut payload = Vec::new();
        for (i, (paddr, vaddr, data, memsz)) in segments.iter().enumerate() {
            let at = phoff + i * ELF32_PHDR_SIZE;
            let fields = [PT_LOAD, data_off as u32, *vaddr, *paddr, data.len() as u32, *memsz, 5, 0x1000];
            for (j, v) in fields.iter().enumerate() {
                f[at + j * 4..at + j * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
            payload.extend_from_slice(data);
            data_off += data.len();
        }
        f.extend(payload);
        f
    }

    #[test]
    fn parses_segments_and_translates_a_virtual_entry() {
        let f = build_elf32(0xC010_0010, &[(0x10_0000, 0xC010_0000, b"code", 0x100)]);
        let e = parse_elf32(&f).unwrap();
        assert_eq!(e.segments.len(), 1);
        assert_eq!(e.segments[0].filesz, 4);
        assert_eq!(e.physical_entry(), 0x10_0010);
        let f = build_elf32(0x20_0000, &[(0x10_0000, 0x10_0000, b"code", 4)]);
        assert_eq!(parse_elf32(&f).unwrap().physical_entry(), 0x20_0000);
    }

    #[test]
    fn rejects_malformed_files() {
        let good = build_elf32(0x10_0000, &[(0x10_0000, 0x10_0000, b"abcd", 8)]);
        let mut elf64 = good.clone();
        elf64[4] = ELFCLASS64;
        assert!(matches!(parse_elf32(&elf64), Err(LoadError::Elf64)));
        let mut arm = good.clone();
        arm[18] = 40;
        assert!(matches!(parse_elf32(&arm), Err(LoadError::BadElf(m)) if m.contains("machine 40")));
        for cut in 0..good.len() {
            assert!(parse_elf32(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut big_file = good.clone();
        big_file[ELF32_EHDR_SIZE + 16] = 9; // filesz 9 > memsz 8
        assert!(matches!(parse_elf32(&big_file), Err(LoadError::BadElf(_))));
        let over4g = build_elf32(0, &[(0xFFFF_F000, 0, b"x", 0x2000)]);
        assert!(matches!(parse_elf32(&over4g), Err(LoadError::BadElf(m)) if m.contains("4 GiB")));
    }

    #[test]
    fn describes_foreign_elf_files() {
        let mut f = build_elf32(0, &[(0, 0, b"", 1)]);
        f[4] = ELFCLASS64;
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        assert_eq!(describe(&f), "a 64-bit ELF x86-64 executable");
    }
}
