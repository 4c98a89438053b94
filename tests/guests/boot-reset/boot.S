/*
 * rx86 reset test guest: a floppy boot sector that resets the machine once and checks that
 * what it wrote before the reset is still on the disk afterwards.
 *
 * Loaded by the BIOS at 0:7C00 from a 1.44 MB floppy image whose sector 1 (C/H/S 0/0/2) is
 * zeros. It reads that sector (INT 13h AH=02h):
 * - first byte 0 (first boot): it writes a sector starting with MARK (AH=03h), prints
 *   "RX86-RESET: resetting" and resets the machine through the 8042 (command FEh to port
 *   0x64: pulse the CPU reset line; IBM PC/AT Technical Reference, 8042 commands);
 * - first byte MARK (after the reset): it prints "RX86-RESET: write kept" and writes 0 to
 *   isa-debug-exit (port 0x501), so rx86 and QEMU exit with status 1.
 * A failed INT 13h call prints "RX86-RESET: disk error" and exits with 2 (status 5).
 * Output goes to COM1 (polled, bounded waits). Assembled by tests/src/boot_reset.rs
 * (`reset_floppy_image`) with the host's GNU as.
 */
        .code16
        .text
        .globl _start

COM1            = 0x3f8
UART_LSR_THRE   = 0x20          /* line status: transmit holding register empty */
DEBUG_EXIT_PORT = 0x501
KBC_COMMAND     = 0x64
KBC_PULSE_RESET = 0xfe
BUFFER          = 0x7e00
MARK            = 0x5a

_start:
        cli
        xor     %ax, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x7c00, %sp
        ljmp    $0, $start_cs0
start_cs0:
        sti
        cld
        mov     %dl, boot_drive

        mov     $0x0201, %ax            /* AH=02h read, one sector */
        call    sector1
        cmpb    $MARK, BUFFER
        je      kept

        movb    $MARK, BUFFER
        mov     $0x0301, %ax            /* AH=03h write, one sector */
        call    sector1
        mov     $msg_resetting, %si
        call    puts
        mov     $KBC_PULSE_RESET, %al
        out     %al, $KBC_COMMAND
halt:
        cli
        hlt
        jmp     halt

kept:
        mov     $msg_kept, %si
        call    puts
        xor     %ax, %ax
exit:
        mov     $DEBUG_EXIT_PORT, %dx
        out     %ax, %dx
        jmp     halt

/* INT 13h with AX on C/H/S 0/0/2 and the buffer; a failure prints and exits with 2. */
sector1:
        mov     $0x0002, %cx
        xor     %dh, %dh
        mov     boot_drive, %dl
        mov     $BUFFER, %bx
        int     $0x13
        jc      disk_error
        ret
disk_error:
        mov     $msg_error, %si
        call    puts
        mov     $2, %ax
        jmp     exit

/* Prints the NUL-terminated string at SI on COM1. */
puts:
        lodsb
        test    %al, %al
        jz      puts_done
        mov     %al, %bl
        mov     $COM1 + 5, %dx
        mov     $0xffff, %cx            /* a missing UART must not hang the guest */
puts_wait:
        in      %dx, %al
        test    $UART_LSR_THRE, %al
        loopz   puts_wait
        mov     $COM1, %dx
        mov     %bl, %al
        out     %al, %dx
        jmp     puts
puts_done:
        ret

boot_drive:     .byte   0
msg_resetting:  .asciz  "RX86-RESET: resetting\r\n"
msg_kept:       .asciz  "RX86-RESET: write kept\r\n"
msg_error:      .asciz  "RX86-RESET: disk error\r\n"

        .org    510
        .word   0xaa55
