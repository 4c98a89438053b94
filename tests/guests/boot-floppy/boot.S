/*
 * rx86 BIOS boot-sector test guest: one 512-byte boot sector, loaded by the BIOS at 0:7C00.
 *
 * Assembled three times by tests/src/boot_media.rs with the host's GNU as (`as --32`):
 * - floppy (default): INT 13h AH=02h CHS reads of track 0 head 0 sectors 2-18 and track 0
 *   head 1 sectors 1-18 (LBA 1-35), AH=03h write of C/H/S 79/1/18 (LBA 2879, the last sector of
 *   a 1.44 MB floppy), AH=02h read back.
 * - floppy on a CD (`--defsym READ_ONLY=1`): the floppy variant without the write and read back,
 *   for an El Torito floppy-emulation boot (the emulated floppy is read-only).
 * - hard disk (`--defsym HARD_DISK=1`): INT 13h AH=41h extensions check, AH=42h reads of
 *   LBA 1-40 and LBA 3000-3003, AH=43h write of LBA 4095 (the last sector of the 2 MiB image),
 *   AH=42h read back.
 *
 * Every sector other than this one holds a pattern sector (see boot_media::pattern_sector):
 * "RX86", its LBA as a 16-bit word, and a last word that makes the 16-bit sum of the sector zero.
 * The write stores this boot sector itself (0:7C00, unmodified at run time: variables live at
 * 0:0600), so the test finds a copy of sector 0 in the written sector.
 *
 * Output, through INT 10h AH=0Eh teletype and COM1 (0x3F8, 115200 8N1, polled, bounded waits):
 *   RX86-BOOT-FLOPPY   (or RX86-BOOT-CD-FLOPPY, RX86-BOOT-HDD)
 *   <step>: ok         or   <step>: FAIL ah=<hex AH of the failed call>
 *   RX86-BOOT-DONE: ok or   RX86-BOOT-DONE: FAIL
 * with the steps ext (hard disk only), read, check, write, verify (the read back).
 * then a word `out` to isa-debug-exit (port 0x501): 0 when every step passed (QEMU and rx86
 * exit with status 1), else the number of the failed step (status 2n+1), then cli; hlt.
 */
        .code16
        .text
        .globl _start

COM1            = 0x3f8
UART_LSR_THRE   = 0x20          /* line status: transmit holding register empty */
DEBUG_EXIT_PORT = 0x501
BOOT_DRIVE      = 0x600         /* DL as the BIOS passed it */
LAST_ERROR      = 0x601         /* AH of the last failed INT 13h call */
LOAD            = 0x7e00        /* where the sectors after this one are read to */
PATTERN_MAGIC   = 0x36385852    /* "RX86" as a little-endian dword */

.ifdef HARD_DISK
STEP_EXT        = 1
STEP_READ       = 2
STEP_CHECK      = 3
STEP_WRITE      = 4
STEP_READBACK   = 5
FIRST_READ_LBA  = 1
FIRST_READ_N    = 40
HIGH_READ_LBA   = 3000
HIGH_READ_N     = 4
WRITE_LBA       = 4095
.else
STEP_READ       = 2
STEP_CHECK      = 3
STEP_WRITE      = 4
STEP_READBACK   = 5
TRACK0_SECTORS  = 18
.endif

_start:
        cli
        xor     %ax, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $0x7c00, %sp
        ljmp    $0, $start_cs0          /* some BIOSes enter at 07C0:0000 */
start_cs0:
        sti
        cld
        mov     %dl, BOOT_DRIVE

        /* COM1: 115200 8N1 (DLAB, divisor 1, 8 data bits). */
        mov     $COM1 + 3, %dx
        mov     $0x80, %al
        out     %al, %dx
        mov     $COM1, %dx
        mov     $1, %al
        out     %al, %dx
        inc     %dx
        xor     %al, %al
        out     %al, %dx
        mov     $COM1 + 3, %dx
        mov     $0x03, %al
        out     %al, %dx

        mov     $msg_banner, %si
        call    puts

.ifdef HARD_DISK
        /* INT 13h AH=41h: extensions present, with the packet interface (CX bit 0)? */
        mov     $STEP_EXT, %bp
        mov     $msg_ext, %si
        mov     $0x41, %ah
        mov     $0x55aa, %bx
        mov     BOOT_DRIVE, %dl
        int     $0x13
        jc      fail
        cmp     $0xaa55, %bx
        jne     fail
        test    $1, %cl
        jz      fail
        call    step_ok

        mov     $STEP_READ, %bp
        mov     $msg_read, %si
        mov     $0x42, %ah
        mov     $FIRST_READ_N, %cx
        mov     $LOAD, %di
        mov     $FIRST_READ_LBA, %bx
        call    ext_rw
        jc      fail
        mov     $0x42, %ah
        mov     $HIGH_READ_N, %cx
        mov     $LOAD + FIRST_READ_N * 512, %di
        mov     $HIGH_READ_LBA, %bx
        call    ext_rw
        jc      fail
        call    step_ok

        mov     $STEP_CHECK, %bp
        mov     $msg_check, %si
        mov     $LOAD, %di
        mov     $FIRST_READ_LBA, %bx
        mov     $FIRST_READ_N, %cx
        call    check_sectors
        jc      fail
        mov     $HIGH_READ_LBA, %bx
        mov     $HIGH_READ_N, %cx
        call    check_sectors
        jc      fail
        call    step_ok

        mov     $STEP_WRITE, %bp
        mov     $msg_write, %si
        mov     $0x4300, %ax            /* AL=0: write without verify */
        mov     $1, %cx
        mov     $0x7c00, %di
        mov     $WRITE_LBA, %bx
        call    ext_rw
        jc      fail
        call    step_ok

        mov     $STEP_READBACK, %bp
        mov     $msg_readback, %si
        mov     $0x42, %ah
        mov     $1, %cx
        mov     $LOAD, %di
        mov     $WRITE_LBA, %bx
        call    ext_rw
        jc      fail
.else
        /* INT 13h AH=02h: track 0 head 0 sectors 2-18, then head 1 sectors 1-18. */
        mov     $STEP_READ, %bp
        mov     $msg_read, %si
        mov     $0x0200 + TRACK0_SECTORS - 1, %ax
        mov     $0x0002, %cx            /* CH=cylinder 0, CL=sector 2 */
        xor     %dh, %dh
        mov     $LOAD, %bx
        call    chs_rw
        jc      fail
        mov     $0x0200 + TRACK0_SECTORS, %ax
        mov     $0x0001, %cx
        mov     $1, %dh
        mov     $LOAD + (TRACK0_SECTORS - 1) * 512, %bx
        call    chs_rw
        jc      fail
        call    step_ok

        mov     $STEP_CHECK, %bp
        mov     $msg_check, %si
        mov     $LOAD, %di
        mov     $1, %bx
        mov     $2 * TRACK0_SECTORS - 1, %cx
        call    check_sectors
        jc      fail
        call    step_ok

.ifndef READ_ONLY
        /* AH=03h: write this sector to cylinder 79, head 1, sector 18. */
        mov     $STEP_WRITE, %bp
        mov     $msg_write, %si
        mov     $0x0301, %ax
        mov     $(79 << 8) | 18, %cx
        mov     $1, %dh
        mov     $0x7c00, %bx
        call    chs_rw
        jc      fail
        call    step_ok

        mov     $STEP_READBACK, %bp
        mov     $msg_readback, %si
        mov     $0x0201, %ax
        mov     $(79 << 8) | 18, %cx
        mov     $1, %dh
        mov     $LOAD, %bx
        call    chs_rw
        jc      fail
.endif
.endif
.ifndef READ_ONLY
        /* The sector read back equals this boot sector. */
        mov     $0x7c00, %si
        mov     $LOAD, %di
        mov     $256, %cx
        repe    cmpsw
        mov     $msg_readback, %si
        jne     fail_no_code
        call    step_ok
.endif

        xor     %bp, %bp
        mov     $msg_done, %si
        call    step_ok
        jmp     finish

fail_no_code:
        xor     %ah, %ah
/* Prints "<step>: FAIL ah=<AH>", the verdict and exits with the step number (BP). */
fail:
        push    %ax
        call    puts
        mov     $msg_fail_ah, %si
        call    puts
        pop     %ax
        mov     %ah, %al
        shr     $4, %al
        call    put_hex_digit
        mov     %ah, %al
        call    put_hex_digit
        mov     $msg_done, %si
        call    puts
        mov     $msg_fail, %si
        call    puts
finish:
        mov     %bp, %ax
        mov     $DEBUG_EXIT_PORT, %dx
        out     %ax, %dx
halt:
        cli
        hlt
        jmp     halt

.ifdef HARD_DISK
/* INT 13h AH (42h read, 43h write; AL flags) of CX sectors at LBA BX to/from 0:DI, through a disk
 * address packet built on the stack; CF and AH=status on error. */
ext_rw:
        push    %si
        pushl   $0                      /* LBA bits 63-32 */
        push    $0                      /* LBA bits 31-16 */
        push    %bx                     /* LBA bits 15-0 */
        push    %ds                     /* buffer segment (0) */
        push    %di                     /* buffer offset */
        push    %cx                     /* sector count */
        push    $16                     /* packet size; reserved byte 0 */
        mov     %sp, %si
        mov     BOOT_DRIVE, %dl
        int     $0x13
        lea     16(%si), %sp            /* drop the packet, keep CF */
        pop     %si
        ret
.else
/* INT 13h AH (02h read, 03h write) of AL sectors at CX/DH to 0:BX, 3 tries with a reset between;
 * CF and AH=status on error. */
chs_rw:
        mov     $3, %di
chs_try:
        push    %ax
        mov     BOOT_DRIVE, %dl
        int     $0x13
        jnc     chs_done
        mov     %ah, LAST_ERROR
        xor     %ah, %ah                /* AH=00h: reset the drive */
        int     $0x13
        pop     %ax
        dec     %di
        jnz     chs_try
        mov     LAST_ERROR, %ah
        stc
        ret
chs_done:
        pop     %ax
        clc
        ret
.endif

/* Checks CX pattern sectors at 0:DI whose first LBA is BX; DI advances; CF on mismatch, AH=0. */
check_sectors:
        cmpl    $PATTERN_MAGIC, (%di)
        jne     check_bad
        cmp     %bx, 4(%di)
        jne     check_bad
        push    %cx
        mov     $256, %cx
        xor     %dx, %dx
check_sum:
        add     (%di), %dx
        add     $2, %di
        loop    check_sum
        pop     %cx
        test    %dx, %dx
        jnz     check_bad
        inc     %bx
        loop    check_sectors
        clc
        ret
check_bad:
        xor     %ah, %ah
        stc
        ret

/* Prints ": ok" after the step name at SI. */
step_ok:
        call    puts
        mov     $msg_ok, %si
/* Prints the NUL-terminated string at SI on the screen and COM1. */
puts:
        lodsb
        test    %al, %al
        jz      puts_done
        call    putc
        jmp     puts
puts_done:
        ret

/* Prints the low nibble of AL as a hex digit. */
put_hex_digit:
        and     $0x0f, %al
        add     $'0', %al
        cmp     $'9', %al
        jbe     putc
        add     $'a' - '9' - 1, %al
/* Prints AL through INT 10h AH=0Eh and COM1; keeps every register. */
putc:
        pusha
        push    %ax
        mov     $0x0e, %ah
        mov     $0x0007, %bx            /* page 0, grey */
        int     $0x10
        pop     %bx                     /* BL: the character */
        mov     $COM1 + 5, %dx
        mov     $0xffff, %cx            /* a missing UART must not hang the guest */
putc_wait:
        in      %dx, %al
        test    $UART_LSR_THRE, %al
        loopz   putc_wait
        mov     $COM1, %dx
        mov     %bl, %al
        out     %al, %dx
        popa
        ret

.ifdef HARD_DISK
msg_banner:     .asciz  "RX86-BOOT-HDD\r\n"
msg_ext:        .asciz  "ext"
.else
.ifdef READ_ONLY
msg_banner:     .asciz  "RX86-BOOT-CD-FLOPPY\r\n"
.else
msg_banner:     .asciz  "RX86-BOOT-FLOPPY\r\n"
.endif
.endif
msg_read:       .asciz  "read"
msg_check:      .asciz  "check"
msg_write:      .asciz  "write"
msg_readback:   .asciz  "verify"
msg_ok:         .asciz  ": ok\r\n"
msg_fail_ah:    .asciz  ": FAIL ah="
msg_done:       .asciz  "\r\nRX86-BOOT-DONE"
msg_fail:       .asciz  ": FAIL\r\n"

        .org    510
        .word   0xaa55
