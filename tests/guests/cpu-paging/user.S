/* Ring 3 probes for the U/S checks: run_user(fn) IRETs to `fn` at CPL 3; fn ends with INT 0x80
 * (a DPL 3 gate to user_return) which restores the caller. */
#include "lib.h"
#define TEST_USER_SUPERVISOR 0x40002000

    .text
    .globl run_user, user_return, user_read_supervisor, user_write_readonly
run_user:
    pushal
    movl %esp, ru_saved_esp
    movl 36(%esp), %eax
    pushl $SEL_UDATA32
    pushl $ru_stack
    pushl $0x2
    pushl $SEL_UCODE32
    pushl %eax
    iretl
user_return:
    movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movl ru_saved_esp, %esp
    popal
    ret

user_read_supervisor:
    movw $SEL_UDATA32, %ax
    movw %ax, %ds
    movl $1f, recover_eip
    movl TEST_USER_SUPERVISOR, %eax
1:  int $0x80

/* Write to the read-only user page at 0x40003000 (main.c). */
user_write_readonly:
    movw $SEL_UDATA32, %ax
    movw %ax, %ds
    movl $1f, recover_eip
    movl $1, 0x40003000
1:  int $0x80

    .data
ru_saved_esp: .long 0
    .bss
    .space 2048
ru_stack:
