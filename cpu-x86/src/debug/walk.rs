//! A read-only page walk for debuggers and diagnoses: it reads the paging structures the
//! way the CPU does (SDM Vol. 3A §4.3 32-bit paging, §4.4 PAE paging, §4.5 4-level
//! paging) but never sets accessed/dirty bits, never raises an exception, and reports
//! every entry it visited so a person can see where a translation stopped.

/// Present.
const P: u64 = 1 << 0;
/// Read/write.
const RW: u64 = 1 << 1;
/// User/supervisor.
const US: u64 = 1 << 2;
/// Page size (a large page ends the walk at a PDE or PDPTE).
const PS: u64 = 1 << 7;
/// Execute-disable (PAE and 4-level entries, with EFER.NXE).
const XD: u64 = 1 << 63;
/// Physical address bits 12-51 of a PAE or 4-level entry.
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// CR0.PG.
const CR0_PG: u64 = 1 << 31;
/// CR4.PSE: 4-MiB pages with 32-bit paging.
const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE.
const CR4_PAE: u64 = 1 << 5;
/// EFER.LMA: long mode active (4-level paging).
const EFER_LMA: u64 = 1 << 10;

/// The registers that control translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paging {
    /// CR0 (PG).
    pub cr0: u64,
    /// CR3 (the root table).
    pub cr3: u64,
    /// CR4 (PSE, PAE).
    pub cr4: u64,
    /// IA32_EFER (LMA).
    pub efer: u64,
}

impl Paging {
    /// The paging mode in words.
    pub fn describe(&self) -> &'static str {
        if self.cr0 & CR0_PG == 0 {
            "paging off (linear = physical)"
        } else if self.cr4 & CR4_PAE == 0 {
            "32-bit paging"
        } else if self.efer & EFER_LMA == 0 {
            "PAE paging"
        } else {
            "4-level paging"
        }
    }
}

/// One paging-structure entry the walk read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkStep {
    /// The table's name in the SDM ("PML4E", "PDPTE", "PDE", "PTE").
    pub level: &'static str,
    /// Physical address of the entry.
    pub entry_addr: u64,
    /// The entry's value.
    pub entry: u64,
}

impl WalkStep {
    /// The entry decoded in words: `PDE @0x1000 = 0x2003 (present, writable, supervisor, -> 0x2000)`.
    pub fn describe(&self) -> String {
        let e = self.entry;
        if e & P == 0 {
            return format!("{} @{:#x} = {:#x} (NOT PRESENT)", self.level, self.entry_addr, e);
        }
        format!(
            "{} @{:#x} = {:#x} (present, {}, {}{}{}, -> {:#x})",
            self.level,
            self.entry_addr,
            e,
            if e & RW != 0 { "writable" } else { "read-only" },
            if e & US != 0 { "user" } else { "supervisor" },
            if e & PS != 0 && self.level != "PTE" { ", large page" } else { "" },
            if e & XD != 0 { ", no-execute" } else { "" },
            e & ADDR
        )
    }
}

/// The result of a walk: the entries read, and the physical address or where it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Entries in the order read; the last one is the leaf or the missing one.
    pub steps: Vec<WalkStep>,
    /// The physical address, or `None` when an entry was not present.
    pub phys: Option<u64>,
    /// True when every level allows writes (R/W set).
    pub writable: bool,
    /// True when every level allows user access (U/S set).
    pub user: bool,
}

impl Walk {
    /// The walk in words, one entry a line, then the outcome.
    pub fn describe(&self, lin: u64) -> String {
        let mut s = String::new();
        for step in &self.steps {
            s.push_str(&format!("  {}\n", step.describe()));
        }
        match self.phys {
            Some(p) => s.push_str(&format!(
                "  linear {lin:#x} -> physical {p:#x} ({}, {})",
                if self.writable { "writable" } else { "read-only" },
                if self.user { "user" } else { "supervisor only" }
            )),
            None => s.push_str(&format!("  linear {lin:#x} is not mapped")),
        }
        s
    }
}

/// Translates linear `lin` with `paging`, reading entries with `read_phys(addr, size)`
/// (size 4 or 8). Without paging the address is its own translation.
pub fn walk(paging: &Paging, lin: u64, read_phys: impl Fn(u64, usize) -> u64) -> Walk {
    let mut w = Walk { steps: Vec::new(), phys: None, writable: true, user: true };
    if paging.cr0 & CR0_PG == 0 {
        w.phys = Some(lin & 0xffff_ffff);
        return w;
    }
    let visit = |w: &mut Walk, level: &'static str, entry_addr: u64, size: usize| -> Option<u64> {
        let entry = read_phys(entry_addr, size);
        w.steps.push(WalkStep { level, entry_addr, entry });
        if entry & P == 0 {
            return None;
        }
        // The PDPTEs of PAE paging have no R/W or U/S bits (SDM Table 4-8).
        if level != "PDPTE" || paging.efer & EFER_LMA != 0 {
            w.writable &= entry & RW != 0;
            w.user &= entry & US != 0;
        }
        Some(entry)
    };
    if paging.cr4 & CR4_PAE == 0 {
        let lin = lin & 0xffff_ffff;
        let Some(pde) = visit(&mut w, "PDE", (paging.cr3 & 0xffff_f000) + ((lin >> 22) & 0x3ff) * 4, 4) else {
            return w;
        };
        if pde & PS != 0 && paging.cr4 & CR4_PSE != 0 {
            w.phys = Some((pde & 0xffc0_0000) | (lin & 0x3f_ffff));
            return w;
        }
        let Some(pte) = visit(&mut w, "PTE", (pde & 0xffff_f000) + ((lin >> 12) & 0x3ff) * 4, 4) else {
            return w;
        };
        w.phys = Some((pte & 0xffff_f000) | (lin & 0xfff));
        return w;
    }
    let long = paging.efer & EFER_LMA != 0;
    let (mut table, first_level) = if long { (paging.cr3 & ADDR, 4) } else { (paging.cr3 & 0xffff_ffe0, 3) };
    const NAMES: [&str; 5] = ["", "PTE", "PDE", "PDPTE", "PML4E"];
    for level in (1..=first_level).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = if !long && level == 3 { (lin >> 30) & 3 } else { (lin >> shift) & 0x1ff };
        let base = if !long && level == 3 { table } else { table & ADDR };
        let Some(e) = visit(&mut w, NAMES[level as usize], base + index * 8, 8) else {
            return w;
        };
        // Large pages: 1 GiB at a 4-level PDPTE, 2 MiB at a PDE.
        if e & PS != 0 && (level == 2 || (level == 3 && long)) {
            let mask = (1u64 << shift) - 1;
            w.phys = Some((e & ADDR & !mask) | (lin & mask));
            return w;
        }
        table = e & ADDR;
    }
    w.phys = Some(table | (lin & 0xfff));
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Physical memory as a map of entries.
    fn mem(entries: &[(u64, u64)]) -> impl Fn(u64, usize) -> u64 {
        let m: HashMap<u64, u64> = entries.iter().copied().collect();
        move |a, _| m.get(&a).copied().unwrap_or(0)
    }

    #[test]
    fn paging_off_is_identity() {
        let w = walk(&Paging::default(), 0x1234, mem(&[]));
        assert_eq!(w.phys, Some(0x1234));
        assert!(w.steps.is_empty());
    }

    #[test]
    fn two_level_4k_and_4m_pages() {
        // CR3 = 0x1000. Linear 0x0040_1234: PDE index 1 at 0x1004 -> table 0x2000, PTE
        // index 1 at 0x2004 -> page 0x5000 (read-only), giving 0x5234.
        let pg = Paging { cr0: CR0_PG, cr3: 0x1000, cr4: CR4_PSE, efer: 0 };
        let m = mem(&[(0x1004, 0x2007), (0x2004, 0x5005), (0x1008, 0x00c0_0083)]);
        let w = walk(&pg, 0x0040_1234, &m);
        assert_eq!(w.phys, Some(0x5234));
        assert_eq!(w.steps.len(), 2);
        assert_eq!((w.steps[1].entry_addr, w.writable, w.user), (0x2004, false, true));
        // PDE index 2 is a 4-MiB page at 0x00c0_0000, supervisor.
        let w = walk(&pg, 0x0081_2345, &m);
        assert_eq!(w.phys, Some(0x00c1_2345));
        assert!(!w.user);
        // Without CR4.PSE the PS bit is ignored: the walk goes to a PTE.
        let w = walk(&Paging { cr4: 0, ..pg }, 0x0081_2345, &m);
        assert_eq!(w.steps.len(), 2);
    }

    #[test]
    fn missing_entry_stops_the_walk_and_names_it() {
        let pg = Paging { cr0: CR0_PG, cr3: 0x1000, cr4: 0, efer: 0 };
        let w = walk(&pg, 0x0040_0000, mem(&[]));
        assert_eq!(w.phys, None);
        assert_eq!(w.steps.len(), 1);
        assert!(w.steps[0].describe().contains("NOT PRESENT"));
        assert!(w.describe(0x0040_0000).contains("not mapped"));
    }

    #[test]
    fn pae_walk_uses_four_pdptes_and_2m_pages() {
        // CR3 = 0x1020 (32-byte aligned PDPT): linear 0xc020_1000 -> PDPTE 3 at 0x1038,
        // PDE index 1 at 0x3008 is a 2-MiB page at 0x0060_0000.
        let pg = Paging { cr0: CR0_PG, cr3: 0x1020, cr4: CR4_PAE, efer: 0 };
        let m = mem(&[(0x1038, 0x3001), (0x3008, 0x0060_0083)]);
        let w = walk(&pg, 0xc020_1000, m);
        assert_eq!(w.phys, Some(0x0060_1000));
        assert_eq!(w.steps[0].level, "PDPTE");
        assert!(w.writable, "PAE PDPTEs have no R/W bit");
    }

    #[test]
    fn four_level_walk_with_1g_2m_and_4k_pages() {
        let pg = Paging { cr0: CR0_PG, cr3: 0x1000, cr4: CR4_PAE, efer: EFER_LMA };
        // 0xffff_8000_0000_0000: PML4 index 256 at 0x1800 -> 0x2000; PDPT index 0 is a
        // 1-GiB page at 0x4000_0000.
        // 0x20_1000 (PML4 0, PDPT 0, PD 1): PD at 0x3000, PDE 1 -> PT 0x4000, PTE 1 -> 0x9000.
        let m = mem(&[
            (0x1800, 0x2003),
            (0x2000, 0x4000_0083),
            (0x1000, 0x5003),
            (0x5000, 0x3003),
            (0x3008, 0x4003),
            (0x4008, 0x8000_0000_0000_9003),
        ]);
        assert_eq!(walk(&pg, 0xffff_8000_0123_4567, &m).phys, Some(0x4123_4567));
        let w = walk(&pg, 0x20_1abc, &m);
        assert_eq!(w.phys, Some(0x9abc));
        assert_eq!(w.steps.iter().map(|s| s.level).collect::<Vec<_>>(), ["PML4E", "PDPTE", "PDE", "PTE"]);
        assert!(w.steps[3].describe().contains("no-execute"));
        assert!(!w.user);
    }
}
