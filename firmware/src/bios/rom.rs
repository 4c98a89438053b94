//! The built-in BIOS's ROM image: 64 KiB at F000:0000, assembled at start-up with
//! iced-x86's code assembler (no external assembler).
//!
//! The ROM holds only small stubs; the services are Rust ([`super::Bios`]). An entry
//! stub saves the caller's registers on its stack (see [`super::frame`]), stores SS:SP
//! in the EBDA scratch area and writes to [`SERVICE_PORT`]; the board hands that write
//! to the Rust services, which read and rewrite the frame. The stub then either returns
//! to the caller or, when the service asked to wait (a keystroke, say), enables
//! interrupts, halts until one arrives and traps again.
//!
//! Interrupts that must be cheap (the 18.2 Hz timer, the RTC, EOI for spurious IRQs)
//! are plain assembly.

use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

/// Real-mode segment of the ROM.
pub const ROM_SEGMENT: u16 = 0xf000;
/// Physical address of the ROM.
pub const ROM_BASE: u64 = 0xf_0000;
/// Size of the ROM image.
pub const ROM_BYTES: usize = 0x1_0000;
/// The I/O port an entry stub writes to call the Rust services.
pub const SERVICE_PORT: u16 = 0x440;
/// Segment of the extended BIOS data area (see `layout::EBDA_START`).
pub const EBDA_SEGMENT: u16 = (crate::layout::EBDA_START >> 4) as u16;
/// EBDA offset of the frame's SP (word), followed by its SS.
pub const SCRATCH_FRAME: u16 = 0x100;
/// EBDA offset of the action byte the services leave for the stub.
pub const SCRATCH_ACTION: u16 = 0x104;
/// Action: return to the caller.
pub const ACTION_RETURN: u8 = 0;
/// Action: enable interrupts, halt, and call the service again.
pub const ACTION_WAIT: u8 = 1;
/// Pseudo-vector the power-on stub traps with.
pub const POST_VECTOR: u16 = 0x100;
/// ROM offset of the 8x16 font (256 characters).
pub const FONT_8X16_OFFSET: u16 = 0x8000;
/// ROM offset of the 8x8 font (256 characters).
pub const FONT_8X8_OFFSET: u16 = 0x9000;
/// ROM offset of the INT 15h AH=C0h system configuration table.
pub const CONFIG_TABLE_OFFSET: u16 = 0xa000;
/// ROM offset of the diskette parameter table (INT 1Eh vector).
pub const DISKETTE_PARAMS_OFFSET: u16 = 0xa010;
/// ROM offset of the VBE OEM string.
pub const VBE_OEM_STRING_OFFSET: u16 = 0xa020;
/// ROM offset of the code.
const CODE_OFFSET: u16 = 0xc000;
/// Offset of the power-on entry (IBM's traditional POST address).
const POST_OFFSET: u16 = 0xe05b;
/// Offset of the reset vector.
const RESET_OFFSET: usize = 0xfff0;
/// The boot stack top (SS = 0): just below the boot sector's load address.
const BOOT_STACK_TOP: u16 = 0x7c00;

/// Interrupts whose service is Rust.
pub const TRAPPED_VECTORS: [u8; 12] = [0x09, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a];

/// The assembled ROM and where its handlers are.
pub struct Rom {
    /// The 64 KiB image for F000:0000.
    pub image: Vec<u8>,
    /// The IVT: handler offset (in segment [`ROM_SEGMENT`]) for every vector.
    pub vectors: [u16; 256],
    /// Offset of the Linux setup entry: INT 19h returns there with AX = the stack segment,
    /// BX = the stack pointer and CX = the code segment to enter at offset 0 (see
    /// `crate::linux_setup`); it loads SS:SP with interrupts off and jumps.
    pub linux_setup_entry: u16,
}

/// What went wrong assembling the ROM (a bug in this file, never guest input).
#[derive(Debug, thiserror::Error)]
#[error("assembling the BIOS ROM: {0}")]
pub struct RomError(String);

impl From<IcedError> for RomError {
    fn from(e: IcedError) -> Self {
        RomError(e.to_string())
    }
}

/// Assembles the ROM.
pub fn build_rom() -> Result<Rom, RomError> {
    let mut a = CodeAssembler::new(16)?;
    let mut common = a.create_label();
    let mut wait = a.create_label();
    let mut iret_only = a.create_label();
    let mut eoi_master = a.create_label();
    let mut eoi_slave = a.create_label();
    let mut timer = a.create_label();
    let mut rtc = a.create_label();
    let mut post_trap = a.create_label();
    let mut trapped: Vec<(u8, CodeLabel)> = Vec::new();

    // Per-vector entries: save the caller's state, push the vector, go to `common`.
    for &v in TRAPPED_VECTORS.iter() {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        save_and_push(&mut a, u16::from(v))?;
        a.jmp(common)?;
        trapped.push((v, l));
    }
    a.set_label(&mut post_trap)?;
    save_and_push(&mut a, POST_VECTOR)?;

    // common: publish SS:SP, trap to Rust, then return or wait.
    a.set_label(&mut common)?;
    a.mov(ax, EBDA_SEGMENT as u32)?;
    a.mov(ds, ax)?;
    a.mov(word_ptr(u32::from(SCRATCH_FRAME)), sp)?;
    a.mov(word_ptr(u32::from(SCRATCH_FRAME + 2)), ss)?;
    a.mov(dx, u32::from(SERVICE_PORT))?;
    a.out(dx, al)?;
    a.cmp(byte_ptr(u32::from(SCRATCH_ACTION)), u32::from(ACTION_WAIT))?;
    a.je(wait)?;
    a.add(sp, 2)?;
    a.popad()?;
    a.pop(gs)?;
    a.pop(fs)?;
    a.pop(es)?;
    a.pop(ds)?;
    a.iret()?;
    a.set_label(&mut wait)?;
    a.sti()?;
    a.hlt()?;
    a.cli()?;
    a.jmp(common)?;

    // IRQ 0 (INT 08h): count ticks in the BDA, roll over at midnight, call INT 1Ch.
    a.set_label(&mut timer)?;
    let mut no_rollover = a.create_label();
    a.push(ds)?;
    a.push(eax)?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.inc(dword_ptr(0x46cu32))?;
    a.cmp(dword_ptr(0x46cu32), super::clock::TICKS_PER_DAY)?;
    a.jb(no_rollover)?;
    a.mov(dword_ptr(0x46cu32), 0u32)?;
    a.mov(byte_ptr(0x470u32), 1u32)?;
    a.set_label(&mut no_rollover)?;
    a.int(0x1cu32)?;
    a.mov(al, 0x20u32)?;
    a.out(0x20u32, al)?;
    a.pop(eax)?;
    a.pop(ds)?;
    a.iret()?;

    // IRQ 8 (INT 70h): acknowledge the RTC (read register C) and both PICs.
    a.set_label(&mut rtc)?;
    a.push(ax)?;
    a.mov(al, 0x0cu32)?;
    a.out(0x70u32, al)?;
    a.in_(al, 0x71u32)?;
    a.pop(ax)?;
    // Falls through to the slave EOI.
    a.set_label(&mut eoi_slave)?;
    a.push(ax)?;
    a.mov(al, 0x20u32)?;
    a.out(0xa0u32, al)?;
    a.out(0x20u32, al)?;
    a.pop(ax)?;
    a.iret()?;
    a.set_label(&mut eoi_master)?;
    a.push(ax)?;
    a.mov(al, 0x20u32)?;
    a.out(0x20u32, al)?;
    a.pop(ax)?;
    a.iret()?;
    a.set_label(&mut iret_only)?;
    a.iret()?;

    // Power-on: a stack below the boot sector, POST in Rust, then INT 19h.
    let mut post = a.create_label();
    a.set_label(&mut post)?;
    a.cli()?;
    a.cld()?;
    a.xor(ax, ax)?;
    a.mov(ss, ax)?;
    a.mov(sp, u32::from(BOOT_STACK_TOP))?;
    a.pushf()?;
    a.push(cs)?;
    a.call(post_trap)?;
    a.sti()?;
    a.int(0x19u32)?;
    // INT 19h returns only when nothing could boot (after INT 18h printed why).
    let mut dead = a.create_label();
    a.set_label(&mut dead)?;
    a.cli()?;
    a.hlt()?;
    a.jmp(dead)?;

    // The Linux setup entry: SS:SP from AX:BX, then a far return to CX:0000.
    let mut linux_setup = a.create_label();
    a.set_label(&mut linux_setup)?;
    a.cli()?;
    a.mov(ss, ax)?;
    a.mov(sp, bx)?;
    a.push(cx)?;
    a.push(0u32)?;
    a.retf()?;

    let result = a.assemble_options(u64::from(CODE_OFFSET), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let code = &result.inner.code_buffer;
    let ip = |l: &CodeLabel| -> Result<u16, RomError> { Ok(result.label_ip(l)? as u16) };
    if usize::from(CODE_OFFSET) + code.len() > usize::from(POST_OFFSET) {
        return Err(RomError(format!("code of {} bytes overruns the POST entry", code.len())));
    }

    let mut image = vec![0u8; ROM_BYTES];
    image[usize::from(CODE_OFFSET)..usize::from(CODE_OFFSET) + code.len()].copy_from_slice(code);
    // POST entry at E05B: a near jump to the power-on code.
    let post_ip = ip(&post)?;
    let rel = post_ip.wrapping_sub(POST_OFFSET + 3);
    image[usize::from(POST_OFFSET)..usize::from(POST_OFFSET) + 3].copy_from_slice(&[0xe9, rel as u8, (rel >> 8) as u8]);
    // Reset vector: JMP FAR F000:E05B, the ROM date and the PC/AT model byte.
    image[RESET_OFFSET..RESET_OFFSET + 5].copy_from_slice(&[
        0xea,
        POST_OFFSET as u8,
        (POST_OFFSET >> 8) as u8,
        ROM_SEGMENT as u8,
        (ROM_SEGMENT >> 8) as u8,
    ]);
    image[0xfff5..0xfffd].copy_from_slice(b"01/01/24");
    image[0xfffe] = 0xfc;
    put_data(&mut image);

    let mut vectors = [ip(&iret_only)?; 256];
    vectors[0x08] = ip(&timer)?;
    vectors[0x70] = ip(&rtc)?;
    vectors[0x0a..=0x0f].fill(ip(&eoi_master)?);
    vectors[0x71..=0x77].fill(ip(&eoi_slave)?);
    for (v, l) in &trapped {
        vectors[usize::from(*v)] = ip(l)?;
    }
    Ok(Rom { image, vectors, linux_setup_entry: ip(&linux_setup)? })
}

/// PUSH DS, ES, FS, GS; PUSHAD; PUSH `vector`.
fn save_and_push(a: &mut CodeAssembler, vector: u16) -> Result<(), IcedError> {
    a.push(ds)?;
    a.push(es)?;
    a.push(fs)?;
    a.push(gs)?;
    a.pushad()?;
    a.push(u32::from(vector))
}

/// The ROM's data: fonts, the configuration table, diskette parameters, strings.
fn put_data(image: &mut [u8]) {
    use rx86_devices::vga::{FONT_8X16, FONT_8X8};
    for (i, glyph) in FONT_8X16.iter().enumerate() {
        let at = usize::from(FONT_8X16_OFFSET) + i * 16;
        image[at..at + 16].copy_from_slice(glyph);
    }
    for (i, glyph) in FONT_8X8.iter().enumerate() {
        let at = usize::from(FONT_8X8_OFFSET) + i * 8;
        image[at..at + 8].copy_from_slice(glyph);
    }
    // INT 15h C0h: length 8, model FCh (AT), submodel 1, revision 0, feature byte 1
    // 0x70 (second PIC, RTC, INT 15h 4Fh keyboard intercept), feature byte 2 0x40
    // (INT 16h AH=09h supported).
    let config = [8, 0, 0xfc, 1, 0, 0x70, 0x40, 0, 0, 0];
    image[usize::from(CONFIG_TABLE_OFFSET)..][..config.len()].copy_from_slice(&config);
    // The standard 1.44 MB diskette parameter table (IBM BIOS INT 1Eh).
    let diskette = [0xdf, 0x02, 0x25, 0x02, 0x12, 0x1b, 0xff, 0x6c, 0xf6, 0x0f, 0x08];
    image[usize::from(DISKETTE_PARAMS_OFFSET)..][..diskette.len()].copy_from_slice(&diskette);
    let oem = b"rx86 VBE\0";
    image[usize::from(VBE_OEM_STRING_OFFSET)..][..oem.len()].copy_from_slice(oem);
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};

    fn decode_at(image: &[u8], offset: u16) -> Vec<Mnemonic> {
        let mut d = Decoder::with_ip(16, &image[usize::from(offset)..], u64::from(offset), DecoderOptions::NONE);
        (0..12).map(|_| d.decode().mnemonic()).collect()
    }

    #[test]
    fn reset_vector_reaches_post_and_post_traps_then_boots() {
        let rom = build_rom().unwrap();
        assert_eq!(&rom.image[0xfff0..0xfff5], &[0xea, 0x5b, 0xe0, 0x00, 0xf0]);
        assert_eq!(rom.image[0xfffe], 0xfc);
        assert_eq!(rom.image[usize::from(POST_OFFSET)], 0xe9);
        let rel = u16::from_le_bytes([rom.image[0xe05c], rom.image[0xe05d]]);
        let post = (POST_OFFSET + 3).wrapping_add(rel);
        let m = decode_at(&rom.image, post);
        assert_eq!(
            &m[..9],
            &[
                Mnemonic::Cli,
                Mnemonic::Cld,
                Mnemonic::Xor,
                Mnemonic::Mov,
                Mnemonic::Mov,
                Mnemonic::Pushf,
                Mnemonic::Push,
                Mnemonic::Call,
                Mnemonic::Sti
            ]
        );
        assert_eq!(m[9], Mnemonic::Int);
    }

    #[test]
    fn trapped_vectors_save_registers_and_write_the_service_port() {
        let rom = build_rom().unwrap();
        for v in TRAPPED_VECTORS {
            let m = decode_at(&rom.image, rom.vectors[usize::from(v)]);
            assert_eq!(
                &m[..7],
                &[
                    Mnemonic::Push,
                    Mnemonic::Push,
                    Mnemonic::Push,
                    Mnemonic::Push,
                    Mnemonic::Pushad,
                    Mnemonic::Push,
                    Mnemonic::Jmp
                ]
            );
        }
        // Somewhere after the entries: the OUT to the service port.
        let code = &rom.image[usize::from(CODE_OFFSET)..usize::from(POST_OFFSET)];
        let mut d = Decoder::with_ip(16, code, u64::from(CODE_OFFSET), DecoderOptions::NONE);
        let outs: Vec<_> = std::iter::from_fn(|| d.can_decode().then(|| d.decode()))
            .filter(|i| i.mnemonic() == Mnemonic::Out)
            .map(|i| i.op0_kind())
            .collect();
        assert!(outs.contains(&iced_x86::OpKind::Register), "OUT DX, AL to the service port");
    }

    #[test]
    fn linux_setup_entry_loads_the_stack_and_jumps() {
        let rom = build_rom().unwrap();
        let m = decode_at(&rom.image, rom.linux_setup_entry);
        assert_eq!(
            &m[..6],
            &[Mnemonic::Cli, Mnemonic::Mov, Mnemonic::Mov, Mnemonic::Push, Mnemonic::Push, Mnemonic::Retf]
        );
    }

    #[test]
    fn ivt_defaults_and_hardware_interrupts() {
        let rom = build_rom().unwrap();
        let iret = rom.vectors[0x00];
        assert_eq!(rom.image[usize::from(iret)], 0xcf);
        assert_ne!(rom.vectors[0x08], iret);
        assert_ne!(rom.vectors[0x70], iret);
        assert_eq!(rom.vectors[0x1c], iret);
    }
}
