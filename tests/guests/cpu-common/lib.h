/* Shared by the CPU test guests (tests/guests/cpu-*): serial report lines, the debug-exit
 * port, the GDT/IDT they all use and a way to run an instruction that is expected to fault.
 *
 * Output: one "name: ok" or "name: FAIL details" line per check and a final "done: ok" or
 * "done: FAIL"; then the guest writes 0 (all passed) or 1 to the isa-debug-exit port 0x501. */
#ifndef CPU_LIB_H
#define CPU_LIB_H

#ifndef __ASSEMBLER__
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#endif

/* GDT selectors (boot.S). */
#define SEL_CODE32 0x08
#define SEL_DATA32 0x10
#define SEL_UCODE32 0x1b
#define SEL_UDATA32 0x23
#define SEL_CODE64 0x28
#define SEL_CODE16 0x30  /* base 0x8000, limit 64 KiB: the way back to real mode */
#define SEL_DATA16 0x38  /* base 0, limit 64 KiB, 16-bit: real-mode-like data */
#define SEL_TSS 0x40     /* 0x40 and 0x48: the TSS (16 bytes in long mode) */
#define GDT_ENTRIES 32   /* 0x50..0xf8 are free for each guest */


#ifndef __ASSEMBLER__
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) {
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

extern u64 gdt[GDT_ENTRIES];
extern u64 idt[256];
extern u32 tss32[26];

void puts(const char *s);
void puthex(u32 v);
void putdec(u32 v);
/* One result line: "name: ok" or "name: FAIL <what> got <got> want <want>". */
int check(const char *name, u32 got, u32 want);
/* Like check() with a message instead of values. */
int check_true(const char *name, int ok, const char *what);
/* Prints "done: ok|FAIL" and exits through isa-debug-exit. */
__attribute__((noreturn)) void done(void);

/* Sets GDT entry `index` to a segment descriptor. */
void set_gdt(int index, u32 base, u32 limit, u8 access, u8 flags);
/* Sets IDT entry `vector` to a 32-bit gate (type 0xe interrupt, 0xf trap, 0x5 task) of DPL dpl. */
void set_idt(int vector, u16 sel, u32 offset, u8 type, u8 dpl);
/* Points TR at tss32 with ESP0 = esp0 (loaded by LTR in cpu_init). */
void cpu_init(void);

/* The last trapped exception (isr stubs in boot.S): vector, error code (0 without one), the
 * faulting EIP and CS, and how many exceptions were taken. */
struct trap_record {
    u32 vector, error, eip, cs, eflags, count;
};
extern volatile struct trap_record last_trap;
/* The stack frame trap_handler sees (pushal, vector, error code, the CPU's frame). */
struct trap_frame {
    u32 edi, esi, ebp, esp_pushal, ebx, edx, ecx, eax;
    u32 vector, error, eip, cs, eflags, esp, ss;
};
/* When set, called for every exception instead of the recovery/fatal handling. */
extern void (*volatile trap_hook)(struct trap_frame *);
/* When non-zero, the next exception resumes here (and this is cleared); else it is fatal. */
extern volatile u32 recover_eip;

/* Runs the instruction(s) `insns` (AT&T syntax) with recovery after them; returns the
 * vector taken or -1. Registers eax/ecx/edx may be used by `insns`. */
#define TRY(insns, ...)                                                                            \
    ({                                                                                             \
        last_trap.vector = 0xffffffff;                                                             \
        __asm__ volatile("movl $1f, recover_eip\n\t" insns "\n\t1:\n\tmovl $0, recover_eip"        \
                         : : __VA_ARGS__ : "eax", "ecx", "edx", "memory", "cc");                   \
        (int)last_trap.vector;                                                                     \
    })

/* modes.S: run a .code16 routine in real mode / a .code64 routine in long mode (see there). */
u32 call_real(const void *start, const void *end, const void *entry);
u32 call_long(void (*fn64)(void));
/* Next 64-bit exception resumes here (cleared); else call_long returns -1. */
extern volatile u64 recover_rip;
#endif

/* Real-mode segment call_real runs the guest's chunk in (linear 0x9000). */
#define GUEST_SEG 0x900

#endif
