//! Guest memory as a debugger sees it: linear addresses translated by the read-only
//! [`walk`](super::walk::walk), then RAM, shadow RAM or ROM. MMIO is refused (a debugger read must not
//! acknowledge an interrupt or pop a FIFO), and so is anything unmapped.

use super::walk::{walk, Paging};
use rx86_core::phys::{PhysMemory, RegionKind};

/// True when `len` bytes at physical `addr` lie in RAM, shadow RAM or ROM (no side effects
/// to read).
fn plain_memory(mem: &PhysMemory, addr: u64, len: u64) -> bool {
    mem.lookup(addr).is_some_and(|r| {
        matches!(r.kind, RegionKind::Ram { .. } | RegionKind::Shadow { .. } | RegionKind::Rom { .. })
            && addr.checked_add(len).is_some_and(|end| end <= r.base + r.len)
    })
}

/// Reads a paging-structure entry of `size` bytes (0 when it is not in RAM or ROM).
pub fn read_entry(mem: &PhysMemory, addr: u64, size: usize) -> u64 {
    let mut b = [0u8; 8];
    if !plain_memory(mem, addr, size as u64) {
        return 0;
    }
    mem.read(addr, &mut b[..size]);
    u64::from_le_bytes(b)
}

/// Physical address of linear `lin`, or `None` when it is not mapped.
pub fn translate(mem: &PhysMemory, paging: &Paging, lin: u64) -> Option<u64> {
    walk(paging, lin, |a, s| read_entry(mem, a, s)).phys
}

/// Splits `len` bytes at linear `lin` into page pieces, calling `f(phys, offset, n)`
/// until it returns false or a page is unmapped; returns the bytes handled.
fn for_each_page(
    mem: &PhysMemory,
    paging: &Paging,
    lin: u64,
    len: usize,
    mut f: impl FnMut(u64, usize, usize) -> bool,
) -> usize {
    let mut done = 0;
    while done < len {
        let at = lin.wrapping_add(done as u64);
        let n = ((0x1000 - (at & 0xfff)) as usize).min(len - done);
        let Some(phys) = translate(mem, paging, at) else { break };
        if !plain_memory(mem, phys, n as u64) || !f(phys, done, n) {
            break;
        }
        done += n;
    }
    done
}

/// Reads guest-virtual memory into `buf`; returns how many bytes could be read (fewer
/// than asked when a page is unmapped or not RAM/ROM).
pub fn read_virtual(mem: &PhysMemory, paging: &Paging, lin: u64, buf: &mut [u8]) -> usize {
    let len = buf.len();
    for_each_page(mem, paging, lin, len, |phys, at, n| {
        mem.read(phys, &mut buf[at..at + n]);
        true
    })
}

/// Writes guest-virtual memory (writable RAM only; decoded code there is invalidated);
/// returns how many bytes were written.
pub fn write_virtual(mem: &PhysMemory, paging: &Paging, lin: u64, data: &[u8]) -> usize {
    for_each_page(mem, paging, lin, data.len(), |phys, at, n| {
        if mem.ram_offset(phys, n as u64).is_none() {
            return false;
        }
        mem.write(phys, &data[at..at + n]);
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rx86_core::platform::{BasicPlatform, Platform};

    const CR0_PG: u64 = 1 << 31;

    #[test]
    fn reads_and_writes_follow_the_page_tables_across_pages() {
        let p = BasicPlatform::new(1 << 20).unwrap();
        let mem = p.memory();
        // 32-bit paging, CR3 = 0x1000: linear 0x0040_0000.. maps to physical 0x8000 and
        // 0x0040_1000 to 0x3000 (pages out of order, so a crossing access must re-walk).
        mem.write(0x1004, &0x2003u32.to_le_bytes());
        mem.write(0x2000, &0x8003u32.to_le_bytes());
        mem.write(0x2004, &0x3003u32.to_le_bytes());
        let pg = Paging { cr0: CR0_PG, cr3: 0x1000, cr4: 0, efer: 0 };
        mem.write(0x8ffe, &[1, 2]);
        mem.write(0x3000, &[3, 4]);
        let mut buf = [0u8; 4];
        assert_eq!(read_virtual(mem, &pg, 0x0040_0ffe, &mut buf), 4);
        assert_eq!(buf, [1, 2, 3, 4]);
        assert_eq!(write_virtual(mem, &pg, 0x0040_0fff, &[9, 9]), 2);
        let mut phys = [0u8; 1];
        mem.read(0x3000, &mut phys);
        assert_eq!(phys, [9]);
        // The next page (0x0040_2000) is unmapped: a read stops there.
        let mut buf = [0u8; 8];
        assert_eq!(read_virtual(mem, &pg, 0x0040_1ffc, &mut buf), 4);
        // Nothing set the accessed bit in the PDE.
        let mut pde = [0u8; 4];
        mem.read(0x1004, &mut pde);
        assert_eq!(u32::from_le_bytes(pde) & 0x20, 0);
    }

    #[test]
    fn unbacked_memory_is_refused() {
        let p = BasicPlatform::new(1 << 20).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(read_virtual(p.memory(), &Paging::default(), 0x4000_0000, &mut buf), 0);
    }
}
