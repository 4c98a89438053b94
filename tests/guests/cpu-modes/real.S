/* Real-mode side of the mode round trips: what the CPU looks like after protected → real. */
#include "lib.h"
#define R(x) ((x) - real_chunk)

    .text
    .code16
    .globl real_chunk, real_chunk_end, real_probe, rm_out
real_chunk:
/* Records CS, MSW, a real-mode segment load (ES=0x1234 → linear 0x12340) and an unreal FS
 * access (FS keeps the 4 GiB limit of its protected-mode descriptor: linear 0x200000). */
real_probe:
    movw %cs, %cs:R(rm_out)
    smsw %ax
    movw %ax, %cs:R(rm_out + 2)
    movw $0x1234, %ax
    movw %ax, %es
    movw $0xbeef, %es:0
    xorw %ax, %ax
    movw %ax, %fs
    xorl %ebx, %ebx
    movl $0x55aa1234, %fs:0x200000(%ebx)
    movl %fs:0x200000(%ebx), %eax
    movl %eax, %cs:R(rm_out + 4)
    /* A 32-bit operand-size instruction in a 16-bit code segment. */
    movl $0x12345678, %eax
    roll $8, %eax
    movl %eax, %cs:R(rm_out + 8)
    movw $0x77, %ax
    lretw
    .align 4
rm_out: .fill 4, 4, 0
real_chunk_end:
    .code32
