/* Long mode privilege change (SDM Vol. 3A §6.14.2-6.14.5): a 64-bit TSS (RSP0, IST1) loaded
 * with LTR, IRETQ to a 64-bit ring 3 segment, INT 0x80 through a DPL 3 gate back to ring 0
 * on RSP0 with a null SS, and INT 0x81 whose gate selects IST1. main.c builds the TSS and GDT
 * entries: 0x50/0x58 64-bit TSS, 0x60 user data, 0x68 user code64. */
#include "lib.h"
#define SEL_TSS64 0x50
#define SEL_UDATA 0x63
#define SEL_UCODE64 0x6b

    .text
    .code64
    .globl long_user
long_user:
    pushq %rbx
    pushq %rbp
    movq %rsp, lu_saved_rsp(%rip)
    movw $SEL_TSS64, %ax
    ltr %ax
    /* IDT 0x80: DPL 3 interrupt gate to lu_int80; 0x81: DPL 3, IST 1, to lu_int81. */
    leaq idt64(%rip), %rbx
    movl $lu_int80, %eax
    movw %ax, 0x80 * 16(%rbx)
    movw $SEL_CODE64, 0x80 * 16 + 2(%rbx)
    movw $0xee00, 0x80 * 16 + 4(%rbx)
    shrl $16, %eax
    movw %ax, 0x80 * 16 + 6(%rbx)
    movl $0, 0x80 * 16 + 8(%rbx)
    movl $lu_int81, %eax
    movw %ax, 0x81 * 16(%rbx)
    movw $SEL_CODE64, 0x81 * 16 + 2(%rbx)
    movw $0xee01, 0x81 * 16 + 4(%rbx)
    shrl $16, %eax
    movw %ax, 0x81 * 16 + 6(%rbx)
    movl $0, 0x81 * 16 + 8(%rbx)
    pushq $SEL_UDATA
    movl $lu_user_stack, %eax
    pushq %rax
    pushq $2
    pushq $SEL_UCODE64
    movl $lu_user, %eax
    pushq %rax
    iretq
lu_user:
    movl %cs, %eax
    movl %eax, lu_out(%rip)
    int $0x81
    int $0x80

/* Records RSP, SS and the frame (RIP CS RFLAGS RSP SS) and returns to user mode. */
lu_int81:
    movq %rsp, %rax
    movl %eax, lu_out + 4(%rip)
    iretq

lu_int80:
    movq %rsp, %rax
    movl %eax, lu_out + 8(%rip)
    movl %ss, %eax
    movl %eax, lu_out + 12(%rip)
    movl 8(%rsp), %eax
    movl %eax, lu_out + 16(%rip)
    movl 24(%rsp), %eax
    movl %eax, lu_out + 20(%rip)
    movl 32(%rsp), %eax
    movl %eax, lu_out + 24(%rip)
    movq lu_saved_rsp(%rip), %rsp
    popq %rbp
    popq %rbx
    movl $0x64, %eax
    ret
    .code32

    .data
    .align 8
    .globl lu_out
lu_saved_rsp: .quad 0
lu_out: .fill 8, 4, 0
    .bss
    .align 16
    .space 2048
    .globl lu_user_stack
lu_user_stack:
