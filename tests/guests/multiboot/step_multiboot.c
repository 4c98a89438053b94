/* Step "multiboot": the loader's hand-off (magic, memory sizes, memory map, command line). */
#include "kprintf.h"
#include "report.h"
#include "steps.h"

#define MAX_MMAP_ENTRIES 128
#define MAX_CMDLINE_LEN 4096
#define MAX_MEM_LOWER_KIB 640

static void print_cmdline(const struct multiboot_info *info) {
    kprintf("cmdline: ");
    if (info->flags & MULTIBOOT_INFO_CMDLINE && info->cmdline) {
        const char *s = (const char *)PHYS(info->cmdline);
        for (u32 i = 0; i < MAX_CMDLINE_LEN && s[i]; i++) kprintf("%c", s[i]);
    }
    kprintf("\n");
}

int cmdline_has(const struct multiboot_info *info, const char *word) {
    if (!(info->flags & MULTIBOOT_INFO_CMDLINE) || !info->cmdline) return 0;
    const char *s = (const char *)PHYS(info->cmdline);
    for (u32 i = 0; i < MAX_CMDLINE_LEN && s[i]; i++) {
        u32 j = 0;
        while (word[j] && s[i + j] == word[j]) j++;
        if (!word[j]) return 1;
    }
    return 0;
}

void step_multiboot(u32 magic, const struct multiboot_info *info) {
    step_begin("multiboot");
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        step_fail("EAX=0x%08x, expected 0x%08x", magic, MULTIBOOT_BOOTLOADER_MAGIC);
        return;
    }
    if (!(info->flags & MULTIBOOT_INFO_MEMORY)) {
        step_fail("flags=0x%x: no mem_lower/mem_upper although the header asked for them", info->flags);
        print_cmdline(info);
        return;
    }
    if (!(info->flags & MULTIBOOT_INFO_MEM_MAP)) {
        step_fail("flags=0x%x: no memory map", info->flags);
        print_cmdline(info);
        return;
    }
    u32 entries = 0;
    u64 usable = 0;
    for (u32 p = info->mmap_addr; p + 4 <= info->mmap_addr + info->mmap_length; entries++) {
        const struct multiboot_mmap_entry *e = (const struct multiboot_mmap_entry *)PHYS(p);
        if (entries >= MAX_MMAP_ENTRIES || e->size < 20) {
            step_fail("memory map entry %u is malformed (size field %u)", entries, e->size);
            print_cmdline(info);
            return;
        }
        if (e->type == MULTIBOOT_MEMORY_AVAILABLE) usable += e->len;
        p += e->size + 4;
    }
    if (info->mem_lower > MAX_MEM_LOWER_KIB || info->mem_upper == 0 || usable == 0) {
        step_fail("implausible memory: mem_lower=%uKiB mem_upper=%uKiB usable=%llu", info->mem_lower,
                  info->mem_upper, usable);
    } else {
        step_ok("magic=0x%08x flags=0x%x mem_lower=%uKiB mem_upper=%uKiB mmap_entries=%u usable_bytes=%llu", magic,
                info->flags, info->mem_lower, info->mem_upper, entries, usable);
    }
    print_cmdline(info);
}
