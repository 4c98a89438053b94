/* cpu-tasks: 32-bit hardware task switches (SDM Vol. 3A ch. 7): JMP to a TSS, CALL to a TSS
 * with the back-link and NT, IRET back through NT, INT n through a task gate, busy bits,
 * CR3 and LDT loaded from the new TSS, registers saved in the old TSS, #GP for a busy TSS
 * and #TS for a TSS whose limit is too small. */
#include "lib.h"

#define SEL_TSS_B 0x50
#define SEL_TSS_C 0x58
#define SEL_TSS_D 0x60
#define SEL_LDT 0x68
#define SEL_TSS_SHORT 0x70
#define SEL_TSS_E 0x78
#define TSS_AVAIL 0x89
#define TSS_BUSY_BIT 0x2
#define PG_4M 0x87u /* P, RW, US, PS */

u32 tss_b[26] __attribute__((aligned(64)));
u32 tss_c[26] __attribute__((aligned(64)));
u32 tss_d[26] __attribute__((aligned(64)));
u32 tss_e[26] __attribute__((aligned(64)));
static u64 ldt[2];
static u32 pd_a[1024] __attribute__((aligned(4096)));
static u32 pd_b[1024] __attribute__((aligned(4096)));
static u32 stack_b[256], stack_c[256], stack_d[256], stack_e[256];
extern void task_b(void), task_c(void), task_d(void), task_e(void);
extern u32 t_out[16];

/* TSS field indices (in dwords). */
enum { BACKLINK, ESP0, SS0, CR3 = 7, EIP, EFLAGS, EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI,
       ES, CS, SS, DS, FS, GS, LDTR, IOMAP };

static void init_tss(u32 *t, void (*entry)(void), u32 *stack_top, u32 cr3) {
    for (int i = 0; i < 26; i++) t[i] = 0;
    t[CR3] = cr3;
    t[EIP] = (u32)entry;
    t[EFLAGS] = 0x2;
    t[ESP] = (u32)stack_top;
    t[CS] = SEL_CODE32;
    t[SS] = t[DS] = t[ES] = t[FS] = t[GS] = SEL_DATA32;
    t[IOMAP] = 104u << 16;
}

static u8 access_byte(u16 sel) { return (u8)(gdt[sel >> 3] >> 40); }

static u32 cr3_now(void) {
    u32 v;
    __asm__ volatile("movl %%cr3, %0" : "=r"(v));
    return v;
}

void main(void) {
    for (u32 i = 0; i < 16; i++) pd_a[i] = pd_b[i] = i << 22 | PG_4M;
    pd_a[256] = 0x00800000 | PG_4M;
    pd_b[256] = 0x00c00000 | PG_4M;
    *(volatile u32 *)0x00800000 = 0xaaaa0000;
    *(volatile u32 *)0x00c00000 = 0xbbbb0000;
    *(volatile u32 *)0x12000 = 0x1d71d7;
    __asm__ volatile("movl %0, %%cr4; movl %1, %%cr3; movl %%cr0, %%eax; orl $0x80000000, %%eax; movl %%eax, %%cr0"
                     : : "r"(0x10), "r"(pd_a) : "eax", "memory");
    tss32[CR3] = (u32)pd_a; /* CR3 is not saved on a switch: the way back needs it */

    init_tss(tss_b, task_b, stack_b + 256, (u32)pd_b);
    tss_b[EAX] = 0xb0b0b0b0;
    tss_b[LDTR] = SEL_LDT;
    init_tss(tss_c, task_c, stack_c + 256, (u32)pd_a);
    tss_c[EBX] = 0xc0c0c0c0;
    init_tss(tss_d, task_d, stack_d + 256, (u32)pd_a);
    ldt[0] = 0;
    set_gdt(SEL_TSS_B / 8, (u32)tss_b, 103, TSS_AVAIL, 0);
    set_gdt(SEL_TSS_C / 8, (u32)tss_c, 103, TSS_AVAIL, 0);
    set_gdt(SEL_TSS_D / 8, (u32)tss_d, 103, TSS_AVAIL, 0);
    set_gdt(SEL_LDT / 8, (u32)ldt, 15, 0x82, 0);
    set_gdt(SEL_TSS_SHORT / 8, (u32)tss_d, 0x50, TSS_AVAIL, 0);
    ldt[0] = (u64)0xffff | (u64)0x12000 << 16 | (u64)0x92 << 40 | (u64)0xcf << 48; /* data, base 0x12000 */

    u32 esi_before = 0x51515151, esi_after = 0;
    __asm__ volatile("ljmp $0x50, $0" : "=S"(esi_after) : "S"(esi_before) : "memory");
    check("jmp-tss-registers", t_out[0], 0xb0b0b0b0);
    check("jmp-tss-nt-clear", t_out[1] & 0x4000, 0);
    check("jmp-tss-tr", t_out[2], SEL_TSS_B);
    check("jmp-tss-cr3-switch", t_out[3], 0xbbbb0000);
    check("jmp-tss-ldtr", t_out[4], SEL_LDT);
    check("jmp-tss-ldt-segment", t_out[5], 0x1d71d7);
    check("jmp-tss-cs", t_out[12], SEL_CODE32);
    check("jmp-back-registers-restored", esi_after, 0x51515151);
    check("jmp-back-cr3", cr3_now(), (u32)pd_a);
    check("jmp-back-old-busy-cleared", access_byte(SEL_TSS_B) & TSS_BUSY_BIT, 0);
    check("jmp-back-current-busy", access_byte(SEL_TSS) & TSS_BUSY_BIT, TSS_BUSY_BIT);
    check("jmp-saved-eip-in-old-tss", tss_b[EIP] > (u32)task_b && tss_b[EIP] < (u32)task_c, 1);
    check("jmp-saved-eflags", tss_b[EFLAGS] & 0x4000, 0);
    u16 tr;
    __asm__ volatile("str %0" : "=r"(tr));
    check("jmp-back-tr", tr, SEL_TSS);

    __asm__ volatile("lcall $0x58, $0" ::: "memory");
    check("call-tss-nt-set", t_out[6] & 0x4000, 0x4000);
    check("call-tss-back-link", t_out[7], SEL_TSS);
    check("call-tss-registers", t_out[8], 0xc0c0c0c0);
    check("iret-nt-busy-cleared", access_byte(SEL_TSS_C) & TSS_BUSY_BIT, 0);
    u32 fl;
    __asm__ volatile("pushfl; popl %0" : "=r"(fl));
    check("iret-nt-caller-nt-clear", fl & 0x4000, 0);

    set_idt(0x90, SEL_TSS_D, 0, 0x5, 0);
    __asm__ volatile("int $0x90" ::: "memory");
    check("task-gate-nt-set", t_out[9] & 0x4000, 0x4000);
    check("task-gate-back-link", t_out[10], SEL_TSS);
    check("task-gate-stack", t_out[11], (u32)(stack_d + 256));
    /* Second entry resumes task D after its IRET (saved EIP), not at its start. */
    __asm__ volatile("int $0x90" ::: "memory");
    check("task-gate-resumes", tss_d[EIP] > (u32)task_d, 1);

    check("call-busy-tss-gp", TRY("lcall $0x40, $0"), 13);
    check("call-busy-tss-error", last_trap.error, SEL_TSS);
    check("jmp-short-tss-ts", TRY("ljmp $0x70, $0"), 10);
    check("jmp-short-tss-error", last_trap.error, SEL_TSS_SHORT);
    check("tr-unchanged-after-faults", access_byte(SEL_TSS) & TSS_BUSY_BIT, TSS_BUSY_BIT);

    /* IRET with NT whose back-link names an available (not busy) TSS: #TS(back-link). */
    tss32[BACKLINK] = SEL_TSS_B;
    check("iret-nt-available-back-link-ts", TRY("pushfl; orl $0x4000, (%%esp); popfl; iretl"), 10);
    check("iret-nt-available-back-link-error", last_trap.error, SEL_TSS_B);
    __asm__ volatile("pushfl; andl $~0x4000, (%%esp); popfl" ::: "memory", "cc");
    tss32[BACKLINK] = 0;

    /* An exception through a task gate: #GP's error code lands on the handler task's stack. */
    init_tss(tss_e, task_e, stack_e + 256, (u32)pd_a);
    set_gdt(SEL_TSS_E / 8, (u32)tss_e, 103, TSS_AVAIL, 0);
    u64 gp_gate = idt[13];
    set_idt(13, SEL_TSS_E, 0, 0x5, 0);
    u32 fault_eip = 0;
    __asm__ volatile("movw $0x1000, %%ax; movl $1f, %0; 1: movw %%ax, %%ds" : "=m"(fault_eip) : : "eax", "memory");
    idt[13] = gp_gate;
    check("task-gate-exception-error-code", t_out[13], 0x1000);
    check("task-gate-exception-saved-eip", t_out[14], fault_eip);
    check("task-gate-exception-returned", access_byte(SEL_TSS_E) & TSS_BUSY_BIT, 0);
}
