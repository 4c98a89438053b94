/*
 * Multiboot 1 header and entry (Multiboot Specification 0.6.96, sections 3.1 and 3.2), then the
 * switch to long mode (Intel SDM Vol. 3A, 10.8.5 "Initializing IA-32e Mode"; 4.5 "4-Level Paging").
 * The loader enters in 32-bit protected mode with flat segments, paging and interrupts off,
 * EAX = 0x2BADB002 and EBX = physical address of the Multiboot information structure.
 * This code identity-maps the first 4 GiB with 2 MiB pages (the 3-4 GiB PCI hole, which holds the
 * IOAPIC at 0xFEC00000 and the local APIC at 0xFEE00000, uncached), enables PAE, EFER.LME and
 * paging, and far-jumps to 64-bit code, which calls kmain(magic, info).
 */
#include "arch.h"

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_PAGE_ALIGN   (1 << 0) /* align modules on 4 KiB */
#define MULTIBOOT_MEMORY_INFO  (1 << 1) /* ask for mem_lower/mem_upper and the memory map */
#define MULTIBOOT_FLAGS        (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO)
#define STACK_SIZE 16384

#define CPUID_EXT_MAX 0x80000000       /* EAX: highest extended leaf */
#define CPUID_EXT_FEATURES 0x80000001
#define CPUID_EXT_EDX_LM (1 << 29)     /* long mode */
#define CR0_PG (1 << 31)               /* paging */
#define CR4_PAE (1 << 5)               /* physical address extension */
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)              /* long mode enable */
#define PTE_P (1 << 0)                 /* present */
#define PTE_RW (1 << 1)                /* writable */
#define PTE_PWT (1 << 3)               /* write-through */
#define PTE_PCD (1 << 4)               /* cache disable: with PWT, PAT entry 3 = UC */
#define PDE_PS (1 << 7)                /* page directory entry maps a 2 MiB page */
#define PAGE_SIZE 4096
#define LARGE_PAGE_SHIFT 21            /* 2 MiB */
#define PD_COUNT 4                     /* one page directory per GiB: 0-4 GiB */
#define PDE_COUNT (PD_COUNT * 512)
#define UNCACHED_FIRST_PDE (0xC0000000 >> LARGE_PAGE_SHIFT) /* the PCI hole starts at 3 GiB */

#define COM1_THR 0x3F8
#define COM1_LSR 0x3FD
#define LSR_THRE 0x20
#define THRE_POLL_LIMIT 100000
#define ISA_DEBUG_EXIT_PORT 0x501
#define ISA_DEBUG_EXIT_NO_LONG_MODE 0x31

    .section .multiboot, "a"
    .align 4
    .long MULTIBOOT_HEADER_MAGIC
    .long MULTIBOOT_FLAGS
    .long -(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_FLAGS)

    .section .text
    .code32
    .globl _start
_start:
    cli
    cld
    movl %eax, %ebp              /* keep the magic in EBP and the info pointer in ESI until kmain */
    movl %ebx, %esi
    lgdt gdt_descriptor
    ljmp $KERNEL_CS32, $1f
1:  movw $KERNEL_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    /* Zero .bss ourselves (it holds the page tables): not every loader clears memsz beyond filesz. */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    movl $CPUID_EXT_MAX, %eax
    cpuid
    cmpl $CPUID_EXT_FEATURES, %eax
    jb no_long_mode
    movl $CPUID_EXT_FEATURES, %eax
    cpuid
    testl $CPUID_EXT_EDX_LM, %edx
    jz no_long_mode

    /* PML4[0] -> the PDPT; PDPT[i] -> page directory i (upper halves stay zero from .bss). */
    movl $(pdpt + PTE_P + PTE_RW), pml4
    movl $(page_directories + PTE_P + PTE_RW), %eax
    xorl %ecx, %ecx
2:  movl %eax, pdpt(, %ecx, 8)
    addl $PAGE_SIZE, %eax
    incl %ecx
    cmpl $PD_COUNT, %ecx
    jb 2b
    /* PDE n maps the 2 MiB at n << 21 onto itself. */
    xorl %ecx, %ecx
3:  movl %ecx, %eax
    shll $LARGE_PAGE_SHIFT, %eax
    orl $(PTE_P + PTE_RW + PDE_PS), %eax
    cmpl $UNCACHED_FIRST_PDE, %ecx
    jb 4f
    orl $(PTE_PCD + PTE_PWT), %eax
4:  movl %eax, page_directories(, %ecx, 8)
    incl %ecx
    cmpl $PDE_COUNT, %ecx
    jb 3b

    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $CR0_PG, %eax
    movl %eax, %cr0              /* now in compatibility mode: EFER.LMA = 1 */
    ljmp $KERNEL_CS, $long_mode

/* No long mode: say so on COM1 (bounded LSR polls), then exit through isa-debug-exit and halt. */
no_long_mode:
    movl $no_long_mode_message, %ebx
5:  movb (%ebx), %al
    testb %al, %al
    jz 7f
    movl $THRE_POLL_LIMIT, %ecx
    movw $COM1_LSR, %dx
6:  inb %dx, %al
    testb $LSR_THRE, %al
    loopz 6b
    movb (%ebx), %al
    movw $COM1_THR, %dx
    outb %al, %dx
    incl %ebx
    jmp 5b
7:  movw $ISA_DEBUG_EXIT_PORT, %dx
    movw $ISA_DEBUG_EXIT_NO_LONG_MODE, %ax
    outw %ax, %dx
8:  cli
    hlt
    jmp 8b

    .code64
long_mode:
    movq $stack_top, %rsp
    movl %ebp, %edi              /* kmain(magic, info): both zero-extended */
    movl %esi, %esi
    call kmain
9:  cli
    hlt
    jmp 9b

    .section .rodata
no_long_mode_message:
    .asciz "\r\nmode: FAIL CPUID 0x80000001 EDX.LM is clear: no long mode for the 64-bit kernel\r\n"
    .align 8
gdt:
    .quad 0                      /* null descriptor */
    .quad 0x00CF9A000000FFFF     /* 0x08: code, base 0, limit 4 GiB, 32-bit, DPL 0 */
    .quad 0x00CF92000000FFFF     /* 0x10: data, base 0, limit 4 GiB, DPL 0 */
    .quad 0x00AF9A000000FFFF     /* 0x18: code, 64-bit (L=1, D=0), DPL 0 */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .section .bss
    .align PAGE_SIZE
pml4:
    .skip PAGE_SIZE
pdpt:
    .skip PAGE_SIZE
page_directories:
    .skip PAGE_SIZE * PD_COUNT
    .align 16
stack_bottom:
    .skip STACK_SIZE
stack_top:

    .section .note.GNU-stack, "", @progbits
