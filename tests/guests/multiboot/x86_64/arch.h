/*
 * x86_64 variant: long mode, 4-level paging identity-mapping the first 4 GiB in 2 MiB pages
 * (set up by boot.S), so physical = linear below 4 GiB as in the i386 variant.
 * Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors", 4.5 "4-Level Paging" and 6.14.1
 * "64-Bit Mode IDT" (16-byte interrupt gates). Included by C and by the assembly files here.
 */
#ifndef ARCH_H
#define ARCH_H

#define KERNEL_CS32 0x08 /* GDT: 32-bit code, base 0, limit 4 GiB (Multiboot entry until long mode) */
#define KERNEL_DS 0x10   /* GDT: data, base 0, limit 4 GiB */
#define KERNEL_CS 0x18   /* GDT: 64-bit code (L=1) */
#define ARCH_MODE_BITS 64
#define ARCH_MODE_DESCRIPTION "long mode, 4-level paging, 0-4GiB identity-mapped in 2MiB pages"

#ifndef __ASSEMBLER__
#include "types.h"

#define GATE_INTERRUPT_64 0x8E /* present, DPL 0, 64-bit interrupt gate */

/* The stack frame isr_common builds (general registers, then the stub's pushes, then the CPU's). */
struct isr_frame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
    u64 vector, error;
    u64 ip, cs, flags, sp, ss;
};

struct idt_gate {
    u16 offset_low;
    u16 selector;
    u8 ist;
    u8 type_attr;
    u16 offset_mid;
    u32 offset_high;
    u32 reserved;
} __attribute__((packed));

struct idt_pointer {
    u16 limit;
    u64 base;
} __attribute__((packed));

static inline void idt_gate_set(struct idt_gate *gate, uptr handler) {
    gate->offset_low = (u16)handler;
    gate->selector = KERNEL_CS;
    gate->ist = 0;
    gate->type_attr = GATE_INTERRUPT_64;
    gate->offset_mid = (u16)(handler >> 16);
    gate->offset_high = (u32)(handler >> 32);
    gate->reserved = 0;
}
#endif

#endif
