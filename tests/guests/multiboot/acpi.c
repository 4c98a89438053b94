/*
 * ACPI table discovery (ACPI 6.4: 5.2.5 RSDP, 5.2.7 RSDT, 5.2.8 XSDT, 5.2.9 FADT, 5.2.12 MADT).
 * Tables are read in place: both variants run with physical = linear below 4 GiB.
 */
#include "acpi.h"
#include "util.h"

#define BIOS_AREA_START 0xE0000       /* RSDP search range in the BIOS read-only area */
#define BIOS_AREA_END 0x100000
#define BDA_EBDA_SEGMENT 0x40E        /* BIOS data area word: EBDA segment */
#define EBDA_SEARCH_LEN 1024          /* the RSDP may be in the first 1 KiB of the EBDA */
#define RSDP_V1_LEN 20
#define RSDP_OFF_OEMID 9
#define RSDP_OFF_REVISION 15
#define RSDP_OFF_RSDT 16
#define RSDP_OFF_LENGTH 20
#define RSDP_OFF_XSDT 24
#define SDT_HEADER_LEN 36
#define SDT_OFF_LENGTH 4
#define MAX_TABLE_LEN 0x100000        /* refuse absurd lengths from a broken table */
#define MAX_ROOT_ENTRIES 64
#define FADT_OFF_DSDT 40
#define FADT_OFF_SCI_INT 46
#define FADT_OFF_SMI_CMD 48
#define FADT_OFF_PM1A_EVT_BLK 56
#define FADT_OFF_PM1A_CNT_BLK 64
#define FADT_OFF_PM_TMR_BLK 76
#define FADT_OFF_FLAGS 112
#define FADT_OFF_X_DSDT 140
#define FADT_FLAG_TMR_VAL_EXT (1 << 8)
#define MADT_OFF_LAPIC_ADDR 36
#define MADT_OFF_ENTRIES 44
#define MADT_LOCAL_APIC 0
#define MADT_IO_APIC 1
#define MADT_INTERRUPT_OVERRIDE 2
#define MADT_LOCAL_APIC_ADDR_OVERRIDE 5
#define MADT_LAPIC_ENABLED 1

struct acpi_info acpi;

/* Physical reads; the empty asm hides constant addresses such as the BDA from -Warray-bounds. */
static u32 rd32(u32 addr) {
    __asm__("" : "+r"(addr));
    return *(const volatile u32 *)PHYS(addr);
}
static u16 rd16(u32 addr) {
    __asm__("" : "+r"(addr));
    return *(const volatile u16 *)PHYS(addr);
}
static u8 rd8(u32 addr) {
    __asm__("" : "+r"(addr));
    return *(const volatile u8 *)PHYS(addr);
}

static u32 find_rsdp_in(u32 start, u32 end) {
    for (u32 p = start; p + RSDP_V1_LEN <= end; p += 16) {
        if (memcmp(PHYS(p), "RSD PTR ", 8) == 0 && byte_sum(PHYS(p), RSDP_V1_LEN) == 0) return p;
    }
    return 0;
}

/* Returns the table length if the header at addr has the signature and a valid checksum. */
static u32 check_table(u32 addr, const char *sig, const char **why) {
    if (!addr) {
        *why = "null table pointer";
        return 0;
    }
    u32 len = rd32(addr + SDT_OFF_LENGTH);
    if (sig && memcmp(PHYS(addr), sig, 4) != 0) {
        *why = "bad table signature";
        return 0;
    }
    if (len < SDT_HEADER_LEN || len > MAX_TABLE_LEN) {
        *why = "bad table length";
        return 0;
    }
    if (byte_sum(PHYS(addr), len) != 0) {
        *why = "bad table checksum";
        return 0;
    }
    return len;
}

static const char *parse_fadt(struct acpi_info *info, u32 fadt, u32 len) {
    info->fadt = fadt;
    if (len < FADT_OFF_FLAGS + 4) return "FADT too short";
    info->sci_irq = rd16(fadt + FADT_OFF_SCI_INT);
    info->smi_cmd = rd32(fadt + FADT_OFF_SMI_CMD);
    info->pm1a_evt = rd32(fadt + FADT_OFF_PM1A_EVT_BLK);
    info->pm1a_cnt = rd32(fadt + FADT_OFF_PM1A_CNT_BLK);
    info->pm_tmr = rd32(fadt + FADT_OFF_PM_TMR_BLK);
    info->pm_tmr_32bit = (rd32(fadt + FADT_OFF_FLAGS) & FADT_FLAG_TMR_VAL_EXT) != 0;
    info->dsdt = rd32(fadt + FADT_OFF_DSDT);
    if (!info->dsdt && len >= FADT_OFF_X_DSDT + 8 && rd32(fadt + FADT_OFF_X_DSDT + 4) == 0)
        info->dsdt = rd32(fadt + FADT_OFF_X_DSDT);
    if (info->pm1a_cnt > 0xFFFF || info->pm_tmr > 0xFFFF || info->pm1a_evt > 0xFFFF) return "FADT port above 0xFFFF";
    return NULL;
}

static const char *parse_madt(struct acpi_info *info, u32 madt, u32 len) {
    info->madt = madt;
    info->lapic_addr = rd32(madt + MADT_OFF_LAPIC_ADDR);
    for (u32 p = madt + MADT_OFF_ENTRIES; p + 2 <= madt + len;) {
        u8 type = rd8(p), entry_len = rd8(p + 1);
        if (entry_len < 2 || p + entry_len > madt + len) return "MADT entry overruns the table";
        if (type == MADT_LOCAL_APIC && entry_len >= 8) {
            if (rd32(p + 4) & MADT_LAPIC_ENABLED) info->lapic_count++;
        } else if (type == MADT_IO_APIC && entry_len >= 12) {
            if (info->ioapic_count++ == 0) {
                info->ioapic_id = rd8(p + 2);
                info->ioapic_addr = rd32(p + 4);
                info->ioapic_gsi_base = rd32(p + 8);
            }
        } else if (type == MADT_INTERRUPT_OVERRIDE && entry_len >= 10) {
            if (info->override_count < ACPI_MAX_OVERRIDES) {
                struct acpi_override *o = &info->overrides[info->override_count++];
                o->source_irq = rd8(p + 3);
                o->gsi = rd32(p + 4);
                o->flags = rd16(p + 8);
            }
        } else if (type == MADT_LOCAL_APIC_ADDR_OVERRIDE && entry_len >= 12) {
            if (rd32(p + 8) == 0) info->lapic_addr = rd32(p + 4);
        }
        p += entry_len;
    }
    return NULL;
}

static const char *find_s5(struct acpi_info *info, u32 table, u32 len) {
    if (aml_find_s5((const u8 *)PHYS(table + SDT_HEADER_LEN), len - SDT_HEADER_LEN, &info->slp_typa, &info->slp_typb)) {
        info->have_s5 = 1;
        info->s5_table = table;
    }
    return NULL;
}

const char *acpi_discover(struct acpi_info *info) {
    memset(info, 0, sizeof(*info));
    const char *why = NULL;
    u32 ebda = (u32)rd16(BDA_EBDA_SEGMENT) << 4;
    u32 rsdp = 0;
    if (ebda >= 0x80000 && ebda < 0xA0000) rsdp = find_rsdp_in(ebda, ebda + EBDA_SEARCH_LEN);
    if (!rsdp) rsdp = find_rsdp_in(BIOS_AREA_START, BIOS_AREA_END);
    if (!rsdp) return "no RSDP with a valid checksum in the EBDA or 0xE0000-0xFFFFF";
    info->rsdp = rsdp;
    info->revision = rd8(rsdp + RSDP_OFF_REVISION);
    memcpy(info->oem_id, PHYS(rsdp + RSDP_OFF_OEMID), 6);
    for (int i = 0; i < 6; i++)
        if (info->oem_id[i] < 0x20 || info->oem_id[i] > 0x7E) info->oem_id[i] = '?';
    for (int i = 5; i >= 0 && info->oem_id[i] == ' '; i--) info->oem_id[i] = '\0';

    u32 root = rd32(rsdp + RSDP_OFF_RSDT), entry_size = 4;
    if (info->revision >= 2) {
        u32 rsdp_len = rd32(rsdp + RSDP_OFF_LENGTH);
        if (rsdp_len < 36 || rsdp_len > 4096 || byte_sum(PHYS(rsdp), rsdp_len) != 0)
            return "RSDP extended checksum or length invalid";
        u32 xsdt_lo = rd32(rsdp + RSDP_OFF_XSDT), xsdt_hi = rd32(rsdp + RSDP_OFF_XSDT + 4);
        if (xsdt_lo && !xsdt_hi) {
            root = xsdt_lo;
            entry_size = 8;
            info->root_is_xsdt = 1;
        }
    }
    info->root = root;
    u32 root_len = check_table(root, info->root_is_xsdt ? "XSDT" : "RSDT", &why);
    if (!root_len) return info->root_is_xsdt ? "XSDT invalid" : "RSDT invalid";

    u32 count = (root_len - SDT_HEADER_LEN) / entry_size;
    if (count > MAX_ROOT_ENTRIES) count = MAX_ROOT_ENTRIES;
    info->table_count = count;
    for (u32 i = 0; i < count; i++) {
        u32 entry = root + SDT_HEADER_LEN + i * entry_size;
        if (entry_size == 8 && rd32(entry + 4) != 0) continue; /* above 4 GiB: unreachable without paging */
        u32 table = rd32(entry);
        u32 len = check_table(table, NULL, &why);
        if (!len) return "a table listed in the root table has a bad header or checksum";
        if (memcmp(PHYS(table), "FACP", 4) == 0) {
            if ((why = parse_fadt(info, table, len))) return why;
        } else if (memcmp(PHYS(table), "APIC", 4) == 0) {
            if ((why = parse_madt(info, table, len))) return why;
        }
    }
    if (!info->fadt) return "no FADT (FACP) in the root table";
    u32 dsdt_len = check_table(info->dsdt, "DSDT", &why);
    if (!dsdt_len) return "DSDT missing or invalid";
    find_s5(info, info->dsdt, dsdt_len);
    for (u32 i = 0; i < count && !info->have_s5; i++) {
        u32 entry = root + SDT_HEADER_LEN + i * entry_size;
        if (entry_size == 8 && rd32(entry + 4) != 0) continue;
        u32 table = rd32(entry);
        u32 len = check_table(table, "SSDT", &why);
        if (len) find_s5(info, table, len);
    }
    return NULL;
}

u32 acpi_isa_irq_gsi(u8 irq, u16 *flags) {
    for (u32 i = 0; i < acpi.override_count; i++) {
        if (acpi.overrides[i].source_irq == irq) {
            *flags = acpi.overrides[i].flags;
            return acpi.overrides[i].gsi;
        }
    }
    *flags = 0;
    return irq;
}
