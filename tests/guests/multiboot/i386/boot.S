/*
 * Multiboot 1 header and entry (Multiboot Specification 0.6.96, sections 3.1 and 3.2).
 * The loader enters in 32-bit protected mode with flat segments, paging and interrupts off,
 * EAX = 0x2BADB002 and EBX = physical address of the Multiboot information structure.
 * The loader's GDT may be gone, so we load our own before touching a segment register.
 */
#include "arch.h"

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_PAGE_ALIGN   (1 << 0) /* align modules on 4 KiB */
#define MULTIBOOT_MEMORY_INFO  (1 << 1) /* ask for mem_lower/mem_upper and the memory map */
#define MULTIBOOT_FLAGS        (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO)
#define STACK_SIZE 16384

    .section .multiboot, "a"
    .align 4
    .long MULTIBOOT_HEADER_MAGIC
    .long MULTIBOOT_FLAGS
    .long -(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_FLAGS)

    .section .text
    .globl _start
_start:
    cli
    cld
    movl %eax, %ebp              /* keep the magic; EBX (info pointer) is not touched below */
    lgdt gdt_descriptor
    ljmp $KERNEL_CS, $1f
1:  movw $KERNEL_DS, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    /* Zero .bss ourselves: not every loader clears memsz beyond filesz. */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    movl $stack_top, %esp
    pushl $0                     /* EFLAGS: IF=0, DF=0 */
    popfl
    pushl %ebx                   /* kmain(magic, info) */
    pushl %ebp
    call kmain
2:  cli
    hlt
    jmp 2b

    .section .rodata
    .align 8
gdt:
    .quad 0                      /* null descriptor */
    .quad 0x00CF9A000000FFFF     /* 0x08: code, base 0, limit 4 GiB, 32-bit, DPL 0 */
    .quad 0x00CF92000000FFFF     /* 0x10: data, base 0, limit 4 GiB, 32-bit, DPL 0 */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .section .bss
    .align 16
stack_bottom:
    .skip STACK_SIZE
stack_top:

    .section .note.GNU-stack, "", @progbits
