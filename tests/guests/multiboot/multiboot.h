/* Multiboot Specification 0.6.96, 3.3 "Boot information format". */
#ifndef MULTIBOOT_H
#define MULTIBOOT_H

#include "types.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
#define MULTIBOOT_INFO_MEMORY (1 << 0)   /* mem_lower / mem_upper valid */
#define MULTIBOOT_INFO_CMDLINE (1 << 2)  /* cmdline valid */
#define MULTIBOOT_INFO_MEM_MAP (1 << 6)  /* mmap_length / mmap_addr valid */
#define MULTIBOOT_INFO_LOADER_NAME (1 << 9)
#define MULTIBOOT_MEMORY_AVAILABLE 1

struct multiboot_info {
    u32 flags;
    u32 mem_lower; /* KiB from 0 */
    u32 mem_upper; /* KiB from 1 MiB */
    u32 boot_device;
    u32 cmdline;
    u32 mods_count, mods_addr;
    u32 syms[4];
    u32 mmap_length, mmap_addr;
    u32 drives_length, drives_addr;
    u32 config_table;
    u32 boot_loader_name;
} __attribute__((packed));

struct multiboot_mmap_entry {
    u32 size; /* size of the rest of the entry; the next entry starts size + 4 bytes on */
    u64 addr;
    u64 len;
    u32 type;
} __attribute__((packed));

#endif
