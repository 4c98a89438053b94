/*
 * triple-fault: a Multiboot 1 kernel that triple-faults on purpose, for the diagnosis test.
 * It turns on 32-bit paging with one 4-MiB identity page (SDM Vol. 3A §4.3), loads an empty
 * IDT (limit 0), and writes to the unmapped linear address 0xdead0000 at `bad_write`:
 *   #PF (not present, write) -> #GP (IDT entry 14 beyond the limit) -> #DF -> #GP -> shutdown.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0
#define CR4_PSE (1 << 4)

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

    .text
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    movl $0x83, page_directory        /* PDE 0: present, writable, 4-MiB page at 0 */
    movl %cr4, %eax
    orl $CR4_PSE, %eax
    movl %eax, %cr4
    movl $page_directory, %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    lidt empty_idtr
    .globl bad_write
bad_write:
    movl $0x12345678, 0xdead0000
    hlt

    .data
empty_idtr:
    .word 0
    .long 0

    .bss
    .align 4096
page_directory: .skip 4096
    .skip 4096
stack_top:
