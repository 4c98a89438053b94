/* cpu-model: what a guest sees of the CPU model rx86 runs (`--cpu NAME`, SDM Vol. 2A
 * "CPUID"): the CPUID leaves an OS probes first, and which instructions of later
 * generations raise #UD. It prints one "fact NAME VALUE" line per observation; the test
 * (tests/tests/cpu_guests.rs) compares them with what the selected model must show. */
#include "lib.h"

static void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d) {
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static void fact(const char *name, u32 value) {
    puts("fact ");
    puts(name);
    puts(" ");
    puthex(value);
    puts("\n");
}

/* 1 when the instructions ran, 0 when they raised an exception (#UD, as the test expects). */
#define RUNS(insns) (TRY(insns, ) == -1)

void main(void) {
    u32 a, b, c, d;
    cpu_init();
    cpuid(0, &a, &b, &c, &d);
    fact("max-basic-leaf", a);
    cpuid(1, &a, &b, &c, &d);
    fact("family", (a >> 8) & 0xf);
    fact("leaf1-edx", d);
    cpuid(0x80000000, &a, &b, &c, &d);
    fact("max-extended-leaf", a);
    u32 long_mode = 0;
    if (a >= 0x80000001) {
        cpuid(0x80000001, &a, &b, &c, &d);
        long_mode = (d >> 29) & 1;
    }
    fact("long-mode", long_mode);
    fact("rdtsc-runs", RUNS("rdtsc"));
    fact("cmov-runs", RUNS("cmovel %%ecx, %%eax"));
    fact("nopl-runs", RUNS(".byte 0x0f, 0x1f, 0x00"));
    fact("popcnt-runs", RUNS("popcnt %%ecx, %%eax"));
    fact("avx-runs", RUNS("vxorps %%ymm0, %%ymm0, %%ymm0"));
    cpuid(1, &a, &b, &c, &d);
    fact("leaf1-ecx", c);
    u32 leaf7_ebx = 0;
    cpuid(0, &a, &b, &c, &d);
    if (a >= 7) {
        cpuid(7, &a, &leaf7_ebx, &c, &d);
    }
    fact("leaf7-ebx", leaf7_ebx);
    fact("movbe-runs", RUNS("movbe (%%esp), %%eax"));
    fact("pext-runs", RUNS("pext %%ecx, %%ecx, %%eax"));
    cpuid(1, &a, &b, &c, &d);
    if ((d >> 24) & 1) { /* FXSR: SSE can be enabled (CR4.OSFXSR) */
        u32 cr4;
        __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
        __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | 0x600));
    }
    fact("pshufb-runs", RUNS("pshufb %%xmm1, %%xmm0"));
    fact("pcmpistri-runs", RUNS("pcmpistri $0x0c, %%xmm1, %%xmm0"));
    cpuid(1, &a, &b, &c, &d);
    if ((c >> 26) & 1) { /* XSAVE: enable it (CR4.OSXSAVE) */
        u32 cr4;
        __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
        __asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1u << 18)));
    }
    cpuid(1, &a, &b, &c, &d);
    fact("osxsave", (c >> 27) & 1);
    fact("xgetbv-runs", RUNS("xor %%ecx, %%ecx\n\txgetbv"));
    cpuid(1, &a, &b, &c, &d);
    u32 xcr0 = 0, xsave_size = 0;
    if (((c >> 27) & 1) && ((c >> 28) & 1)) { /* OSXSAVE and AVX: enable the AVX state */
        __asm__ volatile("xsetbv" : : "a"(7), "d"(0), "c"(0));
        __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(d) : "c"(0));
        __asm__ volatile("cpuid" : "=a"(a), "=b"(xsave_size), "=c"(c), "=d"(d) : "a"(0xd), "c"(0));
    }
    fact("xcr0", xcr0);
    fact("xsave-size", xsave_size);
    fact("avx-state-runs", RUNS("vxorps %%ymm0, %%ymm0, %%ymm0"));
    fact("avx2-runs", RUNS("vpermd %%ymm1, %%ymm2, %%ymm0"));
    fact("fma-runs", RUNS("vfmadd231ps %%ymm1, %%ymm2, %%ymm0"));
    fact("f16c-runs", RUNS("vcvtph2ps %%xmm1, %%ymm0"));
    done();
}
