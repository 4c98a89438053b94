//! A small encoder (and matching decoder) for the subset of AML the rx86 DSDT needs.
//!
//! ACPI specification 6.5, section 20 ("ACPI Machine Language Specification"): names
//! (20.2.2), data objects (20.2.3), package length encoding (20.2.4) and the Name, Scope,
//! Device and Package opcodes (20.2.5). The decoder accepts exactly what the encoder can
//! produce (plus the other integer encodings of the same values) so tests and fuzzers can
//! check the round trip.

use thiserror::Error;

/// ZeroOp: the integer 0.
const ZERO_OP: u8 = 0x00;
/// OneOp: the integer 1.
const ONE_OP: u8 = 0x01;
/// OnesOp: all bits set (64-bit in a revision-2 DSDT).
const ONES_OP: u8 = 0xFF;
/// BytePrefix: a one-byte integer follows.
const BYTE_PREFIX: u8 = 0x0A;
/// WordPrefix: a two-byte integer follows.
const WORD_PREFIX: u8 = 0x0B;
/// DWordPrefix: a four-byte integer follows.
const DWORD_PREFIX: u8 = 0x0C;
/// StringPrefix: a NUL-terminated ASCII string follows.
const STRING_PREFIX: u8 = 0x0D;
/// QWordPrefix: an eight-byte integer follows.
const QWORD_PREFIX: u8 = 0x0E;
/// NameOp: `Name(NameString, DataRefObject)`.
const NAME_OP: u8 = 0x08;
/// ScopeOp: `Scope(PkgLength NameString TermList)`.
const SCOPE_OP: u8 = 0x10;
/// BufferOp: `Buffer(PkgLength BufferSize ByteList)`.
const BUFFER_OP: u8 = 0x11;
/// PackageOp: `Package(PkgLength NumElements PackageElementList)`.
const PACKAGE_OP: u8 = 0x12;
/// ExtOpPrefix: the first byte of two-byte opcodes.
const EXT_OP_PREFIX: u8 = 0x5B;
/// DeviceOp (after ExtOpPrefix): `Device(PkgLength NameString TermList)`.
const DEVICE_OP: u8 = 0x82;
/// RootChar `\`.
const ROOT_CHAR: u8 = b'\\';
/// ParentPrefixChar `^`.
const PARENT_PREFIX_CHAR: u8 = b'^';
/// NullName: a name string with no segments.
const NULL_NAME: u8 = 0x00;
/// DualNamePrefix: two name segments follow.
const DUAL_NAME_PREFIX: u8 = 0x2E;
/// MultiNamePrefix: a segment count byte and that many segments follow.
const MULTI_NAME_PREFIX: u8 = 0x2F;

/// Largest value a PkgLength can encode (28 bits).
pub const MAX_PKG_LENGTH: usize = (1 << 28) - 1;
/// Deepest nesting the decoder follows (keeps hostile input from exhausting the stack).
const MAX_DEPTH: usize = 32;

/// Errors encoding or decoding AML.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AmlError {
    /// A name segment is not 1-4 characters of `A-Z`, `0-9`, `_` starting with a letter or `_`.
    #[error("invalid AML name segment {0:?}")]
    BadNameSegment(String),
    /// A path has more than 255 segments or 255 parent prefixes.
    #[error("AML path {0:?} is too long")]
    PathTooLong(String),
    /// A string holds a NUL or a non-ASCII character.
    #[error("AML string {0:?} must be ASCII without NUL")]
    BadString(String),
    /// A package has more than 255 elements.
    #[error("AML package with {0} elements (at most 255)")]
    PackageTooLarge(usize),
    /// An object is larger than a PkgLength can describe.
    #[error("AML object of {0} bytes exceeds the 28-bit PkgLength")]
    TooLong(usize),
    /// An EISA ID is not three capital letters and four hex digits.
    #[error("invalid EISA ID {0:?} (expected e.g. \"PNP0A03\")")]
    BadEisaId(String),
    /// Decoding ran past the end of the input or of the enclosing package.
    #[error("AML truncated at offset {0}")]
    Truncated(usize),
    /// Decoding met an opcode outside the supported subset.
    #[error("unsupported AML opcode {opcode:#04x} at offset {offset}")]
    Unsupported {
        /// The opcode byte.
        opcode: u8,
        /// Where it was found.
        offset: usize,
    },
    /// A PkgLength is malformed (reserved bits set or shorter than itself).
    #[error("malformed PkgLength at offset {0}")]
    BadPkgLength(usize),
    /// A package's NumElements differs from the elements actually encoded.
    #[error("package at offset {0} declares a different element count than it holds")]
    ElementCount(usize),
    /// Objects nest deeper than the decoder follows.
    #[error("AML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// A NameString: optional root or parent prefixes and a list of 4-character segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameString {
    root: bool,
    parents: u8,
    segments: Vec<[u8; 4]>,
}

impl NameString {
    /// Parses an ASL-style path such as `\_SB.PCI0`, `^^FOO` or `_S5`; short segments
    /// are padded with `_` as ASL does.
    pub fn parse(path: &str) -> Result<Self, AmlError> {
        let mut rest = path.as_bytes();
        let root = rest.first() == Some(&ROOT_CHAR);
        if root {
            rest = &rest[1..];
        }
        let mut parents = 0u8;
        while !root && rest.first() == Some(&PARENT_PREFIX_CHAR) {
            parents = parents.checked_add(1).ok_or_else(|| AmlError::PathTooLong(path.into()))?;
            rest = &rest[1..];
        }
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for seg in rest.split(|&c| c == b'.') {
                segments.push(name_segment(seg).ok_or_else(|| bad_segment(seg))?);
            }
        }
        if segments.len() > 255 {
            return Err(AmlError::PathTooLong(path.into()));
        }
        Ok(NameString { root, parents, segments })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        if self.root {
            out.push(ROOT_CHAR);
        }
        out.extend(std::iter::repeat_n(PARENT_PREFIX_CHAR, self.parents as usize));
        match self.segments.len() {
            0 => out.push(NULL_NAME),
            1 => {}
            2 => out.push(DUAL_NAME_PREFIX),
            n => out.extend([MULTI_NAME_PREFIX, n as u8]),
        }
        for seg in &self.segments {
            out.extend_from_slice(seg);
        }
    }
}

impl std::fmt::Display for NameString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.root {
            f.write_str("\\")?;
        }
        for _ in 0..self.parents {
            f.write_str("^")?;
        }
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&String::from_utf8_lossy(seg))?;
        }
        Ok(())
    }
}

fn bad_segment(seg: &[u8]) -> AmlError {
    AmlError::BadNameSegment(String::from_utf8_lossy(seg).into_owned())
}

/// A padded NameSeg from 1-4 characters, or `None` when invalid.
fn name_segment(seg: &[u8]) -> Option<[u8; 4]> {
    if seg.is_empty() || seg.len() > 4 || !is_lead_name_char(seg[0]) || !seg.iter().all(|&c| is_name_char(c)) {
        return None;
    }
    let mut out = [b'_'; 4];
    out[..seg.len()].copy_from_slice(seg);
    Some(out)
}

fn is_lead_name_char(c: u8) -> bool {
    c.is_ascii_uppercase() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    is_lead_name_char(c) || c.is_ascii_digit()
}

/// A data object: what `Name` binds and what packages hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataObject {
    /// An integer (encoded in the smallest form).
    Integer(u64),
    /// An ASCII string without NUL.
    String(String),
    /// A package of at most 255 elements.
    Package(Vec<DataObject>),
    /// A buffer of bytes (for example a resource template).
    Buffer(Vec<u8>),
}

/// A term of a term list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `Name(path, value)`.
    Name(NameString, DataObject),
    /// `Scope(path) { terms }`.
    Scope(NameString, Vec<Term>),
    /// `Device(path) { terms }`.
    Device(NameString, Vec<Term>),
}

/// Encodes a term list (for example a DSDT body).
pub fn encode(terms: &[Term]) -> Result<Vec<u8>, AmlError> {
    let mut out = Vec::new();
    for t in terms {
        encode_term(t, &mut out)?;
    }
    Ok(out)
}

fn encode_term(term: &Term, out: &mut Vec<u8>) -> Result<(), AmlError> {
    match term {
        Term::Name(name, value) => {
            out.push(NAME_OP);
            name.encode(out);
            encode_data(value, out)
        }
        Term::Scope(name, terms) | Term::Device(name, terms) => {
            if matches!(term, Term::Scope(..)) {
                out.push(SCOPE_OP);
            } else {
                out.extend([EXT_OP_PREFIX, DEVICE_OP]);
            }
            let mut body = Vec::new();
            name.encode(&mut body);
            body.extend(encode(terms)?);
            out.extend(pkg_length(body.len())?);
            out.extend(body);
            Ok(())
        }
    }
}

fn encode_data(value: &DataObject, out: &mut Vec<u8>) -> Result<(), AmlError> {
    match value {
        DataObject::Integer(v) => encode_integer(*v, out),
        DataObject::String(s) => {
            if !s.bytes().all(|c| (0x01..=0x7F).contains(&c)) {
                return Err(AmlError::BadString(s.clone()));
            }
            out.push(STRING_PREFIX);
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        DataObject::Package(elements) => {
            let count = u8::try_from(elements.len()).map_err(|_| AmlError::PackageTooLarge(elements.len()))?;
            let mut body = vec![count];
            for e in elements {
                encode_data(e, &mut body)?;
            }
            out.push(PACKAGE_OP);
            out.extend(pkg_length(body.len())?);
            out.extend(body);
        }
        DataObject::Buffer(bytes) => {
            let mut body = Vec::new();
            encode_integer(bytes.len() as u64, &mut body);
            body.extend_from_slice(bytes);
            out.push(BUFFER_OP);
            out.extend(pkg_length(body.len())?);
            out.extend(body);
        }
    }
    Ok(())
}

fn encode_integer(v: u64, out: &mut Vec<u8>) {
    match v {
        0 => out.push(ZERO_OP),
        1 => out.push(ONE_OP),
        2..=0xFF => out.extend([BYTE_PREFIX, v as u8]),
        0x100..=0xFFFF => {
            out.push(WORD_PREFIX);
            out.extend((v as u16).to_le_bytes());
        }
        0x1_0000..=0xFFFF_FFFF => {
            out.push(DWORD_PREFIX);
            out.extend((v as u32).to_le_bytes());
        }
        _ => {
            out.push(QWORD_PREFIX);
            out.extend(v.to_le_bytes());
        }
    }
}

/// Encodes a PkgLength for `body_len` bytes following it (the encoded length counts
/// the PkgLength bytes themselves, section 20.2.4).
pub fn pkg_length(body_len: usize) -> Result<Vec<u8>, AmlError> {
    // One byte holds 6 bits; two, three and four bytes hold 12, 20 and 28 bits.
    if body_len + 1 < 1 << 6 {
        return Ok(vec![(body_len + 1) as u8]);
    }
    for extra in 1..=3usize {
        let total = body_len + 1 + extra;
        if total < 1 << (4 + 8 * extra) {
            let mut out = vec![((extra as u8) << 6) | (total & 0x0F) as u8];
            out.extend((0..extra).map(|i| (total >> (4 + 8 * i)) as u8));
            return Ok(out);
        }
    }
    Err(AmlError::TooLong(body_len))
}

/// The 32-bit compressed EISA ID for a string like `"PNP0A03"` (ASL `EISAID()` macro).
pub fn eisa_id(id: &str) -> Result<u64, AmlError> {
    let b = id.as_bytes();
    let bad = || AmlError::BadEisaId(id.into());
    if b.len() != 7 || !b[..3].iter().all(u8::is_ascii_uppercase) {
        return Err(bad());
    }
    let product = u16::from_str_radix(&id[3..], 16).map_err(|_| bad())?;
    if !b[3..].iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()) {
        return Err(bad());
    }
    // Three 5-bit letters (A = 1) then the product number, stored big-endian.
    let vendor = b[..3].iter().fold(0u32, |acc, &c| (acc << 5) | u32::from(c - b'@'));
    let be = (vendor << 16) | u32::from(product);
    Ok(u64::from(u32::from_le_bytes(be.to_be_bytes())))
}

/// Decodes a term list produced by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Term>, AmlError> {
    let mut d = Decoder { bytes, pos: 0 };
    let terms = d.term_list(bytes.len(), 0)?;
    Ok(terms)
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn byte(&mut self, end: usize) -> Result<u8, AmlError> {
        if self.pos >= end {
            return Err(AmlError::Truncated(self.pos));
        }
        let b = self.bytes[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize, end: usize) -> Result<&[u8], AmlError> {
        if end - self.pos < n {
            return Err(AmlError::Truncated(self.pos));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a PkgLength and returns the end offset of the object it measures.
    fn pkg_end(&mut self, end: usize) -> Result<usize, AmlError> {
        let start = self.pos;
        let lead = self.byte(end)?;
        let extra = usize::from(lead >> 6);
        let len = if extra == 0 {
            usize::from(lead & 0x3F)
        } else {
            if lead & 0x30 != 0 {
                return Err(AmlError::BadPkgLength(start));
            }
            let mut len = usize::from(lead & 0x0F);
            for i in 0..extra {
                len |= usize::from(self.byte(end)?) << (4 + 8 * i);
            }
            len
        };
        if len < 1 + extra {
            return Err(AmlError::BadPkgLength(start));
        }
        let obj_end = start.checked_add(len).ok_or(AmlError::Truncated(start))?;
        if obj_end > end {
            return Err(AmlError::Truncated(start));
        }
        Ok(obj_end)
    }

    fn term_list(&mut self, end: usize, depth: usize) -> Result<Vec<Term>, AmlError> {
        if depth > MAX_DEPTH {
            return Err(AmlError::TooDeep);
        }
        let mut terms = Vec::new();
        while self.pos < end {
            let offset = self.pos;
            let term = match self.byte(end)? {
                NAME_OP => {
                    let name = self.name_string(end)?;
                    Term::Name(name, self.data(end, depth + 1)?)
                }
                SCOPE_OP => {
                    let obj_end = self.pkg_end(end)?;
                    let name = self.name_string(obj_end)?;
                    Term::Scope(name, self.term_list(obj_end, depth + 1)?)
                }
                EXT_OP_PREFIX if self.bytes.get(self.pos) == Some(&DEVICE_OP) && self.pos < end => {
                    self.pos += 1;
                    let obj_end = self.pkg_end(end)?;
                    let name = self.name_string(obj_end)?;
                    Term::Device(name, self.term_list(obj_end, depth + 1)?)
                }
                opcode => return Err(AmlError::Unsupported { opcode, offset }),
            };
            terms.push(term);
        }
        Ok(terms)
    }

    fn name_string(&mut self, end: usize) -> Result<NameString, AmlError> {
        let mut root = false;
        let mut parents = 0u8;
        if self.bytes.get(self.pos) == Some(&ROOT_CHAR) && self.pos < end {
            root = true;
            self.pos += 1;
        } else {
            while self.bytes.get(self.pos) == Some(&PARENT_PREFIX_CHAR) && self.pos < end {
                parents = parents.checked_add(1).ok_or(AmlError::Unsupported { opcode: b'^', offset: self.pos })?;
                self.pos += 1;
            }
        }
        let offset = self.pos;
        let count = match self.byte(end)? {
            NULL_NAME => 0,
            DUAL_NAME_PREFIX => 2,
            MULTI_NAME_PREFIX => usize::from(self.byte(end)?),
            c if is_lead_name_char(c) => {
                self.pos -= 1;
                1
            }
            opcode => return Err(AmlError::Unsupported { opcode, offset }),
        };
        let mut segments = Vec::with_capacity(count);
        for _ in 0..count {
            let seg = self.take(4, end)?;
            if !is_lead_name_char(seg[0]) || !seg.iter().all(|&c| is_name_char(c)) {
                return Err(bad_segment(seg));
            }
            segments.push([seg[0], seg[1], seg[2], seg[3]]);
        }
        Ok(NameString { root, parents, segments })
    }

    fn data(&mut self, end: usize, depth: usize) -> Result<DataObject, AmlError> {
        if depth > MAX_DEPTH {
            return Err(AmlError::TooDeep);
        }
        let offset = self.pos;
        let int = |b: &[u8]| {
            let mut v = [0u8; 8];
            v[..b.len()].copy_from_slice(b);
            DataObject::Integer(u64::from_le_bytes(v))
        };
        Ok(match self.byte(end)? {
            ZERO_OP => DataObject::Integer(0),
            ONE_OP => DataObject::Integer(1),
            ONES_OP => DataObject::Integer(u64::MAX),
            BYTE_PREFIX => int(self.take(1, end)?),
            WORD_PREFIX => int(self.take(2, end)?),
            DWORD_PREFIX => int(self.take(4, end)?),
            QWORD_PREFIX => int(self.take(8, end)?),
            STRING_PREFIX => {
                let len = self.bytes[self.pos..end].iter().position(|&c| c == 0).ok_or(AmlError::Truncated(offset))?;
                let s = self.take(len, end)?;
                if !s.iter().all(|&c| c < 0x80) {
                    return Err(AmlError::BadString(String::from_utf8_lossy(s).into_owned()));
                }
                let s = String::from_utf8_lossy(s).into_owned();
                self.pos += 1;
                DataObject::String(s)
            }
            PACKAGE_OP => {
                let obj_end = self.pkg_end(end)?;
                let count = usize::from(self.byte(obj_end)?);
                let mut elements = Vec::with_capacity(count);
                while self.pos < obj_end {
                    elements.push(self.data(obj_end, depth + 1)?);
                }
                if elements.len() != count {
                    return Err(AmlError::ElementCount(offset));
                }
                DataObject::Package(elements)
            }
            BUFFER_OP => {
                let obj_end = self.pkg_end(end)?;
                let DataObject::Integer(size) = self.data(obj_end, depth + 1)? else {
                    return Err(AmlError::Unsupported { opcode: BUFFER_OP, offset });
                };
                let bytes = self.take(obj_end - self.pos, obj_end)?.to_vec();
                if bytes.len() as u64 != size {
                    return Err(AmlError::ElementCount(offset));
                }
                DataObject::Buffer(bytes)
            }
            opcode => return Err(AmlError::Unsupported { opcode, offset }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(p: &str) -> NameString {
        NameString::parse(p).unwrap()
    }

    #[test]
    fn buffers_round_trip() {
        let terms = vec![Term::Name(name("_CRS"), DataObject::Buffer(vec![0x79, 0x00]))];
        let bytes = encode(&terms).unwrap();
        assert_eq!(&bytes[5..], &[BUFFER_OP, 0x05, BYTE_PREFIX, 0x02, 0x79, 0x00]);
        assert_eq!(decode(&bytes).unwrap(), terms);
        let mut lying = bytes.clone();
        lying[8] = 3;
        assert!(decode(&lying).is_err(), "buffer size disagreeing with its bytes");
    }

    #[test]
    fn pkg_length_boundaries() {
        // Section 20.2.4: one byte up to 63 (including itself), then 12/20/28-bit forms.
        assert_eq!(pkg_length(0).unwrap(), vec![0x01]);
        assert_eq!(pkg_length(62).unwrap(), vec![0x3F]);
        // 63 body bytes + 2 length bytes = 65 = 0x41: lead 0x40 | 0x1, then 0x04.
        assert_eq!(pkg_length(63).unwrap(), vec![0x41, 0x04]);
        // Largest two-byte form: total 0xFFF.
        assert_eq!(pkg_length(0xFFF - 2).unwrap(), vec![0x4F, 0xFF]);
        // Total 0x1000 needs three bytes: body 0xFFE + 3 = 0x1001.
        assert_eq!(pkg_length(0xFFE).unwrap(), vec![0x81, 0x00, 0x01]);
        assert_eq!(pkg_length(0xF_FFFF - 3).unwrap(), vec![0x8F, 0xFF, 0xFF]);
        assert_eq!(pkg_length(0xF_FFFF - 2).unwrap(), vec![0xC1, 0x00, 0x00, 0x01]);
        assert_eq!(pkg_length(MAX_PKG_LENGTH - 4).unwrap(), vec![0xCF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(pkg_length(MAX_PKG_LENGTH - 3), Err(AmlError::TooLong(MAX_PKG_LENGTH - 3)));
    }

    #[test]
    fn pkg_length_decodes_back() {
        for body in [0usize, 1, 61, 62, 63, 64, 0xFFD, 0xFFE, 0xF_FFFC, 0xF_FFFD, 0x12_3456] {
            let enc = pkg_length(body).unwrap();
            let mut bytes = enc.clone();
            bytes.resize(enc.len() + body, 0);
            let mut d = Decoder { bytes: &bytes, pos: 0 };
            assert_eq!(d.pkg_end(bytes.len()).unwrap(), bytes.len(), "body {body}");
            assert_eq!(d.pos, enc.len());
        }
    }

    #[test]
    fn s5_package_matches_the_spec_encoding() {
        // Name(\_S5, Package(){0, 0, 0, 0}) as iasl emits it.
        let zero = DataObject::Integer(0);
        let t = Term::Name(name("\\_S5"), DataObject::Package(vec![zero.clone(), zero.clone(), zero.clone(), zero]));
        let expected = [0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(encode(&[t]).unwrap(), expected);
    }

    #[test]
    fn names_encode_with_prefixes() {
        let mut out = Vec::new();
        name("\\_SB.PCI0").encode(&mut out);
        assert_eq!(out, b"\\\x2e_SB_PCI0");
        out.clear();
        name("^^A.B.C").encode(&mut out);
        assert_eq!(out, b"^^\x2f\x03A___B___C___");
        out.clear();
        name("\\").encode(&mut out);
        assert_eq!(out, b"\\\x00");
        assert!(NameString::parse("pci0").is_err());
        assert!(NameString::parse("1ABC").is_err());
        assert!(NameString::parse("ABCDE").is_err());
        assert!(NameString::parse("A..B").is_err());
        assert_eq!(name("\\_SB.PCI0").to_string(), "\\_SB_.PCI0");
    }

    #[test]
    fn integers_use_the_smallest_encoding() {
        let enc = |v| {
            let mut o = Vec::new();
            encode_integer(v, &mut o);
            o
        };
        assert_eq!(enc(0), [ZERO_OP]);
        assert_eq!(enc(1), [ONE_OP]);
        assert_eq!(enc(2), [BYTE_PREFIX, 2]);
        assert_eq!(enc(0x100), [WORD_PREFIX, 0x00, 0x01]);
        assert_eq!(enc(0x1_0000), [DWORD_PREFIX, 0, 0, 1, 0]);
        assert_eq!(enc(1 << 32), [QWORD_PREFIX, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn eisa_id_compresses_like_asl() {
        // EISAID("PNP0A03") is DWord 0x030AD041 (bytes 41 D0 0A 03).
        assert_eq!(eisa_id("PNP0A03").unwrap(), 0x030A_D041);
        assert_eq!(eisa_id("PNP0C0F").unwrap(), 0x0F0C_D041);
        assert!(eisa_id("pnp0a03").is_err());
        assert!(eisa_id("PNP0A0").is_err());
        assert!(eisa_id("PNP0AG3").is_err());
    }

    #[test]
    fn device_in_scope_round_trips() {
        let tree = vec![Term::Scope(
            name("\\_SB"),
            vec![Term::Device(
                name("PCI0"),
                vec![
                    Term::Name(name("_HID"), DataObject::Integer(eisa_id("PNP0A03").unwrap())),
                    Term::Name(name("_STR"), DataObject::String("rx86 PCI".into())),
                    Term::Name(name("_UID"), DataObject::Integer(0)),
                ],
            )],
        )];
        let bytes = encode(&tree).unwrap();
        assert_eq!(&bytes[..2], &[SCOPE_OP, bytes.len() as u8 - 1]);
        assert_eq!(decode(&bytes).unwrap(), tree);
    }

    #[test]
    fn large_packages_use_multi_byte_lengths() {
        let big = DataObject::Package((0..200u64).map(|i| DataObject::Integer(i * 1000)).collect());
        let tree = vec![Term::Name(name("BIG"), big)];
        let bytes = encode(&tree).unwrap();
        assert_eq!(bytes[5], PACKAGE_OP);
        assert_eq!(bytes[6] >> 6, 1, "two-byte PkgLength");
        assert_eq!(decode(&bytes).unwrap(), tree);
        let too_many = DataObject::Package(vec![DataObject::Integer(0); 256]);
        assert_eq!(encode(&[Term::Name(name("X"), too_many)]), Err(AmlError::PackageTooLarge(256)));
        assert!(encode(&[Term::Name(name("S"), DataObject::String("a\0b".into()))]).is_err());
    }

    #[test]
    fn decoder_rejects_bad_input_without_panicking() {
        assert_eq!(decode(&[NAME_OP]), Err(AmlError::Truncated(1)));
        assert_eq!(decode(&[0x70]), Err(AmlError::Unsupported { opcode: 0x70, offset: 0 }));
        assert_eq!(decode(&[SCOPE_OP, 0x10, b'A']), Err(AmlError::Truncated(1)));
        assert_eq!(decode(&[SCOPE_OP, 0x70, 0]), Err(AmlError::BadPkgLength(1)));
        assert_eq!(decode(&[SCOPE_OP, 0x00]), Err(AmlError::BadPkgLength(1)));
        // Package declaring 3 elements but holding 1.
        assert_eq!(decode(&[NAME_OP, b'X', b'_', b'_', b'_', PACKAGE_OP, 3, 3, 0]), Err(AmlError::ElementCount(5)));
        let mut deep = Term::Name(name("X"), DataObject::Integer(7));
        for _ in 0..40 {
            deep = Term::Scope(name("S"), vec![deep]);
        }
        assert_eq!(decode(&encode(&[deep]).unwrap()), Err(AmlError::TooDeep));
        // A deterministic sweep of pseudo-random inputs: errors are fine, panics are not.
        let mut x = 0x1234_5678u32;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    [NAME_OP, SCOPE_OP, PACKAGE_OP, EXT_OP_PREFIX, DEVICE_OP, b'_', b'A', 0x05][(x % 8) as usize]
                        .wrapping_add(if x & 0x100 != 0 { (x >> 9) as u8 } else { 0 })
                })
                .collect();
            if let Ok(t) = decode(&bytes) {
                assert_eq!(decode(&encode(&t).unwrap()).unwrap(), t);
            }
        }
    }
}
