/* cpu-v86: virtual-8086 mode (SDM Vol. 3A ch. 20) entered by IRET with EFLAGS.VM: real-mode
 * style segments, INT n through the IDT with IOPL = 3 and #GP(0) to the monitor with IOPL < 3,
 * CLI sensitive to IOPL, IN/OUT checked against the TSS I/O permission bitmap at any IOPL. */
#include "lib.h"

#define V86_LINEAR 0x9000
#define SEL_V86_TSS 0x50
#define PORT_ALLOWED 0x80
#define PORT_DENIED 0x81
#define VM_FLAG 0x20000u

/* A TSS with a full I/O permission bitmap and its terminating byte (SDM §19.5.2). */
static struct {
    u32 regs[26];
    u8 iomap[8192 + 1];
} __attribute__((packed, aligned(16))) v86_tss;

extern char v86_chunk[], v86_chunk_end[], v86_exit[], v86_int_handler[], v86_irq0[];
extern char v86_code[], v86_irq_code[], v86_irq_count[];
extern u16 v86_out[4];
extern u32 v86_int_frame[9], v86_int_count;
extern void enter_v86(u32 iopl, u32 entry);
extern u32 stack0_top;

static u8 gp_ops[8];
static u32 gp_count, gp_errors;

/* The v8086 monitor: records the opcode that raised #GP, skips it, or leaves on INT 0x81. */
static void monitor(struct trap_frame *f) {
    if (f->vector != 13 || !(f->eflags & VM_FLAG)) {
        puts("v86-monitor: FAIL unexpected vector ");
        putdec(f->vector);
        puts("\n");
        done();
    }
    u8 *ip = (u8 *)((f->cs << 4) + (f->eip & 0xffff));
    if (gp_count < 8) gp_ops[gp_count] = ip[0];
    gp_count++;
    gp_errors |= f->error;
    if (ip[0] == 0xcd && ip[1] == 0x81) {
        f->eflags &= ~VM_FLAG; /* leave: IRET to v86_exit at CPL 0 */
        f->cs = SEL_CODE32;
        f->eip = (u32)v86_exit;
        return;
    }
    f->eip += (ip[0] == 0xcd || ip[0] == 0xe4 || ip[0] == 0xe6) ? 2 : 1;
}

static void run(u32 iopl, char *entry) {
    u8 *dst = (u8 *)V86_LINEAR;
    for (char *p = v86_chunk; p < v86_chunk_end; p++) *dst++ = *p;
    gp_count = gp_errors = v86_int_count = 0;
    for (int i = 0; i < 8; i++) gp_ops[i] = 0;
    trap_hook = monitor;
    enter_v86(iopl, entry - v86_chunk);
    trap_hook = 0;
}

static u16 out(int i) { return *(volatile u16 *)(V86_LINEAR + ((char *)&v86_out[i] - v86_chunk)); }

void main(void) {
    for (int i = 0; i < 26; i++) v86_tss.regs[i] = 0;
    v86_tss.regs[1] = (u32)&stack0_top; /* ESP0 */
    v86_tss.regs[2] = SEL_DATA32;       /* SS0 */
    v86_tss.regs[25] = 104u << 16;      /* I/O map base */
    for (int i = 0; i < 8192; i++) v86_tss.iomap[i] = 0;
    v86_tss.iomap[PORT_DENIED / 8] |= 1 << (PORT_DENIED % 8);
    v86_tss.iomap[8192] = 0xff;
    set_gdt(SEL_V86_TSS / 8, (u32)&v86_tss, sizeof(v86_tss) - 1, 0x89, 0);
    __asm__ volatile("ltr %w0" : : "r"(SEL_V86_TSS));
    set_idt(0x81, SEL_CODE32, (u32)v86_exit, 0xe, 3);
    set_idt(0x82, SEL_CODE32, (u32)v86_int_handler, 0xe, 3);

    run(3, v86_code);
    check("v86-iopl3-cs", out(0), 0x900);
    check("v86-iopl3-int-through-idt", v86_int_count, 1);
    check("v86-int-frame-cs", v86_int_frame[1], 0x900);
    check("v86-int-frame-vm", v86_int_frame[2] & VM_FLAG, VM_FLAG);
    check("v86-int-frame-ss-esp", v86_int_frame[4] << 16 | v86_int_frame[3], 0x7c00);
    check("v86-int-frame-ds", v86_int_frame[6], 0x900);
    check("v86-int-returns", out(1), 0x1234);
    check("v86-io-bitmap-allowed", out(2), 1);
    check("v86-iopl3-gp-count", gp_count, 1);
    check("v86-io-bitmap-denied-in", gp_ops[0], 0xe4);
    check("v86-io-bitmap-allowed-out", gp_ops[1], 0);
    check("v86-gp-error-zero", gp_errors, 0);
    check("v86-iopl3-cli", out(3) & 0x200, 0);

    run(0, v86_code);
    check("v86-iopl0-int-to-monitor", v86_int_count, 0);
    check("v86-iopl0-gp-count", gp_count, 5);
    check("v86-iopl0-int-gp", gp_ops[0], 0xcd);
    check("v86-iopl0-in-denied", gp_ops[1], 0xe4);
    check("v86-iopl0-cli-gp", gp_ops[2], 0xfa);
    check("v86-iopl0-pushf-gp", gp_ops[3], 0x9c);
    check("v86-iopl0-exit-int-gp", gp_ops[4], 0xcd);
    check("v86-iopl0-io-allowed", out(2), 1);
    check("v86-gp-error-zero-iopl0", gp_errors, 0);

    /* IRQ 0 while in v8086 mode: a ring 0 interrupt gate with the v8086 frame. 8259 at
     * 0x20-0x2f, only IRQ 0 unmasked; PIT channel 0 one-shot. */
    static const u8 master_icw[4] = {0x11, 0x20, 0x04, 0x01}, slave_icw[4] = {0x11, 0x28, 0x02, 0x01};
    for (int i = 0; i < 4; i++) {
        outb(i ? 0x21 : 0x20, master_icw[i]);
        outb(i ? 0xa1 : 0xa0, slave_icw[i]);
    }
    outb(0xa1, 0xff);
    outb(0x21, 0xff);
    set_idt(0x20, SEL_CODE32, (u32)v86_irq0, 0xe, 0);
    outb(0x43, 0x30);
    outb(0x40, 1000 & 0xff);
    outb(0x40, 1000 >> 8);
    outb(0x21, 0xfe);
    run(3, v86_irq_code);
    outb(0x21, 0xff);
    check("v86-irq0-delivered", *(volatile u16 *)(V86_LINEAR + (v86_irq_count - v86_chunk)) != 0, 1);
    check("v86-irq0-no-monitor", gp_count, 0);
}
