//! Fuzz targets for the file formats and option languages rx86 parses: every input gets
//! an `Ok` or a clear error, never a panic, and a loader never writes outside guest RAM.

use super::Input;
use rx86_core::platform::BasicPlatform;
use rx86_devices::block::{open_image, ImageFormat, ImageOptions};
use rx86_firmware::linux::{load_bzimage, LinuxEntry};
use rx86_firmware::multiboot::{find_header, load_multiboot};
use rx86_firmware::{LoadOptions, MemoryLayout, Module};
use std::io::Write;

/// Guest RAM the loaders get: small, so huge load addresses and sizes are refused.
const RAM_BYTES: u64 = 32 << 20;

fn machine() -> (BasicPlatform, MemoryLayout) {
    let platform = BasicPlatform::new(RAM_BYTES).expect("guest RAM");
    (platform, MemoryLayout::new(RAM_BYTES).expect("layout"))
}

/// A bzImage (the whole input) loaded at both entries and for its real-mode setup, with a
/// small initrd and a command line taken from its last bytes.
pub fn bzimage(data: &[u8]) {
    let (platform, layout) = machine();
    let split = data.len().saturating_sub(64);
    let cmdline = String::from_utf8_lossy(&data[split..]);
    let initrd = &data[split.saturating_sub(4096)..split];
    for entry in [LinuxEntry::Protected32, LinuxEntry::Long64] {
        let options = LoadOptions { linux_entry: entry, ..LoadOptions::default() };
        let _ = load_bzimage(&platform.memory, &layout, data, Some(initrd), &cmdline, Some(0xe0000), &options);
    }
    let _ = rx86_firmware::linux_setup::load(&platform.memory, &layout, data, Some(initrd), &cmdline);
}

/// A Multiboot kernel (ELF32 or a.out kludge) with a module made of its own first bytes.
pub fn multiboot(data: &[u8]) {
    let Ok(Some(header)) = find_header(data) else { return };
    let (platform, layout) = machine();
    let module = Module { bytes: &data[..data.len().min(512)], cmdline: "module" };
    let _ = load_multiboot(&platform.memory, &layout, data, &header, "kernel", &[module], true);
    let _ = rx86_firmware::elf::parse_elf32(data);
}

/// An El Torito boot catalog.
pub fn el_torito(data: &[u8]) {
    if let Ok(image) = rx86_firmware::bios::eltorito::parse_catalog(data) {
        let _ = rx86_firmware::bios::eltorito::specification_packet(&image, 0xe0);
    }
}

/// A qcow2 image: opened (with the header checks), then every sector of its first
/// clusters and a few far ones read through its tables; then checked as `rx86 img check`
/// does, and opened writable and written at a few places (allocating clusters, L2 tables and
/// refcount blocks over whatever the tables say).
pub fn qcow2(data: &[u8]) {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("rx86-fuzz-qcow2-{}-{:?}.img", std::process::id(), std::thread::current().id()));
    let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
    if written.is_err() {
        return;
    }
    let options = ImageOptions { format: ImageFormat::Qcow2, read_only: true, snapshot: false };
    if let Ok(mut image) = open_image(&path, options) {
        let len = image.len();
        let mut buf = [0u8; 512];
        let far = [len / 2, len.saturating_sub(512), u64::MAX - 511];
        for offset in (0..64).map(|s| s * 512).chain(far) {
            let _ = image.read_at(offset, &mut buf);
        }
    }
    let _ = rx86_devices::block::qcow2::check::check(&path);
    if let Ok(mut image) = rx86_devices::block::Qcow2Image::open_writable(&path) {
        use rx86_devices::block::BlockBackend;
        let len = image.len();
        // Each write that allocates syncs the file: a few places, near and far.
        for offset in [0, 512, 4096, 65_536, len / 2, len.saturating_sub(512), u64::MAX - 511] {
            let _ = image.write_at(offset, &[0x5a; 512]);
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// A network replay log (`--nic replay,file=FILE`): parsed, and if accepted played back
/// through a replay backend at times taken from the log itself.
pub fn net_replay_log(data: &[u8]) {
    use rx86_devices::net::replay::{parse_log, ReplayBackend};
    use rx86_devices::net::NetBackend;
    let Ok(frames) = parse_log(data) else { return };
    let Ok(mut replay) = ReplayBackend::from_bytes(data, std::path::Path::new("fuzz.rr")) else { return };
    let mut offered = 0;
    for (at, _) in &frames {
        replay.poll(*at);
        while let Some(frame) = replay.peek_for_guest() {
            assert!(frame.len() <= rx86_devices::net::replay::MAX_FRAME);
            replay.pop_for_guest(*at);
            offered += 1;
        }
        assert!(replay.next_event().is_none_or(|next| next > *at), "a deadline in the past");
    }
    assert_eq!(offered, frames.len(), "every frame is offered by its time");
}

/// The option languages: `--keys`, `--stop-at`, `--drive`, `--boot`, `--serial` (with `--chardev`
/// and `--mon`), `--trace`,
/// `--rtc`, `--timeout`, `--nic` and QEMU's spellings of a whole command line, each given the input
/// as text.
pub fn cli_specs(data: &[u8]) {
    let mut input = Input::new(data);
    let which = input.u8();
    let text = String::from_utf8_lossy(input.take(usize::MAX)).into_owned();
    match which % 10 {
        0 => {
            let _ = rx86::keys::KeyScript::parse(&text);
        }
        1 => {
            let _ = rx86::keys::StopAt::parse(&text);
        }
        2 => {
            let _ = rx86::drives::parse_drive(&text);
        }
        3 => {
            let _ = rx86::drives::parse_boot_order(&text);
        }
        4 => {
            // The character-device languages: -serial/-monitor, -chardev, -mon.
            let _ = rx86::chardev::parse::parse_char_arg(&text);
            let _ = rx86::chardev::parse::parse_chardev(&text);
            let _ = rx86::chardev::parse::parse_mon(&text);
        }
        5 => {
            let _ = rx86::trace::parse_trace_spec(&text);
        }
        6 => {
            let _ = rx86::rtc_option::parse_rtc(&text);
        }
        7 => {
            let _ = rx86::cli::parse_wall_time(&text);
        }
        8 => {
            if let Ok(rx86::network::NicArg(Some(nic))) = rx86::network::parse_nic(&text) {
                let _ = rx86::network::nic_macs(&[nic.clone(), nic]);
            }
        }
        _ => {
            // A command line: words split at spaces, rewritten as QEMU spellings are.
            let words = std::iter::once("rx86".to_string()).chain(text.split(' ').map(str::to_string));
            let _ = rx86::qemu_args::normalize(words);
        }
    }
}
