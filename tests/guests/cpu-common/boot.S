/*
 * Multiboot 1 entry shared by the CPU test guests (Multiboot Specification 0.6.96 §3.1-3.2):
 * the loader enters in 32-bit protected mode with flat segments and paging off. We load our
 * own GDT and IDT (exception stubs 0-31 into trap_handler in lib.c), a stack, and call main().
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

    .text
    .globl _start
_start:
    cli
    cld
    lgdt gdtr
    ljmp $0x08, $1f
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    movl $stack_top, %esp
    pushl $0
    popfl
    call cpu_init
    call main
    call done

/* Exception stubs: push a zero error code where the CPU pushes none, then the vector. */
.macro STUB v
    .align 8
isr\v:
    .if (\v == 8) || (\v >= 10 && \v <= 14) || (\v == 17)
    .else
    pushl $0
    .endif
    pushl $\v
    jmp isr_common
.endm
    .globl isr_table
isr_common:
    pushal
    pushl %ds                    /* from ring 3 or v8086 mode these are not ours */
    pushl %es
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    leal 8(%esp), %eax
    pushl %eax
    call trap_handler
    addl $4, %esp
    popl %es
    popl %ds
    popal
    addl $8, %esp
    iretl

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    STUB \v
    .endr

    .section .rodata
    .align 4
isr_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .long isr\v
    .endr

    .data
    .align 8
    .globl gdt, gdtr, idtr
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF     /* 0x08 code32 DPL0 */
    .quad 0x00CF92000000FFFF     /* 0x10 data32 DPL0 */
    .quad 0x00CFFA000000FFFF     /* 0x18 code32 DPL3 */
    .quad 0x00CFF2000000FFFF     /* 0x20 data32 DPL3 */
    .quad 0x00AF9A000000FFFF     /* 0x28 code64 DPL0 */
    .quad 0x00009A008000FFFF     /* 0x30 code16 base 0x8000 limit 0xffff (modes.S) */
    .quad 0x000092000000FFFF     /* 0x38 data16 base 0 limit 0xffff */
    .fill 24, 8, 0               /* 0x40.. TSS and per-guest entries */
gdtr:
    .word 32 * 8 - 1
    .long gdt
idtr:
    .word 256 * 8 - 1
    .long idt

    .bss
    .align 16
    .globl stack_top, stack0_top
    .space 16384
stack_top:
    .space 8192
stack0_top:
