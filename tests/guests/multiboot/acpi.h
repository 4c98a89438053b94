/* What the test kernel learns from the ACPI tables (filled by acpi_discover). */
#ifndef ACPI_H
#define ACPI_H

#include "types.h"

#define ACPI_MAX_OVERRIDES 8

struct acpi_override {
    u8 source_irq;
    u32 gsi;
    u16 flags; /* MPS INTI flags: polarity bits 0-1, trigger mode bits 2-3 */
};

struct acpi_info {
    u32 rsdp;              /* physical address of the RSDP */
    u8 revision;           /* RSDP revision: 0 = ACPI 1.0 (RSDT only), 2+ = XSDT too */
    char oem_id[7];
    u32 root;              /* the RSDT or XSDT that was walked */
    int root_is_xsdt;
    u32 table_count;
    u32 fadt, madt, dsdt;  /* physical addresses, 0 when absent */
    u32 pm1a_evt, pm1a_cnt, pm_tmr; /* I/O ports, 0 when absent */
    int pm_tmr_32bit;      /* FADT TMR_VAL_EXT */
    u16 sci_irq;
    u32 smi_cmd;
    u32 lapic_addr;
    u32 lapic_count;
    u32 ioapic_count;
    u8 ioapic_id;
    u32 ioapic_addr, ioapic_gsi_base;
    u32 override_count;
    struct acpi_override overrides[ACPI_MAX_OVERRIDES];
    int have_s5;
    u8 slp_typa, slp_typb;
    u32 s5_table;          /* the DSDT or SSDT that held \_S5 */
};

extern struct acpi_info acpi;

/* Finds and checks the tables; returns NULL on success or why it failed. */
const char *acpi_discover(struct acpi_info *info);

/* GSI and flags an ISA IRQ is routed to: the MADT override if there is one, else identity. */
u32 acpi_isa_irq_gsi(u8 irq, u16 *flags);

/* Searches AML for a Name(_S5, Package(){a, b, ...}); returns 1 and the first two integers. */
int aml_find_s5(const u8 *aml, u32 len, u8 *slp_typa, u8 *slp_typb);

#endif
