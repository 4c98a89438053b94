//! SMAP under compiled code: the JIT tier probes the interpreter's TLB inline and, for
//! a supervisor read, checks only the entry's tag, so SMAP holds only if the TLB keeps
//! no user page while supervisor accesses to user pages are forbidden. This guest runs
//! a loop at CPL 0 that reads through RSI with RFLAGS.AC set, clears AC with CLAC and
//! reads through RSI again. RSI points at a supervisor page until the last pass, where
//! it is a user page: by then the blocks are compiled and chained, the first read caches
//! the user page, and the read after CLAC, in compiled code, must fault on both tiers,
//! in the same place.

use rx86_core::platform::BasicPlatform;
use rx86_core::time::Clock;
use rx86_cpu::engine::Exit;
use rx86_cpu::interp::state::{cr0, cr4, efer, Seg, Segment};
use rx86_cpu::interp::{Interpreter, DEFAULT_NS_PER_INSN};

/// The user page (linear = physical); every other page of the first 2 MiB is
/// supervisor-only.
const USER_PAGE: u64 = 0x5000;
/// A supervisor data page.
const KERNEL_PAGE: u64 = 0x6000;

/// The guest's loop (64-bit code at 0x10000), as bytes.
fn guest_code() -> Vec<u8> {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(64).unwrap();
    let mut top = a.create_label();
    a.mov(ecx, 50).unwrap();
    a.mov(rsi, KERNEL_PAGE).unwrap();
    a.mov(r8, USER_PAGE).unwrap();
    a.set_label(&mut top).unwrap();
    a.cmp(ecx, 1).unwrap();
    a.cmove(rsi, r8).unwrap();
    a.stac().unwrap();
    a.mov(rax, qword_ptr(rsi)).unwrap();
    a.clac().unwrap();
    a.mov(rbx, qword_ptr(rsi)).unwrap();
    a.dec(ecx).unwrap();
    a.jnz(top).unwrap();
    a.hlt().unwrap();
    a.assemble(0x10000).unwrap()
}

/// Runs the guest (on the JIT tier compiling every block at once when `jit`); returns
/// RCX, R15 (0xdead once the #PF handler ran), CR2 and the instructions retired.
fn run(jit: bool) -> (u64, u64, u64, u64) {
    let p = BasicPlatform::new(2 << 20).expect("RAM");
    let m = &p.memory;
    m.write(0x10000, &guest_code());
    // #PF handler at 0x30000: mov r15, 0xdead; hlt.
    m.write(0x30000, &[0x49, 0xc7, 0xc7, 0xad, 0xde, 0, 0, 0xf4]);
    let gate = (0x18u64 << 16) | (0x8e00 << 32) | (0x3u64 << 48);
    m.write(0x2000 + 14 * 16, &gate.to_le_bytes());
    m.write(0x2000 + 14 * 16 + 8, &0u64.to_le_bytes());
    // GDT: null, 32-bit code, data, 64-bit code 0x18.
    m.write(0x500, &[0; 8]);
    m.write(0x508, &0x00cf_9b00_0000_ffffu64.to_le_bytes());
    m.write(0x510, &0x00cf_9300_0000_ffffu64.to_le_bytes());
    m.write(0x518, &0x00af_9b00_0000_ffffu64.to_le_bytes());
    // PML4 0x70000 -> PDPT 0x71000 -> PD 0x72000 -> page table 0x73000 (4-KiB pages).
    m.write(0x70000, &(0x71000u64 | 7).to_le_bytes());
    m.write(0x71000, &(0x72000u64 | 7).to_le_bytes());
    m.write(0x72000, &(0x73000u64 | 7).to_le_bytes());
    for i in 0..512u64 {
        let user = if i << 12 == USER_PAGE { 4 } else { 0 };
        m.write(0x73000 + i * 8, &(i << 12 | 3 | user).to_le_bytes());
    }
    m.write(USER_PAGE, &0x1111u64.to_le_bytes());
    let mut cpu = Interpreter::new(DEFAULT_NS_PER_INSN);
    if jit {
        let tier = rx86_jit::JitTier::new(1 << 20).expect("the JIT tier on this host");
        cpu.set_tier(Box::new(tier), 1, false);
    }
    let st = cpu.state_mut();
    st.cr0 = cr0::ET | cr0::PE | cr0::PG;
    st.cr3 = 0x70000;
    st.cr4 = cr4::PAE | cr4::SMAP;
    st.efer = efer::LME | efer::LMA;
    st.gdtr.base = 0x500;
    st.gdtr.limit = 0x1f;
    st.idtr.base = 0x2000;
    st.idtr.limit = 0xfff;
    let data = Segment { base: 0, limit: 0xffff_ffff, selector: 0x10, attrs: 0xc093 };
    st.seg = [data; 6];
    st.seg[Seg::Cs as usize] = Segment { base: 0, limit: 0xffff_ffff, selector: 0x18, attrs: 0xa09b };
    st.rip = 0x10000;
    st.gpr[4] = 0x9000;
    cpu.flush_caches();
    let clock = Clock::new_virtual();
    assert_eq!(cpu.run_until(&p, &clock, u64::MAX), Exit::Halted);
    if jit {
        let report = cpu.tier_report().expect("a tier report");
        assert!(report.counters.chained_runs > 0, "the blocks ran chained: {:?}", report.counters);
    }
    let st = cpu.state();
    (st.gpr[1], st.gpr[15], st.cr2, cpu.retired)
}

#[test]
fn a_read_after_clac_faults_in_compiled_code_as_in_the_interpreter() {
    let interp = run(false);
    assert_eq!((interp.0, interp.1, interp.2), (1, 0xdead, USER_PAGE), "the last pass faulted on the user page");
    assert_eq!(run(true), interp, "the JIT tier");
}
