/*
 * rx86 VGA mode guest: a boot sector that sets a video mode through the BIOS and draws
 * a known pattern, then ends the run through isa-debug-exit (port 0x501, value 0) so
 * the test can screenshot it. Variant by --defsym:
 *   MODE13=1  INT 10h AX=0013h (320x200x256 chain-4): pixel (x, y) = (x + 2y) mod 256,
 *             then a title through INT 10h AH=0Eh (BIOS glyphs) in colour 15.
 *   MODE12=1  INT 10h AX=0012h (640x480x16 planar): write mode 2, 8-pixel bytes whose
 *             colour is (x/40 + y/30) mod 16, then the same kind of title.
 *   VBE=1     VBE 4F02h mode 0x4112 (640x480x32, linear framebuffer): the LFB address
 *             from 4F01h; flat (unreal) mode writes pixel (x, y) = x<<16 | y<<8 | (x^y).
 * Any BIOS failure exits with value 1.
 */
    .code16
    .text
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    sti
.ifdef MODE13
    mov $0x0013, %ax
    int $0x10
    mov $0xa000, %ax
    mov %ax, %es
    xor %di, %di
    xor %dx, %dx                /* y */
1:  xor %cx, %cx                /* x */
2:  mov %dx, %ax
    add %ax, %ax
    add %cx, %ax
    stosb
    inc %cx
    cmp $320, %cx
    jb 2b
    inc %dx
    cmp $200, %dx
    jb 1b
    mov $title13, %si
    call print
    jmp done
title13: .asciz "rx86 mode 13h"
.endif
.ifdef MODE12
    mov $0x0012, %ax
    int $0x10
    mov $0x3ce, %dx             /* graphics controller: mode register = write mode 2 */
    mov $0x0205, %ax
    out %ax, %dx
    mov $0xff08, %ax            /* bit mask: all eight pixels */
    out %ax, %dx
    mov $0xa000, %ax
    mov %ax, %es
    xor %di, %di
    xor %bx, %bx                /* y */
1:  xor %cx, %cx                /* byte column, 8 pixels each */
2:  mov %cx, %ax                /* colour = (8*col/40 + y/30) mod 16 = (col/5 + y/30) mod 16 */
    mov $5, %si
    xor %dx, %dx
    div %si
    mov %ax, %bp
    mov %bx, %ax
    mov $30, %si
    xor %dx, %dx
    div %si
    add %bp, %ax
    and $15, %al
    mov %es:(%di), %ah          /* load the latches (write mode 2 ignores them with mask ff) */
    stosb
    inc %cx
    cmp $80, %cx
    jb 2b
    inc %bx
    cmp $480, %bx
    jb 1b
    mov $0x3ce, %dx             /* back to write mode 0 for the BIOS */
    mov $0x0005, %ax
    out %ax, %dx
    mov $title12, %si
    call print
    jmp done
title12: .asciz "rx86 mode 12h"
.endif
.ifdef VBE
    mov $0x4f01, %ax            /* mode info of 0x112 into 0:0800 */
    mov $0x0112, %cx
    mov $0x0800, %di
    int $0x10
    cmp $0x004f, %ax
    jne fail
    mov $0x4f02, %ax
    mov $0x4112, %bx
    int $0x10
    cmp $0x004f, %ax
    jne fail
    /* Unreal mode: load FS with a 4 GiB flat data segment, back to real mode. */
    cli
    lgdt gdt_desc
    mov %cr0, %eax
    or $1, %al
    mov %eax, %cr0
    mov $8, %bx
    mov %bx, %fs
    and $0xfe, %al
    mov %eax, %cr0
    xor %ax, %ax
    mov %ax, %fs
    sti
    mov 0x0828, %edi            /* PhysBasePtr */
    xor %edx, %edx              /* y */
1:  xor %ecx, %ecx              /* x */
2:  mov %ecx, %eax
    shl $8, %eax
    or %edx, %eax
    shl $8, %eax
    mov %cl, %bl
    xor %dl, %bl
    mov %bl, %al
    addr32 mov %eax, %fs:(%edi)
    add $4, %edi
    inc %ecx
    cmp $640, %ecx
    jb 2b
    inc %edx
    cmp $480, %edx
    jb 1b
    jmp done
gdt:
    .quad 0
    .quad 0x00cf92000000ffff    /* flat 4 GiB data */
gdt_desc:
    .word gdt_desc - gdt - 1
    .long gdt
.endif
done:
    xor %ax, %ax
    jmp exit
/* Prints the NUL-terminated string at DS:SI with INT 10h AH=0Eh in colour 15. */
print:
    lodsb
    test %al, %al
    jz 1f
    mov $0x0e, %ah
    mov $0x000f, %bx
    int $0x10
    jmp print
1:  ret
fail:
    mov $1, %ax
exit:
    mov $0x501, %dx
    out %ax, %dx
    cli
    hlt
    jmp exit

    .org 510
    .byte 0x55, 0xaa
