/* Step "acpi": RSDP, RSDT/XSDT, FADT, MADT, DSDT and \_S5, all checksummed. */
#include "acpi.h"
#include "ioapic.h"
#include "kprintf.h"
#include "lapic.h"
#include "report.h"
#include "steps.h"

void step_acpi(void) {
    step_begin("acpi");
    const char *why = acpi_discover(&acpi);
    if (why) {
        step_fail("%s", why);
        return;
    }
    if (!acpi.madt) {
        step_fail("no MADT (APIC) table");
        return;
    }
    if (!acpi.pm1a_cnt || !acpi.pm_tmr) {
        step_fail("FADT lacks PM1a_CNT_BLK (0x%x) or PM_TMR_BLK (0x%x)", acpi.pm1a_cnt, acpi.pm_tmr);
        return;
    }
    if (!acpi.ioapic_count || !acpi.lapic_count) {
        step_fail("MADT lists %u enabled local APICs and %u IOAPICs", acpi.lapic_count, acpi.ioapic_count);
        return;
    }
    if (!acpi.have_s5) {
        step_fail("no \\_S5 package in the DSDT or an SSDT");
        return;
    }
    lapic_set_base(acpi.lapic_addr);
    ioapic_set_base(acpi.ioapic_addr);
    u16 irq0_flags;
    u32 irq0_gsi = acpi_isa_irq_gsi(0, &irq0_flags);
    kprintf("info: acpi isa overrides");
    for (u32 i = 0; i < acpi.override_count; i++)
        kprintf(" irq%u->gsi%u/0x%x", acpi.overrides[i].source_irq, acpi.overrides[i].gsi, acpi.overrides[i].flags);
    kprintf("\n");
    step_ok("rsdp=0x%x rev=%u oem=%s %s=0x%x tables=%u pm1a_evt=0x%x pm1a_cnt=0x%x pm_tmr=0x%x/%ubit sci=%u "
            "smi_cmd=0x%x lapic=0x%x cpus=%u ioapic=0x%x ioapic_id=%u gsi_base=%u irq0_gsi=%u irq0_flags=0x%x "
            "dsdt=0x%x s5=%u,%u",
            acpi.rsdp, acpi.revision, acpi.oem_id, acpi.root_is_xsdt ? "xsdt" : "rsdt", acpi.root, acpi.table_count,
            acpi.pm1a_evt, acpi.pm1a_cnt, acpi.pm_tmr, acpi.pm_tmr_32bit ? 32 : 24, acpi.sci_irq, acpi.smi_cmd,
            acpi.lapic_addr, acpi.lapic_count, acpi.ioapic_addr, acpi.ioapic_id, acpi.ioapic_gsi_base, irq0_gsi,
            irq0_flags, acpi.dsdt, acpi.slp_typa, acpi.slp_typb);
}
