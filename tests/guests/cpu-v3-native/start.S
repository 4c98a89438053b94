/* Entry of the native cpu-v3 twin: a 32-byte aligned stack, main, then exit(main's value)
 * through the i386 system call gate. */
    .text
    .globl _start
_start:
    andl $-32, %esp
    call native_main
    movl %eax, %ebx
    movl $1, %eax  /* exit */
    int $0x80
