/* Long-mode side of the mode round trips (SDM Vol. 3A §9.8.5, §3.4.4 "Segment loading in
 * IA-32e mode"): 64-bit registers, EFER.LMA, ignored data-segment bases, a far call into a
 * 32-bit compatibility-mode segment and back. */
#include "lib.h"

    .text
    .code64
    .globl long_probe
long_probe:
    pushq %rbx
    movabsq $0x100000000, %rax
    shrq $32, %rax
    movl %eax, lm_out(%rip)          /* 1: 64-bit arithmetic */
    movl $0xc0000080, %ecx
    rdmsr
    movl %eax, lm_out + 4(%rip)      /* EFER: LME | LMA */
    movw $0x50, %ax                  /* data segment with base 0x10000 */
    movw %ax, %ds
    movl $0x300000, %ebx
    movl $0xcafe, (%rbx)             /* DS base ignored: lands at 0x300000 */
    movw $0x10, %ax
    movw %ax, %ds
    movw $0x50, %ax
    movw %ax, %fs
    movl $0xc0000100, %ecx
    movl $0x310000, %eax
    xorl %edx, %edx
    wrmsr
    movl $0xf00d, %fs:0              /* FS base applies: lands at 0x310000 */
    movw $0x10, %ax
    movw %ax, %fs
    lcall *compat_ptr(%rip)
    movl %eax, lm_out + 8(%rip)      /* 0xffffffff: 0x48 ran as DEC EAX */
    movl %cs, %eax
    movl %eax, lm_out + 12(%rip)
    popq %rbx
    movl $0x64, %eax
    ret

    .code32
compat_code:
    movl %cs, %ecx
    movl %ecx, lm_out + 16
    xorl %eax, %eax
    .byte 0x48                       /* DEC EAX here; a REX prefix in 64-bit mode */
    lret

    .data
    .align 8
compat_ptr: .long compat_code
    .word SEL_CODE32
    .globl lm_out
lm_out: .fill 5, 4, 0
