/* cpu-paging: 32-bit paging with 4 KiB and 4 MiB pages, PAE with 4 KiB and 2 MiB pages,
 * 4-level paging in long mode; accessed/dirty bits, CR0.WP, U/S, NX with EFER.NXE, reserved
 * bits, #PF error codes and CR2, INVLPG, CR3 reloads and global pages (SDM Vol. 3A ch. 4). */
#include "lib.h"

#define PG_P 0x1u
#define PG_RW 0x2u
#define PG_US 0x4u
#define PG_A 0x20u
#define PG_D 0x40u
#define PG_PS 0x80u
#define PG_G 0x100u
#define PG_XD (1ull << 63)
#define PF_P 0x1u
#define PF_W 0x2u
#define PF_U 0x4u
#define PF_RSVD 0x8u
#define PF_I 0x10u
#define CR0_WP (1u << 16)
#define CR0_PG (1u << 31)
#define CR4_PSE (1u << 4)
#define CR4_PAE (1u << 5)
#define CR4_PGE (1u << 7)
#define EFER_NXE (1u << 11)

/* Linear test addresses (PDE 256 onwards) and the physical pages behind them. */
#define LIN_4K 0x40000000u
#define LIN_RO 0x40001000u
#define LIN_SUPERVISOR 0x40002000u
#define LIN_USER_RO 0x40003000u
#define LIN_NP 0x40004000u
#define LIN_4M 0x40400000u
#define PHYS_A 0x500000u
#define PHYS_B 0x501000u
#define PHYS_4M 0x800000u
#define PHYS_2M 0xa00000u

static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt0[1024] __attribute__((aligned(4096)));
static u32 test_pt[1024] __attribute__((aligned(4096)));
static u64 pdpt[4] __attribute__((aligned(32)));
static u64 pae_pd0[512] __attribute__((aligned(4096)));
static u64 pae_pd1[512] __attribute__((aligned(4096)));
static u64 pae_pt[512] __attribute__((aligned(4096)));
static u64 l4_pdpt[512] __attribute__((aligned(4096)));
static u64 l4_pd[512] __attribute__((aligned(4096)));
static u64 l4_pt[512] __attribute__((aligned(4096)));
extern u64 lm_pml4[512];
extern u32 lp_out[9];
extern void run_user(void (*fn)(void));
extern char user_return[];
extern void user_read_supervisor(void), user_write_readonly(void), long_paging(void);

#define RD(a) (*(volatile u32 *)(a))
#define WR(a, v) (*(volatile u32 *)(a) = (v))

static u32 cr(int n) {
    u32 v = 0;
    if (n == 0) __asm__ volatile("movl %%cr0, %0" : "=r"(v));
    if (n == 2) __asm__ volatile("movl %%cr2, %0" : "=r"(v));
    if (n == 4) __asm__ volatile("movl %%cr4, %0" : "=r"(v));
    return v;
}
static void set_cr0(u32 v) { __asm__ volatile("movl %0, %%cr0" : : "r"(v) : "memory"); }
static void set_cr3(u32 v) { __asm__ volatile("movl %0, %%cr3" : : "r"(v) : "memory"); }
static void set_cr4(u32 v) { __asm__ volatile("movl %0, %%cr4" : : "r"(v) : "memory"); }
static void invlpg(u32 a) { __asm__ volatile("invlpg (%0)" : : "r"(a) : "memory"); }
static void set_efer_bits(u32 set, u32 clear) {
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0xc0000080));
    lo = (lo | set) & ~clear;
    __asm__ volatile("wrmsr" : : "a"(lo), "d"(hi), "c"(0xc0000080));
}
static void paging_off(void) { set_cr0(cr(0) & ~CR0_PG); }

/* Reads `a` expecting #PF: returns the error code (or 0xffffffff without a fault). */
static u32 pf_read(u32 a) {
    int v = TRY("movl (%0), %%eax", "r"(a));
    return v == 14 ? last_trap.error : 0xffffffff;
}
static u32 pf_write(u32 a) {
    int v = TRY("movl $0, (%0)", "r"(a));
    return v == 14 ? last_trap.error : 0xffffffff;
}

static void paging32(void) {
    for (u32 i = 0; i < 1024; i++) pt0[i] = i << 12 | PG_P | PG_RW | PG_US;
    pd[0] = (u32)pt0 | PG_P | PG_RW | PG_US;
    for (u32 i = 1; i < 16; i++) pd[i] = i << 22 | PG_P | PG_RW | PG_US | PG_PS;
    pd[256] = (u32)test_pt | PG_P | PG_RW | PG_US;
    pd[257] = PHYS_4M | PG_P | PG_RW | PG_PS;
    test_pt[0] = PHYS_A | PG_P | PG_RW;
    test_pt[1] = PHYS_B | PG_P;
    test_pt[2] = PHYS_B | PG_P | PG_RW;
    test_pt[3] = PHYS_B | PG_P | PG_US;
    WR(PHYS_A, 0x11111111);
    WR(PHYS_B, 0x22222222);
    WR(PHYS_4M + 0x1234, 0x44444444);
    set_cr4(cr(4) | CR4_PSE);
    set_cr3((u32)pd);
    set_cr0(cr(0) | CR0_PG);

    check("pg32-4k-read", RD(LIN_4K), 0x11111111);
    check("pg32-4k-accessed", test_pt[0] & (PG_A | PG_D), PG_A);
    check("pg32-pde-accessed", pd[256] & PG_A, PG_A);
    WR(LIN_4K + 4, 0xabcdef01);
    check("pg32-4k-write", RD(PHYS_A + 4), 0xabcdef01);
    check("pg32-4k-dirty", test_pt[0] & PG_D, PG_D);
    check("pg32-4m-read", RD(LIN_4M + 0x1234), 0x44444444);
    WR(LIN_4M + 0x2000, 7);
    check("pg32-4m-dirty", pd[257] & (PG_A | PG_D), PG_A | PG_D);

    set_cr0(cr(0) & ~CR0_WP);
    check("pg32-wp0-supervisor-write-ro", pf_write(LIN_RO), 0xffffffff);
    set_cr0(cr(0) | CR0_WP);
    check("pg32-wp1-write-ro-error", pf_write(LIN_RO), PF_P | PF_W);
    check("pg32-wp1-cr2", cr(2), LIN_RO);
    check("pg32-not-present-read", pf_read(LIN_NP), 0);
    check("pg32-not-present-cr2", cr(2), LIN_NP);
    check("pg32-not-present-write", pf_write(LIN_NP + 8), PF_W);
    check("pg32-not-present-write-cr2", cr(2), LIN_NP + 8);

    set_idt(0x80, SEL_CODE32, (u32)user_return, 0xe, 3);
    last_trap.vector = 0xffffffff;
    run_user(user_read_supervisor);
    check("pg32-user-read-supervisor", last_trap.vector == 14 ? last_trap.error : 0xffffffff, PF_P | PF_U);
    check("pg32-user-read-supervisor-cr2", cr(2), LIN_SUPERVISOR);
    last_trap.vector = 0xffffffff;
    run_user(user_write_readonly);
    check("pg32-user-write-readonly", last_trap.vector == 14 ? last_trap.error : 0xffffffff, PF_P | PF_W | PF_U);

    /* INVLPG: a changed PTE is seen after invalidating its page. */
    WR(PHYS_B, 0x22222222); /* the CR0.WP=0 write above went to PHYS_B */
    RD(LIN_4K);
    test_pt[0] = PHYS_B | PG_P | PG_RW;
    invlpg(LIN_4K);
    check("pg32-invlpg", RD(LIN_4K), 0x22222222);
    /* A CR3 reload drops non-global translations. */
    test_pt[0] = PHYS_A | PG_P | PG_RW;
    set_cr3((u32)pd);
    check("pg32-cr3-reload", RD(LIN_4K), 0x11111111);
    /* Global page: with CR4.PGE, turning PGE off flushes even global translations. */
    set_cr4(cr(4) | CR4_PGE);
    test_pt[0] = PHYS_A | PG_P | PG_RW | PG_G;
    invlpg(LIN_4K);
    check("pg32-global-read", RD(LIN_4K), 0x11111111);
    test_pt[0] = PHYS_B | PG_P | PG_RW | PG_G;
    set_cr4(cr(4) & ~CR4_PGE);
    check("pg32-pge-off-flushes-global", RD(LIN_4K), 0x22222222);
    paging_off();
}

static void pae(void) {
    for (u64 i = 0; i < 32; i++) pae_pd0[i] = i << 21 | PG_P | PG_RW | PG_US | PG_PS;
    pdpt[0] = (u32)pae_pd0 | PG_P;
    pdpt[1] = (u32)pae_pd1 | PG_P;
    pae_pd1[0] = (u32)pae_pt | PG_P | PG_RW;
    pae_pd1[1] = PHYS_2M | PG_P | PG_RW | PG_PS;
    pae_pt[0] = PHYS_A | PG_P | PG_RW;
    pae_pt[1] = PHYS_B | PG_P | PG_RW | PG_XD;           /* NX page (reserved bit while NXE=0) */
    pae_pt[2] = PHYS_B | PG_P | PG_RW;
    WR(PHYS_A, 0x11111111);
    WR(PHYS_B, 0xc3c3c3c3); /* RET */
    WR(PHYS_2M + 0x10, 0x2a2a2a2a);
    set_cr4((cr(4) & ~CR4_PSE) | CR4_PAE);
    set_cr3((u32)pdpt);
    set_cr0(cr(0) | CR0_PG);
    check("pae-4k-read", RD(LIN_4K), 0x11111111);
    check("pae-4k-accessed", (u32)pae_pt[0] & (PG_A | PG_D), PG_A);
    WR(LIN_4K, 5);
    check("pae-4k-dirty", (u32)pae_pt[0] & PG_D, PG_D);
    check("pae-2m-read", RD(0x40200010), 0x2a2a2a2a);
    check("pae-2m-accessed", (u32)pae_pd1[1] & PG_A, PG_A);
    /* XD set while EFER.NXE = 0 is a reserved bit. */
    /* RSVD with the access bits clear (the SDM also sets P here; QEMU's TCG does not). */
    check("pae-reserved-bit", pf_read(0x40001000) & ~PF_P, PF_RSVD);
    check("pae-reserved-bit-cr2", cr(2), 0x40001000);
    set_efer_bits(EFER_NXE, 0);
    set_cr3((u32)pdpt);
    check("pae-nx-data-read-ok", RD(0x40001000), 0xc3c3c3c3);
    check("pae-nx-fetch", TRY("call *%0", "r"(0x40001000)), 14);
    check("pae-nx-fetch-error", last_trap.error, PF_P | PF_I);
    check("pae-nx-fetch-cr2", cr(2), 0x40001000);
    check("pae-exec-ok", TRY("call *%0", "r"(0x40002000)), -1);
    set_efer_bits(0, EFER_NXE);
    paging_off();
    set_cr4(cr(4) & ~CR4_PAE);
}

static void four_level(void) {
    lm_pml4[1] = (u32)l4_pdpt | PG_P | PG_RW;
    lm_pml4[2] = 0;
    l4_pdpt[0] = (u32)l4_pd | PG_P | PG_RW;
    l4_pd[0] = (u32)l4_pt | PG_P | PG_RW;
    l4_pt[0] = PHYS_A | PG_P | PG_RW;
    l4_pt[1] = PHYS_B | PG_P | PG_RW | PG_XD;
    l4_pt[2] = PHYS_B | PG_P | PG_RW | 1ull << 51;
    l4_pd[1] = PHYS_2M | PG_P | PG_RW | PG_PS | 1u << 13;
    WR(PHYS_A + 4, 0x4b4b4b4b);
    WR(PHYS_B, 0xc3c3c3c3);
    set_efer_bits(EFER_NXE, 0);
    check("4level-round-trip", call_long(long_paging), 0x64);
    set_efer_bits(0, EFER_NXE);
    check("4level-read", lp_out[0], 0x4b4b4b4b);
    check("4level-write", RD(PHYS_A), 0x4c4c4c4c);
    check("4level-dirty", (u32)l4_pt[0] & (PG_A | PG_D), PG_A | PG_D);
    check("4level-accessed-pml4e", (u32)lm_pml4[1] & PG_A, PG_A);
    check("4level-not-present-vector", lp_out[1], 14);
    check("4level-not-present-error", lp_out[2], PF_W);
    check("4level-cr2-low", lp_out[3], 0);
    check("4level-cr2-high", lp_out[4], 0x100);
    check("4level-nx-vector", lp_out[5], 14);
    check("4level-nx-error", lp_out[6], PF_P | PF_I);
    /* RSVD with the access bits clear (P is left out: QEMU's TCG does not set it here). */
    check("4level-reserved-address-bit", lp_out[7] & ~PF_P, PF_RSVD);
    check("4level-2m-reserved-bit", lp_out[8] & ~PF_P, PF_RSVD);
}

void main(void) {
    paging32();
    pae();
    four_level();
}
