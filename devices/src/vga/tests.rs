//! Device-level tests through the bus interfaces a guest uses: ports, the memory
//! window, the DISPI ports and the linear framebuffer. Expected values come from the
//! FreeVGA register descriptions and the Bochs DISPI definitions cited in each module.

use super::vbe::*;
use super::*;

struct Rig {
    vga: SharedVga,
    ports: VgaPorts,
    window: VgaMemory,
    dispi: VbePorts,
    lfb: VgaLfb,
}

impl Rig {
    fn new(vram: usize) -> Self {
        let vga = Vga::new_shared(vram);
        Rig {
            ports: VgaPorts::new(vga.clone()),
            window: VgaMemory::new(vga.clone()),
            dispi: VbePorts::new(vga.clone()),
            lfb: VgaLfb::new(vga.clone()),
            vga,
        }
    }

    fn mode(vram: usize, mode: StandardMode) -> Self {
        let rig = Self::new(vram);
        lock(&rig.vga).set_standard_mode(mode);
        rig
    }

    fn outb(&mut self, port: u16, value: u8) {
        self.ports.write(u64::from(port - VGA_PORT_BASE), 1, u64::from(value));
    }

    fn inb(&mut self, port: u16) -> u8 {
        self.ports.read(u64::from(port - VGA_PORT_BASE), 1) as u8
    }

    fn seq(&mut self, index: u8, value: u8) {
        self.ports.write(0x14, 2, u64::from(index) | u64::from(value) << 8);
    }

    fn gr(&mut self, index: u8, value: u8) {
        self.ports.write(0x1e, 2, u64::from(index) | u64::from(value) << 8);
    }

    fn crtc(&mut self, index: u8, value: u8) {
        self.outb(0x3d4, index);
        self.outb(0x3d5, value);
    }

    fn dac(&mut self, index: u8, rgb: [u8; 3]) {
        self.outb(0x3c8, index);
        for c in rgb {
            self.outb(0x3c9, c);
        }
    }

    fn poke(&mut self, addr: u64, value: u8) {
        self.window.write(addr - VGA_WINDOW_BASE, 1, u64::from(value));
    }

    fn peek(&mut self, addr: u64) -> u8 {
        self.window.read(addr - VGA_WINDOW_BASE, 1) as u8
    }

    fn dispi(&mut self, index: u16, value: u16) {
        self.dispi.write(0, 2, u64::from(index));
        self.dispi.write(1, 2, u64::from(value));
    }

    fn dispi_read(&mut self, index: u16) -> u16 {
        self.dispi.write(0, 2, u64::from(index));
        self.dispi.read(1, 2) as u16
    }

    fn render(&self, frame_count: u64) -> Frame {
        lock(&self.vga).render(frame_count)
    }

    fn plane(&self, plane: usize, offset: usize) -> u8 {
        lock(&self.vga).vram().plane_byte(plane, offset)
    }
}

/// The 8-bit DAC scaling of a 6-bit component.
fn six(c: u8) -> u32 {
    u32::from(c << 2 | c >> 4)
}

fn rgb6(r: u8, g: u8, b: u8) -> u32 {
    six(r) << 16 | six(g) << 8 | six(b)
}

#[test]
fn crtc_and_status_follow_the_io_address_select() {
    let mut rig = Rig::new(MIN_VRAM);
    rig.outb(0x3c2, 0x67);
    assert_eq!(rig.inb(0x3cc), 0x67);
    rig.crtc(0x0e, 0x12);
    assert_eq!(rig.inb(0x3d5), 0x12);
    assert_eq!(rig.inb(0x3b5), 0xff, "mono CRTC does not answer in colour mode");
    assert_eq!(rig.inb(0x3ba), 0xff);
    rig.outb(0x3c2, 0x66);
    rig.outb(0x3b4, 0x0e);
    assert_eq!(rig.inb(0x3b5), 0x12, "same CRTC, now at 0x3B4/0x3B5");
    assert_eq!(rig.inb(0x3d5), 0xff);
    let a = rig.inb(0x3ba);
    let b = rig.inb(0x3ba);
    assert_eq!(a ^ b, 0x09, "display-disabled and retrace toggle per read");
}

#[test]
fn word_writes_split_into_index_and_data() {
    let mut rig = Rig::new(MIN_VRAM);
    rig.seq(2, 0x05);
    assert_eq!(rig.inb(0x3c4), 2);
    assert_eq!(rig.inb(0x3c5), 0x05);
    assert_eq!(rig.ports.read(0x14, 2), 0x0502);
    rig.gr(8, 0x3c);
    assert_eq!(lock(&rig.vga).graphics().get(8), 0x3c);
    assert_eq!(rig.inb(0x3cd), 0xff, "unused port");
    assert_eq!(rig.ports.read(0x40, 1), 0xff, "past the range");
}

#[test]
fn input_status_resets_the_attribute_flip_flop() {
    let mut rig = Rig::new(MIN_VRAM);
    rig.outb(0x3c2, 0x01);
    rig.outb(0x3c0, 0x12);
    rig.inb(0x3da);
    rig.outb(0x3c0, 0x31);
    rig.outb(0x3c0, 0x0b);
    assert_eq!(rig.inb(0x3c0), 0x31, "0x31 was taken as an index after the reset");
    assert_eq!(lock(&rig.vga).attribute().get(0x11), 0x0b);
}

#[test]
fn dac_ports_round_trip() {
    let mut rig = Rig::new(MIN_VRAM);
    rig.dac(0x10, [0x3f, 0x40, 0x15]);
    assert_eq!(rig.inb(0x3c8), 0x11);
    rig.outb(0x3c7, 0x10);
    assert_eq!(rig.inb(0x3c7), 3, "DAC state: read mode");
    assert_eq!([rig.inb(0x3c9), rig.inb(0x3c9), rig.inb(0x3c9)], [0x3f, 0x00, 0x15]);
    rig.outb(0x3c6, 0x0f);
    assert_eq!(rig.inb(0x3c6), 0x0f);
}

/// GR06 bits 2-3 decide which part of 0xA0000-0xBFFFF answers.
#[test]
fn memory_map_select() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Text80x25);
    rig.poke(0xb8000, b'X');
    assert_eq!(rig.peek(0xb8000), b'X');
    assert_eq!(rig.plane(0, 0), b'X');
    assert_eq!(rig.peek(0xa0000), 0xff, "text mode maps B8000 only");
    rig.poke(0xa0000, 1);
    rig.poke(0xb0000, 1);
    assert_eq!(rig.plane(0, 0), b'X', "undecoded writes are dropped");
    rig.gr(6, 0x0a);
    assert_eq!(rig.peek(0xb0000), b'X', "map 2: B0000-B7FFF");
    assert_eq!(rig.peek(0xb8000), 0xff);
    rig.gr(6, 0x02);
    assert_eq!(rig.peek(0xa0000), b'X', "map 0: the whole 128 KiB");
    assert_eq!(rig.peek(0xbffff), 0);
}

/// Odd/even: even addresses reach planes 0/2, odd ones 1/3, at the even plane offset.
#[test]
fn odd_even_addressing() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Text80x25);
    rig.window.write(0x18000 + 10, 2, 0x1e41);
    assert_eq!((rig.plane(0, 10), rig.plane(1, 10)), (0x41, 0x1e));
    assert_eq!(rig.plane(0, 11), 0, "both bytes at plane offset 10");
    assert_eq!(rig.plane(2, 10), 0, "map mask 0x03 protects the font plane");
    assert_eq!(rig.window.read(0x18000 + 10, 2), 0x1e41);
    rig.seq(2, 0x0f);
    rig.poke(0xb8000 + 20, 0x77);
    assert_eq!((rig.plane(0, 20), rig.plane(2, 20)), (0x77, 0x77), "even address: planes 0 and 2");
}

/// Chain-4: address bits 0-1 pick the plane, the plane offset keeps the address.
#[test]
fn chain4_addressing() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Chain4_320x200x256);
    rig.poke(0xa0005, 0x99);
    assert_eq!(rig.plane(1, 4), 0x99);
    assert_eq!(rig.peek(0xa0005), 0x99);
    assert_eq!(lock(&rig.vga).latches(), 0x0000_9900, "reads load the latches");
    rig.seq(2, 0x0d);
    rig.poke(0xa0009, 0x11);
    assert_eq!(rig.plane(1, 8), 0, "plane 1 masked");
}

#[test]
fn planar_write_modes_and_latches() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Planar640x480x16);
    rig.poke(0xa0000, 0xaa);
    assert_eq!((0..4).map(|p| rig.plane(p, 0)).collect::<Vec<_>>(), [0xaa; 4], "write mode 0, all planes");
    rig.seq(2, 0x05);
    rig.poke(0xa0001, 0x55);
    assert_eq!((0..4).map(|p| rig.plane(p, 1)).collect::<Vec<_>>(), [0x55, 0, 0x55, 0], "map mask 0101");
    rig.gr(4, 2);
    assert_eq!(rig.peek(0xa0001), 0x55, "read mode 0, read map 2");
    assert_eq!(lock(&rig.vga).latches(), 0x0055_0055);
    // Write mode 1: a read of offset 0 fills the latches; a write copies them.
    rig.seq(2, 0x0f);
    rig.peek(0xa0000);
    rig.gr(5, 1);
    rig.poke(0xa0002, 0x00);
    assert_eq!((0..4).map(|p| rig.plane(p, 2)).collect::<Vec<_>>(), [0xaa; 4]);
    // Write mode 2 with the bit mask: only bit 7 takes colour 0b1001.
    rig.gr(5, 2);
    rig.gr(8, 0x80);
    rig.peek(0xa0001);
    rig.poke(0xa0001, 0x09);
    assert_eq!((0..4).map(|p| rig.plane(p, 1)).collect::<Vec<_>>(), [0xd5, 0x00, 0x55, 0x80]);
    // Write mode 3 with set/reset colour 0b0110 through CPU data 0x0f.
    rig.gr(5, 3);
    rig.gr(8, 0xff);
    rig.gr(0, 0x06);
    rig.peek(0xa0003);
    rig.poke(0xa0003, 0x0f);
    assert_eq!((0..4).map(|p| rig.plane(p, 3)).collect::<Vec<_>>(), [0x00, 0x0f, 0x0f, 0x00]);
    // Read mode 1: offset 0 has colour 15 at bits 7,5,3,1 and 0 elsewhere.
    rig.gr(5, 0x08);
    rig.gr(2, 0x0f);
    rig.gr(7, 0x0f);
    assert_eq!(rig.peek(0xa0000), 0xaa);
    rig.gr(7, 0x00);
    assert_eq!(rig.peek(0xa0000), 0xff, "all planes don't-care");
}

/// The BIOS font load sequence (sequential addressing, plane 2 only), then `glyphs`.
fn load_font(rig: &mut Rig, glyphs: &[(u8, &[u8])]) {
    rig.seq(2, 0x04);
    rig.seq(4, 0x07);
    rig.gr(4, 0x02);
    rig.gr(5, 0x00);
    rig.gr(6, 0x04);
    for &(code, rows) in glyphs {
        for (line, &bits) in rows.iter().enumerate() {
            rig.poke(0xa0000 + u64::from(code) * 32 + line as u64, bits);
        }
    }
    rig.seq(2, 0x03);
    rig.seq(4, 0x02);
    rig.gr(4, 0x00);
    rig.gr(5, 0x10);
    rig.gr(6, 0x0e);
}

fn text_rig(mode: StandardMode) -> Rig {
    let mut rig = Rig::mode(MIN_VRAM, mode);
    load_font(&mut rig, &[(b'A', &[0x81, 0x00, 0x18]), (0xc4, &[0x01])]);
    rig.dac(0x01, [0, 0, 42]);
    rig.dac(0x07, [42, 42, 42]);
    rig.dac(0x3e, [63, 63, 21]);
    rig
}

#[test]
fn font_lives_in_plane_2() {
    let rig = text_rig(StandardMode::Text80x25);
    assert_eq!(rig.plane(2, usize::from(b'A') * 32), 0x81);
    assert_eq!(rig.plane(2, usize::from(b'A') * 32 + 2), 0x18);
}

#[test]
fn text_mode_render_glyphs_attributes_and_nine_dot_columns() {
    let mut rig = text_rig(StandardMode::Text80x25);
    rig.window.write(0x18000, 2, 0x1e41);
    rig.window.write(0x18002, 2, 0x1ec4);
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (720, 400));
    let (yellow, blue) = (rgb6(63, 63, 21), rgb6(0, 0, 42));
    assert_eq!(f.pixel(0, 0), Some(yellow), "glyph bit 7");
    assert_eq!(f.pixel(1, 0), Some(blue), "background");
    assert_eq!(f.pixel(7, 0), Some(yellow), "glyph bit 0");
    assert_eq!(f.pixel(8, 0), Some(blue), "9th dot of a letter is background");
    assert_eq!(f.pixel(3, 2), Some(yellow));
    assert_eq!(f.pixel(2, 2), Some(blue));
    assert_eq!(f.pixel(16, 0), Some(yellow), "0xC4 bit 0");
    assert_eq!(f.pixel(17, 0), Some(yellow), "line graphics: 9th dot repeats the 8th");
    assert_eq!(f.pixel(18, 0), Some(0), "cell 2 is attribute 0: black on black");
}

#[test]
fn text_cursor_and_blink() {
    let mut rig = text_rig(StandardMode::Text80x25);
    rig.window.write(0x18000 + 2 * 81, 2, 0x0720);
    rig.window.write(0x18004, 2, 0x9e41);
    rig.crtc(0x0e, 0);
    rig.crtc(0x0f, 81);
    let grey = rgb6(42, 42, 42);
    let on = rig.render(0);
    assert_eq!(on.pixel(9, 16 + 13), Some(grey), "cursor lines 13-14 of cell (1,1)");
    assert_eq!(on.pixel(9, 16 + 14), Some(grey));
    assert_eq!(on.pixel(9, 16 + 12), Some(0));
    assert_eq!(on.pixel(18, 0), Some(rgb6(63, 63, 21)), "blinking character, visible phase");
    let off = rig.render(8 | 16);
    assert_eq!(off.pixel(9, 16 + 13), Some(0), "cursor off phase");
    assert_eq!(off.pixel(18, 0), Some(rgb6(0, 0, 42)), "blink hides the glyph; background bit 7 masked");
    let shot = lock(&rig.vga).text_snapshot().unwrap();
    assert_eq!(shot.cursor, Some((1, 1)));
    rig.crtc(0x0a, 0x20);
    assert_eq!(lock(&rig.vga).text_snapshot().unwrap().cursor, None, "CR0A bit 5 disables the cursor");
}

/// Smooth scrolling: CR08 moves the top row up by scan lines, AR13 moves the screen
/// left by dots (9-dot mode: 0-7 shift 1-8, 8 shifts 0), and line compare splits.
#[test]
fn text_preset_row_scan_panning_and_split() {
    let mut rig = text_rig(StandardMode::Text80x25);
    rig.window.write(0x18000, 2, 0x1e41);
    let yellow = rgb6(63, 63, 21);
    rig.crtc(0x08, 2);
    let f = rig.render(0);
    assert_eq!(f.pixel(3, 0), Some(yellow), "glyph line 2 (0x18) is now the top scan line");
    rig.crtc(0x08, 0);
    rig.inb(0x3da);
    rig.outb(0x3c0, 0x13);
    rig.outb(0x3c0, 0x00);
    rig.outb(0x3c0, 0x20);
    let f = rig.render(0);
    assert_eq!(f.pixel(6, 0), Some(yellow), "AR13 = 0 shifts a 9-dot screen by 1: bit 0 moves from 7 to 6");
    assert_eq!(f.pixel(7, 0), Some(rgb6(0, 0, 42)));
    rig.inb(0x3da);
    rig.outb(0x3c0, 0x13);
    rig.outb(0x3c0, 0x08);
    rig.outb(0x3c0, 0x20);
    rig.crtc(0x0c, 0x01);
    rig.crtc(0x07, 0x0f);
    rig.crtc(0x09, 0x0f);
    rig.crtc(0x18, 31);
    let f = rig.render(0);
    assert_eq!(f.pixel(0, 32), Some(yellow), "after the split at line 31 row 0 of offset 0 shows");
    assert_eq!(f.pixel(0, 0), Some(0), "the top area starts at 0x100");
}

#[test]
fn text_snapshot_reads_the_screen() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Text80x25);
    for (i, b) in b"Hi \xc9\xcd".iter().enumerate() {
        rig.window.write(0x18000 + 160 + 2 * i as u64, 2, u64::from(*b) | 0x0700);
    }
    let shot = lock(&rig.vga).text_snapshot().unwrap();
    assert_eq!((shot.cols, shot.rows), (80, 25));
    assert_eq!(shot.lines()[1], "Hi ╔═");
    assert_eq!(shot.cell(1, 1).map(|c| (c.ch, c.attribute)), Some(('i', 7)));
    // Scrolling by start address: row 1 becomes the top row.
    rig.crtc(0x0c, 0);
    rig.crtc(0x0d, 80);
    assert_eq!(lock(&rig.vga).text_snapshot().unwrap().lines()[0], "Hi ╔═");
    lock(&rig.vga).set_standard_mode(StandardMode::Chain4_320x200x256);
    assert!(lock(&rig.vga).text_snapshot().is_none());
}

#[test]
fn forty_column_and_fifty_line_text() {
    let rig = text_rig(StandardMode::Text40x25);
    let shot = lock(&rig.vga).text_snapshot().unwrap();
    assert_eq!((shot.cols, shot.rows), (40, 25));
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (720, 400), "9-dot cells shown twice as wide");
    let mut rig = text_rig(StandardMode::Text80x50);
    rig.window.write(0x18000 + 160 * 49, 2, 0x1e41);
    let shot = lock(&rig.vga).text_snapshot().unwrap();
    assert_eq!((shot.cols, shot.rows), (80, 50));
    assert_eq!(shot.lines()[49], "A");
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (720, 400));
    assert_eq!(f.pixel(0, 49 * 8), Some(rgb6(63, 63, 21)));
}

#[test]
fn mode_13h_render() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Chain4_320x200x256);
    rig.dac(0x42, [10, 20, 30]);
    rig.poke(0xa0000 + 199 * 320 + 319, 0x42);
    rig.poke(0xa0000 + 1, 0x42);
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (320, 200));
    assert_eq!(f.pixel(319, 199), Some(rgb6(10, 20, 30)));
    assert_eq!(f.pixel(1, 0), Some(rgb6(10, 20, 30)));
    assert_eq!(f.pixel(0, 0), Some(0));
    assert_eq!(f.pixels.iter().filter(|&&p| p != 0).count(), 2);
}

/// Unchained 256-colour ("mode X"): the same scan-out in byte mode reads all planes.
#[test]
fn unchained_256_colour_render() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Chain4_320x200x256);
    rig.seq(4, 0x06);
    rig.crtc(0x14, 0x00);
    rig.crtc(0x17, 0xe3);
    rig.dac(7, [63, 0, 0]);
    let (x, y) = (203u64, 150u64);
    rig.seq(2, 1 << (x & 3));
    rig.poke(0xa0000 + y * 80 + x / 4, 7);
    let f = rig.render(0);
    assert_eq!(f.pixel(x as usize, y as usize), Some(rgb6(63, 0, 0)));
    assert_eq!(f.pixels.iter().filter(|&&p| p != 0).count(), 1);
}

/// Mode 04h: 2-bit pixels interleaved from planes 0 and 1; odd lines come from
/// 0xBA000 through CR17's MA13 row-scan substitution.
#[test]
fn cga_4_colour_render() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Cga320x200x4);
    rig.dac(0x13, [0, 42, 42]);
    rig.dac(0x17, [42, 42, 42]);
    rig.poke(0xb8000, 0b01_00_00_11);
    rig.poke(0xb8001, 0b11_00_00_00);
    rig.poke(0xba000 + 80 * 99 + 79, 0b00_00_00_01);
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (320, 200));
    let (cyan, white) = (rgb6(0, 42, 42), rgb6(42, 42, 42));
    assert_eq!(f.pixels[..8], [cyan, 0, 0, white, white, 0, 0, 0]);
    assert_eq!(f.pixel(319, 199), Some(cyan), "last pixel of the last odd line");
    assert_eq!(f.pixels.iter().filter(|&&p| p != 0).count(), 4);
}

#[test]
fn mode_12h_render() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Planar640x480x16);
    rig.dac(0x3c, [63, 21, 21]);
    rig.dac(0x01, [0, 0, 42]);
    let (x, y) = (637u64, 479u64);
    rig.gr(5, 2);
    rig.gr(8, 0x80 >> (x % 8));
    let addr = 0xa0000 + y * 80 + x / 8;
    rig.peek(addr);
    rig.poke(addr, 0x0c);
    rig.gr(8, 0x80);
    rig.peek(0xa0000);
    rig.poke(0xa0000, 0x01);
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (640, 480));
    assert_eq!(f.pixel(x as usize, y as usize), Some(rgb6(63, 21, 21)), "colour 12 -> palette 0x3C");
    assert_eq!(f.pixel(0, 0), Some(rgb6(0, 0, 42)));
    assert_eq!(f.pixels.iter().filter(|&&p| p != 0).count(), 2);
    // Line compare splits the screen: lines after it restart at address 0.
    rig.crtc(0x0c, 0x10);
    rig.crtc(0x07, 0x2e);
    rig.crtc(0x09, 0x00);
    rig.crtc(0x18, 99);
    let f = rig.render(0);
    assert_eq!(f.pixel(0, 100), Some(rgb6(0, 0, 42)), "first line after the split shows offset 0");
    assert_eq!(f.pixel(0, 0), Some(0), "top area starts at 0x1000");
}

/// AR13 shifts planar pixels left, fetching the next character clock at the right
/// edge; below a line-compare split it stops when AR10 bit 5 is set.
#[test]
fn horizontal_pixel_panning() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Planar640x480x16);
    rig.dac(0x3f, [63, 63, 63]);
    rig.poke(0xa0000, 0b0010_0000);
    rig.poke(0xa0000 + 160, 0b0100_0000);
    rig.inb(0x3da);
    for (index, value) in [(0x13, 2), (0x10, 0x21), (0x20, 0)] {
        rig.outb(0x3c0, index);
        rig.outb(0x3c0, value);
    }
    rig.crtc(0x07, 0x2e);
    rig.crtc(0x09, 0x00);
    rig.crtc(0x18, 2);
    let white = rgb6(63, 63, 63);
    let f = rig.render(0);
    assert_eq!(f.pixel(0, 0), Some(white), "pixel 2 panned to 0");
    assert_eq!(f.pixel(639, 1), Some(white), "line 1's pixel 641 comes from the next clock (line 2's first byte)");
    assert_eq!(f.pixel(2, 3), Some(white), "below the split (line 3 shows offset 0) panning is off");
    assert_eq!(f.pixel(1, 5), Some(white), "line 5 shows offset 160 unpanned");
    assert_eq!(f.pixels.iter().filter(|&&p| p != 0).count(), 4);
}

#[test]
fn blanked_screen_renders_black() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Chain4_320x200x256);
    rig.dac(0, [63, 63, 63]);
    assert!(rig.render(0).pixels.iter().all(|&p| p == 0x00ff_ffff));
    rig.inb(0x3da);
    rig.outb(0x3c0, 0x00);
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (320, 200));
    assert!(f.pixels.iter().all(|&p| p == 0), "PAS clear: palette being loaded");
}

fn vbe_mode(rig: &mut Rig, xres: u16, yres: u16, bpp: u16, enable: u16) {
    rig.dispi(VBE_DISPI_INDEX_ENABLE, 0);
    rig.dispi(VBE_DISPI_INDEX_XRES, xres);
    rig.dispi(VBE_DISPI_INDEX_YRES, yres);
    rig.dispi(VBE_DISPI_INDEX_BPP, bpp);
    rig.dispi(VBE_DISPI_INDEX_ENABLE, enable);
}

const MIN_VRAM: usize = 256 << 10;
const LFB: u16 = VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED;

#[test]
fn dispi_identification() {
    let mut rig = Rig::new(16 << 20);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
    rig.dispi(VBE_DISPI_INDEX_ID, VBE_DISPI_ID0);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID0);
    rig.dispi(VBE_DISPI_INDEX_ID, 0x1234);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID0, "unknown IDs ignored");
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_VIDEO_MEMORY_64K), 256);
    rig.dispi(VBE_DISPI_INDEX_ENABLE, VBE_DISPI_GETCAPS);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_XRES), MAX_XRES);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_YRES), MAX_YRES);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_BPP), 32);
    assert_eq!(rig.dispi.read(2, 2), 32, "0x1D0 aliases the data port");
}

#[test]
fn vbe_32bpp_lfb_render_and_page_flip() {
    let mut rig = Rig::new(16 << 20);
    rig.dispi(VBE_DISPI_INDEX_VIRT_WIDTH, 0);
    rig.dispi(VBE_DISPI_INDEX_VIRT_HEIGHT, 960);
    vbe_mode(&mut rig, 640, 480, 32, LFB);
    let mode = lock(&rig.vga).vbe_mode().unwrap();
    assert_eq!((mode.width, mode.height, mode.bpp, mode.stride), (640, 480, 32, 2560));
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_VIRT_WIDTH), 640);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_VIRT_HEIGHT), 960);
    rig.lfb.write((5 * 640 + 10) * 4, 4, 0xff12_3456);
    rig.lfb.write((485 * 640 + 10) * 4, 4, 0x00ab_cdef);
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (640, 480));
    assert_eq!(f.pixel(10, 5), Some(0x0012_3456), "X byte ignored");
    rig.dispi(VBE_DISPI_INDEX_Y_OFFSET, 480);
    assert_eq!(rig.render(0).pixel(10, 5), Some(0x00ab_cdef), "second page");
    assert!(lock(&rig.vga).text_snapshot().is_none());
}

#[test]
fn vbe_pixel_formats() {
    let mut rig = Rig::new(16 << 20);
    vbe_mode(&mut rig, 320, 200, 16, LFB);
    rig.lfb.write(0, 2, 0xf800);
    rig.lfb.write(2, 2, 0x07e0);
    rig.lfb.write(4, 2, 0x001f);
    let f = rig.render(0);
    assert_eq!(f.pixels[..3], [0xff_0000, 0x00_ff00, 0x00_00ff]);
    vbe_mode(&mut rig, 320, 200, 15, LFB);
    rig.lfb.write(0, 2, 0x7c00);
    rig.lfb.write(2, 2, 0x0200);
    assert_eq!(rig.render(0).pixels[..2], [0xff_0000, 0x00_8400]);
    vbe_mode(&mut rig, 320, 200, 24, LFB);
    rig.lfb.write(3, 4, 0x0033_2211);
    assert_eq!(rig.render(0).pixels[1], 0x33_2211, "B, G, R bytes");
    rig.dispi(VBE_DISPI_INDEX_VIRT_HEIGHT, 0xffff);
    vbe_mode(&mut rig, 1024, 768, 32, LFB);
    let last_line = (rig.dispi_read(VBE_DISPI_INDEX_VIRT_HEIGHT) as u64 - 1) * 4096;
    rig.lfb.write(last_line + 4 * 1023, 4, 0xff00_00ff);
    rig.dispi(VBE_DISPI_INDEX_Y_OFFSET, 4096 - 768);
    assert_eq!(rig.render(0).pixel(1023, 767), Some(0x00_00ff), "the last pixel of video memory");
    vbe_mode(&mut rig, 320, 200, 8, LFB | VBE_DISPI_8BIT_DAC);
    rig.dac(9, [0x80, 0x81, 0xff]);
    rig.lfb.write(7, 1, 9);
    assert_eq!(rig.render(0).pixels[7], 0x80_81ff, "8-bit DAC keeps full components");
    vbe_mode(&mut rig, 320, 200, 8, LFB);
    rig.dac(9, [0x3f, 0x00, 0x20]);
    rig.lfb.write(7, 1, 9);
    assert_eq!(rig.render(0).pixels[7], rgb6(0x3f, 0, 0x20));
}

#[test]
fn vbe_enable_clears_unless_noclearmem() {
    let mut rig = Rig::new(1 << 20);
    rig.lfb.write(100, 1, 0x5a);
    vbe_mode(&mut rig, 64, 64, 8, LFB | VBE_DISPI_NOCLEARMEM);
    assert_eq!(rig.lfb.read(100, 1), 0x5a);
    vbe_mode(&mut rig, 64, 64, 8, LFB);
    assert_eq!(rig.lfb.read(100, 1), 0);
}

#[test]
fn vbe_banked_window() {
    let mut rig = Rig::new(1 << 20);
    vbe_mode(&mut rig, 640, 480, 8, VBE_DISPI_ENABLED);
    rig.dispi(VBE_DISPI_INDEX_BANK, 3);
    rig.poke(0xa0010, 0x77);
    assert_eq!(rig.lfb.read(3 * 0x1_0000 + 0x10, 1), 0x77);
    assert_eq!(rig.peek(0xa0010), 0x77);
    assert_eq!(rig.peek(0xb0000), 0xff, "the VBE window is 64 KiB at 0xA0000");
    rig.dispi(VBE_DISPI_INDEX_BANK, 0x1234);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_BANK), 0x1234 % 16, "bank wraps in 1 MiB");
}

#[test]
fn vbe_planar_4bpp() {
    let mut rig = Rig::new(1 << 20);
    rig.dispi(VBE_DISPI_INDEX_VIRT_WIDTH, 803);
    vbe_mode(&mut rig, 800, 600, 4, VBE_DISPI_ENABLED);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_VIRT_WIDTH), 800, "planar lines are whole bytes of 8 pixels");
    {
        let mut vga = lock(&rig.vga);
        vga.write_port(0x3c4, 2);
        vga.write_port(0x3c5, 0x0f);
        vga.write_port(0x3ce, 8);
        vga.write_port(0x3cf, 0xff);
        vga.read_port(0x3da);
        for (index, value) in [(0x12, 0x0f), (0x02, 0x02), (0x20, 0x00)] {
            vga.write_port(0x3c0, index);
            vga.write_port(0x3c0, value);
        }
    }
    rig.dac(0x02, [0, 42, 0]);
    rig.seq(2, 0x02);
    rig.poke(0xa0000 + 100, 0x80);
    let f = rig.render(0);
    assert_eq!((f.width, f.height), (800, 600));
    assert_eq!(f.pixel(0, 1), Some(rgb6(0, 42, 0)), "offset 100 = line 1, pixel 0; colour 2 -> palette 2");
}

/// A mode larger than video memory, or outside the DISPI limits, is rejected with a
/// log line; nothing panics and the VGA keeps showing what it showed.
#[test]
fn vbe_rejects_impossible_modes() {
    let mut rig = Rig::mode(4 << 20, StandardMode::Text80x25);
    vbe_mode(&mut rig, 8192, 8192, 32, LFB);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_ENABLE) & VBE_DISPI_ENABLED, 0);
    assert!(lock(&rig.vga).vbe_mode().is_none(), "256 MiB does not fit 4 MiB");
    vbe_mode(&mut rig, 16008, 8, 8, LFB);
    assert!(lock(&rig.vga).vbe_mode().is_none(), "wider than MAX_XRES");
    assert!(lock(&rig.vga).vbe_mode().is_none());
    assert!(lock(&rig.vga).text_snapshot().is_some(), "still text mode");
    vbe_mode(&mut rig, 1280, 1024, 32, LFB);
    assert!(lock(&rig.vga).vbe_mode().is_none(), "5 MiB does not fit 4 MiB");
    vbe_mode(&mut rig, 640, 480, 7, LFB);
    assert!(lock(&rig.vga).vbe_mode().is_none(), "7 bpp");
    vbe_mode(&mut rig, 0, 480, 8, LFB);
    assert!(lock(&rig.vga).vbe_mode().is_none());
    rig.dispi(VBE_DISPI_INDEX_VIRT_HEIGHT, 0xffff);
    vbe_mode(&mut rig, 1024, 768, 32, LFB);
    assert!(lock(&rig.vga).vbe_mode().is_some(), "3 MiB fits");
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_VIRT_HEIGHT), 1024, "virtual height clamped to 4 MiB");
    rig.dispi(VBE_DISPI_INDEX_XRES, 9999);
    assert_eq!(lock(&rig.vga).vbe_mode().unwrap().width, 1024, "bad change keeps the mode");
    rig.dispi(VBE_DISPI_INDEX_Y_OFFSET, 0xffff);
    assert_eq!(rig.dispi_read(VBE_DISPI_INDEX_Y_OFFSET), 0, "offset past memory reset");
    rig.dispi(0x7777, 1);
    assert_eq!(rig.dispi_read(0x7777), 0);
}

/// Deterministic fuzzing over every guest-facing interface: random port, DISPI,
/// window and framebuffer accesses with renders in between must never panic and must
/// always produce a frame of the size it reports.
#[test]
fn fuzz_guest_interfaces() {
    let mut rig = Rig::new(1 << 20);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for step in 0..60_000u32 {
        let r = next();
        let value = next();
        let size = [1u8, 2, 4, 8][(r >> 8) as usize % 4];
        match r % 8 {
            0 => rig.ports.write(value % 0x30, size, value >> 8),
            1 => {
                rig.ports.read(value % 0x30, size);
            }
            2 => rig.dispi((value % 12) as u16, (value >> 16) as u16 % 2600),
            3 => rig.dispi((value % 16) as u16, (value >> 16) as u16),
            4 => rig.window.write(value % 0x2_0000, size, value >> 17),
            5 => {
                rig.window.read(value % 0x2_0000, size);
            }
            6 => rig.lfb.write(value % (1 << 21), size, value),
            _ => {
                rig.lfb.read(value % (1 << 21), size);
            }
        }
        if step % 3000 == 0 {
            let f = rig.render(u64::from(step));
            assert_eq!(f.pixels.len(), f.width * f.height);
            lock(&rig.vga).text_snapshot();
        }
    }
}

#[test]
fn reset_restores_power_on_registers_and_keeps_memory() {
    let mut rig = Rig::mode(1 << 20, StandardMode::Text80x25);
    rig.poke(0xb8000, b'Z');
    vbe_mode(&mut rig, 640, 480, 8, LFB | VBE_DISPI_NOCLEARMEM);
    let mut vga = lock(&rig.vga);
    vga.reset();
    assert!(vga.vbe_mode().is_none());
    assert_eq!(vga.misc_output(), 0);
    assert_eq!(vga.crtc().horizontal_display_chars(), 1);
    assert_eq!(vga.vram_size(), 1 << 20);
    assert_eq!(vga.vram().plane_byte(0, 0), b'Z');
}

/// The text watch fires at the guest's store that completes the awaited text in its row
/// (and at a scroll by start address or a mode change), not at attribute stores, other
/// characters, cursor moves or a store of one of its characters elsewhere, so a text
/// condition costs a check only where the screen may have come to show it.
#[test]
fn text_watch_fires_at_the_stores_that_may_show_the_text() {
    let mut rig = Rig::mode(MIN_VRAM, StandardMode::Text80x25);
    let hit = lock(&rig.vga).text_watch().hits();
    lock(&rig.vga).text_watch_mut().arm(["OK"]);
    let fired =
        |hit: &std::sync::Arc<std::sync::atomic::AtomicBool>| hit.swap(false, std::sync::atomic::Ordering::Relaxed);
    // Row 1: "O" at column 0, attribute bytes, the cursor, the DAC: no "OK" yet.
    rig.window.write(0x18000 + 160, 2, 0x0700 | u64::from(b'O'));
    rig.window.write(0x18001, 1, u64::from(b'K'));
    rig.crtc(0x0e, 0);
    rig.crtc(0x0f, 5);
    rig.dac(1, [1, 2, 3]);
    // 'K' on row 2 under the 'O' of row 1: the rows do not join into "OK".
    rig.window.write(0x18000 + 320 + 2, 2, 0x0700 | u64::from(b'K'));
    assert!(!fired(&hit), "nothing shows OK within a row");
    rig.window.write(0x18000 + 160 + 2, 2, 0x0700 | u64::from(b'K'));
    assert!(fired(&hit), "'K' completes OK on row 1");
    rig.crtc(0x0d, 80);
    assert!(fired(&hit), "a scroll by start address");
    // After the scroll, row 0 is the old row 1: a store there is read in its new place.
    rig.window.write(0x18000 + 160 + 4, 2, 0x0700 | u64::from(b'K'));
    assert!(fired(&hit), "row 0 shows OKK");
    lock(&rig.vga).set_standard_mode(StandardMode::Chain4_320x200x256);
    assert!(fired(&hit), "a mode change");
    rig.window.write(0x0000, 1, u64::from(b'K'));
    assert!(!fired(&hit), "a pixel store in a graphics mode is not text");
}
