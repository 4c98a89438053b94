/* cpu-syscall: SYSENTER/SYSEXIT in 32-bit protected mode, SYSCALL/SYSRET with STAR, LSTAR and
 * SFMASK in 64-bit mode, SWAPGS, and FS/GS bases through MSRs and the FSGSBASE instructions. */
#include "lib.h"

extern void sysenter_round_trip(void);
extern void syscall_round_trip(void), fsgsbase_probe(void), fsgsbase_absent_probe(void);
extern char se_kernel_stack[], se_user_stack[], sc_after_first[];
extern u32 se_out[8], sc_out[16];

static void sysenter(void) {
    sysenter_round_trip();
    check("sysexit-cs", se_out[0], SEL_UCODE32);
    check("sysexit-ss", se_out[1], SEL_UDATA32);
    check("sysexit-esp", se_out[2], (u32)se_user_stack);
    check("sysenter-cs", se_out[3], SEL_CODE32);
    check("sysenter-ss", se_out[4], SEL_DATA32);
    check("sysenter-esp", se_out[5], (u32)se_kernel_stack);
    check("sysenter-registers-kept", se_out[6], 0x5ca1ab1e);
    check("sysenter-clears-if", se_out[7] & 0x200, 0);
}

static int has_fsgsbase(void) {
    u32 a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
    if (a < 7) return 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    return b & 1;
}

static void syscall64(void) {
    set_gdt(10, 0, 0xfffff, 0x9a, 0xa); /* 0x50: kernel code64 */
    set_gdt(11, 0, 0xfffff, 0x92, 0xc); /* 0x58: kernel data */
    set_gdt(12, 0, 0xfffff, 0xfa, 0xc); /* 0x60: user code32 */
    set_gdt(13, 0, 0xfffff, 0xf2, 0xc); /* 0x68: user data */
    set_gdt(14, 0, 0xfffff, 0xfa, 0xa); /* 0x70: user code64 */
    *(volatile u32 *)0x320010 = 0;
    check("syscall-round-trip", call_long(syscall_round_trip), 0x64);
    check("sysret-cs", sc_out[0], 0x73);
    check("sysret-ss", sc_out[1], 0x6b);
    check("sysret-rflags-from-r11", sc_out[2] & 0x40200, 0x40200);
    check("syscall-cs", sc_out[3], 0x50);
    check("syscall-ss", sc_out[4], 0x58);
    check("syscall-rcx-return-rip", sc_out[5], (u32)sc_after_first);
    check("syscall-r11-rflags", sc_out[6] & 0x40200, 0x40200);
    check("syscall-sfmask", sc_out[7] & 0x40300, 0);
    check("swapgs-gs-base", sc_out[8], 0x22220000);
    check("swapgs-kernel-gs-base", sc_out[9], 0x11110000);
    check("swapgs-twice", sc_out[10], 0x11110000);
    check("gs-base-msr-applies", *(volatile u32 *)0x320010, 0x600d);
    if (has_fsgsbase()) {
        *(volatile u32 *)0x330004 = 0;
        check("fsgsbase-round-trip", call_long(fsgsbase_probe), 0x64);
        check("wrfsbase-rdfsbase-low", sc_out[11], 0x3456789a);
        check("wrfsbase-rdfsbase-high", sc_out[12], 0x12);
        check("wrfsbase-fs-base-msr", sc_out[13], 0x3456789a);
        check("wrgsbase-applies", *(volatile u32 *)0x330004, 0xf5f5);
        check("rdgsbase", sc_out[14], 0x330000);
        check("rdfsbase-cr4-off-ud", sc_out[15], 6);
    } else {
        check("fsgsbase-absent-rdfsbase-ud", call_long(fsgsbase_absent_probe), 6);
    }
}

void main(void) {
    sysenter();
    syscall64();
}
