/*
 * gdb-modes: a Multiboot 1 kernel that visits every CPU mode, for the gdb stub tests.
 * Entered in 32-bit protected mode (Multiboot Specification 0.6.96 §3.2), it
 *   1. calls pm_main (C: pm_main -> pm_outer -> pm_inner, which writes `watched`);
 *   2. drops to real mode (SDM Vol. 3A §9.9.2: 16-bit code segment, clear CR0.PE, far
 *      jump), runs `real_mode` (AX = 0x1234, BX = 0x5678), returns to protected mode;
 *   3. enters long mode (§9.8.5: PAE, CR3, EFER.LME, CR0.PG, far jump to a 64-bit code
 *      segment): `long_entry` (RAX = 0x1122334455667788), then long_main -> long_outer ->
 *      long_inner (frame-pointer frames), which writes `watched` again;
 *   4. writes 0 to isa-debug-exit (port 0x501): rx86 exits with status 1; without that
 *      device it spins at `spin` forever (for the Ctrl-C tests).
 * Symbols to break on: pm_inner, real_mode, long_entry, long_inner; `to_real`, `to_long`
 * are the far jumps that switch modes (for single-step tests).
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0
#define SEL_CODE32 0x08
#define SEL_DATA32 0x10
#define SEL_CODE64 0x18
#define SEL_CODE16 0x20
#define SEL_DATA16 0x28
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define CR4_PAE (1 << 5)

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    lgdt gdtr
    ljmp $SEL_CODE32, $1f
1:  movl $stack_top, %esp
    call load_data32
    xorl %ebp, %ebp
    call pm_main
    .globl to_real
to_real:
    ljmp $SEL_CODE16, $real_entry16

load_data32:
    movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    ret

    .globl back_to_protected
back_to_protected:
    movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $stack_top, %esp
    /* Identity-map the first GiB with 2-MiB pages: PML4[0] -> PDPT[0] -> PD. */
    movl $pdpt, %eax
    orl $3, %eax
    movl %eax, pml4
    movl $pd, %eax
    orl $3, %eax
    movl %eax, pdpt
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, pd(, %ecx, 8)
    incl %ecx
    cmpl $512, %ecx
    jne 2b
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
    orl $0x80000000, %eax
    movl %eax, %cr0
    .globl to_long
to_long:
    ljmp $SEL_CODE64, $long_entry

    .code64
    .globl long_entry
long_entry:
    movabsq $0x1122334455667788, %rax
    movl $SEL_DATA32, %ecx
    movw %cx, %ds
    movw %cx, %ss
    movl $stack_top, %esp       /* zero-extends into RSP (an ELF32 object has no 32S relocation) */
    xorl %ebp, %ebp
    call long_main
    movw $0x501, %dx
    xorl %eax, %eax
    outb %al, %dx
    .globl spin
spin:                           /* without isa-debug-exit: spin for the Ctrl-C tests */
    jmp spin

    .globl long_main
long_main:
    pushq %rbp
    movq %rsp, %rbp
    movl $long_msg, %esi
4:  movb (%rsi), %al
    testb %al, %al
    jz 5f
    movw $0x3f8, %dx
    outb %al, %dx
    incq %rsi
    jmp 4b
5:  call long_outer
    popq %rbp
    ret

    .globl long_outer
long_outer:
    pushq %rbp
    movq %rsp, %rbp
    movl $100, %edi
    call long_inner
    popq %rbp
    ret

    .globl long_inner
long_inner:
    pushq %rbp
    movq %rsp, %rbp
    movl $watched, %eax
    movl %edi, (%rax)
    popq %rbp
    ret

    .section .real16, "ax"
    .code16
real_entry16:
    movw $SEL_DATA16, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr0, %eax
    andl $~1, %eax
    .globl leave_protected
leave_protected:
    movl %eax, %cr0
    ljmp $0, $real_mode

    .globl real_mode
real_mode:
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %ss
    movw $0x3ff0, %sp
    movw $0x1234, %ax
    movw $0x5678, %bx
    movw $real_msg, %si
6:  movb (%si), %al
    testb %al, %al
    jz 7f
    movw $0x3f8, %dx
    outb %al, %dx
    incw %si
    jmp 6b
7:  movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $SEL_CODE32, $back_to_protected
real_msg:
    .asciz "gdb-modes: real mode\n"

    .section .rodata
long_msg:
    .asciz "gdb-modes: long mode\n"

    .data
    .align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code, flat */
    .quad 0x00cf92000000ffff    /* 0x10: data, flat */
    .quad 0x00af9a000000ffff    /* 0x18: 64-bit code */
    .quad 0x00009a000000ffff    /* 0x20: 16-bit code, base 0, 64 KiB */
    .quad 0x000092000000ffff    /* 0x28: 16-bit data, base 0, 64 KiB */
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long gdt

    .bss
    .align 4096
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 4096
stack: .skip 16384
stack_top:
