/* Serial output, result lines, debug exit and the common exception handler of the CPU test
 * guests (see lib.h). */
#include "lib.h"

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0x501
/* Bounded wait for the UART transmitter (a dead UART must not hang the guest). */
#define UART_SPINS 100000

u64 idt[256] __attribute__((aligned(8)));
u32 tss32[26] __attribute__((aligned(16)));
volatile struct trap_record last_trap;
volatile u32 recover_eip;
void (*volatile trap_hook)(struct trap_frame *);
static int failures;
extern u32 isr_table[32];
extern u32 stack0_top;
extern struct { u16 limit; u32 base; } __attribute__((packed)) idtr;

static void putc(char c) {
    for (int i = 0; i < UART_SPINS && !(inb(COM1 + 5) & 0x20); i++) {
    }
    outb(COM1, c);
}

void puts(const char *s) {
    while (*s) {
        if (*s == '\n') putc('\r');
        putc(*s++);
    }
}

void puthex(u32 v) {
    puts("0x");
    for (int i = 28; i >= 0; i -= 4) putc("0123456789abcdef"[(v >> i) & 15]);
}

void putdec(u32 v) {
    char b[12];
    int n = 0;
    do b[n++] = '0' + v % 10;
    while (v /= 10);
    while (n) putc(b[--n]);
}

int check_true(const char *name, int ok, const char *what) {
    puts(name);
    if (ok) {
        puts(": ok\n");
        return 1;
    }
    failures++;
    puts(": FAIL ");
    puts(what);
    puts("\n");
    return 0;
}

int check(const char *name, u32 got, u32 want) {
    puts(name);
    if (got == want) {
        puts(": ok\n");
        return 1;
    }
    failures++;
    puts(": FAIL got ");
    puthex(got);
    puts(" want ");
    puthex(want);
    puts("\n");
    return 0;
}

void done(void) {
    puts(failures ? "done: FAIL\n" : "done: ok\n");
    outb(DEBUG_EXIT_PORT, failures ? 1 : 0);
    for (;;) __asm__ volatile("cli; hlt");
}

void set_gdt(int index, u32 base, u32 limit, u8 access, u8 flags) {
    gdt[index] = (u64)(limit & 0xffff) | ((u64)(base & 0xffffff) << 16) | ((u64)access << 40) |
                 ((u64)((limit >> 16) & 0xf) << 48) | ((u64)(flags & 0xf) << 52) | ((u64)(base >> 24) << 56);
}

void set_idt(int vector, u16 sel, u32 offset, u8 type, u8 dpl) {
    idt[vector] = (u64)(offset & 0xffff) | ((u64)sel << 16) | ((u64)(0x80 | (dpl << 5) | type) << 40) |
                  ((u64)(offset >> 16) << 48);
}

void trap_handler(struct trap_frame *f) {
    last_trap.vector = f->vector;
    last_trap.error = f->error;
    last_trap.eip = f->eip;
    last_trap.cs = f->cs;
    last_trap.eflags = f->eflags;
    last_trap.count++;
    f->eflags &= ~0x100u; /* single-step traps stop after one */
    if (trap_hook) {
        trap_hook(f);
        return;
    }
    if (recover_eip) {
        f->eip = recover_eip;
        recover_eip = 0;
        return;
    }
    puts("unexpected-exception: FAIL vector ");
    putdec(f->vector);
    puts(" error ");
    puthex(f->error);
    puts(" at ");
    puthex(f->cs);
    puts(":");
    puthex(f->eip);
    puts("\n");
    failures++;
    done();
}

void cpu_init(void) {
    outb(COM1 + 1, 0);    /* IER: no interrupts */
    outb(COM1 + 3, 0x80); /* LCR: DLAB */
    outb(COM1 + 0, 1);    /* 115200 baud */
    outb(COM1 + 1, 0);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(0x21, 0xff);     /* mask both 8259s: the guests use no device interrupt */
    outb(0xa1, 0xff);
    for (int v = 0; v < 32; v++) set_idt(v, SEL_CODE32, isr_table[v], 0xe, 0);
    __asm__ volatile("lidt idtr");
    tss32[1] = (u32)&stack0_top; /* ESP0 */
    tss32[2] = SEL_DATA32;       /* SS0 */
    tss32[25] = 104u << 16;      /* I/O map base beyond the limit: no bitmap */
    set_gdt(SEL_TSS / 8, (u32)tss32, 103, 0x89, 0);
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
}
