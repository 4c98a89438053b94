/* SYSENTER/SYSEXIT round trip in 32-bit protected mode (SDM Vol. 2B "SYSENTER", "SYSEXIT"):
 * IA32_SYSENTER_CS = 0x08 makes SYSEXIT load CS 0x1b / SS 0x23 and SYSENTER CS 0x08 / SS 0x10. */
#include "lib.h"

    .text
    .globl sysenter_round_trip
sysenter_round_trip:
    pushal
    movl %esp, se_saved_esp
    movl $0x174, %ecx            /* IA32_SYSENTER_CS */
    movl $SEL_CODE32, %eax
    xorl %edx, %edx
    wrmsr
    movl $0x175, %ecx            /* IA32_SYSENTER_ESP */
    movl $se_kernel_stack, %eax
    wrmsr
    movl $0x176, %ecx            /* IA32_SYSENTER_EIP */
    movl $se_kernel_entry, %eax
    wrmsr
    movl $se_user, %edx
    movl $se_user_stack, %ecx
    sysexit
se_user:
    movl %cs, %eax
    movl %eax, %ss:se_out
    movl %ss, %eax
    movl %eax, %ss:se_out + 4
    movl %esp, %ss:se_out + 8
    movl $0x5ca1ab1e, %ebx
    sysenter
se_kernel_entry:
    movl %cs, %eax
    movl %eax, se_out + 12
    movl %ss, %eax
    movl %eax, se_out + 16
    movl %esp, se_out + 20
    movl %ebx, se_out + 24
    pushfl
    popl se_out + 28
    movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movl se_saved_esp, %esp
    popal
    ret

    .data
    .globl se_out, se_kernel_stack, se_user_stack
se_saved_esp: .long 0
se_out: .fill 8, 4, 0
    .bss
    .space 1024
se_user_stack:
    .space 1024
se_kernel_stack:
