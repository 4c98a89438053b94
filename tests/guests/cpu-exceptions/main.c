/* cpu-exceptions: exceptions and interrupts in real, protected and long mode (SDM Vol. 3A
 * ch. 6, §20.1.4): vectors, error codes, saved instruction pointers (fault vs trap), #DF,
 * the ring 3 → 0 stack switch through the TSS, and interrupt vs trap gates. */
#include "lib.h"

extern char real_chunk[], real_chunk_end[], real_exceptions[];
extern void long_exceptions(void);
extern u8 rm_vec[8];
extern u16 rm_ip[8], rm_start[8], rm_end[8];
extern u32 lm_vec[9], lm_err[9], lm_rip[9], lm_start[9], lm_end[9];
extern u32 ring3_round_trip(void);
extern char ring0_from_ring3[], if_probe[], user_stack_top[];
extern u32 r3_frame[5], r3_handler_esp, r3_handler_cs, r3_user_cs, probe_flags, r3_faults[4], irq_count;
extern u16 rm_irq_count;
extern u32 lm_irq_count;
extern char pm_irq0[];

/* 8259 pair: IRQ 0-7 at vectors 0x20-0x27, 8-15 at 0x28-0x2f, all masked (the firmware may
 * have left the PIT running); pm_irq unmasks IRQ 0. */
static void pic_init(void) {
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, 0x20);
    outb(0xa1, 0x28);
    outb(0x21, 0x04);
    outb(0xa1, 0x02);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}

/* PIT channel 0 one-shot (mode 0) of `count` ticks: IRQ 0 when it reaches zero. */
static void pit_one_shot(u16 count) {
    outb(0x43, 0x30);
    outb(0x40, count & 0xff);
    outb(0x40, count >> 8);
}

static void pm_irq(void) {
    set_idt(0x20, SEL_CODE32, (u32)pm_irq0, 0xe, 0);
    irq_count = 0;
    pit_one_shot(1000);
    outb(0x21, 0xfe);
    __asm__ volatile("sti");
    for (u32 i = 0; i < 4000000 && !*(volatile u32 *)&irq_count; i++) {
    }
    __asm__ volatile("cli");
    check("pm-irq0-delivered", irq_count, 1);
}
extern u32 stack0_top;
extern void long_user(void);
extern u32 lu_out[8];
extern char lu_user_stack[];

/* 64-bit TSS (SDM Figure 8-11): RSP0 at 4, IST1 at 36, I/O map base at 102. */
static u32 tss64[26] __attribute__((aligned(16)));
static u8 rsp0_stack[1024] __attribute__((aligned(16)));
static u8 ist1_stack[1024] __attribute__((aligned(16)));

static void long_privilege(void) {
    tss64[1] = (u32)(rsp0_stack + sizeof(rsp0_stack));
    tss64[9] = (u32)(ist1_stack + sizeof(ist1_stack));
    tss64[25] = 104u << 16;
    set_gdt(10, (u32)tss64, 103, 0x89, 0); /* 0x50: 64-bit TSS; 0x58: its upper half (0) */
    gdt[11] = 0;
    set_gdt(12, 0, 0xfffff, 0xf2, 0xc); /* 0x60: user data */
    set_gdt(13, 0, 0xfffff, 0xfa, 0xa); /* 0x68: user code64 */
    check("long-ring3-round-trip", call_long(long_user), 0x64);
    check("long-ring3-cs", lu_out[0], 0x6b);
    check("long-ist1-stack", lu_out[1], (u32)(ist1_stack + sizeof(ist1_stack)) - 40);
    check("long-rsp0-stack", lu_out[2], (u32)(rsp0_stack + sizeof(rsp0_stack)) - 40);
    check("long-ring0-null-ss", lu_out[3], 0);
    check("long-frame-cs", lu_out[4], 0x6b);
    check("long-frame-rsp", lu_out[5], (u32)lu_user_stack);
    check("long-frame-ss", lu_out[6], 0x63);
    /* TR now names the 64-bit TSS; protected mode gets its own back. */
    gdt[SEL_TSS / 8] &= ~(2ull << 40);
    __asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
}

static void real_mode(void) {
    static const char *names[7] = {"real-de", "real-ud", "real-int3", "real-into", "real-bound",
                                   "real-single-step", "real-int-n"};
    static const u8 vectors[7] = {0, 6, 3, 4, 5, 1, 11};
    /* Faults push the faulting IP; INT3, INTO, INT n and single-step push the next one. */
    static const u8 is_trap[7] = {0, 0, 1, 1, 0, 1, 1};
    call_real(real_chunk, real_chunk_end, real_exceptions);
    check("real-irq0-delivered", rm_irq_count, 1);
    for (int i = 0; i < 7; i++) {
        u16 want_ip = is_trap[i] ? rm_end[i] : rm_start[i];
        if (rm_vec[i] != vectors[i]) check(names[i], rm_vec[i], vectors[i]);
        else check(names[i], rm_ip[i], want_ip);
    }
}

static void long_mode(void) {
    static const char *names[9] = {"long-de", "long-ud", "long-int3", "long-gp-error", "long-gp-noncanonical",
                                    "long-pf", "long-single-step", "long-into-ud", "long-np"};
    static const u32 vectors[9] = {0, 6, 3, 13, 13, 14, 1, 6, 11};
    static const u32 errors[9] = {0, 0, 0, 0x1000, 0, 0, 0, 0, 0x50};
    static const u8 is_trap[9] = {0, 0, 1, 0, 0, 0, 1, 0, 0};
    u32 r = call_long(long_exceptions);
    check("long-mode-entered", r, 0);
    check("long-irq0-delivered", lm_irq_count, 1);
    for (int i = 0; i < 9; i++) {
        u32 want_rip = is_trap[i] ? lm_end[i] : lm_start[i];
        if (lm_vec[i] != vectors[i]) check(names[i], lm_vec[i], vectors[i]);
        else if (lm_err[i] != errors[i]) check(names[i], lm_err[i], errors[i]);
        else check(names[i], lm_rip[i], want_rip);
    }
}

static void protected_mode(void) {
    u32 bounds[2] = {10, 20};
    check("pm-de", TRY("xorl %%ecx, %%ecx; divl %%ecx"), 0);
    check("pm-ud", TRY("ud2"), 6);
    TRY("movw $0x1000, %%ax; movw %%ax, %%ds");
    check("pm-gp-error-code", last_trap.error, 0x1000);
    set_gdt(10, 0, 0xfffff, 0x12, 0xc); /* 0x50: data, not present */
    check("pm-np", TRY("movw $0x50, %%ax; movw %%ax, %%ds"), 11);
    check("pm-np-error-code", last_trap.error, 0x50);
    set_gdt(11, 0, 0xfffff, 0x12, 0xc); /* 0x58: stack, not present */
    check("pm-ss", TRY("movw $0x58, %%ax; movw %%ax, %%ss"), 12);
    check("pm-ss-error-code", last_trap.error, 0x58);
    check("pm-br", TRY("movl $30, %%eax; boundl %%eax, (%0)", "r"(bounds)), 5);
    check("pm-ac-off", TRY("pushfl; orl $0x40000, (%%esp); popfl; movl 1(%%esp), %%eax;"
                           "pushfl; andl $~0x40000, (%%esp); popfl"),
          -1);
    u32 after = 0;
    __asm__ volatile("movl $1f, recover_eip; movl $1f, %0; pushfl; orl $0x100, (%%esp); popfl; nop; 1:"
                     : "=m"(after) : : "memory");
    check("pm-single-step-vector", last_trap.vector, 1);
    check("pm-single-step-eip", last_trap.eip, after);
    __asm__ volatile("movl $1f, recover_eip; movl $1f, %0; int3; 1:" : "=m"(after) : : "memory");
    check("pm-int3", last_trap.vector, 3);
    check("pm-int3-eip", last_trap.eip, after);
    check("pm-into", TRY("movl $0x7fffffff, %%eax; addl $1, %%eax; into"), 4);
    check("pm-into-no-overflow", TRY("xorl %%eax, %%eax; into"), -1);
    /* #GP whose gate is not present: #NP while delivering a contributory fault → #DF(0). */
    u64 gp_gate = idt[13];
    idt[13] &= ~(1ull << 47);
    check("pm-double-fault", TRY("movw $0x1000, %%ax; movw %%ax, %%ds"), 8);
    check("pm-double-fault-error", last_trap.error, 0);
    idt[13] = gp_gate;

    set_idt(0x80, SEL_CODE32, (u32)ring0_from_ring3, 0xe, 3);
    set_idt(0x83, SEL_CODE32, (u32)if_probe, 0xe, 0);
    ring3_round_trip();
    check("ring3-gate-dpl-gp", r3_faults[2], 13);
    check("ring3-gate-dpl-gp-error", r3_faults[3], 0x83 * 8 + 2);
    check("ring3-gp-hlt", last_trap.vector == 13 && last_trap.cs == SEL_UCODE32 ? 0 : last_trap.vector, 0);
    check("ring3-cs", r3_user_cs, SEL_UCODE32);
    check("ring3-to-0-handler-cs", r3_handler_cs, SEL_CODE32);
    check("ring3-to-0-tss-esp0", r3_handler_esp, (u32)&stack0_top - 20);
    check("ring3-to-0-frame-cs", r3_frame[1], SEL_UCODE32);
    check("ring3-to-0-frame-esp", r3_frame[3], (u32)user_stack_top);
    check("ring3-to-0-frame-ss", r3_frame[4], SEL_UDATA32);

    set_idt(0x81, SEL_CODE32, (u32)if_probe, 0xe, 0);
    set_idt(0x82, SEL_CODE32, (u32)if_probe, 0xf, 0);
    __asm__ volatile("sti; int $0x81; cli" ::: "memory");
    check("interrupt-gate-clears-if", probe_flags & 0x200, 0);
    __asm__ volatile("sti; int $0x82; cli" ::: "memory");
    check("trap-gate-keeps-if", probe_flags & 0x200, 0x200);
    /* INT n through a DPL 0 gate from ring 0 is fine; the gate DPL check is for CPL 3. */
    check("int-n-dpl0-from-ring0", TRY("int $0x81"), -1);
}

void main(void) {
    pic_init();
    protected_mode();
    pm_irq();
    real_mode();
    long_mode();
    long_privilege();
}
