/*
 * i386 variant: 32-bit protected mode with flat segments and paging off (physical = linear).
 * Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors" and 6.11 "IDT Descriptors" (32-bit gates).
 * Included by C and by the assembly files of this folder.
 */
#ifndef ARCH_H
#define ARCH_H

#define KERNEL_CS 0x08 /* GDT: 32-bit code, base 0, limit 4 GiB */
#define KERNEL_DS 0x10 /* GDT: data, base 0, limit 4 GiB */
#define ARCH_MODE_BITS 32
#define ARCH_MODE_DESCRIPTION "protected mode, paging off"

#ifndef __ASSEMBLER__
#include "types.h"

#define GATE_INTERRUPT_32 0x8E /* present, DPL 0, 32-bit interrupt gate */

/* The stack frame isr_common builds (PUSHA order, then the stub's pushes, then the CPU's). */
struct isr_frame {
    u32 edi, esi, ebp, esp, ebx, edx, ecx, eax;
    u32 vector, error;
    u32 ip, cs, flags;
};

struct idt_gate {
    u16 offset_low;
    u16 selector;
    u8 zero;
    u8 type_attr;
    u16 offset_high;
} __attribute__((packed));

struct idt_pointer {
    u16 limit;
    u32 base;
} __attribute__((packed));

static inline void idt_gate_set(struct idt_gate *gate, uptr handler) {
    gate->offset_low = (u16)handler;
    gate->selector = KERNEL_CS;
    gate->zero = 0;
    gate->type_attr = GATE_INTERRUPT_32;
    gate->offset_high = (u16)(handler >> 16);
}
#endif

#endif
