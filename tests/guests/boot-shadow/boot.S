/*
 * rx86 shadow-RAM test guest: a floppy boot sector that checks how the i440FX PAM0 register
 * (PCI 00:00.0, offset 0x59, bits 5:4 = write enable, read enable of 0xF0000-0xFFFFF; 82441FX
 * datasheet 3.2.18) routes the BIOS segment, the way firmware uses it to shadow itself.
 *
 * The probe byte is the first byte of the reset vector at F000:FFF0, which firmware copies to
 * shadow RAM and never changes, so the RAM copy and the ROM side hold the same value V.
 * Interrupts stay off while the byte may differ from V. Each check prints one line on COM1:
 *   "RX86-SHADOW: boot PAM0=hh writable|write-protected"  the state firmware left
 *   "RX86-SHADOW: read-write ok|FAIL"     PAM0=30h: a write reads back
 *   "RX86-SHADOW: off ok|FAIL"            PAM0=00h: reads come from the ROM side (V, not the
 *                                         different value now in RAM); writes are dropped
 *   "RX86-SHADOW: write-only ok|FAIL"     PAM0=20h: reads still see V, but the write went to
 *                                         RAM (seen once PAM0=30h again)
 *   "RX86-SHADOW: read-only ok|FAIL"      PAM0=10h: reads see RAM, writes are dropped
 * then restores V and the firmware's PAM0, prints "RX86-SHADOW: done" and writes 0 to
 * isa-debug-exit (port 0x501: rx86 and QEMU exit with status 1).
 * Assembled by tests/src/boot_media.rs (`boot_sector_floppy`) with the host's GNU as.
 */
        .code16
        .text
        .globl _start

COM1            = 0x3f8
UART_LSR_THRE   = 0x20          /* line status: transmit holding register empty */
DEBUG_EXIT_PORT = 0x501
PCI_ADDRESS     = 0xcf8
PCI_DATA        = 0xcfc
PAM_DWORD       = 0x80000058    /* enable, bus 0, device 0, function 0, dword 0x58 */
PAM0_LANE       = 1             /* PAM0 is byte 1 of that dword (0x59) */
BIOS_SEGMENT    = 0xf000
PROBE           = 0xfff0

_start:
        cli
        xor     %ax, %ax
        mov     %ax, %ds
        mov     %ax, %ss
        mov     $0x7c00, %sp
        ljmp    $0, $start_cs0
start_cs0:
        cld
        mov     $BIOS_SEGMENT, %ax
        mov     %ax, %es

        call    pam_read
        mov     %al, boot_pam
        mov     %es:PROBE, %al
        mov     %al, value
        /* Firmware's state: does a write to the probe byte stick? */
        mov     $msg_boot, %si
        call    line
        mov     boot_pam, %al
        call    put_hex
        mov     value, %al
        not     %al
        mov     %al, %es:PROBE
        mov     %es:PROBE, %bl
        mov     value, %al
        mov     %al, %es:PROBE          /* put V back where the write stuck */
        mov     $msg_writable, %si
        cmp     %bl, %al
        jne     1f
        mov     $msg_protected, %si
1:      call    puts

        /* Read-write: a write reads back. */
        mov     $msg_rw, %si
        call    line
        mov     $0x30, %al
        call    pam_write
        mov     value, %al
        not     %al
        mov     %al, %es:PROBE
        cmp     %es:PROBE, %al
        call    verdict

        /* Off: RAM now holds ~V; reads come from the ROM side (V) and writes are dropped. */
        mov     $msg_off, %si
        call    line
        xor     %al, %al
        call    pam_write
        movb    $0x5a, %es:PROBE
        mov     value, %al
        cmp     %es:PROBE, %al
        call    verdict

        /* Write-only: the write goes to RAM, reads still see the ROM side. */
        mov     $msg_wo, %si
        call    line
        mov     $0x20, %al
        call    pam_write
        movb    $0xa5, %es:PROBE
        mov     value, %al
        cmp     %es:PROBE, %al
        jne     2f
        mov     $0x30, %al
        call    pam_write
        cmpb    $0xa5, %es:PROBE
2:      call    verdict

        /* Read-only: RAM (0xA5 from the last step) reads, writes are dropped. */
        mov     $msg_ro, %si
        call    line
        mov     $0x10, %al
        call    pam_write
        movb    $0x3c, %es:PROBE
        cmpb    $0xa5, %es:PROBE
        call    verdict

        /* Restore V and the firmware's setting. */
        mov     $0x30, %al
        call    pam_write
        mov     value, %al
        mov     %al, %es:PROBE
        mov     boot_pam, %al
        call    pam_write
        mov     $msg_done, %si
        call    line
        xor     %ax, %ax
        mov     $DEBUG_EXIT_PORT, %dx
        out     %ax, %dx
halt:
        hlt
        jmp     halt

/* Prints "ok" when ZF is set, else "FAIL", and a line end. */
verdict:
        mov     $msg_ok, %si
        je      1f
        mov     $msg_fail, %si
1:      jmp     puts

/* PAM0 into AL. */
pam_read:
        call    pam_select
        mov     $PCI_DATA + PAM0_LANE, %dx
        in      %dx, %al
        ret

/* PAM0 = AL. */
pam_write:
        mov     %al, %bl
        call    pam_select
        mov     $PCI_DATA + PAM0_LANE, %dx
        mov     %bl, %al
        out     %al, %dx
        ret

pam_select:
        mov     $PCI_ADDRESS, %dx
        mov     $PAM_DWORD, %eax
        out     %eax, %dx
        ret

/* Prints AL as two hex digits and a space. */
put_hex:
        mov     %al, %bh
        shr     $4, %al
        call    put_digit
        mov     %bh, %al
        and     $0x0f, %al
        call    put_digit
        mov     $0x20, %al                /* ' ' */
        jmp     putc
put_digit:
        add     $0x30, %al                /* '0' */
        cmp     $0x39, %al                /* '9' */
        jbe     putc
        add     $0x27, %al                /* 'a' - '0' - 10 */
        jmp     putc

/* Prints "RX86-SHADOW: " and the NUL-terminated string at SI on COM1. */
line:
        push    %si
        mov     $msg_tag, %si
        call    puts
        pop     %si
/* Prints the NUL-terminated string at SI on COM1. */
puts:
        lodsb
        test    %al, %al
        jz      2f
        call    putc
        jmp     puts
2:      ret

/* Prints AL on COM1 (a missing UART must not hang the guest: the wait is bounded). */
putc:
        push    %ax
        mov     $COM1 + 5, %dx
        mov     $0xffff, %cx
1:      in      %dx, %al
        test    $UART_LSR_THRE, %al
        loopz   1b
        pop     %ax
        mov     $COM1, %dx
        out     %al, %dx
        ret

boot_pam:       .byte   0
value:          .byte   0
msg_tag:        .asciz  "RX86-SHADOW: "
msg_boot:       .asciz  "boot PAM0="
msg_writable:   .asciz  "writable\r\n"
msg_protected:  .asciz  "write-protected\r\n"
msg_rw:         .asciz  "read-write "
msg_off:        .asciz  "off "
msg_wo:         .asciz  "write-only "
msg_ro:         .asciz  "read-only "
msg_ok:         .asciz  "ok\r\n"
msg_fail:       .asciz  "FAIL\r\n"
msg_done:       .asciz  "done\r\n"

        .org    510
        .word   0xaa55
