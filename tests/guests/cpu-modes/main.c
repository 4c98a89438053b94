/* cpu-modes: real ↔ protected ↔ long mode round trips (SDM Vol. 3A §9.8-9.9), checking what
 * each mode looks like after the switch: real-mode segments and unreal FS, 32-bit flat
 * segments again, 64-bit code, compatibility mode, and data-segment bases in long mode. */
#include "lib.h"

extern char real_chunk[], real_chunk_end[], real_probe[];
extern u32 rm_out[4], lm_out[5];
extern void long_probe(void);

static volatile u32 *const ES_TARGET = (u32 *)0x12340;
static volatile u32 *const UNREAL_TARGET = (u32 *)0x200000;
static volatile u32 *const LONG_DS_TARGET = (u32 *)0x300000;
static volatile u32 *const LONG_FS_TARGET = (u32 *)0x310000;

static u32 read_cr0(void) {
    u32 v;
    __asm__ volatile("movl %%cr0, %0" : "=r"(v));
    return v;
}

static void real_round_trip(int n) {
    *ES_TARGET = 0;
    *UNREAL_TARGET = 0;
    u32 r = call_real(real_chunk, real_chunk_end, real_probe);
    check(n ? "real-round-trip-2" : "real-round-trip-1", r & 0xffff, 0x77);
    check("real-cs", rm_out[0] & 0xffff, GUEST_SEG);
    check("real-msw-pe-clear", rm_out[0] >> 16 & 1, 0);
    check("real-segment-load", *ES_TARGET & 0xffff, 0xbeef);
    check("real-unreal-fs", rm_out[1], 0x55aa1234);
    check("real-unreal-fs-memory", *UNREAL_TARGET, 0x55aa1234);
    check("real-32bit-operand", rm_out[2], 0x34567812);
    check("protected-again-pe", read_cr0() & 1, 1);
    u32 cs;
    __asm__ volatile("movl %%cs, %0" : "=r"(cs));
    check("protected-again-cs", cs, SEL_CODE32);
}

static void long_round_trip(void) {
    set_gdt(10, 0x10000, 0xfffff, 0x92, 0xc); /* 0x50: data, base 0x10000 */
    *LONG_DS_TARGET = 0;
    *LONG_FS_TARGET = 0;
    u32 r = call_long(long_probe);
    check("long-round-trip", r, 0x64);
    check("long-64bit-register", lm_out[0], 1);
    check("long-efer-lma", lm_out[1] & 0x500, 0x500);
    check("long-ds-base-ignored", *LONG_DS_TARGET, 0xcafe);
    check("long-fs-base-msr", *LONG_FS_TARGET, 0xf00d);
    check("compat-mode-dec", lm_out[2], 0xffffffff);
    check("compat-mode-cs", lm_out[4], SEL_CODE32);
    check("long-cs-after-compat", lm_out[3], SEL_CODE64);
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0xc0000080));
    check("protected-after-long-efer", lo & 0x500, 0);
    check("protected-after-long-pg", read_cr0() >> 31, 0);
}

void main(void) {
    real_round_trip(0);
    long_round_trip();
    real_round_trip(1);
    long_round_trip();
}
